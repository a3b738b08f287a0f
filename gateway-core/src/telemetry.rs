//! The metrics every gateway records through the [`metrics`](https://docs.rs/metrics)
//! facade, and the helpers transports call to record theirs. Install any recorder
//! (`metrics-exporter-prometheus`, ...) to collect them; without one they cost an atomic
//! load each.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `gateway_connections` | gauge | `gateway` |
//! | `gateway_messages_received_total` | counter | `gateway`, `event` (`unknown` for unrouted frames) |
//! | `gateway_messages_sent_total` | counter | `gateway` |
//! | `gateway_messages_dropped_total` | counter | `gateway` (volatile frames dropped for a full queue) |
//! | `gateway_errors_total` | counter | `gateway`, `kind` |
//! | `gateway_handler_duration_seconds` | histogram | `gateway`, `event` |
//! | `gateway_redis_outbox_dropped_total` | counter | `prefix` (`ws-gateway-redis`) |
//!
//! The handles are registered when the app is built: install the recorder first.
//!
//! Error kinds: `bad_request` (malformed JSON, invalid frame or body), `unknown_event`,
//! `validation`, `forbidden`, `internal` (panics, serialization), `rate_limited`, `handler`
//! (anything a handler, guard or interceptor returned): the [`ErrorKind`] of the failure.

pub use metrics::{Counter, Gauge, Histogram};

use crate::exception::ErrorKind;

/// Open connections, per gateway.
///
/// ```
/// assert_eq!(ws_gateway_core::telemetry::CONNECTIONS, "gateway_connections");
/// ```
pub const CONNECTIONS: &str = "gateway_connections";
/// Messages received, per gateway and event.
///
/// ```
/// assert!(ws_gateway_core::telemetry::MESSAGES_RECEIVED.ends_with("_total"));
/// ```
pub const MESSAGES_RECEIVED: &str = "gateway_messages_received_total";
/// Frames written to clients, per gateway.
///
/// ```
/// assert!(ws_gateway_core::telemetry::MESSAGES_SENT.ends_with("_total"));
/// ```
pub const MESSAGES_SENT: &str = "gateway_messages_sent_total";
/// Volatile frames dropped because the client's outbound queue (or, over Socket.IO,
/// socketioxide's) was full, per gateway.
///
/// ```
/// assert_eq!(ws_gateway_core::telemetry::MESSAGES_DROPPED, "gateway_messages_dropped_total");
/// ```
pub const MESSAGES_DROPPED: &str = "gateway_messages_dropped_total";
/// Failures answered, per gateway and kind.
///
/// ```
/// assert_eq!(ws_gateway_core::telemetry::ERRORS, "gateway_errors_total");
/// ```
pub const ERRORS: &str = "gateway_errors_total";
/// Time from dispatch to outcome, per gateway and event.
///
/// ```
/// assert!(ws_gateway_core::telemetry::HANDLER_DURATION.ends_with("_seconds"));
/// ```
pub const HANDLER_DURATION: &str = "gateway_handler_duration_seconds";
/// Answers to acknowledgements the server asked for, per gateway and outcome: `answered`
/// (handed to the emit that asked), `ignored` (an unknown, repeated or late number).
///
/// ```
/// assert_eq!(ws_gateway_core::telemetry::ACKS, "gateway_acks_total");
/// ```
pub const ACKS: &str = "gateway_acks_total";
/// Sessions opened on a gateway with connection state recovery on, per gateway and outcome:
/// `fresh` (no session asked for), `recovered`, `refused` (one was asked for but could not be
/// recovered: unknown, expired, another identity's, or missed frames no longer kept).
///
/// ```
/// assert_eq!(ws_gateway_core::telemetry::SESSIONS, "gateway_sessions_total");
/// ```
pub const SESSIONS: &str = "gateway_sessions_total";

/// Messages the Redis adapter dropped from its outbox while Redis was unreachable, past its
/// bound in bytes or age, per channel prefix (recorded by `ws-gateway-redis`).
///
/// ```
/// assert!(ws_gateway_core::telemetry::REDIS_OUTBOX_DROPPED.ends_with("_total"));
/// ```
pub const REDIS_OUTBOX_DROPPED: &str = "gateway_redis_outbox_dropped_total";

/// The metrics of one gateway, registered once when the app is built so that the message
/// path only bumps atomics (install a recorder before building the app).
///
/// A transport counts its connections and written frames with it:
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[websocket_gateway(path = "/doc-metrics")]
/// struct Metered;
///
/// #[websocket_gateway]
/// impl Metered {}
///
/// let app = GatewayApp::new().gateway::<Metered>().build().unwrap();
/// let metrics = app.gateways()[0].metrics();
/// metrics.connections.increment(1.0);
/// metrics.frames_sent.increment(1);
/// metrics.connections.decrement(1.0);
/// ```
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// `gateway_connections`.
    pub connections: Gauge,
    /// `gateway_messages_sent_total`.
    pub frames_sent: Counter,
    /// `gateway_messages_dropped_total`: a transport counts the volatile frames it drops.
    pub messages_dropped: Counter,
    pub(crate) unknown_event: Counter,
    pub(crate) acks_answered: Counter,
    pub(crate) acks_ignored: Counter,
    pub(crate) sessions: [Counter; 3],
    errors: [Counter; ErrorKind::ALL.len()],
}

impl GatewayMetrics {
    pub(crate) fn new(gateway: &'static str) -> Self {
        Self {
            connections: metrics::gauge!(CONNECTIONS, "gateway" => gateway),
            frames_sent: metrics::counter!(MESSAGES_SENT, "gateway" => gateway),
            messages_dropped: metrics::counter!(MESSAGES_DROPPED, "gateway" => gateway),
            unknown_event: metrics::counter!(MESSAGES_RECEIVED, "gateway" => gateway, "event" => "unknown"),
            acks_answered: metrics::counter!(ACKS, "gateway" => gateway, "outcome" => "answered"),
            acks_ignored: metrics::counter!(ACKS, "gateway" => gateway, "outcome" => "ignored"),
            sessions: ["fresh", "recovered", "refused"].map(
                |outcome| metrics::counter!(SESSIONS, "gateway" => gateway, "outcome" => outcome),
            ),
            errors: ErrorKind::ALL.map(
                |kind| metrics::counter!(ERRORS, "gateway" => gateway, "kind" => kind.as_str()),
            ),
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].increment(1);
    }
}

/// The metrics of one event of a gateway.
#[derive(Clone, Debug)]
pub(crate) struct EventMetrics {
    pub(crate) received: Counter,
    pub(crate) duration: Histogram,
}

impl EventMetrics {
    pub(crate) fn new(gateway: &'static str, event: &'static str) -> Self {
        Self {
            received: metrics::counter!(MESSAGES_RECEIVED, "gateway" => gateway, "event" => event),
            duration: metrics::histogram!(HANDLER_DURATION, "gateway" => gateway, "event" => event),
        }
    }
}
