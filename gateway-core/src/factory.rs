//! Factory providers, NestJS's `useFactory` with `inject`: a provider built, when the app is,
//! from other providers. [`Dependency`] is what a factory may take; [`Factory`] is one
//! stored in the builder until [`build`](crate::GatewayApp::build) runs it in dependency
//! order (`resolve.rs`).

use std::any::{TypeId, type_name};
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::error::{BoxError, BuildError};
use crate::gateway::Gateway;
use crate::inject::{Inject, Instance, Needs, Providers, ServerOf};
use crate::resolve::short;

/// One argument of a factory ([`FactoryFn`]): NestJS's `inject: [..]`, written as the
/// argument's type.
///
/// | argument | what it is |
/// |---|---|
/// | [`Inject<T>`] or `Arc<T>` | the provider of type `T`: a value, a factory's result, or a gateway's instance |
/// | `Option<Inject<T>>` | the same if there is one |
/// | [`ServerOf<G>`] | gateway `G`'s server handle (needs nothing built first) |
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// struct Config {
///     prefix: &'static str,
/// }
/// struct Clock;
/// struct Stamp(String);
///
/// #[websocket_gateway(path = "/stamp")]
/// struct StampGateway {
///     stamp: Inject<Stamp>,
/// }
/// #[websocket_gateway]
/// impl StampGateway {}
///
/// let app = GatewayApp::new()
///     .provide(Config { prefix: "t=" })
///     .provide(Clock)
///     // NestJS: { provide: Stamp, useFactory: (config, clock) => .., inject: [Config, Clock] }
///     .provide_factory(|config: Inject<Config>, _clock: Inject<Clock>| {
///         Stamp(format!("{}0", config.prefix))
///     })
///     .gateway::<StampGateway>()
///     .build()
///     .unwrap();
/// assert_eq!(app.providers().get::<Stamp>().unwrap().0, "t=0");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a factory's argument",
    label = "not a dependency",
    note = "a factory's arguments are `Inject<T>`, `Arc<T>`, `Option<Inject<T>>` or `ServerOf<G>`"
)]
pub trait Dependency: Sized + Send + 'static {
    /// Declares what it needs, so that the app builds that first.
    fn needs(needs: &mut Needs);

    /// Takes it from the providers built so far; `None` when something it requires is not
    /// there (which [`needs`](Self::needs) lets `build()` report before any factory runs).
    fn take(providers: &Providers) -> Option<Self>;
}

impl<T: Send + Sync + 'static> Dependency for Inject<T> {
    fn needs(needs: &mut Needs) {
        needs.require::<T>();
    }

    fn take(providers: &Providers) -> Option<Self> {
        providers.get::<T>()
    }
}

impl<T: Send + Sync + 'static> Dependency for Arc<T> {
    fn needs(needs: &mut Needs) {
        needs.require::<T>();
    }

    fn take(providers: &Providers) -> Option<Self> {
        providers.get::<T>().map(Inject::into_arc)
    }
}

impl<T: Send + Sync + 'static> Dependency for Option<Inject<T>> {
    fn needs(needs: &mut Needs) {
        needs.optional::<T>();
    }

    fn take(providers: &Providers) -> Option<Self> {
        Some(providers.get::<T>())
    }
}

impl<G: Gateway> Dependency for ServerOf<G> {
    fn needs(needs: &mut Needs) {
        needs.require::<Self>();
    }

    fn take(providers: &Providers) -> Option<Self> {
        providers.get::<Self>().map(|server| (*server).clone())
    }
}

/// A function that builds a provider from its arguments, each a [`Dependency`]: what
/// [`GatewayApp::provide_factory`](crate::GatewayApp::provide_factory) and its `try_` and
/// `async` siblings take. Implemented for every `FnOnce` of up to 12 such arguments; the
/// arguments' types say what the factory needs, so write them on the closure.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
/// use ws_gateway_core::FactoryFn;
///
/// struct Greeting(&'static str);
/// struct Name(&'static str);
/// struct Line(String);
///
/// fn line(greeting: Inject<Greeting>, name: Inject<Name>) -> Line {
///     Line(format!("{}, {}", greeting.0, name.0))
/// }
///
/// fn is_factory<Args, F: FactoryFn<Args>>(_: &F) {}
/// is_factory(&line); // a plain fn is a factory too
///
/// #[websocket_gateway(path = "/line")]
/// struct LineGateway;
/// #[websocket_gateway]
/// impl LineGateway {}
///
/// let app = GatewayApp::new()
///     .provide(Greeting("hello"))
///     .provide(Name("ada"))
///     .provide_factory(line)
///     .gateway::<LineGateway>()
///     .build()
///     .unwrap();
/// assert_eq!(app.providers().get::<Line>().unwrap().0, "hello, ada");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a factory",
    label = "not a factory",
    note = "a factory is a closure or fn whose arguments are `Inject<T>`, `Arc<T>`, `Option<Inject<T>>` or `ServerOf<G>`, with their types written: `|a: Inject<A>, b: Inject<B>| ..`"
)]
pub trait FactoryFn<Args>: Send + 'static {
    /// What the function returns.
    type Output;

    /// Declares what its arguments need.
    fn needs(needs: &mut Needs);

    /// Calls it with its arguments taken from `providers`; `None` when one is not there.
    fn call(self, providers: &Providers) -> Option<Self::Output>;
}

macro_rules! factory_fn {
    ($($arg:ident),*) => {
        impl<Func, Out, $($arg: Dependency),*> FactoryFn<($($arg,)*)> for Func
        where
            Func: FnOnce($($arg),*) -> Out + Send + 'static,
        {
            type Output = Out;

            fn needs(needs: &mut Needs) {
                let _ = &needs;
                $($arg::needs(needs);)*
            }

            fn call(self, providers: &Providers) -> Option<Out> {
                let _ = providers;
                Some(self($($arg::take(providers)?),*))
            }
        }
    };
}

factory_fn!();
factory_fn!(A);
factory_fn!(A, B);
factory_fn!(A, B, C);
factory_fn!(A, B, C, D);
factory_fn!(A, B, C, D, E);
factory_fn!(A, B, C, D, E, F);
factory_fn!(A, B, C, D, E, F, G);
factory_fn!(A, B, C, D, E, F, G, H);
factory_fn!(A, B, C, D, E, F, G, H, I);
factory_fn!(A, B, C, D, E, F, G, H, I, J);
factory_fn!(A, B, C, D, E, F, G, H, I, J, K);
factory_fn!(A, B, C, D, E, F, G, H, I, J, K, L);

/// Runs a factory on the providers it declared: its value, or why not.
type MakeSync = Box<dyn FnOnce(&Providers) -> Result<Instance, BuildError> + Send>;

/// Starts an async factory on the providers it declared: the future of its value.
type MakeAsync = Box<
    dyn FnOnce(&Providers) -> Result<BoxFuture<'static, Result<Instance, BuildError>>, BuildError>
        + Send,
>;

pub(crate) enum Make {
    Sync(MakeSync),
    Async(MakeAsync),
}

/// One factory given to the builder: the type it provides, what it needs, how to run it.
pub(crate) struct Factory {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
    pub(crate) needs: Needs,
    pub(crate) make: Make,
}

impl Factory {
    /// A sync factory; `finish` turns what it returns into the value or the build error.
    pub(crate) fn sync<Args: 'static, T, R, F>(
        factory: F,
        finish: fn(R) -> Result<T, BuildError>,
    ) -> Self
    where
        T: Send + Sync + 'static,
        R: 'static,
        F: FactoryFn<Args, Output = R>,
    {
        let make = move |providers: &Providers| {
            let returned = factory
                .call(providers)
                .ok_or_else(|| not_taken::<Args, T, F>(providers))?;
            Ok(Arc::new(finish(returned)?) as Instance)
        };
        Self::new::<Args, T, F>(Make::Sync(Box::new(make)))
    }

    /// An async factory.
    pub(crate) fn future<Args: 'static, T, E, F, Fut>(factory: F) -> Self
    where
        T: Send + Sync + 'static,
        E: Into<BoxError>,
        F: FactoryFn<Args, Output = Fut>,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let make = move |providers: &Providers| {
            let future = factory
                .call(providers)
                .ok_or_else(|| not_taken::<Args, T, F>(providers))?;
            let future = future.map(|value| match value {
                Ok(value) => Ok(Arc::new(value) as Instance),
                Err(err) => Err(failed::<T, E>(err)),
            });
            Ok(future.boxed())
        };
        Self::new::<Args, T, F>(Make::Async(Box::new(make)))
    }

    fn new<Args, T: 'static, F: FactoryFn<Args>>(make: Make) -> Self {
        let mut needs = Needs::default();
        F::needs(&mut needs);
        Self {
            id: TypeId::of::<T>(),
            name: type_name::<T>(),
            needs,
            make,
        }
    }
}

/// Why a factory's arguments could not be taken. They were all built before it (the build
/// order saw to that), so this names the first one that is not: only a [`Dependency`] whose
/// `take` disagrees with its `needs` gets here.
fn not_taken<Args, T: 'static, F: FactoryFn<Args>>(providers: &Providers) -> BuildError {
    let mut needs = Needs::default();
    F::needs(&mut needs);
    let missing = needs
        .list
        .iter()
        .find(|need| !need.optional && !providers.contains(need.id));
    let provider = short(type_name::<T>());
    let needs = missing.map_or_else(|| "?".to_owned(), |need| short(need.name));
    BuildError::MissingDependency {
        chain: vec![provider.clone(), needs.clone()],
        provider,
        needs,
        gateway: None,
    }
}

/// A factory's error, as the build's.
pub(crate) fn failed<T, E: Into<BoxError>>(err: E) -> BuildError {
    BuildError::Factory {
        provider: short(type_name::<T>()),
        source: err.into(),
    }
}
