//! Micro-benchmarks of the message hot path, without a socket: `cargo bench -p ws-gateway-core
//! --bench dispatch`.
//!
//! - `frame_decode`: parsing `{"event":..,"data":..}` (event borrowed, data kept raw);
//! - `handle_json`: decode + event lookup + extraction + a sync handler + reply encode,
//!   through the pipeline (`GatewayRuntime::handle_json`), for a raw-JSON echo, a typed echo
//!   and a `serde_json::Value` echo (`--features preserve_order`: with an `IndexMap`);
//! - `reply_encode`: encoding `{"event":..,"data":..}` from a raw body and from a typed one.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;
use serde_json::value::RawValue;
use std::hint::black_box;
use ws_gateway_core::prelude::*;
use ws_gateway_core::transport::{Answer, Handled, parse};
use ws_gateway_core::{Frame, Handshake};

/// The ~60-byte echo request of the load generator.
const ECHO: &str = r#"{"event":"echo","data":{"user":"bench","text":"hello, gateway"}}"#;
const ECHO_VALUE: &str =
    r#"{"event":"echo_value","data":{"user":"bench","text":"hello, gateway"}}"#;
const ECHO_TYPED: &str =
    r#"{"event":"echo_typed","data":{"user":"bench","text":"hello, gateway"}}"#;

/// The benchmark gateway: the same handlers as `bench-server`.
#[websocket_gateway(path = "/bench")]
pub struct BenchGateway;

#[websocket_gateway]
impl BenchGateway {
    #[subscribe("echo")]
    fn echo(&self, data: Box<RawValue>) -> Box<RawValue> {
        data
    }

    #[subscribe("echo_value")]
    fn echo_value(&self, data: serde_json::Value) -> serde_json::Value {
        data
    }

    #[subscribe("echo_typed")]
    fn echo_typed(&self, data: Owned) -> Owned {
        data
    }
}

#[derive(Serialize)]
struct Message<'a> {
    user: &'a str,
    text: &'a str,
}

#[derive(Serialize, serde::Deserialize)]
struct Owned {
    user: String,
    text: String,
}

/// The reply frame of a request answered inline.
fn reply_of(handled: Handled) -> Option<Frame> {
    match handled {
        Handled::Ready(Answer::Frame(frame)) => Some(frame),
        _ => None,
    }
}

fn benches(c: &mut Criterion) {
    let Ok(app) = GatewayApp::new().gateway::<BenchGateway>().build() else {
        panic!("the bench gateway builds");
    };
    let gateway = &app.gateways()[0];
    let (client, _queue) = gateway.open(Handshake::default(), 1024);

    // The handlers answer as expected before anything is timed.
    for request in [ECHO, ECHO_VALUE, ECHO_TYPED] {
        let reply = reply_of(gateway.handle_json(&client, request)).map(|f| f.as_str().to_owned());
        // The `Value` echo sorts `user` after `text`, unless `preserve_order` is on.
        assert!(reply.is_some_and(|reply| request == ECHO_VALUE || reply == request));
    }

    c.bench_function("frame_decode", |b| {
        b.iter(|| parse(black_box(ECHO)).is_ok());
    });

    let mut group = c.benchmark_group("handle_json");
    group.bench_function("echo_raw", |b| {
        b.iter(|| reply_of(gateway.handle_json(&client, black_box(ECHO))));
    });
    group.bench_function("echo_value", |b| {
        b.iter(|| reply_of(gateway.handle_json(&client, black_box(ECHO_VALUE))));
    });
    group.bench_function("echo_typed", |b| {
        b.iter(|| reply_of(gateway.handle_json(&client, black_box(ECHO_TYPED))));
    });
    group.finish();

    let raw = serde_json::value::to_raw_value(&Message {
        user: "bench",
        text: "hello, gateway",
    });
    let Ok(raw) = raw else {
        panic!("the body encodes");
    };
    let mut group = c.benchmark_group("reply_encode");
    group.bench_function("raw", |b| {
        b.iter(|| Frame::event(black_box("echo"), black_box(&raw)).is_ok());
    });
    group.bench_function("typed", |b| {
        let body = Message {
            user: "bench",
            text: "hello, gateway",
        };
        b.iter(|| Frame::event(black_box("echo"), black_box(&body)).is_ok());
    });
    group.finish();
}

criterion_group!(dispatch, benches);
criterion_main!(dispatch);
