//! The raw layer: the configuration exactly as written (TOML file merged with environment
//! overrides), with defaults, before validation. Every section denies unknown keys, so a typo is
//! an error naming the key. Values that need more than a type check (addresses, URLs, ranges,
//! secrets in files, cross-key rules) are checked once in [`super::settings`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Secret, SecretUrl};

/// `[journal] when_full`: what the journal does when it reaches `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Delete the oldest raw sensor data (results and summaries are kept).
    DropOldestRaw,
    /// Refuse new data: devices get `success:false` and keep their copy.
    Refuse,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSettings {
    pub gateway: RawGateway,
    pub http: RawHttp,
    pub udp: RawUdp,
    pub serial: Vec<RawSerial>,
    pub journal: RawJournal,
    pub limits: RawLimits,
    pub auth: RawAuth,
    pub devices: Vec<RawDevice>,
    /// The analysis module's own settings type: its defaults and unknown-key checks apply here.
    pub analysis: shuttlegate_core::analysis::AnalysisSettings,
    pub uplink: RawUplink,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawGateway {
    #[serde(deserialize_with = "opt_text")]
    pub venue: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub court: Option<String>,
    pub state_dir: PathBuf,
    pub timezone: String,
    pub clock_check: bool,
}

impl Default for RawGateway {
    fn default() -> Self {
        RawGateway {
            venue: None,
            court: None,
            state_dir: PathBuf::from("/var/lib/shuttlegate"),
            timezone: "Asia/Shanghai".into(),
            clock_check: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawHttp {
    pub listen: String,
    pub header_read_timeout: HumanDuration,
    pub keep_alive_timeout: HumanDuration,
    pub handshake_timeout: HumanDuration,
    pub tls_listen: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "0.0.0.0:8080".into(),
            // An ESP32 on a busy Wi-Fi sends its handshake in well under a second; ten is
            // generous for it and still sheds a silent socket quickly.
            header_read_timeout: HumanDuration::new("10s"),
            keep_alive_timeout: HumanDuration::new("5s"),
            handshake_timeout: HumanDuration::new("10s"),
            tls_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawUdp {
    pub enabled: bool,
    pub listen: String,
    pub discovery: bool,
}

impl Default for RawUdp {
    fn default() -> Self {
        RawUdp {
            enabled: false,
            listen: "0.0.0.0:9750".into(),
            discovery: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSerial {
    pub path: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: u32,
}

fn default_baud() -> u32 {
    921_600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawJournal {
    pub max_bytes: HumanSize,
    pub when_full: WhenFull,
    pub commit_interval: HumanDuration,
    pub segment_bytes: HumanSize,
    pub failure_grace: HumanDuration,
    pub device_share: f64,
}

impl Default for RawJournal {
    fn default() -> Self {
        RawJournal {
            max_bytes: HumanSize::Text("512MiB".into()),
            when_full: WhenFull::DropOldestRaw,
            commit_interval: HumanDuration::new("2ms"),
            segment_bytes: HumanSize::Text("16MiB".into()),
            failure_grace: HumanDuration::new("60s"),
            device_share: 0.5,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    pub max_message_bytes: HumanSize,
    pub messages_per_second: u32,
    pub rate_limit_strikes: u32,
    pub idle_timeout: HumanDuration,
    pub outbound_queue: usize,
    pub max_connections: usize,
    pub max_open_sessions_per_device: usize,
    pub session_starts_per_minute: usize,
    pub max_connections_per_address: usize,
    pub max_handshaking: usize,
    pub max_admins: usize,
    pub max_phones: usize,
    pub max_screens: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_message_bytes: HumanSize::Text("64KiB".into()),
            messages_per_second: 200,
            rate_limit_strikes: 5,
            idle_timeout: HumanDuration::new("30s"),
            outbound_queue: 64,
            // Below the unit's LimitNOFILE (2048) with room for the journal, the uplinks and
            // the listeners (docs/configuration.md has the arithmetic).
            max_connections: 512,
            max_open_sessions_per_device: 2,
            session_starts_per_minute: 10,
            // Every hub and phone has an address of its own on a court's Wi-Fi; 32 leaves room
            // for a small NAT while one flooding host holds at most half the handshake budget.
            max_connections_per_address: 32,
            max_handshaking: 64,
            // Staff consoles: a few screens at a venue's desk, not a crowd.
            max_admins: 8,
            // A court's players and their friends, with room to spare under max_connections.
            max_phones: 200,
            // A court's TV or two, the venue's desk and a spare: screens are few and each gets
            // every swing of the court.
            max_screens: 8,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAuth {
    #[serde(deserialize_with = "opt_secret")]
    pub admin_token: Option<Secret>,
    pub admin_token_file: Option<PathBuf>,
    #[serde(deserialize_with = "opt_secret")]
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_file: Option<PathBuf>,
    /// `HS256` (with `jwt_secret`), `RS256` or `ES256` (with `jwt_public_key_file`).
    pub jwt_algorithm: Option<String>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub jwt_audience: Option<String>,
    pub jwt_issuer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDevice {
    #[serde(deserialize_with = "opt_text")]
    pub code: Option<String>,
    #[serde(deserialize_with = "opt_secret")]
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub allow_tokenless: bool,
    /// Addresses (IPs or CIDRs) the device may connect from; absent: anywhere.
    pub allowed_peers: Option<Vec<String>>,
    pub mount_radius_m: f64,
    #[serde(deserialize_with = "opt_text")]
    pub user: Option<String>,
    /// `sensor_id` → body position; keys are strings in TOML (`{ 1 = "waist" }`).
    pub sensors: Option<BTreeMap<String, String>>,
    pub acc_full_scale_g: f64,
    pub gyro_full_scale_dps: f64,
    /// Where a single-node device's node sits (`"racket"`, `"wrist"`, `"forearm"`, …),
    /// whatever its `sensor_id`.
    pub placement: Option<String>,
    /// The nodes' axes onto the analyser's convention: one list for every node
    /// (`["-y", "x", "z"]`) or one per body position (`{ racket = [...], wrist = [...] }`).
    pub axes: Option<RawAxes>,
    /// A device without a racket node: read its wrist node as a racket held at this angle to
    /// the forearm, °. Absent: the wrist node is read as it is.
    pub wrist_grip_deg: Option<f64>,
    /// What the nodes report past full scale: `"clip"` (hold the rail) or `"wrap"` (jump to
    /// the opposite sign, as WitMotion nodes do). Absent: clip.
    pub overflow: Option<String>,
    /// Infer a racket node's axes from its swings when `axes` does not give them (the
    /// default; `false` reads such a node in the convention).
    pub infer_axes: bool,
}

/// `[[devices]] axes`, in either form.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawAxes {
    Every(Vec<String>),
    PerNode(BTreeMap<String, Vec<String>>),
}

impl Default for RawDevice {
    fn default() -> Self {
        RawDevice {
            code: None,
            token: None,
            token_file: None,
            allow_tokenless: false,
            allowed_peers: None,
            mount_radius_m: 0.55,
            user: None,
            sensors: None,
            acc_full_scale_g: 16.0,
            gyro_full_scale_dps: 2000.0,
            placement: None,
            axes: None,
            wrist_grip_deg: None,
            overflow: None,
            infer_axes: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawUplink {
    pub mqtt: RawMqtt,
    pub hub: RawHub,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawMqtt {
    pub enabled: bool,
    pub url: Option<SecretUrl>,
    #[serde(deserialize_with = "opt_text")]
    pub client_id: Option<String>,
    pub topic_prefix: String,
    #[serde(deserialize_with = "opt_text")]
    pub username: Option<String>,
    #[serde(deserialize_with = "opt_secret")]
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub keep_alive: HumanDuration,
    pub inflight: u16,
    pub max_packet_bytes: HumanSize,
    pub replay_rate: u32,
}

impl Default for RawMqtt {
    fn default() -> Self {
        RawMqtt {
            enabled: false,
            url: None,
            client_id: None,
            topic_prefix: "shuttlegate".into(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive: HumanDuration::new("30s"),
            inflight: 16,
            max_packet_bytes: HumanSize::Text("256KiB".into()),
            // A court-hour (4 devices × 1 kHz in batches of 100: 144,000 records) drains in
            // about 30 s at this pace, while live records keep their own in-flight slots.
            replay_rate: 5000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawHub {
    pub enabled: bool,
    pub url: Option<SecretUrl>,
    #[serde(deserialize_with = "opt_secret")]
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub acks: bool,
    pub ping_interval: HumanDuration,
    pub replay_rate: u32,
}

impl Default for RawHub {
    fn default() -> Self {
        RawHub {
            enabled: false,
            url: None,
            token: None,
            token_file: None,
            acks: true,
            ping_interval: HumanDuration::new("20s"),
            // A Django Channels hub acks each record; 1000/s keeps a court-hour of results
            // (swings, summaries, events) well under a minute without flooding it.
            replay_rate: 1000,
        }
    }
}

/// A duration as written ("2ms", "30s"); parsed with humantime during validation, so that a
/// bad one is reported with humantime's reason ("unknown time unit", …).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct HumanDuration(pub String);

impl HumanDuration {
    fn new(text: &str) -> HumanDuration {
        HumanDuration(text.to_owned())
    }
}

/// A size as written: a byte count or text such as "64KiB" / "512MiB"; parsed with bytesize
/// during validation, so that every bad size is reported with the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum HumanSize {
    Bytes(u64),
    Text(String),
}

/// A secret written as text (or a number, as [`opt_text`] reads it), held as a [`Secret`] from
/// the moment it is read, so no `Debug` of the raw layer shows it.
fn opt_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Ok(opt_text(deserializer)?.map(Secret::new))
}

/// A text value that may have arrived as a number: an environment override such as
/// `SHUTTLEGATE_GATEWAY__COURT=3` is read as the integer 3, and a device code like `2025001`
/// is easily written unquoted. Numbers are taken as their decimal text.
fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Str(String),
        Unsigned(u64),
        Signed(i64),
    }
    Ok(Some(
        match Text::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("must be a string (or a number, read as its decimal text)")
        })? {
            Text::Str(s) => s,
            Text::Unsigned(n) => n.to_string(),
            Text::Signed(n) => n.to_string(),
        },
    ))
}
