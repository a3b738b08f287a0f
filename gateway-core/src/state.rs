//! [`ClientState`]: what an app keeps per connection, by type (Socket.IO's `socket.data`,
//! Phoenix's `assigns`, socketioxide's `extensions`).

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Values kept for one connection, one per type: written and read by handlers, guards,
/// interceptors, filters and every lifecycle hook (the disconnect hook included) through
/// [`Client::state`](crate::Client::state), and dropped when the connection ends, after
/// `#[handle_disconnect]`.
///
/// Values are `Clone + Send + Sync + 'static`: [`get`](Self::get) hands out a copy (wrap a
/// large or shared value in an `Arc`), [`update`](Self::update) changes one in place. The
/// store is locked only for the duration of one call; a closure given to `update` must not
/// touch the same client's state again (it would wait for itself).
///
/// Costs nothing until the first value is inserted.
///
/// # Examples
///
/// ```
/// use ws_gateway_core::prelude::*;
///
/// #[derive(Clone)]
/// struct Nickname(String);
///
/// #[websocket_gateway(path = "/chat")]
/// pub struct ChatGateway;
///
/// #[websocket_gateway]
/// impl ChatGateway {
///     #[handle_connection]
///     fn connected(&self, client: Client) {
///         client.state().insert(Nickname("anonymous".into()));
///         client.state().insert(0u32); // messages sent
///     }
///
///     #[subscribe("nick")]
///     fn nick(&self, client: Client, name: String) {
///         client.state().insert(Nickname(name));
///     }
///
///     #[subscribe("say")]
///     fn say(&self, client: Client, text: String) -> String {
///         let count = client.state().update(|n: &mut u32| {
///             *n += 1;
///             *n
///         });
///         let Nickname(name) = client.state().get().expect("set on connection");
///         format!("{name} ({}): {text}", count.unwrap_or(0))
///     }
/// }
/// # let _ = GatewayApp::new().gateway::<ChatGateway>().build().unwrap();
/// ```
#[derive(Default)]
pub struct ClientState {
    values: Mutex<http::Extensions>,
}

impl ClientState {
    fn values(&self) -> MutexGuard<'_, http::Extensions> {
        // A closure that panicked inside `update` left the map itself whole.
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves every value out, into a new store (the state of a recovered connection).
    pub(crate) fn take(&self) -> ClientState {
        ClientState {
            values: Mutex::new(std::mem::take(&mut *self.values())),
        }
    }

    /// Keeps `value`, returning the value of its type kept before, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = ws_gateway_core::ClientState::default();
    /// assert_eq!(state.insert(1u8), None);
    /// assert_eq!(state.insert(2u8), Some(1));
    /// ```
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.values().insert(value)
    }

    /// A copy of the value of type `T`, if one is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = ws_gateway_core::ClientState::default();
    /// state.insert(String::from("alice"));
    /// assert_eq!(state.get::<String>().as_deref(), Some("alice"));
    /// assert_eq!(state.get::<u64>(), None);
    /// ```
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.values().get::<T>().cloned()
    }

    /// Whether a value of type `T` is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = ws_gateway_core::ClientState::default();
    /// state.insert(7i32);
    /// assert!(state.contains::<i32>());
    /// assert!(!state.contains::<i64>());
    /// ```
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.values().get::<T>().is_some()
    }

    /// Changes the value of type `T` in place and returns what `change` returns; `None`, and
    /// `change` not called, when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = ws_gateway_core::ClientState::default();
    /// assert_eq!(state.update(|n: &mut u32| *n += 1), None);
    /// state.insert(1u32);
    /// assert_eq!(state.update(|n: &mut u32| { *n += 1; *n }), Some(2));
    /// ```
    pub fn update<T: Send + Sync + 'static, R>(
        &self,
        change: impl FnOnce(&mut T) -> R,
    ) -> Option<R> {
        self.values().get_mut::<T>().map(change)
    }

    /// Changes the value of type `T` in place, first inserting `init()` when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = ws_gateway_core::ClientState::default();
    /// let seen = |state: &ws_gateway_core::ClientState| {
    ///     state.update_or_insert_with(|| 0u32, |n| { *n += 1; *n })
    /// };
    /// assert_eq!(seen(&state), 1);
    /// assert_eq!(seen(&state), 2);
    /// ```
    pub fn update_or_insert_with<T: Clone + Send + Sync + 'static, R>(
        &self,
        init: impl FnOnce() -> T,
        change: impl FnOnce(&mut T) -> R,
    ) -> R {
        change(self.values().get_or_insert_with(init))
    }

    /// Takes the value of type `T` out, if one is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// let state = ws_gateway_core::ClientState::default();
    /// state.insert(3u16);
    /// assert_eq!(state.remove::<u16>(), Some(3));
    /// assert_eq!(state.remove::<u16>(), None);
    /// ```
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        self.values().remove::<T>()
    }

    /// Drops every value: the connection has ended.
    pub(crate) fn clear(&self) {
        // Taken out first, so that a value's `Drop` runs without the lock held.
        let values = std::mem::take(&mut *self.values());
        drop(values);
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("values", &self.values().len())
            .finish()
    }
}
