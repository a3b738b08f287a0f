//! What every module of the app shares: the transform interceptor and the exception filter.

pub mod filters;
pub mod interceptors;
