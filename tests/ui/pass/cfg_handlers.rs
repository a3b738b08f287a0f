//! `#[cfg]` on a handler or a hook: configured out, the method leaves the tables with it;
//! configured in, it stays. Two handlers of one event may be alternatives under `#[cfg]`.

use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::TestServer;
use ws_gateway_core::__private::GatewayHandlers;
use serde_json::json;

#[websocket_gateway(path = "/cfg")]
pub struct CfgGateway;

#[websocket_gateway]
impl CfgGateway {
    #[subscribe("kept")]
    #[cfg(all())]
    fn kept(&self, n: u32) -> u32 {
        n + 1
    }

    /// Configured out: calling it would not compile, and neither would its shim.
    #[cfg(any())]
    #[subscribe("gone")]
    fn gone(&self, n: u32) -> u32 {
        n
    }

    #[cfg(any())]
    #[subscribe("version")]
    fn version_two(&self) -> u32 {
        2
    }

    #[cfg(not(any()))]
    #[subscribe("version")]
    fn version_one(&self) -> u32 {
        1
    }

    #[after_init]
    fn ready(&self) {}

    /// Configured out: it would reject every client.
    #[cfg(any())]
    #[handle_connection]
    fn reject(&self) -> Result<(), WsException> {
        Err(WsException::new("configured out"))
    }

    #[cfg(all())]
    #[handle_disconnect]
    fn goodbye(&self) {}
}

#[tokio::main]
async fn main() {
    let events: Vec<&str> = CfgGateway::HANDLERS.iter().map(|h| h.event).collect();
    assert_eq!(events, ["kept", "version"]);
    assert!(CfgGateway::HOOKS.after_init.is_some());
    assert!(CfgGateway::HOOKS.handle_connection.is_none());
    assert!(CfgGateway::HOOKS.handle_disconnect.is_some());

    let app = GatewayApp::new().gateway::<CfgGateway>().build().unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut client = server.connect("/cfg").await.unwrap();

    client.emit("kept", &1).await.unwrap();
    assert_eq!(client.expect("kept").await.unwrap(), json!(2));

    client.emit("version", &()).await.unwrap();
    assert_eq!(client.expect("version").await.unwrap(), json!(1));

    client.emit("gone", &1).await.unwrap();
    let err = client.expect("exception").await.unwrap();
    assert_eq!(err["message"], "Unknown event \"gone\"");
}
