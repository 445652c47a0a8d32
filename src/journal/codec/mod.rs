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

mod packed;

use std::cell::RefCell;

use super::predict::Predictor;
use super::varint::{put_varint, put_zz, unzigzag, zigzag};

use crate::batch::{BatchForm, CompactBatch, SeedBatch, SeedFrame, SensorBatch};

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

/// How integer columns are written (the float mode is the same in all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    /// zz-varints of offsets or differences, for zstd to compress.
    Varints,
    /// Offsets or differences, Rice-coded.
    Rice,
    /// Residuals of the best [`Predictor`], Rice-coded.
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

// ---- compact form ----

/// Writes a compact batch: in the packed layout (tag 4) when every column is integer-valued and
/// predicted columns are asked for, else in the first layout (tag 1).
fn encode_compact(c: &CompactBatch, out: &mut Vec<u8>, coding: Coding) {
    if coding == Coding::Predicted && packed::encode_packed(c, out) {
        return;
    }
    encode_compact_columns(c, out, coding);
}

/// The first compact layout (tag 1): a column kind per column, any of them a float column.
fn encode_compact_columns(c: &CompactBatch, out: &mut Vec<u8>, coding: Coding) {
    out.push(1);
    put_varint(out, u64::from(c.sensor_id));
    put_zz(out, c.t0);
    out.extend_from_slice(&c.rate_hz.to_le_bytes());
    out.push(c.channels);
    let (layered, rows, columns) = compact_columns(c);
    out.push(u8::from(layered));
    put_varint(out, rows as u64);
    for column in &columns {
        encode_column(column, out, coding);
    }
}

/// A compact batch's columns, for both compact layouts: `channels` columns of `rows` values
/// (true), or, for a sample count that is not rows × channels (or no channels), every sample
/// in one flat column (false), so nothing the device sent is lost.
fn compact_columns(c: &CompactBatch) -> (bool, usize, Vec<Vec<f32>>) {
    let ch = usize::from(c.channels);
    if ch == 0 || !c.samples.len().is_multiple_of(ch) {
        return (false, c.samples.len(), vec![c.samples.clone()]);
    }
    let rows = c.samples.len() / ch;
    let column = |k: usize| (0..rows).map(|i| c.samples[i * ch + k]).collect();
    (true, rows, (0..ch).map(column).collect())
}

fn decode_compact(r: &mut Reader) -> Result<CompactBatch, CodecError> {
    let sensor_id = u32::try_from(r.varint()?).map_err(|_| r.malformed("sensor_id"))?;
    let t0 = r.zz()?;
    let rate_hz = f64::from_le_bytes(r.array::<8>()?);
    let channels = r.u8()?;
    let layout = r.u8()?;
    let ch = usize::from(channels);
    let samples = match layout {
        0 => {
            let n = r.count()?;
            r.column(n)?
        }
        1 => {
            let rows = r.count()?;
            // Every value takes at least one bit (Rice-coded zero), so a count beyond 8× what
            // remains is corrupt (and must not size an allocation).
            if ch == 0
                || rows
                    .checked_mul(ch)
                    .is_none_or(|n| n > (r.buf.len() - r.pos) * 8)
            {
                return Err(r.malformed("rows × channels"));
            }
            let mut samples = vec![0f32; rows * ch];
            for k in 0..ch {
                interleave(&mut samples, k, ch, r.column(rows)?);
            }
            samples
        }
        _ => return Err(r.malformed("compact layout")),
    };
    Ok(CompactBatch {
        sensor_id,
        t0,
        rate_hz,
        channels,
        samples,
    })
}

/// Puts column `k` of a batch with `ch` columns into its row-major samples.
fn interleave(samples: &mut [f32], k: usize, ch: usize, column: Vec<f32>) {
    for (i, v) in column.into_iter().enumerate() {
        samples[i * ch + k] = v;
    }
}

// ---- seed form ----

const F_ID: u8 = 1;
const F_TS: u8 = 2;
const F_ANGLE: u8 = 4;

/// Seed body tags: columns node by node (each node's 9 channels in turn), or channel by channel
/// (each channel's columns for every node, see [`encode_channel`]).
const SEED_BY_NODE: u8 = 2;
const SEED_BY_CHANNEL: u8 = 3;
/// A channel's marker in a channel-by-channel body: its nodes' columns written one by one, or
/// sharing one header and bitstream.
const CHANNEL_BY_NODE: u8 = 0;
const CHANNEL_SHARED: u8 = 1;

fn encode_seed(s: &SeedBatch, out: &mut Vec<u8>, coding: Coding) {
    let by_channel = coding == Coding::Grouped;
    out.push(if by_channel {
        SEED_BY_CHANNEL
    } else {
        SEED_BY_NODE
    });
    let flags = u8::from(s.sensor_type.is_some()) | (u8::from(s.timestamp.is_some()) << 1);
    out.push(flags);
    if let Some(t) = &s.sensor_type {
        put_varint(out, t.len() as u64);
        out.extend_from_slice(t.as_bytes());
    }
    if let Some(ts) = s.timestamp {
        put_zz(out, ts);
    }
    put_varint(out, s.frames.len() as u64);
    for f in &s.frames {
        let fl = (u8::from(f.sensor_id.is_some()) * F_ID)
            | (u8::from(f.timestamp.is_some()) * F_TS)
            | (u8::from(f.angle.is_some()) * F_ANGLE);
        out.push(fl);
    }
    for id in s.frames.iter().filter_map(|f| f.sensor_id) {
        put_varint(out, u64::from(id));
    }
    let nodes = group_by_node(&s.frames);
    let mut last_ts: Vec<i64> = vec![0; nodes.len()];
    for f in &s.frames {
        if let Some(ts) = f.timestamp {
            let n = node_index(&nodes, f.sensor_id);
            put_zz(out, ts.wrapping_sub(last_ts[n]));
            last_ts[n] = ts;
        }
    }
    // columns[channel][node]: acc x, y, z, gyro x, y, z over the node's frames, then angle
    // x, y, z over those of its frames that carry one.
    let columns: Vec<Vec<Vec<f32>>> = (0..9)
        .map(|k| {
            nodes
                .iter()
                .map(|(node, _)| {
                    let frames = s.frames.iter().filter(|f| f.sensor_id == *node);
                    match k {
                        0..3 => frames.map(|f| f.acc[k]).collect(),
                        3..6 => frames.map(|f| f.gyro[k - 3]).collect(),
                        _ => frames.filter_map(|f| f.angle.map(|a| a[k - 6])).collect(),
                    }
                })
                .collect()
        })
        .collect();
    if by_channel {
        for channel in &columns {
            encode_channel(channel, out);
        }
    } else {
        for node in 0..nodes.len() {
            for channel in &columns {
                encode_column(&channel[node], out, coding);
            }
        }
    }
}

/// One channel of a seed batch, a column per node. When every value of every node shares one
/// scale, the nodes share one header, one predictor and one Rice parameter and bitstream: a
/// V3.3 message holds only ~8 frames per node, so per-column headers and padding would cost
/// more than the samples. Otherwise each node's column is written on its own.
fn encode_channel(columns: &[Vec<f32>], out: &mut Vec<u8>) {
    let shared = SCALES.iter().enumerate().find_map(|(index, &scale)| {
        let ks: Option<Vec<Vec<i64>>> = columns.iter().map(|c| integers_at(c, scale)).collect();
        ks.map(|ks| (index, ks))
    });
    let Some((index, ks)) = shared else {
        out.push(CHANNEL_BY_NODE);
        for column in columns {
            encode_column(column, out, Coding::Predicted);
        }
        return;
    };
    let columns: Vec<&[i64]> = ks.iter().map(Vec::as_slice).collect();
    let (predictor, anchors, residuals) = best_prediction(&columns);
    out.push(CHANNEL_SHARED);
    // SCALES has < 42 entries: the index fits in the byte with the predictor.
    out.push(index as u8 * 4 + predictor as u8);
    for anchor in anchors {
        put_zz(out, anchor);
    }
    rice_encode(&residuals, out);
}

/// Nodes (by `sensor_id`, `None` being its own node) in order of first appearance, with their
/// frame counts.
fn group_by_node(frames: &[SeedFrame]) -> Vec<(Option<u32>, usize)> {
    let mut nodes: Vec<(Option<u32>, usize)> = Vec::new();
    for f in frames {
        match nodes.iter_mut().find(|(id, _)| *id == f.sensor_id) {
            Some((_, n)) => *n += 1,
            None => nodes.push((f.sensor_id, 1)),
        }
    }
    nodes
}

fn node_index(nodes: &[(Option<u32>, usize)], id: Option<u32>) -> usize {
    // Every frame's node was added by `group_by_node` over the same frames.
    nodes.iter().position(|(n, _)| *n == id).unwrap_or(0)
}

fn decode_seed(r: &mut Reader, by_channel: bool) -> Result<SeedBatch, CodecError> {
    let flags = r.u8()?;
    let sensor_type = if flags & 1 != 0 {
        let n = r.count()?;
        let bytes = r.take(n)?;
        Some(String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::NotUtf8)?)
    } else {
        None
    };
    let timestamp = if flags & 2 != 0 { Some(r.zz()?) } else { None };
    let n = r.count()?;
    let frame_flags = r.take(n)?.to_vec();
    let mut frames: Vec<SeedFrame> = frame_flags
        .iter()
        .map(|_| SeedFrame {
            sensor_id: None,
            timestamp: None,
            acc: [0.0; 3],
            gyro: [0.0; 3],
            angle: None,
        })
        .collect();
    for (f, fl) in frames.iter_mut().zip(&frame_flags) {
        if fl & F_ID != 0 {
            f.sensor_id = Some(u32::try_from(r.varint()?).map_err(|_| r.malformed("sensor_id"))?);
        }
    }
    let nodes = group_by_node(&frames);
    let mut last_ts: Vec<i64> = vec![0; nodes.len()];
    for (f, fl) in frames.iter_mut().zip(&frame_flags) {
        if fl & F_TS != 0 {
            let i = node_index(&nodes, f.sensor_id);
            last_ts[i] = last_ts[i].wrapping_add(r.zz()?);
            f.timestamp = Some(last_ts[i]);
        }
    }
    // Per node: its frames' indices, and those of its frames that carry an angle.
    let members: Vec<(Vec<usize>, Vec<usize>)> = nodes
        .iter()
        .map(|(node, _)| {
            let idx: Vec<usize> = (0..frames.len())
                .filter(|&i| frames[i].sensor_id == *node)
                .collect();
            let with_angle = idx
                .iter()
                .copied()
                .filter(|&i| frame_flags[i] & F_ANGLE != 0)
                .collect();
            (idx, with_angle)
        })
        .collect();
    let rows = |node: usize, k: usize| {
        if k < 6 {
            &members[node].0
        } else {
            &members[node].1
        }
    };
    let mut place = |node: usize, k: usize, column: Vec<f32>| {
        for (&i, v) in rows(node, k).iter().zip(column) {
            let f = &mut frames[i];
            match k {
                0..3 => f.acc[k] = v,
                3..6 => f.gyro[k - 3] = v,
                _ => f.angle.get_or_insert([0.0; 3])[k - 6] = v,
            }
        }
    };
    if by_channel {
        for k in 0..9 {
            let counts: Vec<usize> = (0..nodes.len()).map(|n| rows(n, k).len()).collect();
            for (node, column) in r.channel(&counts)?.into_iter().enumerate() {
                place(node, k, column);
            }
        }
    } else {
        for node in 0..nodes.len() {
            for k in 0..9 {
                let column = r.column(rows(node, k).len())?;
                place(node, k, column);
            }
        }
    }
    Ok(SeedBatch {
        sensor_type,
        timestamp,
        frames,
    })
}

// ---- columns ----

/// How an integer column maps back to f32.
#[derive(Clone, Copy)]
enum Scale {
    Mul(f32),
    Div(f32),
}

impl Scale {
    fn apply(self, k: i64) -> f32 {
        match self {
            Scale::Mul(c) => (k as f32) * c,
            Scale::Div(c) => (k as f32) / c,
        }
    }

    fn integer_of(self, v: f32) -> Option<i64> {
        let k = match self {
            Scale::Mul(c) => (f64::from(v) / f64::from(c)).round(),
            Scale::Div(c) => (f64::from(v) * f64::from(c)).round(),
        };
        // |k| ≤ 2^24 keeps `k as f32` exact, so the decoder recomputes the same value.
        if !k.is_finite() || k.abs() > 16_777_216.0 {
            return None;
        }
        let k = k as i64;
        (self.apply(k).to_bits() == v.to_bits()).then_some(k)
    }
}

/// Resolutions tried, coarsest first: decimal fixed points (JSON printed with N decimals) and
/// the usual MEMS full-scale conversions (counts / LSB-per-unit, counts × range/32768). Part of
/// the on-disk format: entries are referred to by index, so only append to this list.
const SCALES: &[Scale] = &[
    Scale::Div(1.0),
    Scale::Mul(2000.0 / 32768.0),
    Scale::Div(10.0),
    Scale::Div(16.4),
    Scale::Mul(1000.0 / 32768.0),
    Scale::Div(32.8),
    Scale::Mul(500.0 / 32768.0),
    Scale::Mul(180.0 / 32768.0),
    Scale::Div(65.5),
    Scale::Mul(250.0 / 32768.0),
    Scale::Div(100.0),
    Scale::Div(131.0),
    Scale::Div(1000.0),
    Scale::Div(2048.0),
    Scale::Div(4096.0),
    Scale::Div(8192.0),
    Scale::Div(10000.0),
    Scale::Div(16384.0),
    Scale::Div(32768.0),
    Scale::Div(100000.0),
    Scale::Div(1000000.0),
];

fn integers_at(values: &[f32], scale: Scale) -> Option<Vec<i64>> {
    values.iter().map(|&v| scale.integer_of(v)).collect()
}

/// The scale index and integers of a column, at the coarsest scale that holds it exactly.
fn integer_column(values: &[f32]) -> Option<(usize, Vec<i64>)> {
    SCALES
        .iter()
        .enumerate()
        .find_map(|(index, &scale)| Some((index, integers_at(values, scale)?)))
}

fn encode_column(values: &[f32], out: &mut Vec<u8>, coding: Coding) {
    if values.is_empty() {
        out.push(0);
        return;
    }
    if let Some((index, ks)) = integer_column(values) {
        encode_integers(index, &ks, out, coding);
        return;
    }
    out.push(0);
    let mut prev = 0u32;
    let xored: Vec<u32> = values
        .iter()
        .map(|v| {
            let x = v.to_bits() ^ prev;
            prev = v.to_bits();
            x
        })
        .collect();
    for plane in (0..4).rev() {
        out.extend(xored.iter().map(|x| (x >> (plane * 8)) as u8));
    }
}

/// Writes the integers `ks` of a column whose values are `SCALES[index]` applied to them.
fn encode_integers(index: usize, ks: &[i64], out: &mut Vec<u8>, coding: Coding) {
    // SCALES has < 42 entries, so every header below stays in its range.
    let index = index as u8;
    match coding {
        Coding::Varints => {
            let (order, ds) = integer_differences(ks);
            out.push(1 + index * 3 + order);
            for d in ds {
                put_zz(out, d);
            }
        }
        Coding::Rice => {
            let (order, ds) = integer_differences(ks);
            out.push(RICE_COLUMN + index * 3 + order);
            put_zz(out, ds[0]);
            rice_encode(&ds[1..], out);
        }
        Coding::Predicted | Coding::Grouped => {
            let (predictor, anchors, residuals) = best_prediction(&[ks]);
            out.push(PREDICTED_COLUMN);
            out.push(index * 4 + predictor as u8);
            // One anchor: `ks` is not empty.
            for anchor in anchors {
                put_zz(out, anchor);
            }
            rice_encode(&residuals, out);
        }
    }
}

/// The predictor whose residuals Rice-code shortest over `columns` together (one column, or a
/// seed channel's column per node), with an anchor per non-empty column and every column's
/// residuals in order.
fn best_prediction(columns: &[&[i64]]) -> (Predictor, Vec<i64>, Vec<i64>) {
    Predictor::CLASSIC
        .into_iter()
        .map(|p| {
            let (anchors, residuals): (Vec<i64>, Vec<Vec<i64>>) = columns
                .iter()
                .filter(|ks| !ks.is_empty())
                .map(|ks| p.encode(ks))
                .unzip();
            let residuals = residuals.concat();
            let cost = rice_cost(&zigzagged(&residuals), RICE_MAX_K).1
                + anchors.iter().map(|&a| zz_len(a)).sum::<u64>();
            (cost, p, anchors, residuals)
        })
        .min_by_key(|c| c.0)
        .map(|(_, p, anchors, residuals)| (p, anchors, residuals))
        .unwrap_or((Predictor::Previous, Vec::new(), Vec::new()))
}

/// Bits of `v` as a zz-varint.
fn zz_len(v: i64) -> u64 {
    let significant = 64 - u64::from(zigzag(v).leading_zeros());
    8 * significant.div_ceil(7).max(1)
}

/// Chooses how to write the integers: offsets from the first (order 0: noise around a level), first
/// differences (order 1) or second differences (order 2: smooth motion), whichever has the
/// fewest significant bits in total (a proxy for what zstd will make of them).
fn integer_differences(ks: &[i64]) -> (u8, Vec<i64>) {
    let base = ks[0];
    let zero: Vec<i64> = std::iter::once(base)
        .chain(ks[1..].iter().map(|k| k.wrapping_sub(base)))
        .collect();
    let first: Vec<i64> = differences(ks);
    let second: Vec<i64> = differences(&first);
    let bits = |d: &[i64]| {
        d.iter()
            .skip(1)
            .map(|x| 64 - zigzag(*x).leading_zeros())
            .sum::<u32>()
    };
    [(0u8, zero), (1, first), (2, second)]
        .into_iter()
        .min_by_key(|(_, d)| bits(d))
        .unwrap_or_else(|| (1, Vec::new()))
}

/// Column headers from this value on are Rice-coded integer columns (below: zz-varints).
const RICE_COLUMN: u8 = 128;
/// A quotient this large is not written in unary: the value follows as 64 raw bits.
const RICE_ESCAPE: u64 = 24;
/// Largest Rice parameter a column may carry.
const RICE_MAX_K: u32 = 40;
/// Column header of a [`Coding::Predicted`] column: one byte `scale index × 4 + predictor`, the
/// anchor as a zz-varint, then the residuals Rice-coded. (Headers 1..=126 and 128..=253 are
/// the older varint and Rice columns, still read.)
const PREDICTED_COLUMN: u8 = 254;
const _: () = assert!(SCALES.len() <= 42, "column headers pack the scale index");

/// Golomb-Rice code of zigzagged residuals with the best parameter for the column: within a few
/// percent of the entropy for the two-sided geometric residuals of sensor noise, with no tables
/// (zstd's tables cost a good part of a 100-sample body). Layout: k u8, then per value `q` zero
/// bits, a one bit and `k` low bits (or RICE_ESCAPE zero bits and 64 raw bits), padded to a byte.
fn rice_encode(ds: &[i64], out: &mut Vec<u8>) {
    let us = zigzagged(ds);
    let (k, _) = rice_cost(&us, RICE_MAX_K);
    out.push(k as u8);
    let mut w = BitWriter::default();
    w.rice_codes(&us, k);
    w.finish(out);
}

fn zigzagged(ds: &[i64]) -> Vec<u64> {
    ds.iter().map(|&d| zigzag(d)).collect()
}

/// The Rice parameter (≤ `max_k`) for `us` and the bits its codes take. The cost is convex in
/// `k` near its minimum, which lies within a step or two of log2 of the mean value, so only that
/// neighbourhood is searched (any `k` decodes; the search only affects size).
fn rice_cost(us: &[u64], max_k: u32) -> (u32, u64) {
    let cost = |k: u32| -> u64 {
        us.iter()
            .map(|&u| match u >> k {
                q if q >= RICE_ESCAPE => RICE_ESCAPE + 64,
                q => q + 1 + u64::from(k),
            })
            .sum()
    };
    let mean = us.iter().map(|&u| u128::from(u)).sum::<u128>() / us.len().max(1) as u128;
    let guess = 128 - mean.leading_zeros();
    (guess.saturating_sub(2).min(max_k)..=(guess + 1).min(max_k))
        .map(|k| (k, cost(k)))
        .min_by_key(|&(_, c)| c)
        .unwrap_or((0, 0))
}

/// MSB-first bit packing for [`rice_encode`].
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// Writes the low `n` bits of `v`, most significant first (n ≤ 64).
    fn put(&mut self, v: u64, n: u32) {
        if n > 32 {
            self.put_small(v >> 32, n - 32);
            self.put_small(v, 32);
        } else {
            self.put_small(v, n);
        }
    }

    /// n ≤ 32: with at most 7 bits pending, the accumulator never needs more than 39.
    fn put_small(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.bits += n;
        while self.bits >= 8 {
            self.bits -= 8;
            self.bytes.push((self.acc >> self.bits) as u8);
        }
    }

    /// Golomb-Rice codes of `us` with parameter `k`: per value `q = u >> k` zero bits, a one
    /// bit and the `k` low bits, or RICE_ESCAPE zero bits and the 64 raw bits when q is that
    /// large.
    fn rice_codes(&mut self, us: &[u64], k: u32) {
        for &u in us {
            match u >> k {
                q if q >= RICE_ESCAPE => {
                    self.put(0, RICE_ESCAPE as u32);
                    self.put(u >> 32, 32);
                    self.put(u & 0xffff_ffff, 32);
                }
                q => {
                    self.put(1, q as u32 + 1);
                    self.put(u & ((1u64 << k) - 1), k);
                }
            }
        }
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        if self.bits > 0 {
            self.bytes.push((self.acc << (8 - self.bits)) as u8);
        }
        out.extend_from_slice(&self.bytes);
    }
}

fn differences(xs: &[i64]) -> Vec<i64> {
    let mut prev = 0i64;
    xs.iter()
        .map(|&x| {
            let d = x.wrapping_sub(prev);
            prev = x;
            d
        })
        .collect()
}

fn integrate(ds: &mut [i64]) {
    let mut acc = 0i64;
    for d in ds.iter_mut() {
        acc = acc.wrapping_add(*d);
        *d = acc;
    }
}

// ---- primitive readers and writers ----

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn malformed(&self, what: &'static str) -> CodecError {
        CodecError::Malformed { at: self.pos, what }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CodecError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    fn zz(&mut self) -> Result<i64, CodecError> {
        let u = self.varint()?;
        Ok(unzigzag(u))
    }

    /// A count of items that each take at least one bit of what remains (bounds allocations).
    fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if n > remaining.saturating_mul(8) {
            return Err(self.malformed("count larger than the body"));
        }
        Ok(n as usize)
    }

    /// Reads `n` Rice-coded values (see [`rice_encode`]) into `out`, then skips the padding.
    fn rice_decode(&mut self, n: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
        let k = u32::from(self.u8()?);
        if k > RICE_MAX_K {
            return Err(self.malformed("rice parameter"));
        }
        let mut bits = BitReader {
            buf: self.buf,
            bit: self.pos * 8,
        };
        bits.rice_values(k, n, out)?;
        self.pos = bits.bit.div_ceil(8);
        Ok(())
    }

    /// The byte `scale index × 4 + predictor` of predicted columns and shared seed channels.
    fn scale_and_predictor(&mut self) -> Result<(Scale, Predictor), CodecError> {
        let packed = self.u8()?;
        let scale = *SCALES
            .get(usize::from(packed / 4))
            .ok_or_else(|| self.malformed("column scale"))?;
        // Two bits: one of the classic predictors, always valid.
        let predictor =
            Predictor::from_code(packed % 4).ok_or_else(|| self.malformed("column predictor"))?;
        Ok((scale, predictor))
    }

    /// One channel of a channel-by-channel seed body (see [`encode_channel`]): a column per
    /// node, of `counts[node]` values.
    fn channel(&mut self, counts: &[usize]) -> Result<Vec<Vec<f32>>, CodecError> {
        match self.u8()? {
            CHANNEL_BY_NODE => counts.iter().map(|&n| self.column(n)).collect(),
            CHANNEL_SHARED => {
                let (scale, predictor) = self.scale_and_predictor()?;
                let filled: Vec<usize> = counts.iter().copied().filter(|&n| n > 0).collect();
                let anchors = filled
                    .iter()
                    .map(|_| self.zz())
                    .collect::<Result<Vec<_>, _>>()?;
                let total = filled.iter().map(|&n| predictor.residual_count(n)).sum();
                let mut residuals = Vec::with_capacity(total);
                self.rice_decode(total, &mut residuals)?;
                let mut rest = residuals.as_slice();
                let mut anchors = anchors.into_iter();
                Ok(counts
                    .iter()
                    .map(|&n| {
                        if n == 0 {
                            return Vec::new();
                        }
                        // One anchor per node with values (there are exactly that many).
                        let Some(anchor) = anchors.next() else {
                            return Vec::new();
                        };
                        let (mine, others) = rest.split_at(predictor.residual_count(n));
                        rest = others;
                        let ks = predictor.decode(anchor, mine);
                        ks.into_iter().map(|k| scale.apply(k)).collect()
                    })
                    .collect())
            }
            _ => Err(self.malformed("channel marker")),
        }
    }

    fn column(&mut self, n: usize) -> Result<Vec<f32>, CodecError> {
        let mode = self.u8()?;
        if n == 0 {
            return if mode == 0 {
                Ok(Vec::new())
            } else {
                Err(self.malformed("empty column with a scale"))
            };
        }
        match mode {
            0 => {
                let planes = self.take(n.checked_mul(4).ok_or(CodecError::Truncated(self.pos))?)?;
                let mut prev = 0u32;
                Ok((0..n)
                    .map(|i| {
                        let x = (0..4).fold(0u32, |acc, p| {
                            acc | (u32::from(planes[(3 - p) * n + i]) << (p * 8))
                        });
                        prev ^= x;
                        f32::from_bits(prev)
                    })
                    .collect())
            }
            PREDICTED_COLUMN => {
                let (scale, predictor) = self.scale_and_predictor()?;
                let anchor = self.zz()?;
                let mut residuals = Vec::with_capacity(n);
                self.rice_decode(predictor.residual_count(n), &mut residuals)?;
                let ks = predictor.decode(anchor, &residuals);
                Ok(ks.into_iter().map(|k| scale.apply(k)).collect())
            }
            header => {
                let rice = header >= RICE_COLUMN;
                let code = if rice {
                    header - RICE_COLUMN
                } else {
                    header - 1
                };
                let index = usize::from(code) / 3;
                let order = code % 3;
                let scale = *SCALES
                    .get(index)
                    .ok_or_else(|| self.malformed("column scale"))?;
                let mut ks = if rice {
                    let first = self.zz()?;
                    let mut ks = vec![first];
                    self.rice_decode(n - 1, &mut ks)?;
                    ks
                } else {
                    (0..n).map(|_| self.zz()).collect::<Result<Vec<_>, _>>()?
                };
                if order == 0 {
                    let base = ks[0];
                    for k in &mut ks[1..] {
                        *k = k.wrapping_add(base);
                    }
                }
                for _ in 0..order {
                    integrate(&mut ks);
                }
                Ok(ks.into_iter().map(|k| scale.apply(k)).collect())
            }
        }
    }
}

/// MSB-first bit reading for [`Reader::rice_decode`].
struct BitReader<'a> {
    buf: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    /// Reads `n` Rice codes of parameter `k` (see [`BitWriter::rice_codes`]) as signed values.
    fn rice_values(&mut self, k: u32, n: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
        for _ in 0..n {
            let mut q = 0u64;
            while q < RICE_ESCAPE && !self.bit()? {
                q += 1;
            }
            let u = if q == RICE_ESCAPE {
                (self.bits(32)? << 32) | self.bits(32)?
            } else {
                (q << k) | self.bits(k)?
            };
            out.push(unzigzag(u));
        }
        Ok(())
    }

    fn bit(&mut self) -> Result<bool, CodecError> {
        let byte = *self
            .buf
            .get(self.bit / 8)
            .ok_or(CodecError::Truncated(self.bit / 8))?;
        let b = byte >> (7 - self.bit % 8) & 1 == 1;
        self.bit += 1;
        Ok(b)
    }

    fn bits(&mut self, n: u32) -> Result<u64, CodecError> {
        (0..n).try_fold(0u64, |acc, _| Ok((acc << 1) | u64::from(self.bit()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(b: &SensorBatch) -> BatchForm {
        let e = encode_batch(b);
        let raw = decompress(e.codec, &e.bytes, e.raw_len).expect("decompress");
        decode_batch_form(&raw).expect("decode")
    }

    fn bits_equal(a: &BatchForm, b: &BatchForm) -> bool {
        // PartialEq on f32 treats NaN != NaN and -0 == 0; compare bits through serde_json of
        // the bit patterns instead.
        format!("{:?}", bits(a)) == format!("{:?}", bits(b))
    }

    fn bits(f: &BatchForm) -> Vec<u64> {
        match f {
            BatchForm::Compact(c) => {
                let mut v = vec![
                    u64::from(c.sensor_id),
                    c.t0 as u64,
                    c.rate_hz.to_bits(),
                    u64::from(c.channels),
                ];
                v.extend(c.samples.iter().map(|x| u64::from(x.to_bits())));
                v
            }
            BatchForm::Seed(s) => {
                let mut v = vec![
                    s.timestamp.map_or(u64::MAX, |t| t as u64),
                    s.frames.len() as u64,
                ];
                v.extend(s.sensor_type.iter().flat_map(|t| t.bytes().map(u64::from)));
                for f in &s.frames {
                    v.push(f.sensor_id.map_or(u64::MAX, u64::from));
                    v.push(f.timestamp.map_or(u64::MAX - 1, |t| t as u64));
                    v.extend(f.acc.iter().chain(&f.gyro).map(|x| u64::from(x.to_bits())));
                    match f.angle {
                        Some(a) => v.extend(a.iter().map(|x| u64::from(x.to_bits()))),
                        None => v.push(u64::MAX - 2),
                    }
                }
                v
            }
        }
    }

    #[test]
    fn decimal_values_use_an_integer_column() {
        let mut out = Vec::new();
        encode_column(&[0.02, -0.98, 0.11, 1.5], &mut out, Coding::Predicted);
        assert_eq!(out[0], PREDICTED_COLUMN);
        let scale = SCALES[usize::from(out[1] / 4)];
        assert!(
            matches!(scale, Scale::Div(c) if c == 100.0),
            "decimal resolution found"
        );
    }

    #[test]
    fn values_without_resolution_use_the_float_mode() {
        let mut out = Vec::new();
        encode_column(
            &[0.1234567, std::f32::consts::PI, -0.0],
            &mut out,
            Coding::Predicted,
        );
        assert_eq!(out[0], 0);
    }

    /// Batches built with integer arithmetic only (no libm), so every platform builds the same.
    fn platform_independent_batches() -> Vec<SensorBatch> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 61) as i64 - 4
        };
        let mut forms = Vec::new();
        for (lsb, decimals) in [(2048.0f32, None), (2048.0, Some(100.0f32))] {
            let mut samples = Vec::new();
            for t in 0..100i64 {
                for c in 0..6i64 {
                    let motion = (t - 50) * (t - 50) * (t - 50) / (40 + c);
                    let count = (motion + noise()) as f32 / lsb;
                    samples.push(decimals.map_or(count, |d| (count * d).round() / d + 0.0));
                }
            }
            forms.push(BatchForm::Compact(CompactBatch {
                sensor_id: 4,
                t0: 1_732_400_000_123,
                rate_hz: 1000.0,
                channels: 6,
                samples,
            }));
        }
        let mut frames = Vec::new();
        for i in 0..30u32 {
            let mut count = |k: i64| (k * i64::from(i) + noise()) as f32;
            let acc = [1, 2, 3].map(|k| count(k) * (16.0 / 32768.0));
            let gyro = [40, -30, 20].map(|k| count(k) * (2000.0 / 32768.0));
            // Fused-looking floats: arbitrary mantissas.
            let angle =
                [7, -5, 3].map(|k| f32::from_bits(0x3f80_0000 + (count(k) as i32 as u32 & 0xffff)));
            frames.push(SeedFrame {
                sensor_id: Some(i % 4 + 1),
                timestamp: Some(93_015_123 + i64::from(i / 4) * 10),
                acc,
                gyro,
                angle: Some(angle),
            });
        }
        forms.push(BatchForm::Seed(SeedBatch {
            sensor_type: Some("waist".into()),
            timestamp: Some(123_456),
            frames,
        }));
        forms
            .into_iter()
            .map(|form| SensorBatch {
                device: "2025001".into(),
                session_id: "s-0017".into(),
                seq: Some(42),
                form,
            })
            .collect()
    }

    /// The encoder is part of the on-disk format: a journal written on the build machine must
    /// be read on the board and the other way round. These bytes were produced on x86_64; the
    /// same test under qemu-aarch64 must give the same (`cargo test --target
    /// aarch64-unknown-linux-gnu`, see docs/journal.md).
    #[test]
    fn bodies_are_the_same_bytes_on_every_platform() {
        let mut all = Vec::new();
        for batch in platform_independent_batches() {
            let e = encode_batch(&batch);
            all.push(e.codec);
            all.extend_from_slice(&e.bytes);
            assert!(bits_equal(&roundtrip(&batch), &batch.form));
        }
        assert_eq!((all.len(), crc32c::crc32c(&all)), (926, 1637608466));
    }

    #[test]
    fn corrupt_bodies_are_errors_not_panics() {
        assert!(decode_batch_form(&[]).is_err());
        assert!(decode_batch_form(&[1, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_batch_form(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    fn any_f32() -> impl Strategy<Value = f32> {
        prop_oneof![
            any::<u32>().prop_map(f32::from_bits),
            (-20000i32..20000).prop_map(|k| k as f32 / 100.0),
            (-32768i32..32768).prop_map(|k| k as f32 / 16.4),
            (-32768i32..32768).prop_map(|k| k as f32 * (180.0 / 32768.0)),
        ]
    }

    fn any_frame() -> impl Strategy<Value = SeedFrame> {
        (
            proptest::option::of(0u32..6),
            proptest::option::of(any::<i64>()),
            [any_f32(), any_f32(), any_f32()],
            [any_f32(), any_f32(), any_f32()],
            proptest::option::of([any_f32(), any_f32(), any_f32()]),
        )
            .prop_map(|(sensor_id, timestamp, acc, gyro, angle)| SeedFrame {
                sensor_id,
                timestamp,
                acc,
                gyro,
                angle,
            })
    }

    fn any_form() -> impl Strategy<Value = BatchForm> {
        prop_oneof![
            (
                any::<u32>(),
                any::<i64>(),
                any::<f64>(),
                0u8..12,
                proptest::collection::vec(any_f32(), 0..200)
            )
                .prop_map(|(sensor_id, t0, rate_hz, channels, samples)| {
                    BatchForm::Compact(CompactBatch {
                        sensor_id,
                        t0,
                        rate_hz,
                        channels,
                        samples,
                    })
                }),
            (
                proptest::option::of("[a-z]{0,8}"),
                proptest::option::of(any::<i64>()),
                proptest::collection::vec(any_frame(), 0..40)
            )
                .prop_map(|(sensor_type, timestamp, frames)| BatchForm::Seed(
                    SeedBatch {
                        sensor_type,
                        timestamp,
                        frames,
                    }
                )),
        ]
    }

    proptest! {
        #[test]
        fn every_integer_coding_round_trips(ks in proptest::collection::vec(-40000i32..40000, 1..300), small in any::<bool>()) {
            let values: Vec<f32> = ks.iter().map(|&k| if small { (k % 8) as f32 / 100.0 } else { k as f32 / 16.4 }).collect();
            for coding in [Coding::Varints, Coding::Rice, Coding::Predicted] {
                let mut out = Vec::new();
                encode_column(&values, &mut out, coding);
                let mut r = Reader { buf: &out, pos: 0 };
                let back = r.column(values.len()).expect("decodes");
                prop_assert_eq!(r.pos, out.len(), "consumed exactly");
                prop_assert_eq!(back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }

        #[test]
        fn every_batch_round_trips_bit_exactly(form in any_form()) {
            let b = SensorBatch { device: "d".into(), session_id: "s".into(), seq: None, form };
            let back = roundtrip(&b);
            prop_assert!(bits_equal(&back, &b.form), "{:?} != {:?}", back, b.form);
        }

        #[test]
        fn every_seed_layout_round_trips_bit_exactly(form in any_form()) {
            let BatchForm::Seed(seed) = &form else { return Ok(()) };
            for coding in [Coding::Varints, Coding::Rice, Coding::Predicted, Coding::Grouped] {
                let mut raw = Vec::new();
                encode_seed(seed, &mut raw, coding);
                let back = decode_batch_form(&raw).expect("decodes");
                prop_assert!(bits_equal(&back, &form), "{:?}: {:?} != {:?}", coding, back, form);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_batch_form(&bytes);
        }

        #[test]
        fn integer_compact_batches_pack_and_round_trip(c in integer_compact()) {
            let form = BatchForm::Compact(c);
            let b = SensorBatch { device: "d".into(), session_id: "s".into(), seq: None, form };
            let e = encode_batch(&b);
            prop_assert_eq!(e.bytes[0], packed::PACKED_COMPACT);
            let back = roundtrip(&b);
            prop_assert!(bits_equal(&back, &b.form), "{:?} != {:?}", back, b.form);
        }

        #[test]
        fn every_compact_layout_round_trips(c in prop_oneof![integer_compact(), any_form().prop_filter_map("compact", |f| match f {
            BatchForm::Compact(c) => Some(c),
            BatchForm::Seed(_) => None,
        })]) {
            for coding in [Coding::Varints, Coding::Rice, Coding::Predicted] {
                let mut raw = Vec::new();
                encode_compact_columns(&c, &mut raw, coding);
                let back = decode_batch_form(&raw).expect("decodes");
                let form = BatchForm::Compact(c.clone());
                prop_assert!(bits_equal(&back, &form), "{:?}: {:?} != {:?}", coding, back, form);
            }
        }

        #[test]
        fn truncated_packed_bodies_are_errors(c in integer_compact(), cut in any::<prop::sample::Index>()) {
            let mut raw = Vec::new();
            prop_assume!(packed::encode_packed(&c, &mut raw));
            let cut = cut.index(raw.len());
            prop_assert!(decode_batch_form(&raw[..cut]).is_err());
        }
    }

    /// Compact batches whose columns are whole multiples of a resolution: noise, smooth motion,
    /// constants and extreme integers, at any channel count, sample count and rate.
    fn integer_compact() -> impl Strategy<Value = CompactBatch> {
        let rate = prop_oneof![
            Just(1000.0),
            Just(100.0),
            Just(0.0),
            Just(-0.0),
            Just(99.5),
            Just(f64::NAN),
            Just(1e300),
            any::<f64>(),
        ];
        let column = (0u8..5, any::<u64>(), 1i64..40_000);
        (
            any::<u32>(),
            any::<i64>(),
            rate,
            0u8..10,
            0usize..150,
            proptest::collection::vec(column, 1..10),
        )
            .prop_map(|(sensor_id, t0, rate_hz, channels, rows, kinds)| {
                let ch = usize::from(channels).max(1);
                let samples = (0..rows * ch)
                    .map(|i| {
                        let (kind, seed, amplitude) = kinds[(i % ch) % kinds.len()];
                        let t = (i / ch) as i64;
                        let noise = ((seed ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 7)
                            as i64
                            - 3;
                        match kind {
                            0 => (noise as f32) / 100.0,
                            1 => {
                                ((amplitude * (t % 50 - 25) * (t % 50 - 25) / 625) + noise) as f32
                                    / 16.4
                            }
                            2 => (seed % 1000) as f32 / 10.0,
                            // Up to ±2^24, the largest integers an f32 holds exactly.
                            3 => ((seed as i64 % (1 << 23)) - (noise << 20)) as f32,
                            _ => (noise * amplitude) as f32 * (2000.0 / 32768.0),
                        }
                    })
                    .collect();
                CompactBatch {
                    sensor_id,
                    t0,
                    rate_hz,
                    channels,
                    samples,
                }
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_packed_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut body = vec![packed::PACKED_COMPACT];
            body.extend(bytes);
            let _ = decode_batch_form(&body);
        }

        #[test]
        fn arbitrary_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_batch_form(&bytes);
        }
    }
}

#[cfg(test)]
mod entropy_probe {
    use super::*;
    use crate::journal::synth::{CompactStyle, Motion, compact_batch_as};
    use rand::SeedableRng;

    /// `cargo test --lib entropy_probe -- --ignored --nocapture`: zero-order entropy of the
    /// residuals the packed layout writes, i.e. what an ideal entropy coder would spend on them.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn print_residual_entropy() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
        let cases = [CompactStyle::Counts, CompactStyle::Decimals]
            .into_iter()
            .flat_map(|style| [(style, Motion::Swing), (style, Motion::Idle)]);
        for (style, m) in cases {
            let mut counts: Vec<std::collections::HashMap<i64, u64>> = vec![Default::default(); 6];
            let rows = 300 * 100;
            for i in 0..300 {
                let b = compact_batch_as(&mut rng, ("d", "s", Some(i), 0), 100, m, style);
                let BatchForm::Compact(c) = &b.form else {
                    unreachable!()
                };
                for (k, column_counts) in counts.iter_mut().enumerate() {
                    let col: Vec<f32> = (0..100).map(|r| c.samples[r * 6 + k]).collect();
                    let (_, ks) = integer_column(&col).expect("integer column");
                    let (_, _, residuals) = packed::choose_predictor(&ks);
                    for d in &residuals {
                        *column_counts.entry(*d).or_default() += 1;
                    }
                }
            }
            // Bits per residual under each column's own distribution, spread over the rows.
            let bits: f64 = counts
                .iter()
                .map(|c| {
                    let n = c.values().sum::<u64>() as f64;
                    let per_residual: f64 = c
                        .values()
                        .map(|&x| -(x as f64 / n) * (x as f64 / n).log2())
                        .sum();
                    per_residual * n / rows as f64
                })
                .sum();
            println!(
                "{style:?} {m:?}: residual entropy {:.2} B/sample (ideal coder, zero-order)",
                bits / 8.0
            );
        }
    }
}
