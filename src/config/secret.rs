//! Secrets in the configuration, kept out of logs, `Debug` output, error messages and
//! `check-config`, and checked where they rest.
//!
//! - [`Secret`]: a token, password or key; `Debug` never shows it. Every type that holds one
//!   (raw and validated settings, uplink options, the device directory) holds it as this.
//! - [`SecretUrl`]: a URL as configured, which may carry credentials (`mqtt://user:pass@host`,
//!   `wss://hub/?token=…`). It connects with the whole URL; `Display` and `Debug` show it
//!   with the password and every query value replaced by `***` ([`redact_url`]).
//! - [`readable_by_others`]: a secret file that group or others can read is warned about (at
//!   start and by `check-config`): on a Pi whose SD card or shell is shared, a world-readable
//!   token is everyone's.
//! - [`CREDENTIALS_DIRECTORY`]: systemd's `LoadCredential=` hands secrets to the service in a
//!   private directory; a relative `*_file` path names a file there when it is set.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable systemd sets for a unit with `LoadCredential=`: the directory of
/// its credentials (readable by the service alone, gone when it stops).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// What replaces a password or a query value when a URL is shown.
const REDACTED: &str = "***";

/// A secret value (token, password): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for sending; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` (a token presented by a client) equals the secret, in constant
    /// time. Both sides are hashed first (SHA-256) and the digests compared with `subtle`, so
    /// neither how much of a guess was right nor the secret's length shows in the timing.
    pub fn matches(&self, candidate: &str) -> bool {
        use ring::digest::{SHA256, digest};
        use subtle::ConstantTimeEq;
        let expected = digest(&SHA256, self.0.as_bytes());
        let given = digest(&SHA256, candidate.as_bytes());
        expected.as_ref().ct_eq(given.as_ref()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

/// A URL that may carry credentials: shown redacted, connected to whole.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: String) -> SecretUrl {
        SecretUrl(url)
    }

    /// The URL as configured, credentials included: for connecting, never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> SecretUrl {
        SecretUrl(url.to_owned())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// `url` with its password and every query value replaced by `***` (names kept, so the
/// operator still sees *which* credentials are there). A URL without either is returned as
/// written; one that does not parse but holds `@` or `?` keeps only its scheme.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return match url.split_once("://") {
            _ if !url.contains(['@', '?']) => url.to_owned(),
            Some((scheme, _)) => format!("{scheme}://{REDACTED}"),
            None => REDACTED.to_owned(),
        };
    };
    if parsed.password().is_none() && parsed.query().is_none() {
        return url.to_owned();
    }
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have credentials, and this one has them.
        let _ = parsed.set_password(Some(REDACTED));
    }
    if parsed.query().is_some() {
        let names: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        parsed
            .query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k, REDACTED)));
    }
    parsed.into()
}

/// The mode of a secret file when group or others may read it (`0o644`), else `None`.
#[cfg(unix)]
pub fn readable_by_others(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
pub fn readable_by_others(_metadata: &std::fs::Metadata) -> Option<u32> {
    None
}

/// Where a `*_file` path points: absolute as written; relative, into systemd's credentials
/// directory when the daemon runs with one, else next to the configuration file.
pub fn resolve_file(path: &Path, config_dir: &Path, credentials: Option<&Path>) -> PathBuf {
    match credentials {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => config_dir.join(path),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_secret_matches_only_itself_whatever_the_candidates_length() {
        let secret = Secret::from("admin-secret-for-tests");
        assert!(secret.matches("admin-secret-for-tests"));
        for wrong in [
            "",
            "admin",
            "admin-secret-for-test",
            "admin-secret-for-tests!",
        ] {
            assert!(!secret.matches(wrong), "{wrong:?} matched");
        }
    }

    #[test]
    fn credentials_in_urls_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_url("mqtt://gw:s3cret@broker.example:1883"),
            "mqtt://gw:***@broker.example:1883"
        );
        assert_eq!(
            redact_url("wss://hub.example/ws/gateway/?token=a.b.c&v=2"),
            "wss://hub.example/ws/gateway/?token=***&v=***"
        );
        assert_eq!(redact_url("mqtt://127.0.0.1:1883"), "mqtt://127.0.0.1:1883");
        assert_eq!(redact_url("wss://hub"), "wss://hub");
        assert_eq!(redact_url("not a url ?token=x"), "***");
        assert_eq!(redact_url("mqtt://u:p@[bad"), "mqtt://***");
        assert_eq!(
            format!("{:?}", SecretUrl::from("mqtt://u:p@h")),
            "\"mqtt://u:***@h\""
        );
        assert_eq!(format!("{:?}", Secret::from("p")), "Secret(…)");
    }

    #[test]
    fn relative_secret_files_resolve_into_the_credentials_directory_when_there_is_one() {
        let (config, creds) = (Path::new("/etc/sg"), Path::new("/run/credentials/sg"));
        let rel = Path::new("admin-token");
        assert_eq!(resolve_file(rel, config, None), config.join(rel));
        assert_eq!(resolve_file(rel, config, Some(creds)), creds.join(rel));
        let abs = Path::new("/srv/token");
        assert_eq!(resolve_file(abs, config, Some(creds)), abs);
    }

    const MINIMAL: &str = "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n";

    fn load_in(dir: &Path, text: &str, credentials: Option<&Path>) -> super::super::Settings {
        super::super::load_layers(&dir.join("court.toml"), text, None, credentials)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[cfg(unix)]
    fn write_mode(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Issue 12: a token file others can read loads, with a warning naming the key, the file
    /// and its mode; the same file at 0600 loads quietly.
    #[cfg(unix)]
    #[test]
    fn a_secret_file_readable_by_others_is_warned_about_by_key_file_and_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!("{MINIMAL}[auth]\nadmin_token_file = \"admin\"\n");
        write_mode(
            &dir.path().join("admin"),
            "admin-secret-0123456789\n",
            0o644,
        );
        let warnings = load_in(dir.path(), &text, None).warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].key, "auth.admin_token_file");
        let reason = &warnings[0].reason;
        assert!(
            reason.contains("0644") && reason.contains("admin"),
            "{reason}"
        );
        write_mode(
            &dir.path().join("admin"),
            "admin-secret-0123456789\n",
            0o600,
        );
        assert!(load_in(dir.path(), &text, None).warnings.is_empty());
    }

    /// With systemd's `LoadCredential=`, a relative `*_file` names a file in
    /// `$CREDENTIALS_DIRECTORY`, not one next to the configuration.
    #[test]
    fn relative_secret_files_are_read_from_the_credentials_directory() {
        let (config, creds) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(config.path().join("racket"), "from-the-config-dir\n").unwrap();
        std::fs::write(creds.path().join("racket"), "from-credentials\n").unwrap();
        let text = format!("{MINIMAL}[[devices]]\ncode = \"a\"\ntoken_file = \"racket\"\n");
        let token = |credentials| match &load_in(config.path(), &text, credentials).devices[0].auth
        {
            super::super::DeviceAuth::Token(t) => t.expose().to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(token(None), "from-the-config-dir");
        assert_eq!(token(Some(creds.path())), "from-credentials");
    }

    /// No `Debug` of the raw or the validated settings shows a token, a password, a JWT
    /// secret or a URL's credentials; `check-config`'s summary neither.
    #[test]
    fn no_debug_output_or_summary_shows_a_secret() {
        let text = format!(
            "{MINIMAL}[auth]\nadmin_token = \"SECRET-admin-1234567\"\njwt_secret = \"SECRET-jwt\"\n\
             [[devices]]\ncode = \"a\"\ntoken = \"SECRET-device\"\n\
             [uplink.mqtt]\nenabled = true\nurl = \"mqtt://gw:SECRET-url@broker:1883\"\n\
             username = \"gw\"\npassword = \"SECRET-mqtt\"\n\
             [uplink.hub]\nenabled = true\nurl = \"wss://hub/ws/?token=SECRET-query\"\n\
             token = \"SECRET-hub\"\n"
        );
        let raw: super::super::raw::RawSettings =
            toml::from_str(&text).expect("raw settings parse");
        let settings = load_in(Path::new("/etc/sg"), &text, None);
        for shown in [
            format!("{raw:?}"),
            format!("{settings:?}"),
            format!("{settings:#?}"),
            settings.summary(),
        ] {
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        assert!(settings.summary().contains("mqtt://gw:***@broker:1883"));
    }

    /// A URL the loader refuses is named without its credentials.
    #[test]
    fn a_refused_url_is_shown_without_its_credentials() {
        let text = format!(
            "{MINIMAL}[uplink.hub]\nenabled = true\nurl = \"http://hub/?token=SECRET-q\"\n\
             token = \"t\"\n"
        );
        let e = super::super::load_layers(Path::new("/etc/sg/court.toml"), &text, None, None)
            .expect_err("http:// is refused");
        let shown = e.to_string();
        assert!(
            shown.contains("uplink.hub.url") && !shown.contains("SECRET"),
            "{shown}"
        );
    }

    /// Issue 12: a half-typed secret is a TOML syntax error that names the line, the column
    /// and the key — not the text.
    #[test]
    fn a_syntax_error_names_the_line_and_key_never_the_text() {
        let text = format!("{MINIMAL}[auth]\nadmin_token = \"SECRET-half-typed\n");
        let e = super::super::load_str(Path::new("/etc/sg/court.toml"), &text).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("line 5") && shown.contains("admin_token"),
            "{shown}"
        );
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    proptest! {
        /// However a secret's line is mistyped, the syntax error never shows the secret.
        #[test]
        fn a_syntax_error_never_shows_the_line(
            key in "(admin_token|jwt_secret|token|password)",
            secret in "[A-Za-z0-9+/_.-]{8,32}",
            form in 0usize..6,
            before in "(\n|\n\n# note\n|\n[auth]\n)",
        ) {
            let secret = format!("SeCrEt{secret}");
            let line = match form {
                0 => format!("{key} = \"{secret}"),
                1 => format!("{key} = {secret}"),
                2 => format!("{key} = '{secret}"),
                3 => format!("{key} = \"\"\"{secret}"),
                4 => format!("{key} = \"{secret}\" {secret}"),
                _ => format!("{key} \"{secret}\""),
            };
            let text = format!("{MINIMAL}{before}{line}\nother = 1\n");
            if let Err(e @ super::super::ConfigError::Syntax { .. }) =
                super::super::load_str(Path::new("/etc/sg/court.toml"), &text)
            {
                let shown = e.to_string();
                prop_assert!(!shown.contains(&secret), "{shown}");
                prop_assert!(shown.contains("line "), "{shown}");
            }
        }

        /// Whatever the password and token, neither survives redaction, and the host does.
        #[test]
        fn a_redacted_url_holds_no_credential(
            scheme in "(mqtt|mqtts|ws|wss)",
            user in "[a-z]{1,8}",
            password in "[A-Za-z0-9._~!$&'()*+,;=%-]{4,24}",
            token in "[A-Za-z0-9._~-]{4,40}",
        ) {
            let with_password = format!("{scheme}://{user}:{password}@broker.example:1883/x");
            let shown = redact_url(&with_password);
            prop_assert!(!shown.contains(&format!(":{password}@")), "{shown}");
            prop_assert!(shown.contains("broker.example"), "{shown}");
            let token = format!("tk-{token}");
            let with_token = format!("{scheme}://hub.example/ws/?token={token}");
            let shown = redact_url(&with_token);
            prop_assert!(!shown.contains(&token), "{shown}");
            prop_assert!(shown.contains("hub.example") && shown.contains("token="), "{shown}");
        }

        /// Any text at all: redaction never panics, and a text with `@` or `?` never comes
        /// back unchanged unless it parsed without credentials.
        #[test]
        fn redaction_takes_any_text(text in ".{0,64}") {
            let shown = redact_url(&text);
            if shown == text && text.contains(['@', '?']) {
                let parsed = url::Url::parse(&text);
                prop_assert!(
                    parsed.is_ok_and(|u| u.password().is_none() && u.query().is_none()),
                    "{text:?} shown as is"
                );
            }
        }
    }
}
