//! Whether the gateway's own clock is synchronised (NTP), as the kernel sees it.
//!
//! Why it matters: every time the gateway hands out — swing times, session times, the
//! `server_time` devices sync to — is its wall clock. A Pi has no battery-backed clock; until
//! its time service has synchronised, it may be hours off, and so would everything it stamps.
//! Staff hear it as the `clock_unsynced` notification, `/healthz` lists it as degraded (never
//! dead: a restart does not set a clock), and `/metrics` shows it.
//!
//! Where the verdict comes from: `adjtimex(2)` with no modes set only reads the kernel's NTP
//! state; it answers `TIME_ERROR` (or sets `STA_UNSYNC` in `status`) while no time service
//! has disciplined the clock (chrony, systemd-timesyncd and ntpd all clear it once synced).
//! It is a system call with no IO, so it is read when asked, at most once per [`POLL_EVERY`]
//! (the verdict is cached between). The probe is a trait ([`ClockProbe`]), so tests drive the
//! verdict; the daemon uses [`KernelProbe`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// The kernel is asked at most this often; between, the last verdict stands.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// Reads whether the clock is synchronised.
pub trait ClockProbe: Send + Sync + 'static {
    /// `Ok(true)` synchronised, `Ok(false)` not; `Err` when it cannot tell (why, in English).
    fn synchronised(&self) -> Result<bool, String>;
}

/// The kernel's verdict (`adjtimex`), on Linux; elsewhere it cannot tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelProbe;

impl ClockProbe for KernelProbe {
    #[cfg(target_os = "linux")]
    fn synchronised(&self) -> Result<bool, String> {
        // SAFETY: `timex` is plain old data (integers), so all-zero is a valid value, and with
        // `modes` zero `adjtimex` only writes the kernel's state into the buffer we own.
        let mut timex: libc::timex = unsafe { std::mem::zeroed() };
        timex.modes = 0;
        // SAFETY: a valid, exclusively borrowed `timex` for the duration of the call.
        let state = unsafe { libc::adjtimex(&mut timex) };
        if state == -1 {
            return Err(format!("adjtimex: {}", std::io::Error::last_os_error()));
        }
        Ok(state != libc::TIME_ERROR && timex.status & libc::STA_UNSYNC == 0)
    }

    #[cfg(not(target_os = "linux"))]
    fn synchronised(&self) -> Result<bool, String> {
        Err("the clock's synchronisation is read from Linux's adjtimex only".to_owned())
    }
}

/// No probe: the gateway does not ask (`[gateway] clock_check = false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProbe;

impl ClockProbe for NoProbe {
    fn synchronised(&self) -> Result<bool, String> {
        Err("not checked ([gateway] clock_check = false)".to_owned())
    }
}

/// The cached verdict, shared by the notifications, `/healthz` and `/metrics`.
#[derive(Clone)]
pub struct TimeSync {
    probe: Arc<dyn ClockProbe>,
    last: Arc<Mutex<Last>>,
}

#[derive(Debug, Default)]
struct Last {
    asked: Option<Instant>,
    verdict: Option<bool>,
    /// A failing probe is logged once, not at every poll.
    failure_logged: bool,
}

impl std::fmt::Debug for TimeSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeSync").finish_non_exhaustive()
    }
}

impl Default for TimeSync {
    /// The kernel's verdict.
    fn default() -> Self {
        TimeSync::with_probe(Arc::new(KernelProbe))
    }
}

impl TimeSync {
    /// The kernel's verdict, or none when `check` is off.
    pub fn configured(check: bool) -> TimeSync {
        if check {
            TimeSync::default()
        } else {
            log::info!("clock: its synchronisation is not checked ([gateway] clock_check = false)");
            TimeSync {
                probe: Arc::new(NoProbe),
                last: Arc::new(Mutex::new(Last {
                    // Said once in the start log, not as a warning.
                    failure_logged: true,
                    ..Last::default()
                })),
            }
        }
    }

    pub fn with_probe(probe: Arc<dyn ClockProbe>) -> TimeSync {
        TimeSync {
            probe,
            last: Arc::default(),
        }
    }

    /// Whether the clock is synchronised (`None`: the probe cannot tell), asking the probe
    /// if the last answer is older than [`POLL_EVERY`].
    pub fn synchronised(&self) -> Option<bool> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.asked.is_some_and(|t| t.elapsed() < POLL_EVERY) {
            return last.verdict;
        }
        last.asked = Some(Instant::now());
        last.verdict = match self.probe.synchronised() {
            Ok(synced) => Some(synced),
            Err(why) => {
                if !std::mem::replace(&mut last.failure_logged, true) {
                    log::warn!("cannot tell whether the clock is synchronised: {why}");
                }
                None
            }
        };
        last.verdict
    }
}

/// `/metrics`: `clock_synchronised` (1 or 0; absent while the probe cannot tell).
#[derive(Debug)]
pub struct ClockCollector(pub TimeSync);

impl Collector for ClockCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(synced) = self.0.synchronised() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(i64::from(synced));
        gauge.encode(encoder.encode_descriptor(
            "clock_synchronised",
            "1 while the kernel says the gateway's clock is synchronised (NTP), 0 while it is not (the clock_unsynced condition)",
            None,
            MetricType::Gauge,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Issue 13: the real probe reads this machine's verdict (whatever it is) without error.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_kernel_probe_reads_this_machines_verdict() {
        let verdict = KernelProbe.synchronised();
        assert!(verdict.is_ok(), "{verdict:?}");
        assert_eq!(TimeSync::default().synchronised(), verdict.ok());
    }

    struct Counting(AtomicUsize);

    impl ClockProbe for Counting {
        fn synchronised(&self) -> Result<bool, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(false)
        }
    }

    #[test]
    fn the_probe_is_asked_at_most_once_per_poll_interval() {
        let probe = Arc::new(Counting(AtomicUsize::new(0)));
        let sync = TimeSync::with_probe(probe.clone());
        for _ in 0..10 {
            assert_eq!(sync.synchronised(), Some(false));
        }
        assert_eq!(probe.0.load(Ordering::SeqCst), 1);
    }
}
