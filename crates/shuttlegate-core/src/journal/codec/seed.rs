//! The seed form: columns node by node (tag 2) or channel by channel (tag 3).

use super::column::{SCALES, best_prediction, encode_column, integers_at};
use super::reader::Reader;
use super::rice::rice_encode;
use super::{CodecError, Coding};
use crate::batch::{SeedBatch, SeedFrame};
use crate::journal::varint::{put_varint, put_zz};

const F_ID: u8 = 1;
const F_TS: u8 = 2;
const F_ANGLE: u8 = 4;

/// Seed body tags: columns node by node (each node's 9 channels in turn), or channel by channel
/// (each channel's columns for every node, see [`encode_channel`]).
pub(super) const SEED_BY_NODE: u8 = 2;
pub(super) const SEED_BY_CHANNEL: u8 = 3;
/// A channel's marker in a channel-by-channel body: its nodes' columns written one by one, or
/// sharing one header and bitstream.
const CHANNEL_BY_NODE: u8 = 0;
const CHANNEL_SHARED: u8 = 1;

pub(super) fn encode_seed(s: &SeedBatch, out: &mut Vec<u8>, coding: Coding) {
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

pub(super) fn decode_seed(r: &mut Reader, by_channel: bool) -> Result<SeedBatch, CodecError> {
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

impl Reader<'_> {
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
}
