//! Tests of the configuration loader: valid and invalid files, every rule's error naming its key,
//! secrets from files, the shipped files and the printed default, and a property test that no
//! TOML text makes the loader panic. (Environment overrides are tested through the real binary
//! in `tests/config_cli.rs`, since the environment is process-wide.)

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use shuttlegate_core::analysis::Overflow;
use shuttlegate_core::batch::BodyPosition;

const MINIMAL: &str = "[gateway]\nvenue = \"my-venue\"\ncourt = \"court-1\"\n";

fn file() -> PathBuf {
    PathBuf::from("/etc/shuttlegate/court.toml")
}

fn load_text(text: &str) -> Result<Settings, ConfigError> {
    load_str(&file(), text)
}

/// The problems of an invalid configuration, as (key, reason).
fn problems(text: &str) -> Vec<(String, String)> {
    match load_text(text) {
        Ok(_) => panic!("expected an invalid configuration:\n{text}"),
        Err(e) => {
            assert!(e.to_string().contains("/etc/shuttlegate/court.toml"), "{e}");
            e.problems()
                .iter()
                .map(|p| (p.key.clone(), p.reason.clone()))
                .collect()
        }
    }
}

fn single_problem(text: &str) -> (String, String) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().expect("one problem")
}

#[test]
fn a_minimal_file_gets_every_default() {
    let s = load_text(MINIMAL).expect("valid");
    assert_eq!(s.gateway.venue, "my-venue");
    assert_eq!(s.gateway.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(s.http.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(s.limits.max_message_bytes, 64 * 1024);
    assert_eq!(s.limits.idle_timeout, std::time::Duration::from_secs(30));
    assert_eq!(
        s.journal.commit_interval,
        std::time::Duration::from_millis(2)
    );
    assert_eq!(s.journal.max_bytes, 512 << 20);
    assert_eq!(s.journal.when_full, WhenFull::DropOldestRaw);
    assert!(s.devices.is_empty());
    assert_eq!(s.uplink, UplinkSettings::default());
}

#[test]
fn the_printed_default_loads_and_equals_the_built_in_defaults() {
    let printed = load_text(&commented_default()).expect("print-config output must load");
    assert_eq!(printed, load_text(MINIMAL).expect("valid"));
}

/// Every `*_file` value in a TOML document.
fn file_values(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match v {
                    toml::Value::String(s) if k.ends_with("_file") => out.push(s.clone()),
                    other => file_values(other, out),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|v| file_values(v, out)),
        _ => {}
    }
}

#[test]
fn the_shipped_configuration_files_load_once_their_secret_files_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["config/demo.toml", "config/court.example.toml"] {
        let text = std::fs::read_to_string(root.join(name)).expect("shipped file exists");
        // Installed beside its secrets: a temporary directory holding the file and every
        // `*_file` it names (relative paths), filled with a stand-in secret.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut files = Vec::new();
        file_values(&toml::Value::Table(text.parse().expect("TOML")), &mut files);
        for file in &files {
            assert!(
                Path::new(file).is_relative(),
                "{name}: {file} should be relative"
            );
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(&path, "stand-in-secret-long-enough\n").expect("write");
        }
        let s = load_str(&dir.path().join("court.toml"), &text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(s.devices.len() >= 4, "{name}");
        assert!(s.devices.iter().any(DeviceSettings::is_tokenless), "{name}");
    }
}

#[test]
fn the_demo_devices_are_the_ones_the_simulator_uses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let text = std::fs::read_to_string(&path).expect("shipped file exists");
    let s = load_str(&path, &text).expect("valid");
    assert_eq!(s.http.listen.to_string(), "127.0.0.1:8080");
    for n in 1..=4 {
        let device = s.device(&format!("demo-{n:02}")).expect("demo device");
        assert_eq!(
            device.auth,
            DeviceAuth::Token(Secret::new(format!("demo-token-{n:02}")))
        );
    }
    assert!(s.device("v33-01").expect("V3.3 device").is_tokenless());
}

#[test]
fn an_unknown_key_is_named_with_its_section() {
    let (key, reason) = single_problem(&format!("{MINIMAL}[limits]\nmax_mesage_bytes = 10\n"));
    assert_eq!(key, "limits.max_mesage_bytes");
    assert!(
        reason.starts_with("unknown key `max_mesage_bytes`"),
        "{reason}"
    );

    let (key, _) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"a\"\nallow_tokenless = true\n[[devices]]\ncode = \"b\"\ncolour = 1\n"
    ));
    assert_eq!(key, "devices[1].colour");

    let (key, _) = single_problem(&format!("{MINIMAL}[uplink.mqtt]\nurl2 = \"x\"\n"));
    assert_eq!(key, "uplink.mqtt.url2");
    let (key, _) = single_problem(&format!("{MINIMAL}[nonsense]\n"));
    assert_eq!(key, "nonsense");
}

#[test]
fn bad_values_are_refused_with_the_reason() {
    let cases = [
        (
            "[journal]\ncommit_interval = \"2xs\"\n",
            "journal.commit_interval",
            "unknown time unit",
        ),
        ("[journal]\nmax_bytes = \"lots\"\n", "journal.max_bytes", ""),
        (
            "[journal]\nwhen_full = \"panic\"\n",
            "journal.when_full",
            "unknown value `panic`",
        ),
        (
            "[limits]\nidle_timeout = \"0s\"\n",
            "limits.idle_timeout",
            "out of range",
        ),
        (
            "[limits]\nmessages_per_second = -3\n",
            "limits.messages_per_second",
            "",
        ),
        ("[http]\nlisten = \"localhost\"\n", "http.listen", "IP:port"),
        (
            "[uplink.mqtt]\nenabled = true\nurl = \"http://broker\"\n",
            "uplink.mqtt.url",
            "mqtt://",
        ),
        (
            "[uplink.mqtt]\nenabled = true\nurl = \"mqtts://b\"\ninflight = 100\n",
            "uplink.mqtt.inflight",
            "16 to 32",
        ),
        (
            "[uplink.mqtt]\nenabled = true\n",
            "uplink.mqtt.url",
            "required",
        ),
        (
            "[uplink.hub]\nenabled = true\nurl = \"wss://hub/ws/\"\n",
            "uplink.hub.token",
            "required",
        ),
        (
            "[analysis]\nmin_stroke_confidence = 1.5\n",
            "analysis.min_stroke_confidence",
            "from 0 to 1",
        ),
        (
            "[analysis]\nmin_stroke_confidence = nan\n",
            "analysis.min_stroke_confidence",
            "out of range",
        ),
    ];
    for (section, key, reason) in cases {
        let (found_key, found_reason) = single_problem(&format!("{MINIMAL}{section}"));
        assert_eq!(found_key, key, "{section}");
        assert!(found_reason.contains(reason), "{section}: {found_reason}");
        assert!(!found_reason.is_empty());
    }
    let (key, reason) =
        single_problem("[gateway]\nvenue = \"v\"\ncourt = \"c\"\ntimezone = \"Mars/Olympus\"\n");
    assert_eq!(key, "gateway.timezone");
    assert!(reason.contains("Mars/Olympus"), "{reason}");
    let (key, reason) = single_problem("[gateway]\nvenue = \"v\"\n");
    assert_eq!(
        (key.as_str(), reason.as_str()),
        ("gateway.court", "is required")
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let found = problems(&format!(
        "{MINIMAL}[http]\nlisten = \"nowhere\"\n[[devices]]\ncode = \"a\"\nmount_radius_m = 9.0\nallow_tokenless = true\n"
    ));
    let keys: Vec<_> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["http.listen", "devices[0].mount_radius_m"]);
}

#[test]
fn a_device_without_token_or_allow_tokenless_is_refused() {
    let (key, reason) = single_problem(&format!("{MINIMAL}[[devices]]\ncode = \"racket-01\"\n"));
    assert_eq!(key, "devices[0].token");
    assert!(reason.contains("allow_tokenless"), "{reason}");

    let (key, _) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"racket-01\"\ntoken = \"abcdefgh\"\nallow_tokenless = true\n"
    ));
    assert_eq!(key, "devices[0].allow_tokenless");

    let s = load_text(&format!(
        "{MINIMAL}[[devices]]\ncode = 2025001\nallow_tokenless = true\n"
    ))
    .expect("valid");
    assert_eq!(
        s.devices[0].code, "2025001",
        "an unquoted numeric code is read as text"
    );
    assert!(s.devices[0].is_tokenless());
}

#[test]
fn duplicate_device_codes_are_refused() {
    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"a\"\nallow_tokenless = true\n[[devices]]\ncode = \"a\"\nallow_tokenless = true\n"
    ));
    assert_eq!(key, "devices[1].code");
    assert!(reason.contains("twice"), "{reason}");
}

#[test]
fn sensor_maps_default_to_v33_and_are_checked() {
    let s = load_text(&format!(
        "{MINIMAL}[[devices]]\ncode = \"a\"\nallow_tokenless = true\n[[devices]]\ncode = \"b\"\nallow_tokenless = true\nsensors = {{ 7 = \"racket\" }}\n"
    ))
    .expect("valid");
    assert_eq!(s.devices[0].position_of(4), Some(BodyPosition::Racket));
    assert_eq!(s.devices[0].position_of(1), Some(BodyPosition::Waist));
    assert_eq!(s.devices[1].position_of(7), Some(BodyPosition::Racket));
    assert_eq!(s.devices[1].position_of(1), None);

    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"a\"\nallow_tokenless = true\nsensors = {{ 1 = \"elbow\" }}\n"
    ));
    assert_eq!(key, "devices[0].sensors.1");
    assert!(reason.contains("elbow"), "{reason}");
}

#[test]
fn placement_and_axes_map_a_devices_nodes_and_name_a_bad_entry() {
    let s = load_text(&format!(
        "{MINIMAL}[[devices]]\ncode = \"w\"\nallow_tokenless = true\nplacement = \"forearm\"\naxes = [\"-y\", \"x\", \"z\"]\n\
         [[devices]]\ncode = \"v\"\nallow_tokenless = true\naxes = {{ racket = [\"x\", \"-y\", \"-z\"] }}\n"
    ))
    .expect("valid");
    // A single-node device's node, whatever its sensor id; a forearm node reads as the wrist.
    assert_eq!(s.devices[0].position_of(0), Some(BodyPosition::Wrist));
    assert_eq!(s.devices[0].position_of(200), Some(BodyPosition::Wrist));
    let wrist_axes = s.devices[0]
        .axes
        .get(&BodyPosition::Wrist)
        .expect("the wrist's axes");
    assert_eq!(wrist_axes.apply([1.0, 2.0, 3.0]), [-2.0, 1.0, 3.0]);
    let profile = &s.court_devices()[0].profile;
    assert_eq!(profile.positions, vec![BodyPosition::Wrist]);
    assert_eq!(
        s.devices[1].axes.len(),
        1,
        "only the racket's axes are configured"
    );
    assert_eq!(
        s.devices[1].axes[&BodyPosition::Racket].apply([1.0, 2.0, 3.0]),
        [1.0, -2.0, -3.0]
    );

    for (entry, key, needle) in [
        ("placement = \"elbow\"", "devices[0].placement", "elbow"),
        (
            "placement = \"wrist\"\nsensors = { 3 = \"wrist\" }",
            "devices[0].placement",
            "single-node",
        ),
        ("axes = [\"x\", \"x\", \"z\"]", "devices[0].axes", "twice"),
        ("axes = [\"y\", \"x\", \"z\"]", "devices[0].axes", "mirror"),
        (
            "axes = { racket = [\"x\", \"y\", \"q\"] }",
            "devices[0].axes.racket",
            "`q`",
        ),
        (
            "placement = \"wrist\"\naxes = { racket = [\"x\", \"y\", \"z\"] }",
            "devices[0].axes.racket",
            "no racket node",
        ),
    ] {
        let (k, reason) = single_problem(&format!(
            "{MINIMAL}[[devices]]\ncode = \"a\"\nallow_tokenless = true\n{entry}\n"
        ));
        assert_eq!(k, key, "{entry}");
        assert!(reason.contains(needle), "{entry}: {reason}");
    }
}

#[test]
fn overflow_infer_axes_and_wrist_grip_reach_the_profile_and_bad_values_are_named() {
    let s = load_text(&format!(
        "{MINIMAL}[[devices]]\ncode = \"w\"\nallow_tokenless = true\nplacement = \"wrist\"\nwrist_grip_deg = 75.0\n\
         [[devices]]\ncode = \"r\"\nallow_tokenless = true\nplacement = \"racket\"\noverflow = \"wrap\"\ninfer_axes = false\n\
         [[devices]]\ncode = \"plain\"\nallow_tokenless = true\n\
         [[devices]]\ncode = \"c\"\nallow_tokenless = true\noverflow = \"clip\"\n"
    ))
    .expect("valid");
    let devices = s.court_devices();
    assert_eq!(devices[0].profile.wrist_grip_deg, Some(75.0));
    assert_eq!(devices[1].profile.overflow, Overflow::Wrap);
    assert!(!devices[1].profile.infer_axes, "opted out");
    // Nothing said: wraps undone on evidence, a racket node's axes inferred, the wrist as it
    // is.
    let plain = &devices[2].profile;
    assert_eq!(plain.overflow, Overflow::Auto);
    assert!(plain.infer_axes && plain.wrist_grip_deg.is_none());
    assert_eq!(devices[3].profile.overflow, Overflow::Clip);

    for (entry, key, needle) in [
        ("overflow = \"saturate\"", "devices[0].overflow", "saturate"),
        (
            "wrist_grip_deg = 120.0",
            "devices[0].wrist_grip_deg",
            "out of range",
        ),
    ] {
        let (k, reason) = single_problem(&format!(
            "{MINIMAL}[[devices]]\ncode = \"a\"\nallow_tokenless = true\n{entry}\n"
        ));
        assert_eq!(k, key, "{entry}");
        assert!(reason.contains(needle), "{entry}: {reason}");
    }
}

#[test]
fn secrets_are_read_from_files_relative_to_the_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("tokens")).expect("mkdir");
    std::fs::write(dir.path().join("tokens/racket-01"), "s3cret-token\n").expect("write");
    std::fs::write(dir.path().join("admin"), "admin-token-from-a-file\r\n").expect("write");
    let path = dir.path().join("court.toml");
    let text = format!(
        "{MINIMAL}[auth]\nadmin_token_file = \"admin\"\n[[devices]]\ncode = \"racket-01\"\ntoken_file = \"tokens/racket-01\"\n"
    );
    let s = load_str(&path, &text).expect("valid");
    assert_eq!(
        s.devices[0].auth,
        DeviceAuth::Token(Secret::new("s3cret-token".into()))
    );
    assert_eq!(
        s.auth.admin_token,
        Some(Secret::new("admin-token-from-a-file".into()))
    );
    assert_eq!(
        format!("{:?}", s.auth.admin_token),
        "Some(Secret(…))",
        "Debug never shows a secret"
    );
}

#[test]
fn an_unreadable_secret_file_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("court.toml");
    let text = format!("{MINIMAL}[[devices]]\ncode = \"a\"\ntoken_file = \"missing.token\"\n");
    let err = load_str(&path, &text).expect_err("missing file");
    let problem = &err.problems()[0];
    assert_eq!(problem.key, "devices[0].token_file");
    assert!(
        problem
            .reason
            .contains(&dir.path().join("missing.token").display().to_string()),
        "{}",
        problem.reason
    );
    std::fs::write(dir.path().join("empty.token"), "\n").expect("write");
    let text = format!("{MINIMAL}[[devices]]\ncode = \"a\"\ntoken_file = \"empty.token\"\n");
    let err = load_str(&path, &text).expect_err("empty file");
    assert!(err.problems()[0].reason.contains("empty"), "{err}");
}

#[test]
fn uplink_settings_are_typed_when_enabled() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("hub.token"), "eyJhbGciOi.jwt\n").expect("write");
    let text = format!(
        "{MINIMAL}[uplink.mqtt]\nenabled = true\nurl = \"mqtts://broker.example.com\"\nusername = \"u\"\npassword = \"p\"\n\
         [uplink.hub]\nenabled = true\nurl = \"wss://hub.example.com/ws/gateway/\"\ntoken_file = \"hub.token\"\nacks = false\n"
    );
    let s = load_str(&dir.path().join("court.toml"), &text).expect("valid");
    let mqtt = s.uplink.mqtt.expect("enabled");
    assert_eq!(
        (
            mqtt.endpoint.host.as_str(),
            mqtt.endpoint.port,
            mqtt.endpoint.tls
        ),
        ("broker.example.com", 8883, true)
    );
    assert_eq!(mqtt.client_id, "shuttlegate-my-venue-court-1");
    let hub = s.uplink.hub.expect("enabled");
    assert_eq!(hub.token.expose(), "eyJhbGciOi.jwt");
    assert!(!hub.acks);
    assert_eq!(hub.endpoint.port, 443);
}

#[test]
fn a_toml_syntax_error_names_the_file_and_line() {
    let err = load_text("[gateway\nvenue = 1").expect_err("bad TOML");
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("court.toml") && text.contains("line 1"),
        "{text}"
    );
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = load(Path::new("/nonexistent/court.toml")).expect_err("missing");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

fn toml_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "gateway",
        "venue",
        "court",
        "state_dir",
        "timezone",
        "clock_check",
        "http",
        "listen",
        "udp",
        "serial",
        "path",
        "baud",
        "journal",
        "max_bytes",
        "when_full",
        "commit_interval",
        "limits",
        "idle_timeout",
        "max_connections",
        "max_connections_per_address",
        "max_handshaking",
        "header_read_timeout",
        "keep_alive_timeout",
        "handshake_timeout",
        "tls_listen",
        "tls_cert_file",
        "tls_key_file",
        "auth",
        "admin_token",
        "admin_token_file",
        "devices",
        "code",
        "token",
        "token_file",
        "allow_tokenless",
        "sensors",
        "placement",
        "axes",
        "1",
        "mount_radius_m",
        "uplink",
        "mqtt",
        "hub",
        "url",
        "enabled",
        "inflight",
        "analysis",
        "x",
    ])
    .prop_map(str::to_owned)
}

fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::from),
        any::<f64>().prop_map(toml::Value::from),
        any::<bool>().prop_map(toml::Value::from),
        prop::sample::select(vec![
            "",
            "2ms",
            "30s",
            "64KiB",
            "512MiB",
            "refuse",
            "waist",
            "Asia/Shanghai",
            "0.0.0.0:8080",
            "mqtts://b",
            "wss://h/",
            "/nonexistent",
            "x",
        ])
        .prop_map(toml::Value::from),
        ".{0,10}".prop_map(toml::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::from),
            prop::collection::btree_map(toml_key(), inner, 0..6)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_loads_or_gives_an_error_never_a_panic(text in ".{0,300}") {
        let _ = load_text(&text);
    }

    #[test]
    fn any_toml_document_loads_or_names_its_problems(
        doc in prop::collection::btree_map(toml_key(), toml_value(), 0..8)
    ) {
        let table: toml::Table = doc.into_iter().collect();
        let text = toml::to_string(&table).unwrap_or_default();
        match load_text(&text) {
            Ok(_) => {}
            Err(ConfigError::Invalid { problems, .. }) => prop_assert!(!problems.is_empty()),
            Err(other) => prop_assert!(!other.to_string().is_empty()),
        }
    }
}

#[test]
fn sizes_and_durations_are_read_in_human_form() {
    let s = load_text(&format!(
        "{MINIMAL}[limits]\nmax_message_bytes = \"64kB\"\nidle_timeout = \"1m 30s\"\n[journal]\nmax_bytes = 1073741824\nsegment_bytes = \"8MiB\"\n"
    ))
    .expect("valid");
    assert_eq!(s.limits.max_message_bytes, 64_000);
    assert_eq!(s.limits.idle_timeout, std::time::Duration::from_secs(90));
    assert_eq!(s.journal.max_bytes, 1 << 30);
    assert_eq!(s.journal.segment_bytes, 8 << 20);
}

#[test]
fn a_secret_matches_only_itself() {
    let secret = Secret::new("demo-token-01".into());
    assert!(secret.matches("demo-token-01"));
    assert!(!secret.matches("demo-token-02"));
    assert!(!secret.matches("demo-token-0"));
    assert!(!secret.matches(""));
}

#[test]
fn the_analysis_section_is_read_into_the_analysis_settings() {
    let s = load_text(&format!(
        "{MINIMAL}[analysis]\nideal_delay_ms = [70, 45]\nwaist_inertia_kg_m2 = 1.5\n"
    ))
    .expect("valid");
    assert_eq!(s.analysis.ideal_delay_ms, [70.0, 45.0]);
    assert_eq!(s.analysis.waist_inertia_kg_m2, 1.5);
    assert_eq!(
        s.analysis.racket_mass_kg,
        shuttlegate_core::analysis::AnalysisSettings::default().racket_mass_kg,
        "unset keys keep their defaults"
    );
}

#[test]
fn an_unknown_analysis_key_is_refused_by_name() {
    let err = load_text(&format!("{MINIMAL}[analysis]\nmax_gap = \"3s\"\n")).unwrap_err();
    assert!(err.to_string().contains("max_gap"), "{err}");
}

#[test]
fn an_admin_token_under_16_characters_is_refused_naming_the_key() {
    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[auth]\nadmin_token = \"admin-secret\"\n"
    ));
    assert_eq!(key, "auth.admin_token");
    assert!(reason.contains("16 characters"), "{reason}");
    let s = load_text(&format!(
        "{MINIMAL}[auth]\nadmin_token = \"sixteen-chars-ok\"\n"
    ))
    .expect("16 characters are enough");
    assert!(s.auth.admin_token.is_some());
}

#[test]
fn a_short_admin_token_file_is_refused_naming_the_file_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("admin"), "short\n").expect("write");
    let text = format!("{MINIMAL}[auth]\nadmin_token_file = \"admin\"\n");
    let err = load_str(&dir.path().join("court.toml"), &text).expect_err("too short");
    let keys: Vec<_> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["auth.admin_token_file"]);
    assert!(
        !err.to_string().contains("short\n"),
        "never echoes the secret: {err}"
    );
}

#[test]
fn allowed_peers_take_addresses_and_networks_and_name_a_bad_entry() {
    let s = load_text(&format!(
        "{MINIMAL}[[devices]]\ncode = \"v33\"\nallow_tokenless = true\nallowed_peers = [\"192.168.1.23\", \"10.0.0.0/8\", \"fe80::/10\"]\n"
    ))
    .expect("valid");
    let peers: Vec<String> = s.devices[0]
        .allowed_peers
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(peers, ["192.168.1.23/32", "10.0.0.0/8", "fe80::/10"]);

    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"v33\"\nallow_tokenless = true\nallowed_peers = [\"10.0.0.1\", \"court-lan\"]\n"
    ));
    assert_eq!(key, "devices[0].allowed_peers[1]");
    assert!(reason.contains("`court-lan`"), "{reason}");

    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"v33\"\nallow_tokenless = true\nallowed_peers = [\"192.168.1.5/24\"]\n"
    ));
    assert_eq!(key, "devices[0].allowed_peers[0]");
    assert!(reason.contains("192.168.1.0/24"), "{reason}");

    let (key, _) = single_problem(&format!(
        "{MINIMAL}[[devices]]\ncode = \"v33\"\nallow_tokenless = true\nallowed_peers = []\n"
    ));
    assert_eq!(key, "devices[0].allowed_peers");
}

proptest! {
    #[test]
    fn any_address_or_network_parses_back_to_itself(
        ip in any::<std::net::IpAddr>(),
        prefix in 0u8..=128,
    ) {
        let host = parse_allowed_peer(&ip.to_string()).expect("an address");
        prop_assert_eq!(host, ipnet::IpNet::from(ip));
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let net = ipnet::IpNet::new(ip, prefix.min(max)).expect("a prefix in range").trunc();
        prop_assert_eq!(parse_allowed_peer(&net.to_string()), Ok(net));
    }

    #[test]
    fn any_other_text_is_refused_quoting_it(text in "[^0-9a-fA-F:./]{1,20}") {
        let reason = parse_allowed_peer(&text).expect_err("not an address");
        prop_assert!(reason.contains(text.trim()), "{}", reason);
    }
}

#[test]
fn connection_caps_and_timeouts_are_checked_against_each_other() {
    let s = load_text(MINIMAL).expect("valid");
    assert_eq!(
        (
            s.limits.max_connections,
            s.limits.max_connections_per_address,
            s.limits.max_handshaking
        ),
        (512, 32, 64)
    );
    assert_eq!(
        s.http.header_read_timeout,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(s.http.keep_alive_timeout, std::time::Duration::from_secs(5));
    assert_eq!(s.http.handshake_timeout, std::time::Duration::from_secs(10));
    assert_eq!(s.http.tls, None);
    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[limits]\nmax_connections = 16\nmax_connections_per_address = 17\nmax_handshaking = 8\n"
    ));
    assert_eq!(key, "limits.max_connections_per_address");
    assert!(reason.contains("limits.max_connections (16)"), "{reason}");
    let (key, reason) = single_problem(&format!(
        "{MINIMAL}[http]\nheader_read_timeout = \"3s\"\nkeep_alive_timeout = \"4s\"\n"
    ));
    assert_eq!(key, "http.keep_alive_timeout");
    assert!(reason.contains("http.header_read_timeout (3s)"), "{reason}");
    let (key, reason) = single_problem(&format!("{MINIMAL}[http]\nhandshake_timeout = \"0s\"\n"));
    assert_eq!(key, "http.handshake_timeout");
    assert!(reason.contains("out of range"), "{reason}");
}

#[test]
fn the_tls_listener_needs_its_address_and_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court.toml");
    std::fs::write(dir.path().join("tls.crt"), "x").unwrap();
    std::fs::write(dir.path().join("tls.key"), "x").unwrap();
    let load = |http: &str| load_str(&path, &format!("{MINIMAL}[http]\n{http}"));
    let s = load(
        "tls_listen = \"0.0.0.0:8443\"\ntls_cert_file = \"tls.crt\"\ntls_key_file = \"tls.key\"\n",
    )
    .expect("valid");
    let tls = s.http.tls.expect("a TLS listener");
    assert_eq!(tls.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(tls.cert_file, dir.path().join("tls.crt"));
    let keys = |http: &str| -> Vec<String> {
        load(http)
            .expect_err("invalid")
            .problems()
            .iter()
            .map(|p| p.key.clone())
            .collect()
    };
    assert_eq!(
        keys("tls_cert_file = \"tls.crt\"\n"),
        ["http.tls_cert_file"]
    );
    assert_eq!(
        keys("tls_listen = \"0.0.0.0:8443\"\ntls_cert_file = \"tls.crt\"\n"),
        ["http.tls_key_file"]
    );
    assert_eq!(
        keys(
            "tls_listen = \"0.0.0.0:8080\"\ntls_cert_file = \"tls.crt\"\ntls_key_file = \"missing.key\"\n"
        ),
        ["http.tls_listen", "http.tls_key_file"]
    );
}

#[test]
fn the_phone_jwt_algorithm_names_its_key_and_a_bad_one_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("court.toml");
    let public = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/es256-public.pem"
    );
    std::fs::copy(public, dir.path().join("cloud.pem")).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a key").unwrap();
    let load = |auth: &str| load_str(&path, &format!("{MINIMAL}[auth]\n{auth}"));
    let s = load("jwt_secret = \"cloud\"\njwt_audience = \"gw\"\n").expect("valid");
    let jwt = s.auth.jwt.expect("HS256 rules");
    assert_eq!(jwt.key, JwtKey::Shared(Secret::from("cloud")));
    assert_eq!(jwt.audience.as_deref(), Some("gw"));
    let s =
        load("jwt_algorithm = \"ES256\"\njwt_public_key_file = \"cloud.pem\"\n").expect("valid");
    assert!(matches!(
        s.auth.jwt.expect("ES256 rules").key,
        JwtKey::Public {
            algorithm: JwtAlgorithm::Es256,
            ..
        }
    ));
    assert_eq!(load_text(MINIMAL).expect("valid").auth.jwt, None);
    let keys = |auth: &str| -> Vec<String> {
        load(auth)
            .expect_err("invalid")
            .problems()
            .iter()
            .map(|p| p.key.clone())
            .collect()
    };
    assert_eq!(keys("jwt_algorithm = \"none\"\n"), ["auth.jwt_algorithm"]);
    assert_eq!(
        keys("jwt_algorithm = \"RS256\"\n"),
        ["auth.jwt_public_key_file"]
    );
    assert_eq!(
        keys("jwt_algorithm = \"RS256\"\njwt_public_key_file = \"cloud.pem\"\n"),
        ["auth.jwt_public_key_file"],
        "an EC key is not an RSA key"
    );
    assert_eq!(
        keys("jwt_algorithm = \"ES256\"\njwt_public_key_file = \"junk.pem\"\n"),
        ["auth.jwt_public_key_file"]
    );
    assert_eq!(
        keys("jwt_secret = \"s\"\njwt_public_key_file = \"cloud.pem\"\n"),
        ["auth.jwt_public_key_file"]
    );
    assert_eq!(
        keys(
            "jwt_secret = \"s\"\njwt_algorithm = \"ES256\"\njwt_public_key_file = \"cloud.pem\"\n"
        ),
        ["auth.jwt_secret"]
    );
    assert_eq!(
        keys("jwt_secret = \"s\"\njwt_issuer = \" \"\n"),
        ["auth.jwt_issuer"]
    );
}
