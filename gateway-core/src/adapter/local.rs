//! [`LocalServer`]: what an adapter holds of each gateway, to apply remote operations.

use std::fmt;

use super::{ClientInfo, Operation, Selection};
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
/// use gateway_core::adapter::{Adapter, LocalServer, Message};
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
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Applies an operation that another instance published to the matching clients of
    /// this one. Returns how many clients it applied to, or `None` once the app is gone.
    pub fn apply(&self, selection: &Selection, op: &Operation) -> Option<usize> {
        let server = self.server.upgrade()?;
        Some(server.apply_local(selection, op).0)
    }

    /// The matching clients of this instance, to answer another instance's
    /// [`fetch_clients`](super::Adapter::fetch_clients); `None` once the app is gone.
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
