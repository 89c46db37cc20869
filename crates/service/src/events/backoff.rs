//! When a failed delivery is tried again: exponential backoff with jitter,
//! at most 30 s apart while the event is less than an hour old, then at
//! most 15 minutes apart, until the event is older than the retry limit
//! (`--webhook-retry-for`, 24 h by default): then it is marked failed.
use std::time::Duration;

/// The first wait after a failure.
const FIRST: Duration = Duration::from_secs(1);
/// The longest wait while the event is young.
const YOUNG_MOST: Duration = Duration::from_secs(30);
/// How long an event counts as young.
const YOUNG_FOR: Duration = Duration::from_secs(3600);
/// The longest wait after that.
const OLD_MOST: Duration = Duration::from_secs(15 * 60);

/// When to try again after the `failures`th failure (1 for the first) of
/// an event now `age` old, or None when it must be given up: never past
/// `limit`. `jitter` in [0, 1) spreads the wait over its upper half, so
/// receivers that come back are not met by every sender at once.
pub fn next_try(failures: u32, age: Duration, limit: Duration, jitter: f64) -> Option<Duration> {
    if age >= limit {
        return None;
    }
    let most = if age < YOUNG_FOR { YOUNG_MOST } else { OLD_MOST };
    let doubled = FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let full = doubled.min(most);
    let wait = full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    // The last try falls at the limit, not after it.
    Some(wait.min(limit - age))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn waits_double_up_to_30_s_in_the_first_hour_then_up_to_15_minutes() {
        let at = |n, age_s, j| next_try(n, Duration::from_secs(age_s), DAY, j).unwrap().as_secs_f64();
        assert_eq!((at(1, 0, 0.999_999) * 1000.0).round(), 1000.0);
        assert_eq!(at(1, 0, 0.0), 0.5);
        assert_eq!((at(4, 10, 0.999_999)).round(), 8.0);
        assert_eq!(at(9, 600, 0.999_999).round(), 30.0, "capped in the first hour");
        assert!(at(60, 3599, 0.999_999) <= 30.0);
        assert_eq!(at(60, 3600, 0.999_999).round(), 900.0, "then up to 15 minutes");
        for n in 1..200 {
            for j in [0.0, 0.3, 0.99] {
                let w = at(n, 100, j);
                assert!((0.5..=30.0).contains(&w), "{n} {j}: {w}");
            }
        }
    }

    #[test]
    fn an_event_older_than_the_limit_is_given_up_and_the_last_wait_ends_at_it() {
        assert_eq!(next_try(3, DAY, DAY, 0.5), None);
        assert_eq!(next_try(3, DAY + Duration::from_secs(1), DAY, 0.5), None);
        let last = next_try(50, DAY - Duration::from_secs(10), DAY, 0.99).unwrap();
        assert_eq!(last, Duration::from_secs(10));
    }
}
