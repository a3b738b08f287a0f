//! Two instances of the chat example sharing rooms through Redis: a client of each joins one
//! room, and each hears the other. Each test runs on every backend `./scripts/test.sh`
//! starts: the Redis on 127.0.0.1:6379 in classic and per-room mode, and the Redis Cluster
//! on 7000-7002 (per-room, sharded pub/sub).

use chat::auth::AuthService;
use serde_json::json;
use ws_gateway_axum::test_client::{TestClient, TestServer};
use ws_gateway_redis::{RedisAdapter, RedisConfig};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Classic,
    PerRoom,
    Cluster,
}

/// Runs each named `async fn(Backend)` once per backend: `name::classic`, `name::per_room`,
/// `name::cluster`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn classic() {
                super::$name(super::Backend::Classic).await;
            }

            #[tokio::test]
            async fn per_room() {
                super::$name(super::Backend::PerRoom).await;
            }

            #[tokio::test]
            async fn cluster() {
                super::$name(super::Backend::Cluster).await;
            }
        }
    )*};
}

on_every_backend!(
    clients_of_two_instances_chat_in_one_room,
    a_poll_is_answered_and_named_across_instances,
);

async fn instance(backend: Backend, prefix: &str, auth: &AuthService) -> TestServer {
    let app = chat::app_with(auth.clone());
    let app = match backend {
        Backend::Classic | Backend::PerRoom => {
            let mut config = RedisConfig::new("redis://127.0.0.1:6379").prefix(prefix);
            if backend == Backend::PerRoom {
                config = config.per_room();
            }
            let redis = RedisAdapter::connect(config)
                .await
                .expect("Redis listens on 127.0.0.1:6379 (./scripts/test.sh starts it)");
            app.adapter(redis)
        }
        Backend::Cluster => {
            let nodes = (7000..=7002).map(|port| format!("redis://127.0.0.1:{port}"));
            let redis = RedisAdapter::connect_cluster(RedisConfig::cluster(nodes).prefix(prefix))
                .await
                .expect("a Redis Cluster on 127.0.0.1:7000-7002 (./scripts/test.sh starts it)");
            app.adapter(redis)
        }
    };
    let app = app.build().unwrap();
    let router = chat::router(&app, auth.clone());
    let server = TestServer::start_router(app, router).await.unwrap();
    // Per-room mode subscribes to the gateway's channel once the app attached it.
    server.app().server("/chat").unwrap().synced().await;
    server
}

fn prefix(line: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("chat-test-{}-{line}-{nanos}", std::process::id())
}

async fn joined(server: &TestServer, auth: &AuthService, user: &str) -> TestClient {
    let token = auth.issue(user).unwrap();
    let mut client = TestClient::connect(&format!("{}?token={token}", server.url("/chat")))
        .await
        .unwrap();
    // The chat has recovery on: its first frame is the session's.
    client.expect("session").await.unwrap();
    client
        .emit("join", &json!({"room": "lobby"}))
        .await
        .unwrap();
    client.expect("joined").await.unwrap();
    client
}

async fn clients_of_two_instances_chat_in_one_room(backend: Backend) {
    let prefix = prefix(line!());
    let auth = AuthService::new("scale-out-secret");
    let a = instance(backend, &prefix, &auth).await;
    let b = instance(backend, &prefix, &auth).await;
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

/// A poll on instance A reaches the room's members on B through Redis, and names them:
/// their user's room (`@name`) tells who they are, where A has no identity of theirs.
async fn a_poll_is_answered_and_named_across_instances(backend: Backend) {
    let prefix = prefix(line!());
    let auth = AuthService::new("scale-out-secret");
    let a = instance(backend, &prefix, &auth).await;
    let b = instance(backend, &prefix, &auth).await;
    let mut ann = joined(&a, &auth, "ann").await;
    let mut amy = joined(&a, &auth, "amy").await;
    let mut bob = joined(&b, &auth, "bob").await;

    ann.send_text(r#"{"event":"poll","data":{"room":"lobby","question":"Ready?"},"id":9}"#)
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    let question = json!({"question": "Ready?", "from": "ann"});
    let to_bob = bob.expect_frame("question").await.unwrap();
    assert_eq!(to_bob.data, question);
    let to_amy = amy.expect_frame("question").await.unwrap();
    assert_eq!(to_amy.data, question);
    bob.send_text(format!(
        r#"{{"ack":{},"data":{{"z":true,"a":null}}}}"#,
        to_bob.ack.unwrap()
    ))
    .await
    .unwrap();
    amy.answer(to_amy.ack.unwrap(), &"yes").await.unwrap();

    let result = ann.expect_frame("poll").await.unwrap();
    assert!(
        asked.elapsed() < chat::chat::POLL_TIMEOUT,
        "both answered: B reported how many it asked, no need to wait for the timeout"
    );
    assert_eq!(result.id, Some(json!(9)));
    assert_eq!(result.data["unanswered"], 0);
    let mut answers = result.data["answers"].as_array().unwrap().clone();
    answers.sort_by_key(|answer| answer["from"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        answers,
        [
            json!({"from": "amy", "answer": "yes"}),
            json!({"from": "bob", "answer": {"z": true, "a": null}}),
        ]
    );
    assert!(
        result
            .raw
            .contains(r#"{"from":"bob","answer":{"z":true,"a":null}}"#),
        "{}",
        result.raw
    );
}
