//! Cursors and release: persisting consumer cursors, deleting segments every consumer has
//! acked past, the released sessions' seq highs, the pressure counters, and close.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::{MAX_SEQ_HIGHS, PRESSURE_FILE, SEQ_HIGHS_FILE, Store, locked};
use crate::journal::error::JournalError;
use crate::journal::fs::write_atomic;
use crate::journal::segment::{segment_name, sidecar_path};

pub(super) fn cursor_path(dir: &Path, consumer: &str) -> PathBuf {
    dir.join(format!("{consumer}.cursor"))
}

impl Store {
    // ---- cursors and release ----

    /// Persists changed cursors (temp, fsync, rename, one dir fsync), then deletes the sealed
    /// segments every enabled consumer has acked past.
    pub fn persist_cursors_and_release(&mut self) {
        let current = locked(&self.shared.cursors).clone();
        let changed: Vec<(String, u64)> = current
            .into_iter()
            .filter(|(c, id)| self.persisted_cursors.get(c) != Some(id))
            .collect();
        if !changed.is_empty() {
            let fs = self.shared.fs.clone();
            let dir = self.opts.dir.clone();
            let result = changed.iter().try_for_each(|(c, id)| {
                let path = cursor_path(&dir, c);
                let tmp = path.with_extension("tmp");
                fs.write_synced(&tmp, format!("{id}\n").as_bytes())?;
                fs.rename(&tmp, &path)
            });
            match result.and_then(|()| fs.sync_dir(&dir)) {
                Ok(()) => self.persisted_cursors.extend(changed),
                Err(e) => {
                    warn!("journal: persisting cursors: {e} (will retry)");
                    return;
                }
            }
        }
        self.release_acked();
    }

    fn release_acked(&mut self) {
        let Some(min) = self
            .opts
            .consumers
            .iter()
            .map(|c| self.persisted_cursors.get(c).copied().unwrap_or(0))
            .min()
        else {
            return;
        };
        let fs = self.shared.fs.clone();
        let mut released = Vec::new();
        while self.segments.len() > 1 && self.segments[0].last_id <= min {
            let seg = self.segments.remove(0);
            let path = self.opts.dir.join(segment_name(seg.first_id));
            let _ = fs.remove(&sidecar_path(&path));
            if let Err(e) = fs.remove(&path) {
                warn!("journal: deleting {}: {e}", path.display());
            }
            released.push(seg);
        }
        if released.is_empty() {
            return;
        }
        let _ = fs.sync_dir(&self.opts.dir);
        let mut seqs = locked(&self.shared.seqs);
        for seg in &released {
            seqs.remove_segment(&seg.seqs);
        }
        drop(seqs);
        self.persist_seq_highs();
        info!(
            "journal: released {} segments acked by every consumer (up to id {})",
            released.len(),
            released.last().map_or(0, |s| s.last_id)
        );
        self.publish_all();
    }

    /// Writes the high-water seqs of fully released sessions, if they changed.
    pub(super) fn persist_seq_highs(&mut self) {
        let highs = locked(&self.shared.seqs).released_highs(MAX_SEQ_HIGHS);
        if highs == self.persisted_highs {
            return;
        }
        let path = self.opts.dir.join(SEQ_HIGHS_FILE);
        let json = serde_json::to_vec(&highs).unwrap_or_default();
        match write_atomic(&*self.shared.fs, &path, &json) {
            Ok(()) => self.persisted_highs = highs,
            Err(e) => warn!("journal: writing {}: {e} (will retry)", path.display()),
        }
    }

    /// Writes the space-pressure counters for the offline `journal stats` (since this open):
    /// at most once a second unless `force`, so a refusing journal does not fsync per append.
    pub fn persist_pressure(&mut self, force: bool) {
        let recent = self
            .pressure_written
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if recent && !force {
            return;
        }
        let c = &self.shared.counters;
        let json = format!(
            "{{\"full\":{},\"refused_appends\":{},\"dropped_records\":{},\"dropped_bytes\":{}}}\n",
            c.full.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.dropped_records.load(Ordering::Relaxed),
            c.dropped_bytes.load(Ordering::Relaxed)
        );
        let path = self.opts.dir.join(PRESSURE_FILE);
        match write_atomic(&*self.shared.fs, &path, json.as_bytes()) {
            Ok(()) => self.pressure_written = Some(Instant::now()),
            Err(e) => warn!("journal: writing {}: {e}", path.display()),
        }
    }

    /// Final flush at close: cursors persisted; the open segment stays open (unsealed) so the
    /// next start verifies it.
    pub fn close(&mut self) -> Result<(), JournalError> {
        self.persist_cursors_and_release();
        if self.pressure_written.is_some() {
            self.persist_pressure(true);
        }
        match self.failure() {
            Some(f) => Err(JournalError::Failed(f)),
            None => Ok(()),
        }
    }
}
