//! The analysis task's backlog, served fairly: one input per device in turn.

use std::collections::{HashMap, VecDeque};

use super::feed::AnalysisInput;

/// The analysis task's backlog, served one input per device in turn. Each device's inputs keep
/// their order (batches, then the session's finish); only devices with a backlog are delayed
/// relative to the rest. Bounded by the feed, which counts everything held here as pending.
#[derive(Debug, Default)]
pub struct FairQueue {
    inputs: HashMap<String, VecDeque<AnalysisInput>>,
    /// Devices with inputs waiting, the next to serve first.
    turns: VecDeque<String>,
}

impl FairQueue {
    pub fn push(&mut self, input: AnalysisInput) {
        let device = match &input {
            AnalysisInput::Batch { batch, .. } => batch.device.as_str(),
            AnalysisInput::Finish { device, .. } => device.as_str(),
        };
        let waiting = self.inputs.entry(device.to_owned()).or_default();
        if waiting.is_empty() {
            self.turns.push_back(device.to_owned());
        }
        waiting.push_back(input);
    }

    /// The oldest input of the device whose turn it is.
    pub fn pop(&mut self) -> Option<AnalysisInput> {
        let device = self.turns.pop_front()?;
        let waiting = self.inputs.get_mut(&device)?;
        let input = waiting.pop_front();
        if waiting.is_empty() {
            self.inputs.remove(&device);
        } else {
            self.turns.push_back(device);
        }
        input
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    pub fn len(&self) -> usize {
        self.inputs.values().map(VecDeque::len).sum()
    }
}
