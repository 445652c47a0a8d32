//! The idempotence index: which `seq`s are stored for each (device, session).
//!
//! Held as ranges (a session's batches are numbered 0, 1, 2, … so a session is usually one
//! range), per segment and for the whole journal; the whole-journal index is the union of the
//! segments' and shrinks when a segment is deleted, so it is bounded by what the journal holds.
//! Pure data: no IO.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// A set of u64 as disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSet {
    /// start → end (inclusive).
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn contains(&self, x: u64) -> bool {
        self.ranges
            .range(..=x)
            .next_back()
            .is_some_and(|(_, &end)| x <= end)
    }

    pub fn insert(&mut self, x: u64) {
        if self.contains(x) {
            return;
        }
        let mut start = x;
        let mut end = x;
        if let Some((&s, &e)) = self.ranges.range(..x).next_back()
            && e.checked_add(1) == Some(x)
        {
            start = s;
        }
        if let Some(next) = x.checked_add(1)
            && let Some(&e) = self.ranges.get(&next)
        {
            self.ranges.remove(&next);
            end = e;
        }
        self.ranges.insert(start, end);
    }

    /// Inserts every value of `a..=b`.
    pub fn insert_range(&mut self, a: u64, b: u64) {
        if a > b {
            return;
        }
        let (mut start, mut end) = (a, b);
        // Ranges that overlap or touch [a, b]: the one starting at or before a, and any starting
        // inside [a, b + 1].
        if let Some((&s, &e)) = self.ranges.range(..=a).next_back()
            && e.saturating_add(1) >= a
        {
            start = s;
            end = end.max(e);
        }
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(start..=end.saturating_add(1))
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    pub fn remove(&mut self, x: u64) {
        let Some((&s, &e)) = self.ranges.range(..=x).next_back() else {
            return;
        };
        if x > e {
            return;
        }
        self.ranges.remove(&s);
        if s < x {
            self.ranges.insert(s, x - 1);
        }
        if x < e {
            self.ranges.insert(x + 1, e);
        }
    }

    #[cfg(test)]
    pub fn max(&self) -> Option<u64> {
        self.ranges.values().next_back().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|(&s, &e)| s..=e)
    }

    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }
}

/// (device, session)
pub type SessionKey = (String, String);

/// Seqs of one segment, serialisable for its sidecar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentSeqs(pub Vec<(String, String, RangeSet)>);

impl SegmentSeqs {
    pub fn insert(&mut self, device: &str, session: &str, seq: u64) {
        match self
            .0
            .iter_mut()
            .rev()
            .find(|(d, s, _)| d == device && s == session)
        {
            Some((_, _, set)) => set.insert(seq),
            None => {
                let mut set = RangeSet::default();
                set.insert(seq);
                self.0.push((device.to_owned(), session.to_owned(), set));
            }
        }
    }
}

/// Recently stored seqs remembered with their record id, so that a resend is answered with the
/// original id without reading the disk. Older duplicates are looked up in their segment.
const RECENT_PER_SESSION: usize = 256;

#[derive(Debug, Default)]
struct SessionSeqs {
    stored: RangeSet,
    /// Highest seq ever assigned or stored while the session was in the index: gateway numbering
    /// continues from it even after the segment holding it was released.
    high: Option<u64>,
    recent: VecDeque<(u64, u64)>,
}

/// The whole journal's idempotence index.
#[derive(Debug, Default)]
pub struct SeqIndex {
    sessions: HashMap<SessionKey, SessionSeqs>,
}

impl SeqIndex {
    fn key(device: &str, session: &str) -> SessionKey {
        (device.to_owned(), session.to_owned())
    }

    pub fn contains(&self, device: &str, session: &str, seq: u64) -> bool {
        self.sessions
            .get(&Self::key(device, session))
            .is_some_and(|s| s.stored.contains(seq))
    }

    /// The id stored for a seq, if it is among the recent ones.
    pub fn recent_id(&self, device: &str, session: &str, seq: u64) -> Option<u64> {
        let s = self.sessions.get(&Self::key(device, session))?;
        s.recent.iter().find(|(q, _)| *q == seq).map(|&(_, id)| id)
    }

    /// The seq the gateway gives the next unnumbered batch of the session; `None` once the
    /// session has used `u64::MAX` (a device may send any seq: there is no next one then).
    pub fn next_seq(&self, device: &str, session: &str) -> Option<u64> {
        match self
            .sessions
            .get(&Self::key(device, session))
            .and_then(|s| s.high)
        {
            Some(high) => high.checked_add(1),
            None => Some(0),
        }
    }

    pub fn insert(&mut self, device: &str, session: &str, seq: u64, id: Option<u64>) {
        let s = self.sessions.entry(Self::key(device, session)).or_default();
        s.stored.insert(seq);
        s.high = Some(s.high.map_or(seq, |h| h.max(seq)));
        if let Some(id) = id {
            if s.recent.len() == RECENT_PER_SESSION {
                s.recent.pop_front();
            }
            s.recent.push_back((seq, id));
        }
    }

    pub fn insert_segment(&mut self, seqs: &SegmentSeqs) {
        for (d, s, set) in &seqs.0 {
            let entry = self.sessions.entry(Self::key(d, s)).or_default();
            for (a, b) in set.ranges() {
                entry.stored.insert_range(a, b);
                entry.high = Some(entry.high.map_or(b, |h| h.max(b)));
            }
        }
    }

    /// Forgets a released segment's seqs. A session with nothing left keeps only its high-water
    /// seq (a few bytes), so that a V3.3 device still sending for it is not numbered from 0 again
    /// while this process runs.
    pub fn remove_segment(&mut self, seqs: &SegmentSeqs) {
        for (d, s, set) in &seqs.0 {
            let key = Self::key(d, s);
            let Some(entry) = self.sessions.get_mut(&key) else {
                continue;
            };
            for (a, b) in set.ranges() {
                for q in a..=b {
                    entry.stored.remove(q);
                }
                entry.recent.retain(|(r, _)| !(a..=b).contains(r));
            }
        }
    }

    /// Sessions with nothing stored any more, with their high-water seq (persisted so that
    /// gateway numbering continues after a restart too). At most `limit`, highest seqs first.
    pub fn released_highs(&self, limit: usize) -> Vec<(String, String, u64)> {
        let mut v: Vec<(String, String, u64)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.stored.ranges().next().is_none())
            .filter_map(|((d, s), e)| Some((d.clone(), s.clone(), e.high?)))
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        v.truncate(limit);
        v
    }

    /// Restores a released session's high-water seq (on open).
    pub fn restore_high(&mut self, device: &str, session: &str, high: u64) {
        let e = self.sessions.entry(Self::key(device, session)).or_default();
        e.high = Some(e.high.map_or(high, |h| h.max(high)));
    }

    pub fn stored(&self, device: &str, session: &str) -> Vec<u64> {
        self.sessions
            .get(&Self::key(device, session))
            .map(|s| s.stored.iter().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn insert_range_equals_inserting_each(ranges in proptest::collection::vec((0u64..60, 0u64..6), 0..30)) {
            let mut a = RangeSet::default();
            let mut b = RangeSet::default();
            for (start, len) in ranges {
                a.insert_range(start, start + len);
                for x in start..=start + len { b.insert(x); }
                prop_assert_eq!(&a, &b);
            }
        }

        #[test]
        fn range_set_behaves_like_a_set(ops in proptest::collection::vec((any::<bool>(), 0u64..40), 0..200)) {
            let mut set = RangeSet::default();
            let mut model = BTreeSet::new();
            for (add, x) in ops {
                if add { set.insert(x); model.insert(x); } else { set.remove(x); model.remove(&x); }
                prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(set.max(), model.iter().next_back().copied());
            }
            for x in 0..40 { prop_assert_eq!(set.contains(x), model.contains(&x)); }
        }

        /// Issue 12: a device may send any u64 seq; the index never overflows on the largest
        /// ones, and the next gateway seq is above every stored one, or absent once
        /// `u64::MAX` is taken.
        #[test]
        fn the_next_seq_never_overflows(
            seqs in proptest::collection::vec(prop_oneof![u64::MAX - 3..=u64::MAX, 0u64..4], 1..20),
        ) {
            let mut idx = SeqIndex::default();
            let mut seg = SegmentSeqs::default();
            for &q in &seqs {
                idx.insert("d", "s", q, Some(q));
                seg.insert("d", "s", q);
            }
            let next = seqs.iter().copied().max().and_then(|h| h.checked_add(1));
            prop_assert_eq!(idx.next_seq("d", "s"), next);
            idx.remove_segment(&seg);
            prop_assert_eq!(idx.next_seq("d", "s"), next, "kept after release");
        }

        /// The same set semantics at the top of u64, where `x + 1` would overflow.
        #[test]
        fn range_set_behaves_like_a_set_at_the_top_of_u64(
            ops in proptest::collection::vec((0u8..3, 0u64..40, 0u64..4), 0..200),
        ) {
            let mut set = RangeSet::default();
            let mut model = BTreeSet::new();
            let top = |x: u64| u64::MAX - x;
            for (op, x, len) in ops {
                let x = top(x);
                match op {
                    0 => { set.insert(x); model.insert(x); }
                    1 => { set.remove(x); model.remove(&x); }
                    _ => {
                        let end = x.saturating_add(len);
                        set.insert_range(x, end);
                        model.extend(x..=end);
                    }
                }
                prop_assert_eq!(set.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            }
            for x in 0..40 { prop_assert_eq!(set.contains(top(x)), model.contains(&top(x))); }
        }
    }

    #[test]
    fn gateway_numbering_continues_after_release() {
        let mut idx = SeqIndex::default();
        let mut seg = SegmentSeqs::default();
        idx.insert("d", "s", 0, Some(1));
        seg.insert("d", "s", 0);
        idx.insert("d", "s", 1, Some(2));
        assert_eq!(idx.next_seq("d", "s"), Some(2));
        idx.remove_segment(&seg);
        assert_eq!(idx.stored("d", "s"), vec![1]);
        assert_eq!(idx.next_seq("d", "s"), Some(2));
        assert_eq!(idx.recent_id("d", "s", 1), Some(2));
        let mut rest = SegmentSeqs::default();
        rest.insert("d", "s", 1);
        idx.remove_segment(&rest);
        assert!(idx.stored("d", "s").is_empty());
        assert_eq!(
            idx.next_seq("d", "s"),
            Some(2),
            "numbering survives the release of everything"
        );
    }
}
