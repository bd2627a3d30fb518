//! The CloudWatch dashboard of `template.yaml` draws only metrics the functions write: each function's sample
//! scenario runs live, then again in dry-run, with every WorkSpace reboot failing, and with every WorkSpace
//! changing state just before its reboot (a deferral), under a recorder that
//! notes every metric name written while each function runs; every `EucAutopilot` metric the dashboard draws —
//! for one function, or for any (a `SEARCH`) — must be among them.

use autopilot_functions::Function;
use autopilot_lab::chaos::scenario::{Deliveries, Run};
use autopilot_sim::iam::template::Stack;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Every metric name written since the last [`Written::take`].
#[derive(Default)]
struct Written(Mutex<BTreeSet<String>>);

impl Written {
    fn note(&self, key: &Key) {
        self.0.lock().unwrap().insert(key.name().to_owned());
    }

    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Recorder for &'static Written {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.note(key);
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.note(key);
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.note(key);
        Histogram::noop()
    }
}

static WRITTEN: std::sync::LazyLock<Written> = std::sync::LazyLock::new(Written::default);

/// The dashboard's `EucAutopilot` metrics: `(Some(function), metric)` for a series of one function,
/// `(None, metric)` for a `SEARCH` over every function.
fn drawn() -> BTreeSet<(Option<String>, String)> {
    let settings = autopilot_sim::iam::local_settings("123456789012", "eu-central-1", "ledger", &[], None);
    let stack = Stack::new(autopilot_sim::iam::TEMPLATE, settings).unwrap();
    let dashboard = &stack.template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"];
    let body = stack.resolve(dashboard).unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_str(body.as_str().unwrap()).unwrap();
    let mut found = BTreeSet::new();
    for widget in body["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let items = metric.as_array().unwrap();
            if items[0] == "EucAutopilot" {
                assert_eq!(items[2], "function", "{metric}: the one dimension the functions write");
                found.insert((Some(items[3].as_str().unwrap().to_owned()), items[1].as_str().unwrap().to_owned()));
            }
            if let Some(expression) = items[0]["expression"].as_str() {
                let search = expression.strip_prefix("SEARCH('{EucAutopilot,function} MetricName=\"").unwrap();
                found.insert((None, search.split('"').next().unwrap().to_owned()));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_draws_only_metrics_the_functions_write() {
    metrics::set_global_recorder(&*WRITTEN).unwrap();
    let dry_run = autopilot_lab::samples::POLICY.replace("dry_run: false", "dry_run: true");
    let failing_reboots = "batch_failure_rate: { RebootWorkspaces: 1.0 }";
    let changed_state = "{ batch_failure_rate: { RebootWorkspaces: 1.0 }, batch_failure_code: { RebootWorkspaces: InvalidResourceState.Workspace } }";
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for function in Function::ALL {
        WRITTEN.take();
        for (faults, policy) in
            [(None, None), (None, Some(&dry_run)), (Some(failing_reboots), None), (Some(changed_state), None)]
        {
            let mut run = Run::start(function, faults).await.unwrap();
            if let Some(policy) = policy {
                run.local.ledger().put_policy(policy, run.local.simulator.now()).await.unwrap();
            }
            let _ = run.scenario(Deliveries::ONCE).await;
        }
        written.insert(function.name().to_owned(), WRITTEN.take());
    }
    let any: BTreeSet<&String> = written.values().flatten().collect();
    let mut missing = Vec::new();
    for (function, metric) in drawn() {
        let ok = match &function {
            Some(function) => written.get(function).is_some_and(|names| names.contains(&metric)),
            None => any.contains(&metric),
        };
        if !ok {
            missing.push(format!("{} {metric}", function.as_deref().unwrap_or("any function")));
        }
    }
    assert!(missing.is_empty(), "the dashboard draws metrics no function wrote: {missing:?}; written: {written:?}");
}

/// The stack's `DashboardUrl` output opens the console of the stack's own partition (China and GovCloud have
/// consoles of their own).
#[test]
fn the_dashboard_url_names_the_console_of_the_partition() {
    for (partition, region, host) in [
        ("aws", "eu-central-1", "console.aws.amazon.com"),
        ("aws-cn", "cn-north-1", "console.amazonaws.cn"),
        ("aws-us-gov", "us-gov-west-1", "console.amazonaws-us-gov.com"),
    ] {
        let mut settings = autopilot_sim::iam::local_settings("123456789012", region, "ledger", &[], None);
        settings.partition = partition.into();
        settings.physical_names.insert("Dashboard".into(), "euc-autopilot".into());
        let stack = Stack::new(autopilot_sim::iam::TEMPLATE, settings).unwrap();
        let url = stack.resolve(&stack.template()["Outputs"]["DashboardUrl"]["Value"]).unwrap().unwrap();
        assert_eq!(
            url.as_str().unwrap(),
            format!("https://{host}/cloudwatch/home?region={region}#dashboards:name=euc-autopilot"),
            "{partition}"
        );
    }
}
