//! Everything an app needs, in one import: `use ws_gateway_axum::prelude::*;`.

pub use crate::{IntoRouter, Transport};
pub use ws_gateway_core::prelude::*;
