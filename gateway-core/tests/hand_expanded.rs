//! A gateway written out by hand the way `#[websocket_gateway]` expands it, driven through
//! the runtime without a socket. It pins the contract between the macros and the runtime.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::Value;
use ws_gateway_core::transport::{Answer, Handled};
use ws_gateway_core::{Client, GatewayApp, Handshake, Inject, WsException, WsResponse, WsServer};

struct Counter(std::sync::atomic::AtomicUsize);

/// A gateway expanded by hand.
// #[websocket_gateway(path = "/hand")]
pub struct HandGateway {
    counter: Inject<Counter>,
    server: WsServer,
}

#[automatically_derived]
impl ::ws_gateway_core::__private::Gateway for HandGateway {
    const PATH: &'static str = "/hand";
    const NAME: &'static str = "HandGateway";

    fn build(
        cx: &::ws_gateway_core::__private::BuildContext<'_>,
    ) -> ::core::result::Result<Self, ::ws_gateway_core::__private::BuildError> {
        ::core::result::Result::Ok(Self {
            counter: ::ws_gateway_core::__private::resolve(cx, "counter")?,
            server: ::ws_gateway_core::__private::resolve(cx, "server")?,
        })
    }
}

::ws_gateway_core::__private::register_gateway!(HandGateway);

// #[websocket_gateway]
impl HandGateway {
    // #[subscribe("events")]
    async fn handle_event(&self, data: Value) -> Value {
        data
    }

    // #[subscribe("identity")]
    fn identity(&self, n: u32) -> WsResponse<u32> {
        WsResponse::new("identity", n)
    }

    // #[subscribe("count")]
    fn count(&self, client: Client) -> Result<usize, WsException> {
        let n = self
            .counter
            .0
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n >= 1 {
            return Err(WsException::new("only once").with("client", client.id()));
        }
        Ok(self.server.client_count())
    }

    // #[subscribe("stream")]
    fn stream(&self, n: u8) -> impl futures_util::Stream<Item = WsResponse<u8>> + use<> {
        futures_util::stream::iter((0..n).map(|i| WsResponse::new("tick", i)))
    }

    // #[subscribe("boom")]
    fn boom(&self) {
        panic!("boom");
    }

    // #[handle_connection]
    fn on_connection(&self, client: Client) -> Result<(), WsException> {
        client.join("everyone")?;
        Ok(())
    }
}

#[doc(hidden)]
impl HandGateway {
    fn __gateway_handle_event(
        this: &::std::sync::Arc<Self>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let data = ::ws_gateway_core::__private::extract!(cx, Value);
        let this = ::std::sync::Arc::clone(this);
        let to = cx.reply_to();
        ::ws_gateway_core::__private::Dispatch::pending(async move {
            ::ws_gateway_core::__private::reply!(to, this.handle_event(data).await)
        })
    }

    fn __gateway_identity(
        this: &::std::sync::Arc<Self>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let n = ::ws_gateway_core::__private::extract!(cx, u32);
        ::ws_gateway_core::__private::Dispatch::ready(::ws_gateway_core::__private::reply!(
            cx.reply_to(),
            this.identity(n)
        ))
    }

    fn __gateway_count(
        this: &::std::sync::Arc<Self>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let client = ::ws_gateway_core::__private::extract!(cx, Client);
        ::ws_gateway_core::__private::Dispatch::ready(::ws_gateway_core::__private::reply!(
            cx.reply_to(),
            this.count(client)
        ))
    }

    fn __gateway_stream(
        this: &::std::sync::Arc<Self>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let n = ::ws_gateway_core::__private::extract!(cx, u8);
        ::ws_gateway_core::__private::Dispatch::ready(::ws_gateway_core::__private::reply!(
            cx.reply_to(),
            this.stream(n)
        ))
    }

    fn __gateway_boom(
        this: &::std::sync::Arc<Self>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        ::ws_gateway_core::__private::Dispatch::ready(::ws_gateway_core::__private::reply!(
            cx.reply_to(),
            this.boom()
        ))
    }

    fn __gateway_on_connection(
        this: &::std::sync::Arc<Self>,
        cx: &::ws_gateway_core::__private::Context<'_>,
    ) -> ::ws_gateway_core::__private::Dispatch {
        let client = ::ws_gateway_core::__private::extract!(cx, Client);
        ::ws_gateway_core::__private::Dispatch::ready(::ws_gateway_core::__private::hook_outcome(
            this.on_connection(client),
        ))
    }
}

#[automatically_derived]
impl ::ws_gateway_core::__private::GatewayHandlers for HandGateway {
    const HANDLERS: &'static [::ws_gateway_core::__private::Handler<Self>] = &[
        ::ws_gateway_core::__private::Handler {
            event: "events",
            method: "handle_event",
            call: Self::__gateway_handle_event,
            verify: |cx| ::ws_gateway_core::__private::verify!(cx, "handle_event"; "data": Value),
            layers: ::ws_gateway_core::__private::Layers::default,
            describe: |generator| {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                let reply = ::ws_gateway_core::__private::Tag::awaited_by(|this: &'static Self| {
                    this.handle_event(::core::unreachable!())
                });
                ::ws_gateway_core::__private::describe!(generator, reply; Value)
            },
            file: ::core::file!(),
            line: ::core::line!(),
        },
        ::ws_gateway_core::__private::Handler {
            event: "identity",
            method: "identity",
            call: Self::__gateway_identity,
            verify: |cx| ::ws_gateway_core::__private::verify!(cx, "identity"; "n": u32),
            layers: ::ws_gateway_core::__private::Layers::default,
            describe: |generator| {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                let reply =
                    ::ws_gateway_core::__private::Tag::returned_by(|this: &'static Self| {
                        this.identity(::core::unreachable!())
                    });
                ::ws_gateway_core::__private::describe!(generator, reply; u32)
            },
            file: ::core::file!(),
            line: ::core::line!(),
        },
        ::ws_gateway_core::__private::Handler {
            event: "count",
            method: "count",
            call: Self::__gateway_count,
            verify: |cx| ::ws_gateway_core::__private::verify!(cx, "count"; "client": Client),
            layers: ::ws_gateway_core::__private::Layers::default,
            describe: |generator| {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                let reply =
                    ::ws_gateway_core::__private::Tag::returned_by(|this: &'static Self| {
                        this.count(::core::unreachable!())
                    });
                ::ws_gateway_core::__private::describe!(generator, reply; Client)
            },
            file: ::core::file!(),
            line: ::core::line!(),
        },
        ::ws_gateway_core::__private::Handler {
            event: "stream",
            method: "stream",
            call: Self::__gateway_stream,
            verify: |cx| ::ws_gateway_core::__private::verify!(cx, "stream"; "n": u8),
            layers: ::ws_gateway_core::__private::Layers::default,
            describe: |generator| {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                let reply =
                    ::ws_gateway_core::__private::Tag::returned_by(|this: &'static Self| {
                        this.stream(::core::unreachable!())
                    });
                ::ws_gateway_core::__private::describe!(generator, reply; u8)
            },
            file: ::core::file!(),
            line: ::core::line!(),
        },
        ::ws_gateway_core::__private::Handler {
            event: "boom",
            method: "boom",
            call: Self::__gateway_boom,
            verify: |cx| ::ws_gateway_core::__private::verify!(cx, "boom";),
            layers: ::ws_gateway_core::__private::Layers::default,
            describe: |generator| {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                let reply =
                    ::ws_gateway_core::__private::Tag::returned_by(|this: &'static Self| {
                        this.boom()
                    });
                ::ws_gateway_core::__private::describe!(generator, reply; )
            },
            file: ::core::file!(),
            line: ::core::line!(),
        },
    ];
    const HOOKS: ::ws_gateway_core::__private::Hooks<Self> = ::ws_gateway_core::__private::Hooks {
        after_init: ::core::option::Option::None,
        handle_connection: ::core::option::Option::Some(::ws_gateway_core::__private::Hook {
            method: "on_connection",
            call: Self::__gateway_on_connection,
            verify: |cx| ::ws_gateway_core::__private::verify!(cx, "on_connection"; "client": Client),
        }),
        handle_disconnect: ::core::option::Option::None,
    };
}

/// The frame a request was answered with, or the message of the exception it got.
async fn text_of(handled: Handled) -> Result<Option<String>, String> {
    match handled.answer().await {
        Answer::Frame(frame) => {
            let value: Value = serde_json::from_str(frame.as_str()).unwrap();
            match value["event"].as_str() {
                Some("exception") => Err(value["data"]["message"].as_str().unwrap().to_owned()),
                _ => Ok(Some(frame.as_str().to_owned())),
            }
        }
        Answer::Nothing => Ok(None),
        other => panic!("unexpected {other:?}"),
    }
}

fn app() -> ws_gateway_core::App {
    GatewayApp::new()
        .provide(Counter(Default::default()))
        .gateway::<HandGateway>()
        .build()
        .unwrap()
}

#[tokio::test]
async fn dispatches_every_return_shape() {
    let app = app();
    let gw = &app.gateways()[0];
    let (client, _queue) = gw.open(Handshake::default(), 8);
    gw.connect(&client).await.unwrap();
    assert_eq!(gw.server().room_members("everyone"), vec![client.id()]);

    let echo = gw.handle_json(&client, r#"{"event":"events","data":{"a":1},"id":9}"#);
    assert_eq!(
        text_of(echo).await.unwrap().unwrap(),
        r#"{"event":"events","data":{"a":1},"id":9}"#
    );
    let identity = gw.handle_json(&client, r#"{"event":"identity","data":7}"#);
    assert_eq!(
        text_of(identity).await.unwrap().unwrap(),
        r#"{"event":"identity","data":7}"#
    );
    let count = gw.handle_json(&client, r#"{"event":"count"}"#);
    assert_eq!(
        text_of(count).await.unwrap().unwrap(),
        r#"{"event":"count","data":1}"#
    );
    let again = gw.handle_json(&client, r#"{"event":"count"}"#);
    assert_eq!(text_of(again).await.unwrap_err(), "only once");

    let Answer::Stream(stream) = gw
        .handle_json(&client, r#"{"event":"stream","data":3}"#)
        .answer()
        .await
    else {
        panic!("expected a stream")
    };
    let items: Vec<_> = stream
        .map(|item| item.frame().unwrap().as_str().to_owned())
        .collect()
        .await;
    assert_eq!(
        items,
        [
            r#"{"event":"tick","data":0}"#,
            r#"{"event":"tick","data":1}"#,
            r#"{"event":"tick","data":2}"#
        ]
    );
    gw.disconnect(&client).await;
    assert_eq!(gw.server().client_count(), 0);
    assert!(gw.server().rooms().is_empty());
}

#[tokio::test]
async fn rejects_precisely() {
    let app = app();
    let gw = &app.gateways()[0];
    let (client, _queue) = gw.open(Handshake::default(), 8);
    for (text, message) in [
        (r#"{"event":"nope"}"#, r#"Unknown event "nope""#),
        (
            r#"{"event":"identity","data":"x"}"#,
            r#"Invalid message body: invalid type: string "x", expected u32 at line 1 column 3"#,
        ),
        (
            "{",
            "Malformed JSON: EOF while parsing an object at line 1 column 1",
        ),
        ("{\"event\":\"boom\"}", "Internal server error"),
    ] {
        let err = text_of(gw.handle_json(&client, text)).await.unwrap_err();
        assert_eq!(err, message, "for {text}");
    }
    let answer = gw
        .handle_json(&client, r#"{"event":"nope","data":[1],"id":"q"}"#)
        .answer()
        .await;
    assert_eq!(
        answer.frame().unwrap().as_str(),
        r#"{"event":"exception","data":{"status":"error","message":"Unknown event \"nope\"","cause":{"pattern":"nope","data":[1]}},"id":"q"}"#
    );
}

#[test]
fn missing_provider_names_gateway_field_and_type() {
    let err = GatewayApp::new()
        .gateway::<HandGateway>()
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("can't resolve dependencies of HandGateway: field `counter` needs `hand_expanded::Counter`"), "{err}");
}

#[test]
fn handlers_are_plain_methods() {
    let gw = HandGateway {
        counter: Inject::new(Counter(Default::default())),
        server: app().server("/hand").unwrap(),
    };
    assert_eq!(gw.identity(3).into_data(), 3);
    let _ = Arc::new(gw);
}

/// With the `asyncapi` feature, `describe!` reads the body among the arguments (not the
/// `Client` extractor) and the reply: a `Result` by its `Ok` value, a stream by its items, a
/// `WsResponse` by its data, `()` as no reply.
#[cfg(feature = "asyncapi")]
#[test]
fn describes_bodies_and_replies() {
    let app = app();
    let mut generator = ws_gateway_core::schemars::SchemaGenerator::default();
    let docs = app.gateways()[0].describe(&mut generator);
    let described: Vec<_> = docs
        .iter()
        .map(|event| {
            let type_of = |schema: &Option<Value>| {
                schema
                    .as_ref()
                    .map(|schema| schema.get("type").cloned().unwrap_or(Value::Bool(true)))
            };
            (
                event.event,
                type_of(&event.doc.body),
                type_of(&event.doc.reply),
            )
        })
        .collect();
    let integer = || Some(Value::from("integer"));
    let any = || Some(Value::Bool(true));
    assert_eq!(
        described,
        [
            ("events", any(), any()),
            ("identity", integer(), integer()),
            ("count", None, integer()),
            ("stream", integer(), integer()),
            ("boom", None, None),
        ]
    );
}
