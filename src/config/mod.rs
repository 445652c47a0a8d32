//! Configuration: one TOML file per court, layered with `SHUTTLEGATE_SECTION__KEY` environment
//! overrides (figment), read into a raw serde layer with defaults and validated once into typed
//! [`Settings`] whose errors name the key, the file and the reason.
//!
//! The layers, last wins:
//! 1. built-in defaults (the raw layer's `Default`s, printed by `print-config`);
//! 2. the TOML file;
//! 3. environment variables `SHUTTLEGATE_<SECTION>__<KEY>` (`__` separates the levels, so
//!    `SHUTTLEGATE_UPLINK__MQTT__URL` is `uplink.mqtt.url`). Only variables with a `__` are
//!    read, so other `SHUTTLEGATE_*` variables never collide with keys. Values are read as TOML
//!    values (`8080` a number, `true` a boolean, `"007"` — quoted — a string).
//!
//! Secrets may come from files (`token_file`, `admin_token_file`, `jwt_secret_file`,
//! `password_file`, the hub's `token_file`): the file is read, its trailing newline trimmed.
//! Relative paths in `*_file` keys are relative to the configuration file's directory — or,
//! when systemd runs the daemon with `LoadCredential=` (`$CREDENTIALS_DIRECTORY` set), to the
//! credentials directory, so `token_file = "court1-device-a"` names the credential. A secret
//! file (or `client_key_file`) that group or others can read loads with a warning
//! ([`Settings::warnings`]). Secrets are held as [`Secret`] and URLs as [`SecretUrl`] from the
//! raw layer on, so no `Debug`, log line or error shows them (`secret.rs`); a TOML syntax
//! error names the line, column and key, never the line's text (it may be a half-typed
//! secret).
//!
//! Errors are collected, not stopped at the first: [`ConfigError::Invalid`] lists every problem
//! found, each with its key path (`devices[2].mount_radius_m`) and, when the value came from the
//! environment, the variable's name.
//!
//! The running daemon holds one [`SettingsHandle`] (`handle.rs`): the current settings, which
//! the connection handshakes and the admin API read at each use, and which `reload` replaces
//! when only keys that need no restart changed.

mod handle;
mod raw;
mod secret;
mod settings;

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};

pub use handle::{
    RESTART_KEYS, ReloadCounts, ReloadError, ReloadFailure, Reloaded, SettingsHandle,
};
pub use secret::{CREDENTIALS_DIRECTORY, Secret, SecretUrl, redact_url};
pub use settings::{
    AuthSettings, DeviceAuth, DeviceSettings, Endpoint, GatewaySettings, HttpSettings, HubSettings,
    JournalSettings, JwtAlgorithm, JwtKey, JwtSettings, LimitSettings, MAX_DEVICE_CODE_CHARS,
    MIN_ADMIN_TOKEN_CHARS, MqttSettings, SerialSettings, Settings, UdpSettings, UplinkSettings,
    WhenFull, parse_allowed_peer,
};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SHUTTLEGATE_";

/// A configuration that cannot be used. The caller prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {source}", file = file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML; `reason` says where and what, without the text.
    #[error("{file}: not valid TOML: {reason}", file = file.display())]
    Syntax { file: PathBuf, reason: String },
    /// Keys with unknown names or bad values; every problem found.
    #[error("{}", Problems { file, problems })]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`] (empty for the other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// One bad key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `devices[2].mount_radius_m`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
    /// The environment variable the value came from, when it did.
    pub origin: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from environment variable {origin})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

struct Problems<'a> {
    file: &'a Path,
    problems: &'a [Problem],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {p}", self.file.display())?;
        }
        Ok(())
    }
}

/// Load, layer and validate the configuration in `path` with the process's environment.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    let env = Env::prefixed(ENV_PREFIX)
        .filter(|key| key.as_str().contains("__"))
        .split("__");
    let credentials = std::env::var_os(CREDENTIALS_DIRECTORY).map(PathBuf::from);
    load_layers(path, &text, Some(env), credentials.as_deref())
}

/// Validate configuration text as if read from `path`, without environment overrides (for
/// tests and tools).
pub fn load_str(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    load_layers(path, text, None, None)
}

fn load_layers(
    path: &Path,
    text: &str,
    env: Option<Env>,
    credentials: Option<&Path>,
) -> Result<Settings, ConfigError> {
    // Syntax first, through the toml crate directly: its errors carry the position, which
    // figment's re-wrapping would lose.
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            file: path.to_owned(),
            reason: syntax_reason(text, &e),
        })?;
    let mut figment = Figment::new().merge(Toml::string(text));
    if let Some(env) = env {
        figment = figment.merge(env);
    }
    let invalid = |problems| ConfigError::Invalid {
        file: path.to_owned(),
        problems,
    };
    let value: figment::value::Value = figment.extract().map_err(|e| {
        invalid(vec![Problem {
            key: e.path.join("."),
            reason: e.kind.to_string(),
            origin: None,
        }])
    })?;
    let raw: raw::RawSettings = serde_path_to_error::deserialize(&value).map_err(|e| {
        let key = e.path().to_string();
        let origin = env_origin(&figment, &key);
        invalid(vec![Problem {
            reason: reason_of(&e.into_inner().kind),
            key,
            origin,
        }])
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut checker = settings::Checker::new(base, credentials);
    let settings = settings::validate(raw, &mut checker);
    let (mut problems, mut warnings) = checker.finish();
    for p in problems.iter_mut().chain(&mut warnings) {
        p.origin = env_origin(&figment, &p.key);
    }
    let mut settings = settings.ok_or_else(|| invalid(problems))?;
    settings.warnings = warnings;
    Ok(settings)
}

/// A TOML syntax error by line, column, key and problem — never by the offending text, which
/// toml's own message quotes: the line may be a half-typed secret (`admin_token = "…`), and
/// the daemon's stderr goes to the system journal.
fn syntax_reason(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return error.message().trim_end().to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(key_of_line)
        .map(|k| format!(" (key `{k}`)"))
        .unwrap_or_default();
    format!(
        "line {line}, column {column}{key}: {}",
        error.message().trim_end()
    )
}

/// The key a `key = value` line assigns, when it is a plain dotted key.
fn key_of_line(line: &str) -> Option<&str> {
    let key = line.split_once('=')?.0.trim();
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    plain.then_some(key)
}

/// figment's error kinds, worded for an operator.
fn reason_of(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    let one_of = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        Kind::UnknownField(name, expected) => {
            format!(
                "unknown key `{name}` (this section has {})",
                one_of(expected)
            )
        }
        Kind::UnknownVariant(value, expected) => {
            format!(
                "unknown value `{value}` (expected one of {})",
                one_of(expected)
            )
        }
        Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
        Kind::InvalidValue(actual, expected) => format!("expected {expected}, found {actual}"),
        other => other.to_string(),
    }
}

/// The environment variable a key's value came from, if it did.
fn env_origin(figment: &Figment, key: &str) -> Option<String> {
    // Array elements cannot be overridden one by one; only plain dotted paths can come from
    // the environment.
    if key.contains('[') {
        return None;
    }
    let metadata = figment.find_metadata(key)?;
    if metadata.source.is_some() || !metadata.name.contains("environment") {
        return None;
    }
    // figment's own interpolation drops the prefix and the `__` separator; rebuild the name.
    Some(format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    ))
}

/// The fully commented default configuration that `print-config` prints. It loads as is.
pub fn commented_default() -> String {
    include_str!("default.toml").to_owned()
}

#[cfg(test)]
mod tests;
