//! Providers that depend on providers, over real sockets: a factory built from two
//! providers, an async factory that connects to the local Redis before the app serves, a
//! gateway's instance reached from a provider and from an axum handler, and the build errors
//! of cycles and missing dependencies, word for word.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use serde_json::json;
use ws_gateway_axum::prelude::*;
use ws_gateway_axum::test_client::TestServer;
use ws_gateway_core::{BuildError, ServerOf};

// A factory built from two providers.

struct Config {
    currency: &'static str,
}

struct Rates {
    eur_per_usd: f64,
}

/// Built by a factory from `Config` and `Rates`.
struct Pricing {
    currency: &'static str,
    rate: f64,
}

#[websocket_gateway(path = "/prices")]
struct PriceGateway {
    pricing: Inject<Pricing>,
}

#[websocket_gateway]
impl PriceGateway {
    #[subscribe("price")]
    fn price(&self, usd: f64) -> serde_json::Value {
        json!({"amount": usd * self.pricing.rate, "currency": self.pricing.currency})
    }
}

#[tokio::test]
async fn a_factory_built_from_two_providers_serves_a_handler() {
    let app = GatewayApp::new()
        .gateway::<PriceGateway>()
        // Given before the providers it needs: the build orders it.
        .provide_factory(|config: Inject<Config>, rates: Inject<Rates>| Pricing {
            currency: config.currency,
            rate: rates.eur_per_usd,
        })
        .provide(Config { currency: "EUR" })
        .provide(Rates { eur_per_usd: 0.5 })
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut client = server.connect("/prices").await.unwrap();
    client.emit("price", &10.0).await.unwrap();
    assert_eq!(
        client.expect("price").await.unwrap(),
        json!({"amount": 5.0, "currency": "EUR"})
    );
}

// An async factory: a Redis connection that must be made before anything uses it.

struct RedisUrl(String);

/// Counts hits in Redis, over a connection its async factory opened.
struct HitCounter {
    connection: redis::aio::MultiplexedConnection,
    key: String,
}

impl HitCounter {
    async fn connect(url: &str, key: String) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        // Connected and answering before the app is served.
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(Self { connection, key })
    }

    async fn hit(&self) -> redis::RedisResult<i64> {
        let mut connection = self.connection.clone();
        redis::cmd("INCR")
            .arg(&self.key)
            .query_async(&mut connection)
            .await
    }
}

#[websocket_gateway(path = "/hits")]
struct HitGateway {
    counter: Inject<HitCounter>,
}

#[websocket_gateway]
impl HitGateway {
    #[subscribe("hit")]
    async fn hit(&self) -> Result<i64, WsException> {
        self.counter
            .hit()
            .await
            .map_err(|err| WsException::new(err.to_string()))
    }
}

fn unique_key() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ws-gateway-tests:providers:{}:{nanos}", std::process::id())
}

fn hit_app(url: String) -> GatewayApp {
    let key = unique_key();
    GatewayApp::new()
        .gateway::<HitGateway>()
        .provide(RedisUrl(url))
        .provide_async_factory(move |url: Inject<RedisUrl>| async move {
            HitCounter::connect(&url.0, key).await
        })
}

#[tokio::test]
async fn an_async_factory_connects_to_redis_before_the_app_serves() {
    // The build may run on another task: its future is `Send`.
    let app = tokio::spawn(hit_app("redis://127.0.0.1:6379".to_owned()).build_async())
        .await
        .unwrap()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut client = server.connect("/hits").await.unwrap();
    for expected in 1..=3 {
        client.emit("hit", &()).await.unwrap();
        assert_eq!(client.expect("hit").await.unwrap(), expected);
    }
}

#[tokio::test]
async fn an_async_factory_that_cannot_connect_fails_the_build() {
    // A port nobody listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = hit_app(format!("redis://{closed}"))
        .build_async()
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Factory { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the factory of HitCounter failed: "),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn a_sync_build_with_an_async_factory_says_to_await_it() {
    let err = hit_app("redis://127.0.0.1:6379".to_owned())
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the factory of HitCounter is async: build the app with `.build_async().await` instead of `.build()`"
    );
}

// A gateway's instance, reached from a provider and from an axum handler.

#[websocket_gateway(path = "/news")]
struct NewsGateway {
    server: WsServer,
    sent: Inject<Sent>,
}

#[derive(Default)]
struct Sent(AtomicUsize);

#[websocket_gateway]
impl NewsGateway {
    #[subscribe("follow")]
    fn follow(&self, client: Client) -> Result<WsResponse<()>, RoomError> {
        client.join("readers")?;
        Ok(WsResponse::new("following", ()))
    }
}

impl NewsGateway {
    /// Sends a headline to the readers: called by the `Newsroom` provider and by axum.
    fn announce(&self, headline: &str) -> usize {
        self.sent.0.fetch_add(1, Ordering::Relaxed);
        self.server
            .to("readers")
            .emit("headline", &headline)
            .unwrap_or(0)
    }
}

/// A provider built from the gateway's instance.
struct Newsroom {
    news: Inject<NewsGateway>,
}

/// Another gateway, whose handler reaches `NewsGateway` through `Newsroom`.
#[websocket_gateway(path = "/editor")]
struct EditorGateway {
    newsroom: Inject<Newsroom>,
}

#[websocket_gateway]
impl EditorGateway {
    #[subscribe("publish")]
    fn publish(&self, headline: String) -> usize {
        self.newsroom.news.announce(&headline)
    }
}

async fn announce(
    State(news): State<Inject<NewsGateway>>,
    Json(headline): Json<String>,
) -> Json<usize> {
    Json(news.announce(&headline))
}

#[tokio::test]
async fn a_provider_and_an_axum_handler_reach_a_gateway_instance() {
    let app = GatewayApp::new()
        // EditorGateway needs Newsroom, which needs NewsGateway: built in that order.
        .gateway::<EditorGateway>()
        .gateway::<NewsGateway>()
        .provide_factory(|news: Inject<NewsGateway>| Newsroom { news })
        .provide(Sent::default())
        .build()
        .unwrap();
    let news = app.instance_of::<NewsGateway>().unwrap();
    let newsroom = app.providers().get::<Newsroom>().unwrap();
    assert!(std::ptr::eq(&*news, &*newsroom.news), "one instance");

    let router = (&app)
        .into_router()
        .route("/announce", axum::routing::post(announce))
        .with_state(news.clone());
    let server = TestServer::start_router(app, router).await.unwrap();
    let mut reader = server.connect("/news").await.unwrap();
    reader.emit("follow", &()).await.unwrap();
    reader.expect("following").await.unwrap();

    // Through the provider, from another gateway's handler.
    let mut editor = server.connect("/editor").await.unwrap();
    editor.emit("publish", &"from the editor").await.unwrap();
    assert_eq!(editor.expect("publish").await.unwrap(), 1);
    assert_eq!(reader.expect("headline").await.unwrap(), "from the editor");

    // Through an axum handler.
    let (status, body) =
        gateway_tests::post_json(server.addr(), "/announce", &json!("from axum")).await;
    assert_eq!((status, body), (200, json!(1)));
    assert_eq!(reader.expect("headline").await.unwrap(), "from axum");
    assert_eq!(news.sent.0.load(Ordering::Relaxed), 2);
}

// A gateway's server as a provider breaks what would be a cycle.

/// Injected by `AlarmGateway`, sends to its clients through `ServerOf<AlarmGateway>`.
struct Siren {
    server: ServerOf<AlarmGateway>,
}

#[websocket_gateway(path = "/alarm")]
struct AlarmGateway {
    siren: Inject<Siren>,
}

#[websocket_gateway]
impl AlarmGateway {
    #[subscribe("ring")]
    fn ring(&self) -> usize {
        self.siren.server.emit("alarm", &"ring").unwrap_or(0)
    }
}

#[tokio::test]
async fn a_service_the_gateway_injects_sends_through_its_server() {
    let app = GatewayApp::new()
        .gateway::<AlarmGateway>()
        .provide_factory(|server: ServerOf<AlarmGateway>| Siren { server })
        .build()
        .unwrap();
    let server = TestServer::start(app).await.unwrap();
    let mut first = server.connect("/alarm").await.unwrap();
    let mut second = server.connect("/alarm").await.unwrap();
    first.emit("ring", &()).await.unwrap();
    assert_eq!(first.expect("alarm").await.unwrap(), "ring");
    assert_eq!(second.expect("alarm").await.unwrap(), "ring");
    assert_eq!(first.expect("ring").await.unwrap(), 2);
}

// The build errors, word for word.

/// Injected by `LoopGateway`, and needs it: a cycle.
struct Dispatcher {
    _gateway: Inject<LoopGateway>,
}

#[websocket_gateway(path = "/loop")]
struct LoopGateway {
    _dispatcher: Inject<Dispatcher>,
}

#[websocket_gateway]
impl LoopGateway {}

#[test]
fn a_gateway_that_injects_a_provider_that_injects_it_is_a_cycle() {
    let err = GatewayApp::new()
        .gateway::<LoopGateway>()
        .provide_factory(|gateway: Inject<LoopGateway>| Dispatcher { _gateway: gateway })
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "can't resolve dependencies: Dispatcher -> LoopGateway -> Dispatcher is a cycle; break it, e.g. a provider that only sends to a gateway's clients can take `ServerOf<G>` instead of the gateway"
    );
}

struct Pool;
struct Repo;

#[websocket_gateway(path = "/repo")]
struct RepoGateway {
    _repo: Inject<Repo>,
}

#[websocket_gateway]
impl RepoGateway {}

#[test]
fn a_missing_dependency_names_who_needed_it() {
    let err = GatewayApp::new()
        .gateway::<RepoGateway>()
        .provide_factory(|_: Inject<Pool>| Repo)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::MissingDependency { .. }));
    assert_eq!(
        err.to_string(),
        "can't resolve dependencies of Repo: Repo needs `Pool`, which was not provided; add `.provide(...)` or a factory of `Pool` to the GatewayApp builder"
    );
    // A gateway's own field keeps its message, naming the field.
    let err = GatewayApp::new()
        .gateway::<RepoGateway>()
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("can't resolve dependencies of RepoGateway: field `_repo` needs"),
        "{err}"
    );
}

#[test]
fn a_dependency_on_a_gateway_the_app_does_not_serve_says_to_serve_it() {
    let err = GatewayApp::new()
        .gateway::<AlarmGateway>()
        .provide_factory(|server: ServerOf<AlarmGateway>| Siren { server })
        .provide_factory(|news: Inject<NewsGateway>| Newsroom { news })
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "can't resolve dependencies of Newsroom: Newsroom needs gateway `NewsGateway`, which this app does not serve; serve it with `.gateway::<NewsGateway>()`"
    );
    let err = GatewayApp::new()
        .gateway::<NewsGateway>()
        .provide(Sent::default())
        .provide_factory(|server: ServerOf<AlarmGateway>| Siren { server })
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "can't resolve dependencies of Siren: Siren needs `ServerOf<AlarmGateway>`, the server of gateway `AlarmGateway`, which this app does not serve; serve it with `.gateway::<AlarmGateway>()`"
    );
}
