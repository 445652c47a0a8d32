//! `bench phones` end to end with tiny numbers: a real daemon quiet then watched by phones and
//! a screen, every figure read back. No timing is asserted (speed is the benchmark's report);
//! what is checked is that the bench measures what it says: the probes were acknowledged in
//! both runs, every swing the daemon wrote to a phone or screen was received by it, and nothing
//! was dropped or failed.

use std::time::Duration;

use shuttlegate_tools::bench::phones::{self, PhoneBench};
use shuttlegate_tools::bench::swings::SwingBench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_phones_runs_quiet_then_watched_and_accounts_for_every_push() {
    let exe = shuttlegate_tools::daemon_exe().expect("the daemon binary is built");
    let bench = PhoneBench {
        load: SwingBench {
            players: 2,
            rate_hz: 200.0,
            batch_samples: 40,
            load_devices: 0,
            load_window: 8,
            duration: Duration::from_secs(12),
            commit_interval: Duration::from_millis(2),
            seed: 3,
        },
        phones: 6,
        screens: 1,
        probes: 1,
        probe_interval: Duration::from_millis(50),
    };
    let report = phones::run(&exe, bench).await.expect("the bench runs");
    println!("{report}");
    for run in [&report.quiet, &report.watched] {
        assert!(run.acks.acks > 0, "{report}");
        assert_eq!(run.errors, 0, "{report}");
        assert!(run.daemon_peak_rss_mib > 0.0, "{report}");
    }
    let c = &report.clients;
    assert!(c.screen_pushes > 0, "the players swung: {report}");
    assert_eq!(c.phone_swings_received, c.phone_pushes, "{report}");
    assert_eq!(c.screen_swings_received, c.screen_pushes, "{report}");
    // Six phones over two users: each swing goes to three phones, and the screen gets them all.
    assert_eq!(c.phone_pushes, 3 * c.screen_pushes, "{report}");
    assert_eq!(
        (
            c.dropped_phone,
            c.dropped_screen,
            c.lagged_told,
            c.client_errors
        ),
        (0, 0, 0, 0),
        "{report}"
    );
    assert!(
        c.phone_ms[2] > 0.0 && c.phone_ms[0] <= c.phone_ms[1],
        "{report}"
    );
}
