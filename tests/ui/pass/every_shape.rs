//! Every accepted syntax in one gateway.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::Stream;
use ws_gateway_core::prelude::*;
use serde::Deserialize;
use validator::Validate;

struct Counter(AtomicUsize);

struct AllowAll;

impl Guard for AllowAll {
    async fn can_activate(&self, _cx: &Context<'_>) -> Result<bool, WsException> {
        Ok(true)
    }
}

struct Passthrough;

impl Interceptor for Passthrough {
    async fn intercept(&self, _cx: &Context<'_>, next: Next<'_>) -> Outcome {
        next.run().await
    }
}

struct Trim;

impl Pipe<String> for Trim {
    fn transform(&self, value: String, _cx: &Context<'_>) -> Result<String, WsException> {
        Ok(value.trim().to_owned())
    }
}

#[derive(Deserialize, Validate)]
struct Say {
    #[validate(length(min = 1))]
    text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("nope")]
struct Nope;

impl From<Nope> for WsException {
    fn from(err: Nope) -> Self {
        WsException::new(err.to_string())
    }
}

#[websocket_gateway(path = "/every")]
pub struct EveryGateway {
    counter: Inject<Counter>,
    optional: Option<Inject<String>>,
    server: WsServer,
}

#[use_guards(AllowAll)]
#[websocket_gateway]
#[use_interceptors(Passthrough)]
impl EveryGateway {
    #[subscribe("sync")]
    fn sync(&self, n: u32) -> u32 {
        n + 1
    }

    #[subscribe("async")]
    async fn asynchronous(&self, client: Client, data: serde_json::Value) -> serde_json::Value {
        let _ = client.id();
        data
    }

    #[subscribe("nothing")]
    fn nothing(&self) {}

    #[subscribe("response")]
    fn response(&self) -> WsResponse<&'static str> {
        WsResponse::new("other", "x")
    }

    #[subscribe("result")]
    fn result(&self, fail: bool) -> Result<usize, Nope> {
        if fail { Err(Nope) } else { Ok(self.counter.0.fetch_add(1, Ordering::Relaxed)) }
    }

    #[subscribe("stream")]
    fn stream(&self, n: u8) -> impl Stream<Item = WsResponse<u8>> + use<> {
        futures_util::stream::iter((0..n).map(|i| WsResponse::new("tick", i)))
    }

    #[subscribe("validated")]
    #[use_pipes(ValidationPipe)]
    fn validated(&self, say: Say, Data(again): Data<Say>) -> String {
        // Pipes run on every body argument, `Data<T>` included.
        say.text + &again.text
    }

    #[subscribe("trimmed")]
    #[use_pipes(Trim)]
    fn trimmed(&self, r#type: String, event: Event) -> String {
        format!("{}:{}", event.0, r#type)
    }

    #[subscribe("with_state")]
    fn with_state(&self, counter: Inject<Counter>, _server: WsServer) -> usize {
        let _ = &self.optional;
        let _ = self.server.client_count();
        counter.0.load(Ordering::Relaxed)
    }

    /// Plain methods stay plain.
    fn helper(&self) -> usize {
        1
    }

    #[after_init]
    async fn ready(&self, server: WsServer) {
        let _ = server.path();
    }

    #[handle_connection]
    fn connected(&self, client: Client) -> Result<(), WsException> {
        client.join("all")?;
        Ok(())
    }

    #[handle_disconnect]
    fn disconnected(&self) {
        let _ = self.helper();
    }
}

#[websocket_gateway(path = "/unit")]
struct UnitGateway;

#[websocket_gateway]
impl UnitGateway {}

#[websocket_gateway(path = "/tuple")]
struct TupleGateway(Inject<Counter>, WsServer);

#[websocket_gateway]
impl TupleGateway {
    #[subscribe("count")]
    fn count(&self) -> usize {
        self.0.0.load(Ordering::Relaxed) + self.1.client_count()
    }
}

#[tokio::main]
async fn main() {
    // `after_init` is async: the app is built inside a runtime.
    let app = GatewayApp::new()
        .provide(Counter(AtomicUsize::new(0)))
        .gateway::<EveryGateway>()
        .gateway::<UnitGateway>()
        .gateway::<TupleGateway>()
        .build()
        .unwrap();
    assert_eq!(app.gateways().len(), 3);
}
