//! `shuttlegate-tools eval` without a narrowing flag: one report per source — the independent
//! simulator (rates mixed, 100 Hz, 200 Hz), every committed recording excerpt, the held-out
//! figure of the fitted padel axis map — each figure beside issue 14's target, as tables or as
//! JSON. In process and on one short session, to keep CI quick: the daemon path is
//! tests/biomech_daemon.rs's and tests/recordings_daemon.rs's.

use serde_json::Value;
use shuttlegate_tools::recording::sources::FIXTURE_SOURCES;

fn eval(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shuttlegate-tools"))
        .arg("eval")
        .args(args)
        .output()
        .expect("shuttlegate-tools runs")
}

const SHORT: [&str; 5] = ["--in-process", "--seeds", "1", "--duration-s", "20"];

#[test]
fn eval_reports_every_source_with_its_targets_as_json() {
    let out = eval(&[&SHORT[..], &["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let sources = json["sources"].as_array().expect("a list of sources");
    let names: Vec<&str> = sources
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    let mut expected = vec!["biomech", "biomech@100Hz", "biomech@200Hz"];
    for name in FIXTURE_SOURCES {
        expected.push(name);
        if name == "padel_mdpg22_axes_learnt" {
            expected.push("padel_mdpg22_axes_held_out");
        }
    }
    assert_eq!(names, expected);
    for source in sources {
        let name = &source["source"];
        let figures = source["figures"].as_array().expect("figures");
        let judged = figures.iter().filter(|f| f["met"].is_boolean()).count();
        assert!(judged > 0, "{name}: no figure judged against a target");
        assert_eq!(source["targets_judged"], judged, "{name}");
        for f in figures {
            if let Some(target) = f["target"].as_object() {
                assert!(
                    [">=", "<=", ">"].contains(&target["op"].as_str().unwrap_or("")),
                    "{name}: {f}"
                );
                assert_eq!(f["met"].is_boolean(), f["value"].is_number(), "{name}: {f}");
            }
        }
    }
    let biomech = &sources[1];
    for figure in [
        "detection F1",
        "stroke type",
        "forehand/backhand",
        "racket-speed MAE",
        "chain delays within ±10 ms",
        "segment peaks within ±5 %",
    ] {
        let f = biomech["figures"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == figure))
            .unwrap_or_else(|| panic!("{figure} missing"));
        assert!(f["target"].is_object(), "{figure} has no target");
    }
    let held_out = sources
        .iter()
        .find(|s| s["source"] == "padel_mdpg22_axes_held_out")
        .expect("the held-out run");
    let folds = held_out["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter(|n| n.as_str().is_some_and(|n| n.starts_with("fold: ")))
        .count();
    assert_eq!(folds, 4, "one fold per padel file: {held_out}");
}

#[test]
fn eval_prints_one_table_per_source_and_a_summary() {
    let out = eval(&SHORT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for heading in [
        "== biomech — independent simulator",
        "== biomech@200Hz — ",
        "== padel_mdpg22_axes_held_out — ",
        "== tabletennis_mikapower — ",
        "== summary: targets met per source",
    ] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
    assert!(
        text.contains("data: committed excerpt tests/fixtures/padel_mdpg22"),
        "{text}"
    );
}

#[test]
fn bad_flag_combinations_are_refused_with_a_reason() {
    let out = eval(&["--simulator", "sim", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--json does not apply"));
    let out = eval(&["--rate-hz", "100", "--in-process"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--in-process apply"));
    let out = eval(&["--source", "nonsense=/nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a source"));
}
