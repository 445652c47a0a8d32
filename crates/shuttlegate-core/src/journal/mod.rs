//! The journal's record format, sans IO: what a record is ([`record`]), how it is framed in a
//! segment ([`frame`]), how its body is coded ([`codec`], [`predict`], [`varint`]) and how a
//! stored record is decoded back ([`stored`]).
//!
//! The daemon's `journal` module (segments on disk, the group-commit writer, recovery, cursors)
//! is built on these; so are the offline tools and the fuzz targets. The on-disk format and the
//! invariants are documented there and in docs/journal.md.

pub mod codec;
pub mod frame;
pub mod predict;
pub mod record;
pub mod stored;
#[cfg(any(test, feature = "synth"))]
pub mod synth;
pub mod varint;

pub use codec::{CodecError, EncodedBody, decode_batch_body, encode_batch as encode_batch_body};
pub use frame::{
    FORMAT_VERSION, Frame, FrameMeta, Parse, ScanSummary, encode_frame, frame_len, parse_frame,
    scan_all, segment_file_bytes,
};
/// What builds before v2 frames wrote (compatibility tests and fuzz seeds only).
#[doc(hidden)]
pub use frame::{encode_frame_v1, segment_file_bytes_v1};
pub use record::{Document, Record, RecordBody, RecordKind};
pub use stored::StoredRecord;
