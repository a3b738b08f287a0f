//! The `ask` event of the three servers that ask for acknowledgements (`bench-server`,
//! `socketio-bench-server`, `raw-socketioxide`), over real sockets: every other client is
//! sent the ask's data as a `question` with an acknowledgement number, answers it, and the
//! sender gets `{"answers":<count>,"ask":<data>}` under `ask`.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

mod support;

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use support::{STEP, Wire, start};

/// Three receivers answer every question; the sender asks until its tally counts all three
/// (a receiver may be registered a moment after its handshake), then once more to see
/// that every receiver got exactly the ask's data.
async fn every_answer_is_collected(binary: &str, wire: Wire) {
    let server = start(binary).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let mut ws = wire.connect(server.port).await;
        let seen_tx = seen_tx.clone();
        receivers.push(tokio::spawn(async move {
            loop {
                let text = wire.next(&mut ws).await;
                let (event, data, ack) = wire.parse(&text);
                assert_eq!(event, "question", "{text}");
                let ack = ack.unwrap_or_else(|| panic!("a question without a number: {text}"));
                ws.send(Message::text(wire.answer(ack, &json!("ok"))))
                    .await
                    .expect("send the answer");
                seen_tx.send(data).expect("the test waits");
            }
        }));
    }
    let mut sender = wire.connect(server.port).await;
    let mut s = 0;
    loop {
        s += 1;
        let ask = json!({ "s": s, "text": "hello" });
        sender
            .send(Message::text(wire.event("ask", &ask)))
            .await
            .expect("send the ask");
        let (event, tally, ack) = wire.parse(&wire.next(&mut sender).await);
        assert_eq!((event.as_str(), ack), ("ask", None), "{tally}");
        assert_eq!(tally["ask"], ask, "{binary}");
        if tally["answers"] == 3 {
            break;
        }
        assert!(s < 50, "{binary}: never three answers: {tally}");
    }
    let ask = json!({ "s": 0, "text": "last" });
    sender
        .send(Message::text(wire.event("ask", &ask)))
        .await
        .expect("send the ask");
    let (_, tally, _) = wire.parse(&wire.next(&mut sender).await);
    assert_eq!(tally, json!({ "answers": 3, "ask": ask }), "{binary}");
    // The questions of the earlier asks may still be reported: skipped.
    let mut last = 0;
    while last < 3 {
        let data = tokio::time::timeout(STEP, seen.recv())
            .await
            .expect("every receiver reports the last question")
            .expect("the receivers run");
        last += usize::from(data == ask);
    }
    for receiver in receivers {
        receiver.abort();
    }
}

#[tokio::test]
async fn the_gateway_collects_every_answer_over_plain_websockets() {
    every_answer_is_collected(env!("CARGO_BIN_EXE_bench-server"), Wire::Json).await;
}

#[tokio::test]
async fn the_gateway_collects_every_answer_over_socketio() {
    every_answer_is_collected(env!("CARGO_BIN_EXE_socketio-bench-server"), Wire::SocketIo).await;
}

#[tokio::test]
async fn socketioxide_alone_collects_every_answer() {
    every_answer_is_collected(env!("CARGO_BIN_EXE_raw-socketioxide"), Wire::SocketIo).await;
}
