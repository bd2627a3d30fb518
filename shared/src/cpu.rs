//! CPU time by step of a tick (decide, act), on the thread that runs it: for `autopilot bench`, which runs each
//! tick on a thread of its own (docs/performance.md). Off unless [`start`] was called on the thread; then
//! every poll of a [`metered`] future and every [`measure`]d call adds the thread CPU time it took to its step.
//! Off, each costs one thread-local read. What is not inside either belongs to neither step: the listing, the
//! reads of memories and tags, and the HTTP connections' own tasks (writing and reading the bytes of every
//! request, the act's included: the network). On, each measurement reads the thread's clock twice (a system
//! call, about 0.3 µs here), and about one read's worth is counted in: the figures err high.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The step a CPU time is counted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Decide,
    Act,
}

/// CPU time per step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    pub decide: Duration,
    pub act: Duration,
}

impl Steps {
    fn add(mut self, step: Step, time: Duration) -> Self {
        match step {
            Step::Decide => self.decide += time,
            Step::Act => self.act += time,
        }
        self
    }
}

thread_local! {
    static METER: Cell<Option<Steps>> = const { Cell::new(None) };
    /// A measurement is running: one inside it is counted by the outer one only.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// This thread's CPU time so far (user + kernel); `None` where the platform does not tell.
pub fn thread_time() -> Option<Duration> {
    cpu_time::ThreadTime::try_now().ok().map(|t| t.as_duration())
}

/// Starts counting on this thread, from zero.
pub fn start() {
    METER.set(Some(Steps::default()));
}

/// Stops counting on this thread: what was counted since [`start`] (`None` if it was not called).
pub fn stop() -> Option<Steps> {
    METER.take()
}

/// Runs `f`, counting its CPU time to `step` when counting is on.
pub fn measure<R>(step: Step, f: impl FnOnce() -> R) -> R {
    if METER.get().is_none() || INSIDE.get() {
        return f();
    }
    /// Ends the measurement even when `f` panics.
    struct Outside;
    impl Drop for Outside {
        fn drop(&mut self) {
            INSIDE.set(false);
        }
    }
    INSIDE.set(true);
    let outside = Outside;
    let before = thread_time();
    let result = f();
    let after = thread_time();
    drop(outside);
    if let (Some(before), Some(after)) = (before, after) {
        METER.set(METER.get().map(|steps| steps.add(step, after.saturating_sub(before))));
    }
    result
}

pin_project_lite::pin_project! {
    /// A future whose polls are [`measure`]d.
    #[derive(Debug)]
    pub struct Metered<F> {
        step: Step,
        #[pin]
        inner: F,
    }
}

/// `inner`, with the CPU time of each of its polls counted to `step`.
pub fn metered<F: Future>(step: Step, inner: F) -> Metered<F> {
    Metered { step, inner }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        measure(*this.step, || inner.poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(time: Duration) {
        let until = thread_time().expect("thread CPU time") + time;
        while thread_time().expect("thread CPU time") < until {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn counts_each_step_while_on_and_nothing_while_off() {
        measure(Step::Act, || spin(Duration::from_millis(5)));
        assert_eq!(stop(), None, "off until started");
        start();
        measure(Step::Decide, || spin(Duration::from_millis(10)));
        // a measurement inside another is counted once, to the outer step
        measure(Step::Act, || {
            spin(Duration::from_millis(10));
            measure(Step::Decide, || spin(Duration::from_millis(10)));
        });
        spin(Duration::from_millis(10)); // neither step
        let steps = stop().expect("started");
        assert!(steps.decide >= Duration::from_millis(10) && steps.decide < Duration::from_millis(20), "{steps:?}");
        assert!(steps.act >= Duration::from_millis(20) && steps.act < Duration::from_millis(30), "{steps:?}");
        assert_eq!(stop(), None, "stopped");
    }

    #[tokio::test]
    async fn a_metered_future_counts_its_polls_not_its_waits() {
        start();
        let work = metered(Step::Act, async {
            spin(Duration::from_millis(10));
            tokio::time::sleep(Duration::from_millis(30)).await;
            spin(Duration::from_millis(10));
            7
        });
        assert_eq!(work.await, 7);
        let steps = stop().expect("started");
        assert!(steps.act >= Duration::from_millis(20) && steps.act < Duration::from_millis(30), "{steps:?}");
        assert_eq!(steps.decide, Duration::ZERO);
    }
}
