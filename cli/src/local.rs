//! The local estate's commands (feature `local`): `serve` the simulated estate, run the lab's `demo`, `simulate`,
//! `chaos` and `bench`, and write generated estates.

use crate::error::CliError;
use autopilot_lab::simulate::{Options, Summary, goals, simulate};
use autopilot_sim::estate::Estate;
use autopilot_sim::generate::{Sizes, generate};
use autopilot_sim::{LocalEstate, READY};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Serve the simulated estate and an embedded DynamoDB on loopback until interrupted; prints the `export`
    /// lines that point any AWS client (the AWS CLI, boto3, the SDKs, the functions) at it.
    Serve {
        /// The estate file (YAML). Default: the estate the sample events in events/ name
        /// (sim/estates/samples.yaml), with their policy stored.
        #[arg(long)]
        estate: Option<PathBuf>,
        /// A policy document to store in the ledger at start (default with the samples' estate: theirs).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Port of the simulator (DynamoDB takes the next one); 0 picks free ports.
        #[arg(long, default_value_t = 4566)]
        port: u16,
        /// Seed of every random choice (demand noise, faults, ids).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The estate's clock follows the wall clock (from the estate's start) instead of moving only when
        /// `POST /_sim/advance` is called.
        #[arg(long)]
        realtime: bool,
    },
    /// Run the functions against a simulated estate on the virtual clock and write calls, audit, events, a
    /// summary and a report into --out.
    Simulate {
        #[arg(long)]
        estate: PathBuf,
        #[arg(long)]
        policy: PathBuf,
        /// Start (RFC 3339).
        #[arg(long)]
        from: String,
        /// End (RFC 3339).
        #[arg(long)]
        to: String,
        /// Schedule tick interval, e.g. 5m.
        #[arg(long, default_value = "5m")]
        tick: String,
        /// A learning period at the start, e.g. 7d: the capacity figures, the baselines' and the goals count
        /// from its end (a predictive rule learns its weekly profile meanwhile).
        #[arg(long, default_value = "0s")]
        learn: String,
        /// Injected events, one `{"at": …, "event": {…}}` per line.
        #[arg(long)]
        events: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Deliver every tick and event again with this probability (0..1; seeded; up to 10 copies), as
        /// EventBridge's at-least-once delivery may: the results must not change.
        #[arg(long, default_value_t = 0.0)]
        redeliver: f64,
    },
    /// Three simulated weeks of the shipped demo estate and policy (the first one learning), written to
    /// ./autopilot-demo/.
    Demo {
        #[arg(long, default_value = "autopilot-demo")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The scaling scenario: a generated estate of pools and fleets with morning ramps and noise, three weeks
    /// (the first one learning) against Application Auto Scaling, written to ./autopilot-scenario/.
    Scenario {
        #[arg(long, default_value_t = 8)]
        pools: u32,
        #[arg(long, default_value_t = 4)]
        fleets: u32,
        #[arg(long, default_value = "autopilot-scenario")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Estate file tools.
    Estate {
        #[command(subcommand)]
        command: EstateCommand,
    },
    /// Reliability experiments on every function's sample scenario: duplicate deliveries (2, 3, 10 times,
    /// sequential and concurrent), a crash after every request, the ledger stopped between and during
    /// deliveries, overlapping invocations and a holder paused past its lease, faults (throttling, 5xx, latency,
    /// per-item batch failures) and bad input (corpus and generated); prints a table. Exit code 1 when an experiment found a lost or repeated effect, a panic or a misclassified error.
    Chaos {
        /// Crash after every k-th request of each baseline scenario (1: every request).
        #[arg(long, default_value_t = 1)]
        crash_every: u64,
        /// Generated bad-input cases.
        #[arg(long, default_value_t = 20_000)]
        cases: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Performance figures (release build): API calls per tick against their lower bound, wall time at the
    /// services' rate limits against the bound those imply, CPU per 1,000 resources, cold start, peak memory,
    /// zip sizes and the demo's wall time, on generated estates; prints a table and writes `--out`.
    Bench {
        /// Estate sizes (pools + fleets; builders, exports, environments, devices and WorkSpaces in proportion)
        /// of the call and CPU figures.
        #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
        sizes: Vec<u32>,
        /// Estate size of the runs at the rate limits (0 skips them).
        #[arg(long, default_value_t = 1000)]
        throughput_size: u32,
        /// Spawns of each function binary for the cold start (0 skips cold start and peak memory).
        #[arg(long, default_value_t = 20)]
        spawns: usize,
        /// Estate size of the peak-memory tick.
        #[arg(long, default_value_t = 10000)]
        memory_size: u32,
        /// Skip timing `autopilot demo`.
        #[arg(long)]
        no_demo: bool,
        /// Requests per operation and layer of the CPU-per-request layer table and the floor F (0 skips them).
        #[arg(long, default_value_t = 2000)]
        layer_requests: u32,
        /// Pools + fleets of the many-accounts run (0 skips it): spread over --accounts x --regions, every shard
        /// throttled at its own rates, the shards in parallel.
        #[arg(long, default_value_t = 10000)]
        shard_size: u32,
        #[arg(long, default_value_t = 20)]
        accounts: u32,
        #[arg(long, value_delimiter = ',', default_value = "eu-central-1,eu-west-1")]
        regions: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the results go.
        #[arg(long, default_value = "bench/results.json")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum EstateCommand {
    /// Write a generated estate to standard output.
    Generate {
        #[arg(long, default_value_t = 0)]
        pools: u32,
        #[arg(long, default_value_t = 0)]
        fleets: u32,
        #[arg(long, default_value_t = 0)]
        builders: u32,
        #[arg(long, default_value_t = 0)]
        environments: u32,
        #[arg(long, default_value_t = 0)]
        devices: u32,
        #[arg(long, default_value_t = 0)]
        workspaces: u32,
        /// Spread the resources over this many accounts (100000000001, …), each with a spoke role.
        #[arg(long, default_value_t = 1)]
        accounts: u32,
        /// … and over these regions (comma-separated; default: the estate's own).
        #[arg(long, value_delimiter = ',')]
        regions: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

impl LocalCommand {
    /// Whether the command runs a simulated week in process.
    pub fn runs_a_simulation(&self) -> bool {
        matches!(self, LocalCommand::Simulate { .. } | LocalCommand::Demo { .. } | LocalCommand::Scenario { .. })
    }
}

/// Runs a local-estate command.
pub async fn run(command: LocalCommand) -> Result<(), CliError> {
    match command {
        LocalCommand::Serve { estate, policy, port, seed, realtime } => {
            serve(estate, policy, port, seed, realtime).await
        }
        LocalCommand::Simulate { estate, policy, from, to, tick, learn, events, seed, out, redeliver } => {
            if !(0.0..=1.0).contains(&redeliver) {
                return Err(CliError::Flag {
                    flag: "redeliver",
                    value: redeliver.to_string(),
                    problem: "a probability between 0 and 1".into(),
                });
            }
            let instant = |flag: &'static str, text: &str| {
                chrono::DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&chrono::Utc)).map_err(|_| {
                    CliError::Flag { flag, value: format!("{text:?}"), problem: "not an RFC 3339 instant".into() }
                })
            };
            let tick = autopilot_shared::policy::values::parse_duration(&tick).map_err(|e| CliError::Flag {
                flag: "tick",
                value: tick.clone(),
                problem: e.to_string(),
            })?;
            let learn = autopilot_shared::policy::values::parse_duration(&learn).map_err(|e| CliError::Flag {
                flag: "learn",
                value: learn.clone(),
                problem: e.to_string(),
            })?;
            let options = Options {
                estate,
                policy,
                from: instant("from", &from)?,
                to: instant("to", &to)?,
                tick,
                learn,
                events,
                seed,
                out,
                progress: true,
                redeliver,
            };
            simulate_and_print(&options).await
        }
        LocalCommand::Chaos { crash_every, cases, seed } => {
            let (table, held) =
                autopilot_lab::chaos::run(&autopilot_lab::chaos::Options { crash_every, cases, seed }).await?;
            outln!("{table}");
            if held { Ok(()) } else { Err(CliError::ChaosFailed) }
        }
        LocalCommand::Bench {
            sizes,
            throughput_size,
            spawns,
            memory_size,
            no_demo,
            layer_requests,
            shard_size,
            accounts,
            regions,
            seed,
            out,
        } => {
            use autopilot_lab::bench;
            let options = bench::Options {
                sizes,
                throughput_size,
                spawns,
                memory_size,
                demo: !no_demo,
                layer_requests,
                shard_size,
                accounts,
                regions,
                seed,
                out: out.clone(),
            };
            let results = bench::run(&options).await?;
            out!("{}", bench::render(&results));
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| CliError::write(dir, e))?;
            }
            let json = serde_json::to_string_pretty(&results)?;
            std::fs::write(&out, json + "\n").map_err(|e| CliError::write(&out, e))?;
            outln!("written to {}", out.display());
            let failures = bench::failures(&results);
            if failures.is_empty() { Ok(()) } else { Err(CliError::GoalsMissed(failures)) }
        }
        LocalCommand::Demo { out, seed } => {
            use autopilot_lab::simulate::{DEMO_ESTATE, DEMO_POLICY};
            simulate_and_print(&three_weeks(out, seed, DEMO_ESTATE, DEMO_POLICY)?).await
        }
        LocalCommand::Scenario { pools, fleets, out, seed } => {
            let estate = serde_yaml_ng::to_string(&autopilot_lab::simulate::ramps_estate(pools, fleets, seed))?;
            simulate_and_print(&three_weeks(out, seed, &estate, autopilot_lab::simulate::RAMPS_POLICY)?).await
        }
        LocalCommand::Estate {
            command:
                EstateCommand::Generate {
                    pools,
                    fleets,
                    builders,
                    environments,
                    devices,
                    workspaces,
                    accounts,
                    regions,
                    seed,
                },
        } => {
            let mut estate = generate(Sizes { pools, fleets, builders, environments, devices, workspaces }, seed);
            autopilot_sim::generate::spread(&mut estate, accounts, &regions);
            let yaml = serde_yaml_ng::to_string(&estate)?;
            out!("{yaml}");
            Ok(())
        }
    }
}

/// The demo's and the scenario's run: `estate` and `policy` written into `out`, three weeks from the demo's start,
/// the first one learning.
fn three_weeks(out: PathBuf, seed: u64, estate: &str, policy: &str) -> Result<Options, CliError> {
    std::fs::create_dir_all(&out).map_err(|e| CliError::write(&out, e))?;
    let estate_path = out.join("estate.yaml");
    let policy_path = out.join("policy.yaml");
    std::fs::write(&estate_path, estate).map_err(|e| CliError::write(&estate_path, e))?;
    std::fs::write(&policy_path, policy).map_err(|e| CliError::write(&policy_path, e))?;
    let from = autopilot_lab::simulate::demo_start();
    Ok(Options {
        estate: estate_path,
        policy: policy_path,
        from,
        to: from + chrono::Duration::days(autopilot_lab::simulate::DEMO_DAYS),
        tick: chrono::Duration::minutes(5),
        learn: chrono::Duration::days(autopilot_lab::simulate::DEMO_LEARNING_DAYS),
        events: None,
        seed,
        out,
        progress: true,
        redeliver: 0.0,
    })
}

/// `autopilot serve`: the estate and its ledger until interrupted.
async fn serve(
    estate: Option<PathBuf>,
    policy: Option<PathBuf>,
    port: u16,
    seed: u64,
    realtime: bool,
) -> Result<(), CliError> {
    use autopilot_lab::samples;
    use autopilot_sim::Identity;
    let read = |path: &PathBuf| std::fs::read_to_string(path).map_err(|e| CliError::read(path, e));
    let estate_file = estate.clone();
    let (estate_text, estate_name) = match &estate {
        Some(path) => (read(path)?, path.display().to_string()),
        None => (samples::ESTATE.to_owned(), "sim/estates/samples.yaml (the sample events' estate)".to_owned()),
    };
    let policy = match (&policy, &estate) {
        (Some(path), _) => Some((read(path)?, path.display().to_string())),
        (None, None) => Some((samples::POLICY.to_owned(), "sim/estates/samples-policy.yaml".to_owned())),
        (None, Some(_)) => None,
    };
    let estate =
        Estate::from_yaml(&estate_text).map_err(|source| CliError::Estate { name: estate_name.clone(), source })?;
    let local = LocalEstate::start(&estate, seed, port).await?;
    if estate_file.is_none() {
        // what the samples need beyond the estate file (the export task a CloudTrail sample reports)
        for function in autopilot_lab::Function::ALL {
            samples::prepare(function.name(), &local);
        }
    }
    if let Some((document, name)) = &policy {
        crate::operate::validate::validate(name, document)?;
        local
            .ledger()
            .put_policy(document, local.simulator.now())
            .await
            .map_err(|source| CliError::Store { name: name.clone(), source })?;
    }
    if realtime {
        local.simulator.follow_wall_clock();
    }
    let mut out = std::io::stdout().lock();
    let mut line = |text: String| writeln!(out, "{text}");
    line(format!(
        "# the local estate {estate_name}, clock at {} ({})",
        local.simulator.now().to_rfc3339(),
        if realtime { "following the wall clock" } else { "moves on POST /_sim/advance?minutes=N" }
    ))?;
    if let Some((_, name)) = &policy {
        line(format!("# policy stored: {name}"))?;
    }
    line(
        "# signed as the operator (OperatorPolicy of template.yaml); AWS_ACCESS_KEY_ID names the identity every".into(),
    )?;
    let functions: Vec<&str> =
        autopilot_lab::Function::ALL.iter().map(|f| Identity::Function(f.name()).access_key()).collect();
    line(format!(
        "# request is authorised as: {} (each function's role), {}, {} (anything)",
        functions.join(", "),
        Identity::Operator.access_key(),
        Identity::Admin.access_key()
    ))?;
    for export in local.env_lines() {
        line(export)?;
    }
    line(READY.into())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn simulate_and_print(options: &Options) -> Result<(), CliError> {
    let summary = simulate(options).await?;
    print_summary(&summary, &options.out);
    Ok(())
}

fn print_summary(summary: &Summary, out: &std::path::Path) {
    outln!(
        "{:<22} {:>15} {:>17} {:>9} {:>17} {:>9} {:>10}",
        "run",
        "capacity-hours",
        "session requests",
        "unserved",
        "unserved minutes",
        "actions",
        "API calls"
    );
    for (name, f) in summary.runs() {
        outln!(
            "{name:<22} {:>15.1} {:>17} {:>9} {:>17} {:>9} {:>10}",
            f.capacity_hours,
            f.session_requests,
            f.unserved_session_requests,
            f.unserved_session_minutes,
            f.actions,
            f.api_calls
        );
    }
    let b = &summary.builders;
    if !b.builders.is_empty() {
        outln!(
            "image builders: {:.1} billed hours vs {:.1} running from first start ({:.1} saved), {} stops deferred",
            b.running_hours,
            b.baseline_hours,
            b.hours_saved,
            b.deferrals
        );
    }
    let w = &summary.workspaces;
    if w.workspaces > 0 {
        outln!(
            "WorkSpaces: {:.1} unhealthy WorkSpace-hours vs {:.1} without the remediator; {} reboots, {} rebuilds, {} escalations",
            w.unhealthy_hours,
            w.baseline_unhealthy_hours,
            w.reboots,
            w.rebuilds,
            w.escalations.values().sum::<u64>()
        );
    }
    for goal in goals(summary) {
        outln!("{goal}");
    }
    outln!("written to {} (report.md, summary.json, calls.jsonl, audit.jsonl, events.jsonl, charts/)", out.display());
}
