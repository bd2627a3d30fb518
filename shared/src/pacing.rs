//! Client-side pacing: each AWS operation is sent no faster than the rate its service has shown it allows, so
//! a large tick runs at the services' rate limits instead of into them. AWS does not publish per-operation
//! quotas for WorkSpaces, AppStream or Thin Client, so the rate is learnt: an operation is unpaced until its
//! first throttling error; from then on it is paced at the rate that actually succeeded over the last
//! [`WINDOW`] (a token-bucket service lets exactly its refill rate through once the burst is spent), probing
//! upwards by [`PROBE`] per second without throttling. Throttled attempts are still retried by the SDK's
//! standard retry mode (`clients::retry_config`).
//!
//! Two halves share one [`Pacer`]: the HTTP connector ([`Pacer::http_client`]) waits for the operation's next
//! slot before sending and counts successes; the retry classifier ([`ThrottleFeedback`]) sees the parsed
//! error (AppStream's throttle code is in the body) and tells the pacer. The operation is named by the
//! request itself (`X-Amz-Target`, or the REST method and first path segment), so both halves agree.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How far back successes are counted to measure the rate a service allows.
pub const WINDOW: Duration = Duration::from_secs(2);
/// Upward probe of a paced rate per second without throttling (a fraction of the rate).
pub const PROBE: f64 = 0.02;
/// The slowest pace ever set, requests per second.
const MIN_RATE: f64 = 0.2;

/// One operation's pace.
#[derive(Debug, Default)]
struct Lane {
    /// Requests per second; `None` until the first throttle.
    rate: Option<f64>,
    /// When the next request may be sent.
    next: Option<Instant>,
    /// Recent successful responses.
    successes: VecDeque<Instant>,
    /// When the rate was last lowered (one lowering per window).
    lowered: Option<Instant>,
    /// When the rate was last raised.
    raised: Option<Instant>,
}

impl Lane {
    fn prune(&mut self, now: Instant) {
        while self.successes.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            self.successes.pop_front();
        }
    }

    /// Reserves the next slot; how long to wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let Some(rate) = self.rate else { return Duration::ZERO };
        let slot = self.next.map_or(now, |next| next.max(now));
        self.next = Some(slot + Duration::from_secs_f64(1.0 / rate));
        slot.duration_since(now)
    }

    fn succeeded(&mut self, now: Instant) {
        self.prune(now);
        self.successes.push_back(now);
        if let Some(rate) = self.rate {
            let since = self.raised.or(self.lowered).map_or(Duration::ZERO, |t| now.duration_since(t));
            if since >= Duration::from_secs(1) {
                self.rate = Some(rate * (1.0 + PROBE * since.as_secs_f64()));
                self.raised = Some(now);
            }
        }
    }

    fn throttled(&mut self, now: Instant) {
        if self.lowered.is_some_and(|t| now.duration_since(t) < WINDOW) {
            return; // the other requests of the same burst say the same thing
        }
        self.prune(now);
        // Successes per second over the window, or over the time since the first of them when the operation
        // began less than a window ago (at least a second: a token bucket's burst is a second's worth).
        let span = self
            .successes
            .front()
            .map_or(WINDOW, |first| now.duration_since(*first))
            .clamp(Duration::from_secs(1), WINDOW);
        let measured = self.successes.len() as f64 / span.as_secs_f64();
        let rate = match self.rate {
            // What got through is what the service allows, unless it was far less than we asked for.
            Some(rate) => measured.clamp(rate * 0.7, rate * 0.98),
            None => measured,
        };
        self.rate = Some(rate.max(MIN_RATE));
        self.lowered = Some(now);
        self.raised = None;
    }
}

/// The pace of every operation one set of clients sends (shared by their connector and classifier).
#[derive(Debug, Default, Clone)]
pub struct Pacer {
    lanes: Arc<Mutex<HashMap<String, Lane>>>,
}

impl Pacer {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_lane<R>(&self, operation: &str, f: impl FnOnce(&mut Lane) -> R) -> R {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        f(lanes.entry(operation.to_owned()).or_default())
    }

    /// The rate an operation is paced at (`None`: unpaced).
    pub fn rate(&self, operation: &str) -> Option<f64> {
        self.with_lane(operation, |lane| lane.rate)
    }

    /// Records a throttling error of `operation` now.
    pub fn throttled(&self, operation: &str) {
        self.with_lane(operation, |lane| lane.throttled(Instant::now()));
    }

    /// Records a success of `operation` now.
    pub fn succeeded(&self, operation: &str) {
        self.with_lane(operation, |lane| lane.succeeded(Instant::now()));
    }

    /// Waits for `operation`'s next slot.
    pub async fn wait(&self, operation: &str) {
        let wait = self.with_lane(operation, |lane| lane.reserve(Instant::now()));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// `inner` with every request paced.
    pub fn http_client(&self, inner: SharedHttpClient) -> SharedHttpClient {
        let pacer = self.clone();
        http_client_fn(move |settings, components| {
            SharedHttpConnector::new(Paced { inner: inner.http_connector(settings, components), pacer: pacer.clone() })
        })
    }

    /// The retry classifier that reports throttling errors to this pacer.
    pub fn classifier(&self) -> ThrottleFeedback {
        ThrottleFeedback { pacer: self.clone() }
    }
}

/// The operation a request is for: its `X-Amz-Target` (JSON protocols), else its method and path with
/// identifiers left out (REST: `GET /devices/*`; RPC v2 CBOR: `/service/…/operation/…`).
pub fn operation_of(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.to_owned();
    }
    let path = request.uri().split_once("://").map_or(request.uri(), |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.starts_with("service/") {
        return format!("{} /{path}", request.method());
    }
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let first = segments.next().unwrap_or_default();
    let more = if segments.next().is_some() { "/*" } else { "" };
    format!("{} /{first}{more}", request.method())
}

#[derive(Debug)]
struct Paced {
    inner: SharedHttpConnector,
    pacer: Pacer,
}

impl HttpConnector for Paced {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = operation_of(&request);
        let (inner, pacer) = (self.inner.clone(), self.pacer.clone());
        HttpConnectorFuture::new(async move {
            pacer.wait(&operation).await;
            let mut response = inner.call(request).await?;
            if response.status().as_u16() < 400 {
                pacer.succeeded(&operation);
            } else if response.status().as_u16() == 429 {
                pacer.throttled(&operation);
            }
            // The request is gone by the time the classifier runs: the response carries its operation.
            response.add_extension(PacedOperation(operation));
            Ok(response)
        })
    }
}

/// The operation of a paced response (see [`operation_of`]).
#[derive(Debug, Clone)]
struct PacedOperation(String);

/// Tells the [`Pacer`] about throttling errors the status alone does not show (JSON protocols answer 400 and
/// name the error in the body). Indicates nothing itself: the SDK's own classifiers decide the retry.
#[derive(Debug, Clone)]
pub struct ThrottleFeedback {
    pacer: Pacer,
}

impl ClassifyRetry for ThrottleFeedback {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        if let Some(response) = ctx.response()
            && let Some(PacedOperation(operation)) = response.extension::<PacedOperation>()
        {
            let throttled = response.status().as_u16() == 400
                && response.body().bytes().is_some_and(|body| {
                    crate::error::THROTTLING_CODES
                        .iter()
                        .any(|code| body.windows(code.len()).any(|w| w == code.as_bytes()))
                });
            if throttled {
                self.pacer.throttled(operation);
            }
        }
        RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "ThrottleFeedback"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_unpaced_until_throttled_then_paced_at_what_got_through() {
        let mut lane = Lane::default();
        let t0 = Instant::now();
        assert_eq!(lane.reserve(t0), Duration::ZERO);
        // 10 successes over 2 s, then a throttle: 5/s
        for i in 0..10 {
            lane.succeeded(t0 + Duration::from_millis(200 * i));
        }
        lane.throttled(t0 + Duration::from_secs(2));
        assert_eq!(lane.rate, Some(5.0));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(lane.reserve(now), Duration::ZERO);
        assert_eq!(lane.reserve(now), Duration::from_millis(200));
        assert_eq!(lane.reserve(now), Duration::from_millis(400));
        // a second throttle in the same window changes nothing
        lane.throttled(now + Duration::from_millis(500));
        assert_eq!(lane.rate, Some(5.0));
        // an operation that began with a burst: 5 successes at once, then a throttle: a second's worth
        let mut burst = Lane::default();
        for _ in 0..5 {
            burst.succeeded(t0);
        }
        burst.throttled(t0 + Duration::from_millis(10));
        assert_eq!(burst.rate, Some(5.0));
    }

    #[test]
    fn a_paced_rate_probes_upwards_and_never_falls_below_the_minimum() {
        let mut lane = Lane::default();
        let t0 = Instant::now();
        lane.throttled(t0);
        assert_eq!(lane.rate, Some(MIN_RATE), "nothing got through: the slowest pace");
        lane.succeeded(t0 + Duration::from_secs(5));
        assert!(lane.rate.is_some_and(|r| r > MIN_RATE), "{:?}", lane.rate);
        // a throttle lowers by at most 30%
        let before = lane.rate.unwrap_or_default();
        lane.throttled(t0 + Duration::from_secs(10));
        assert!(lane.rate.is_some_and(|r| r >= before * 0.7 - 1e-9 && r <= before * 0.98 + 1e-9), "{:?}", lane.rate);
    }
}

/// Runs `work` on every item: the items of one lane (same `lane` key, e.g. the operation they call) one after
/// another in their order, the lanes at the same time — so the pace of one operation never holds up another,
/// and each resource's calls keep their order. Results come back in the items' order; when a lane fails, the
/// other lanes still finish (nothing is dropped half-done) and the first error is returned. The items all known
/// at once: [`in_lanes_streamed`] over them.
pub async fn in_lanes<'a, T, K, R, E, Fut>(
    items: &'a [T],
    lane: impl Fn(&T) -> K,
    work: impl Fn(&'a T) -> Fut,
) -> Result<Vec<R>, E>
where
    K: Ord,
    Fut: std::future::Future<Output = Result<R, E>>,
{
    in_lanes_streamed(futures::stream::iter(items), |item: &&'a T| lane(item), work).await
}

/// [`in_lanes`] over items that arrive over time (a reconcile acts on a resource as soon as its tags are
/// known, while the others' are still being read): a lane starts with its first item, its items run one after
/// another in their order of arrival, the lanes side by side, while `items` is still read. Results come back
/// in the order the items arrived. When a lane fails it runs none of its later items; the other lanes, and the
/// reading of `items`, go on to the end (nothing is dropped half-done); then the error of the earliest-arrived
/// failed item is returned.
pub async fn in_lanes_streamed<T, K, R, E, Fut>(
    items: impl futures::Stream<Item = T>,
    lane: impl Fn(&T) -> K,
    work: impl Fn(T) -> Fut,
) -> Result<Vec<R>, E>
where
    K: Ord,
    Fut: std::future::Future<Output = Result<R, E>>,
{
    use futures::StreamExt;
    use futures::channel::mpsc;
    let work = &work;
    // Each lane is a future draining its own queue; the feed starts a lane (sends it to `run`) with its first item.
    let (start_lane, lanes) = mpsc::unbounded();
    let feed = async move {
        let mut queues: std::collections::BTreeMap<K, mpsc::UnboundedSender<(usize, T)>> =
            std::collections::BTreeMap::new();
        let mut items = std::pin::pin!(items);
        let mut arrived = 0;
        while let Some(item) = items.next().await {
            let queue = queues.entry(lane(&item)).or_insert_with(|| {
                let (queue, mut queued) = mpsc::unbounded::<(usize, T)>();
                let _ = start_lane.unbounded_send(async move {
                    let mut done = Vec::new();
                    while let Some((index, item)) = queued.next().await {
                        match work(item).await {
                            Ok(result) => done.push((index, result)),
                            Err(error) => return (done, Some((index, error))),
                        }
                    }
                    (done, None)
                });
                queue
            });
            // A lane that failed has stopped: the send fails and the item is not run, as in `in_lanes`.
            let _ = queue.unbounded_send((arrived, item));
            arrived += 1;
        }
        // Dropping the queues ends each lane once it has run what it was given.
        arrived
    };
    let run = lanes.buffer_unordered(usize::MAX).collect::<Vec<_>>();
    let (arrived, finished) = futures::join!(feed, run);
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(arrived).collect();
    let mut first_error: Option<(usize, E)> = None;
    for (done, error) in finished {
        for (index, result) in done {
            results[index] = Some(result);
        }
        if let Some((index, error)) = error
            && first_error.as_ref().is_none_or(|(first, _)| index < *first)
        {
            first_error = Some((index, error));
        }
    }
    match first_error {
        Some((_, error)) => Err(error),
        None => Ok(results.into_iter().flatten().collect()),
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lanes_run_side_by_side_and_results_keep_the_items_order() {
        // two lanes of two items, each item 1 s: 2 s in all, not 4
        let items = [("a", 1), ("b", 2), ("a", 3), ("b", 4)];
        let started = tokio::time::Instant::now();
        let results = in_lanes(
            &items,
            |item| item.0,
            |item| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, String>(item.1 * 10)
            },
        )
        .await;
        assert_eq!(results, Ok(vec![10, 20, 30, 40]));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // a failing lane stops itself, the others finish, the error is returned
        let seen = std::sync::Mutex::new(Vec::new());
        let failed = in_lanes(
            &items,
            |item| item.0,
            |item| {
                let seen = &seen;
                async move {
                    seen.lock().unwrap_or_else(PoisonError::into_inner).push(item.1);
                    if item.1 == 1 { Err("a failed".to_owned()) } else { Ok(item.1) }
                }
            },
        )
        .await;
        assert_eq!(failed, Err("a failed".to_owned()));
        let mut seen = seen.into_inner().unwrap_or_else(PoisonError::into_inner);
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2, 4], "lane a stopped at its failure; lane b finished");
    }

    /// `items` delivered over time: each after its delay (seconds) from the one before.
    fn arriving<T>(items: Vec<(u64, T)>) -> impl futures::Stream<Item = T> {
        use futures::StreamExt;
        futures::stream::iter(items).then(|(delay, item)| async move {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            item
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_lane_starts_with_its_first_item_while_the_items_are_still_arriving() {
        // a1 at 0 s, b2 and a3 at 1 s, b4 at 5 s; each item takes 2 s
        let items = arriving(vec![(0, ("a", 1)), (1, ("b", 2)), (0, ("a", 3)), (4, ("b", 4))]);
        let started = tokio::time::Instant::now();
        let starts = std::sync::Mutex::new(Vec::new());
        let results = in_lanes_streamed(
            items,
            |item| item.0,
            |item| {
                let starts = &starts;
                async move {
                    starts.lock().unwrap_or_else(PoisonError::into_inner).push((item.1, started.elapsed().as_secs()));
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok::<_, String>(item.1 * 10)
                }
            },
        )
        .await;
        assert_eq!(results, Ok(vec![10, 20, 30, 40]), "in the order of arrival");
        let starts = starts.into_inner().unwrap_or_else(PoisonError::into_inner);
        // a1 ran while the rest was still arriving; a3 waited for a1 (one lane: in order); b4 found lane b idle
        assert_eq!(starts, vec![(1, 0), (2, 1), (3, 2), (4, 5)]);
        assert_eq!(started.elapsed(), Duration::from_secs(7), "the last item's arrival plus its own work");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_lane_stops_the_others_finish_and_the_earliest_arrived_failure_is_returned() {
        // a1 fails after 3 s; b2 fails at once (1 s); a3 arrives after a1 failed; c4 arrives last
        let items = arriving(vec![(0, ("a", 1)), (1, ("b", 2)), (3, ("a", 3)), (1, ("c", 4))]);
        let seen = std::sync::Mutex::new(Vec::new());
        let failed = in_lanes_streamed(
            items,
            |item| item.0,
            |item| {
                let seen = &seen;
                async move {
                    seen.lock().unwrap_or_else(PoisonError::into_inner).push(item.1);
                    match item.1 {
                        1 => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            Err(format!("{} failed", item.1))
                        }
                        2 => Err(format!("{} failed", item.1)),
                        _ => Ok(item.1),
                    }
                }
            },
        )
        .await;
        assert_eq!(failed, Err("1 failed".to_owned()), "the earliest-arrived failure, not the first in time");
        let seen = seen.into_inner().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(seen, vec![1, 2, 4], "lane a ran nothing after its failure; lane c, started last, ran");
    }
}
