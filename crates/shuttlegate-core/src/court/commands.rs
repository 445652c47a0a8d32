//! Commands down to one device: a bounded queue of what was asked and not yet acknowledged.
//!
//! A command is pushed at once when the device is connected and offered again on every
//! `poll_commands` (the seed firmware's HTTP-era way to fetch them) and on every reconnect,
//! until the device's `ack {command_id}` arrives. Data for a session also settles that
//! session's pending `start_collection`, since V3.3 may start collecting without acking.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::protocol::DeviceCommand;

/// A command waiting for the device's ack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCommand {
    /// Gateway-wide, unique across restarts (restored from the journal).
    pub command_id: u64,
    #[serde(with = "command_serde")]
    pub command: DeviceCommand,
    /// Gateway time the command was queued, unix ms.
    pub queued_ms: i64,
}

/// Journaled as `{"name": "start_collection", "params": {"session_id": "…"}}`, the same name
/// and parameters the admin console and the cloud send, so one parser reads both.
pub(crate) mod command_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::protocol::DeviceCommand;

    #[derive(Serialize, Deserialize)]
    struct Named {
        name: String,
        params: Value,
    }

    pub fn serialize<S: Serializer>(cmd: &DeviceCommand, s: S) -> Result<S::Ok, S::Error> {
        Named {
            name: cmd.name().to_owned(),
            params: cmd.params(),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceCommand, D::Error> {
        let named = Named::deserialize(d)?;
        DeviceCommand::parse(&named.name, &named.params).map_err(D::Error::custom)
    }
}

/// Why a command could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the device has {0} commands waiting for an ack; wait for it to catch up")]
    Full(usize),
}

/// One device's queue.
#[derive(Debug, Clone, Default)]
pub struct CommandQueue {
    pending: VecDeque<PendingCommand>,
}

impl CommandQueue {
    /// Queues `cmd`, refusing past `capacity` so a device that never acks cannot grow it.
    pub fn push(&mut self, cmd: PendingCommand, capacity: usize) -> Result<(), QueueError> {
        if self.pending.len() >= capacity {
            return Err(QueueError::Full(self.pending.len()));
        }
        self.pending.push_back(cmd);
        Ok(())
    }

    /// Marks `command_id` done; returns the command if it was pending.
    pub fn ack(&mut self, command_id: u64) -> Option<PendingCommand> {
        let index = self
            .pending
            .iter()
            .position(|c| c.command_id == command_id)?;
        self.pending.remove(index)
    }

    /// Settles a pending `start_collection` for `session_id` (data for it proves it ran).
    pub fn settle_start(&mut self, session_id: &str) -> Option<PendingCommand> {
        let index = self.pending.iter().position(|c| {
            matches!(&c.command, DeviceCommand::StartCollection { session_id: s } if s == session_id)
        })?;
        self.pending.remove(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PendingCommand> {
        self.pending.iter()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: u64, command: DeviceCommand) -> PendingCommand {
        PendingCommand {
            command_id: id,
            command,
            queued_ms: 0,
        }
    }

    #[test]
    fn a_full_queue_refuses_and_names_its_length() {
        let mut q = CommandQueue::default();
        q.push(cmd(1, DeviceCommand::Sync), 2).unwrap();
        q.push(cmd(2, DeviceCommand::GetStatus), 2).unwrap();
        assert_eq!(
            q.push(cmd(3, DeviceCommand::Sync), 2),
            Err(QueueError::Full(2))
        );
    }

    #[test]
    fn an_ack_removes_only_its_command() {
        let mut q = CommandQueue::default();
        q.push(cmd(1, DeviceCommand::Sync), 8).unwrap();
        q.push(cmd(2, DeviceCommand::GetStatus), 8).unwrap();
        assert_eq!(q.ack(1).map(|c| c.command_id), Some(1));
        assert_eq!(q.ack(1), None);
        assert_eq!(q.iter().map(|c| c.command_id).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn data_settles_the_start_of_its_own_session_only() {
        let mut q = CommandQueue::default();
        let start = |s: &str| DeviceCommand::StartCollection {
            session_id: s.into(),
        };
        q.push(cmd(1, start("a")), 8).unwrap();
        q.push(cmd(2, start("b")), 8).unwrap();
        assert_eq!(q.settle_start("b").map(|c| c.command_id), Some(2));
        assert_eq!(q.settle_start("b"), None);
        assert_eq!(q.len(), 1);
    }
}
