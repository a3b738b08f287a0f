//! Two instances of the chat example sharing rooms through Redis (127.0.0.1:6379, which
//! `./scripts/test.sh` starts): a client of each joins one room, and each hears the other.

use chat::auth::AuthService;
use serde_json::json;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_redis::{RedisAdapter, RedisConfig};

async fn instance(prefix: &str, auth: &AuthService) -> TestServer {
    let redis = RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379").prefix(prefix))
        .await
        .expect("Redis listens on 127.0.0.1:6379 (./scripts/test.sh starts it)");
    let app = chat::app_with(auth.clone()).adapter(redis).build().unwrap();
    let router = chat::router(&app, auth.clone());
    TestServer::start_router(app, router).await.unwrap()
}

async fn joined(server: &TestServer, auth: &AuthService, user: &str) -> TestClient {
    let token = auth.issue(user).unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap();
    client
        .emit("join", &json!({"room": "lobby"}))
        .await
        .unwrap();
    client.expect("joined").await.unwrap();
    client
}

#[tokio::test]
async fn clients_of_two_instances_chat_in_one_room() {
    let prefix = format!("chat-test-{}-{}", std::process::id(), line!());
    let auth = AuthService::new("scale-out-secret");
    let a = instance(&prefix, &auth).await;
    let b = instance(&prefix, &auth).await;
    let mut ann = joined(&a, &auth, "ann").await;
    let mut bob = joined(&b, &auth, "bob").await;

    ann.emit("message", &json!({"room": "lobby", "text": "from A"}))
        .await
        .unwrap();
    let expected = json!({"room": "lobby", "text": "from A", "from": "ann"});
    assert_eq!(bob.expect("message").await.unwrap(), expected);
    assert_eq!(ann.expect("message").await.unwrap(), expected);

    bob.emit("message", &json!({"room": "lobby", "text": "from B"}))
        .await
        .unwrap();
    let expected = json!({"room": "lobby", "text": "from B", "from": "bob"});
    assert_eq!(ann.expect("message").await.unwrap(), expected);
    assert_eq!(bob.expect("message").await.unwrap(), expected);

    // Exactly once: the next frame each gets is the answer to its own request.
    for client in [&mut ann, &mut bob] {
        client.emit("identity", &1).await.unwrap();
        assert_eq!(client.recv().await.unwrap().event, "identity");
    }
}
