//! The time a run may take, releases included. `--timeout` bounds the whole process: probes
//! stop a little before the deadline, so that the allocations they made are released (TURN
//! Refresh LIFETIME 0, RFC 8656 §7) inside it, not after it. One rule for every command.

use std::time::{Duration, Instant};

/// The share of a run kept for releases: a tenth of the timeout, at most this much. A tenth
/// keeps any `--timeout` within 10 % (the release is sent at once; its answer is waited for
/// within the reserve); 300 ms covers a release's round trip on any sane path.
const MAX_RESERVE: Duration = Duration::from_millis(300);

/// The longest wait for a release's answer, even when the deadline is far.
const MAX_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// A run's deadline and the release reserve inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    deadline: Instant,
    reserve: Duration,
}

impl Budget {
    /// The budget of a run that starts at `start` and may take `timeout`.
    pub fn new(start: Instant, timeout: Duration) -> Budget {
        Budget {
            deadline: start + timeout,
            reserve: (timeout / 10).min(MAX_RESERVE),
        }
    }

    /// Nothing waits past this.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Probes stop waiting here; what is left is the releases'.
    pub fn probe_deadline(&self) -> Instant {
        self.deadline - self.reserve
    }

    /// How long a release that starts at `now` may wait for its answer: until the deadline,
    /// but not more than [`MAX_RELEASE_WAIT`]; never before `now` (a release past the deadline
    /// is still sent, just not waited for).
    pub fn release_deadline(&self, now: Instant) -> Instant {
        self.deadline.min(now + MAX_RELEASE_WAIT).max(now)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary t0
mod tests {
    use super::*;

    #[test]
    fn releases_fit_inside_any_timeout() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // (timeout, probes stop at, a release started then waits until)
        let cases = [
            (ms(250), ms(225), ms(250)),
            (ms(1000), ms(900), ms(1000)),
            (ms(5000), ms(4700), ms(5000)),
            (ms(60_000), ms(59_700), ms(59_700) + MAX_RELEASE_WAIT),
            (ms(1), Duration::from_micros(900), ms(1)),
        ];
        for (timeout, stop, release_until) in cases {
            let b = Budget::new(t0, timeout);
            assert_eq!(b.deadline(), t0 + timeout, "{timeout:?}");
            assert_eq!(b.probe_deadline(), t0 + stop, "{timeout:?}");
            let until = b.release_deadline(b.probe_deadline());
            assert_eq!(until, (t0 + release_until).min(b.deadline()), "{timeout:?}");
            // The bound the user set holds to within 10 %: nothing waits past the deadline.
            assert!(until <= t0 + timeout + timeout / 10, "{timeout:?}");
        }
        // A release that starts early waits at most MAX_RELEASE_WAIT; one that starts after
        // the deadline is not waited for at all.
        let b = Budget::new(t0, ms(60_000));
        assert_eq!(b.release_deadline(t0), t0 + MAX_RELEASE_WAIT);
        let late = t0 + ms(61_000);
        assert_eq!(b.release_deadline(late), late);
    }
}
