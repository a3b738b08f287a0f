// The input of an expansion snapshot (`src/snapshot.rs`): `#[cfg]` on a handler and on a
// hook goes onto their shims and table entries. The expansion is `cfg.expanded.rs`.

#[websocket_gateway(path = "/typing")]
pub struct TypingGateway;

#[websocket_gateway]
impl TypingGateway {
    #[subscribe("typing")]
    fn typing(&self, client: Client) {
        let _ = client;
    }

    /// Only in builds with read receipts.
    #[cfg(feature = "receipts")]
    #[subscribe("read")]
    fn read(&self, message: MessageId) -> MessageId {
        message
    }

    #[cfg(feature = "receipts")]
    #[handle_disconnect]
    fn gone(&self) {}
}
