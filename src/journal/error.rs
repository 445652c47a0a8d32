//! The journal's errors, one enum per caller-facing operation family. Each variant says what the
//! caller does next.

use std::io;
use std::path::PathBuf;

/// Opening, reading, acking or closing the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process holds the journal: the daemon must exit (two writers would corrupt it).
    #[error("journal is locked by another shuttlegate (pid {pid}): lock file {}", lock.display())]
    Locked { lock: PathBuf, pid: String },
    /// The filesystem refused an operation on `path`; fix the disk or permissions and restart.
    #[error("journal I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A `JournalOptions` field is unusable; fix the configuration key named.
    #[error("journal option `{option}`: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    /// A consumer name that cannot be a file name; use letters, digits, `-` and `_`.
    #[error("consumer name {0:?} is invalid: use 1–64 letters, digits, '-' or '_'")]
    InvalidConsumer(String),
    /// The journal was closed (or its writer stopped); nothing more can be done with this handle.
    #[error("journal is closed")]
    Closed,
    /// The writer hit an I/O error it cannot recover from (e.g. fsync failed); restart the
    /// daemon so recovery can re-establish what is durable.
    #[error("journal writer stopped after an unrecoverable error: {0}")]
    Failed(String),
    /// [`super::Journal::open_async`]'s blocking task did not finish: recovery panicked (a bug:
    /// report it with the log) or the runtime is shutting down. Nothing is open; the lock is
    /// released. Exit, or retry the open once the cause is known.
    #[error("journal open did not finish: {0}")]
    OpenAborted(String),
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> JournalError {
        JournalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// An append was not made durable. In every case: do not acknowledge it to the device.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AppendError {
    /// The journal is at `max_bytes` and `when_full = refuse` (or nothing more could be dropped):
    /// answer the device `success:false`; it keeps its copy and retries later.
    #[error("journal full ({used} of {max_bytes} bytes): record refused, withhold the ack")]
    Full { used: u64, max_bytes: u64 },
    /// The device's batches already take its `device_share` of the journal (and none of its
    /// own can be dropped): answer it `success:false`; it keeps its copy and sends it later,
    /// while the other devices' batches are still stored.
    #[error(
        "journal full for device `{device}` ({used} of its {share} bytes, journal.device_share): record refused, withhold the ack"
    )]
    DeviceFull {
        device: String,
        used: u64,
        share: u64,
    },
    /// The record can never be stored (too large, or a field too long): reject it to the sender.
    #[error("record rejected: {0}")]
    Invalid(String),
    /// Writing or fsyncing failed: the record is not durable; withhold the ack.
    #[error("journal write failed, record not durable: {0}")]
    Io(String),
    /// The journal cannot write now (a failed segment roll or write, being retried with
    /// backoff): the record is not durable; withhold the ack, the device sends it again later.
    #[error("journal unavailable ({0}), record not stored: send it again later")]
    Unavailable(String),
    /// The journal is closed or shutting down: withhold the ack.
    #[error("journal is closed")]
    Closed,
    /// Too many appends are already waiting for fsync ([`super::Journal::submit`] does not
    /// wait for room): withhold the ack; the device sends it again.
    #[error("journal busy: too many appends waiting for fsync; send it again")]
    Busy,
}
