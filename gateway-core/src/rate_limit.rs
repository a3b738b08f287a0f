//! The per-connection rate limit of every session.

use std::time::Instant;

use crate::config::RateLimit;
use crate::exception::{ErrorKind, WsException};

/// A per-connection token bucket (see [`RateLimit`]).
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    rejected_in_row: u32,
}

/// What the rate limit says of one message.
pub(crate) enum Admission {
    Pass,
    Reject,
    Close,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled: Instant::now(),
            rejected_in_row: 0,
        }
    }

    pub(crate) fn admit(&mut self) -> Admission {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_second))
            .min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.rejected_in_row = 0;
            Admission::Pass
        } else {
            self.rejected_in_row += 1;
            if self.rejected_in_row >= self.limit.close_after {
                Admission::Close
            } else {
                Admission::Reject
            }
        }
    }

    /// What a client over the limit is told.
    pub(crate) fn exceeded(&self) -> WsException {
        WsException::of_kind(
            ErrorKind::RateLimited,
            format!(
                "Rate limit exceeded: at most {} messages per second",
                self.limit.per_second
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_rejections_close() {
        let mut limit = RateLimit::new(1, 3);
        limit.close_after = 2;
        let mut bucket = TokenBucket::new(limit);
        for _ in 0..3 {
            assert!(matches!(bucket.admit(), Admission::Pass));
        }
        assert!(matches!(bucket.admit(), Admission::Reject));
        assert!(matches!(bucket.admit(), Admission::Close));
        assert_eq!(
            bucket.exceeded().message(),
            "Rate limit exceeded: at most 1 messages per second"
        );
    }
}
