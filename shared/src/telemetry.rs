//! Telemetry: structured JSON logs with the Powertools for AWS Lambda key names (`level`, `message`,
//! `timestamp`, `service`, `function_request_id`, `correlation_id`), EMF metrics through the `metrics`
//! facade (`metrics_cloudwatch_embedded`), and the invocation context that ties them together. The
//! correlation id is the EventBridge event id.

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

/// The metrics namespace every function reports to.
pub const METRICS_NAMESPACE: &str = "EucAutopilot";

/// What identifies one invocation in logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationContext {
    /// Lambda's request id.
    pub request_id: String,
    /// The EventBridge event id of the input.
    pub correlation_id: String,
    /// The shard a `Shard Tick` works in (`<account>/<region>`), `hub` for everything else: a property of the
    /// metrics document, never a dimension (one metric per shard would be thousands of billed custom metrics).
    pub shard: String,
}

impl InvocationContext {
    /// The shard an input names: `<account>/<region>` of a `Shard Tick`, `hub` otherwise.
    pub fn shard_of(payload: &serde_json::Value) -> String {
        let detail = &payload["detail"];
        match (payload["detail-type"].as_str(), detail["account"].as_str(), detail["region"].as_str()) {
            (Some(crate::events::SHARD_TICK_DETAIL_TYPE), Some(account), Some(region)) => format!("{account}/{region}"),
            _ => "hub".to_owned(),
        }
    }
}

tokio::task_local! {
    static INVOCATION: InvocationContext;
}

/// Runs `future` with `context` attached to every log line it writes.
pub async fn in_invocation<F: std::future::Future>(context: InvocationContext, future: F) -> F::Output {
    INVOCATION.scope(context, future).await
}

/// Runs `f` with `context` attached to every log line it writes (synchronous code and tests).
pub fn in_invocation_sync<R>(context: InvocationContext, f: impl FnOnce() -> R) -> R {
    INVOCATION.sync_scope(context, f)
}

/// Formats events as one JSON object per line with Powertools key names.
#[derive(Debug, Clone)]
pub struct PowertoolsJson {
    service: String,
}

impl PowertoolsJson {
    pub fn new(service: impl Into<String>) -> Self {
        Self { service: service.into() }
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    extra: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.extra.insert(field.name().to_owned(), Value::String(text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.extra.insert(field.name().to_owned(), Value::String(value.to_owned()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.extra.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.extra.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.extra.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.extra.insert(field.name().to_owned(), Value::from(value));
    }
}

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("message".into(), Value::String(fields.message.unwrap_or_default()));
        line.insert("timestamp".into(), Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)));
        line.insert("service".into(), Value::String(self.service.clone()));
        let context = INVOCATION.try_with(Clone::clone).ok();
        if let Some(context) = context {
            line.insert("function_request_id".into(), Value::String(context.request_id));
            line.insert("correlation_id".into(), Value::String(context.correlation_id));
        }
        line.insert("target".into(), Value::String(event.metadata().target().to_owned()));
        for (key, value) in fields.extra {
            line.entry(key).or_insert(value);
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Builds the subscriber: JSON lines to `writer`, level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`,
/// else `info` (see [`subscriber_at`]).
pub fn subscriber<W>(service: &str, writer: W) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + use<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    subscriber_at(service, level.as_deref(), writer)
}

/// The most verbose level any line is written at. At TRACE the AWS SDK writes whole request and response
/// bodies and outputs (`aws_smithy_runtime::client::orchestrator`): WorkSpaces user names and the tags of
/// pools, fleets, builders, images and WorkSpaces (the SDK redacts only members its models mark sensitive, such
/// as Thin Client names and activation codes), so TRACE, which Lambda's log level setting offers, is DEBUG here.
/// `tests/tests/sensitive_data.rs` checks that no planted sensitive value reaches a line at this level.
pub const MAX_LOG_LEVEL: tracing_subscriber::filter::LevelFilter = tracing_subscriber::filter::LevelFilter::DEBUG;

/// The subscriber for `level`: a level (`AWS_LAMBDA_LOG_LEVEL` gives `TRACE` … `FATAL`) or `RUST_LOG`
/// directives; `info` when absent or unreadable; never more verbose than [`MAX_LOG_LEVEL`].
pub fn subscriber_at<W>(
    service: &str,
    level: Option<&str>,
    writer: W,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + use<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = level
        .and_then(|level| tracing_subscriber::EnvFilter::try_new(level.to_lowercase()).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .event_format(PowertoolsJson::new(service))
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
        .with(MAX_LOG_LEVEL)
}

/// Installs JSON logging to stdout for `service` (the function name). Call once in `main`.
pub fn init_logging(service: &str) {
    // Another subscriber already installed (tests, the local tool) is fine: keep it.
    let _ = tracing::subscriber::set_global_default(subscriber(service, std::io::stdout));
}

/// The EMF metrics collector: call once in `main`, flush after every invocation with [`flush_metrics`].
pub fn init_metrics(function: &str) -> Result<&'static metrics_cloudwatch_embedded::Collector, MetricsInitError> {
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(METRICS_NAMESPACE)
        .with_dimension("function", function.to_owned())
        .init()
        .map_err(|e| MetricsInitError(e.to_string()))
}

/// The metrics collector could not be installed (another one already is).
#[derive(Debug, thiserror::Error)]
#[error("could not initialise metrics: {0}")]
pub struct MetricsInitError(String);

/// Writes the invocation's metrics as one EMF document, tagged with the request and correlation ids.
pub fn flush_metrics(
    collector: &metrics_cloudwatch_embedded::Collector,
    context: &InvocationContext,
    writer: impl std::io::Write,
) -> std::io::Result<()> {
    collector
        .set_property("function_request_id", context.request_id.clone())
        .set_property("correlation_id", context.correlation_id.clone())
        .set_property("shard", context.shard.clone())
        .flush(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn log_lines_use_powertools_keys_and_carry_the_correlation_id() {
        let buffer = Buffer::default();
        let subscriber = subscriber("pool-scaler", buffer.clone());
        let context =
            InvocationContext { request_id: "req-1".into(), correlation_id: "evt-1".into(), shard: "hub".into() };
        tracing::subscriber::with_default(subscriber, || {
            in_invocation_sync(context, || tracing::info!(pool = "wspool-1", desired = 12u64, "scaled out"));
            tracing::warn!("outside any invocation");
        });
        let text = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap_or_default()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "scaled out");
        assert_eq!(lines[0]["service"], "pool-scaler");
        assert_eq!(lines[0]["function_request_id"], "req-1");
        assert_eq!(lines[0]["correlation_id"], "evt-1");
        assert_eq!(lines[0]["pool"], "wspool-1");
        assert_eq!(lines[0]["desired"], 12);
        assert!(chrono::DateTime::parse_from_rfc3339(lines[0]["timestamp"].as_str().unwrap_or_default()).is_ok());
        assert_eq!(lines[1]["level"], "WARN");
        assert!(lines[1].get("correlation_id").is_none());
    }

    #[test]
    fn trace_is_written_as_debug_at_most() {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(subscriber_at("pool-scaler", Some("TRACE"), buffer.clone()), || {
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "response body");
            tracing::debug!("decided");
        });
        let text = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"level\":\"DEBUG\""), "{text}");
        let buffer = Buffer::default();
        tracing::subscriber::with_default(subscriber_at("pool-scaler", None, buffer.clone()), || {
            tracing::debug!("decided");
            tracing::info!("applied");
        });
        let text = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        assert_eq!(text.lines().count(), 1, "info by default: {text}");
    }

    #[test]
    fn metrics_are_written_in_embedded_metric_format() {
        let collector = init_metrics("pool-scaler").expect("metrics init");
        metrics::counter!("actions_applied").increment(3);
        let mut out = Vec::new();
        let context = InvocationContext {
            request_id: "req-2".into(),
            correlation_id: "evt-2".into(),
            shard: "111122223333/eu-west-1".into(),
        };
        flush_metrics(collector, &context, &mut out).expect("flush");
        let document: Value = serde_json::from_slice(out.trim_ascii_end()).expect("one EMF JSON document");
        assert_eq!(document["_aws"]["CloudWatchMetrics"][0]["Namespace"], METRICS_NAMESPACE);
        assert_eq!(document["actions_applied"], 3);
        assert_eq!(document["function"], "pool-scaler");
        assert_eq!(document["correlation_id"], "evt-2");
        // the shard is a property of the document, not a dimension
        assert_eq!(document["shard"], "111122223333/eu-west-1");
        let dimensions = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"].to_string();
        assert!(!dimensions.contains("shard"), "{dimensions}");
    }
}
