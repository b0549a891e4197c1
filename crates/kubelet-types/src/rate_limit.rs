//! A token bucket for API requests (client-go's `flowcontrol.NewTokenBucketRateLimiter`),
//! configured from kubeAPIQPS / kubeAPIBurst. Time comes from `tokio::time`, so tests can pause
//! it. A QPS of zero or less disables limiting.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Allows `burst` requests at once and `qps` per second after that.
#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

impl RateLimiter {
    /// A limiter with `qps` tokens per second and room for `burst` (at least 1).
    pub fn new(qps: f64, burst: i32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter { qps, burst, bucket: Mutex::new(Bucket { tokens: burst, last: Instant::now() }) }
    }

    /// No limit.
    pub fn unlimited() -> RateLimiter {
        RateLimiter::new(0.0, 1)
    }

    /// Takes a token if one is there now (client-go's `TryAccept`); never waits for one.
    pub async fn try_acquire(&self) -> bool {
        if self.qps <= 0.0 {
            return true;
        }
        let mut b = self.bucket.lock().await;
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * self.qps).min(self.burst);
        b.last = now;
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }

    /// Waits for a token. The lock is held while waiting, so callers are served in order.
    pub async fn acquire(&self) {
        if self.qps <= 0.0 {
            return;
        }
        let mut b = self.bucket.lock().await;
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * self.qps).min(self.burst);
        b.last = now;
        if b.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - b.tokens) / self.qps);
            tokio::time::sleep(wait).await;
            b.tokens = 1.0;
            b.last = Instant::now();
        }
        b.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_qps() {
        let l = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            l.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire().await;
        l.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn try_acquire_refuses_beyond_the_burst() {
        let l = RateLimiter::new(1.0, 2);
        assert!(l.try_acquire().await && l.try_acquire().await);
        assert!(!l.try_acquire().await);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(l.try_acquire().await);
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let l = RateLimiter::unlimited();
        let start = Instant::now();
        for _ in 0..1000 {
            l.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
