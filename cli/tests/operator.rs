//! The operator commands (`autopilot validate`, `config push|show`, `plan`, `audit`), run as the real binary
//! against `autopilot serve` (a separate process), configured only by the variables `serve` prints.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use autopilot_shared::ledger::Ledger;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
use chrono::{Duration, Utc};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_autopilot");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `autopilot serve` on free ports, and the environment it printed.
struct Served {
    child: Child,
    env: Vec<(String, String)>,
}

impl Served {
    fn start() -> Self {
        Self::with_estate("sim/estates/demo.yaml")
    }

    fn with_estate(estate: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--estate", estate, "--port", "0"])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut env = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line == autopilot_sim::READY {
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, value) = line.strip_prefix("export ").unwrap().split_once('=').unwrap();
            env.push((name.to_owned(), value.to_owned()));
        }
        assert!(env.iter().any(|(n, _)| n == "AWS_ENDPOINT_URL_DYNAMODB"), "{env:?}");
        Self { child, env }
    }

    fn var(&self, name: &str) -> &str {
        &self.env.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Runs `autopilot <args>` with the served environment (and nothing from the test's own AWS settings).
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args).current_dir(root()).envs(self.env.iter().map(|(n, v)| (n, v)));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("AWS_PROFILE")) {
            command.env_remove(name);
        }
        command.output().unwrap()
    }

    fn ledger(&self) -> Ledger {
        Ledger::new(
            autopilot_sim::dynamo::client(self.var("AWS_ENDPOINT_URL_DYNAMODB"), autopilot_sim::iam::ADMIN),
            self.var("AUTOPILOT_TABLE"),
        )
    }

    /// The body of `GET /_sim/<path>` (the simulator's admin API).
    fn admin(&self, path: &str) -> String {
        let address = self.var("AWS_ENDPOINT_URL_WORKSPACES").trim_start_matches("http://").to_owned();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(stream, "GET /_sim/{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    /// The simulator's call log (admin API), one JSON record per call.
    fn calls(&self) -> Vec<serde_json::Value> {
        self.admin("calls").lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The estate's time: the operator commands run on it (`AUTOPILOT_CLOCK_URL`).
    fn now(&self) -> chrono::DateTime<Utc> {
        let clock: serde_json::Value = serde_json::from_str(&self.admin("clock")).unwrap();
        chrono::DateTime::parse_from_rfc3339(clock["now"].as_str().unwrap()).unwrap().with_timezone(&Utc)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autopilot-operator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const POLICY: &str = "sim/estates/demo-policy.yaml";

#[test]
fn validate_reports_every_problem_with_its_path_and_fails() {
    let served = Served::start();
    let ok = served.run(&["validate", "examples/autopilot.yaml"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("examples/autopilot.yaml: valid (version 1)"), "{}", text(&ok.stdout));

    let broken = temp_file(
        "broken.yaml",
        "version: 1\nschedules:\n  office:\n    timezone: Europe/Nowhere\n    periods: [{ days: [mon], start: \"08:00\", end: \"25:00\" }]\n",
    );
    let bad = served.run(&["validate", broken.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    let errors = text(&bad.stderr);
    assert!(errors.contains("schedules.office.timezone"), "{errors}");
    assert!(errors.contains("schedules.office.periods[0].end"), "{errors}");
    assert!(errors.contains("invalid (2 problem(s))"), "{errors}");

    let missing = served.run(&["validate", "no/such/file.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read no/such/file.yaml"));
}

#[test]
fn config_push_validates_stores_the_next_version_and_shows_the_diff() {
    let served = Served::start();
    let first = served.run(&["config", "push", POLICY]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    assert!(out.contains("--- (no version stored)") && out.contains("+version: 1"), "{out}");
    assert!(out.ends_with("stored as version 1 (the first) in euc-autopilot-ledger\n"), "{out}");

    let again = served.run(&["config", "push", POLICY]);
    assert!(again.status.success());
    assert!(text(&again.stdout).starts_with("unchanged:"), "{}", text(&again.stdout));

    let document = std::fs::read_to_string(root().join(POLICY)).unwrap();
    assert!(document.contains("dry_run: false"), "the demo policy runs live");
    let changed = temp_file("changed.yaml", &document.replace("dry_run: false", "dry_run: true"));
    let push = served.run(&["config", "push", "--table", "euc-autopilot-ledger", changed.to_str().unwrap()]);
    assert!(push.status.success(), "{}", text(&push.stderr));
    let out = text(&push.stdout);
    assert!(
        out.contains("--- version 1") && out.contains("\n-defaults: { timezone: Europe/Berlin, dry_run: false }"),
        "{out}"
    );
    assert!(out.contains("\n+defaults: { timezone: Europe/Berlin, dry_run: true }"), "{out}");
    assert!(out.ends_with("stored as version 2 (was 1) in euc-autopilot-ledger\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).count(), 1, "{out}");

    let invalid = temp_file("invalid.yaml", &document.replace("version: 1", "version: 7"));
    let refused = served.run(&["config", "push", invalid.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("nothing was stored"), "{}", text(&refused.stderr));

    let show = served.run(&["config", "show"]);
    assert!(show.status.success());
    assert!(text(&show.stdout).starts_with("# version 2\n"), "{}", text(&show.stdout));
    assert!(text(&show.stdout).contains("dry_run: true"));
}

#[test]
fn plan_tells_what_each_function_would_do_and_changes_nothing() {
    let served = Served::start();
    assert!(served.run(&["config", "push", POLICY]).status.success());
    let ledger_before = scan_count(&served);
    let calls_before = served.calls().len();

    let plan = served.run(&["plan"]);
    assert!(plan.status.success(), "{}\n{}", text(&plan.stdout), text(&plan.stderr));
    let out = text(&plan.stdout);
    for function in ["pool-scaler", "builder-scheduler", "export-chaser", "softwareset-roller", "remediator"] {
        assert!(out.contains(&format!("\n{function} (")), "{function} missing:\n{out}");
    }
    assert!(out.contains("policy: version 1 stored in euc-autopilot-ledger"), "{out}");
    assert!(out.contains("would    UpdateFleet") && out.contains("fleet engineering-fleet"), "{out}");
    assert!(out.contains("deferred StopImageBuilder") && out.contains("SNAPSHOTTING"), "{out}");
    // a held resource is a line with its reason: the pool Application Auto Scaling owns
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("skipped  Hold") && l.contains("Application Auto Scaling")),
        "{out}"
    );
    assert!(out.contains("WorkSpaces Pools on 2027-12-31") && out.contains("Thin Client on 2027-03-31"), "{out}");

    // nothing changed: only reads reached the estate, the ledger holds what it held, no event was sent
    let calls = served.calls();
    assert!(calls.len() > calls_before);
    let writes: Vec<&str> = calls[calls_before..]
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .filter(|op| !autopilot_shared::clients::is_read_only(op))
        .collect();
    assert!(writes.is_empty(), "plan made {writes:?}");
    assert_eq!(scan_count(&served), ledger_before);

    // JSON, with a policy file instead of the stored one
    let file = temp_file("remediation-only.yaml", "version: 1\nremediation:\n  reboot_after: 5m\n");
    let json = served.run(&["plan", "--json", "--policy", file.to_str().unwrap()]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(plan["policy"].as_str().unwrap().ends_with("remediation-only.yaml (not stored)"));
    let pool_scaler = &plan["functions"][0];
    assert_eq!(pool_scaler["function"], "pool-scaler");
    assert!(pool_scaler["decisions"].as_array().unwrap().is_empty(), "no capacity rules: {pool_scaler}");
    assert_eq!(plan["warnings"].as_array().unwrap().len(), 2);
    assert_eq!(scan_count(&served), ledger_before, "the file was not stored");

    // a would-act is `dry-run` in the JSON as in the text (nothing applies in a plan)
    let json = served.run(&["plan", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let outcomes: Vec<&str> = plan["functions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["decisions"].as_array().unwrap())
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"dry-run") && !outcomes.contains(&"applied"), "{outcomes:?}");

    // --account and --region that cannot apply without targets are named, not silently ignored
    let odd = served.run(&["plan", "--account", "111122223333", "--region", "eu-west-1"]);
    let out = text(&odd.stdout);
    assert!(out.contains("(account 123456789012,"), "the header names the resources' account: {out}");
    assert!(out.contains("note: --account 111122223333") && out.contains("note: --region eu-west-1"), "{out}");

    // a table that does not exist, or that the operator may not read, is said in words (no SDK debug dump)
    let missing = served.run(&["plan", "--table", "nosuch-table"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = text(&missing.stderr);
    assert!(err.contains("cannot read the ledger nosuch-table") && !err.contains("Error {"), "{err}");

    let env = served.env.iter().filter(|(n, _)| n != "AUTOPILOT_TABLE").map(|(n, v)| (n, v));
    let nothing = Command::new(BIN).arg("plan").envs(env).env_remove("AUTOPILOT_TABLE").output().unwrap();
    assert_eq!(nothing.status.code(), Some(1));
    assert!(text(&nothing.stderr).contains("--table"), "{}", text(&nothing.stderr));
}

/// A predictive rule's decision says what the learned weekly profile forecast and the lead time it allowed.
#[test]
fn plan_explains_a_predictive_decision() {
    use autopilot_functions::pool_scaler::{decide::Memory, forecast::Profile};
    use autopilot_shared::resource::{ResourceKind, ResourceRef};
    let served = Served::start();
    assert!(served.run(&["config", "push", POLICY]).status.success());
    let now = served.now();
    // GIVEN the sales pool's memory: a week ago, nobody worked at this hour and 15 sessions were in use from a
    // quarter of an hour later (its rule learns three weeks; one is enough to forecast)
    let policy = std::fs::read_to_string(root().join(POLICY)).unwrap();
    let policy = autopilot_shared::policy::Policy::from_yaml(&policy).unwrap();
    let rule = policy.capacity.iter().find(|r| r.predictive.is_some()).unwrap();
    let timezone = rule.schedule.as_ref().unwrap().schedule.timezone();
    let mut profile = Profile::default();
    let week_ago = now - chrono::Duration::days(7);
    let mut at = week_ago - chrono::Duration::minutes(30);
    while at <= week_ago + chrono::Duration::hours(1) {
        let in_use = if at < week_ago + chrono::Duration::minutes(15) { 0 } else { 15 };
        profile.observe(at, in_use, timezone, false, 3);
        at += chrono::Duration::minutes(5);
    }
    let memory = Memory { profile, ..Default::default() };
    let pool =
        ResourceRef::new("123456789012", "eu-central-1", ResourceKind::WorkspacesPool, "wspool-sales0001").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { served.ledger().put_state(&pool, &memory, None, None, now).await.unwrap() });

    // WHEN the operator asks for the plan
    let plan = served.run(&["plan"]);
    assert!(plan.status.success(), "{}\n{}", text(&plan.stdout), text(&plan.stderr));
    let out = text(&plan.stdout);
    // THEN the pool's line gives the forecast, when it peaks, how much of it arrives within the lead time and the
    // next tick (by 01:20 the level, 0 at 01:07:30 and 15 at 01:22:30, is at 12.5), and the lead time allowed
    let line = out
        .lines()
        .find(|l| l.contains("sales") && l.contains("forecast 15 sessions at 01:15 (+13 on now)"))
        .unwrap_or_else(|| panic!("no predictive decision for the sales pool:\n{out}\n{}", text(&plan.stderr)));
    assert!(line.contains("lead time 15 min (not learned yet)"), "{line}");
}

/// With `targets`, the plan looks into every shard through the spoke's read-only role (the operator's policy may
/// assume it), and `--account` / `--region` pick shards; nothing is changed anywhere.
#[test]
fn plan_looks_into_every_target_through_the_spokes_read_only_role() {
    let served = Served::with_estate("sim/estates/multi-account.yaml");
    assert!(served.run(&["config", "push", "sim/estates/multi-account-policy.yaml"]).status.success());
    let calls_before = served.calls().len();
    let plan = served.run(&["plan"]);
    assert!(plan.status.success(), "{}\n{}", text(&plan.stdout), text(&plan.stderr));
    let out = text(&plan.stdout);
    for shard in ["111111111111 eu-central-1", "222222222222 eu-central-1", "222222222222 eu-west-1"] {
        assert!(out.contains(&format!("shard    {shard}")), "{shard} missing:\n{out}");
    }
    assert!(!out.contains("could not plan"), "{out}");
    assert!(out.contains("would    UpdateFleet"), "the spokes' fleets are planned:\n{out}");
    let calls = served.calls();
    let assumed: Vec<&str> = calls[calls_before..]
        .iter()
        .filter(|c| c["operation"] == "AssumeRole")
        .filter_map(|c| c["parameters"]["RoleArn"].as_str())
        .collect();
    assert!(!assumed.is_empty() && assumed.iter().all(|r| r.ends_with(":role/EUCAutopilotSpokeReader")), "{assumed:?}");
    let writes: Vec<&str> = calls[calls_before..]
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .filter(|op| !autopilot_shared::clients::is_read_only(op) && *op != "AssumeRole")
        .collect();
    assert!(writes.is_empty(), "plan made {writes:?}");

    let one = served.run(&["plan", "--json", "--account", "222222222222", "--region", "eu-west-1"]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    for function in plan["functions"].as_array().unwrap() {
        let shards: Vec<String> = function["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s["account"].as_str().unwrap(), s["region"].as_str().unwrap()))
            .collect();
        assert_eq!(shards, ["222222222222 eu-west-1"], "{function}");
    }
}

fn scan_count(served: &Served) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = autopilot_sim::dynamo::client(served.var("AWS_ENDPOINT_URL_DYNAMODB"), autopilot_sim::iam::ADMIN);
        let output = client.scan().table_name(served.var("AUTOPILOT_TABLE")).send().await.unwrap();
        output.items().len()
    })
}

#[test]
fn audit_reads_the_trail_by_time_resource_and_function() {
    let served = Served::start();
    // the audit command reads the estate's clock, as the functions do
    let now = served.now();
    let record = |hours: i64, function: &str, resource: &str, action: &str| AuditRecord {
        at: now - Duration::hours(hours),
        function: function.into(),
        resource: resource.into(),
        action: action.into(),
        outcome: Outcome::Applied,
        reason: format!("{action} because of the test"),
        correlation_id: format!("event-{hours}"),
        details: serde_json::Value::Null,
    };
    let sales = "appstream#123456789012#eu-central-1#fleet#sales";
    let records = [
        record(30, "pool-scaler", sales, "UpdateFleet"),
        record(2, "pool-scaler", sales, "StopFleet"),
        record(1, "remediator", "workspaces#123456789012#eu-central-1#workspace#ws-1", "RebootWorkspaces"),
        AuditRecord {
            details: serde_json::json!({ "name": "finance" }),
            ..record(40, "pool-scaler", "workspaces#123456789012#eu-central-1#workspaces-pool#wspool-fin00001", "Hold")
        },
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ledger = served.ledger();
        for r in &records {
            ledger.append_audit(r).await.unwrap();
        }
    });
    let lines = |args: &[&str]| {
        let output = served.run(args);
        assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
        text(&output.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let day = lines(&["audit"]);
    assert_eq!(day.len(), 2, "{day:?}");
    // resources by kind and id (and name), not by ledger key; the account and region are the usual ones
    assert!(day[0].contains("StopFleet") && day[0].contains("applied") && day[0].contains("fleet sales"), "{day:?}");
    assert!(day.iter().all(|l| !l.contains('#') && !l.contains("123456789012")), "{day:?}");
    assert!(day[1].contains("RebootWorkspaces") && day[1].contains("workspace ws-1"));
    assert_eq!(lines(&["audit", "--since", "2d"]).len(), 4);
    // a pool found by its name
    let finance = lines(&["audit", "--since", "2d", "--resource", "finance"]);
    assert_eq!(finance.len(), 1, "{finance:?}");
    assert!(finance[0].contains("pool wspool-fin00001 (finance)"), "{finance:?}");
    let since = (now - Duration::minutes(90)).to_rfc3339();
    assert_eq!(lines(&["audit", "--since", &since]).len(), 1);
    assert_eq!(lines(&["audit", "--since", "2d", "--resource", "sales"]).len(), 2);
    assert_eq!(lines(&["audit", "--since", "2d", "--resource", sales]).len(), 2);
    assert_eq!(lines(&["audit", "--since", "2d", "--function", "remediator"]).len(), 1);
    let json = lines(&["audit", "--since", "2d", "--json"]);
    let parsed: Vec<AuditRecord> = json.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        parsed.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["Hold", "UpdateFleet", "StopFleet", "RebootWorkspaces"]
    );
    assert!(lines(&["audit", "--resource", "nothing-like-this"])[0].starts_with("no audit records"));
    let bad = served.run(&["audit", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("--since \"last tuesday\""), "{}", text(&bad.stderr));

    // an item this version cannot read (an outcome a newer version added) is told, and hides nothing else
    let day_key = format!("AUDIT#{}", now.date_naive());
    runtime.block_on(async {
        let client = autopilot_sim::dynamo::client(served.var("AWS_ENDPOINT_URL_DYNAMODB"), autopilot_sim::iam::ADMIN);
        let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
        client
            .put_item()
            .table_name(served.var("AUTOPILOT_TABLE"))
            .item("pk", s(&day_key))
            .item("sk", s("9999#from-a-newer-version"))
            .item("at", s(&now.to_rfc3339()))
            .item("outcome", s("exploded"))
            .send()
            .await
            .unwrap();
    });
    let output = served.run(&["audit"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), 2, "{}", text(&output.stdout));
    let told = text(&output.stderr);
    assert!(told.contains(&format!("audit item {day_key}/9999#from-a-newer-version is not a record")), "{told}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `autopilot plan --json | head -1`: the reader closes the pipe before the plan is written
    let served = Served::start();
    assert!(served.run(&["config", "push", POLICY]).status.success());
    let mut child = Command::new(BIN)
        .args(["plan", "--json"])
        .current_dir(root())
        .envs(served.env.iter().map(|(n, v)| (n, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?} {}", output.status, text(&output.stderr));
    assert!(!text(&output.stderr).contains("panicked"), "{}", text(&output.stderr));

    // `autopilot validate bad.yaml 2>&1 >/dev/null | head -c 10`: the error's reader goes away; the exit code
    // still says the document is invalid (1), not a panic (101)
    let bad = temp_file(
        "bad-times.yaml",
        "version: 1\nschedules:\n  office:\n    timezone: Europe/Berlin\n    periods: [{ days: [mon], start: \"25:00\", end: \"18:00\" }]\n",
    );
    let mut child = Command::new(BIN)
        .args(["validate", bad.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

#[test]
fn plan_lists_the_accounts_of_an_organizational_unit_the_targets_name() {
    // GIVEN the multi-account estate in an organization, and its policy targeting the OU instead of the accounts
    let estate = std::fs::read_to_string(root().join("sim/estates/multi-account.yaml")).unwrap().replacen(
        "\nspokes:",
        "\norganization:\n  id: o-abcdefghij\n  root: r-ab12\n  units:\n    - id: ou-ab12-aaaaaaaa\n      accounts: [\"111111111111\", \"222222222222\"]\nspokes:",
        1,
    );
    let policy = std::fs::read_to_string(root().join("sim/estates/multi-account-policy.yaml")).unwrap();
    let (head, _) = policy.split_once("targets:").unwrap();
    let policy = format!(
        "{head}targets:\n  organizational_units:\n    - id: ou-ab12-aaaaaaaa\n      regions: [eu-central-1, eu-west-1]\n"
    );
    let served = Served::with_estate(temp_file("org-estate.yaml", &estate).to_str().unwrap());
    let pushed = served.run(&["config", "push", temp_file("org-policy.yaml", &policy).to_str().unwrap()]);
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    // WHEN the operator plans (as the stack's OperatorPolicy: the local estate enforces it)
    let plan = served.run(&["plan"]);
    // THEN the OU's accounts are listed through Organizations and planned in both regions
    assert!(plan.status.success(), "{}\n{}", text(&plan.stdout), text(&plan.stderr));
    let out = text(&plan.stdout);
    for shard in ["111111111111 eu-central-1", "111111111111 eu-west-1", "222222222222 eu-west-1"] {
        assert!(out.contains(&format!("shard    {shard}")), "{shard} missing:\n{out}");
    }
    assert!(served.calls().iter().any(|c| c["operation"] == "ListAccountsForParent"), "listed through Organizations");
    // AND every resource outside the hub names its place
    assert!(out.contains("fleet broken-fleet in 222222222222/eu-west-1"), "{out}");
}

#[test]
fn targets_tells_a_filter_that_matches_nothing_from_a_ledger_without_shards() {
    let served = Served::start();
    // GIVEN a ledger where no shard has ticked
    let none = served.run(&["targets"]);
    assert!(text(&none.stdout).contains("no shard has ticked yet"), "{}", text(&none.stdout));
    // AND then one shard's last tick
    let status = autopilot_shared::ledger::shards::ShardStatus {
        function: "pool-scaler".into(),
        account: "222222222222".into(),
        region: "eu-west-1".into(),
        at: served.now(),
        outcome: autopilot_shared::ledger::shards::ShardOutcome::Ok,
        error: None,
        duration_ms: 120,
        api_calls: 7,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { served.ledger().put_shard_status(&status).await.unwrap() });
    // WHEN the filter names another account
    let filtered = served.run(&["targets", "--account", "111111111111"]);
    // THEN it says that nothing matches, not that nothing has ticked
    let out = text(&filtered.stdout);
    assert!(out.contains("no shard matches the filter (1 shard(s)"), "{out}");
    assert!(text(&served.run(&["targets"]).stdout).contains("222222222222"));
}
