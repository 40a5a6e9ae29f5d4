//! The effective retry policy of a step (its own `retry` over `defaults.retry`), which
//! failures it retries, and the delay before each attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Backoff, Retry};

/// Why an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// A command exited with a non-zero code (or was killed by a signal: `code` is None).
    Exit { code: Option<i32> },
    /// The attempt ran out of time.
    Timeout,
    /// `until` was false.
    Until,
    /// An assertion was false.
    Assert,
    /// A SQL error with its number.
    Sql { number: i64 },
    /// A connection could not be opened, or was lost: a SQL connection, or the ssh connection
    /// to a target.
    Connect,
    /// The approval was refused.
    Refused,
    /// Anything else: a template that cannot be rendered, a program that cannot start.
    Error,
}

/// The retry policy in force for one step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    pub attempts: u32,
    #[serde(serialize_with = "human")]
    pub delay: Duration,
    pub backoff: &'static str,
    #[serde(serialize_with = "human_opt", skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<Duration>,
    pub jitter: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<On>,
}

/// `retry.on`: which failures are retried.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct On {
    pub exit_codes: Vec<i64>,
    pub sql_errors: Vec<i64>,
    pub timeout: bool,
    pub connect: bool,
}

fn human<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn human_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => human(d, s),
        None => s.serialize_none(),
    }
}

impl Policy {
    /// The step's own fields win over the defaults' fields; one attempt when neither says.
    pub fn resolve(step: Option<&Retry>, defaults: Option<&Retry>) -> Self {
        let pick = |f: &dyn Fn(&Retry) -> bool| step.filter(|r| f(r)).or(defaults.filter(|r| f(r)));
        let attempts = pick(&|r| r.attempts.is_some())
            .and_then(|r| r.attempts.as_ref())
            .map_or(1, |a| a.value.max(1));
        let delay = pick(&|r| r.delay.is_some())
            .and_then(|r| r.delay.as_ref())
            .map_or(Duration::ZERO, |d| d.value.get());
        let backoff = match pick(&|r| r.backoff.is_some()).and_then(|r| r.backoff.as_ref()) {
            Some(b) if b.value == Backoff::Exponential => "exponential",
            _ => "fixed",
        };
        let max_delay = pick(&|r| r.max_delay.is_some())
            .and_then(|r| r.max_delay.as_ref())
            .map(|d| d.value.get());
        let jitter = pick(&|r| r.jitter.is_some())
            .and_then(|r| r.jitter.as_ref())
            .is_some_and(|j| j.value);
        let on = pick(&|r| r.on.is_some())
            .and_then(|r| r.on.as_ref())
            .map(|on| On {
                exit_codes: on.exit_codes.iter().map(|c| c.value).collect(),
                sql_errors: on.sql_errors.iter().map(|c| c.value).collect(),
                timeout: on.timeout.as_ref().is_some_and(|t| t.value),
                connect: on.connect.as_ref().is_some_and(|t| t.value),
            });
        Self {
            attempts,
            delay,
            backoff,
            max_delay,
            jitter,
            on,
        }
    }

    /// Whether a failure is worth another attempt under `on` (every failure is without it;
    /// a false `until` always is: that is what polling means).
    pub fn retries(&self, failure: &Failure) -> bool {
        let Some(on) = &self.on else {
            return !matches!(failure, Failure::Refused);
        };
        match failure {
            Failure::Until => true,
            Failure::Exit { code: Some(code) } => on.exit_codes.contains(&i64::from(*code)),
            Failure::Timeout => on.timeout,
            Failure::Sql { number } => on.sql_errors.contains(number),
            Failure::Connect => on.connect,
            _ => false,
        }
    }

    /// The delay before attempt `next` (2 for the first retry), before jitter.
    pub fn base_delay(&self, next: u32) -> Duration {
        let mut delay = self.delay;
        if self.backoff == "exponential" {
            let doublings = next.saturating_sub(2).min(30);
            delay = delay.saturating_mul(1u32 << doublings);
        }
        match self.max_delay {
            Some(max) => delay.min(max),
            None => delay,
        }
    }

    /// The delay before attempt `next`, with full jitter when enabled.
    pub fn delay_before(&self, next: u32) -> Duration {
        let base = self.base_delay(next);
        if self.jitter && !base.is_zero() {
            base.mul_f64(fastrand::f64())
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Policy;

    fn policy(delay_ms: u64, backoff: &'static str, max_ms: Option<u64>, jitter: bool) -> Policy {
        Policy {
            attempts: 5,
            delay: Duration::from_millis(delay_ms),
            backoff,
            max_delay: max_ms.map(Duration::from_millis),
            jitter,
            on: None,
        }
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn fixed_delay_is_the_same_before_every_attempt() {
        let p = policy(250, "fixed", None, false);
        let delays: Vec<u128> = (2..6).map(|n| ms(p.delay_before(n))).collect();
        assert_eq!(delays, [250, 250, 250, 250]);
    }

    #[test]
    fn exponential_delay_doubles_from_the_first_retry() {
        let p = policy(100, "exponential", None, false);
        let delays: Vec<u128> = (2..7).map(|n| ms(p.delay_before(n))).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600]);
    }

    #[test]
    fn max_delay_caps_the_backoff() {
        let p = policy(100, "exponential", Some(500), false);
        let delays: Vec<u128> = (2..7).map(|n| ms(p.delay_before(n))).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        let fixed = policy(900, "fixed", Some(500), false);
        assert_eq!(ms(fixed.delay_before(2)), 500);
    }

    #[test]
    fn attempt_numbers_below_two_mean_the_first_retry() {
        let p = policy(100, "exponential", None, false);
        assert_eq!(ms(p.base_delay(0)), 100);
        assert_eq!(ms(p.base_delay(1)), 100);
    }

    #[test]
    fn jitter_stays_between_zero_and_the_base_delay() {
        let p = policy(100, "exponential", Some(1_000), true);
        for next in 2..10 {
            let base = p.base_delay(next);
            for _ in 0..200 {
                assert!(p.delay_before(next) <= base, "attempt {next}");
            }
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..200).map(|_| ms(p.delay_before(4))).collect();
        assert!(spread.len() > 1, "jitter never varied: {spread:?}");
    }

    #[test]
    fn zero_delay_stays_zero_with_jitter() {
        let p = policy(0, "exponential", None, true);
        assert_eq!(p.delay_before(9), Duration::ZERO);
    }

    #[test]
    fn large_attempt_numbers_saturate_instead_of_overflowing() {
        let p = policy(1_000, "exponential", None, false);
        let huge = p.base_delay(u32::MAX);
        assert!(huge >= p.base_delay(32));
        assert_eq!(p.base_delay(u32::MAX), p.base_delay(u32::MAX - 1));
        let capped = policy(1_000, "exponential", Some(60_000), true);
        assert!(capped.delay_before(u32::MAX) <= Duration::from_secs(60));
        let longest = Policy {
            delay: Duration::MAX,
            ..policy(0, "exponential", None, true)
        };
        assert_eq!(longest.base_delay(u32::MAX), Duration::MAX);
        for _ in 0..100 {
            assert!(longest.delay_before(u32::MAX) <= Duration::MAX);
        }
    }
}
