//! Publishing what the writer knows to readers: the segment views and the stats gauges.

use std::sync::Arc;

use super::{SegView, Store, locked};
use crate::journal::segment::{SegmentInfo, kind_slot, segment_name};
use shuttlegate_core::journal::record::RecordKind;

impl Store {
    // ---- publishing the reader view ----

    fn view_of(&self, s: &SegmentInfo) -> SegView {
        SegView {
            first_id: s.first_id,
            last_id: s.last_id,
            path: self.opts.dir.join(segment_name(s.first_id)),
            len: s.bytes,
            records: s.records,
            sparse: Arc::new(s.sparse.clone()),
            sessions: s.sessions.clone().map(Arc::new),
        }
    }

    pub(super) fn publish_all(&mut self) {
        let views: Vec<SegView> = self.segments.iter().map(|s| self.view_of(s)).collect();
        *self.shared.views.write().unwrap_or_else(|e| e.into_inner()) = views;
        self.publish_stats();
    }

    /// Republishes the open segment's view after a commit; `sessions_changed` says whether its
    /// session list changed (it is cloned only then).
    pub(super) fn publish_tail(&mut self, sessions_changed: bool) {
        let tail = self
            .segments
            .last()
            .map(|s| (s.first_id, s.last_id, s.bytes, s.records, s.sparse.len()));
        {
            let mut views = self.shared.views.write().unwrap_or_else(|e| e.into_inner());
            if let (Some(v), Some((first, last, len, records, sparse_len))) =
                (views.last_mut(), tail)
                && v.first_id == first
            {
                {
                    v.last_id = last;
                    v.len = len;
                    v.records = records;
                    if sessions_changed {
                        // Under the same write lock as `len`: a reader never sees records of
                        // a session the view does not list.
                        v.sessions = self
                            .segments
                            .last()
                            .and_then(|s| s.sessions.clone())
                            .map(Arc::new);
                    }
                    if v.sparse.len() != sparse_len {
                        v.sparse = Arc::new(
                            self.segments
                                .last()
                                .map(|s| s.sparse.clone())
                                .unwrap_or_default(),
                        );
                    }
                }
            }
        }
        self.publish_stats();
    }

    fn publish_stats(&self) {
        let mut st = locked(&self.shared.stats);
        let mut by_kind = [0u64; 4];
        for s in &self.segments {
            for (k, n) in s.by_kind.iter().enumerate() {
                by_kind[k] += n;
            }
        }
        st.segments = self.segments.len();
        st.bytes = self.total_bytes();
        st.max_bytes = self.opts.max_bytes;
        st.records = self.segments.iter().map(|s| s.records).sum();
        st.by_kind = [
            RecordKind::Batch,
            RecordKind::Swing,
            RecordKind::Summary,
            RecordKind::Event,
        ]
        .into_iter()
        .map(|k| (k, by_kind[kind_slot(k)]))
        .collect();
        st.samples = self.segments.iter().map(|s| s.samples).sum();
        st.batch_bytes = self.segments.iter().map(|s| s.batch_bytes).sum();
        st.raw_body_bytes = self.segments.iter().map(|s| s.raw_body_bytes).sum();
        st.stored_body_bytes = self.segments.iter().map(|s| s.stored_body_bytes).sum();
        st.oldest_id = self
            .segments
            .iter()
            .find(|s| s.records > 0)
            .and_then(|s| s.sparse.first().map(|&(id, _)| id));
        st.newest_id = self.next_id - 1;
        st.oldest_ts_ms = self.segments.iter().find_map(|s| s.first_ts_ms);
        st.newest_ts_ms = self.segments.iter().rev().find_map(|s| s.last_ts_ms);
        st.failed = self.failure();
    }
}
