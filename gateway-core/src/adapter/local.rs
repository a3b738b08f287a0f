//! [`LocalServer`]: what an adapter holds of each gateway, to apply remote operations.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::{ClientInfo, Operation, Selection, SessionAnswer, SessionClaim, Stamp};
use crate::ack::AckStream;
use crate::frame::Frame;
use crate::server::{WeakServer, WsServer};

/// One gateway of this instance, as its adapter sees it: where operations from other
/// instances are applied to the local clients only (nothing is published again).
///
/// It does not keep the app alive: once the app is dropped, [`apply`](Self::apply) and
/// [`clients`](Self::clients) return `None`.
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use ws_gateway_core::adapter::{Adapter, LocalServer, Message};
///
/// /// Remembers the gateways, to apply what arrives from elsewhere.
/// #[derive(Default)]
/// struct Remembering(Mutex<Vec<LocalServer>>);
///
/// impl Adapter for Remembering {
///     fn attach(&self, server: LocalServer) {
///         self.0.lock().unwrap().push(server);
///     }
///
///     fn publish(&self, _message: &Message<'_>) {}
/// }
/// ```
#[derive(Clone)]
pub struct LocalServer {
    path: &'static str,
    server: WeakServer,
}

impl LocalServer {
    pub(crate) fn new(server: &WsServer) -> Self {
        Self {
            path: server.path(),
            server: server.downgrade(),
        }
    }

    /// The gateway's path.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::{Adapter, LocalServer, Message};
    /// # use ws_gateway_core::prelude::*;
    /// # use std::sync::{Arc, Mutex};
    /// #[derive(Clone, Default)]
    /// struct Keep(Arc<Mutex<Vec<LocalServer>>>);
    ///
    /// impl Adapter for Keep {
    ///     fn attach(&self, server: LocalServer) {
    ///         self.0.lock().unwrap().push(server);
    ///     }
    ///     fn publish(&self, _: &Message<'_>) {}
    /// }
    ///
    /// #[websocket_gateway(path = "/doc-local-path")]
    /// struct Here;
    ///
    /// #[websocket_gateway]
    /// impl Here {}
    ///
    /// let keep = Keep::default();
    /// let app = GatewayApp::new().adapter(keep.clone()).gateway::<Here>().build().unwrap();
    /// assert_eq!(keep.0.lock().unwrap()[0].path(), "/doc-local-path");
    /// ```
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Applies an operation that another instance published to the matching clients of
    /// this one. Returns how many clients it applied to, or `None` once the app is gone.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::{Adapter, LocalServer, Message, Operation, Selection};
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::{Frame, Handshake};
    /// # use std::sync::{Arc, Mutex};
    /// #[derive(Clone, Default)]
    /// struct Keep(Arc<Mutex<Vec<LocalServer>>>);
    ///
    /// impl Adapter for Keep {
    ///     fn attach(&self, server: LocalServer) {
    ///         self.0.lock().unwrap().push(server);
    ///     }
    ///     fn publish(&self, _: &Message<'_>) {}
    /// }
    ///
    /// #[websocket_gateway(path = "/doc-local-apply")]
    /// struct Here;
    ///
    /// #[websocket_gateway]
    /// impl Here {}
    ///
    /// let keep = Keep::default();
    /// let app = GatewayApp::new().adapter(keep.clone()).gateway::<Here>().build().unwrap();
    /// let (client, mut queue) = app.gateways()[0].open(Handshake::default(), 8);
    /// client.join("room").unwrap();
    ///
    /// // As if another instance had sent to "room":
    /// let mut selection = Selection::default();
    /// selection.rooms.push("room".into());
    /// let op = Operation::Emit(Frame::event("hi", &1).unwrap());
    /// let local = keep.0.lock().unwrap()[0].clone();
    /// assert_eq!(local.apply(&selection, &op), Some(1));
    /// assert!(queue.try_recv().is_some());
    ///
    /// let clients = local.clients(&selection).unwrap();
    /// assert_eq!(clients[0].id, client.id());
    /// assert_eq!(clients[0].rooms, ["room"]);
    /// ```
    pub fn apply(&self, selection: &Selection, op: &Operation) -> Option<usize> {
        self.apply_stamped(selection, op, None)
    }

    /// [`apply`](Self::apply) of an operation that came with a [`Stamp`]
    /// ([`Message::stamp`](super::Message::stamp)): with connection state recovery on, the
    /// frame is recorded with it.
    ///
    /// ```
    /// # use ws_gateway_core::adapter::{Adapter, LocalServer, Message, Operation, Selection, Stamp};
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::{Frame, Handshake};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Clone, Default)]
    /// # struct Keep(Arc<Mutex<Vec<LocalServer>>>);
    /// # impl Adapter for Keep {
    /// #     fn attach(&self, server: LocalServer) { self.0.lock().unwrap().push(server); }
    /// #     fn publish(&self, _: &Message<'_>) {}
    /// # }
    /// # #[websocket_gateway(path = "/doc-local-stamped")] struct Here;
    /// # #[websocket_gateway] impl Here {}
    /// # let keep = Keep::default();
    /// # let app = GatewayApp::new().adapter(keep.clone()).gateway::<Here>().build().unwrap();
    /// # let local = keep.0.lock().unwrap()[0].clone();
    /// let (_client, mut queue) = app.gateways()[0].open(Handshake::default(), 8);
    /// let op = Operation::Emit(Frame::event("hi", &1).unwrap());
    /// assert_eq!(local.apply_stamped(&Selection::default(), &op, Some(Stamp::new(9, 1))), Some(1));
    /// assert!(queue.try_recv().is_some());
    /// ```
    pub fn apply_stamped(
        &self,
        selection: &Selection,
        op: &Operation,
        stamp: Option<Stamp>,
    ) -> Option<usize> {
        let server = self.server.upgrade()?;
        Some(server.apply_remote(selection, op, stamp))
    }

    /// Connection state recovery across instances, on the instance that may hold a
    /// session: answers another instance's
    /// [`claim_session`](super::Adapter::claim_session). When this gateway holds the
    /// session `claim` names, its client dropped (a connection still open for it is closed
    /// first), and the claim's handshake authenticates as the session's owner, the session
    /// is reserved for the claimer (half a minute) and its client's id and rooms offered;
    /// [`SessionAnswer::Busy`] when its client is still connected here (closed, it did not
    /// end in time) or an earlier attempt is taking it in here; else, and once the app is
    /// gone, [`SessionAnswer::NotHere`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::adapter::{Adapter, LocalServer, Message, SessionAnswer, SessionClaim};
    /// # use ws_gateway_core::prelude::*;
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Clone, Default)]
    /// # struct Keep(Arc<Mutex<Vec<LocalServer>>>);
    /// # impl Adapter for Keep {
    /// #     fn attach(&self, server: LocalServer) { self.0.lock().unwrap().push(server); }
    /// #     fn publish(&self, _: &Message<'_>) {}
    /// # }
    /// # #[websocket_gateway(path = "/doc-local-offer")] struct Here;
    /// # #[websocket_gateway] impl Here {}
    /// # let keep = Keep::default();
    /// # let app = GatewayApp::new().adapter(keep.clone()).gateway::<Here>().build().unwrap();
    /// # let local = keep.0.lock().unwrap()[0].clone();
    /// // Without recovery on, or for a session it never issued, a gateway holds nothing.
    /// let claim = SessionClaim::new("0123", None, "/doc-local-offer?pid=0123".into());
    /// assert!(matches!(local.offer_session(&claim).await, SessionAnswer::NotHere));
    /// # }
    /// ```
    pub async fn offer_session(&self, claim: &SessionClaim) -> SessionAnswer {
        let Some(server) = self.server.upgrade() else {
            return SessionAnswer::NotHere;
        };
        let Some(recorder) = server.recorder().cloned() else {
            return SessionAnswer::NotHere;
        };
        recorder.offer(claim).await
    }

    /// Then, when the claimer took the client in: hands over the frames its client missed,
    /// up to what the claimer had received from each instance (`seen`): waits (twenty seconds
    /// at most) until this instance has received as much, and forgets the session. `None`
    /// when this gateway does not hold the session reserved for the offer `token` (its
    /// [`SessionOffer::token`](super::SessionOffer::token)): a later attempt of the client's
    /// took the reservation over, or it expired. (See [`offer_session`](Self::offer_session).)
    pub async fn hand_over_session(
        &self,
        claim: &SessionClaim,
        token: u64,
        seen: &[Stamp],
    ) -> Option<Vec<Frame>> {
        let server = self.server.upgrade()?;
        let recorder = server.recorder()?.clone();
        recorder.hand_over(claim, token, seen).await
    }

    /// Asks the matching clients of this instance for an acknowledgement of `frame` (an
    /// emit another instance made with [`Adapter::emit_with_ack`](super::Adapter::emit_with_ack)),
    /// under a number of this instance, and streams their answers for `timeout`: the
    /// stream's [`sent`](AckStream::sent) is what to report back, its items what to forward.
    /// `None` once the app is gone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::adapter::{Adapter, LocalServer, Message, Selection};
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::{Frame, Handshake};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Clone, Default)]
    /// # struct Keep(Arc<Mutex<Vec<LocalServer>>>);
    /// # impl Adapter for Keep {
    /// #     fn attach(&self, server: LocalServer) { self.0.lock().unwrap().push(server); }
    /// #     fn publish(&self, _: &Message<'_>) {}
    /// # }
    /// # #[websocket_gateway(path = "/doc-local-ask")] struct Here;
    /// # #[websocket_gateway] impl Here {}
    /// # let keep = Keep::default();
    /// # let app = GatewayApp::new().adapter(keep.clone()).gateway::<Here>().build().unwrap();
    /// # let local = keep.0.lock().unwrap()[0].clone();
    /// use std::time::Duration;
    ///
    /// let (_client, _queue) = app.gateways()[0].open(Handshake::default(), 8);
    /// let frame = Frame::event("question", &"tea?").unwrap();
    /// let answers = local.emit_with_ack(&Selection::default(), &frame, Duration::from_secs(1)).unwrap();
    /// assert_eq!(answers.sent(), 1); // to report back to the instance that asked
    /// # }
    /// ```
    pub fn emit_with_ack(
        &self,
        selection: &Selection,
        frame: &Frame,
        timeout: Duration,
    ) -> Option<AckStream<Box<RawValue>>> {
        let server = self.server.upgrade()?;
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::unbounded_channel();
        let (sent, _) = server.ask_local(selection, frame, deadline, &tx);
        Some(AckStream::new(rx, sent, timeout, deadline, false))
    }

    /// The matching clients of this instance, to answer another instance's
    /// [`fetch_clients`](super::Adapter::fetch_clients); `None` once the app is gone.
    /// (See [`apply`](Self::apply) for an example.)
    pub fn clients(&self, selection: &Selection) -> Option<Vec<ClientInfo>> {
        Some(self.server.upgrade()?.local_clients(selection))
    }
}

impl fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
