//! The on-disk byte layout: segment header, record frame, and the scanner that walks a segment
//! telling good records from torn or corrupt bytes.
//!
//! Pure functions over byte slices: recovery, readers, the offline tools and the fuzz target
//! all use the same scanner, so they cannot disagree about what a segment holds.

use super::record::RecordKind;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SGJRNL\r\n";
/// On-disk format version (segment header and record frame).
pub const FORMAT_VERSION: u32 = 1;
/// Segment header length: magic 8 | version u32 | first_id u64 | created_ms i64 | crc32c u32.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// `len u32 | crc u32` before each record's payload.
pub const FRAME_PREFIX_LEN: usize = 8;
/// Fixed part of a payload (see [`encode_frame`]).
pub const PAYLOAD_FIXED_LEN: usize = 40;
/// Largest payload accepted; also bounds what a corrupt length field can make a reader buffer.
pub const MAX_PAYLOAD_LEN: usize = 8 << 20;

const FLAG_SEQ: u8 = 1;
const FLAG_DEVICE: u8 = 2;
const FLAG_SESSION: u8 = 4;

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
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
    #[error("format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    Version(u32),
}

pub fn encode_segment_header(h: &SegmentHeader) -> [u8; SEGMENT_HEADER_LEN] {
    let mut b = [0u8; SEGMENT_HEADER_LEN];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
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
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(SegmentHeader {
        first_id: le_u64(&b[12..20]),
        created_ms: le_u64(&b[20..28]) as i64,
    })
}

/// A whole segment file: header for `first_id`, then `records` (tests and fuzzing).
pub fn segment_file_bytes(first_id: u64, records: &[u8]) -> Vec<u8> {
    let mut out = encode_segment_header(&SegmentHeader {
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

/// Appends one record frame to `out`.
///
/// ```text
/// len u32 | crc32c u32 (over the len bytes and the payload) | payload[len]:
///   0 id u64 | 8 ts_ms i64 | 16 kind u8 | 17 codec u8 | 18 flags u8 (1 seq, 2 device, 4 session)
///   | 19 reserved u8 = 0 | 20 seq u64 | 28 samples u32 | 32 raw_len u32 | 36 device_len u16
///   | 38 session_len u16 | 40 device utf8 | session utf8 | body
/// ```
pub fn encode_frame(meta: &FrameMeta, body: &[u8], out: &mut Vec<u8>) {
    let device = meta.device.unwrap_or("").as_bytes();
    let session = meta.session_id.unwrap_or("").as_bytes();
    // Callers bound device and session ids (u16) and bodies (MAX_PAYLOAD_LEN) before framing.
    let len = PAYLOAD_FIXED_LEN + device.len() + session.len() + body.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&meta.id.to_le_bytes());
    out.extend_from_slice(&meta.ts_ms.to_le_bytes());
    let flags = (u8::from(meta.seq.is_some()) * FLAG_SEQ)
        | (u8::from(meta.device.is_some()) * FLAG_DEVICE)
        | (u8::from(meta.session_id.is_some()) * FLAG_SESSION);
    out.extend_from_slice(&[meta.kind as u8, meta.codec, flags, 0]);
    out.extend_from_slice(&meta.seq.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.samples.to_le_bytes());
    out.extend_from_slice(&meta.raw_len.to_le_bytes());
    out.extend_from_slice(&(device.len() as u16).to_le_bytes());
    out.extend_from_slice(&(session.len() as u16).to_le_bytes());
    out.extend_from_slice(device);
    out.extend_from_slice(session);
    out.extend_from_slice(body);
    let crc = frame_crc(&out[start..start + 4], &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(len_bytes: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), payload)
}

/// Size of the frame `encode_frame` would write.
pub fn frame_len(device: Option<&str>, session: Option<&str>, body_len: usize) -> usize {
    FRAME_PREFIX_LEN
        + PAYLOAD_FIXED_LEN
        + device.map_or(0, str::len)
        + session.map_or(0, str::len)
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

/// Parses the frame at the start of `buf`.
pub fn parse_frame(buf: &[u8]) -> Parse<'_> {
    if buf.len() < FRAME_PREFIX_LEN {
        return Parse::Incomplete;
    }
    let len = le_u32(&buf[0..4]) as usize;
    if !(PAYLOAD_FIXED_LEN..=MAX_PAYLOAD_LEN).contains(&len) {
        return Parse::Invalid;
    }
    let Some(bytes) = buf.get(..FRAME_PREFIX_LEN + len) else {
        return Parse::Incomplete;
    };
    let payload = &bytes[FRAME_PREFIX_LEN..];
    if frame_crc(&bytes[0..4], payload) != le_u32(&bytes[4..8]) {
        return Parse::Invalid;
    }
    match parse_payload(payload) {
        Some((meta, body)) => Parse::Frame(Frame { meta, body, bytes }),
        None => Parse::Invalid,
    }
}

fn parse_payload(p: &[u8]) -> Option<(FrameMeta<'_>, &[u8])> {
    let kind = kind_of(p[16])?;
    let flags = p[18];
    let dlen = usize::from(le_u16(&p[36..38]));
    let slen = usize::from(le_u16(&p[38..40]));
    let dev_end = PAYLOAD_FIXED_LEN.checked_add(dlen)?;
    let ses_end = dev_end.checked_add(slen)?;
    let device = std::str::from_utf8(p.get(PAYLOAD_FIXED_LEN..dev_end)?).ok()?;
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

/// The first offset after 0 where a good frame with an id above `prev_id` starts.
fn resync(buf: &[u8], prev_id: u64) -> Option<usize> {
    (1..buf
        .len()
        .saturating_sub(FRAME_PREFIX_LEN + PAYLOAD_FIXED_LEN - 1))
        .find(|&at| {
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

    fn segment(ids: &[u64]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for &id in ids {
            offsets.push(out.len());
            encode_frame(&meta(id), &[id as u8; 37], &mut out);
        }
        (out, offsets)
    }

    #[test]
    fn a_frame_round_trips() {
        let (buf, _) = segment(&[7]);
        let Parse::Frame(f) = parse_frame(&buf) else {
            panic!("not a frame")
        };
        assert_eq!(f.meta, meta(7));
        assert_eq!(f.body, &[7u8; 37]);
        assert_eq!(f.bytes.len(), frame_len(Some("2025001"), Some("s-1"), 37));
    }

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let h = SegmentHeader {
            first_id: 42,
            created_ms: 9,
        };
        let mut b = encode_segment_header(&h);
        assert_eq!(decode_segment_header(&b), Ok(h));
        b[13] ^= 1;
        assert_eq!(decode_segment_header(&b), Err(HeaderError::Checksum));
        assert_eq!(decode_segment_header(&b[..5]), Err(HeaderError::Short));
        assert_eq!(decode_segment_header(&[0; 40]), Err(HeaderError::Magic));
    }

    #[test]
    fn a_corrupt_middle_record_is_skipped_and_the_rest_found() {
        let (mut buf, offsets) = segment(&[1, 2, 3, 4]);
        buf[offsets[1] + 20] ^= 0x40;
        let mut ids = Vec::new();
        let s = scan_all(&buf, |_, f| ids.push(f.meta.id));
        assert_eq!(ids, vec![1, 3, 4]);
        assert_eq!(s.corrupt, vec![(offsets[1], offsets[2] - offsets[1])]);
        assert!(!s.torn);
        assert_eq!(s.valid_len, buf.len());
    }

    #[test]
    fn truncation_at_every_offset_of_the_last_record_is_a_torn_tail() {
        let (buf, offsets) = segment(&[1, 2, 3]);
        for cut in offsets[2] + 1..buf.len() {
            let mut ids = Vec::new();
            let s = scan_all(&buf[..cut], |_, f| ids.push(f.meta.id));
            assert_eq!(ids, vec![1, 2], "cut at {cut}");
            assert!(s.torn, "cut at {cut}");
            assert_eq!(s.valid_len, offsets[2]);
        }
    }

    #[test]
    fn an_incomplete_frame_asks_for_more_unless_at_eof() {
        let (buf, _) = segment(&[1]);
        assert_eq!(next_step(&buf[..20], 0, false), Step::NeedMore);
        assert_eq!(next_step(&buf[..20], 0, true), Step::Torn);
        assert_eq!(next_step(&[], 0, true), Step::End);
    }

    proptest! {
        #[test]
        fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let s = scan_all(&bytes, |_, _| {});
            prop_assert!(s.valid_len <= bytes.len());
        }

        #[test]
        fn one_flipped_bit_loses_at_most_its_record(id_count in 2u64..8, pick in any::<prop::sample::Index>(), bit in 0u8..8) {
            let ids: Vec<u64> = (1..=id_count).collect();
            let (mut buf, offsets) = segment(&ids);
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
