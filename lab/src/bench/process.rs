//! The function binaries as Lambda runs them: each release binary started under the local Lambda Runtime API
//! ([`autopilot_sim::runtime_api`]) in a clean environment, for the two figures only a real process gives — the cold start
//! (spawn → first `GET …/invocation/next`, Lambda's init phase) and the peak memory and CPU time of one
//! invocation.
//!
//! Linux only for [`invoke_once`]: the figures come from `/proc/<pid>/status` and `/proc/<pid>/stat`.

use autopilot_sim::runtime_api::{FunctionProcess, InvocationError, ListenError, Program, RuntimeApi};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a process may take to reach its first poll before it counts as failed.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`ConnectionCounter::count`] waits for its own connection to be accepted.
const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// `utime` and `stime` in `/proc/<pid>/stat` are in clock ticks of `sysconf(_SC_CLK_TCK)`, which is 100 on every
/// Linux architecture Lambda offers (x86_64, arm64); read without `libc` (no `unsafe` here), so assumed.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The variable template.yaml gives every function that a local estate's environment
/// ([`autopilot_sim::LocalEstate::env_as`]) does not: live, not dry-run; the caller's environment wins.
const FUNCTION_DEFAULTS: [(&str, &str); 1] = [("AUTOPILOT_DRY_RUN", "false")];

/// The system's CA bundle, as Lambda's images hold it: one file (`/etc/pki/tls/certs/ca-bundle.crt` on Amazon
/// Linux 2023). The SDK's HTTPS client loads the system's roots at init (`rustls-native-certs`), and a machine whose
/// roots are a directory of one file per certificate (Debian's `/etc/ssl/certs`: 292 entries) makes that cost
/// about 3 ms of the init instead of well under one; naming the bundle, as Lambda's layout does, measures init as
/// Lambda would see it.
const CA_BUNDLES: [&str; 3] =
    ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"];

/// `SSL_CERT_FILE` naming the first of [`CA_BUNDLES`] this machine has.
fn ca_bundle() -> Option<(String, String)> {
    CA_BUNDLES
        .iter()
        .find(|path| std::path::Path::new(path).is_file())
        .map(|path| ("SSL_CERT_FILE".to_owned(), (*path).to_owned()))
}

/// Why a binary could not be started, measured or kept alive.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("a cold start needs at least one run")]
    NoRuns,
    #[error("no cold start was measured")]
    NothingMeasured,
    #[error(transparent)]
    RuntimeApi(#[from] ListenError),
    #[error("measuring an invocation reads /proc, which {os} does not have")]
    NoProc { os: &'static str },
    #[error("cannot tell where this executable is: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("{} has no directory", exe.display())]
    NoDirectory { exe: PathBuf },
    #[error("{} is missing: build the functions' release binaries first with `cargo build --release --bins`", path.display())]
    MissingBinary { path: PathBuf },
    #[error("cannot start {}: {source}", path.display())]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error(
        "{function} never asked for an event within {:?} (still running: {running}, init error: {init_error}):\n{tail}",
        INIT_TIMEOUT
    )]
    NeverPolled { function: String, running: bool, init_error: String, tail: String },
    #[error("{function} exited during the invocation ({outcome:?}):\n{tail}")]
    Exited { function: String, outcome: Result<serde_json::Value, InvocationError>, tail: String },
    #[error("cannot stop {function}{}: {source}", pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    Stop { function: String, pid: Option<u32>, source: std::io::Error },
    #[error("cannot read /proc/{pid}/{file}: {source}")]
    ReadProc { pid: u32, file: String, source: std::io::Error },
    #[error("no VmHWM in /proc/{pid}/status:\n{status}")]
    NoPeakRss { pid: u32, status: String },
    #[error("no utime and stime in /proc/{pid}/stat: {stat}")]
    NoCpuTime { pid: u32, stat: String },
    #[error("cannot listen on loopback: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot connect to the counting listener: {0}")]
    Connect(#[source] std::io::Error),
    #[error(transparent)]
    LocalAddress(std::io::Error),
    #[error("the counting listener stopped")]
    CounterStopped,
    #[error("the counting listener did not accept within {:?}", COUNT_TIMEOUT)]
    CounterTimeout,
}

/// Spawn → first `GET …/invocation/next` (Lambda's init phase) of one binary, `runs` times.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdStart {
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Measured runs (the unmeasured warm-up spawn before them is not counted).
    pub runs: usize,
    /// TCP connections the process opened to any AWS endpoint before its first poll, over every spawn (warm-up
    /// included); must be 0: the functions build their clients in init but call nothing until an event comes.
    pub init_connections: u64,
}

/// Starts `binary` `runs` times (after one unmeasured spawn that warms the page cache) with the environment
/// Lambda gives it and every AWS endpoint (each `AWS_ENDPOINT_URL_*`, the global `AWS_ENDPOINT_URL` and the
/// instance metadata service) pointed at a loopback listener that only counts connections; kills each process at
/// its first poll. `function` is the name the process is told (`AWS_LAMBDA_FUNCTION_NAME`).
pub async fn cold_start(binary: &Path, function: &str, runs: usize) -> Result<ColdStart, ProcessError> {
    if runs == 0 {
        return Err(ProcessError::NoRuns);
    }
    let program = Program::native(binary);
    let mut counter = ConnectionCounter::start().await?;
    let env = offline_env(&counter.endpoint());
    spawn_to_first_poll(&program, function, &env).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(spawn_to_first_poll(&program, function, &env).await?);
    }
    let init_connections = counter.count().await?;
    times.sort_by(f64::total_cmp);
    Ok(ColdStart {
        median_ms: median(&times).ok_or(ProcessError::NothingMeasured)?,
        min_ms: times.first().copied().unwrap_or_default(),
        max_ms: times.last().copied().unwrap_or_default(),
        runs,
        init_connections,
    })
}

/// One invocation of a binary as Lambda runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The function's response, or the error it posted (`errorType: errorMessage`; `Harness.Timeout` when no
    /// answer came in time).
    pub outcome: Result<serde_json::Value, InvocationError>,
    /// From handing the event over to the answer.
    pub wall_ms: f64,
    /// `VmHWM` of the process from `/proc/<pid>/status` after the invocation answered, in KiB: the peak resident
    /// memory of init and the invocation together (Lambda's `Max Memory Used` counts the whole sandbox, a little more).
    pub peak_rss_kib: u64,
    /// `utime + stime` of the process from `/proc/<pid>/stat` after the invocation answered (init included), at
    /// the 10 ms resolution of 100 clock ticks a second.
    pub cpu_ms: f64,
}

/// Starts `binary` with `env` (the caller passes [`autopilot_sim::LocalEstate::env`]: the simulator and the embedded
/// DynamoDB; template.yaml's `AUTOPILOT_EVENT_BUS`, `AUTOPILOT_DRY_RUN` and `AUTOPILOT_ROLE_NAME` are added
/// unless `env` sets them), waits for its first poll, invokes it once with `event` and a deadline `timeout` from
/// then, reads its peak memory and CPU time while it is still alive, and kills it. A failed invocation is an
/// `Ok` with an `Err` outcome; `Err` is for a process that could not be started, measured or kept alive.
pub async fn invoke_once(
    binary: &Path,
    function: &str,
    env: Vec<(String, String)>,
    event: serde_json::Value,
    timeout: Duration,
) -> Result<Invocation, ProcessError> {
    if !cfg!(target_os = "linux") {
        return Err(ProcessError::NoProc { os: std::env::consts::OS });
    }
    let mut env = env;
    for (name, value) in FUNCTION_DEFAULTS.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).chain(ca_bundle()) {
        if !env.iter().any(|(set, _)| *set == name) {
            env.push((name, value));
        }
    }
    let api = RuntimeApi::start().await?;
    let mut process = spawn(&api, &Program::native(binary), function, env)?;
    if api.first_poll(INIT_TIMEOUT).await.is_none() {
        return Err(never_polled(&api, &mut process, function));
    }
    let started = Instant::now();
    let outcome = api.invoke(event, timeout).await;
    let wall_ms = millis(started.elapsed());
    if !process.is_running() {
        let tail = process.output_tail(20);
        return Err(ProcessError::Exited { function: function.to_owned(), outcome, tail });
    }
    let pid = process.child.id();
    let status = read_proc(pid, "status")?;
    let stat = read_proc(pid, "stat")?;
    process.kill().map_err(|source| ProcessError::Stop { function: function.to_owned(), pid: Some(pid), source })?;
    Ok(Invocation {
        outcome,
        wall_ms,
        peak_rss_kib: peak_rss_kib(&status).ok_or_else(|| ProcessError::NoPeakRss { pid, status: status.clone() })?,
        cpu_ms: cpu_ms(&stat).ok_or_else(|| ProcessError::NoCpuTime { pid, stat: stat.clone() })?,
    })
}

/// The bare `lambda_runtime` function (`shared/examples/bare_runtime.rs`), as [`binary`] finds it.
pub const BARE_RUNTIME: &str = "examples/bare_runtime";
/// The bare runtime with the SDK configuration, every client and logging (`shared/examples/lambda_probe.rs`).
pub const LAMBDA_PROBE: &str = "examples/lambda_probe";

/// The release binary of `function` (its package name, e.g. `pool-scaler`) next to the running executable:
/// `target/release/<function>` when running from `target/release`, `target/debug` or `target/debug/deps` (a
/// test), else the executable's own directory.
pub fn binary(function: &str) -> Result<PathBuf, ProcessError> {
    let exe = std::env::current_exe().map_err(ProcessError::CurrentExe)?;
    let mut dir = exe.parent().ok_or_else(|| ProcessError::NoDirectory { exe: exe.clone() })?;
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    let release = match dir.parent().map(|target| target.join("release")) {
        Some(release) if !dir.ends_with("release") && release.is_dir() => release,
        _ => dir.to_path_buf(),
    };
    let path = release.join(function);
    if path.is_file() { Ok(path) } else { Err(ProcessError::MissingBinary { path }) }
}

/// Starts `program` under a fresh Runtime API and kills it at its first poll: the time from spawn to that poll.
async fn spawn_to_first_poll(program: &Program, function: &str, env: &[(String, String)]) -> Result<f64, ProcessError> {
    let api = RuntimeApi::start().await?;
    let mut process = spawn(&api, program, function, env.to_vec())?;
    let Some(ready) = api.first_poll(INIT_TIMEOUT).await else {
        return Err(never_polled(&api, &mut process, function));
    };
    let took = millis(ready.saturating_duration_since(process.spawned_at));
    process.kill().map_err(|source| ProcessError::Stop { function: function.to_owned(), pid: None, source })?;
    Ok(took)
}

fn spawn(
    api: &RuntimeApi,
    program: &Program,
    function: &str,
    env: Vec<(String, String)>,
) -> Result<FunctionProcess, ProcessError> {
    api.spawn_function(program, function, env)
        .map_err(|source| ProcessError::Spawn { path: program.path.clone(), source })
}

/// Why a process never asked for an event, with the end of its output.
fn never_polled(api: &RuntimeApi, process: &mut FunctionProcess, function: &str) -> ProcessError {
    let running = process.is_running();
    let _ = process.kill();
    ProcessError::NeverPolled {
        function: function.to_owned(),
        running,
        init_error: api.init_error().map_or_else(|| "none".into(), |e| e.to_string()),
        tail: process.output_tail(20),
    }
}

/// The environment of a cold start: what the functions need to initialise (region, dummy credentials, ledger
/// table, template.yaml's variables) with every way to reach AWS pointed at `endpoint`.
fn offline_env(endpoint: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = autopilot_sim::SIMULATED_SERVICES
        .iter()
        .chain(&["DYNAMODB"])
        .map(|service| (format!("AWS_ENDPOINT_URL_{service}"), endpoint.to_owned()))
        .collect();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint),
        ("AWS_REGION", autopilot_sim::LOCAL_REGION),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_SESSION_TOKEN", "local"),
        ("AUTOPILOT_TABLE", autopilot_sim::dynamo::DEFAULT_TABLE),
    ]
    .into_iter()
    .chain(FUNCTION_DEFAULTS)
    {
        env.push((name.into(), value.into()));
    }
    env.extend(ca_bundle());
    env
}

/// A loopback listener that accepts connections, counts them and closes them at once.
struct ConnectionCounter {
    address: SocketAddr,
    /// The peer of every accepted connection, in the order accepted.
    accepted: mpsc::UnboundedReceiver<SocketAddr>,
    counted: u64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConnectionCounter {
    async fn start() -> Result<Self, ProcessError> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(ProcessError::Listen)?;
        let address = listener.local_addr().map_err(ProcessError::LocalAddress)?;
        let (sender, accepted) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((connection, peer)) = listener.accept().await {
                drop(connection);
                if sender.send(peer).is_err() {
                    break;
                }
            }
        });
        Ok(Self { address, accepted, counted: 0, task })
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far, not counting its own: the kernel hands connections to `accept` in the order
    /// they were established, so once a connection made now has been accepted, every earlier one has been too.
    async fn count(&mut self) -> Result<u64, ProcessError> {
        let own = tokio::net::TcpStream::connect(self.address).await.map_err(ProcessError::Connect)?;
        let own = own.local_addr().map_err(ProcessError::LocalAddress)?;
        loop {
            match tokio::time::timeout(COUNT_TIMEOUT, self.accepted.recv()).await {
                Ok(Some(peer)) if peer == own => return Ok(self.counted),
                Ok(Some(_)) => self.counted += 1,
                Ok(None) => return Err(ProcessError::CounterStopped),
                Err(_) => return Err(ProcessError::CounterTimeout),
            }
        }
    }
}

fn read_proc(pid: u32, file: &str) -> Result<String, ProcessError> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|source| ProcessError::ReadProc {
        pid,
        file: file.to_owned(),
        source,
    })
}

/// `VmHWM` (peak resident set) in KiB from the text of `/proc/<pid>/status` (`VmHWM:    12345 kB`).
fn peak_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    let mut words = line.split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

/// `utime + stime` in milliseconds from the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after its closing parenthesis: `utime` is field 14,
/// `stime` field 15.
fn cpu_ms(stat: &str) -> Option<f64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(ticks as f64 * 1000.0 / CLOCK_TICKS_PER_SECOND as f64)
}

/// The median of sorted figures (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        Some((sorted.get(middle.checked_sub(1)?)? + sorted.get(middle)?) / 2.0)
    } else {
        sorted.get(middle).copied()
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_resident_set_from_proc_status() {
        let status = "Name:\tpool-scaler\nVmPeak:\t  120000 kB\nVmHWM:\t   23456 kB\nVmRSS:\t   20000 kB\n";
        assert_eq!(peak_rss_kib(status), Some(23_456));
        assert_eq!(peak_rss_kib("Name:\tzombie\n"), None);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), Some(3.0));
        assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn reads_cpu_time_after_a_command_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
        let stat = "4242 (tokio worker) 1) S 1 4242 4242 0 -1 4194304 900 0 0 0 37 5 0 0 20 0 3 0";
        assert_eq!(cpu_ms(stat), Some(420.0));
        assert_eq!(cpu_ms("4242 (cut"), None);
    }
}
