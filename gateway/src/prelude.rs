//! What a gateway module starts with: `use ws_gateway::prelude::*;`.
//!
//! The macros, the types handlers, guards, interceptors, pipes and filters name, and
//! [`IntoRouter`] to mount an app on axum.

pub use ws_gateway_axum::prelude::*;
