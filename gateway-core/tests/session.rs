//! The session driver's behaviour, on a connection over in-memory channels: what every
//! transport gets (ordering, limits, backpressure, routes, closes, shutdown).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use ws_gateway_core::prelude::*;
use ws_gateway_core::transport::{self, Closing, Connection, Decoded, Gone, Received, Session};
use ws_gateway_core::{ConnectionConfig, Frame, Handshake, RateLimit};

/// What the session wrote and how it closed.
#[derive(Default)]
struct Wire {
    /// Each frame written, with the route of the request it answers.
    written: Mutex<Vec<(Value, Option<usize>)>>,
    closed: Mutex<Option<Closing>>,
    /// Messages the session took from the socket.
    taken: AtomicUsize,
    changed: Notify,
}

impl Wire {
    async fn frames(&self, n: usize) -> Vec<(Value, Option<usize>)> {
        self.until(|wire| wire.written.lock().unwrap().len() >= n)
            .await;
        self.written.lock().unwrap().clone()
    }

    async fn closing(&self) -> Closing {
        self.until(|wire| wire.closed.lock().unwrap().is_some())
            .await;
        self.closed.lock().unwrap().clone().unwrap()
    }

    async fn until(&self, done: impl Fn(&Self) -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.changed.notified();
                if done(self) {
                    return;
                }
                changed.await;
            }
        })
        .await
        .expect("timed out");
    }
}

/// Lines of the JSON protocol in; each request's route is its number.
struct Lines {
    input: mpsc::UnboundedReceiver<String>,
    wire: Arc<Wire>,
}

impl Connection for Lines {
    type Message = (usize, String);
    type Route = usize;

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<(usize, String)>> {
        self.input.poll_recv(cx).map(|line| match line {
            Some(line) => {
                let n = self.wire.taken.fetch_add(1, Ordering::SeqCst);
                Received::Message((n, line))
            }
            None => Received::Closed,
        })
    }

    fn size(&self, (_, line): &(usize, String)) -> usize {
        line.len()
    }

    fn decode<'m>(&self, (n, line): &'m (usize, String)) -> Decoded<'m, usize> {
        match transport::parse(line) {
            Ok(request) => Decoded::Request(request, *n),
            Err(err) => Decoded::Invalid(err.into()),
        }
    }

    async fn feed(&mut self, frame: Frame, route: Option<&usize>) -> Result<(), Gone> {
        let value = serde_json::from_str(frame.as_str()).unwrap();
        self.wire
            .written
            .lock()
            .unwrap()
            .push((value, route.copied()));
        self.wire.changed.notify_waiters();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        Ok(())
    }

    async fn close(&mut self, how: Closing) {
        *self.wire.closed.lock().unwrap() = Some(how);
        self.wire.changed.notify_waiters();
    }
}

/// Lets the `wait` handler finish.
#[derive(Default)]
struct Gate {
    started: AtomicUsize,
    open: Notify,
    changed: Notify,
}

impl Gate {
    /// Waits until a `wait` handler has started.
    async fn wait_started(&self) {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let changed = self.changed.notified();
                if self.started.load(Ordering::SeqCst) > 0 {
                    return;
                }
                changed.await;
            }
        })
        .await
        .expect("the handler never started");
    }
}

#[websocket_gateway(path = "/session")]
struct SessionGateway {
    gate: Inject<Gate>,
}

#[websocket_gateway]
impl SessionGateway {
    #[subscribe("echo")]
    fn echo(&self, data: Value) -> Value {
        data
    }

    /// Emits, then replies: the client must see them in that order.
    #[subscribe("emit_then_reply")]
    fn emit_then_reply(&self, client: Client) -> &'static str {
        client.emit("first", &1).unwrap();
        "second"
    }

    #[subscribe("wait")]
    async fn wait(&self) -> &'static str {
        let opened = self.gate.open.notified();
        self.gate.started.fetch_add(1, Ordering::SeqCst);
        self.gate.changed.notify_waiters();
        opened.await;
        "waited"
    }

    #[subscribe("kick")]
    fn kick(&self) -> Result<(), WsException> {
        Err(WsException::new("Kicked").close(4000, "kicked"))
    }

    #[handle_connection]
    fn connected(&self, client: Client) -> Result<(), WsException> {
        match client.handshake().uri.query() {
            Some("deny") => Err(WsException::new("Not today")),
            _ => Ok(()),
        }
    }
}

struct Served {
    app: App,
    gate: Arc<Gate>,
    input: mpsc::UnboundedSender<String>,
    wire: Arc<Wire>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    fn send(&self, line: &str) {
        self.input.send(line.to_owned()).unwrap();
    }
}

fn serve_with(config: ConnectionConfig, uri: &str) -> Served {
    let gate = Arc::new(Gate::default());
    let app = GatewayApp::new()
        .provide_arc(Arc::clone(&gate))
        .config(config)
        .gateway::<SessionGateway>()
        .build()
        .unwrap();
    let (input, lines) = mpsc::unbounded_channel();
    let wire = Arc::new(Wire::default());
    let connection = Lines {
        input: lines,
        wire: Arc::clone(&wire),
    };
    let handshake = Handshake::new(uri.parse().unwrap(), Default::default());
    let session = Session::new(&app.gateways()[0], &app, handshake);
    let task = tokio::spawn(session.serve(connection));
    Served {
        app,
        gate,
        input,
        wire,
        task,
    }
}

fn serve() -> Served {
    serve_with(ConnectionConfig::default(), "/session")
}

fn close_code(closing: &Closing) -> u16 {
    match closing {
        Closing::Server(request) => request.code,
        other => panic!("expected the server to close, got {other:?}"),
    }
}

#[tokio::test]
async fn replies_carry_their_route_and_follow_what_the_handler_emitted() {
    let served = serve();
    served.send(r#"{"event":"echo","data":[1],"id":"a"}"#);
    served.send(r#"{"event":"emit_then_reply"}"#);
    let frames = served.wire.frames(3).await;
    assert_eq!(
        frames,
        [
            (json!({"event":"echo","data":[1],"id":"a"}), Some(0)),
            // An emit is no reply: no route.
            (json!({"event":"first","data":1}), None),
            (json!({"event":"emit_then_reply","data":"second"}), Some(1)),
        ]
    );
}

#[tokio::test]
async fn a_bad_message_is_answered_and_the_session_goes_on() {
    let served = serve();
    served.send("{oops");
    served.send(r#"{"event":"nope","data":1}"#);
    served.send(r#"{"event":"echo","data":2}"#);
    let frames = served.wire.frames(3).await;
    assert_eq!(frames[0].0["event"], "exception");
    assert!(
        frames[0].0["data"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON")
    );
    // A message that did not decode has no route; one that did keeps it.
    assert_eq!(frames[0].1, None);
    assert_eq!(frames[1].0["data"]["message"], r#"Unknown event "nope""#);
    assert_eq!(frames[1].1, Some(1));
    assert_eq!(frames[2].0, json!({"event":"echo","data":2}));
    assert!(served.wire.closed.lock().unwrap().is_none());
}

#[tokio::test]
async fn nesting_past_the_limit_is_refused_with_the_request_as_cause() {
    let mut config = ConnectionConfig::default();
    config.max_json_depth = 3;
    let served = serve_with(config, "/session");
    served.send(r#"{"event":"echo","data":[[1]]}"#);
    served.send(r#"{"event":"echo","data":[[[1]]],"id":5}"#);
    let frames = served.wire.frames(2).await;
    assert_eq!(frames[0].0, json!({"event":"echo","data":[[1]]}));
    assert_eq!(
        frames[1].0,
        json!({"event":"exception","data":{"status":"error",
            "message":"Message nested too deeply: at most 3 levels of arrays and objects",
            "cause":{"pattern":"echo","data":[[[1]]]}},"id":5})
    );
}

#[tokio::test]
async fn sustained_flooding_is_refused_then_closed_with_1008() {
    let mut config = ConnectionConfig::default();
    let mut limit = RateLimit::new(1, 2);
    limit.close_after = 3;
    config.rate_limit = Some(limit);
    let served = serve_with(config, "/session");
    for n in 0..10 {
        served.send(&format!(r#"{{"event":"echo","data":{n}}}"#));
    }
    let closing = served.wire.closing().await;
    assert_eq!(close_code(&closing), 1008);
    let frames = served.wire.written.lock().unwrap().clone();
    // The burst passes, then exceptions, until `close_after` rejections in a row.
    assert_eq!(frames[0].0, json!({"event":"echo","data":0}));
    assert_eq!(frames[1].0, json!({"event":"echo","data":1}));
    assert!(
        frames[2..]
            .iter()
            .all(|(frame, _)| frame["event"] == "exception"
                && frame["data"]["message"]
                    == "Rate limit exceeded: at most 1 messages per second")
    );
    assert_eq!(frames.len(), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn past_the_in_flight_limit_the_client_is_not_read() {
    let mut config = ConnectionConfig::default();
    config.max_in_flight = 1;
    let served = serve_with(config, "/session");
    served.send(r#"{"event":"wait"}"#);
    served.send(r#"{"event":"echo","data":1}"#);
    let gate = &served.gate;
    gate.wait_started().await;
    // On this one-thread runtime the session runs whenever the test yields: had it been
    // reading, it would have taken the second message by now.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(served.wire.taken.load(Ordering::SeqCst), 1);
    gate.open.notify_waiters();
    let frames = served.wire.frames(2).await;
    assert_eq!(frames[0].0, json!({"event":"wait","data":"waited"}));
    assert_eq!(frames[1].0, json!({"event":"echo","data":1}));
}

#[tokio::test]
async fn an_exception_that_asks_to_close_closes_after_its_frame() {
    let served = serve();
    served.send(r#"{"event":"kick"}"#);
    let closing = served.wire.closing().await;
    assert_eq!(close_code(&closing), 4000);
    let frames = served.wire.frames(1).await;
    assert_eq!(frames[0].0["data"]["message"], "Kicked");
    served.task.await.unwrap();
    assert_eq!(served.app.gateways()[0].server().client_count(), 0);
}

#[tokio::test]
async fn a_rejected_connection_gets_the_exception_then_1008() {
    let served = serve_with(ConnectionConfig::default(), "/session?deny");
    let closing = served.wire.closing().await;
    assert_eq!(close_code(&closing), 1008);
    let frames = served.wire.frames(1).await;
    assert_eq!(
        frames[0].0,
        json!({"event":"exception","data":{"status":"error","message":"Not today"}})
    );
    served.task.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_lets_its_queue_overflow_is_closed_with_1008() {
    let mut config = ConnectionConfig::default();
    config.outbound_queue = 4;
    let served = serve_with(config, "/session");
    // More frames than the queue holds, emitted before the session (on this one-thread
    // runtime) can drain any.
    let server = served.app.gateways()[0].server().clone();
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.client_count() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    for n in 0..10 {
        let _ = server.emit("flood", &n);
    }
    let closing = served.wire.closing().await;
    assert_eq!(close_code(&closing), 1008);
}

#[tokio::test]
async fn shutdown_lets_work_in_flight_finish_then_closes_with_1001() {
    let served = serve();
    served.send(r#"{"event":"wait"}"#);
    let gate = &served.gate;
    gate.wait_started().await;
    let app = served.app.clone();
    let shutdown = tokio::spawn(async move { app.shutdown(Duration::from_secs(5)).await });
    // Not closed while the handler runs; closed once it answered.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !served.app.connections().is_shutting_down() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(served.wire.closed.lock().unwrap().is_none());
    gate.open.notify_waiters();
    let closing = served.wire.closing().await;
    assert_eq!(close_code(&closing), 1001);
    let frames = served.wire.frames(1).await;
    assert_eq!(frames[0].0, json!({"event":"wait","data":"waited"}));
    assert_eq!(shutdown.await.unwrap(), 0);
}

#[tokio::test]
async fn a_client_that_goes_away_ends_the_session_and_leaves_its_rooms() {
    let served = serve();
    served.send(r#"{"event":"echo","data":1}"#);
    served.wire.frames(1).await;
    let Served {
        app, input, task, ..
    } = served;
    drop(input);
    task.await.unwrap();
    assert_eq!(app.gateways()[0].server().client_count(), 0);
}
