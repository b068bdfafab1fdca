//! The engine's time source: wall-clock time for decisions, monotonic time for waiting.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

/// Where the engine reads time. Production uses [`TokioClock`]; the demo may scale time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time, recorded as the cycle's `now`.
    fn now(&self) -> SystemTime;
    /// Sleeps for `d` of this clock's time.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// Real time: `SystemTime::now()` and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}
