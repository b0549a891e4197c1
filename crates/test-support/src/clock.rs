//! [`ManualClock`]: a wall clock that moves only when the test says so.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use kubelet_types::clock::Clock;

/// Reads the time it was set to.
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// Starts at `at`.
    pub fn at(at: SystemTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    /// Sets the clock to `at` (also backwards).
    pub fn set(&self, at: SystemTime) {
        *self.0.lock().unwrap() = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}
