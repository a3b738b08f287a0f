//! Interceptors.

mod transform;

pub use transform::TransformInterceptor;
