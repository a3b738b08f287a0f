//! Per-connection state (`Client::state`) over real sockets: written by the connection hook,
//! read and changed by guards, interceptors and handlers, seen by the disconnect hook, kept
//! apart per client, and dropped when the connection ends.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::Notify;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::TestServer;

/// Messages a client sent so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent(u32);

/// Set by `mute`: the guard refuses this client's `say`.
#[derive(Clone)]
struct Muted;

/// What the disconnect hook saw, and the client handles kept past their connection.
#[derive(Default)]
struct Journal {
    at_disconnect: Mutex<Vec<(ClientId, Option<Sent>)>>,
    kept: Mutex<Vec<Client>>,
    changed: Notify,
}

struct NotMuted;

impl Guard for NotMuted {
    async fn can_activate(&self, cx: &Context<'_>) -> Result<bool, WsException> {
        Ok(!cx.client().is_some_and(|c| c.state().contains::<Muted>()))
    }
}

/// Counts every message that reaches a handler, in the client's state.
struct Count;

impl Interceptor for Count {
    async fn intercept(&self, cx: &Context<'_>, next: Next<'_>) -> Outcome {
        if let Some(client) = cx.client() {
            client.state().update(|sent: &mut Sent| sent.0 += 1);
        }
        next.run().await
    }
}

#[websocket_gateway(path = "/state")]
struct StateGateway {
    journal: Inject<Journal>,
}

#[websocket_gateway]
#[use_interceptors(Count)]
impl StateGateway {
    #[handle_connection]
    fn connected(&self, client: Client) {
        client.state().insert(Sent(0));
        self.journal.kept.lock().unwrap().push(client);
    }

    #[subscribe("say")]
    #[use_guards(NotMuted)]
    fn say(&self, client: Client, text: String) -> serde_json::Value {
        json!({"text": text, "sent": client.state().get::<Sent>().map(|s| s.0)})
    }

    #[subscribe("mute")]
    fn mute(&self, client: Client) -> bool {
        client.state().insert(Muted).is_none()
    }

    #[handle_disconnect]
    fn gone(&self, client: Client) {
        let sent = client.state().get::<Sent>();
        self.journal
            .at_disconnect
            .lock()
            .unwrap()
            .push((client.id(), sent));
        self.journal.changed.notify_waiters();
    }
}

#[tokio::test]
async fn state_is_per_connection_and_goes_with_it() {
    let journal = Arc::new(Journal::default());
    let app = GatewayApp::new()
        .gateway::<StateGateway>()
        .provide_arc(journal.clone())
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut alice = server.connect("/state").await.unwrap();
    let mut bob = server.connect("/state").await.unwrap();

    alice.emit("say", "one").await.unwrap();
    assert_eq!(
        alice.expect("say").await.unwrap(),
        json!({"text": "one", "sent": 1})
    );
    alice.emit("say", "two").await.unwrap();
    assert_eq!(
        alice.expect("say").await.unwrap(),
        json!({"text": "two", "sent": 2})
    );
    // Bob's count is his own.
    bob.emit("say", "hi").await.unwrap();
    assert_eq!(
        bob.expect("say").await.unwrap(),
        json!({"text": "hi", "sent": 1})
    );

    // A guard reads what a handler wrote.
    alice.emit("mute", &()).await.unwrap();
    assert_eq!(alice.expect("mute").await.unwrap(), json!(true));
    alice.emit("say", "three").await.unwrap();
    let refused = alice.expect("exception").await.unwrap();
    assert_eq!(refused["message"], "Forbidden resource");
    bob.emit("say", "still here").await.unwrap();
    assert_eq!(
        bob.expect("say").await.unwrap(),
        json!({"text": "still here", "sent": 2})
    );

    // The disconnect hook sees the state; after it, the state is gone even from a handle
    // the app kept.
    let alice_id = journal.kept.lock().unwrap()[0].id();
    alice.close().await.unwrap();
    loop {
        let changed = journal.changed.notified();
        if !journal.at_disconnect.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), changed)
            .await
            .expect("the disconnect hook runs");
    }
    // say, say, mute: the refused `say` never reached the interceptor (guards run first).
    assert_eq!(
        journal.at_disconnect.lock().unwrap()[0],
        (alice_id, Some(Sent(3)))
    );
    let kept = journal.kept.lock().unwrap()[0].clone();
    assert_eq!(kept.id(), alice_id);
    // The session clears the state right after the hook; wait for the server to let go.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while kept.state().contains::<Sent>() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the state outlives the connection"
        );
        tokio::task::yield_now().await;
    }
    assert!(!kept.state().contains::<Muted>());
}
