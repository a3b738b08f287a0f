//! What a handler call produces: [`Context`] in, [`Dispatch`] out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::BoxStream;
use serde_json::value::RawValue;

use crate::client::Client;
use crate::exception::{CloseRequest, WsException};
use crate::failure::Failure;
use crate::frame::Frame;
use crate::inject::Providers;
use crate::reply::ReplyTo;
use crate::request::RouteRef;
use crate::server::WsServer;

/// Everything a handler's arguments are extracted from: the client, the message, the
/// gateway's server handle and the app's providers.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
///
/// /// Lets through only messages whose `data` is a number, and logs who sent them.
/// struct NumbersOnly;
///
/// impl Guard for NumbersOnly {
///     async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
///         let client = cx.client().map(|c| c.id().to_string()).unwrap_or_default();
///         println!("{client} sent {} to {}", cx.event(), cx.server().path());
///         Ok(cx.data().is_some_and(|raw| raw.get().parse::<f64>().is_ok()))
///     }
/// }
///
/// #[websocket_gateway(path = "/chat")]
/// struct Chat;
///
/// #[websocket_gateway]
/// impl Chat {
///     #[subscribe("n")]
///     fn n(&self, n: serde_json::Value) -> serde_json::Value {
///         n
///     }
/// }
///
/// let app = GatewayApp::new().use_global_guard(NumbersOnly).gateway::<Chat>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
/// let answer = gw.handle_json(&client, r#"{"event":"n","data":1.5}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"n","data":1.5}"#);
/// let answer = gw.handle_json(&client, r#"{"event":"n","data":"x"}"#).answer().await;
/// assert!(answer.frame().unwrap().as_str().contains(r#""message":"Forbidden resource""#));
/// # }
/// ```
pub struct Context<'a> {
    pub(crate) client: Option<&'a Client>,
    pub(crate) server: &'a WsServer,
    pub(crate) providers: &'a Providers,
    pub(crate) event: &'static str,
    pub(crate) data: Option<&'a RawValue>,
    /// Every argument, when the transport has several (Socket.IO).
    pub(crate) args: Option<&'a RawValue>,
    /// The binary attachments `data` and `args` refer to.
    pub(crate) attachments: &'a [bytes::Bytes],
    pub(crate) id: Option<&'a RawValue>,
    /// The transport's route of the request, for an [`Ack`](crate::Ack).
    pub(crate) route: Option<&'a RouteRef<'a>>,
    /// Set when an [`Ack`](crate::Ack) was extracted: the handler answers through it, and
    /// its return value is not sent.
    pub(crate) acked: AtomicBool,
}

impl<'a> Context<'a> {
    /// The client that sent the message, or whose connection a hook is about; `None` in
    /// `#[after_init]`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Answers every message with the id of its sender.
    /// struct Who;
    ///
    /// impl Interceptor for Who {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, &cx.client().map(|c| c.id()))
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(Who).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping"}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), format!(r#"{{"event":"ping","data":"{}"}}"#, client.id()));
    /// # }
    /// ```
    pub fn client(&self) -> Option<&'a Client> {
        self.client
    }

    /// The gateway's server handle.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Tells everyone else what the sender did.
    /// struct Echo;
    ///
    /// impl Interceptor for Echo {
    ///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
    ///         let except = cx.client().map(|c| c.id());
    ///         let everyone = cx.server().broadcast();
    ///         let others = match except {
    ///             Some(id) => everyone.except(id),
    ///             None => everyone,
    ///         };
    ///         others.emit("activity", cx.event()).ok();
    ///         next.run().await
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(Echo).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// let (alice, mut alice_queue) = gw.open(Handshake::default(), 8);
    /// let (bob, mut bob_queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&alice, r#"{"event":"ping"}"#).answer().await;
    /// assert!(answer.frame().is_none()); // `ping` returns nothing
    /// assert!(bob_queue.try_recv().is_some());
    /// assert!(alice_queue.try_recv().is_none());
    /// # }
    /// ```
    pub fn server(&self) -> &'a WsServer {
        self.server
    }

    /// The app's providers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// struct Banned(Vec<&'static str>);
    ///
    /// /// Denies events listed by the provided `Banned`.
    /// struct NotBanned;
    ///
    /// impl Guard for NotBanned {
    ///     async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
    ///         let banned = cx.providers().get::<Banned>();
    ///         Ok(!banned.is_some_and(|b| b.0.contains(&cx.event())))
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// let app = GatewayApp::new()
    ///     .provide(Banned(vec!["ping"]))
    ///     .use_global_guard(NotBanned)
    ///     .gateway::<Chat>()
    ///     .build()
    ///     .unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping"}"#).answer().await;
    /// assert!(answer.frame().unwrap().as_str().contains(r#""message":"Forbidden resource""#));
    /// # }
    /// ```
    pub fn providers(&self) -> &'a Providers {
        self.providers
    }

    /// The event being handled; empty in lifecycle hooks.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Answers every message with its event name.
    /// struct WhichEvent;
    ///
    /// impl Interceptor for WhichEvent {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, cx.event())
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(WhichEvent).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping"}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":"ping"}"#);
    /// # }
    /// ```
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// The message's `data`, as raw JSON; `None` when absent or `null`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Answers every message with the raw JSON of its data.
    /// struct RawData;
    ///
    /// impl Interceptor for RawData {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, &cx.data().map(|raw| raw.get()))
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(RawData).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","data":[1, 2]}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":"[1, 2]"}"#);
    /// # }
    /// ```
    pub fn data(&self) -> Option<&'a RawValue> {
        self.data
    }

    /// Every argument of the message, as one JSON array: Socket.IO's event arguments, or
    /// over plain WebSockets `[data]` (`[]` without data). Byte strings are placeholders
    /// for the [`attachments`](Self::attachments); [`Args`](crate::Args) and
    /// [`RawArgs`](crate::RawArgs) read them.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Answers every message with the JSON text of its arguments.
    /// struct RawArgs;
    ///
    /// impl Interceptor for RawArgs {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, cx.args().get())
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(RawArgs).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","data":{"a":1}}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":"[{\"a\":1}]"}"#);
    /// # }
    /// ```
    pub fn args(&self) -> std::borrow::Cow<'a, RawValue> {
        use std::borrow::Cow;
        if let Some(args) = self.args {
            return Cow::Borrowed(args);
        }
        let text = match self.data {
            Some(data) => format!("[{}]", data.get()),
            None => "[]".to_owned(),
        };
        // `[` + JSON + `]` is JSON: the fallback is never taken.
        Cow::Owned(RawValue::from_string(text).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The binary attachments of the message (Socket.IO), which placeholders in
    /// [`data`](Self::data) and [`args`](Self::args) refer to: empty over plain WebSockets.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// struct Count;
    ///
    /// impl Interceptor for Count {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, &cx.attachments().len())
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(Count).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","data":[1]}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":0}"#);
    /// # }
    /// ```
    pub fn attachments(&self) -> &'a [bytes::Bytes] {
        self.attachments
    }

    /// The message's `id`, as raw JSON; `None` when absent or `null`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Answers every message with the raw JSON of its id.
    /// struct RawId;
    ///
    /// impl Interceptor for RawId {
    ///     async fn intercept(&self, cx: &Context<'_>, _next: Next<'_>) -> Outcome {
    ///         Reply::data(cx, &cx.id().map(|raw| raw.get()))
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(RawId).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","id":7}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":"7","id":7}"#);
    /// # }
    /// ```
    pub fn id(&self) -> Option<&'a RawValue> {
        self.id
    }

    /// Whether an [`Ack`](crate::Ack) was taken: the handler's return value is then not sent.
    pub(crate) fn acked(&self) -> bool {
        self.acked.load(Ordering::Relaxed)
    }

    /// Where replies to this message go: its event and id.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// /// Replies twice: an acknowledgement under the request's event and id, then the result.
    /// struct Ack;
    ///
    /// impl Interceptor for Ack {
    ///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
    ///         let ack = cx.reply_to().encode("ack").map_err(|_| WsException::internal())?;
    ///         if let (Some(client), Some(ack)) = (cx.client(), ack) {
    ///             client.send_frame(ack).ok();
    ///         }
    ///         next.run().await
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(Ack).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// use ws_gateway_core::transport::Outbound;
    ///
    /// let (client, mut queue) = gw.open(Handshake::default(), 8);
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","id":3}"#).answer().await;
    /// assert!(answer.frame().is_none()); // `ping` itself replies nothing
    /// let Some(Outbound::Frame(ack)) = queue.try_recv() else { panic!("no ack") };
    /// assert_eq!(ack.as_str(), r#"{"event":"ping","data":"ack","id":3}"#);
    /// # }
    /// ```
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            event: self.event,
            id: self.id.map(ToOwned::to_owned),
        }
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("client", &self.client.map(Client::id))
            .field("event", &self.event)
            .field("data", &self.data)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a handled message sends back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures_util::StreamExt;
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::Handshake;
/// use ws_gateway_core::transport::Answer;
///
/// /// Answers `"ok"` for handlers that reply nothing; other replies pass through.
/// struct Ack;
///
/// impl Interceptor for Ack {
///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
///         match next.run().await? {
///             Reply::None => Reply::data(cx, "ok"),
///             reply => Ok(reply),
///         }
///     }
/// }
///
/// #[websocket_gateway(path = "/count")]
/// struct Count;
///
/// #[websocket_gateway]
/// impl Count {
///     #[subscribe("to")]
///     fn to(&self, n: u8) -> impl futures_util::Stream<Item = WsResponse<u8>> + use<> {
///         futures_util::stream::iter((1..=n).map(|i| WsResponse::new("tick", i)))
///     }
///
///     #[subscribe("silent")]
///     fn silent(&self) {}
/// }
///
/// let app = GatewayApp::new().use_global_interceptor(Ack).gateway::<Count>().build().unwrap();
/// let gw = &app.gateways()[0];
/// let (client, _queue) = gw.open(Handshake::default(), 8);
///
/// // `silent` replied `Reply::None`, which the interceptor turned into a frame.
/// let answer = gw.handle_json(&client, r#"{"event":"silent"}"#).answer().await;
/// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"silent","data":"ok"}"#);
///
/// // `to` replied `Reply::Stream`: the client receives its frames as they come.
/// let Answer::Stream(stream) = gw.handle_json(&client, r#"{"event":"to","data":2}"#).answer().await
/// else {
///     panic!("expected a stream")
/// };
/// let frames: Vec<String> = stream.map(|answer| answer.frame().unwrap().as_str().to_owned()).collect().await;
/// assert_eq!(frames, [r#"{"event":"tick","data":1}"#, r#"{"event":"tick","data":2}"#]);
/// # }
/// ```
#[non_exhaustive]
pub enum Reply {
    /// Nothing.
    None,
    /// One frame.
    Frame(Frame),
    /// Frames as they come; `Ok(None)` items are skipped.
    Stream(BoxStream<'static, Result<Option<Frame>, Failure>>),
    /// A frame (or none), then closing the socket.
    Close(Option<Frame>, CloseRequest),
}

impl Reply {
    /// A reply `{"event": <the request's event>, "data": data}` (with the request's `id`),
    /// for interceptors that answer without calling the handler.
    ///
    /// # Errors
    ///
    /// `data`'s serialization error, as "Internal server error".
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use ws_gateway_core::prelude::*;
    /// # use ws_gateway_core::Handshake;
    /// use std::collections::HashMap;
    /// use std::sync::Mutex;
    ///
    /// use ws_gateway_core::transport::Answer;
    ///
    /// /// Answers repeated requests from memory, without calling the handler.
    /// #[derive(Default)]
    /// struct Cache(Mutex<HashMap<String, serde_json::Value>>);
    ///
    /// impl Interceptor for Cache {
    ///     async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
    ///         let key = cx.data().map(|raw| raw.get().to_owned()).unwrap_or_default();
    ///         let cached = self.0.lock().unwrap().get(&key).cloned();
    ///         match cached {
    ///             Some(value) => Reply::data(cx, &value),
    ///             None => {
    ///                 let value = serde_json::json!({ "cached": true });
    ///                 self.0.lock().unwrap().insert(key, value);
    ///                 next.run().await
    ///             }
    ///         }
    ///     }
    /// }
    /// # #[websocket_gateway(path = "/chat")] struct Chat;
    /// # #[websocket_gateway] impl Chat { #[subscribe("ping")] fn ping(&self) {} }
    /// # let app = GatewayApp::new().use_global_interceptor(Cache::default()).gateway::<Chat>().build().unwrap();
    /// # let gw = &app.gateways()[0];
    /// # let (client, _queue) = gw.open(Handshake::default(), 8);
    /// let first = gw.handle_json(&client, r#"{"event":"ping","data":1}"#).answer().await;
    /// assert!(matches!(first, Answer::Nothing)); // the handler ran: it returns nothing
    /// let answer = gw.handle_json(&client, r#"{"event":"ping","data":1,"id":2}"#).answer().await;
    /// assert_eq!(answer.frame().unwrap().as_str(), r#"{"event":"ping","data":{"cached":true},"id":2}"#);
    /// # }
    /// ```
    pub fn data<T: serde::Serialize + ?Sized>(cx: &Context<'_>, data: &T) -> Outcome {
        match cx.reply_to().encode(data) {
            Ok(Some(frame)) => Ok(Reply::Frame(frame)),
            Ok(None) => Ok(Reply::None),
            Err(err) => {
                tracing::error!(target: "gateway", event = cx.event(), "reply failed to serialize: {err}");
                Err(WsException::internal().into())
            }
        }
    }

    /// Replaces the `data` of every frame of the reply (streams included), keeping each
    /// frame's event and id: the mapping half of an interceptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use ws_gateway_core::{Frame, Reply};
    ///
    /// let reply = Reply::Frame(Frame::event("score", &41).unwrap());
    /// let Reply::Frame(frame) = reply.map_data(|n| serde_json::json!(n.as_i64().unwrap() + 1)) else {
    ///     panic!("still a frame")
    /// };
    /// assert_eq!(frame.as_str(), r#"{"event":"score","data":42}"#);
    /// ```
    #[must_use]
    pub fn map_data<F>(self, f: F) -> Reply
    where
        F: Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    {
        match self {
            Reply::Frame(frame) => Reply::Frame(frame.map_data(&f)),
            Reply::Stream(stream) => {
                use futures_util::StreamExt;
                Reply::Stream(
                    stream
                        .map(move |item| item.map(|frame| frame.map(|fr| fr.map_data(&f))))
                        .boxed(),
                )
            }
            Reply::Close(frame, close) => Reply::Close(frame.map(|fr| fr.map_data(&f)), close),
            Reply::None => Reply::None,
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Frame(frame) => f.debug_tuple("Frame").field(frame).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
            Self::Close(frame, close) => f.debug_tuple("Close").field(frame).field(close).finish(),
        }
    }
}

/// The result of handling one message or running one hook.
///
/// ```
/// use ws_gateway_core::{Outcome, Reply, WsException};
///
/// let nothing: Outcome = Ok(Reply::None);
/// let failed: Outcome = Err(WsException::new("no").into());
/// assert!(nothing.is_ok());
/// assert_eq!(failed.unwrap_err().to_string(), "no");
/// ```
pub type Outcome = Result<Reply, Failure>;

/// A handled message: done already (sync handlers, rejected messages) or still running.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ws_gateway_core::{Reply, WsException, __private::Dispatch};
///
/// let done = Dispatch::ready(Ok(Reply::None));
/// assert!(matches!(done, Dispatch::Ready(_)));
///
/// let later = Dispatch::pending(async { Err(WsException::new("too late").into()) });
/// assert!(matches!(later, Dispatch::Pending(_)));
/// assert_eq!(later.outcome().await.unwrap_err().to_string(), "too late");
/// # }
/// ```
#[must_use = "a dispatch does nothing until its outcome is sent"]
pub enum Dispatch {
    /// The outcome is known.
    Ready(Outcome),
    /// An async handler is running.
    Pending(Pin<Box<dyn Future<Output = Outcome> + Send>>),
}

impl Dispatch {
    /// A known outcome.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::{Frame, Reply, __private::Dispatch};
    ///
    /// let frame = Frame::event("pong", &()).unwrap();
    /// let dispatch = Dispatch::ready(Ok(Reply::Frame(frame.clone())));
    /// assert!(matches!(dispatch.outcome().await, Ok(Reply::Frame(f)) if f == frame));
    /// # }
    /// ```
    pub fn ready(outcome: Outcome) -> Self {
        Self::Ready(outcome)
    }

    /// An outcome still to come.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::{Reply, __private::Dispatch};
    ///
    /// let dispatch = Dispatch::pending(async {
    ///     tokio::task::yield_now().await; // e.g. a database call
    ///     Ok(Reply::None)
    /// });
    /// assert!(matches!(dispatch.outcome().await, Ok(Reply::None)));
    /// # }
    /// ```
    pub fn pending(future: impl Future<Output = Outcome> + Send + 'static) -> Self {
        Self::Pending(Box::pin(future))
    }

    /// A message rejected before its handler ran.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::{WsException, __private::Dispatch};
    ///
    /// let dispatch = Dispatch::reject(WsException::new("Unknown room"));
    /// let failure = dispatch.outcome().await.unwrap_err();
    /// assert!(failure.is::<WsException>());
    /// assert_eq!(failure.to_string(), "Unknown room");
    /// # }
    /// ```
    pub fn reject(err: WsException) -> Self {
        Self::Ready(Err(err.into()))
    }

    /// Waits for the outcome.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ws_gateway_core::{Reply, __private::Dispatch};
    ///
    /// for dispatch in [Dispatch::ready(Ok(Reply::None)), Dispatch::pending(async { Ok(Reply::None) })] {
    ///     assert!(matches!(dispatch.outcome().await, Ok(Reply::None)));
    /// }
    /// # }
    /// ```
    pub async fn outcome(self) -> Outcome {
        match self {
            Self::Ready(outcome) => outcome,
            Self::Pending(future) => future.await,
        }
    }
}

impl fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(outcome) => f.debug_tuple("Ready").field(outcome).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}
