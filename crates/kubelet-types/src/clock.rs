//! The kubelet's wall clock, injected so tests can control it.
//!
//! Restart backoff compares "now" with the runtime's container finish times, which are wall-clock
//! timestamps; [`TokioClock`] follows tokio's (pausable) clock from a wall-clock start, so a test
//! that pauses and advances tokio time moves it too.

use std::time::SystemTime;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Wall time at creation plus tokio's elapsed time.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    wall: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `wall`; must be called inside a tokio runtime.
    pub fn starting_at(wall: SystemTime) -> Self {
        Self { wall, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.wall + self.start.elapsed()
    }
}
