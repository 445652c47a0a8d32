//! Typed settings: what the daemon runs on, built once from the raw layer by [`validate`], which
//! checks every value and cross-key rule and reports each problem with its key path. Nothing
//! downstream re-validates or sees a raw string where a type belongs.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;

pub use super::raw::WhenFull;
use super::raw::{
    HumanDuration, HumanSize, RawAuth, RawAxes, RawDevice, RawHub, RawMqtt, RawSettings,
};
use super::secret::{readable_by_others, resolve_file};
use super::{Problem, Secret, SecretUrl};
use shuttlegate_core::analysis::{AxisMap, CourtAnalysis, CourtDevice, DeviceProfile, Overflow};
use shuttlegate_core::batch::BodyPosition;
use shuttlegate_core::court::Court;
use shuttlegate_core::protocol::FrameClock;
use shuttlegate_core::protocol::validate::{self, IdKind};

/// Longest device code: it travels in URLs, MQTT topics and every V3.3 push (whose parser
/// has a 512-byte budget).
pub const MAX_DEVICE_CODE_CHARS: usize = IdKind::DeviceCode.max_chars();
/// Largest secret file read (`*_file` keys).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The whole configuration of one court's gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub gateway: GatewaySettings,
    pub http: HttpSettings,
    pub udp: UdpSettings,
    pub serial: Vec<SerialSettings>,
    pub journal: JournalSettings,
    pub limits: LimitSettings,
    pub auth: AuthSettings,
    pub devices: Vec<DeviceSettings>,
    /// `[analysis]`: thresholds, ideals and constants of the swing analysis.
    pub analysis: shuttlegate_core::analysis::AnalysisSettings,
    pub uplink: UplinkSettings,
    /// What loads but an operator should fix (a secret file others can read): logged at start
    /// and printed by `check-config`.
    pub warnings: Vec<Problem>,
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySettings {
    /// Venue name, as used in MQTT topics (`{prefix}/{venue}/{court}/…`).
    pub venue: String,
    /// Court name, likewise.
    pub court: String,
    /// Where the journal, cursors and the lock file live.
    pub state_dir: PathBuf,
    /// The court's timezone: V3.3 time-of-day stamps and reply timestamps use it.
    pub timezone: Tz,
    /// Whether the kernel is asked if the clock is synchronised (`clock_unsynced`).
    pub clock_check: bool,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// One listener for HTTP and every WebSocket endpoint.
    pub listen: SocketAddr,
    /// A request's head must arrive within this (new or kept-alive connection).
    pub header_read_timeout: Duration,
    /// Idle time between requests before a connection is closed (at most `header_read_timeout`).
    pub keep_alive_timeout: Duration,
    /// Accept to the first response (a WebSocket's 101, a TLS handshake included).
    pub handshake_timeout: Duration,
    /// The optional TLS listener (phones, admin, pages); same routes and caps.
    pub tls: Option<TlsListener>,
}

/// `[http] tls_listen` with its certificate and key (PEM).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsListener {
    pub listen: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `[udp]` (the binary frame and discovery arrive in a later issue).
#[derive(Debug, Clone, PartialEq)]
pub struct UdpSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Answer LAN discovery broadcasts.
    pub discovery: bool,
}

/// One `[[serial]]` port (a later issue).
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSettings {
    pub path: PathBuf,
    pub baud: u32,
}

/// `[journal]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalSettings {
    /// Byte cap of the journal on disk.
    pub max_bytes: u64,
    pub when_full: WhenFull,
    /// Group-commit window: writers arriving within it share one fsync.
    pub commit_interval: Duration,
    /// Size at which a segment is closed and a new one started.
    pub segment_bytes: u64,
    /// How long a failed segment roll or write is retried before the daemon exits non-zero.
    pub failure_grace: Duration,
    /// Fraction of `max_bytes` one device's raw batches may take (1.0: no per-device limit).
    pub device_share: f64,
}

/// `[limits]`: per-connection protection.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Largest WebSocket message; larger closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Frames (text, binary, ping, pong) per second per device before `error rate_limited`.
    pub messages_per_second: u32,
    /// Consecutive rate-limited seconds before the connection is closed with 4008.
    pub rate_limit_strikes: u32,
    /// Time without traffic after which a device is offline.
    pub idle_timeout: Duration,
    /// Outbound messages queued per connection; a client that falls further behind is
    /// disconnected.
    pub outbound_queue: usize,
    /// Simultaneous connections (HTTP and WebSocket, every listener).
    pub max_connections: usize,
    /// Open sessions per device; opening one more stops the oldest.
    pub max_open_sessions_per_device: usize,
    /// Sessions a device may open per minute; more are refused.
    pub session_starts_per_minute: usize,
    /// Simultaneous connections from one address (an IPv6 /64 counts as one).
    pub max_connections_per_address: usize,
    /// Connections that have not had their first response yet (handshake budget).
    pub max_handshaking: usize,
    /// Admin consoles (`/ws/admin/`) connected at once.
    pub max_admins: usize,
    /// Simultaneous phone connections (`/ws/miniprogram/`); more are refused with 503.
    pub max_phones: usize,
    /// Courtside screens (`/ws/dashboard/`) connected at once; more are refused with 503.
    pub max_screens: usize,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// Token of the admin console (`/ws/admin/`); no admin access when absent.
    pub admin_token: Option<Secret>,
    /// Key the cloud signs phone JWTs with; phones are refused when absent.
    pub jwt_secret: Option<Secret>,
    /// How a phone's JWT is verified; `None` (no key configured): every phone is refused.
    pub jwt: Option<JwtSettings>,
}

/// The signature algorithms a phone's JWT may be checked with: exactly one is configured, and a
/// token signed otherwise (or not at all, `alg: none`) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

impl JwtAlgorithm {
    pub fn parse(text: &str) -> Option<JwtAlgorithm> {
        match text {
            "HS256" => Some(JwtAlgorithm::Hs256),
            "RS256" => Some(JwtAlgorithm::Rs256),
            "ES256" => Some(JwtAlgorithm::Es256),
            _ => None,
        }
    }
}

/// The key a phone's JWT is verified with.
#[derive(Debug, Clone, PartialEq)]
pub enum JwtKey {
    /// HS256: the shared secret (`jwt_secret` / `jwt_secret_file`).
    Shared(Secret),
    /// RS256 / ES256: the cloud's public key, PEM, read from `jwt_public_key_file` at load.
    Public {
        algorithm: JwtAlgorithm,
        pem: Vec<u8>,
    },
}

/// `[auth]`'s phone JWT rules.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    pub key: JwtKey,
    /// `aud` must contain it when set.
    pub audience: Option<String>,
    /// `iss` must equal it when set.
    pub issuer: Option<String>,
}

/// How a device proves who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceAuth {
    /// `?token=` or `Authorization: Bearer`, compared in constant time.
    Token(Secret),
    /// Accepted without a token (V3.3 cannot send one); warned about at start.
    Tokenless,
}

/// One `[[devices]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSettings {
    /// Device code, as in `/ws/esp32/{code}/`.
    pub code: String,
    pub auth: DeviceAuth,
    /// Networks the device may connect from (`allowed_peers`); empty: anywhere.
    pub allowed_peers: Vec<ipnet::IpNet>,
    /// Distance from the grip to the racket node, for head speed.
    pub mount_radius_m: f64,
    /// The user the device is bound to (phones of that user get its swings).
    pub user: Option<String>,
    /// `sensor_id` → body position.
    pub sensors: BTreeMap<u32, BodyPosition>,
    /// Accelerometer full scale, g.
    pub acc_full_scale_g: f64,
    /// Gyroscope full scale, °/s.
    pub gyro_full_scale_dps: f64,
    /// Configured axes per node (`axes`); nodes without an entry have theirs inferred.
    pub axes: BTreeMap<BodyPosition, AxisMap>,
    /// `wrist_grip_deg`: a wrist-only device's wrist read as a racket at this grip angle.
    pub wrist_grip_deg: Option<f64>,
    /// `overflow`: what the nodes report past full scale.
    pub overflow: Overflow,
    /// `infer_axes` (default true): a racket node without `axes` has them inferred.
    pub infer_axes: bool,
}

impl DeviceSettings {
    /// The body position of a node, by this device's map.
    pub fn position_of(&self, sensor_id: u32) -> Option<BodyPosition> {
        self.sensors.get(&sensor_id).copied()
    }

    /// True when the device is accepted without a token.
    pub fn is_tokenless(&self) -> bool {
        matches!(self.auth, DeviceAuth::Tokenless)
    }
}

/// `[uplink]`: each sink is `Some` only when enabled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UplinkSettings {
    pub mqtt: Option<MqttSettings>,
    pub hub: Option<HubSettings>,
}

/// A validated broker or hub address.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The URL as written; shown with its credentials redacted.
    pub url: SecretUrl,
    pub host: String,
    pub port: u16,
    /// `mqtts://` or `wss://`.
    pub tls: bool,
}

/// `[uplink.mqtt]`, enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSettings {
    pub endpoint: Endpoint,
    /// Stable client id (persistent session); default `shuttlegate-{venue}-{court}`.
    pub client_id: String,
    /// Topics live under `{topic_prefix}/{venue}/{court}/`.
    pub topic_prefix: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// CA bundle for `mqtts://` (system roots when absent).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, both or neither.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub keep_alive: Duration,
    /// Unacknowledged QoS 1 publishes in flight (16–32).
    pub inflight: u16,
    /// Largest MQTT packet, both ways.
    pub max_packet_bytes: usize,
    /// Backlog replay pace, records per second, so live traffic is not starved.
    pub replay_rate: u32,
}

/// `[uplink.hub]`, enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSettings {
    pub endpoint: Endpoint,
    /// JWT sent as `?token=`.
    pub token: Secret,
    /// True: the hub's application acks advance the cursor; false: fire and forget.
    pub acks: bool,
    pub ping_interval: Duration,
    /// Backlog replay pace, records per second.
    pub replay_rate: u32,
}

impl Settings {
    /// Each configured device as the analysis sees it: its profile and node map, with the
    /// configured `user`.
    pub fn court_devices(&self) -> Vec<CourtDevice> {
        self.court_devices_with(|d| d.user.clone())
    }

    /// [`Settings::court_devices`] with the players the court has bound to them (`bind_user`),
    /// where a binding holds over the configured `user`.
    pub fn court_devices_bound(&self, court: &Court) -> Vec<CourtDevice> {
        self.court_devices_with(|d| {
            let configured = d.user.as_deref();
            let user = court
                .device(&d.code)
                .map_or(configured, |s| s.user(configured));
            user.map(str::to_owned)
        })
    }

    fn court_devices_with(
        &self,
        user_of: impl Fn(&DeviceSettings) -> Option<String>,
    ) -> Vec<CourtDevice> {
        self.devices
            .iter()
            .map(|d| CourtDevice {
                profile: DeviceProfile {
                    device: d.code.clone(),
                    user: user_of(d),
                    mount_radius_m: d.mount_radius_m,
                    acc_full_scale_g: d.acc_full_scale_g,
                    gyro_full_scale_dps: d.gyro_full_scale_dps,
                    positions: d
                        .sensors
                        .values()
                        .copied()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    axes: d.axes.clone(),
                    wrist_grip_deg: d.wrist_grip_deg,
                    overflow: d.overflow,
                    infer_axes: d.infer_axes,
                },
                sensors: d.sensors.clone(),
            })
            .collect()
    }

    /// The court's analysis for this configuration: each configured device's profile and node
    /// map, V3.3 stamps read in the court's timezone. Live, resumed and replayed analyses are
    /// all built here, so they route batches alike.
    pub fn court_analysis(&self) -> CourtAnalysis {
        let devices = self.court_devices();
        CourtAnalysis::new(
            self.analysis.clone(),
            devices,
            FrameClock::new(self.gateway.timezone),
        )
    }

    /// The device with this code.
    pub fn device(&self, code: &str) -> Option<&DeviceSettings> {
        self.devices.iter().find(|d| d.code == code)
    }

    /// One line for `check-config`.
    pub fn summary(&self) -> String {
        let tokenless = self.devices.iter().filter(|d| d.is_tokenless()).count();
        format!(
            "venue {} court {}: {} device(s) ({} tokenless), http {}{}, state_dir {}, timezone {}, \
             journal {} ({}), uplink mqtt {}, hub {}",
            self.gateway.venue,
            self.gateway.court,
            self.devices.len(),
            tokenless,
            self.http.listen,
            self.http
                .tls
                .as_ref()
                .map_or(String::new(), |t| format!(" (tls {})", t.listen)),
            self.gateway.state_dir.display(),
            self.gateway.timezone,
            bytesize::ByteSize(self.journal.max_bytes).display().iec(),
            match self.journal.when_full {
                WhenFull::DropOldestRaw => "drop_oldest_raw",
                WhenFull::Refuse => "refuse",
            },
            self.uplink
                .mqtt
                .as_ref()
                .map_or("off".into(), |m| m.endpoint.url.to_string()),
            self.uplink
                .hub
                .as_ref()
                .map_or("off".into(), |h| h.endpoint.url.to_string()),
        )
    }
}

/// Collects problems and warnings while the raw settings are checked; `base` (the
/// configuration file's directory) and `credentials` (systemd's credentials directory, when
/// set) resolve relative file paths.
pub(crate) struct Checker<'a> {
    base: &'a Path,
    credentials: Option<&'a Path>,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(base: &'a Path, credentials: Option<&'a Path>) -> Checker<'a> {
        Checker {
            base,
            credentials,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The problems (which fail the load) and the warnings (which do not).
    pub(crate) fn finish(self) -> (Vec<Problem>, Vec<Problem>) {
        (self.problems, self.warnings)
    }

    fn problem(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            reason: reason.into(),
            origin: None,
        });
    }

    fn has_problem(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }

    /// Records a problem when `ok` is false; gives back `ok`.
    fn check(&mut self, ok: bool, key: &str, reason: impl FnOnce() -> String) -> bool {
        if !ok {
            self.problem(key, reason());
        }
        ok
    }

    /// A `*_file` path: see [`resolve_file`].
    fn path(&self, path: &Path) -> PathBuf {
        resolve_file(path, self.base, self.credentials)
    }

    /// Warns when a secret file (a token, a password, a private key) can be read by group or
    /// others: it loads, but anyone with a shell on the Pi can read the credential.
    fn check_secret_mode(&mut self, key: &str, path: &Path, metadata: &std::fs::Metadata) {
        if let Some(mode) = readable_by_others(metadata) {
            self.warnings.push(Problem {
                key: key.to_owned(),
                reason: format!(
                    "{} is readable by group or others (mode {mode:04o}); \
                     `chmod 600` it, or use systemd's LoadCredential=",
                    path.display()
                ),
                origin: None,
            });
        }
    }

    /// A secret given inline or in a file (exclusive); `None` when neither is set.
    fn secret(
        &mut self,
        key: &str,
        inline: Option<&Secret>,
        file: Option<&PathBuf>,
    ) -> Option<Secret> {
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(key, format!("set `{key}` or `{key}_file`, not both"));
                None
            }
            (Some(value), None) => self
                .check(!value.expose().trim().is_empty(), key, || {
                    "must not be empty".into()
                })
                .then(|| value.clone()),
            (None, Some(path)) => self.secret_file(&format!("{key}_file"), path),
            (None, None) => None,
        }
    }

    fn secret_file(&mut self, key: &str, path: &Path) -> Option<Secret> {
        let full = self.path(path);
        match read_secret(&full) {
            Ok((secret, metadata)) => {
                self.check_secret_mode(key, &full, &metadata);
                Some(secret)
            }
            Err(reason) => {
                self.problem(key, format!("{}: {reason}", full.display()));
                None
            }
        }
    }

    /// A file that holds a secret but is read by someone else (the TLS client key): it must
    /// exist, and its mode is checked like a secret file's.
    fn secret_path(&mut self, key: &str, path: Option<&PathBuf>) -> Option<PathBuf> {
        let full = self.existing_file(key, path)?;
        if let Ok(metadata) = std::fs::metadata(&full) {
            self.check_secret_mode(key, &full, &metadata);
        }
        Some(full)
    }

    fn existing_file(&mut self, key: &str, path: Option<&PathBuf>) -> Option<PathBuf> {
        let full = self.path(path?);
        match std::fs::metadata(&full) {
            Ok(m) if m.is_file() => Some(full),
            Ok(_) => {
                self.problem(key, format!("{} is not a file", full.display()));
                None
            }
            Err(e) => {
                self.problem(key, format!("{}: {e}", full.display()));
                None
            }
        }
    }

    fn socket_addr(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    key,
                    format!("`{text}` is not an IP:port address (e.g. 0.0.0.0:8080)"),
                );
                None
            }
        }
    }

    fn name(&mut self, key: &str, value: Option<&String>) -> Option<String> {
        let Some(value) = value else {
            self.problem(key, "is required");
            return None;
        };
        let ok = !value.is_empty()
            && value.chars().count() <= 64
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        self.check(ok, key, || {
            format!("`{value}` must be 1–64 characters of A–Z, a–z, 0–9, `-`, `_`, `.` (it is used in MQTT topics)")
        })
        .then(|| value.clone())
    }

    fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        key: &str,
        value: T,
        lo: T,
        hi: T,
    ) -> T {
        self.check(value >= lo && value <= hi, key, || {
            format!("{value} is out of range ({lo} to {hi})")
        });
        value
    }

    /// A size in bytes within `lo..=hi`.
    fn size_in(&mut self, key: &str, size: &HumanSize, lo: u64, hi: u64) -> u64 {
        let bytes = match size {
            HumanSize::Bytes(n) => *n,
            HumanSize::Text(text) => match text.trim().parse::<bytesize::ByteSize>() {
                Ok(b) => b.as_u64(),
                Err(e) => {
                    self.problem(
                        key,
                        format!("`{text}` is not a size ({e}); write e.g. \"64KiB\", \"512MiB\""),
                    );
                    return lo;
                }
            },
        };
        let show = |n: u64| bytesize::ByteSize(n).display().iec().to_string();
        self.check(bytes >= lo && bytes <= hi, key, || {
            format!(
                "{} is out of range ({} to {})",
                show(bytes),
                show(lo),
                show(hi)
            )
        });
        bytes
    }

    fn duration_in(
        &mut self,
        key: &str,
        text: &HumanDuration,
        lo: Duration,
        hi: Duration,
    ) -> Duration {
        let value = match humantime::parse_duration(text.0.trim()) {
            Ok(value) => value,
            Err(e) => {
                self.problem(
                    key,
                    format!(
                        "`{}` is not a duration ({e}); write e.g. \"2ms\", \"30s\"",
                        text.0
                    ),
                );
                return lo;
            }
        };
        self.check(value >= lo && value <= hi, key, || {
            format!(
                "{} is out of range ({} to {})",
                humantime::format_duration(value),
                humantime::format_duration(lo),
                humantime::format_duration(hi)
            )
        });
        value
    }

    fn endpoint(
        &mut self,
        key: &str,
        url: Option<&SecretUrl>,
        schemes: [&str; 2],
    ) -> Option<Endpoint> {
        let Some(secret_url) = url else {
            self.problem(key, "is required when the sink is enabled");
            return None;
        };
        let url = secret_url.expose();
        let parsed = url.parse::<http::Uri>();
        let scheme = parsed
            .as_ref()
            .ok()
            .and_then(|u| u.scheme_str().map(str::to_owned));
        let host = parsed
            .as_ref()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        match (scheme, host) {
            (Some(scheme), Some(host))
                if schemes.contains(&scheme.as_str()) && !host.is_empty() =>
            {
                let tls = scheme == schemes[1];
                let default_port = match (schemes[0], tls) {
                    ("mqtt", false) => 1883,
                    ("mqtt", true) => 8883,
                    (_, false) => 80,
                    (_, true) => 443,
                };
                let port = parsed
                    .ok()
                    .and_then(|u| u.port_u16())
                    .unwrap_or(default_port);
                Some(Endpoint {
                    url: secret_url.clone(),
                    host,
                    port,
                    tls,
                })
            }
            _ => {
                self.problem(
                    key,
                    format!(
                        "`{}` must be a {}:// or {}:// URL with a host",
                        secret_url, schemes[0], schemes[1]
                    ),
                );
                None
            }
        }
    }
}

fn read_secret(path: &Path) -> Result<(Secret, std::fs::Metadata), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "is {} bytes; a secret file holds at most {MAX_SECRET_FILE_BYTES}",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err("is empty".into());
    }
    Ok((Secret::new(secret.to_owned()), meta))
}

/// Check the raw settings; every problem found is recorded in `checker`. `None` when there
/// was at least one.
pub(crate) fn validate(raw: RawSettings, checker: &mut Checker<'_>) -> Option<Settings> {
    let gateway = GatewaySettings {
        venue: checker
            .name("gateway.venue", raw.gateway.venue.as_ref())
            .unwrap_or_default(),
        court: checker
            .name("gateway.court", raw.gateway.court.as_ref())
            .unwrap_or_default(),
        state_dir: raw.gateway.state_dir.clone(),
        timezone: match raw.gateway.timezone.parse::<Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                checker.problem(
                    "gateway.timezone",
                    format!(
                        "`{}` is not an IANA timezone name (e.g. Asia/Shanghai)",
                        raw.gateway.timezone
                    ),
                );
                Tz::UTC
            }
        },
        clock_check: raw.gateway.clock_check,
    };
    checker.check(
        !gateway.state_dir.as_os_str().is_empty(),
        "gateway.state_dir",
        || "must not be empty".into(),
    );
    let http = validate_http(&raw.http, checker);
    let udp = UdpSettings {
        enabled: raw.udp.enabled,
        listen: checker
            .socket_addr("udp.listen", &raw.udp.listen)
            .unwrap_or(([0, 0, 0, 0], 0).into()),
        discovery: raw.udp.discovery,
    };
    let serial = raw
        .serial
        .iter()
        .enumerate()
        .map(|(i, s)| SerialSettings {
            path: s.path.clone(),
            baud: checker.in_range(&format!("serial[{i}].baud"), s.baud, 1200, 4_000_000),
        })
        .collect();
    let max_bytes = checker.size_in(
        "journal.max_bytes",
        &raw.journal.max_bytes,
        2 << 20,
        u64::MAX,
    );
    let segment_bytes = checker.size_in(
        "journal.segment_bytes",
        &raw.journal.segment_bytes,
        1 << 20,
        1 << 30,
    );
    let journal = JournalSettings {
        max_bytes,
        when_full: raw.journal.when_full,
        commit_interval: checker.duration_in(
            "journal.commit_interval",
            &raw.journal.commit_interval,
            Duration::ZERO,
            Duration::from_secs(1),
        ),
        segment_bytes,
        failure_grace: checker.duration_in(
            "journal.failure_grace",
            &raw.journal.failure_grace,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
        device_share: raw.journal.device_share,
    };
    checker.check(
        raw.journal.device_share > 0.0 && raw.journal.device_share <= 1.0,
        "journal.device_share",
        || {
            format!(
                "must be above 0 and at most 1 (a fraction of max_bytes), not {}",
                raw.journal.device_share
            )
        },
    );
    // Only when both sizes were readable, or the rule would repeat their problems.
    if !checker.has_problem("journal.max_bytes") && !checker.has_problem("journal.segment_bytes") {
        checker.check(
            journal.max_bytes >= 2 * journal.segment_bytes,
            "journal.max_bytes",
            || "must be at least twice journal.segment_bytes".into(),
        );
    }
    let limits = LimitSettings {
        max_message_bytes: checker.size_in(
            "limits.max_message_bytes",
            &raw.limits.max_message_bytes,
            1024,
            16 << 20,
        ) as usize,
        messages_per_second: checker.in_range(
            "limits.messages_per_second",
            raw.limits.messages_per_second,
            1,
            100_000,
        ),
        rate_limit_strikes: checker.in_range(
            "limits.rate_limit_strikes",
            raw.limits.rate_limit_strikes,
            1,
            3600,
        ),
        idle_timeout: checker.duration_in(
            "limits.idle_timeout",
            &raw.limits.idle_timeout,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        ),
        outbound_queue: checker.in_range(
            "limits.outbound_queue",
            raw.limits.outbound_queue,
            1,
            65_536,
        ),
        max_connections: checker.in_range(
            "limits.max_connections",
            raw.limits.max_connections,
            1,
            100_000,
        ),
        max_open_sessions_per_device: checker.in_range(
            "limits.max_open_sessions_per_device",
            raw.limits.max_open_sessions_per_device,
            1,
            64,
        ),
        session_starts_per_minute: checker.in_range(
            "limits.session_starts_per_minute",
            raw.limits.session_starts_per_minute,
            1,
            600,
        ),
        max_connections_per_address: checker.in_range(
            "limits.max_connections_per_address",
            raw.limits.max_connections_per_address,
            1,
            100_000,
        ),
        max_handshaking: checker.in_range(
            "limits.max_handshaking",
            raw.limits.max_handshaking,
            1,
            100_000,
        ),
        max_admins: checker.in_range("limits.max_admins", raw.limits.max_admins, 1, 256),
        max_phones: checker.in_range("limits.max_phones", raw.limits.max_phones, 0, 100_000),
        max_screens: checker.in_range("limits.max_screens", raw.limits.max_screens, 0, 256),
    };
    for (key, cap) in [
        (
            "limits.max_connections_per_address",
            limits.max_connections_per_address,
        ),
        ("limits.max_handshaking", limits.max_handshaking),
    ] {
        checker.check(cap <= limits.max_connections, key, || {
            format!(
                "{cap} must not exceed limits.max_connections ({})",
                limits.max_connections
            )
        });
    }
    let jwt_secret = checker.secret(
        "auth.jwt_secret",
        raw.auth.jwt_secret.as_ref(),
        raw.auth.jwt_secret_file.as_ref(),
    );
    let auth = AuthSettings {
        admin_token: admin_token(&raw.auth, checker),
        jwt: jwt(&raw.auth, jwt_secret.as_ref(), checker),
        jwt_secret,
    };
    let devices = validate_devices(&raw.devices, checker);
    let min_confidence = raw.analysis.min_stroke_confidence;
    checker.check(
        (0.0..=1.0).contains(&min_confidence),
        "analysis.min_stroke_confidence",
        || format!("{min_confidence} is out of range: a confidence is from 0 to 1"),
    );
    let uplink = UplinkSettings {
        mqtt: raw
            .uplink
            .mqtt
            .enabled
            .then(|| validate_mqtt(&raw.uplink.mqtt, &gateway, checker))
            .flatten(),
        hub: raw
            .uplink
            .hub
            .enabled
            .then(|| validate_hub(&raw.uplink.hub, checker))
            .flatten(),
    };
    checker.problems.is_empty().then_some(Settings {
        gateway,
        http,
        udp,
        serial,
        journal,
        limits,
        auth,
        devices,
        analysis: raw.analysis,
        uplink,
        warnings: Vec::new(),
    })
}

/// The shortest admin token accepted: the admin API can start sessions and send commands to
/// every device, so a guessable token is refused at load rather than found out on the LAN.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

fn admin_token(raw: &RawAuth, checker: &mut Checker<'_>) -> Option<Secret> {
    let token = checker.secret(
        "auth.admin_token",
        raw.admin_token.as_ref(),
        raw.admin_token_file.as_ref(),
    )?;
    let key = if raw.admin_token_file.is_some() {
        "auth.admin_token_file"
    } else {
        "auth.admin_token"
    };
    let long_enough = token.expose().trim().chars().count() >= MIN_ADMIN_TOKEN_CHARS;
    checker
        .check(long_enough, key, || {
            format!("must be at least {MIN_ADMIN_TOKEN_CHARS} characters")
        })
        .then_some(token)
}

/// The phone JWT rules: the algorithm names its key (HS256 the secret, RS256/ES256 a public
/// key file, parsed here so a bad PEM is found at load, not at a phone's first handshake).
fn jwt(raw: &RawAuth, secret: Option<&Secret>, checker: &mut Checker<'_>) -> Option<JwtSettings> {
    let text = raw.jwt_algorithm.as_deref().unwrap_or("HS256");
    let Some(algorithm) = JwtAlgorithm::parse(text) else {
        checker.problem(
            "auth.jwt_algorithm",
            format!("`{text}` is not one of HS256, RS256, ES256"),
        );
        return None;
    };
    let key = match algorithm {
        JwtAlgorithm::Hs256 => {
            checker.check(
                raw.jwt_public_key_file.is_none(),
                "auth.jwt_public_key_file",
                || "needs auth.jwt_algorithm RS256 or ES256 (HS256 uses auth.jwt_secret)".into(),
            );
            JwtKey::Shared(secret?.clone())
        }
        JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
            checker.check(secret.is_none(), "auth.jwt_secret", || {
                format!("is for HS256; auth.jwt_algorithm = \"{text}\" verifies with auth.jwt_public_key_file")
            });
            let key = "auth.jwt_public_key_file";
            let Some(path) = checker.existing_file(key, raw.jwt_public_key_file.as_ref()) else {
                checker.check(raw.jwt_public_key_file.is_some(), key, || {
                    format!("is required with auth.jwt_algorithm = \"{text}\" (PEM)")
                });
                return None;
            };
            let pem = match std::fs::read(&path) {
                Ok(pem) => pem,
                Err(e) => {
                    checker.problem(key, format!("{}: {e}", path.display()));
                    return None;
                }
            };
            let parsed = match algorithm {
                JwtAlgorithm::Rs256 => jsonwebtoken::DecodingKey::from_rsa_pem(&pem).map(drop),
                _ => jsonwebtoken::DecodingKey::from_ec_pem(&pem).map(drop),
            };
            if let Err(e) = parsed {
                checker.problem(
                    key,
                    format!("{}: not a {text} public key in PEM: {e}", path.display()),
                );
                return None;
            }
            JwtKey::Public { algorithm, pem }
        }
    };
    let text_claim = |checker: &mut Checker<'_>, key: &str, value: &Option<String>| {
        let value = value.as_ref()?;
        checker
            .check(!value.trim().is_empty(), key, || "must not be empty".into())
            .then(|| value.clone())
    };
    Some(JwtSettings {
        key,
        audience: text_claim(checker, "auth.jwt_audience", &raw.jwt_audience),
        issuer: text_claim(checker, "auth.jwt_issuer", &raw.jwt_issuer),
    })
}

/// One `allowed_peers` entry: an address (`192.168.1.23`, one host) or a network in CIDR
/// notation (`192.168.1.0/24`). A network written with host bits set (`192.168.1.5/24`) is
/// refused: it reads as one host but would admit the whole network.
pub fn parse_allowed_peer(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    let net: ipnet::IpNet = text
        .parse()
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR network"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set: write the network as `{}`",
            net.trunc()
        ));
    }
    Ok(net)
}

fn allowed_peers(
    device: &RawDevice,
    key: &dyn Fn(&str) -> String,
    checker: &mut Checker<'_>,
) -> Vec<ipnet::IpNet> {
    let Some(raw) = &device.allowed_peers else {
        return Vec::new();
    };
    checker.check(!raw.is_empty(), &key("allowed_peers"), || {
        "must list at least one address or network (leave it out to allow any)".into()
    });
    raw.iter()
        .enumerate()
        .filter_map(|(n, text)| match parse_allowed_peer(text) {
            Ok(net) => Some(net),
            Err(reason) => {
                checker.problem(key(&format!("allowed_peers[{n}]")), reason);
                None
            }
        })
        .collect()
}

fn validate_http(raw: &super::raw::RawHttp, checker: &mut Checker<'_>) -> HttpSettings {
    let timeout = |checker: &mut Checker<'_>, key: &str, text| {
        checker.duration_in(key, text, Duration::from_secs(1), Duration::from_secs(600))
    };
    let header_read_timeout = timeout(
        checker,
        "http.header_read_timeout",
        &raw.header_read_timeout,
    );
    let keep_alive_timeout = timeout(checker, "http.keep_alive_timeout", &raw.keep_alive_timeout);
    // hyper starts its header-read timer as soon as a connection is idle, so a longer
    // keep-alive would never be reached: refuse it rather than ignore it.
    if !checker.has_problem("http.header_read_timeout") {
        checker.check(
            keep_alive_timeout <= header_read_timeout,
            "http.keep_alive_timeout",
            || {
                format!(
                    "{} must not exceed http.header_read_timeout ({}): an idle connection waits for its next request's head",
                    humantime::format_duration(keep_alive_timeout),
                    humantime::format_duration(header_read_timeout)
                )
            },
        );
    }
    let listen = checker
        .socket_addr("http.listen", &raw.listen)
        .unwrap_or(([0, 0, 0, 0], 0).into());
    HttpSettings {
        listen,
        header_read_timeout,
        keep_alive_timeout,
        handshake_timeout: timeout(checker, "http.handshake_timeout", &raw.handshake_timeout),
        tls: validate_tls_listener(raw, listen, checker),
    }
}

/// `tls_listen` with both files, or none of the three.
fn validate_tls_listener(
    raw: &super::raw::RawHttp,
    plain: SocketAddr,
    checker: &mut Checker<'_>,
) -> Option<TlsListener> {
    let Some(text) = &raw.tls_listen else {
        for (key, file) in [
            ("http.tls_cert_file", &raw.tls_cert_file),
            ("http.tls_key_file", &raw.tls_key_file),
        ] {
            checker.check(file.is_none(), key, || {
                "needs http.tls_listen (the address of the TLS listener)".into()
            });
        }
        return None;
    };
    let listen = checker.socket_addr("http.tls_listen", text)?;
    checker.check(
        listen.port() == 0 || listen != plain,
        "http.tls_listen",
        || format!("`{text}` is http.listen's address too; give the TLS listener its own port"),
    );
    for (key, path) in [
        ("http.tls_cert_file", &raw.tls_cert_file),
        ("http.tls_key_file", &raw.tls_key_file),
    ] {
        if path.is_none() {
            checker.problem(key, "is required with http.tls_listen (PEM)");
        }
    }
    let cert_file = checker.existing_file("http.tls_cert_file", raw.tls_cert_file.as_ref());
    // The private key is a secret: its mode is checked like a token file's.
    let key_file = checker.secret_path("http.tls_key_file", raw.tls_key_file.as_ref());
    Some(TlsListener {
        listen,
        cert_file: cert_file?,
        key_file: key_file?,
    })
}

fn validate_devices(raw: &[RawDevice], checker: &mut Checker<'_>) -> Vec<DeviceSettings> {
    let mut seen = HashSet::new();
    let mut devices = Vec::with_capacity(raw.len());
    for (i, device) in raw.iter().enumerate() {
        let key = |field: &str| format!("devices[{i}].{field}");
        let code = match &device.code {
            None => {
                checker.problem(key("code"), "is required");
                continue;
            }
            Some(code) => code.clone(),
        };
        // The same rule as a code arriving from a device, the admin API or the cloud.
        let valid = validate::id(IdKind::DeviceCode, "code", &code);
        if let Err(invalid) = valid {
            checker.problem(
                key("code"),
                format!("`{code}` {} (it appears in URLs and topics)", invalid.rule),
            );
            continue;
        }
        if !seen.insert(code.clone()) {
            checker.problem(key("code"), format!("`{code}` is listed twice"));
            continue;
        }
        let auth = device_auth(device, &key, checker);
        let sensors = sensor_map(device, &key, checker);
        let axes = axes_map(device, &sensors, &key, checker);
        let settings = DeviceSettings {
            auth: DeviceAuth::Tokenless,
            allowed_peers: allowed_peers(device, &key, checker),
            mount_radius_m: checker.in_range(
                &key("mount_radius_m"),
                device.mount_radius_m,
                0.05,
                2.0,
            ),
            user: device.user.clone(),
            wrist_grip_deg: device
                .wrist_grip_deg
                .map(|deg| checker.in_range(&key("wrist_grip_deg"), deg, 0.0, 90.0)),
            overflow: overflow_of(device, &key, checker),
            infer_axes: device.infer_axes,
            sensors,
            axes,
            acc_full_scale_g: checker.in_range(
                &key("acc_full_scale_g"),
                device.acc_full_scale_g,
                1.0,
                64.0,
            ),
            gyro_full_scale_dps: checker.in_range(
                &key("gyro_full_scale_dps"),
                device.gyro_full_scale_dps,
                100.0,
                5000.0,
            ),
            code,
        };
        // A device whose auth is invalid is left out; the recorded problem fails the load.
        if let Some(auth) = auth {
            devices.push(DeviceSettings { auth, ..settings });
        }
    }
    devices
}

fn device_auth(
    device: &RawDevice,
    key: &dyn Fn(&str) -> String,
    checker: &mut Checker<'_>,
) -> Option<DeviceAuth> {
    let token = checker.secret(
        &key("token"),
        device.token.as_ref(),
        device.token_file.as_ref(),
    );
    let has_token = device.token.is_some() || device.token_file.is_some();
    match (has_token, device.allow_tokenless) {
        (true, true) => {
            checker.problem(
                key("allow_tokenless"),
                "a device has either a token (token or token_file) or allow_tokenless = true, not both",
            );
            None
        }
        (false, false) => {
            checker.problem(
                key("token"),
                "the device has no token: set token or token_file, or allow_tokenless = true for firmware that cannot send one (V3.3)",
            );
            None
        }
        (false, true) => Some(DeviceAuth::Tokenless),
        (true, false) => {
            let token = token?;
            let ok = token.expose().chars().count() >= 8
                && !token.expose().chars().any(char::is_whitespace);
            checker
                .check(ok, &key("token"), || {
                    "must be at least 8 characters without whitespace".into()
                })
                .then_some(DeviceAuth::Token(token))
        }
    }
}

/// A `placement` or `sensors` position name. A forearm node reads the forearm's rotation as a
/// wrist node does (one rigid segment), so it is analysed as the wrist.
fn position_named(name: &str) -> Option<BodyPosition> {
    if name == "forearm" {
        return Some(BodyPosition::Wrist);
    }
    BodyPosition::ALL
        .iter()
        .copied()
        .find(|p| p.as_str() == name)
}

const POSITION_NAMES: &str = "waist, shoulder, wrist, forearm or racket";

fn sensor_map(
    device: &RawDevice,
    key: &dyn Fn(&str) -> String,
    checker: &mut Checker<'_>,
) -> BTreeMap<u32, BodyPosition> {
    if let Some(placement) = &device.placement {
        checker.check(device.sensors.is_none(), &key("placement"), || {
            "is for a single-node device; with `sensors`, give each node's position there".into()
        });
        let Some(position) = position_named(placement) else {
            checker.problem(
                key("placement"),
                format!("unknown placement `{placement}` (expected {POSITION_NAMES})"),
            );
            return BTreeMap::new();
        };
        // The one node, whatever sensor id its firmware gives it.
        return (0..=255).map(|id| (id, position)).collect();
    }
    let Some(raw) = &device.sensors else {
        return (1..=4)
            .filter_map(|id| BodyPosition::default_for_sensor_id(id).map(|p| (id, p)))
            .collect();
    };
    let mut map = BTreeMap::new();
    for (id, position) in raw {
        let entry_key = key(&format!("sensors.{id}"));
        let id = match id.parse::<u32>() {
            Ok(n) if n <= 255 => n,
            _ => {
                checker.problem(&entry_key, "a sensor id must be an integer from 0 to 255");
                continue;
            }
        };
        match position_named(position) {
            Some(p) => {
                map.insert(id, p);
            }
            None => checker.problem(
                &entry_key,
                format!("unknown body position `{position}` (expected {POSITION_NAMES})"),
            ),
        }
    }
    checker.check(!raw.is_empty(), &key("sensors"), || {
        "must map at least one sensor id".into()
    });
    map
}

/// `overflow`: what the device's nodes report past full scale: `"auto"` (the default: a wrap
/// undone where the readings show one and the range makes it unambiguous), `"wrap"` (every
/// wrap found undone) or `"clip"` (wraps only flagged).
fn overflow_of(
    device: &RawDevice,
    key: &dyn Fn(&str) -> String,
    checker: &mut Checker<'_>,
) -> Overflow {
    match device.overflow.as_deref() {
        None | Some("auto") => Overflow::Auto,
        Some("wrap") => Overflow::Wrap,
        Some("clip") => Overflow::Clip,
        Some(other) => {
            checker.problem(
                key("overflow"),
                format!("unknown overflow `{other}` (expected auto, wrap or clip)"),
            );
            Overflow::Auto
        }
    }
}

/// `axes`: one list for every node of the device, or one per body position it carries.
fn axes_map(
    device: &RawDevice,
    sensors: &BTreeMap<u32, BodyPosition>,
    key: &dyn Fn(&str) -> String,
    checker: &mut Checker<'_>,
) -> BTreeMap<BodyPosition, AxisMap> {
    let carried: BTreeSet<BodyPosition> = sensors.values().copied().collect();
    let mut out = BTreeMap::new();
    let parse = |entry_key: String, names: &[String], checker: &mut Checker<'_>| {
        match AxisMap::parse(names) {
            Ok(map) => Some(map),
            Err(why) => {
                checker.problem(entry_key, why);
                None
            }
        }
    };
    match &device.axes {
        None => {}
        Some(RawAxes::Every(names)) => {
            if let Some(map) = parse(key("axes"), names, checker) {
                out.extend(carried.iter().map(|&p| (p, map)));
            }
        }
        Some(RawAxes::PerNode(per_node)) => {
            for (name, names) in per_node {
                let entry_key = key(&format!("axes.{name}"));
                let Some(position) = position_named(name) else {
                    checker.problem(
                        entry_key,
                        format!("unknown body position `{name}` (expected {POSITION_NAMES})"),
                    );
                    continue;
                };
                if !carried.contains(&position) {
                    checker.problem(
                        entry_key,
                        format!("the device has no {name} node (see `sensors` or `placement`)"),
                    );
                    continue;
                }
                if let Some(map) = parse(entry_key, names, checker) {
                    out.insert(position, map);
                }
            }
        }
    }
    out
}

fn validate_mqtt(
    raw: &RawMqtt,
    gateway: &GatewaySettings,
    checker: &mut Checker<'_>,
) -> Option<MqttSettings> {
    let endpoint = checker.endpoint("uplink.mqtt.url", raw.url.as_ref(), ["mqtt", "mqtts"]);
    let client_id = raw
        .client_id
        .clone()
        .unwrap_or_else(|| format!("shuttlegate-{}-{}", gateway.venue, gateway.court));
    checker.check(
        !client_id.is_empty() && client_id.len() <= 128 && !client_id.contains(['+', '#', '/']),
        "uplink.mqtt.client_id",
        || "must be 1–128 characters without `+`, `#` or `/`".into(),
    );
    let prefix_ok = !raw.topic_prefix.is_empty()
        && !raw.topic_prefix.contains(['+', '#'])
        && !raw.topic_prefix.starts_with('/')
        && !raw.topic_prefix.ends_with('/');
    checker.check(prefix_ok, "uplink.mqtt.topic_prefix", || {
        format!(
            "`{}` must be non-empty, without `+`/`#` and without a leading or trailing `/`",
            raw.topic_prefix
        )
    });
    let password = checker.secret(
        "uplink.mqtt.password",
        raw.password.as_ref(),
        raw.password_file.as_ref(),
    );
    checker.check(
        password.is_none() || raw.username.is_some(),
        "uplink.mqtt.password",
        || "a password needs a username".into(),
    );
    let tls = endpoint.as_ref().is_some_and(|e| e.tls);
    for (name, file) in [
        ("ca_file", &raw.ca_file),
        ("client_cert_file", &raw.client_cert_file),
        ("client_key_file", &raw.client_key_file),
    ] {
        checker.check(
            file.is_none() || tls || endpoint.is_none(),
            &format!("uplink.mqtt.{name}"),
            || "TLS files need an mqtts:// url".into(),
        );
    }
    checker.check(
        raw.client_cert_file.is_some() == raw.client_key_file.is_some(),
        "uplink.mqtt.client_key_file",
        || "client_cert_file and client_key_file go together".into(),
    );
    Some(MqttSettings {
        client_id,
        topic_prefix: raw.topic_prefix.clone(),
        username: raw.username.clone(),
        password,
        ca_file: checker.existing_file("uplink.mqtt.ca_file", raw.ca_file.as_ref()),
        client_cert_file: checker.existing_file(
            "uplink.mqtt.client_cert_file",
            raw.client_cert_file.as_ref(),
        ),
        client_key_file: checker
            .secret_path("uplink.mqtt.client_key_file", raw.client_key_file.as_ref()),
        keep_alive: checker.duration_in(
            "uplink.mqtt.keep_alive",
            &raw.keep_alive,
            Duration::from_secs(5),
            Duration::from_secs(65_535),
        ),
        inflight: checker.in_range("uplink.mqtt.inflight", raw.inflight, 16, 32),
        max_packet_bytes: checker.size_in(
            "uplink.mqtt.max_packet_bytes",
            &raw.max_packet_bytes,
            16 << 10,
            256 << 20,
        ) as usize,
        replay_rate: checker.in_range("uplink.mqtt.replay_rate", raw.replay_rate, 1, 1_000_000),
        endpoint: endpoint?,
    })
}

fn validate_hub(raw: &RawHub, checker: &mut Checker<'_>) -> Option<HubSettings> {
    let endpoint = checker.endpoint("uplink.hub.url", raw.url.as_ref(), ["ws", "wss"]);
    let token = checker.secret(
        "uplink.hub.token",
        raw.token.as_ref(),
        raw.token_file.as_ref(),
    );
    checker.check(
        token.is_some() || raw.token.is_some() || raw.token_file.is_some(),
        "uplink.hub.token",
        || "is required when the hub is enabled (token or token_file)".into(),
    );
    Some(HubSettings {
        acks: raw.acks,
        ping_interval: checker.duration_in(
            "uplink.hub.ping_interval",
            &raw.ping_interval,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ),
        replay_rate: checker.in_range("uplink.hub.replay_rate", raw.replay_rate, 1, 1_000_000),
        endpoint: endpoint?,
        token: token?,
    })
}
