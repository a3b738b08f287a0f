//! [`GatewayRuntime`]: one built gateway, as a transport adapter drives it.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::client::{Client, ClientSink, Handshake, OutboundQueue};
use crate::dispatch::{Context, Dispatch, Outcome, Reply};
use crate::error::BuildError;
use crate::exception::WsException;
use crate::frame::{FrameError, IncomingFrame, exception_frame};
use crate::gateway::{GatewayHandlers, Handler, Hook};
use crate::inject::{BuildContext, Providers};
use crate::server::WsServer;
use crate::frame::Frame;

/// A built gateway: its instance, its handler table and its server handle.
///
/// Transport adapters (gateway-axum's router, your own) drive it: [`open`](Self::open) a
/// client, [`connect`](Self::connect) it, [`dispatch_text`](Self::dispatch_text) its
/// frames, [`disconnect`](Self::disconnect) it. Cheap to clone.
#[derive(Clone)]
pub struct GatewayRuntime {
    inner: Arc<dyn ErasedGateway>,
}

/// The part of a runtime that depends on the gateway's type.
trait ErasedGateway: Send + Sync {
    fn path(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn server(&self) -> &WsServer;
    fn providers(&self) -> &Providers;
    fn ready(&self) -> &watch::Receiver<bool>;
    fn method_of(&self, event: &str) -> Option<&'static str>;
    fn call(&self, event: &str, cx: &mut Context<'_>) -> Option<Dispatch>;
    fn hook(&self, kind: HookKind, cx: &Context<'_>) -> Option<Dispatch>;
}

#[derive(Clone, Copy, Debug)]
enum HookKind {
    AfterInit,
    Connection,
    Disconnect,
}

struct Typed<G: 'static> {
    gateway: Arc<G>,
    handlers: FxHashMap<&'static str, &'static Handler<G>>,
    server: WsServer,
    providers: Providers,
    ready: watch::Receiver<bool>,
}

impl<G: GatewayHandlers> ErasedGateway for Typed<G> {
    fn path(&self) -> &'static str {
        G::PATH
    }

    fn name(&self) -> &'static str {
        G::NAME
    }

    fn server(&self) -> &WsServer {
        &self.server
    }

    fn providers(&self) -> &Providers {
        &self.providers
    }

    fn ready(&self) -> &watch::Receiver<bool> {
        &self.ready
    }

    fn method_of(&self, event: &str) -> Option<&'static str> {
        self.handlers.get(event).map(|h| h.method)
    }

    fn call(&self, event: &str, cx: &mut Context<'_>) -> Option<Dispatch> {
        let handler = self.handlers.get(event)?;
        cx.event = handler.event;
        Some((handler.call)(&self.gateway, cx))
    }

    fn hook(&self, kind: HookKind, cx: &Context<'_>) -> Option<Dispatch> {
        let hooks = &G::HOOKS;
        let hook = match kind {
            HookKind::AfterInit => hooks.after_init.as_ref(),
            HookKind::Connection => hooks.handle_connection.as_ref(),
            HookKind::Disconnect => hooks.handle_disconnect.as_ref(),
        }?;
        Some((hook.call)(&self.gateway, cx))
    }
}

impl GatewayRuntime {
    /// Builds gateway `G` from the providers and runs its `#[after_init]` hook.
    ///
    /// # Errors
    ///
    /// See [`BuildError`].
    pub(crate) fn build<G: GatewayHandlers>(providers: &Providers) -> Result<Self, BuildError> {
        let server = WsServer::new(G::PATH);
        let cx = BuildContext {
            gateway: G::NAME,
            providers,
            server: &server,
        };
        let gateway = Arc::new(G::build(&cx)?);
        let mut handlers = FxHashMap::default();
        for handler in G::HANDLERS {
            (handler.verify)(&cx)?;
            if let Some(first) = handlers.insert(handler.event, handler) {
                return Err(BuildError::DuplicateEvent {
                    gateway: G::NAME,
                    event: handler.event,
                    first: first.method,
                    second: handler.method,
                });
            }
        }
        let hooks = &G::HOOKS;
        for hook in [&hooks.after_init, &hooks.handle_connection, &hooks.handle_disconnect]
            .into_iter()
            .flatten()
        {
            (hook.verify)(&cx)?;
        }
        let (ready_tx, ready) = watch::channel(hooks.after_init.is_none());
        let runtime = Self {
            inner: Arc::new(Typed {
                gateway,
                handlers,
                server,
                providers: providers.clone(),
                ready,
            }),
        };
        if let Some(hook) = &hooks.after_init {
            runtime.after_init(hook, ready_tx)?;
        }
        Ok(runtime)
    }

    fn after_init<G>(&self, hook: &Hook<G>, ready: watch::Sender<bool>) -> Result<(), BuildError> {
        let name = self.name();
        let dispatch = self.run_hook(HookKind::AfterInit, None);
        match dispatch {
            Some(Dispatch::Ready(Err(err))) => Err(BuildError::Init {
                gateway: name,
                message: err.to_string(),
            }),
            Some(Dispatch::Pending(future)) => {
                let handle = tokio::runtime::Handle::try_current()
                    .map_err(|_| BuildError::NoRuntime { gateway: name })?;
                let method = hook.method;
                handle.spawn(async move {
                    if let Err(err) = future.await {
                        tracing::error!(target: "gateway", gateway = name, method, "after_init failed: {err}");
                    }
                    let _ = ready.send(true);
                });
                Ok(())
            }
            Some(Dispatch::Ready(Ok(_))) | None => {
                let _ = ready.send(true);
                Ok(())
            }
        }
    }

    /// The gateway's path.
    pub fn path(&self) -> &'static str {
        self.inner.path()
    }

    /// The gateway's type name.
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The gateway's server handle.
    pub fn server(&self) -> &WsServer {
        self.inner.server()
    }

    /// Registers a new client with the gateway's server and returns it with the queue its
    /// connection task must drain.
    pub fn open(&self, handshake: Handshake, queue_capacity: usize) -> (Client, OutboundQueue) {
        let (sink, queue) = ClientSink::channel(queue_capacity);
        let client = Client::new(self.server().clone(), sink, handshake);
        self.server().add(client.clone());
        (client, queue)
    }

    /// Waits for `#[after_init]` to finish, then runs `#[handle_connection]`.
    ///
    /// # Errors
    ///
    /// The hook's error: the client is rejected and must be closed (then
    /// [`disconnect`](Self::disconnect)ed).
    pub async fn connect(&self, client: &Client) -> Result<(), WsException> {
        let mut ready = self.inner.ready().clone();
        // The sender lives until after_init is done; an error means it is done.
        let _ = ready.wait_for(|ready| *ready).await;
        match self.run_hook(HookKind::Connection, Some(client)) {
            Some(dispatch) => self.settle(dispatch).await.map(drop),
            None => Ok(()),
        }
    }

    /// Runs `#[handle_disconnect]`, then removes the client from the server and its rooms.
    /// Call it exactly once per opened client, however the connection ended.
    pub async fn disconnect(&self, client: &Client) {
        if let Some(dispatch) = self.run_hook(HookKind::Disconnect, Some(client)) {
            if let Err(err) = self.settle(dispatch).await {
                tracing::warn!(target: "gateway", gateway = self.name(), client = %client.id(), "handle_disconnect failed: {err}");
            }
        }
        self.server().remove(client.id());
    }

    fn run_hook(&self, kind: HookKind, client: Option<&Client>) -> Option<Dispatch> {
        let cx = Context {
            client,
            server: self.server(),
            providers: self.inner.providers(),
            event: "",
            data: None,
            id: None,
        };
        let name = self.name();
        std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.hook(kind, &cx)))
            .unwrap_or_else(|panic| {
                tracing::error!(target: "gateway", gateway = name, hook = ?kind, "hook panicked: {}", panic_message(&*panic));
                Some(Dispatch::reject(WsException::internal()))
            })
            .map(|d| self.guard_pending(d, "hook"))
    }

    async fn settle(&self, dispatch: Dispatch) -> Outcome {
        dispatch.outcome().await
    }

    /// Parses a text frame and dispatches it to its handler.
    ///
    /// A frame that cannot be routed (malformed JSON, no event, unknown event, a body that
    /// does not fit) comes back as `Dispatch::Ready(Err(..))` with a precise message; build
    /// the client's exception frame with [`exception_frame`](Self::exception_frame).
    pub fn dispatch_text(&self, client: &Client, text: &str) -> Dispatch {
        match IncomingFrame::parse(text) {
            Ok(frame) => self.dispatch(client, &frame.event, frame.data, frame.id),
            Err(err) => {
                tracing::debug!(target: "gateway::rejection", gateway = self.name(), client = %client.id(), "{err}");
                Dispatch::reject(err.into())
            }
        }
    }

    /// Dispatches one message, already split into event, data and id, to its handler.
    /// Adapters with their own framing (Socket.IO, MessagePack) call this directly.
    pub fn dispatch(
        &self,
        client: &Client,
        event: &str,
        data: Option<&RawValue>,
        id: Option<&RawValue>,
    ) -> Dispatch {
        let mut cx = Context {
            client: Some(client),
            server: self.server(),
            providers: self.inner.providers(),
            event: "",
            data,
            id,
        };
        let called = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(event, &mut cx)));
        match called {
            Ok(Some(dispatch)) => self.guard_pending(dispatch, event),
            Ok(None) => {
                tracing::debug!(target: "gateway::rejection", gateway = self.name(), client = %client.id(), event, "unknown event");
                Dispatch::reject(WsException::new(format!("Unknown event {event:?}")))
            }
            Err(panic) => {
                tracing::error!(target: "gateway", gateway = self.name(), event, method = self.inner.method_of(event), "handler panicked: {}", panic_message(&*panic));
                Dispatch::reject(WsException::internal())
            }
        }
    }

    /// Turns panics of a pending handler and of its reply stream into "Internal server
    /// error".
    fn guard_pending(&self, dispatch: Dispatch, what: &str) -> Dispatch {
        let name = self.name();
        let what = what.to_owned();
        match dispatch {
            Dispatch::Ready(outcome) => Dispatch::Ready(guard_stream(outcome, name, what)),
            Dispatch::Pending(future) => Dispatch::pending(async move {
                match AssertUnwindSafe(future).catch_unwind().await {
                    Ok(outcome) => guard_stream(outcome, name, what),
                    Err(panic) => {
                        tracing::error!(target: "gateway", gateway = name, event = what, "handler panicked: {}", panic_message(&*panic));
                        Err(WsException::internal())
                    }
                }
            }),
        }
    }

    /// The exception frame for an error that answers `text` (the frame the client sent,
    /// when there was one): NestJS's `exception` event, with `cause` and `id` taken from
    /// the request when it parses.
    pub fn exception_frame(&self, text: Option<&str>, err: &WsException) -> Frame {
        let request = text.and_then(|t| IncomingFrame::parse(t).ok());
        exception_frame(err, request.as_ref())
    }

    /// The exception frame for a binary frame sent to the JSON protocol.
    pub fn binary_rejected(&self) -> Frame {
        exception_frame(&FrameError::Binary.into(), None)
    }
}

fn guard_stream(outcome: Outcome, gateway: &'static str, what: String) -> Outcome {
    match outcome {
        Ok(Reply::Stream(stream)) => Ok(Reply::Stream(
            AssertUnwindSafe(stream)
                .catch_unwind()
                .map(move |item| {
                    item.unwrap_or_else(|panic| {
                        tracing::error!(target: "gateway", gateway, event = what, "reply stream panicked: {}", panic_message(&*panic));
                        Err(WsException::internal())
                    })
                })
                .boxed(),
        )),
        other => other,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

impl fmt::Debug for GatewayRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayRuntime")
            .field("path", &self.path())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
