//! [`Error`]: why the adapter could not start, or why Redis failed an operation.

use std::time::Duration;

/// Why [`RedisAdapter::connect`](crate::RedisAdapter::connect) failed, or why the
/// [`RedisDriver`](crate::RedisDriver) could not carry out an operation (what
/// [`fetch_clients`](ws_gateway_core::Broadcast::fetch_clients) reports as unavailable). The
/// URL in each message has its password replaced by `***`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_redis::{RedisAdapter, RedisConfig};
///
/// let err = RedisAdapter::connect(RedisConfig::new("not a url")).await.unwrap_err();
/// assert!(err.to_string().contains("not a url"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL `{url}`: {source}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Redis refused the connection or failed while setting it up.
    #[error(
        "cannot connect to Redis at {url}: {source} (is redis-server running? `RedisConfig::start_degraded(true)` starts without it)"
    )]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Redis did not answer in time.
    #[error(
        "cannot connect to Redis at {url}: no answer within {timeout:?} (`RedisConfig::start_degraded(true)` starts without it)"
    )]
    Timeout {
        /// The URL, password redacted.
        url: String,
        /// How long the attempt waited.
        timeout: Duration,
    },
    /// The connection is down: nothing is sent until it is back (the driver reconnects on
    /// its own).
    #[error("Redis at {url} is unreachable: reconnecting in the background")]
    Unavailable {
        /// The URL, password redacted.
        url: String,
    },
    /// Redis failed or refused a command (publish, subscribe, unsubscribe).
    #[error("a command to Redis at {url} failed: {source}")]
    Command {
        /// The URL, password redacted.
        url: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `url` with the password of its user-info part replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &url[scheme_end..scheme_end + at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &url[scheme_end + at..]
        ),
        // `redis://password@host` is how some providers spell a password-only URL.
        None if !userinfo.is_empty() => {
            format!("{}***{}", &url[..scheme_end], &url[scheme_end + at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:pw@h"), "redis://:***@h");
        assert_eq!(redact("rediss://pw@h/2"), "rediss://***@h/2");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
