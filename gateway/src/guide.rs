//! The guide: one chapter per page of the NestJS WebSocket documentation, then what
//! running it in production asks for. Every code block is compiled and run as a test.

// Production: more than one instance, clients that come back, tests, bounds, proxies,
// telemetry. The links to feature-gated items (`redis`, `test_client`) resolve on docs.rs
// (every feature on); without those features they have no target, which is no error.

#[doc = include_str!("../guide/scaling_out.md")]
#[cfg_attr(not(feature = "redis"), allow(rustdoc::broken_intra_doc_links))]
pub mod scaling_out {}

#[doc = include_str!("../guide/recovery.md")]
pub mod recovery {}

#[doc = include_str!("../guide/testing.md")]
#[cfg_attr(
    not(all(feature = "redis", feature = "test-client")),
    allow(rustdoc::broken_intra_doc_links)
)]
pub mod testing {}

#[doc = include_str!("../guide/limits.md")]
pub mod limits {}

#[doc = include_str!("../guide/deployment.md")]
pub mod deployment {}

#[doc = include_str!("../guide/observability.md")]
pub mod observability {}
