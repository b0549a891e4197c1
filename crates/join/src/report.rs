//! Step-by-step output of `knode join` / `reset`: each step with the time since the start, so
//! the operator sees what was done and where the time went.

use std::io::Write;
use std::time::{Duration, Instant};

/// The step log written to `out` (the terminal), timed from when it was made.
pub struct Report<W: Write> {
    out: W,
    start: Instant,
}

impl<W: Write> Report<W> {
    /// Starts the clock; steps are written to `out`.
    pub fn new(out: W) -> Self {
        Self { out, start: Instant::now() }
    }

    /// The time since the report was made.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// One line: `[  1.23s] text`.
    pub fn step(&mut self, text: impl AsRef<str>) {
        let secs = self.start.elapsed().as_secs_f64();
        let _ = writeln!(self.out, "[{secs:6.2}s] {}", text.as_ref());
        let _ = self.out.flush();
    }

    /// A line under the current step.
    pub fn detail(&mut self, text: impl AsRef<str>) {
        for line in text.as_ref().lines() {
            let _ = writeln!(self.out, "          {line}");
        }
        let _ = self.out.flush();
    }
}
