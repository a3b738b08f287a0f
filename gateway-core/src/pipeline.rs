//! The request pipeline, in one place: guards → interceptors → pipes and the handler →
//! interceptors → exception filters. Every transport's requests go through
//! [`GatewayRuntime::handle`]; nothing else calls a handler, so no transport can skip or
//! reorder a stage.
//!
//! Pipes run inside the handler's generated shim, as each body argument is extracted
//! (their types are only known there); everything around it runs here.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use futures_util::{FutureExt, StreamExt};
use tracing::Instrument;

use crate::client::Client;
use crate::dispatch::{Context, Dispatch, Outcome, Reply};
use crate::exception::{ErrorKind, WsException};
use crate::failure::Failure;
use crate::filter::{Caught, FilterContext};
use crate::gateway::GatewayHandlers;
use crate::guard::FORBIDDEN;
use crate::interceptor::Next;
use crate::layers::Layers;
use crate::request::Request;
use crate::runtime::{GatewayRuntime, Route, Shared, Typed};
use crate::transport::{Answer, Handled};

impl GatewayRuntime {
    /// Runs one request through the pipeline and says what the client receives: guards,
    /// interceptors, pipes, the handler, then the exception filters for any failure
    /// (including an unknown event or a body that does not fit). Transports call it for
    /// every request they decode.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::Request;
    /// use ws_gateway_core::transport::Handshake;
    /// use serde_json::value::RawValue;
    ///
    /// #[websocket_gateway(path = "/math")]
    /// struct Math;
    ///
    /// #[websocket_gateway]
    /// impl Math {
    ///     #[subscribe("double")]
    ///     fn double(&self, n: u32) -> u32 {
    ///         n * 2
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<Math>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    ///
    /// // E.g. decoded from a MessagePack or Socket.IO packet:
    /// let data: &RawValue = serde_json::from_str("21").unwrap();
    /// let id: &RawValue = serde_json::from_str(r#""req-1""#).unwrap();
    /// let answer = gw.handle(&client, &Request::new("double").with_data(data).with_id(id)).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"double","data":42,"id":"req-1"}"#);
    ///
    /// let answer = gw.handle(&client, &Request::new("triple")).answer().await;
    /// assert!(answer.frame().unwrap().as_str().contains(r#""message":"Unknown event \"triple\"""#));
    /// # }
    /// ```
    pub fn handle(&self, client: &Client, request: &Request<'_>) -> Handled {
        self.erased().handle(client, request)
    }

    /// Parses a text frame of the JSON protocol and [`handle`](Self::handle)s it; a frame
    /// that is no request is answered with its precise error. What the JSON transport does
    /// with each text frame, handy in tests.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::prelude::*;
    /// use ws_gateway_core::transport::Handshake;
    ///
    /// #[websocket_gateway(path = "/chat")]
    /// struct Chat;
    ///
    /// #[websocket_gateway]
    /// impl Chat {
    ///     #[subscribe("echo")]
    ///     async fn echo(&self, data: serde_json::Value) -> serde_json::Value {
    ///         data
    ///     }
    /// }
    ///
    /// let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    ///
    /// let answer = gw.handle_json(&client, r#"{"event":"echo","data":1}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"echo","data":1}"#);
    ///
    /// let answer = gw.handle_json(&client, r#"{"data":1}"#).answer().await;
    /// assert!(answer.frame().unwrap().as_str().contains(r#"Invalid frame: missing \"event\" field"#));
    /// # }
    /// ```
    pub fn handle_json(&self, client: &Client, text: &str) -> Handled {
        match crate::frame::parse(text) {
            Ok(request) => self.handle(client, &request),
            Err(err) => {
                tracing::debug!(target: "gateway::rejection", gateway = self.name(), client = %client.id(), "{err}");
                Handled::Ready(self.reject(client, None, err.into()))
            }
        }
    }

    /// What the client receives for a message that never reached a handler: one that did
    /// not decode, or broke a limit. `request` is the request it carried, when it
    /// decoded. The exception filters decide, as for a failed handler.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use ws_gateway_core::transport::Handshake;
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.reject(&client, None, WsException::new("Binary frames are not supported"));
    /// assert_eq!(
    ///     answer.frame().unwrap().as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Binary frames are not supported"}}"#
    /// );
    /// ```
    pub fn reject(
        &self,
        client: &Client,
        request: Option<&Request<'_>>,
        err: WsException,
    ) -> Answer {
        self.catch(client, request, err.into()).into()
    }

    /// What the exception filters make of a failure that answers `request`: the filters of
    /// the handler's scopes, closest first, then NestJS's default `exception` frame.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ws_gateway_core::prelude::*;
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat {}
    /// # let app = GatewayApp::new().gateway::<Chat>().build().unwrap();
    /// use ws_gateway_core::transport::Handshake;
    ///
    /// let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    ///
    /// // Without exception filters: NestJS's `exception` frame, with the request's pattern and id.
    /// let request = ws_gateway_core::frame::parse(r#"{"event":"join","data":"a","id":7}"#).unwrap();
    /// let caught = gw.catch(&client, Some(&request), WsException::new("Room is full").into());
    /// assert_eq!(
    ///     caught.frame_ref().unwrap().as_str(),
    ///     r#"{"event":"exception","data":{"status":"error","message":"Room is full","cause":{"pattern":"join","data":"a"}},"id":7}"#
    /// );
    /// assert!(caught.close_request().is_none()); // the socket stays open
    /// ```
    pub fn catch(
        &self,
        client: &Client,
        request: Option<&Request<'_>>,
        failure: Failure,
    ) -> Caught {
        self.erased().catch(client, request, failure)
    }
}

impl<G: GatewayHandlers> Typed<G> {
    /// [`GatewayRuntime::handle`] for gateway `G`.
    pub(crate) fn handle(&self, client: &Client, request: &Request<'_>) -> Handled {
        let shared = &self.shared;
        let Some(route) = self.routes.get(&*request.event) else {
            shared.metrics.unknown_event.increment(1);
            tracing::debug!(target: "gateway::rejection", gateway = G::NAME, client = %client.id(), event = &*request.event, "unknown event");
            let err = WsException::of_kind(
                ErrorKind::UnknownEvent,
                format!("Unknown event {:?}", request.event),
            );
            let caught = catch(shared, &shared.outer, client, Some(request), err.into());
            return Handled::Ready(caught.into());
        };
        route.metrics.received.increment(1);
        let event = route.handler.event;
        let span = tracing::debug_span!(target: "gateway", "message", gateway = shared.path, event, client = %client.id());
        let started = Instant::now();
        if route.layers.is_direct() {
            // The fast path: extraction, pipes and a sync handler run right here, on the
            // request as the transport decoded it.
            let cx = Context {
                client: Some(client),
                server: &shared.server,
                providers: &shared.providers,
                event,
                data: request.data(),
                args: request.args(),
                attachments: request.attachments(),
                id: request.id(),
                route: request.route.as_ref(),
                acked: AtomicBool::new(false),
            };
            let called = span.in_scope(|| {
                std::panic::catch_unwind(AssertUnwindSafe(|| {
                    (route.handler.call)(&self.gateway, &cx)
                }))
            });
            // The arguments were extracted by now: an `Ack` among them answers instead.
            let acked = cx.acked();
            match called {
                Ok(Dispatch::Ready(outcome)) => {
                    route.metrics.duration.record(started.elapsed());
                    let outcome = unless_acked(outcome, acked);
                    Handled::Ready(settle(shared, route, client, request, outcome))
                }
                Ok(Dispatch::Pending(future)) => {
                    let shared = Arc::clone(shared);
                    let route = Arc::clone(route);
                    let client = client.clone();
                    let request = request.clone().into_owned();
                    Handled::Pending(Box::pin(
                        async move {
                            let outcome = unwound(future, G::NAME, event).await;
                            route.metrics.duration.record(started.elapsed());
                            let outcome = unless_acked(outcome, acked);
                            settle(&shared, &route, &client, &request, outcome)
                        }
                        .instrument(span),
                    ))
                }
                Err(panic) => {
                    tracing::error!(target: "gateway", gateway = G::NAME, event, method = route.handler.method, "handler panicked: {}", panic_message(&*panic));
                    let outcome = Err(WsException::internal().into());
                    Handled::Ready(settle(shared, route, client, request, outcome))
                }
            }
        } else {
            // Guards and interceptors may wait: the request is copied so the context can
            // outlive the message.
            let shared = Arc::clone(shared);
            let route = Arc::clone(route);
            let gateway = Arc::clone(&self.gateway);
            let client = client.clone();
            let request = request.clone().into_owned();
            Handled::Pending(Box::pin(
                async move {
                    let cx = Context {
                        client: Some(&client),
                        server: &shared.server,
                        providers: &shared.providers,
                        event,
                        data: request.data(),
                        args: request.args(),
                        attachments: request.attachments(),
                        id: request.id(),
                        route: request.route.as_ref(),
                        acked: AtomicBool::new(false),
                    };
                    let outcome = unwound(around(&route, &gateway, &cx), G::NAME, event).await;
                    route.metrics.duration.record(started.elapsed());
                    let outcome = unless_acked(outcome, cx.acked());
                    settle(&shared, &route, &client, &request, outcome)
                }
                .instrument(span),
            ))
        }
    }

    /// [`GatewayRuntime::catch`] for gateway `G`.
    pub(crate) fn catch(
        &self,
        client: &Client,
        request: Option<&Request<'_>>,
        failure: Failure,
    ) -> Caught {
        let layers = request
            .and_then(|request| self.routes.get(&*request.event))
            .map_or(&self.shared.outer, |route| &route.layers);
        catch(&self.shared, layers, client, request, failure)
    }
}

/// A handler that took an [`Ack`](crate::Ack) answers through it: its return value is not
/// sent (its failures are, through the filters).
fn unless_acked(outcome: Outcome, acked: bool) -> Outcome {
    match outcome {
        Ok(_) if acked => Ok(Reply::None),
        outcome => outcome,
    }
}

/// Guards, then interceptors around the handler (whose shim runs the pipes).
async fn around<G: GatewayHandlers>(
    route: &Route<G>,
    gateway: &Arc<G>,
    cx: &Context<'_>,
) -> Outcome {
    for guard in &route.layers.guards {
        match guard.0.can_activate(cx).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(target: "gateway::rejection", event = cx.event, "guard denied the message");
                return Err(WsException::of_kind(ErrorKind::Forbidden, FORBIDDEN).into());
            }
            Err(err) => return Err(err.into()),
        }
    }
    let call = |cx: &Context<'_>| (route.handler.call)(gateway, cx);
    Next {
        rest: &route.layers.interceptors,
        cx,
        handler: &call,
    }
    .run()
    .await
}

/// What the client receives for a handler's outcome: its reply, or what the exception
/// filters make of its failure. A reply stream's items are settled as they come.
fn settle<G: GatewayHandlers>(
    shared: &Arc<Shared>,
    route: &Arc<Route<G>>,
    client: &Client,
    request: &Request<'_>,
    outcome: Outcome,
) -> Answer {
    match outcome {
        Ok(Reply::None) => Answer::Nothing,
        Ok(Reply::Frame(frame)) => Answer::Frame(frame),
        Ok(Reply::Close(frame, close)) => Answer::Close(frame, close),
        Ok(Reply::Stream(stream)) => {
            let shared = Arc::clone(shared);
            let route = Arc::clone(route);
            let client = client.clone();
            let request = request.clone().into_owned();
            let event = route.handler.event;
            Answer::Stream(
                AssertUnwindSafe(stream)
                    .catch_unwind()
                    .map(move |item| {
                        let item = item.unwrap_or_else(|panic| {
                            tracing::error!(target: "gateway", gateway = shared.path, event, "reply stream panicked: {}", panic_message(&*panic));
                            Err(WsException::internal().into())
                        });
                        match item {
                            Ok(Some(frame)) => Answer::Frame(frame),
                            Ok(None) => Answer::Nothing,
                            Err(failure) => {
                                catch(&shared, &route.layers, &client, Some(&request), failure)
                                    .into()
                            }
                        }
                    })
                    .boxed(),
            )
        }
        Err(failure) => catch(shared, &route.layers, client, Some(request), failure).into(),
    }
}

/// The exception filters of `layers`, closest scope first, then NestJS's default
/// `exception` frame. A panicking filter answers "Internal server error".
fn catch(
    shared: &Shared,
    layers: &Layers,
    client: &Client,
    request: Option<&Request<'_>>,
    failure: Failure,
) -> Caught {
    shared.metrics.error(failure.kind());
    let cx = FilterContext { client, request };
    for filter in &layers.filters {
        let caught =
            std::panic::catch_unwind(AssertUnwindSafe(|| filter.0.try_catch(&failure, &cx)));
        match caught {
            Ok(Some(caught)) => return caught,
            Ok(None) => {}
            Err(panic) => {
                tracing::error!(target: "gateway", gateway = shared.path, "exception filter panicked: {}", panic_message(&*panic));
                return Caught::exception(&cx, &WsException::internal());
            }
        }
    }
    Caught::default_for(&cx, failure)
}

/// Turns panics of a pending hook and of its reply stream into "Internal server error".
pub(crate) fn guard_panics(
    dispatch: Dispatch,
    gateway: &'static str,
    what: &'static str,
) -> Dispatch {
    match dispatch {
        Dispatch::Ready(outcome) => Dispatch::Ready(outcome),
        Dispatch::Pending(future) => {
            Dispatch::pending(async move { unwound(future, gateway, what).await })
        }
    }
}

/// Awaits a handler's (or hook's) future: a panic in it becomes "Internal server error"
/// and a `tracing` error.
async fn unwound(
    future: impl Future<Output = Outcome>,
    gateway: &'static str,
    what: &'static str,
) -> Outcome {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            tracing::error!(target: "gateway", gateway, event = what, "handler panicked: {}", panic_message(&*panic));
            Err(WsException::internal().into())
        }
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}
