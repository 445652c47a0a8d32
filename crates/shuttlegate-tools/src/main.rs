//! `shuttlegate-tools`: the developer tools, in a binary of their own that the daemon does not
//! link. The arguments are resolved once ([`cli`]) and the result dispatched here to the
//! library; this binary is glue and the only place `anyhow` is used.

mod cli;

use anyhow::Result;
use clap::Parser;
use shuttlegate_core::analysis::AnalysisSettings;
use shuttlegate_tools::bench::{ingest, phones, swings, uplink};
use shuttlegate_tools::{biomech_eval, eval, every_source, recording, torture};

use cli::{Cli, Mode};

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging();
    shuttlegate_tools::children::end_on_signal()?;
    match cli.resolve()? {
        Mode::BenchIngest(scenarios) => {
            let exe = shuttlegate_tools::daemon_exe()?;
            let rt = runtime()?;
            for scenario in scenarios {
                let label = format!(
                    "{} devices x {} samples/batch, {}, window {}, commit {:?}",
                    scenario.devices,
                    scenario.batch_samples,
                    scenario
                        .rate_hz
                        .map_or("unpaced".to_owned(), |r| format!("{r} Hz each")),
                    scenario.window,
                    scenario.commit_interval
                );
                let report = rt.block_on(ingest::run(&exe, scenario))?;
                println!("bench ingest: {label}\n  {report}");
            }
        }
        Mode::BenchUplink(bench) => {
            let exe = shuttlegate_tools::daemon_exe()?;
            let report = runtime()?.block_on(uplink::run(&exe, bench))?;
            println!("bench uplink\n{report}");
        }
        Mode::BenchSwings(scenarios) => {
            let exe = shuttlegate_tools::daemon_exe()?;
            let rt = runtime()?;
            for scenario in scenarios {
                let label = format!(
                    "{} players at {} Hz x {} samples/batch, {} unpaced load devices (window {}), {:?}, commit {:?}",
                    scenario.players,
                    scenario.rate_hz,
                    scenario.batch_samples,
                    scenario.load_devices,
                    scenario.load_window,
                    scenario.duration,
                    scenario.commit_interval
                );
                let report = rt.block_on(swings::run(&exe, scenario))?;
                println!("bench swings: {label}\n  {report}");
            }
        }
        Mode::BenchPhones(bench) => {
            let exe = shuttlegate_tools::daemon_exe()?;
            let label = format!(
                "{} players at {} Hz x {} samples/batch, {} unpaced load devices, {} probes every {:?}, {} phones, {} screens, {:?} per run, commit {:?}",
                bench.load.players,
                bench.load.rate_hz,
                bench.load.batch_samples,
                bench.load.load_devices,
                bench.probes,
                bench.probe_interval,
                bench.phones,
                bench.screens,
                bench.load.duration,
                bench.load.commit_interval
            );
            let report = runtime()?.block_on(phones::run(&exe, bench))?;
            println!("bench phones: {label}\n{report}");
        }
        Mode::EvalEvery {
            runs,
            in_process,
            verbose,
            json,
        } => {
            let exe = if in_process {
                None
            } else {
                Some(shuttlegate_tools::daemon_exe()?)
            };
            let settings = AnalysisSettings::default();
            let reports =
                runtime()?.block_on(every_source::run(&runs, exe.as_deref(), &settings))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&every_source::to_json(&reports))?
                );
            } else {
                print!("{}", every_source::render(&reports, verbose));
            }
        }
        Mode::EvalBiomech {
            options,
            verbose,
            json,
        } => {
            let report = biomech_eval::run(&options, &AnalysisSettings::default());
            let label = options
                .rate_hz
                .map_or("biomech".to_owned(), |r| format!("biomech@{r}Hz"));
            let table = report.source_report(&label);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&every_source::to_json(&[table]))?
                );
            } else if verbose {
                print!("{}", table.render_verbose());
            } else {
                print!("{}", table.render());
            }
        }
        Mode::Eval { options, verbose } => {
            let report = eval::run(&options, &AnalysisSettings::default());
            println!(
                "== sim (self-consistent: the project's simulator shares the analyser's pulse model and labelling rules) =="
            );
            print!("{}", report.render());
            if verbose {
                for line in &report.mismatches {
                    println!("{line}");
                }
            }
        }
        Mode::EvalRecordings(specs) => {
            let settings = AnalysisSettings::default();
            let results = specs
                .iter()
                .map(|spec| recording::evaluate(spec, &settings))
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", recording::render(&results));
        }
        Mode::EvalSources {
            sources,
            in_process,
            verbose,
            json,
        } => {
            let settings = AnalysisSettings::default();
            let rt = runtime()?;
            let exe = if in_process {
                None
            } else {
                Some(shuttlegate_tools::daemon_exe()?)
            };
            let mut reports = Vec::new();
            for source in &sources {
                let report = match &exe {
                    None => recording::evaluate_source(source, &settings)?,
                    Some(exe) => rt.block_on(recording::daemon::through_daemon(exe, source))?,
                };
                if !json {
                    println!(
                        "{}",
                        if verbose {
                            report.render_verbose()
                        } else {
                            report.render()
                        }
                    );
                }
                reports.push(report);
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&every_source::to_json(&reports))?
                );
            }
        }
        Mode::BiomechSession { options, out } => {
            let session = shuttlegate_biomech::generate(&options);
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("wire.jsonl"), session.wire_lines())?;
            std::fs::write(
                out.join("truth.json"),
                serde_json::to_string_pretty(&session.truth_json())?,
            )?;
            println!(
                "{}: {} frames, {} swings, {} rest windows",
                out.display(),
                session.messages.len(),
                session.swings.len(),
                session.rests.len()
            );
        }
        Mode::Torture {
            dir,
            appenders,
            limit,
            segment_bytes,
        } => runtime()?.block_on(torture::run(dir, appenders, limit, segment_bytes))?,
    }
    Ok(())
}
