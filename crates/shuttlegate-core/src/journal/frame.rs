//! The on-disk byte layout: segment header, record frame, and the scanner that walks a segment
//! telling good records from torn or corrupt bytes.
//!
//! Pure functions over byte slices: recovery, readers, the offline tools and the fuzz target
//! all use the same scanner, so they cannot disagree about what a segment holds.
//!
//! Two frame layouts exist. Version-1 segments (written by earlier builds) hold v1 frames: 48
//! bytes before the names and body. Writers now write v2 frames: varints, one packed byte, and
//! optional fields only when present (24 bytes before the names for a record stamped today
//! with no seq). Bit 31 of a frame's `len` tells them apart, frame by frame, so parsing needs no
//! segment context and both layouts stay readable everywhere.

use super::codec::CODEC_PLAIN;
use super::record::RecordKind;
use super::varint::{put_varint, unzigzag, varint_len, zigzag};

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SGJRNL\r\n";
/// On-disk format version written in new segment headers (2: v2 frames).
pub const FORMAT_VERSION: u32 = 2;
/// Oldest segment version this build reads (1: v1 frames only).
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// Segment header length: magic 8 | version u32 | first_id u64 | created_ms i64 | crc32c u32.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// `len u32 | crc u32` before each record's payload.
pub const FRAME_PREFIX_LEN: usize = 8;
/// Fixed part of a v1 payload (see [`encode_frame_v1`]).
pub const V1_PAYLOAD_FIXED_LEN: usize = 40;
/// Smallest v2 payload: id 8, ts_ms 1, packed 1, samples 1 (see [`encode_frame`]).
pub const V2_PAYLOAD_MIN_LEN: usize = 11;
/// Upper bound on the payload bytes other than the names and the body, in either layout (v2:
/// id 8, ts_ms 10, packed 1, seq 10, samples 5, raw_len 5, two name lengths of 10); what
/// callers subtract from [`MAX_PAYLOAD_LEN`] to bound a body.
pub const MAX_PAYLOAD_META_LEN: usize = 8 + 10 + 1 + 10 + 5 + 5 + 10 + 10;
/// Largest payload accepted; also bounds what a corrupt length field can make a reader buffer.
/// Far below 2^31, so bit 31 of a v1 `len` is never set.
pub const MAX_PAYLOAD_LEN: usize = 8 << 20;

/// Bit 31 of `len`: the frame is v2; the low 31 bits are the payload length.
const LEN_V2: u32 = 1 << 31;

const FLAG_SEQ: u8 = 1;
const FLAG_DEVICE: u8 = 2;
const FLAG_SESSION: u8 = 4;

/// v2 packed byte: kind in bits 0..3, codec in bits 3..5, flags in bits 5..8.
const PACKED_KIND_BITS: u8 = 0b111;
const PACKED_CODEC_SHIFT: u32 = 3;
const PACKED_CODEC_MAX: u8 = 0b11;
const PACKED_FLAGS_SHIFT: u32 = 5;

/// The longest LEB128 encoding of a u64.
const MAX_VARINT_LEN: usize = 10;

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// [`FORMAT_VERSION`] for segments this build creates; 1 for segments of earlier builds
    /// (they hold only v1 frames, and are never appended to again).
    pub version: u32,
    /// Id of the first record this segment was created for (records may be fewer after
    /// compaction, never lower).
    pub first_id: u64,
    pub created_ms: i64,
}

/// Why a segment header was rejected; the segment is quarantined.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HeaderError {
    #[error("segment is shorter than its {SEGMENT_HEADER_LEN}-byte header")]
    Short,
    #[error("bad magic (not a shuttlegate journal segment)")]
    Magic,
    #[error("header checksum mismatch")]
    Checksum,
    #[error(
        "format version {0} is not supported (this build reads versions \
         {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}; a newer build may have written it)"
    )]
    Version(u32),
}

pub fn encode_segment_header(h: &SegmentHeader) -> [u8; SEGMENT_HEADER_LEN] {
    let mut b = [0u8; SEGMENT_HEADER_LEN];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&h.version.to_le_bytes());
    b[12..20].copy_from_slice(&h.first_id.to_le_bytes());
    b[20..28].copy_from_slice(&h.created_ms.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode_segment_header(b: &[u8]) -> Result<SegmentHeader, HeaderError> {
    if b.len() < SEGMENT_HEADER_LEN {
        return Err(HeaderError::Short);
    }
    if b[0..8] != SEGMENT_MAGIC {
        return Err(HeaderError::Magic);
    }
    if crc32c::crc32c(&b[0..28]) != le_u32(&b[28..32]) {
        return Err(HeaderError::Checksum);
    }
    let version = le_u32(&b[8..12]);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(HeaderError::Version(version));
    }
    Ok(SegmentHeader {
        version,
        first_id: le_u64(&b[12..20]),
        created_ms: le_u64(&b[20..28]) as i64,
    })
}

/// A whole segment file of this build: header for `first_id`, then `records` (tests, fuzzing,
/// benchmark).
pub fn segment_file_bytes(first_id: u64, records: &[u8]) -> Vec<u8> {
    segment_file_bytes_of_version(FORMAT_VERSION, first_id, records)
}

/// A whole segment file with a version-1 header, as builds before v2 frames wrote it; fill it
/// with [`encode_frame_v1`] frames (compatibility tests, fuzz seeds).
#[doc(hidden)]
pub fn segment_file_bytes_v1(first_id: u64, records: &[u8]) -> Vec<u8> {
    segment_file_bytes_of_version(1, first_id, records)
}

fn segment_file_bytes_of_version(version: u32, first_id: u64, records: &[u8]) -> Vec<u8> {
    let mut out = encode_segment_header(&SegmentHeader {
        version,
        first_id,
        created_ms: 0,
    })
    .to_vec();
    out.extend_from_slice(records);
    out
}

/// Everything of a record except its body, as framed on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameMeta<'a> {
    pub id: u64,
    pub ts_ms: i64,
    pub kind: RecordKind,
    pub codec: u8,
    pub seq: Option<u64>,
    pub samples: u32,
    pub raw_len: u32,
    pub device: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

/// A parsed, checksum-verified frame borrowing from the segment bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<'a> {
    pub meta: FrameMeta<'a>,
    pub body: &'a [u8],
    /// The whole frame (prefix + payload), as stored.
    pub bytes: &'a [u8],
}

/// Appends one record frame to `out`, in the v2 layout:
///
/// ```text
/// len u32 (bit 31 set; low 31 bits: payload length) | crc32c u32 (over the 4 len bytes as
/// stored and the payload) | payload[len]:
///   id u64 (fixed, at payload offset 0: the scanner resyncs on it)
///   | ts_ms zz-varint
///   | packed u8: kind (bits 0..3) | codec << 3 (2 bits) | flags << 5 (1 seq, 2 device, 4 session)
///   | seq varint (if flag) | samples varint | raw_len varint (unless codec is plain: then it
///   is the body length) | device: len varint + utf8 (if flag) | session: the same (if flag)
///   | body
/// ```
/// Varints are LEB128, minimal; `zz` is zigzag. A record v2 cannot express (a codec above 3,
/// or a plain body whose `raw_len` differs from its length) is written as a v1 frame instead,
/// which every reader also parses: framing never changes what is read back.
///
/// Callers bound device and session ids and bodies so that the payload stays within
/// [`MAX_PAYLOAD_LEN`] (see [`MAX_PAYLOAD_META_LEN`]).
pub fn encode_frame(meta: &FrameMeta, body: &[u8], out: &mut Vec<u8>) {
    if !fits_v2(meta, body.len()) {
        return encode_frame_v1(meta, body, out);
    }
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX_LEN]);
    out.extend_from_slice(&meta.id.to_le_bytes());
    put_varint(out, zigzag(meta.ts_ms));
    out.push(packed(meta));
    if let Some(seq) = meta.seq {
        put_varint(out, seq);
    }
    put_varint(out, u64::from(meta.samples));
    if meta.codec != CODEC_PLAIN {
        put_varint(out, u64::from(meta.raw_len));
    }
    for name in [meta.device, meta.session_id].into_iter().flatten() {
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(body);
    let len = out.len() - start - FRAME_PREFIX_LEN;
    debug_assert!(len <= MAX_PAYLOAD_LEN, "caller bounds the payload");
    out[start..start + 4].copy_from_slice(&(len as u32 | LEN_V2).to_le_bytes());
    seal(out, start);
}

/// Appends one record frame in the v1 layout (what builds before v2 frames wrote; still
/// written for records v2 cannot express, and by compatibility tests):
///
/// ```text
/// len u32 | crc32c u32 (over the len bytes and the payload) | payload[len]:
///   0 id u64 | 8 ts_ms i64 | 16 kind u8 | 17 codec u8 | 18 flags u8 (1 seq, 2 device, 4 session)
///   | 19 reserved u8 = 0 | 20 seq u64 | 28 samples u32 | 32 raw_len u32 | 36 device_len u16
///   | 38 session_len u16 | 40 device utf8 | session utf8 | body
/// ```
#[doc(hidden)]
pub fn encode_frame_v1(meta: &FrameMeta, body: &[u8], out: &mut Vec<u8>) {
    let device = meta.device.unwrap_or("").as_bytes();
    let session = meta.session_id.unwrap_or("").as_bytes();
    // Callers bound device and session ids (u16) and bodies (MAX_PAYLOAD_LEN) before framing.
    let len = V1_PAYLOAD_FIXED_LEN + device.len() + session.len() + body.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&meta.id.to_le_bytes());
    out.extend_from_slice(&meta.ts_ms.to_le_bytes());
    out.extend_from_slice(&[meta.kind as u8, meta.codec, flags(meta), 0]);
    out.extend_from_slice(&meta.seq.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.samples.to_le_bytes());
    out.extend_from_slice(&meta.raw_len.to_le_bytes());
    out.extend_from_slice(&(device.len() as u16).to_le_bytes());
    out.extend_from_slice(&(session.len() as u16).to_le_bytes());
    out.extend_from_slice(device);
    out.extend_from_slice(session);
    out.extend_from_slice(body);
    seal(out, start);
}

/// Fills in the CRC of the frame starting at `start` (its len is already written).
fn seal(out: &mut [u8], start: usize) {
    let crc = frame_crc(&out[start..start + 4], &out[start + FRAME_PREFIX_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(len_bytes: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), payload)
}

fn flags(meta: &FrameMeta) -> u8 {
    (u8::from(meta.seq.is_some()) * FLAG_SEQ)
        | (u8::from(meta.device.is_some()) * FLAG_DEVICE)
        | (u8::from(meta.session_id.is_some()) * FLAG_SESSION)
}

fn packed(meta: &FrameMeta) -> u8 {
    meta.kind as u8 | (meta.codec << PACKED_CODEC_SHIFT) | (flags(meta) << PACKED_FLAGS_SHIFT)
}

/// Whether the v2 layout can hold `meta` exactly (else [`encode_frame`] writes v1).
fn fits_v2(meta: &FrameMeta, body_len: usize) -> bool {
    meta.codec <= PACKED_CODEC_MAX
        && (meta.codec != CODEC_PLAIN || body_len == meta.raw_len as usize)
}

/// Size of the frame [`encode_frame`] writes for `meta` and a body of `body_len` bytes.
pub fn frame_len(meta: &FrameMeta, body_len: usize) -> usize {
    let names = [meta.device, meta.session_id].into_iter().flatten();
    if !fits_v2(meta, body_len) {
        return FRAME_PREFIX_LEN
            + V1_PAYLOAD_FIXED_LEN
            + names.map(str::len).sum::<usize>()
            + body_len;
    }
    FRAME_PREFIX_LEN
        + 8
        + varint_len(zigzag(meta.ts_ms))
        + 1
        + meta.seq.map_or(0, varint_len)
        + varint_len(u64::from(meta.samples))
        + if meta.codec == CODEC_PLAIN {
            0
        } else {
            varint_len(u64::from(meta.raw_len))
        }
        + names
            .map(|n| varint_len(n.len() as u64) + n.len())
            .sum::<usize>()
        + body_len
}

fn kind_of(tag: u8) -> Option<RecordKind> {
    Some(match tag {
        1 => RecordKind::Batch,
        2 => RecordKind::Swing,
        3 => RecordKind::Summary,
        4 => RecordKind::Event,
        _ => return None,
    })
}

/// What the bytes at the start of a buffer are.
#[derive(Debug, PartialEq)]
pub enum Parse<'a> {
    /// A complete frame with a valid checksum.
    Frame(Frame<'a>),
    /// The buffer ends inside a frame whose length field is plausible.
    Incomplete,
    /// Not a valid frame (bad length, checksum, or fields).
    Invalid,
}

/// Parses the frame at the start of `buf`, in either layout.
pub fn parse_frame(buf: &[u8]) -> Parse<'_> {
    if buf.len() < FRAME_PREFIX_LEN {
        return Parse::Incomplete;
    }
    let stored_len = le_u32(&buf[0..4]);
    let v2 = stored_len & LEN_V2 != 0;
    let len = (stored_len & !LEN_V2) as usize;
    let min = if v2 {
        V2_PAYLOAD_MIN_LEN
    } else {
        V1_PAYLOAD_FIXED_LEN
    };
    if !(min..=MAX_PAYLOAD_LEN).contains(&len) {
        return Parse::Invalid;
    }
    let Some(bytes) = buf.get(..FRAME_PREFIX_LEN + len) else {
        return Parse::Incomplete;
    };
    let payload = &bytes[FRAME_PREFIX_LEN..];
    if frame_crc(&bytes[0..4], payload) != le_u32(&bytes[4..8]) {
        return Parse::Invalid;
    }
    let parsed = if v2 {
        parse_payload_v2(payload)
    } else {
        parse_payload_v1(payload)
    };
    match parsed {
        Some((meta, body)) => Parse::Frame(Frame { meta, body, bytes }),
        None => Parse::Invalid,
    }
}

/// A v1 payload; the caller checked `p.len() >= V1_PAYLOAD_FIXED_LEN`.
fn parse_payload_v1(p: &[u8]) -> Option<(FrameMeta<'_>, &[u8])> {
    let kind = kind_of(p[16])?;
    let flags = p[18];
    let dlen = usize::from(le_u16(&p[36..38]));
    let slen = usize::from(le_u16(&p[38..40]));
    let dev_end = V1_PAYLOAD_FIXED_LEN.checked_add(dlen)?;
    let ses_end = dev_end.checked_add(slen)?;
    let device = std::str::from_utf8(p.get(V1_PAYLOAD_FIXED_LEN..dev_end)?).ok()?;
    let session = std::str::from_utf8(p.get(dev_end..ses_end)?).ok()?;
    let meta = FrameMeta {
        id: le_u64(&p[0..8]),
        ts_ms: le_u64(&p[8..16]) as i64,
        kind,
        codec: p[17],
        seq: (flags & FLAG_SEQ != 0).then(|| le_u64(&p[20..28])),
        samples: le_u32(&p[28..32]),
        raw_len: le_u32(&p[32..36]),
        device: (flags & FLAG_DEVICE != 0).then_some(device),
        session_id: (flags & FLAG_SESSION != 0).then_some(session),
    };
    Some((meta, &p[ses_end..]))
}

/// A v2 payload; the caller checked `p.len() >= V2_PAYLOAD_MIN_LEN`. `None` for anything out
/// of bounds, overlong or not of its field's type.
fn parse_payload_v2(p: &[u8]) -> Option<(FrameMeta<'_>, &[u8])> {
    let mut r = Cursor { rest: p };
    let id = le_u64(r.take(8)?);
    let ts_ms = unzigzag(r.varint()?);
    let packed = r.take(1)?[0];
    let kind = kind_of(packed & PACKED_KIND_BITS)?;
    let codec = (packed >> PACKED_CODEC_SHIFT) & PACKED_CODEC_MAX;
    let flags = packed >> PACKED_FLAGS_SHIFT;
    let seq = if flags & FLAG_SEQ != 0 {
        Some(r.varint()?)
    } else {
        None
    };
    let samples = u32::try_from(r.varint()?).ok()?;
    let raw_len = if codec == CODEC_PLAIN {
        None
    } else {
        Some(u32::try_from(r.varint()?).ok()?)
    };
    let device = if flags & FLAG_DEVICE != 0 {
        Some(r.name()?)
    } else {
        None
    };
    let session_id = if flags & FLAG_SESSION != 0 {
        Some(r.name()?)
    } else {
        None
    };
    let body = r.rest;
    let meta = FrameMeta {
        id,
        ts_ms,
        kind,
        codec,
        seq,
        samples,
        // A payload is at most MAX_PAYLOAD_LEN (< 2^31) bytes, so a plain body's length fits.
        raw_len: raw_len.unwrap_or(body.len() as u32),
        device,
        session_id,
    };
    Some((meta, body))
}

/// Reads a v2 payload front to back; every read is bounds-checked.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    /// A minimal LEB128 u64: at most 10 bytes, no bits above 64, no trailing zero group.
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let b = *self.rest.get(i)?;
            let group = u64::from(b & 0x7f);
            let shift = 7 * i as u32;
            if i == MAX_VARINT_LEN - 1 && group > 1 {
                return None;
            }
            v |= group << shift;
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return None;
                }
                self.rest = &self.rest[i + 1..];
                return Some(v);
            }
        }
        None
    }

    /// A varint length then that many bytes of UTF-8.
    fn name(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// One step of a scan over a segment's record area.
#[derive(Debug, PartialEq)]
pub enum Step<'a> {
    /// A good record at the start of the buffer, `frame.bytes.len()` long.
    Record(Frame<'a>),
    /// `skip` bytes at the start are not records, and a good record follows them.
    Corrupt { skip: usize },
    /// The buffer holds nothing more (it is empty).
    End,
    /// Everything left is a torn write: no good record starts anywhere in it.
    Torn,
    /// More bytes are needed to decide (only when the caller said more may come).
    NeedMore,
}

/// Decides what the bytes at the start of `buf` are. `prev_id` is the id of the last good record
/// before them (0 for none): a later record must have a larger id, which is also what makes
/// resynchronisation after corruption cheap (a random offset almost never passes it).
/// `at_eof` says whether `buf` runs to the end of the data.
pub fn next_step(buf: &[u8], prev_id: u64, at_eof: bool) -> Step<'_> {
    if buf.is_empty() {
        return if at_eof { Step::End } else { Step::NeedMore };
    }
    match parse_frame(buf) {
        Parse::Frame(f) if f.meta.id > prev_id => return Step::Record(f),
        Parse::Incomplete if !at_eof => return Step::NeedMore,
        _ => {}
    }
    match resync(buf, prev_id) {
        Some(skip) => Step::Corrupt { skip },
        None if at_eof => Step::Torn,
        None => Step::NeedMore,
    }
}

/// The first offset after 0 where a good frame with an id above `prev_id` starts. Both layouts
/// keep the id at payload offset 0, so one cheap read rules out almost every offset.
fn resync(buf: &[u8], prev_id: u64) -> Option<usize> {
    // The smallest frame either layout can have.
    const MIN_FRAME_LEN: usize = FRAME_PREFIX_LEN + V2_PAYLOAD_MIN_LEN;
    (1..buf.len().saturating_sub(MIN_FRAME_LEN - 1)).find(|&at| {
        let rest = &buf[at..];
        let id = le_u64(&rest[FRAME_PREFIX_LEN..FRAME_PREFIX_LEN + 8]);
        // Ids grow by one per record; a gap of 2^40 means the bytes are not an id.
        id > prev_id
            && id - prev_id < (1 << 40)
            && matches!(parse_frame(rest), Parse::Frame(f) if f.meta.id == id)
    })
}

/// A whole-buffer scan outcome (recovery of a segment read entirely into memory).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ScanSummary {
    /// Offset (within the scanned buffer) where good data ends: records after it are torn.
    pub valid_len: usize,
    /// Corrupt byte ranges skipped: (offset, length).
    pub corrupt: Vec<(usize, usize)>,
    /// True when a torn tail follows `valid_len`.
    pub torn: bool,
}

/// Walks every record of `buf` (which runs to the end of the data), calling `visit(offset,
/// frame)` for each good one.
pub fn scan_all<'a>(buf: &'a [u8], mut visit: impl FnMut(usize, &Frame<'a>)) -> ScanSummary {
    let mut at = 0usize;
    let mut prev_id = 0u64;
    let mut summary = ScanSummary::default();
    loop {
        match next_step(&buf[at..], prev_id, true) {
            Step::Record(f) => {
                visit(at, &f);
                prev_id = f.meta.id;
                at += f.bytes.len();
                summary.valid_len = at;
            }
            Step::Corrupt { skip } => {
                summary.corrupt.push((at, skip));
                at += skip;
            }
            Step::End | Step::NeedMore => break,
            Step::Torn => {
                summary.torn = true;
                break;
            }
        }
    }
    summary
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Which frame layout a test segment is written in.
    #[derive(Debug, Clone, Copy)]
    enum Layout {
        V1,
        V2,
        /// Alternating, v1 first (a segment of either version may be scanned by any reader).
        Mixed,
    }

    const LAYOUTS: [Layout; 3] = [Layout::V1, Layout::V2, Layout::Mixed];

    fn meta(id: u64) -> FrameMeta<'static> {
        FrameMeta {
            id,
            ts_ms: 1_732_400_000_000 + id as i64,
            kind: RecordKind::Batch,
            codec: 1,
            seq: Some(id * 2),
            samples: 30,
            raw_len: 99,
            device: Some("2025001"),
            session_id: Some("s-1"),
        }
    }

    fn segment(ids: &[u64], layout: Layout) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            offsets.push(out.len());
            let body = [id as u8; 37];
            match (layout, i % 2) {
                (Layout::V1, _) | (Layout::Mixed, 0) => encode_frame_v1(&meta(id), &body, &mut out),
                _ => encode_frame(&meta(id), &body, &mut out),
            }
        }
        (out, offsets)
    }

    /// A v2 frame around an arbitrary payload, with a correct CRC.
    fn v2_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32 | LEN_V2).to_le_bytes().to_vec();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(payload);
        seal(&mut out, 0);
        out
    }

    /// A v2 payload up to the packed byte: id 1, ts 0, a batch with plain codec and `flags`.
    fn v2_payload_head(flags: u8) -> Vec<u8> {
        let mut p = 1u64.to_le_bytes().to_vec();
        p.push(0);
        p.push(RecordKind::Batch as u8 | (flags << PACKED_FLAGS_SHIFT));
        p
    }

    fn parsed(buf: &[u8]) -> Frame<'_> {
        match parse_frame(buf) {
            Parse::Frame(f) => f,
            other => panic!("not a frame: {other:?}"),
        }
    }

    #[test]
    fn a_frame_round_trips_in_both_layouts() {
        let mut v2 = Vec::new();
        encode_frame(&meta(7), &[7u8; 37], &mut v2);
        let f = parsed(&v2);
        assert_eq!(f.meta, meta(7));
        assert_eq!(f.body, &[7u8; 37]);
        assert_eq!(f.bytes.len(), frame_len(&meta(7), 37));
        assert_ne!(le_u32(&v2) & LEN_V2, 0, "writers write v2");

        let mut v1 = Vec::new();
        encode_frame_v1(&meta(7), &[7u8; 37], &mut v1);
        let f = parsed(&v1);
        assert_eq!(f.meta, meta(7));
        assert_eq!(f.body, &[7u8; 37]);
        assert_eq!(f.bytes.len(), FRAME_PREFIX_LEN + 40 + 7 + 3 + 37);
        assert_eq!(le_u32(&v1) & LEN_V2, 0);
    }

    /// The figure of issue #3's frame budget: a 100-sample compact batch record.
    #[test]
    fn a_batch_frame_costs_40_bytes_in_v2_against_61_in_v1() {
        let batch = FrameMeta {
            id: 123_456,
            ts_ms: 1_764_000_000_000,
            kind: RecordKind::Batch,
            codec: CODEC_PLAIN,
            seq: Some(42),
            samples: 100,
            raw_len: 250,
            device: Some("2025001"),
            session_id: Some("s-0017"),
        };
        let body = [0x5a; 250];
        let (mut v1, mut v2) = (Vec::new(), Vec::new());
        encode_frame_v1(&batch, &body, &mut v1);
        encode_frame(&batch, &body, &mut v2);
        // v1: prefix 8 + fixed 40 + names 13. v2: prefix 8 + id 8 + ts 6 + packed 1 + seq 1
        // + samples 1 + names 2 × (1 + len) = 40.
        assert_eq!(v1.len() - body.len(), 61);
        assert_eq!(v2.len() - body.len(), 40);
        assert_eq!(frame_len(&batch, body.len()), v2.len());
        assert_eq!(parsed(&v2).meta, batch);
    }

    #[test]
    fn what_v2_cannot_express_is_written_as_v1_and_reads_back_the_same() {
        let odd_codec = FrameMeta {
            codec: 5,
            ..meta(3)
        };
        let plain_len_differs = FrameMeta {
            codec: CODEC_PLAIN,
            raw_len: 1,
            ..meta(4)
        };
        for m in [odd_codec, plain_len_differs] {
            let mut out = Vec::new();
            encode_frame(&m, b"body", &mut out);
            assert_eq!(le_u32(&out) & LEN_V2, 0, "{m:?}");
            assert_eq!(out.len(), frame_len(&m, 4));
            let f = parsed(&out);
            assert_eq!(f.meta, m);
            assert_eq!(f.body, b"body");
        }
    }

    #[test]
    fn header_round_trips_both_versions_and_rejects_garbage() {
        for version in [1, FORMAT_VERSION] {
            let h = SegmentHeader {
                version,
                first_id: 42,
                created_ms: 9,
            };
            assert_eq!(decode_segment_header(&encode_segment_header(&h)), Ok(h));
        }
        let h = SegmentHeader {
            version: FORMAT_VERSION,
            first_id: 42,
            created_ms: 9,
        };
        for version in [0, FORMAT_VERSION + 1] {
            let b = encode_segment_header(&SegmentHeader { version, ..h });
            assert_eq!(
                decode_segment_header(&b),
                Err(HeaderError::Version(version))
            );
        }
        assert_eq!(
            HeaderError::Version(3).to_string(),
            "format version 3 is not supported (this build reads versions 1 to 2; a newer \
             build may have written it)"
        );
        let mut b = encode_segment_header(&h);
        b[13] ^= 1;
        assert_eq!(decode_segment_header(&b), Err(HeaderError::Checksum));
        assert_eq!(decode_segment_header(&b[..5]), Err(HeaderError::Short));
        assert_eq!(decode_segment_header(&[0; 40]), Err(HeaderError::Magic));
        assert_eq!(
            decode_segment_header(&segment_file_bytes_v1(5, &[]))
                .unwrap()
                .version,
            1
        );
    }

    #[test]
    fn the_length_lower_bound_is_per_layout() {
        // A v2 payload of 11 bytes is a whole record (batch, no names, no seq, no body).
        let mut p = v2_payload_head(0);
        p.push(0);
        assert_eq!(p.len(), V2_PAYLOAD_MIN_LEN);
        assert_eq!(parsed(&v2_frame(&p)).meta.samples, 0);
        assert_eq!(parse_frame(&v2_frame(&p[..10])), Parse::Invalid);
        // The same 11 bytes as a v1 length are too short.
        let mut v1 = 11u32.to_le_bytes().to_vec();
        v1.extend_from_slice(&[0; 4]);
        v1.extend_from_slice(&p);
        seal(&mut v1, 0);
        assert_eq!(parse_frame(&v1), Parse::Invalid);
    }

    #[test]
    fn corrupt_v2_varints_are_invalid() {
        let with_samples = |samples: &[u8]| {
            let mut p = v2_payload_head(0);
            p.extend_from_slice(samples);
            parse_frame(&v2_frame(&p)) == Parse::Invalid
        };
        // Runs off the end of the payload.
        assert!(with_samples(&[0x80]));
        // Longer than 10 bytes.
        assert!(with_samples(&[0xff; 11]));
        // 10 bytes whose last group has bits above 2^64.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(with_samples(&over));
        // Not minimal (a trailing zero group).
        assert!(with_samples(&[0x85, 0x00]));
        // Fits a u64 but not the u32 field.
        assert!(with_samples(&[0x80, 0x80, 0x80, 0x80, 0x10]));
        assert!(
            !with_samples(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            "u32::MAX fits"
        );
        // A name length past the end, and a name that is not UTF-8.
        let mut p = v2_payload_head(FLAG_DEVICE);
        p.extend_from_slice(&[0, 5, b'a']);
        assert_eq!(parse_frame(&v2_frame(&p)), Parse::Invalid);
        let mut p = v2_payload_head(FLAG_DEVICE);
        p.extend_from_slice(&[0, 1, 0xff]);
        assert_eq!(parse_frame(&v2_frame(&p)), Parse::Invalid);
        // An unknown kind.
        let mut p = v2_payload_head(0);
        p[9] = 5;
        p.push(0);
        assert_eq!(parse_frame(&v2_frame(&p)), Parse::Invalid);
    }

    #[test]
    fn varints_take_the_bytes_their_length_says() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut c = Cursor { rest: &out };
            assert_eq!(c.varint(), Some(v));
            assert!(c.rest.is_empty());
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX, 1_764_000_000_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn a_corrupt_middle_record_is_skipped_and_the_rest_found() {
        for layout in LAYOUTS {
            let (mut buf, offsets) = segment(&[1, 2, 3, 4], layout);
            buf[offsets[1] + 20] ^= 0x40;
            let mut ids = Vec::new();
            let s = scan_all(&buf, |_, f| ids.push(f.meta.id));
            assert_eq!(ids, vec![1, 3, 4], "{layout:?}");
            assert_eq!(s.corrupt, vec![(offsets[1], offsets[2] - offsets[1])]);
            assert!(!s.torn);
            assert_eq!(s.valid_len, buf.len());
        }
    }

    #[test]
    fn truncation_at_every_offset_of_the_last_record_is_a_torn_tail() {
        for layout in LAYOUTS {
            let (buf, offsets) = segment(&[1, 2, 3], layout);
            for cut in offsets[2] + 1..buf.len() {
                let mut ids = Vec::new();
                let s = scan_all(&buf[..cut], |_, f| ids.push(f.meta.id));
                assert_eq!(ids, vec![1, 2], "{layout:?} cut at {cut}");
                assert!(s.torn, "{layout:?} cut at {cut}");
                assert_eq!(s.valid_len, offsets[2]);
            }
        }
    }

    #[test]
    fn an_incomplete_frame_asks_for_more_unless_at_eof() {
        for layout in LAYOUTS {
            let (buf, _) = segment(&[1], layout);
            assert_eq!(next_step(&buf[..20], 0, false), Step::NeedMore);
            assert_eq!(next_step(&buf[..20], 0, true), Step::Torn);
        }
        assert_eq!(next_step(&[], 0, true), Step::End);
    }

    fn any_meta() -> impl Strategy<Value = (FrameMeta<'static>, Vec<u8>)> {
        let names = prop::sample::select(vec![
            "",
            "2025001",
            "s-0017",
            "é",
            "device-with-a-long-name",
        ]);
        (
            (
                any::<u64>(),
                any::<i64>(),
                1u8..=4,
                0u8..=5,
                any::<Option<u64>>(),
            ),
            (any::<u32>(), any::<u32>(), any::<bool>()),
            (prop::option::of(names.clone()), prop::option::of(names)),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(
                |((id, ts_ms, kind, codec, seq), (samples, raw_len, raw_is_len), (d, s), body)| {
                    let meta = FrameMeta {
                        id,
                        ts_ms,
                        kind: kind_of(kind).expect("1..=4 are kinds"),
                        codec,
                        seq,
                        samples,
                        raw_len: if raw_is_len {
                            body.len() as u32
                        } else {
                            raw_len
                        },
                        device: d,
                        session_id: s,
                    };
                    (meta, body)
                },
            )
    }

    proptest! {
        // About 1 in 11 random payloads is a valid v2 record: enough cases to see a few hundred.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn a_v2_payload_parses_only_in_its_one_canonical_form(
            payload in prop::collection::vec(any::<u8>(), 0..80),
        ) {
            let frame = v2_frame(&payload);
            if let Parse::Frame(f) = parse_frame(&frame) {
                let mut again = Vec::new();
                encode_frame(&f.meta, f.body, &mut again);
                prop_assert_eq!(again, frame);
            }
        }
    }

    proptest! {
        #[test]
        fn any_record_round_trips_at_the_length_frame_len_says((m, body) in any_meta()) {
            let mut out = vec![0xee; 3];
            encode_frame(&m, &body, &mut out);
            prop_assert_eq!(out.len() - 3, frame_len(&m, body.len()));
            let f = parsed(&out[3..]);
            prop_assert_eq!(f.meta, m);
            prop_assert_eq!(f.body, &body[..]);
        }

        #[test]
        fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let s = scan_all(&bytes, |_, _| {});
            prop_assert!(s.valid_len <= bytes.len());
        }

        #[test]
        fn one_flipped_bit_loses_at_most_its_record(
            layout in prop::sample::select(LAYOUTS.to_vec()),
            id_count in 2u64..8,
            pick in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let ids: Vec<u64> = (1..=id_count).collect();
            let (mut buf, offsets) = segment(&ids, layout);
            let at = pick.index(buf.len());
            buf[at] ^= 1 << bit;
            let hit = offsets.iter().rposition(|&o| o <= at).unwrap_or(0);
            let mut seen = Vec::new();
            scan_all(&buf, |_, f| seen.push(f.meta.id));
            let expected: Vec<u64> = ids.iter().copied().filter(|&i| i != ids[hit]).collect();
            // The last record damaged is indistinguishable from a torn tail: it is dropped too.
            prop_assert_eq!(seen, expected);
        }
    }
}
