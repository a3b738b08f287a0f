//! socketioxide 0.18 alone, the floor of our Socket.IO adapter: `PORT=3000 cargo run
//! --release -p gateway-bench --bin raw-socketioxide` (`-- --help`: the options and exit
//! codes).
//!
//! Namespace `/` at `/socket.io/` with socketioxide's default configuration (4 KiB read
//! buffer), `TCP_NODELAY`, a listen backlog of 1024, on axum 0.8. The data stays raw JSON
//! (`Box<RawValue>`, no DOM): `echo` emits the same event and data back to the socket,
//! `broadcast` emits it once to every socket of the namespace (the sender included), `ask`
//! emits it under `question` to every other socket with an acknowledgement
//! (`socket.broadcast().timeout(..).emit_with_ack(..)`, socketioxide's `AckStream`), collects
//! every answer and emits `{"answers":<count>,"ask":<data>}` under `ask` back to the sender.
//! No limits, no hooks.

use std::process::ExitCode;

use futures_util::StreamExt;
use gateway_bench::{ASK_TIMEOUT, Failure, ServerOptions, Tally};
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;

#[tokio::main]
async fn main() -> ExitCode {
    let options = ServerOptions::from_command_line(
        "raw-socketioxide",
        "socketioxide alone, by hand: echo and broadcast on namespace / at http://127.0.0.1:PORT/socket.io/",
    );
    gateway_bench::exit("raw-socketioxide", run(&options).await)
}

async fn run(options: &ServerOptions) -> Result<(), Failure> {
    let addr = options.addr();
    let (layer, io) = SocketIo::new_layer();
    // Registered in a connect middleware, which runs before the connect packet is sent: an
    // `async` connect handler is spawned after it, so an event sent as soon as the client is
    // connected could arrive before its handler exists, and be dropped.
    io.ns("/", on_connect.with(register));
    let listener =
        gateway_bench::raw_listener(addr).map_err(|source| Failure::Bind { addr, source })?;
    axum::serve(listener, axum::Router::new().layer(layer))
        .await
        .map_err(Failure::runtime)
}

/// Nothing: the handlers are registered by [`register`], the connect middleware.
async fn on_connect(_: SocketRef) {}

/// The event handlers. The data as a one-element tuple: socketioxide hands a bare
/// `Box<RawValue>` the whole `["echo",<data>]` array, a tuple its arguments after the event.
async fn register(socket: SocketRef) -> Result<(), std::convert::Infallible> {
    socket.on(
        "echo",
        async |socket: SocketRef, Data((data,)): Data<(Box<RawValue>,)>| {
            let _ = socket.emit("echo", &data);
        },
    );
    socket.on(
        "broadcast",
        async |io: SocketIo, Data((data,)): Data<(Box<RawValue>,)>| {
            let _ = io.emit("broadcast", &data).await;
        },
    );
    // `socket.broadcast()` is `io.broadcast()` less the sender, as the gateway's
    // `broadcast().except(sender)`. The answers stay raw JSON.
    socket.on(
        "ask",
        async |socket: SocketRef, Data((data,)): Data<(Box<RawValue>,)>| {
            let answers = socket
                .broadcast()
                .timeout(ASK_TIMEOUT)
                .emit_with_ack::<_, Box<RawValue>>("question", &data)
                .await;
            let answered = match answers {
                Ok(answers) => {
                    answers
                        .fold(0, async |n, (_, answer)| n + usize::from(answer.is_ok()))
                        .await
                }
                Err(_) => 0,
            };
            let tally = Tally {
                answers: answered,
                ask: data,
            };
            let _ = socket.emit("ask", &tally);
        },
    );
    Ok(())
}
