//! The per-connection rate limit of every session.

use std::time::Instant;

use crate::config::RateLimit;
use crate::exception::{ErrorKind, WsException};

/// A per-connection token bucket (see [`RateLimit`]).
///
/// A rejected message still takes its token: the exception frame that answers it costs the
/// server as much as a reply. The bucket then goes below zero, and the debt, not a count
/// of rejections in a row, decides the close: tokens trickling back between messages pay
/// part of the debt, never all of it while the client stays over the limit.
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
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
        }
    }

    /// Charges a message of `size` bytes: a token per started `token_size` bytes.
    pub(crate) fn admit(&mut self, size: usize) -> Admission {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_second))
            .min(f64::from(self.limit.burst));
        let token_size = self.limit.token_size.max(1) as usize;
        // Past 2^53 tokens an f64 rounds: no message is that large.
        #[expect(clippy::cast_precision_loss, reason = "a message's tokens fit an f64")]
        let cost = size.div_ceil(token_size).max(1) as f64;
        let had_token = self.tokens >= cost;
        self.tokens -= cost;
        // The debt counts whole tokens, a part of one as one.
        if had_token {
            Admission::Pass
        } else if (-self.tokens).ceil() >= f64::from(self.limit.close_after) {
            Admission::Close
        } else {
            Admission::Reject
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
            assert!(matches!(bucket.admit(1), Admission::Pass));
        }
        assert!(matches!(bucket.admit(1), Admission::Reject));
        assert!(matches!(bucket.admit(1), Admission::Close));
        assert_eq!(
            bucket.exceeded().message(),
            "Rate limit exceeded: at most 1 messages per second"
        );
    }

    #[test]
    fn tokens_trickling_back_between_rejections_do_not_save_a_client_over_the_limit() {
        let mut limit = RateLimit::new(1, 1);
        limit.close_after = 20;
        let mut bucket = TokenBucket::new(limit);
        // Ten messages per token that comes back: a pass between every ten rejections.
        let mut admissions = Vec::new();
        for _ in 0..100 {
            bucket.tokens += 0.1;
            let admission = bucket.admit(1);
            let close = matches!(admission, Admission::Close);
            admissions.push(admission);
            if close {
                break;
            }
        }
        assert!(matches!(admissions.last(), Some(Admission::Close)));
        assert!(admissions.iter().any(|a| matches!(a, Admission::Pass)));
    }

    #[test]
    fn large_messages_take_a_token_per_started_token_size() {
        let mut limit = RateLimit::new(1, 20);
        limit.token_size = 1000;
        let mut bucket = TokenBucket::new(limit);
        assert!(matches!(bucket.admit(0), Admission::Pass)); // at least one
        assert!(matches!(bucket.admit(1000), Admission::Pass)); // one
        assert!(matches!(bucket.admit(1001), Admission::Pass)); // two
        assert!((bucket.tokens - 16.0).abs() < 0.01, "{}", bucket.tokens);
        assert!(matches!(bucket.admit(16_000), Admission::Pass));
        assert!(matches!(bucket.admit(1), Admission::Reject));
    }

    #[test]
    fn a_client_back_under_the_limit_pays_its_debt_off() {
        let mut limit = RateLimit::new(1, 1);
        limit.close_after = 3;
        let mut bucket = TokenBucket::new(limit);
        assert!(matches!(bucket.admit(1), Admission::Pass));
        assert!(matches!(bucket.admit(1), Admission::Reject));
        assert!(matches!(bucket.admit(1), Admission::Reject));
        bucket.tokens += 3.0;
        assert!(matches!(bucket.admit(1), Admission::Pass));
    }
}
