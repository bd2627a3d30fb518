//! The `autopilot` command. The operator commands — `validate`, `config push|show`, `plan`, `audit`, `targets`
//! ([`operate`]) — work against the default AWS credentials and region, or any endpoints the `AWS_ENDPOINT_URL_*`
//! variables name. With the `local` feature (the default) it also runs the local estate ([`local`]): `serve`,
//! `demo`, `scenario`, `simulate`, `chaos`, `bench`, `estate generate`. `cargo install --path cli
//! --no-default-features` gives the operator commands alone, without the simulator and the lab in the build.

/// The local estate's simulations make hundreds of thousands of loopback requests, each allocating and freeing many
/// small buffers on both sides: with mimalloc the demo runs 8 to 10% faster (docs/demo.md, "How long it takes").
#[cfg(feature = "local")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes to standard output. A reader that went away (`autopilot plan --json | head`) ends the command quietly
/// and successfully, as Unix tools do, instead of a panic.
fn emit(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(text).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        warn(format_args!("autopilot: cannot write to standard output: {error}"));
        std::process::exit(1);
    }
}

/// Writes a line to standard error; a reader that went away (`autopilot validate bad.yaml 2>&1 | head -c 10`) is
/// not a reason to panic: the exit code still says how the command ended.
fn warn(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// `eprintln!` through [`warn`].
macro_rules! warnln {
    ($($arg:tt)*) => { $crate::warn(format_args!($($arg)*)) };
}

/// `print!` through [`emit`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(format_args!($($arg)*)) };
}

/// `println!` through [`emit`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

mod error;
#[cfg(feature = "local")]
mod local;
mod operate;

use clap::{Parser, Subcommand};
use error::CliError;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "autopilot",
    about = "EUC Autopilot: operator commands (validate, config, plan, audit, targets) and the local estate (serve, demo, scenario, simulate, chaos, bench, estate)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a policy document: every problem with its path and reason; exit code 1 when invalid.
    Validate {
        /// The policy document (YAML).
        policy: PathBuf,
    },
    /// Policy versions in the ledger.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// What every function would do now and why: each function's observe + decide, dry-run, with clients
    /// that refuse every write; plus end-of-support warnings. Exit code 1 when a function cannot plan.
    Plan {
        /// The deployed ledger table: its policy and memory are used (read only).
        #[arg(long, env = "AUTOPILOT_TABLE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        table: Option<String>,
        /// Plan with this policy document instead of the stored one.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Prefix of the policy tags (the stack's TagPrefix).
        #[arg(long, env = "AUTOPILOT_TAG_PREFIX", default_value = autopilot_shared::policy::tags::DEFAULT_TAG_PREFIX)]
        tag_prefix: String,
        /// Role-name prefix of the deployed functions (the stack name followed by `-`).
        #[arg(long, env = "AUTOPILOT_ROLE_NAME", default_value = autopilot_shared::runtime::DEFAULT_ROLE_NAME)]
        role_name: String,
        /// The account of the resources (found from their ARNs when not given); with the policy's `targets`, only
        /// the shards of this account.
        #[arg(long, value_parser = operate::args::account)]
        account: Option<String>,
        /// With the policy's `targets`, only the shards of this region.
        #[arg(long, value_parser = operate::args::region)]
        region: Option<String>,
        /// The stack's RemediationAlarmPrefix (alarms named otherwise never reach the remediator).
        #[arg(long, env = "AUTOPILOT_ALARM_PREFIX", default_value = autopilot_functions::remediator::routing::ALARM_PREFIX)]
        alarm_prefix: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read the audit trail from the ledger, oldest first.
    Audit {
        #[arg(long, env = "AUTOPILOT_TABLE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        table: String,
        /// An RFC 3339 instant or a duration back from now (90m, 24h, 7d).
        #[arg(long, default_value = "24h")]
        since: String,
        /// A resource key (appstream#<account>#<region>#fleet#<name>) or a bare resource id or name.
        #[arg(long)]
        resource: Option<String>,
        /// Only this function's records (pool-scaler, builder-scheduler, export-chaser, softwareset-roller,
        /// remediator).
        #[arg(long, value_parser = operate::args::function)]
        function: Option<String>,
        /// Only records of resources in this account (policies with `targets`).
        #[arg(long, value_parser = operate::args::account)]
        account: Option<String>,
        /// Only records of resources in this region.
        #[arg(long, value_parser = operate::args::region)]
        region: Option<String>,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// List every shard (function × account × region a policy's `targets` fan out to) with its last tick: when,
    /// how it ended, how long it took and the AWS calls it made; failures first.
    Targets {
        #[arg(long, env = "AUTOPILOT_TABLE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        table: String,
        /// Only the shards of this account.
        #[arg(long, value_parser = operate::args::account)]
        account: Option<String>,
        /// Only the shards of this region.
        #[arg(long, value_parser = operate::args::region)]
        region: Option<String>,
        /// Only this function's shards (pool-scaler, builder-scheduler, export-chaser, softwareset-roller,
        /// remediator).
        #[arg(long, value_parser = operate::args::function)]
        function: Option<String>,
        /// One JSON object per shard and line.
        #[arg(long)]
        json: bool,
    },

    #[cfg(feature = "local")]
    #[command(flatten)]
    Local(local::LocalCommand),
}

impl Command {
    /// Whether the command runs a simulated week in process (`simulate`, `demo`).
    fn runs_a_simulation(&self) -> bool {
        #[cfg(feature = "local")]
        if let Command::Local(command) = self {
            return command.runs_a_simulation();
        }
        false
    }
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a policy document, then store it as the next version (refused when invalid; not stored again
    /// when unchanged); prints the diff against the current version.
    Push {
        #[arg(long, env = "AUTOPILOT_TABLE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        table: String,
        policy: PathBuf,
    },
    /// Print the current version and its document.
    Show {
        #[arg(long, env = "AUTOPILOT_TABLE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        table: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A simulation runs the functions one after another against servers in the same process: on one thread it
    // spends no time handing requests between threads (the demo week: 88 s instead of 105 s, `time autopilot
    // demo`). Everything else keeps the multi-thread runtime.
    let runtime = if cli.command.runs_a_simulation() {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            warnln!("autopilot: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            warnln!("autopilot: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    use operate::{audit, config, plan, validate};
    match cli.command {
        Command::Validate { policy } => {
            let summary = validate::validate(&policy.display().to_string(), &operate::read(&policy)?)?;
            outln!("{summary}");
        }
        Command::Config { command: ConfigCommand::Push { table, policy } } => {
            let document = operate::read(&policy)?;
            let ledger = operate::ledger(&table).await;
            match config::push(&ledger, &policy.display().to_string(), &document, operate::now().await?).await? {
                config::Pushed::Unchanged { version } => {
                    outln!("unchanged: {} is version {version} already; nothing stored", policy.display());
                }
                config::Pushed::Stored { version, previous, diff } => {
                    out!("{diff}");
                    match previous {
                        Some(previous) => outln!("stored as version {version} (was {previous}) in {table}"),
                        None => outln!("stored as version {version} (the first) in {table}"),
                    }
                }
            }
        }
        Command::Config { command: ConfigCommand::Show { table } } => {
            match config::show(&operate::ledger(&table).await).await? {
                Some((version, document)) => out!("# version {version}\n{document}"),
                None => return Err(CliError::NoPolicy { table, hint: "" }),
            }
        }
        Command::Plan { table, policy, tag_prefix, role_name, account, region, alarm_prefix, json } => {
            let policy = match policy {
                Some(path) => Some((path.display().to_string(), operate::read(&path)?)),
                None => None,
            };
            let options =
                plan::Options { table, policy, tag_prefix, own_role_name: role_name, account, region, alarm_prefix };
            let found = plan::plan(&options).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                out!("{}", plan::render(&found, operate::show::width()));
            }
            let failures = found.failures();
            if !failures.is_empty() {
                return Err(CliError::PlanFailed(failures));
            }
        }
        Command::Targets { table, account, region, function, json } => {
            let filter = operate::targets::Filter { account, region, function };
            let operate::targets::Listed { shards, in_ledger } =
                operate::targets::read(&operate::ledger(&table).await, &filter).await?;
            if json {
                for shard in &shards {
                    outln!("{}", serde_json::to_string(shard)?);
                }
            } else if shards.is_empty() && in_ledger > 0 {
                outln!(
                    "no shard matches the filter ({in_ledger} shard(s) in {table}; `autopilot targets` lists them all)"
                );
            } else if shards.is_empty() {
                outln!(
                    "no shard has ticked yet in {table} (a policy without targets works in the hub's own account and region)"
                );
            } else {
                out!("{}", operate::targets::render(&shards));
            }
        }
        Command::Audit { table, since, resource, function, account, region, json } => {
            let now = operate::now().await?;
            let query = audit::Query {
                since: audit::parse_since(&since, now)?,
                until: now,
                resource,
                function,
                account,
                region,
            };
            let records = audit::read(&operate::ledger(&table).await, &query).await?;
            if json {
                for record in &records {
                    outln!("{}", serde_json::to_string(record)?);
                }
            } else if records.is_empty() {
                outln!(
                    "no audit records in {table} since {}",
                    query.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            } else {
                out!("{}", audit::render(&records, operate::show::width()));
            }
        }
        #[cfg(feature = "local")]
        Command::Local(command) => return local::run(command).await,
    }
    Ok(())
}
