//! One reloadable settings handle: [`SettingsHandle`] holds the current [`Settings`] in a
//! `tokio::sync::watch`, so readers take the current value cheaply ([`SettingsHandle::current`])
//! or wait for the next one ([`SettingsHandle::subscribe`]). The daemon reloads on SIGHUP
//! through [`SettingsHandle::reload_file`]: load and validate the file again (with the same
//! environment overrides as at start), then [`SettingsHandle::reload`]. Every attempt is
//! counted by outcome ([`ReloadCounts`], `/metrics`).
//!
//! # What a reload may change
//!
//! A reload is accepted only if every key the daemon binds, opens or connects with once at
//! start is unchanged; otherwise it is refused with [`ReloadError::RestartRequired`] naming the
//! first such key, and the current settings stay. Those keys ([`RESTART_KEYS`]):
//!
//! | key | why it needs a restart |
//! |---|---|
//! | `gateway.venue`, `gateway.court` | MQTT topics and client id, the journal's records |
//! | `gateway.state_dir` | the journal's directory and its lock |
//! | `gateway.timezone` | V3.3 time stamps of sessions already running |
//! | `gateway.clock_check` | the clock probe is chosen once |
//! | `http.listen`, `udp`, `serial` | sockets and ports are bound once |
//! | `http.tls_listen` (with its files), `http.*_timeout` | the listeners are set up once |
//! | `journal.*` | the journal is opened once with its options |
//! | `uplink.mqtt`, `uplink.hub` | the uplink connections and their credentials |
//!
//! Everything else may change: `devices` (added, removed, changed: tokens, user binding, sensor
//! maps, mount radius, full scales), `limits`, `auth` and `analysis`. What changed is reported
//! in [`Reloaded`]; it takes effect wherever the value is next read through the handle (a new
//! connection, a new session), not for work already under way.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::{ConfigError, Settings};

/// A key that cannot change without a restart, with how to compare it.
type RestartKey = (&'static str, fn(&Settings, &Settings) -> bool);

/// The keys a reload must leave unchanged (see the module doc), in the order they are checked.
pub const RESTART_KEYS: &[RestartKey] = &[
    ("gateway.venue", |a, b| a.gateway.venue == b.gateway.venue),
    ("gateway.court", |a, b| a.gateway.court == b.gateway.court),
    ("gateway.state_dir", |a, b| {
        a.gateway.state_dir == b.gateway.state_dir
    }),
    ("gateway.timezone", |a, b| {
        a.gateway.timezone == b.gateway.timezone
    }),
    ("gateway.clock_check", |a, b| {
        a.gateway.clock_check == b.gateway.clock_check
    }),
    ("http.listen", |a, b| a.http.listen == b.http.listen),
    ("http.tls_listen", |a, b| a.http.tls == b.http.tls),
    ("http.header_read_timeout", |a, b| {
        a.http.header_read_timeout == b.http.header_read_timeout
    }),
    ("http.keep_alive_timeout", |a, b| {
        a.http.keep_alive_timeout == b.http.keep_alive_timeout
    }),
    ("http.handshake_timeout", |a, b| {
        a.http.handshake_timeout == b.http.handshake_timeout
    }),
    ("udp", |a, b| a.udp == b.udp),
    ("serial", |a, b| a.serial == b.serial),
    ("journal.max_bytes", |a, b| {
        a.journal.max_bytes == b.journal.max_bytes
    }),
    ("journal.when_full", |a, b| {
        a.journal.when_full == b.journal.when_full
    }),
    ("journal.commit_interval", |a, b| {
        a.journal.commit_interval == b.journal.commit_interval
    }),
    ("journal.segment_bytes", |a, b| {
        a.journal.segment_bytes == b.journal.segment_bytes
    }),
    ("uplink.mqtt", |a, b| a.uplink.mqtt == b.uplink.mqtt),
    ("uplink.hub", |a, b| a.uplink.hub == b.uplink.hub),
];

/// A reload that cannot be applied; the current settings stay in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// `key` differs from the running configuration and is read only at start: restart the
    /// daemon to apply it (or put the old value back to reload the rest).
    #[error("`{key}` changed: it takes effect only after a restart; nothing was reloaded")]
    RestartRequired { key: &'static str },
}

/// What an accepted reload changed. Empty when the new settings equal the current ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Device codes new in this configuration, in its order.
    pub devices_added: Vec<String>,
    /// Device codes no longer configured, in the old order.
    pub devices_removed: Vec<String>,
    /// Device codes in both whose settings differ (token, user, sensors, …).
    pub devices_changed: Vec<String>,
    /// `[limits]` changed.
    pub limits: bool,
    /// `[auth]` changed (admin token or JWT secret).
    pub auth: bool,
    /// `[analysis]` changed.
    pub analysis: bool,
}

impl Reloaded {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Reloaded::default()
    }

    fn between(old: &Settings, new: &Settings) -> Reloaded {
        let devices_added = new
            .devices
            .iter()
            .filter(|d| old.device(&d.code).is_none())
            .map(|d| d.code.clone())
            .collect();
        let devices_removed = old
            .devices
            .iter()
            .filter(|d| new.device(&d.code).is_none())
            .map(|d| d.code.clone())
            .collect();
        let devices_changed = new
            .devices
            .iter()
            .filter(|d| old.device(&d.code).is_some_and(|o| o != *d))
            .map(|d| d.code.clone())
            .collect();
        Reloaded {
            devices_added,
            devices_removed,
            devices_changed,
            limits: old.limits != new.limits,
            auth: old.auth != new.auth,
            analysis: old.analysis != new.analysis,
        }
    }
}

/// One line for the log: what changed, or that nothing did.
impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing changed");
        }
        let mut parts = Vec::new();
        for (what, codes) in [
            ("devices added", &self.devices_added),
            ("devices removed", &self.devices_removed),
            ("devices changed", &self.devices_changed),
        ] {
            if !codes.is_empty() {
                parts.push(format!("{what}: {}", codes.join(", ")));
            }
        }
        for (section, changed) in [
            ("[limits]", self.limits),
            ("[auth]", self.auth),
            ("[analysis]", self.analysis),
        ] {
            if changed {
                parts.push(format!("{section} changed"));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// Why a reload from the file did not apply; the current settings stay in force either way.
#[derive(Debug, thiserror::Error)]
pub enum ReloadFailure {
    /// The file does not load (unreadable, not TOML, or a key is wrong: the error names it).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The file loads but changes a key read only at start.
    #[error(transparent)]
    Refused(#[from] ReloadError),
}

/// Reload attempts since start, by outcome (`shuttlegate_config_reloads_total{outcome}`).
#[derive(Debug, Default)]
pub struct ReloadCounts {
    /// Accepted, and something changed.
    pub applied: AtomicU64,
    /// Accepted; the file says what is already in force.
    pub unchanged: AtomicU64,
    /// The file changes a key that needs a restart.
    pub refused: AtomicU64,
    /// The file does not load.
    pub invalid: AtomicU64,
}

impl ReloadCounts {
    /// `(outcome label, count)` for each outcome, in a fixed order.
    pub fn snapshot(&self) -> [(&'static str, u64); 4] {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("applied", read(&self.applied)),
            ("unchanged", read(&self.unchanged)),
            ("refused", read(&self.refused)),
            ("invalid", read(&self.invalid)),
        ]
    }

    fn count(&self, outcome: &Result<Reloaded, ReloadFailure>) {
        let counter = match outcome {
            Ok(changed) if changed.is_empty() => &self.unchanged,
            Ok(_) => &self.applied,
            Err(ReloadFailure::Refused(_)) => &self.refused,
            Err(ReloadFailure::Invalid(_)) => &self.invalid,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The daemon's settings, shared and reloadable. Cheap to clone; all clones see one value.
#[derive(Debug, Clone)]
pub struct SettingsHandle {
    /// The one sender; receivers come from `subscribe`.
    tx: Arc<watch::Sender<Arc<Settings>>>,
    /// Outcomes of [`SettingsHandle::reload_file`].
    counts: Arc<ReloadCounts>,
}

impl SettingsHandle {
    pub fn new(settings: Settings) -> SettingsHandle {
        SettingsHandle {
            tx: Arc::new(watch::Sender::new(Arc::new(settings))),
            counts: Arc::default(),
        }
    }

    /// Reload attempts from the file so far, by outcome.
    pub fn reload_counts(&self) -> Arc<ReloadCounts> {
        self.counts.clone()
    }

    /// Loads `path` again (file, secret files and `SHUTTLEGATE_*` overrides, as at start),
    /// validates it and [`reload`](Self::reload)s it; counts the outcome. What SIGHUP does.
    pub fn reload_file(&self, path: &Path) -> Result<Reloaded, ReloadFailure> {
        let outcome = super::load(path)
            .map_err(ReloadFailure::from)
            .and_then(|new| self.reload(new).map_err(ReloadFailure::from));
        self.counts.count(&outcome);
        outcome
    }

    /// The settings in force now.
    pub fn current(&self) -> Arc<Settings> {
        self.tx.borrow().clone()
    }

    /// A receiver that changes on every accepted reload that changed something.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.tx.subscribe()
    }

    /// Replaces the settings with `new` (already validated) if every [`RESTART_KEYS`] key is
    /// unchanged, and says what changed; subscribers are woken only if something did. Refused
    /// reloads leave the current settings in force.
    pub fn reload(&self, new: Settings) -> Result<Reloaded, ReloadError> {
        let mut outcome = Ok(Reloaded::default());
        // Compare and replace under the watch's lock, so two reloads cannot interleave.
        self.tx.send_if_modified(|current| {
            if let Some(&(key, _)) = RESTART_KEYS.iter().find(|(_, same)| !same(current, &new)) {
                outcome = Err(ReloadError::RestartRequired { key });
                return false;
            }
            let changed = Reloaded::between(current, &new);
            if changed.is_empty() {
                return false;
            }
            *current = Arc::new(new);
            outcome = Ok(changed);
            true
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{DeviceAuth, DeviceSettings, Secret};

    fn base() -> Settings {
        let text = "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n";
        let mut s = super::super::load_str(Path::new("/etc/shuttlegate/court.toml"), text)
            .expect("a minimal configuration is valid");
        s.devices = vec![device("2025001"), device("2025002")];
        s
    }

    fn device(code: &str) -> DeviceSettings {
        DeviceSettings {
            code: code.into(),
            auth: DeviceAuth::Tokenless,
            allowed_peers: Vec::new(),
            mount_radius_m: 0.3,
            user: None,
            sensors: Default::default(),
            acc_full_scale_g: 16.0,
            gyro_full_scale_dps: 2000.0,
            axes: Default::default(),
            wrist_grip_deg: None,
            overflow: Default::default(),
            infer_axes: false,
        }
    }

    #[test]
    fn a_reload_changing_devices_and_limits_is_applied_and_says_what_changed() {
        let handle = SettingsHandle::new(base());
        let mut rx = handle.subscribe();
        let mut new = base();
        new.devices.remove(0);
        new.devices[0].user = Some("u1".into());
        new.devices.push(device("2025003"));
        new.limits.messages_per_second += 1;
        let changed = handle.reload(new.clone()).unwrap();
        assert_eq!(
            changed,
            Reloaded {
                devices_added: vec!["2025003".into()],
                devices_removed: vec!["2025001".into()],
                devices_changed: vec!["2025002".into()],
                limits: true,
                auth: false,
                analysis: false,
            }
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update().clone(), new);
        assert_eq!(*handle.clone().current(), new, "clones share the value");
    }

    #[test]
    fn an_unchanged_configuration_reloads_as_empty_and_wakes_no_one() {
        let handle = SettingsHandle::new(base());
        let rx = handle.subscribe();
        assert!(handle.reload(base()).unwrap().is_empty());
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn auth_and_analysis_may_change() {
        let handle = SettingsHandle::new(base());
        let mut new = base();
        new.auth.admin_token = Some(Secret::new("a-new-admin-token".into()));
        new.analysis.racket_mass_kg += 0.01;
        let changed = handle.reload(new).unwrap();
        assert!(changed.auth && changed.analysis && !changed.limits);
    }

    /// A start-only key and a change to it.
    type StartOnlyChange = (&'static str, fn(&mut Settings));

    #[test]
    fn a_reload_touching_a_start_only_key_is_refused_naming_it_and_changes_nothing() {
        let cases: Vec<StartOnlyChange> = vec![
            ("gateway.venue", |s| s.gateway.venue = "other".into()),
            ("gateway.state_dir", |s| s.gateway.state_dir = "/x".into()),
            ("http.listen", |s| {
                s.http.listen = "127.0.0.1:9".parse().unwrap()
            }),
            ("http.handshake_timeout", |s| s.http.handshake_timeout *= 2),
            ("udp", |s| s.udp.enabled = !s.udp.enabled),
            ("journal.max_bytes", |s| s.journal.max_bytes *= 2),
            ("journal.segment_bytes", |s| s.journal.segment_bytes /= 2),
        ];
        for (key, change) in cases {
            let handle = SettingsHandle::new(base());
            let rx = handle.subscribe();
            let mut new = base();
            new.devices.push(device("2025009"));
            change(&mut new);
            let err = handle.reload(new).unwrap_err();
            assert_eq!(err, ReloadError::RestartRequired { key });
            assert!(err.to_string().contains(key), "{err}");
            assert_eq!(*handle.current(), base(), "{key}: nothing reloaded");
            assert!(!rx.has_changed().unwrap());
        }
    }

    #[test]
    fn what_changed_reads_as_one_log_line() {
        let changed = Reloaded {
            devices_added: vec!["a2".into(), "a3".into()],
            devices_changed: vec!["a1".into()],
            limits: true,
            ..Reloaded::default()
        };
        assert_eq!(
            changed.to_string(),
            "devices added: a2, a3; devices changed: a1; [limits] changed"
        );
        assert_eq!(Reloaded::default().to_string(), "nothing changed");
    }

    #[test]
    fn reloading_from_the_file_counts_each_outcome_and_keeps_the_settings_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("court.toml");
        let court = "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n";
        std::fs::write(&path, court).unwrap();
        let handle = SettingsHandle::new(super::super::load(&path).unwrap());
        let counts = |h: &SettingsHandle| h.reload_counts().snapshot().map(|(_, n)| n);

        assert!(handle.reload_file(&path).unwrap().is_empty());
        let added = format!("{court}\n[[devices]]\ncode = \"a1\"\nallow_tokenless = true\n");
        std::fs::write(&path, &added).unwrap();
        assert_eq!(handle.reload_file(&path).unwrap().devices_added, ["a1"]);
        let moved = added.replace("court = \"c\"", "court = \"d\"");
        std::fs::write(&path, moved).unwrap();
        let refused = handle.reload_file(&path).unwrap_err();
        assert!(matches!(refused, ReloadFailure::Refused(_)), "{refused}");
        std::fs::write(&path, format!("{added}\n[limits]\nnot_a_key = 1\n")).unwrap();
        let invalid = handle.reload_file(&path).unwrap_err();
        assert!(
            invalid.to_string().contains("limits.not_a_key"),
            "{invalid}"
        );

        assert_eq!(
            counts(&handle),
            [1, 1, 1, 1],
            "applied, unchanged, refused, invalid"
        );
        assert_eq!(
            handle.current().devices.len(),
            1,
            "the applied reload stays"
        );
        assert_eq!(handle.current().gateway.court, "c");
    }

    #[test]
    fn every_restart_key_names_a_key_of_the_configuration() {
        let sections = ["gateway", "http", "udp", "serial", "journal", "uplink"];
        for (key, same) in RESTART_KEYS {
            assert!(sections.contains(&key.split('.').next().unwrap()), "{key}");
            assert!(same(&base(), &base()), "{key}");
        }
    }
}
