//! Matching MQTT packet ids to what was published: the piece rumqttc leaves to us.
//!
//! rumqttc's `publish()` returns when the request is queued, not when the broker acknowledged it
//! (rumqtt#349); the broker's `PubAck` names a packet id that rumqttc chose, and the same id is
//! reused after a reconnect (thin-edge#2960). The event loop reports, in the order it takes
//! requests from its channel, `Outgoing::Publish(pkid)` for each publish it writes. Since our
//! driver task is the only one that submits publishes, and it clears rumqttc's resend queue on
//! every disconnect, the n-th `Outgoing::Publish` belongs to the n-th submission still waiting
//! for one. A collision (`Outgoing::AwaitAck`) delays a publish but keeps that order: rumqttc
//! stops taking requests until the colliding one is written.
//!
//! Pure: no rumqttc types, packet ids in and tags out.

use std::collections::{HashMap, VecDeque};

/// What a publish carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag<C> {
    /// A journal record: its id.
    Record(u64),
    /// A message that is not in the journal (gateway status, a command result).
    Control(C),
}

/// A protocol surprise that means our view of rumqttc's state is wrong; the driver drops the
/// connection so everything unacknowledged is resent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("rumqttc wrote publish pkid {0} that we did not submit")]
    UnexpectedPublish(u16),
    #[error("rumqttc reused pkid {0} before its PubAck")]
    PkidInUse(u16),
}

/// Submitted publishes waiting for a packet id, and packet ids waiting for a `PubAck`.
#[derive(Debug)]
pub struct Ledger<C> {
    submitted: VecDeque<Tag<C>>,
    by_pkid: HashMap<u16, Tag<C>>,
}

impl<C> Default for Ledger<C> {
    fn default() -> Self {
        Self {
            submitted: VecDeque::new(),
            by_pkid: HashMap::new(),
        }
    }
}

impl<C> Ledger<C> {
    /// A publish was handed to rumqttc.
    pub fn handle_submitted(&mut self, tag: Tag<C>) {
        self.submitted.push_back(tag);
    }

    /// rumqttc wrote a publish with this packet id (`Outgoing::Publish`).
    pub fn handle_outgoing_publish(&mut self, pkid: u16) -> Result<(), LedgerError> {
        if self.by_pkid.contains_key(&pkid) {
            return Err(LedgerError::PkidInUse(pkid));
        }
        let tag = self
            .submitted
            .pop_front()
            .ok_or(LedgerError::UnexpectedPublish(pkid))?;
        self.by_pkid.insert(pkid, tag);
        Ok(())
    }

    /// The broker acknowledged this packet id; `None` for an id we are not waiting on (a late
    /// ack of an earlier connection, which rumqttc itself rejects).
    pub fn handle_puback(&mut self, pkid: u16) -> Option<Tag<C>> {
        self.by_pkid.remove(&pkid)
    }

    /// The connection dropped: nothing pending will be acknowledged any more. Returns what
    /// was pending, oldest submissions last, so control messages can be queued again.
    pub fn reset(&mut self) -> Vec<Tag<C>> {
        let mut pending: Vec<_> = self.by_pkid.drain().map(|(_, t)| t).collect();
        pending.extend(self.submitted.drain(..));
        pending
    }

    /// Publishes submitted and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.submitted.len() + self.by_pkid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn acks_map_back_to_the_records_in_submission_order() {
        let mut l: Ledger<()> = Ledger::default();
        l.handle_submitted(Tag::Record(10));
        l.handle_submitted(Tag::Record(11));
        l.handle_outgoing_publish(1).unwrap();
        l.handle_outgoing_publish(2).unwrap();
        assert_eq!(l.handle_puback(2), Some(Tag::Record(11)));
        assert_eq!(l.handle_puback(1), Some(Tag::Record(10)));
        assert_eq!(l.handle_puback(1), None);
    }

    #[test]
    fn a_publish_nobody_submitted_is_an_error() {
        let mut l: Ledger<()> = Ledger::default();
        assert_eq!(
            l.handle_outgoing_publish(3),
            Err(LedgerError::UnexpectedPublish(3))
        );
    }

    #[test]
    fn after_a_reset_a_reused_pkid_maps_to_the_new_publish() {
        let mut l: Ledger<()> = Ledger::default();
        l.handle_submitted(Tag::Record(1));
        l.handle_outgoing_publish(1).unwrap();
        assert_eq!(l.reset(), vec![Tag::Record(1)]);
        l.handle_submitted(Tag::Record(2));
        l.handle_outgoing_publish(1).unwrap();
        assert_eq!(l.handle_puback(1), Some(Tag::Record(2)));
    }

    proptest! {
        /// Pkids assigned by a rumqttc-like allocator (sequential, wrapping, skipping ids in
        /// use), acks in any order: every ack names exactly the record published under it.
        #[test]
        fn any_ack_order_maps_each_ack_to_its_own_record(
            window in 1u16..10, n in 1u64..80,
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..200),
        ) {
            let mut l: Ledger<()> = Ledger::default();
            let mut outstanding: Vec<(u16, u64)> = Vec::new();
            let (mut next_id, mut last_pkid, mut picks) = (1u64, 0u16, picks.into_iter());
            let mut acked = Vec::new();
            while (next_id <= n || !outstanding.is_empty()) && acked.len() < 400 {
                if next_id <= n && outstanding.len() < usize::from(window) {
                    let mut pkid = last_pkid % window + 1;
                    while outstanding.iter().any(|(p, _)| *p == pkid) { pkid = pkid % window + 1; }
                    last_pkid = pkid;
                    l.handle_submitted(Tag::Record(next_id));
                    l.handle_outgoing_publish(pkid).unwrap();
                    outstanding.push((pkid, next_id));
                    next_id += 1;
                    continue;
                }
                let i = picks.next().map_or(0, |p| p.index(outstanding.len()));
                let (pkid, id) = outstanding.remove(i);
                prop_assert_eq!(l.handle_puback(pkid), Some(Tag::Record(id)));
                acked.push(id);
            }
            prop_assert_eq!(l.in_flight(), 0);
        }
    }
}
