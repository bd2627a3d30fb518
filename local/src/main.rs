//! The `autopilot` command-line tool. Subcommands:
//! - `autopilot serve --estate <file> [--port <n>] [--seed <n>]`: run the simulator and an embedded DynamoDB;
//! - `autopilot estate generate …`: write a large generated estate file.

use autopilot_local::LocalEstate;
use autopilot_local::estate::Estate;
use autopilot_local::generate::{Sizes, generate};
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
