//! [`LoggingInterceptor`]: one log line per message, with how long it took.

use std::time::Instant;

use crate::dispatch::{Context, Outcome, Reply};
use crate::interceptor::{Interceptor, Next};

/// Logs every message it wraps under the target `gateway::access`: the event, the client,
/// the outcome and the time the rest of the pipeline took (guards and interceptors inside
/// it, pipes, the handler), in microseconds. Successes log at `INFO`, failures at `WARN`
/// with the error's message. For a handler that returns a stream, the time is until the
/// stream is ready, not until its last item.
///
/// Register it globally to log everything, or on the gateways and handlers that matter:
///
/// ```
/// use ws_gateway_core::{GatewayApp, LoggingInterceptor};
///
/// let app = GatewayApp::new().use_global_interceptor(LoggingInterceptor);
/// # let _ = app;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct LoggingInterceptor;

impl Interceptor for LoggingInterceptor {
    async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
        let started = Instant::now();
        let outcome = next.run().await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let client = cx.client().map(|c| c.id().to_string()).unwrap_or_default();
        match &outcome {
            Ok(reply) => {
                let reply = match reply {
                    Reply::None => "none",
                    Reply::Frame(_) => "frame",
                    Reply::Stream(_) => "stream",
                    Reply::Close(..) => "close",
                };
                tracing::info!(target: "gateway::access", event = cx.event(), %client, reply, elapsed_us, "handled");
            }
            Err(failure) => {
                tracing::warn!(target: "gateway::access", event = cx.event(), %client, error = %failure, elapsed_us, "failed");
            }
        }
        outcome
    }
}
