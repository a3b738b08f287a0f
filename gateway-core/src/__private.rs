//! Not public API: the one contract between the code `ws-gateway-macros` generates and the
//! runtime. Everything here may change in any release.
//!
//! What the expansion of `#[websocket_gateway]` uses (see the checked-in expansion,
//! `gateway-macros/tests/expand/chat.expanded.rs`):
//!
//! - the tables it fills in: [`Gateway`] (path, name, `build` from providers via
//!   [`resolve`]), [`GatewayHandlers`] (one [`Handler`] per `#[subscribe]`, the [`Hooks`], the
//!   gateway's [`Layers`]), submitted to the registry with [`register_gateway!`];
//! - per handler argument, [`arg!`] (extractor or body, chosen by type, then the pipes);
//! - per return value, [`reply!`] and [`hook_outcome`] into an [`Outcome`], wrapped in a
//!   [`Dispatch`];
//! - at build time, [`verify!`] (an extractor's own checks) and, for AsyncAPI, [`describe!`].
//!
//! The pipeline around a handler (guards, interceptors, filters) is not generated: it lives in
//! `pipeline.rs` and runs the same for every gateway.

use std::marker::PhantomData;

use futures_util::{Stream, StreamExt};
use serde::Serialize;

pub use crate::dispatch::{Context, Dispatch, Outcome, Reply};
use crate::extract::Data;
pub use crate::extract::{ArgSite, FromContext, MessageBody};
pub use crate::filter::FilterRef;
#[cfg(not(feature = "asyncapi"))]
pub use crate::gateway::Undescribed;
pub use crate::gateway::{
    DescribeFn, Gateway, GatewayHandlers, Handler, HandlerFn, Hook, Hooks, VerifyFn,
};
pub use crate::guard::GuardRef;
pub use crate::inject::{BuildContext, FromProviders, Needs};
pub use crate::interceptor::InterceptorRef;
pub use crate::layers::Layers;
pub use crate::pipe::Pipe;
pub use crate::registry::GatewayDescriptor;
pub use crate::reply::{IntoReply, ReplyTo};
pub use crate::{BuildError, Failure, WsException};
pub use inventory;
pub use serde_json;

#[cfg(feature = "asyncapi")]
pub use crate::gateway::HandlerDoc;
pub use crate::{
    __arg as arg, __describe as describe, __extract as extract, __needs as needs,
    __register_gateway as register_gateway, __reply as reply, __verify as verify,
};
#[cfg(feature = "asyncapi")]
pub use schemars::SchemaGenerator;
#[cfg(feature = "asyncapi")]
pub use schemas::{
    DescribeAny, DescribeAnyReply, DescribeExtractor, DescribeReply, DescribeResult,
    DescribeSchema, DescribeStream,
};

/// Resolves one field of a gateway struct.
pub fn resolve<T: FromProviders>(
    cx: &BuildContext<'_>,
    field: &'static str,
) -> Result<T, BuildError> {
    T::from_providers(cx, field)
}

/// A gateway field's dependencies: those its type declares, if it is injectable. One that is
/// not declares nothing (by the same autoref tiers as handler arguments): [`resolve`]
/// reports it, and only once.
pub trait FieldNeeds {
    /// Declares them.
    fn needs(&self, needs: &mut Needs);
}

impl<T: FromProviders> FieldNeeds for &Arg<T> {
    fn needs(&self, needs: &mut Needs) {
        T::needs(needs);
    }
}

/// A gateway field whose type is not injectable: nothing to declare.
pub trait FieldNeedsNothing {
    /// Declares nothing.
    fn needs(&self, needs: &mut Needs);
}

impl<T> FieldNeedsNothing for Arg<T> {
    fn needs(&self, _: &mut Needs) {}
}

/// `needs!(needs; FieldType, ..)` in `Gateway::needs`: what the fields depend on.
#[doc(hidden)]
#[macro_export]
macro_rules! __needs {
    ($needs:expr; $($ty:ty),* $(,)?) => {{
        #[allow(unused_imports)]
        use $crate::__private::{FieldNeeds as _, FieldNeedsNothing as _};
        let needs: &mut $crate::__private::Needs = $needs;
        $(
            (&&$crate::__private::Arg::<$ty>::new()).needs(needs);
        )*
    }};
}

/// Turns what a lifecycle hook returned into an outcome.
pub fn hook_outcome<T: HookOutcome>(value: T) -> Outcome {
    value.into_outcome()
}

/// What a lifecycle hook may return: `()` or `Result<(), E>` with `E: Into<WsException>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a lifecycle hook",
    label = "not a hook result",
    note = "a lifecycle hook returns `()` or `Result<(), E>` with `E: Into<WsException>`"
)]
pub trait HookOutcome {
    /// The outcome.
    fn into_outcome(self) -> Outcome;
}

impl HookOutcome for () {
    fn into_outcome(self) -> Outcome {
        Ok(Reply::None)
    }
}

impl<E: Into<WsException> + Send + 'static> HookOutcome for Result<(), E> {
    fn into_outcome(self) -> Outcome {
        self.map(|()| Reply::None).map_err(Failure::new)
    }
}

// Handler arguments: an extractor if the type implements `FromContext`, else the message
// body. The choice is made by method resolution ("autoref specialization"): `extract` on
// `&&Arg<T>` finds `ViaExtractor` first when its bound holds, else `ViaBody`, whose own
// `where` clause then reports a type that is neither, on the argument's type.

/// Names an argument type for [`ViaExtractor`] and [`ViaBody`].
pub struct Arg<T>(PhantomData<fn() -> T>);

impl<T> Arg<T> {
    /// The tag.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// An argument that is an extractor.
pub trait ViaExtractor<T> {
    /// Extracts it.
    fn extract(&self, cx: &Context<'_>) -> Result<T, WsException>;
    /// Checks it at build time.
    fn verify(&self, cx: &BuildContext<'_>, site: ArgSite) -> Result<(), BuildError>;
    /// Pipes apply to the message body only: an extractor passes through.
    fn pipe<P>(&self, value: T, pipe: P, cx: &Context<'_>) -> Result<T, WsException>;
}

impl<T: FromContext> ViaExtractor<T> for &Arg<T> {
    fn extract(&self, cx: &Context<'_>) -> Result<T, WsException> {
        T::from_context(cx)
    }

    fn pipe<P>(&self, value: T, _: P, _: &Context<'_>) -> Result<T, WsException> {
        Ok(value)
    }

    fn verify(&self, cx: &BuildContext<'_>, site: ArgSite) -> Result<(), BuildError> {
        T::verify(cx, site)
    }
}

/// An argument that is the message body written as `Data<T>`: deserialized as `T`, and the
/// pipes for `T` run on it. Probed at the extractors' level (`Data` is not one), so that it
/// is chosen before [`ViaBody`], which would ask for pipes of `Data<T>`.
pub trait ViaData<T> {
    /// Deserializes it.
    fn extract(&self, cx: &Context<'_>) -> Result<Data<T>, WsException>
    where
        T: MessageBody;
    /// Nothing to check at build time.
    fn verify(&self, cx: &BuildContext<'_>, site: ArgSite) -> Result<(), BuildError>;
    /// Runs a pipe on the body inside.
    fn pipe<P>(&self, value: Data<T>, pipe: P, cx: &Context<'_>) -> Result<Data<T>, WsException>
    where
        P: Pipe<T>;
}

impl<T> ViaData<T> for &Arg<Data<T>> {
    fn extract(&self, cx: &Context<'_>) -> Result<Data<T>, WsException>
    where
        T: MessageBody,
    {
        crate::extract::body(cx).map(Data)
    }

    fn verify(&self, _: &BuildContext<'_>, _: ArgSite) -> Result<(), BuildError> {
        Ok(())
    }

    fn pipe<P>(&self, value: Data<T>, pipe: P, cx: &Context<'_>) -> Result<Data<T>, WsException>
    where
        P: Pipe<T>,
    {
        pipe.transform(value.0, cx).map(Data)
    }
}

/// An argument that is the message body.
pub trait ViaBody<T> {
    /// Deserializes it.
    fn extract(&self, cx: &Context<'_>) -> Result<T, WsException>
    where
        T: MessageBody;
    /// Nothing to check at build time.
    fn verify(&self, cx: &BuildContext<'_>, site: ArgSite) -> Result<(), BuildError>;
    /// Runs a pipe on the body. The pipe is taken by value, so that an unmet `P: Pipe<T>`
    /// is reported on the pipe expression the user wrote.
    fn pipe<P>(&self, value: T, pipe: P, cx: &Context<'_>) -> Result<T, WsException>
    where
        P: Pipe<T>;
}

impl<T> ViaBody<T> for Arg<T> {
    fn extract(&self, cx: &Context<'_>) -> Result<T, WsException>
    where
        T: MessageBody,
    {
        crate::extract::body(cx)
    }

    fn verify(&self, _: &BuildContext<'_>, _: ArgSite) -> Result<(), BuildError> {
        Ok(())
    }

    fn pipe<P>(&self, value: T, pipe: P, cx: &Context<'_>) -> Result<T, WsException>
    where
        P: Pipe<T>,
    {
        pipe.transform(value, cx)
    }
}

/// `let name = arg!(cx, Type);` or `let name = arg!(cx, Type; PipeA, PipeB);` in a handler
/// shim: one argument, or an early `return Dispatch::reject(..)`. An extractor is extracted
/// and the pipes are ignored (they apply to the message body only); the body is
/// deserialized, then each pipe runs on it, in order.
#[doc(hidden)]
#[macro_export]
macro_rules! __arg {
    (@try $result:expr) => {
        match $result {
            ::core::result::Result::Ok(value) => value,
            ::core::result::Result::Err(err) => {
                return $crate::__private::Dispatch::reject(err);
            }
        }
    };
    ($cx:expr, $ty:ty $(; $($pipe:expr),+ $(,)?)?) => {{
        #[allow(unused_imports)]
        use $crate::__private::{ViaBody as _, ViaData as _, ViaExtractor as _};
        let arg = &&$crate::__private::Arg::<$ty>::new();
        let value = $crate::__arg!(@try arg.extract($cx));
        $($(
            let value = $crate::__arg!(@try arg.pipe(value, $pipe, $cx));
        )+)?
        value
    }};
}

/// `let name = extract!(cx, Type);` in a handler shim: the argument, or an early
/// `return Dispatch::reject(..)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __extract {
    ($cx:expr, $ty:ty) => {
        match {
            #[allow(unused_imports)]
            use $crate::__private::{ViaBody as _, ViaData as _, ViaExtractor as _};
            (&&$crate::__private::Arg::<$ty>::new()).extract($cx)
        } {
            ::core::result::Result::Ok(value) => value,
            ::core::result::Result::Err(err) => {
                return $crate::__private::Dispatch::reject(err);
            }
        }
    };
}

/// `verify!(cx, "method"; "arg": Type, ...)`: the build-time check of a shim's extractors.
#[doc(hidden)]
#[macro_export]
macro_rules! __verify {
    ($cx:expr, $method:literal; $($arg:literal: $ty:ty),* $(,)?) => {{
        #[allow(unused_imports)]
        use $crate::__private::{ViaBody as _, ViaData as _, ViaExtractor as _};
        $(
            (&&$crate::__private::Arg::<$ty>::new()).verify(
                $cx,
                $crate::__private::ArgSite { method: $method, arg: $arg },
            )?;
        )*
        ::core::result::Result::Ok(())
    }};
}

// Return values: `Result` first, then `Stream`, then anything `Serialize`.

/// Names a return type for the `Via*` reply traits.
pub struct Tag<T>(PhantomData<fn() -> T>);

impl<T> Tag<T> {
    /// The tag of `value`'s type.
    pub fn of(_: &T) -> Self {
        Self(PhantomData)
    }
}

/// A `Result` return value.
pub trait ViaResult<T> {
    /// The outcome.
    fn outcome(&self, to: ReplyTo, value: T) -> Outcome;
}

impl<T: Serialize, E: Into<WsException> + Send + 'static> ViaResult<Result<T, E>>
    for &&Tag<Result<T, E>>
{
    fn outcome(&self, to: ReplyTo, value: Result<T, E>) -> Outcome {
        match value {
            Ok(value) => encode(&to, &value),
            Err(err) => Err(Failure::new(err)),
        }
    }
}

/// A `Stream` return value: one reply per item.
pub trait ViaStream<S> {
    /// The outcome.
    fn outcome(&self, to: ReplyTo, value: S) -> Outcome;
}

impl<S> ViaStream<S> for &Tag<S>
where
    S: Stream + Send + 'static,
    S::Item: Serialize,
{
    fn outcome(&self, to: ReplyTo, value: S) -> Outcome {
        Ok(Reply::Stream(
            value
                .map(move |item| match encode(&to, &item)? {
                    Reply::Frame(frame) => Ok(Some(frame)),
                    _ => Ok(None),
                })
                .boxed(),
        ))
    }
}

/// Any other return value.
pub trait ViaSerialize<T> {
    /// The outcome.
    fn outcome(&self, to: ReplyTo, value: T) -> Outcome
    where
        T: IntoReply;
}

impl<T> ViaSerialize<T> for Tag<T> {
    fn outcome(&self, to: ReplyTo, value: T) -> Outcome
    where
        T: IntoReply,
    {
        encode(&to, &value)
    }
}

fn encode<T: Serialize + ?Sized>(to: &ReplyTo, value: &T) -> Outcome {
    match to.encode(value) {
        Ok(Some(frame)) => Ok(Reply::Frame(frame)),
        Ok(None) => Ok(Reply::None),
        Err(err) => {
            tracing::error!(target: "gateway", event = to.event(), "reply failed to serialize: {err}");
            Err(WsException::internal().into())
        }
    }
}

/// `reply!(reply_to, value)`: the outcome of a handler's return value.
#[doc(hidden)]
#[macro_export]
macro_rules! __reply {
    ($to:expr, $value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{ViaResult as _, ViaSerialize as _, ViaStream as _};
        let value = $value;
        (&&&$crate::__private::Tag::of(&value)).outcome($to, value)
    }};
}

/// `register_gateway!(Type);` next to a gateway struct: submits its descriptor.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_gateway {
    ($ty:ty) => {
        $crate::__private::inventory::submit! {
            $crate::__private::GatewayDescriptor::of::<$ty>(::core::file!(), ::core::line!())
        }
    };
}

// Documentation (AsyncAPI): the schema of the body among the arguments, and of the reply.
// The same autoref tiers as above choose, per type: an extractor has no schema; a type
// with `JsonSchema` has its own; any other type is described as "any JSON".
//
// The macros cannot see this crate's features, so every build has `Tag::returned_by`,
// `Tag::awaited_by` and `describe!`; without the `asyncapi` feature `describe!` describes
// nothing and names no schemars item.

impl<T> Tag<T> {
    /// The tag of what `method` returns (never called).
    pub fn returned_by<G: 'static>(_method: impl FnOnce(&'static G) -> T) -> Self {
        Self(PhantomData)
    }
}

impl<T> Tag<T> {
    /// The tag of what the future `method` returns resolves to (never called).
    pub fn awaited_by<G: 'static, F>(_method: impl FnOnce(&'static G) -> F) -> Self
    where
        F: std::future::Future<Output = T>,
    {
        Self(PhantomData)
    }
}

#[cfg(feature = "asyncapi")]
mod schemas {
    use futures_util::Stream;

    use super::{Arg, FromContext, SchemaGenerator, Tag};

    /// Describes one argument.
    pub trait DescribeExtractor {
        /// `None`: extractors are not the body.
        fn body_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<T: FromContext> DescribeExtractor for &&Arg<T> {
        fn body_schema(&self, _: &mut SchemaGenerator) -> Option<serde_json::Value> {
            None
        }
    }

    /// Describes a body with a schema.
    pub trait DescribeSchema {
        /// The body's schema.
        fn body_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<T: schemars::JsonSchema> DescribeSchema for &Arg<T> {
        fn body_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value> {
            Some(generator.subschema_for::<T>().to_value())
        }
    }

    /// Describes a body without a schema.
    pub trait DescribeAny {
        /// Any JSON.
        fn body_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<T> DescribeAny for Arg<T> {
        fn body_schema(&self, _: &mut SchemaGenerator) -> Option<serde_json::Value> {
            Some(serde_json::Value::Bool(true))
        }
    }

    /// A `Result` reply: described by its `Ok` value.
    pub trait DescribeResult {
        /// The schema of the reply's data.
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<T: schemars::JsonSchema, E> DescribeResult for &&&Tag<Result<T, E>> {
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value> {
            schema_of_reply::<T>(generator)
        }
    }

    /// A `Stream` reply: described by its items.
    pub trait DescribeStream {
        /// The schema of each item's data.
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<S> DescribeStream for &&Tag<S>
    where
        S: Stream,
        S::Item: schemars::JsonSchema,
    {
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value> {
            schema_of_reply::<S::Item>(generator)
        }
    }

    /// A reply with a schema.
    pub trait DescribeReply {
        /// The schema of the reply's data.
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<T: schemars::JsonSchema> DescribeReply for &Tag<T> {
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value> {
            schema_of_reply::<T>(generator)
        }
    }

    /// A reply without a schema.
    pub trait DescribeAnyReply {
        /// Any JSON.
        fn reply_schema(&self, generator: &mut SchemaGenerator) -> Option<serde_json::Value>;
    }

    impl<T> DescribeAnyReply for Tag<T> {
        fn reply_schema(&self, _: &mut SchemaGenerator) -> Option<serde_json::Value> {
            Some(serde_json::Value::Bool(true))
        }
    }

    /// `()` sends no reply; anything else is described by its schema.
    fn schema_of_reply<T: schemars::JsonSchema>(
        generator: &mut SchemaGenerator,
    ) -> Option<serde_json::Value> {
        (std::any::type_name::<T>() != "()").then(|| generator.subschema_for::<T>().to_value())
    }
}

/// `describe!(generator, reply_tag; ArgType, ...)`: the [`HandlerDoc`] of a handler.
#[cfg(feature = "asyncapi")]
#[doc(hidden)]
#[macro_export]
macro_rules! __describe {
    ($generator:expr, $reply:expr; $($ty:ty),* $(,)?) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            DescribeAny as _, DescribeAnyReply as _, DescribeExtractor as _, DescribeReply as _,
            DescribeResult as _, DescribeSchema as _, DescribeStream as _,
        };
        let generator: &mut $crate::__private::SchemaGenerator = $generator;
        let body: ::core::option::Option<$crate::__private::serde_json::Value> = ::core::option::Option::None;
        $(
            let body = body.or_else(|| (&&&$crate::__private::Arg::<$ty>::new()).body_schema(generator));
        )*
        let reply = (&&&&$reply).reply_schema(generator);
        $crate::__private::HandlerDoc::new(body, reply)
    }};
}

/// `describe!(generator, reply_tag; ArgType, ...)` without the `asyncapi` feature: the
/// generator is an [`Undescribed`], which has no values, so this is never reached and
/// neither the reply nor the argument types are looked at.
#[cfg(not(feature = "asyncapi"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __describe {
    ($generator:expr, $reply:expr; $($ty:ty),* $(,)?) => {{
        let _ = $reply;
        let generator: &mut $crate::__private::Undescribed = $generator;
        match *generator {}
    }};
}
