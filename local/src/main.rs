//! The `autopilot` command-line tool. Subcommands:
//! - `autopilot serve --estate <file> [--port <n>] [--seed <n>]`: run the simulator and an embedded DynamoDB;
//! - `autopilot simulate …` / `autopilot demo`: run the functions on the virtual clock and report;
//! - `autopilot estate generate …`: write a large generated estate file.

use autopilot_local::LocalEstate;
use autopilot_local::estate::Estate;
use autopilot_local::generate::{Sizes, generate};
use autopilot_local::simulate::{Options, Summary, goals, simulate};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "autopilot", about = "EUC Autopilot local tool: simulator, embedded DynamoDB and estate tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the simulated estate and an embedded DynamoDB on loopback until interrupted.
    Serve {
        /// The estate file (YAML), e.g. local/estates/demo.yaml.
        #[arg(long)]
        estate: PathBuf,
        /// Port of the simulator (DynamoDB takes the next one); 0 picks free ports.
        #[arg(long, default_value_t = 4566)]
        port: u16,
        /// Seed of every random choice (demand noise, faults, ids).
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
        /// Injected events, one `{"at": …, "event": {…}}` per line.
        #[arg(long)]
        events: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// One simulated week of the shipped demo estate and policy, written to ./autopilot-demo/.
    Demo {
        #[arg(long, default_value = "autopilot-demo")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Estate file tools.
    Estate {
        #[command(subcommand)]
        command: EstateCommand,
    },
}

#[derive(Subcommand)]
enum EstateCommand {
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
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("autopilot: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { estate, port, seed } => {
            let text =
                std::fs::read_to_string(&estate).map_err(|e| format!("cannot read {}: {e}", estate.display()))?;
            let estate = Estate::from_yaml(&text).map_err(|e| e.to_string())?;
            let local = LocalEstate::start(&estate, seed, port).await?;
            let mut out = std::io::stdout().lock();
            for line in local.env_lines() {
                writeln!(out, "{line}").map_err(|e| e.to_string())?;
            }
            writeln!(out, "ready").map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            drop(out);
            tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
            Ok(())
        }
        Command::Simulate { estate, policy, from, to, tick, events, seed, out } => {
            let instant = |name: &str, text: &str| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| format!("--{name} {text:?} is not an RFC 3339 instant"))
            };
            let tick = autopilot_shared::policy::values::parse_duration(&tick).map_err(|e| format!("--tick: {e}"))?;
            let options = Options {
                estate,
                policy,
                from: instant("from", &from)?,
                to: instant("to", &to)?,
                tick,
                events,
                seed,
                out,
                progress: true,
            };
            simulate_and_print(&options).await
        }
        Command::Demo { out, seed } => {
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let estate = out.join("estate.yaml");
            let policy = out.join("policy.yaml");
            std::fs::write(&estate, include_str!("../estates/demo.yaml")).map_err(|e| e.to_string())?;
            std::fs::write(&policy, include_str!("../estates/demo-policy.yaml")).map_err(|e| e.to_string())?;
            let from = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
                .map_err(|e| e.to_string())?
                .with_timezone(&chrono::Utc);
            let options = Options {
                estate,
                policy,
                from,
                to: from + chrono::Duration::days(7),
                tick: chrono::Duration::minutes(5),
                events: None,
                seed,
                out,
                progress: true,
            };
            simulate_and_print(&options).await
        }
        Command::Estate {
            command: EstateCommand::Generate { pools, fleets, builders, environments, devices, workspaces, seed },
        } => {
            let estate = generate(Sizes { pools, fleets, builders, environments, devices, workspaces }, seed);
            let yaml = serde_yaml_ng::to_string(&estate).map_err(|e| e.to_string())?;
            print!("{yaml}");
            Ok(())
        }
    }
}

async fn simulate_and_print(options: &Options) -> Result<(), String> {
    let summary = simulate(options).await?;
    print_summary(&summary, &options.out);
    Ok(())
}

fn print_summary(summary: &Summary, out: &std::path::Path) {
    println!(
        "{:<16} {:>15} {:>17} {:>9} {:>9} {:>10}",
        "run", "capacity-hours", "session requests", "unserved", "actions", "API calls"
    );
    for (name, f) in [
        ("pool-scaler", &summary.totals),
        ("static (peak)", &summary.baselines.fixed),
        ("schedule-only", &summary.baselines.schedule_only),
    ] {
        println!(
            "{name:<16} {:>15.1} {:>17} {:>9} {:>9} {:>10}",
            f.capacity_hours, f.session_requests, f.unserved_session_requests, f.actions, f.api_calls
        );
    }
    let b = &summary.builders;
    if !b.builders.is_empty() {
        println!(
            "image builders: {:.1} billed hours vs {:.1} running from first start ({:.1} saved), {} stops deferred",
            b.running_hours, b.baseline_hours, b.hours_saved, b.deferrals
        );
    }
    let w = &summary.workspaces;
    if w.workspaces > 0 {
        println!(
            "WorkSpaces: {:.1} unhealthy WorkSpace-hours vs {:.1} without the remediator; {} reboots, {} rebuilds, {} escalations",
            w.unhealthy_hours,
            w.baseline_unhealthy_hours,
            w.reboots,
            w.rebuilds,
            w.escalations.values().sum::<u64>()
        );
    }
    for goal in goals(summary) {
        println!("{goal}");
    }
    println!("written to {} (report.md, summary.json, calls.jsonl, audit.jsonl, events.jsonl, charts/)", out.display());
}
