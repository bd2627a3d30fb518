//! Time as a dependency: every component that needs "now" takes a [`Clock`], so the decide step stays pure
//! (it receives `now` as an argument) and the simulator and tests can run on a virtual clock.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock of the machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same instant.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// Sets the clock to `instant`; a virtual clock may be moved backwards on purpose (tests of clock skew).
    pub fn set(&self, instant: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = instant;
    }

    /// Moves the clock forward by `by` and returns the new instant.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
        *now
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The variable naming a local estate's clock (`autopilot serve` prints it): when set, the functions and the
/// operator commands take "now" from that estate instead of the wall clock, so they agree with the estate's
/// virtual time. Never set on AWS.
pub const CLOCK_URL_VAR: &str = "AUTOPILOT_CLOCK_URL";

/// Why the estate's clock could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the estate clock {url} cannot be read: {reason}")]
pub struct ClockError {
    pub url: String,
    pub reason: String,
}

/// The clock of a local estate: "now" is the estate's virtual time, read from its clock URL (`GET` answering
/// `{"now": <RFC 3339>}`) by [`EstateClock::sync`] — at the start of every invocation — and moving with the wall
/// clock in between (an invocation takes milliseconds; the estate moves only when told to, or with the wall
/// clock under `serve --realtime`).
#[derive(Debug)]
pub struct EstateClock {
    url: String,
    /// Estate time minus wall time, in milliseconds.
    offset_ms: AtomicI64,
}

impl EstateClock {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), offset_ms: AtomicI64::new(0) }
    }

    /// The clock named by [`CLOCK_URL_VAR`], if it is set.
    pub fn from_env() -> Option<Self> {
        std::env::var(CLOCK_URL_VAR).ok().filter(|v| !v.is_empty()).map(Self::new)
    }

    /// Reads the estate's time now; [`Clock::now`] follows it from here on.
    pub async fn sync(&self) -> Result<DateTime<Utc>, ClockError> {
        let fail = |reason: String| ClockError { url: self.url.clone(), reason };
        let body = http_get(&self.url).await?;
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
        let now = value["now"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| fail(format!("no RFC 3339 `now` in {value}")))?
            .with_timezone(&Utc);
        self.offset_ms.store((now - Utc::now()).num_milliseconds(), Ordering::Relaxed);
        Ok(now)
    }
}

impl Clock for EstateClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}

/// One plain-HTTP `GET` (the estate clock is on loopback).
async fn http_get(url: &str) -> Result<Vec<u8>, ClockError> {
    use http_body_util::{BodyExt, Empty};
    let fail = |reason: &dyn std::fmt::Display| ClockError { url: url.to_owned(), reason: reason.to_string() };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = url.parse().map_err(|e| fail(&e))?;
    let response = client.get(uri).await.map_err(|e| fail(&e))?;
    if !response.status().is_success() {
        return Err(fail(&format_args!("HTTP {}", response.status())));
    }
    let body = response.into_body().collect().await.map_err(|e| fail(&e))?;
    Ok(body.to_bytes().to_vec())
}

/// The clock the operator commands and the functions use: the estate's when [`CLOCK_URL_VAR`] is set (read
/// once now), otherwise the wall clock.
pub async fn from_env() -> Result<Arc<dyn Clock>, ClockError> {
    match EstateClock::from_env() {
        Some(clock) => {
            clock.sync().await?;
            Ok(Arc::new(clock))
        }
        None => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn virtual_clock_moves_only_when_told_and_clones_share_time() {
        let start = Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).single().unwrap_or_default();
        let clock = VirtualClock::new(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        assert_eq!(clock.advance(Duration::minutes(90)), start + Duration::minutes(90));
        assert_eq!(shared.now(), start + Duration::minutes(90));
        shared.set(start);
        assert_eq!(clock.now(), start);
    }

    #[tokio::test]
    async fn the_estate_clock_follows_the_estate() {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/_sim/clock", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/_sim/clock", get(|| async { r#"{"now":"2026-11-23T06:00:00Z"}"# }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let clock = EstateClock::new(&url);
        let estate = Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).single().unwrap_or_default();
        assert_eq!(clock.sync().await, Ok(estate));
        assert!((clock.now() - estate).num_seconds().abs() < 5);
        let unreachable = EstateClock::new("http://127.0.0.1:9/_sim/clock").sync().await;
        assert!(unreachable.is_err());
    }

    #[test]
    fn system_clock_is_close_to_chrono_now() {
        let delta = SystemClock.now() - Utc::now();
        assert!(delta.num_seconds().abs() < 5);
    }
}
