//! The window of recent command ids: a command the cloud redelivers (after a reconnect) or an
//! operator retries carries the same `command_id` as the first, and must not run twice.
//!
//! The ids are the senders' (the cloud's, the admin API's), not the gateway's own numbering.
//! The window is court state: each entry comes from a journaled `command_queued` event and the
//! window is in every snapshot, so a repeat is recognised across reconnects and restarts. It
//! keeps the newest `capacity` ids (oldest forgotten first): a lookup scans at most that many
//! short strings, which costs microseconds at the default 1,024.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One command a sender asked for, and what became of it so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentCommand {
    /// The sender's `command_id`.
    pub request_id: String,
    pub device: String,
    /// The gateway's id for it (the one pushed to the device).
    pub command_id: u64,
    /// The device's answer once it acked; `None` while it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

/// The newest commands by sender id, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RecentCommands {
    entries: VecDeque<RecentCommand>,
}

impl RecentCommands {
    /// The first command sent with `request_id`, if it is still remembered.
    pub fn find(&self, request_id: &str) -> Option<&RecentCommand> {
        self.entries.iter().find(|e| e.request_id == request_id)
    }

    /// Remembers a command, forgetting the oldest past `capacity`. An id already remembered is
    /// kept as it was (a snapshot and its own event may both name it on restore).
    pub fn remember(&mut self, entry: RecentCommand, capacity: usize) {
        if self.find(&entry.request_id).is_some() {
            return;
        }
        self.entries.push_back(entry);
        while self.entries.len() > capacity {
            self.entries.pop_front();
        }
    }

    /// Records the device's answer to the gateway's command `command_id`.
    pub fn settle(&mut self, command_id: u64, success: bool) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.command_id == command_id)
        {
            entry.success = Some(success);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &RecentCommand> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: &str, command_id: u64) -> RecentCommand {
        RecentCommand {
            request_id: id.into(),
            device: "d".into(),
            command_id,
            success: None,
        }
    }

    #[test]
    fn a_settled_command_is_found_with_its_answer() {
        let mut recent = RecentCommands::default();
        recent.remember(entry("c-1", 7), 8);
        recent.settle(7, false);
        assert_eq!(recent.find("c-1").and_then(|e| e.success), Some(false));
        assert!(recent.find("c-2").is_none());
    }

    proptest! {
        /// However many ids pass, the window holds at most its capacity and the newest is found.
        #[test]
        fn the_window_is_bounded_and_keeps_the_newest(ids in proptest::collection::vec(0u16..500, 0..2000), capacity in 1usize..64) {
            let mut recent = RecentCommands::default();
            for (n, id) in ids.iter().enumerate() {
                recent.remember(entry(&id.to_string(), n as u64), capacity);
                prop_assert!(recent.len() <= capacity);
            }
            // The id remembered last is there, whether it was new or a repeat.
            if let Some(last) = ids.last() {
                prop_assert!(recent.find(&last.to_string()).is_some());
            }
        }
    }
}
