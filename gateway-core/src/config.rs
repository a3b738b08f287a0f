//! [`ConnectionConfig`]: per-connection buffer sizes and limits.

/// Per-connection settings, applied on every upgrade.
///
/// The defaults are small on purpose: axum's own defaults (128 KiB read and write buffers,
/// zero-filled on every read) make a server 2-3x slower and about 20x larger per connection
/// than 4 KiB buffers.
///
/// # Examples
///
/// ```
/// let mut config = gateway_core::ConnectionConfig::default();
/// config.max_message_size = 16 * 1024;
/// config.max_frame_size = 16 * 1024;
/// assert_eq!(config.read_buffer_size, 4096);
/// let app = gateway_core::GatewayApp::new().config(config);
/// # let _ = app;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Read buffer capacity of each socket. Default 4 KiB.
    pub read_buffer_size: usize,
    /// Bytes buffered before a write reaches the socket. Default 4 KiB.
    pub write_buffer_size: usize,
    /// Largest message accepted from a client; a larger one closes the connection with
    /// code 1009. Default 64 KiB.
    pub max_message_size: usize,
    /// Largest frame accepted from a client. Default 64 KiB.
    pub max_frame_size: usize,
    /// Frames that may wait in a client's outbound queue; a client that lets it fill is
    /// disconnected with code 1008. Default 1024.
    pub outbound_queue: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            read_buffer_size: 4 * 1024,
            write_buffer_size: 4 * 1024,
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            outbound_queue: 1024,
        }
    }
}
