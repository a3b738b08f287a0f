// A socket.io-client driven by a Rust test (tests/socketio.rs) over stdin/stdout, one JSON
// object per line.
//
// Commands (stdin):
//   {"cmd":"connect","url":"http://127.0.0.1:port/chat","auth":{...},"transports":["websocket"]}
//   {"cmd":"emit","event":"x","args":[...],"ack":true}   // ack: pass a callback
//   {"cmd":"answer","event":"x","args":[...]}            // answer the server's acks of x
//   {"cmd":"drop"}                   // close the connection under the socket, as a network
//                                    // drop does (no DISCONNECT: the session is recoverable)
//   {"cmd":"reconnect","url":"http://127.0.0.1:other"}  // connect again, to `url` if given
//   {"cmd":"close"}                                        // disconnect and exit
// Reports (stdout):
//   {"type":"connect","id":"...","recovered":bool} | {"type":"connect_error","message":"..."}
//   {"type":"event","event":"x","args":[...],"raw":"[...]","ack":bool} // every event the
//     server emits; `ack`: it asked for an acknowledgement (answered if an `answer` is set)
//   {"type":"ack","event":"x","args":[...],"raw":"[...]"}   // the server answered an ack
// `raw` is `args` as JSON text, in the order the client received the keys (a Rust test
// parsing the report into a `serde_json::Value` sorts them).
// Binary: `{"$bin":[1,2,3]}` in a command's `args` is sent as a Buffer (a binary
// attachment); a Buffer or ArrayBuffer the client receives is reported the same way.
//   {"type":"disconnect","reason":"..."} | {"type":"error","message":"..."}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

let socket = null;
// Events whose acknowledgements are answered, with the arguments to answer with.
const answers = new Map();

function report(object) {
  process.stdout.write(JSON.stringify(object, binaryReplacer) + "\n");
}

// Buffers and ArrayBuffers as `{"$bin":[..]}`. A Buffer's own `toJSON` runs before the
// replacer sees it, so it is recognised by its shape.
function binaryReplacer(_key, value) {
  if (value instanceof ArrayBuffer) return { $bin: Array.from(new Uint8Array(value)) };
  if (value && value.type === "Buffer" && Array.isArray(value.data)) return { $bin: value.data };
  return value;
}

// `{"$bin":[..]}` as a Buffer, anywhere in the arguments.
function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$bin") return Buffer.from(value.$bin);
    return Object.fromEntries(keys.map((key) => [key, revive(value[key])]));
  }
  return value;
}

function connect({ url, auth, transports }) {
  socket = io(url, {
    auth: auth ?? {},
    transports: transports ?? ["polling", "websocket"],
    reconnection: false,
    forceNew: true,
  });
  socket.on("connect", () =>
    report({ type: "connect", id: socket.id, recovered: socket.recovered }),
  );
  socket.on("connect_error", (err) => report({ type: "connect_error", message: err.message }));
  socket.on("disconnect", (reason) => report({ type: "disconnect", reason }));
  socket.onAny((event, ...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
    report({
      type: "event",
      event,
      args,
      raw: JSON.stringify(args, binaryReplacer),
      ack: callback !== null,
    });
    if (callback && answers.has(event)) callback(...answers.get(event));
  });
}

function emit({ event, args, ack }) {
  if (!socket) return report({ type: "error", message: "emit before connect" });
  if (ack) {
    socket.emit(event, ...revive(args ?? []), (...reply) =>
      report({ type: "ack", event, args: reply, raw: JSON.stringify(reply, binaryReplacer) }),
    );
  } else {
    socket.emit(event, ...revive(args ?? []));
  }
}

const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    return report({ type: "error", message: `bad command: ${err.message}` });
  }
  switch (command.cmd) {
    case "connect":
      return connect(command);
    case "emit":
      return emit(command);
    case "answer":
      answers.set(command.event, revive(command.args ?? []));
      return report({ type: "answering", event: command.event });
    case "drop":
      return socket.io.engine.close();
    case "reconnect":
      if (command.url) socket.io.uri = command.url;
      return socket.connect();
    case "close":
      socket?.disconnect();
      return process.exit(0);
    default:
      return report({ type: "error", message: `unknown command ${command.cmd}` });
  }
});
// The test process ended (or dropped our stdin): stop.
commands.on("close", () => {
  socket?.disconnect();
  process.exit(0);
});
