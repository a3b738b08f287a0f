//! [`Layers`]: the guards, interceptors and exception filters of one scope (global,
//! gateway or method).

use crate::filter::FilterRef;
use crate::guard::GuardRef;
use crate::interceptor::InterceptorRef;

/// The guards, interceptors and filters attached to one scope.
///
/// ```
/// let layers = ws_gateway_core::__private::Layers::default();
/// assert!(layers.guards.is_empty() && layers.interceptors.is_empty() && layers.filters.is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Layers {
    /// Guards, in the order they run.
    pub guards: Vec<GuardRef>,
    /// Interceptors, outermost first.
    pub interceptors: Vec<InterceptorRef>,
    /// Exception filters, in the order they are tried.
    pub filters: Vec<FilterRef>,
}

impl Layers {
    /// Whether the scope has no guard and no interceptor (its messages take the fast path).
    pub(crate) fn is_direct(&self) -> bool {
        self.guards.is_empty() && self.interceptors.is_empty()
    }

    /// Composes scopes, outer (global) to inner (method): guards and interceptors run
    /// outer first; filters are tried inner first.
    pub(crate) fn compose(scopes: &[&Layers]) -> Layers {
        Layers {
            guards: scopes
                .iter()
                .flat_map(|s| s.guards.iter().cloned())
                .collect(),
            interceptors: scopes
                .iter()
                .flat_map(|s| s.interceptors.iter().cloned())
                .collect(),
            filters: scopes
                .iter()
                .rev()
                .flat_map(|s| s.filters.iter().cloned())
                .collect(),
        }
    }
}
