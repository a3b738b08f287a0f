//! Everything an app needs, in one import: `use gateway_axum::prelude::*;`.

pub use crate::{IntoRouter, Transport};
pub use gateway_core::prelude::*;
