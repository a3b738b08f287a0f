//! The guide's `transform.interceptor.ts`: every reply's data wrapped with a timestamp.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use ws_gateway::{Context, Interceptor, Next, Outcome};

/// Wraps the data of every reply as `{"data": <data>, "timestamp": <ms since epoch>}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransformInterceptor;

impl Interceptor for TransformInterceptor {
    async fn intercept(&self, _cx: &Context<'_>, next: Next<'_>) -> Outcome {
        let reply = next.run().await?;
        Ok(reply.map_data(|data| json!({"data": data, "timestamp": now_ms()})))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
