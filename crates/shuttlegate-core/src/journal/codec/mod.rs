//! Record bodies as bytes: the lossless IMU sample transform and zstd.
//!
//! Exists so that raw sensor batches cost a few bytes per sample on an SD card while `journal
//! export` still gives back exactly the f32 values the device sent. Pure: no IO, no clock.
//!
//! A batch body, before zstd (all integers little-endian, `varint` = LEB128, `zz` = zigzag):
//!
//! ```text
//! compact: 0x01 | sensor_id varint | t0 zz-varint | rate_hz f64 | channels u8 | rows varint
//!          | column × channels                  (column c holds samples[i*channels + c])
//! seed:    0x02 | flags u8 (1 sensor_type, 2 timestamp) | [len varint, sensor_type utf8]
//!          | [timestamp zz-varint] | frames varint
//!          | frame flags u8 × frames            (1 sensor_id, 2 timestamp, 4 angle)
//!          | sensor_id varint × frames-with-id
//!          | timestamp zz-varint × frames-with-ts   (delta to the same node's previous stamp)
//!          | per node in order of first appearance: 6 columns (acc, gyro) over its frames,
//!            then 3 columns (angle) over its frames that carry one
//!          0x03 = the same up to the stamps, then channel by channel (acc x y z, gyro x y z,
//!            angle x y z), each: marker u8
//!            0 = a column per node, in node order
//!            1 = every node's values share one scale: one byte s·4 + predictor, an anchor
//!                zz-varint per node with values, then all nodes' residuals in one Rice code
//! column:  header u8
//!          0 = float: XOR of each value's bits with the previous value's, stored as four byte
//!              planes (all most significant bytes first) so zstd sees the slowly varying
//!              sign/exponent bytes together;
//!          1 + 3·s + order   = integers, varints: every value is exactly `SCALES[s]` applied to
//!              an integer k (`(k as f32) * c` or `(k as f32) / c`: what firmware derives from
//!              int16 counts or prints with fixed decimals); the k follow, zz-varint, as
//!              offsets from the first (order 0), first differences (order 1) or second
//!              differences (order 2), whichever has the fewest significant bits;
//!          128 + 3·s + order = the same integers, Rice-coded: the first as a zz-varint, then
//!              k u8 and the other zigzagged residuals as Golomb-Rice codes (q zero bits, a one
//!              bit, k low bits; q ≥ 24 escapes to 24 zero bits + 64 raw bits), MSB first,
//!              padded to a byte;
//!          254 = the same integers against a predictor (`predict.rs`): one byte
//!              `s × 4 + predictor` (0 column mean, 1 previous value, 2 linear, 3 quadratic
//!              extrapolation), the anchor (the mean, or the first value) as a zz-varint, then
//!              the residuals Rice-coded as above.
//! compact, packed: 0x04, the compact form with every column bit-packed and predicted by one of
//!          eight predictors, Rice-coded in up to four runs: see `packed.rs`. Used whenever
//!          every column is integer-valued (what compact firmware sends); 0x01 otherwise.
//! ```
//! Compact bodies use predicted columns and are stored without zstd; seed bodies are encoded
//! every way (by node with varints + zstd, Rice or predicted Rice; by channel, with and
//! without zstd) and the smallest is stored (the record's codec byte says whether zstd
//! applies). All body and column kinds stay readable.
//!
//! Every integer column is verified bit-exactly at encode time (the decoder repeats the same f32
//! operation), so a value that does not round-trip sends its column to the float mode: the
//! transform can lose compression, never data.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the public API: encode/decode of batches and documents, zstd, [`CodecError`] |
//! | `compact.rs` | the compact form, first layout (tag 1), and what both compact layouts share |
//! | `packed.rs` | the compact form, packed layout (tag 4) |
//! | `seed.rs` | the seed form, by node (tag 2) and by channel (tag 3) |
//! | `column.rs` | a column: the scales, integer detection, column kinds and their decoding |
//! | `rice.rs` | Golomb-Rice codes: parameter choice, the bit writer, decoding |
//! | `reader.rs` | the byte [`Reader`](reader::Reader) and bit `BitReader` primitives |

mod column;
mod compact;
#[cfg(test)]
mod entropy_probe;
mod packed;
mod reader;
mod rice;
mod seed;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

use crate::batch::{BatchForm, CompactBatch, SensorBatch};
use compact::{decode_compact, encode_compact_columns};
use reader::Reader;
use seed::{SEED_BY_CHANNEL, SEED_BY_NODE, decode_seed, encode_seed};

/// Body stored as is (documents that zstd does not shrink).
pub const CODEC_PLAIN: u8 = 0;
/// Body is a zstd frame.
pub const CODEC_ZSTD: u8 = 1;

/// Upper bound on a decoded body; a corrupt or hostile size field cannot make us allocate more.
pub const MAX_DECODED_BODY: usize = 16 << 20;

const ZSTD_LEVEL: i32 = 3;

/// Why a stored body could not be turned back into a value. The record is reported as corrupt.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("body ends early at byte {0}")]
    Truncated(usize),
    #[error("body is malformed at byte {at}: {what}")]
    Malformed { at: usize, what: &'static str },
    #[error("zstd: {0}")]
    Zstd(String),
    #[error("document is not UTF-8")]
    NotUtf8,
    #[error("unknown body codec {0}")]
    UnknownCodec(u8),
}

/// A body after the transform and compression, ready to be framed.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBody {
    pub codec: u8,
    /// Length of the body before zstd (for the compression ratio).
    pub raw_len: u32,
    /// Samples (compact rows or seed frames) in it; 0 for documents.
    pub samples: u32,
    pub bytes: Vec<u8>,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

fn zstd_compress(raw: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        match slot.as_mut().map(|c| c.compress(raw)) {
            Some(Ok(out)) => out,
            // Compressing into a growable buffer fails only on allocation failure; fall back to
            // a fresh context so a poisoned one cannot stick.
            _ => zstd::bulk::compress(raw, ZSTD_LEVEL).unwrap_or_default(),
        }
    })
}

/// Encodes a batch. Compact bodies (long noisy columns) are coded with the best predictor per
/// column and Rice codes, and stored without zstd, which gains them nothing (measured ratio
/// 1.02) and would cost the writer path CPU. Seed bodies (short per-node columns and per-frame
/// ids and stamps, where zstd finds repetition) are encoded several ways, with and without
/// zstd, and the smallest is kept: a V3.3 message is 30 frames, so this costs little.
pub fn encode_batch(batch: &SensorBatch) -> EncodedBody {
    let raw = |coding: Coding| {
        let mut raw = Vec::with_capacity(64 + batch.sample_count() * 12);
        match &batch.form {
            BatchForm::Compact(c) => encode_compact(c, &mut raw, coding),
            BatchForm::Seed(s) => encode_seed(s, &mut raw, coding),
        }
        raw
    };
    let samples = batch.sample_count() as u32;
    let plain = |bytes: Vec<u8>| EncodedBody {
        codec: CODEC_PLAIN,
        raw_len: bytes.len() as u32,
        samples,
        bytes,
    };
    if matches!(batch.form, BatchForm::Compact(_)) {
        return plain(raw(Coding::Predicted));
    }
    let zstd = |raw: &[u8]| {
        let bytes = zstd_compress(raw);
        (!bytes.is_empty()).then_some(EncodedBody {
            codec: CODEC_ZSTD,
            raw_len: raw.len() as u32,
            samples,
            bytes,
        })
    };
    let varints = raw(Coding::Varints);
    let grouped = raw(Coding::Grouped);
    [zstd(&varints), zstd(&grouped)]
        .into_iter()
        .flatten()
        .chain([raw(Coding::Rice), raw(Coding::Predicted), grouped].map(plain))
        .min_by_key(|e| e.bytes.len())
        .unwrap_or_else(|| plain(varints))
}

/// Writes a compact batch: in the packed layout (tag 4) when every column is integer-valued and
/// predicted columns are asked for, else in the first layout (tag 1).
fn encode_compact(c: &CompactBatch, out: &mut Vec<u8>, coding: Coding) {
    if coding == Coding::Predicted && packed::encode_packed(c, out) {
        return;
    }
    encode_compact_columns(c, out, coding);
}

/// How integer columns are written (the float mode is the same in all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    /// zz-varints of offsets or differences, for zstd to compress.
    Varints,
    /// Offsets or differences, Rice-coded.
    Rice,
    /// Residuals of the best [`Predictor`](super::predict::Predictor), Rice-coded.
    Predicted,
    /// Seed bodies only: channel by channel, nodes sharing a column header
    /// ([`encode_channel`]); predicted Rice columns.
    Grouped,
}

/// Encodes a JSON document: zstd when it shrinks, else plain.
pub fn encode_document(json: &str) -> EncodedBody {
    let z = zstd_compress(json.as_bytes());
    let (codec, bytes) = if !z.is_empty() && z.len() < json.len() {
        (CODEC_ZSTD, z)
    } else {
        (CODEC_PLAIN, json.as_bytes().to_vec())
    };
    EncodedBody {
        codec,
        raw_len: json.len() as u32,
        samples: 0,
        bytes,
    }
}

/// Undoes the codec (zstd or plain), giving the raw body bytes.
pub fn decompress(codec: u8, bytes: &[u8], raw_len: u32) -> Result<Vec<u8>, CodecError> {
    match codec {
        CODEC_PLAIN => Ok(bytes.to_vec()),
        CODEC_ZSTD => {
            let cap = (raw_len as usize).min(MAX_DECODED_BODY);
            let out =
                zstd::bulk::decompress(bytes, cap).map_err(|e| CodecError::Zstd(e.to_string()))?;
            Ok(out)
        }
        other => Err(CodecError::UnknownCodec(other)),
    }
}

/// Decodes a raw (decompressed) document body.
pub fn decode_document(raw: Vec<u8>) -> Result<String, CodecError> {
    String::from_utf8(raw).map_err(|_| CodecError::NotUtf8)
}

/// Decodes a raw (decompressed) batch body; public for the fuzz target.
pub fn decode_batch_body(raw: &[u8]) -> Result<BatchForm, CodecError> {
    decode_batch_form(raw)
}

/// Decodes a raw (decompressed) batch body into its form.
pub fn decode_batch_form(raw: &[u8]) -> Result<BatchForm, CodecError> {
    let mut r = Reader { buf: raw, pos: 0 };
    let form = match r.u8()? {
        1 => BatchForm::Compact(decode_compact(&mut r)?),
        SEED_BY_NODE => BatchForm::Seed(decode_seed(&mut r, false)?),
        SEED_BY_CHANNEL => BatchForm::Seed(decode_seed(&mut r, true)?),
        packed::PACKED_COMPACT => BatchForm::Compact(packed::decode_packed(&mut r)?),
        _ => return Err(r.malformed("unknown batch form")),
    };
    if r.pos != raw.len() {
        return Err(r.malformed("trailing bytes after batch"));
    }
    Ok(form)
}
