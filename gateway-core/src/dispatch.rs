//! What a handler call produces: [`Context`] in, [`Dispatch`] out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use futures_util::stream::BoxStream;
use serde_json::value::RawValue;

use crate::client::Client;
use crate::exception::{CloseRequest, WsException};
use crate::failure::Failure;
use crate::frame::Frame;
use crate::inject::Providers;
use crate::reply::ReplyTo;
use crate::server::WsServer;

/// Everything a handler's arguments are extracted from: the client, the message, the
/// gateway's server handle and the app's providers.
pub struct Context<'a> {
    pub(crate) client: Option<&'a Client>,
    pub(crate) server: &'a WsServer,
    pub(crate) providers: &'a Providers,
    pub(crate) event: &'static str,
    pub(crate) data: Option<&'a RawValue>,
    pub(crate) id: Option<&'a RawValue>,
}

impl<'a> Context<'a> {
    /// The client that sent the message, or whose connection a hook is about; `None` in
    /// `#[after_init]`.
    pub fn client(&self) -> Option<&'a Client> {
        self.client
    }

    /// The gateway's server handle.
    pub fn server(&self) -> &'a WsServer {
        self.server
    }

    /// The app's providers.
    pub fn providers(&self) -> &'a Providers {
        self.providers
    }

    /// The event being handled; empty in lifecycle hooks.
    pub fn event(&self) -> &'static str {
        self.event
    }

    /// The message's `data`, as raw JSON; `None` when absent or `null`.
    pub fn data(&self) -> Option<&'a RawValue> {
        self.data
    }

    /// The message's `id`, as raw JSON; `None` when absent or `null`.
    pub fn id(&self) -> Option<&'a RawValue> {
        self.id
    }

    /// Where replies to this message go: its event and id.
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
pub type Outcome = Result<Reply, Failure>;

/// A handled message: done already (sync handlers, rejected messages) or still running.
#[must_use = "a dispatch does nothing until its outcome is sent"]
pub enum Dispatch {
    /// The outcome is known.
    Ready(Outcome),
    /// An async handler is running.
    Pending(Pin<Box<dyn Future<Output = Outcome> + Send>>),
}

impl Dispatch {
    /// A known outcome.
    pub fn ready(outcome: Outcome) -> Self {
        Self::Ready(outcome)
    }

    /// An outcome still to come.
    pub fn pending(future: impl Future<Output = Outcome> + Send + 'static) -> Self {
        Self::Pending(Box::pin(future))
    }

    /// A message rejected before its handler ran.
    pub fn reject(err: WsException) -> Self {
        Self::Ready(Err(err.into()))
    }

    /// Waits for the outcome.
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
