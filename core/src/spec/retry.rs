//! Retry policies: how many times a failed run is tried again, and how long to wait.
//!
//! ```
//! use std::time::Duration;
//! use phlo_core::spec::retry::{Backoff, RetryPolicy};
//! let p = RetryPolicy::new(3).with_delay(Duration::from_secs(1)).with_backoff(Backoff::Exponential);
//! assert_eq!(p.delay_before(1, 0.5), Duration::from_secs(1));
//! assert_eq!(p.delay_before(3, 0.5), Duration::from_secs(4));
//! ```

use std::time::Duration;

use serde::Serialize;

/// How the delay grows between retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// The same delay every time.
    #[default]
    Fixed,
    /// `delay × retry number`.
    Linear,
    /// `delay × 2^(retry number − 1)`.
    Exponential,
}

/// How a failed run is retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retried).
    pub max_retries: u32,
    /// Base delay before a retry.
    pub delay: Duration,
    /// How the delay grows.
    pub backoff: Backoff,
    /// Random spread as a fraction of the delay, 0.0–1.0 (0.1: ±10 %).
    pub jitter: f64,
    /// Upper bound on any delay.
    pub max_delay: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 0, delay: Duration::ZERO, backoff: Backoff::Fixed, jitter: 0.0, max_delay: None }
    }
}

impl RetryPolicy {
    /// A policy with `max_retries` retries and no delay.
    pub fn new(max_retries: u32) -> Self {
        Self { max_retries, ..Self::default() }
    }

    /// Sets the base delay.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the backoff.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the jitter (clamped to 0.0–1.0).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    /// Sets the upper bound on delays.
    #[must_use]
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = Some(max_delay);
        self
    }

    /// The wait before retry number `retry` (1 for the first retry). `random` is a number
    /// in `[0, 1)` from the caller's (seeded) generator; 0.5 means "no jitter".
    pub fn delay_before(&self, retry: u32, random: f64) -> Duration {
        let base = self.delay.as_secs_f64();
        let factor = match self.backoff {
            Backoff::Fixed => 1.0,
            Backoff::Linear => f64::from(retry.max(1)),
            Backoff::Exponential => 2f64.powi(i32::try_from(retry.max(1) - 1).unwrap_or(i32::MAX).min(62)),
        };
        let spread = 1.0 + self.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        let mut secs = base * factor * spread;
        if let Some(m) = self.max_delay {
            secs = secs.min(m.as_secs_f64());
        }
        if secs.is_finite() && secs > 0.0 { Duration::from_secs_f64(secs.min(1e9)) } else { Duration::ZERO }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoffs_jitter_and_cap() {
        let s = Duration::from_secs;
        let lin = RetryPolicy::new(5).with_delay(s(2)).with_backoff(Backoff::Linear);
        assert_eq!([1, 2, 3].map(|r| lin.delay_before(r, 0.5)), [s(2), s(4), s(6)]);
        let exp = RetryPolicy::new(5).with_delay(s(1)).with_backoff(Backoff::Exponential).with_max_delay(s(5));
        assert_eq!([1, 2, 3, 4].map(|r| exp.delay_before(r, 0.5)), [s(1), s(2), s(4), s(5)]);
        let j = RetryPolicy::new(1).with_delay(s(10)).with_jitter(0.1);
        assert_eq!(j.delay_before(1, 0.0), s(9));
        assert_eq!(j.delay_before(1, 1.0), s(11));
        assert_eq!(RetryPolicy::new(1).delay_before(1, 0.3), Duration::ZERO);
        assert_eq!(exp.delay_before(1000, 0.5), s(5));
    }
}
