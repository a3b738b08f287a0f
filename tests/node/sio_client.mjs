// A socket.io-client driven by a Rust test (tests/socketio.rs) over stdin/stdout, one JSON
// object per line.
//
// Commands (stdin):
//   {"cmd":"connect","url":"http://127.0.0.1:port/chat","auth":{...},"transports":["websocket"]}
//   {"cmd":"emit","event":"x","args":[...],"ack":true}   // ack: pass a callback
//   {"cmd":"close"}                                        // disconnect and exit
// Reports (stdout):
//   {"type":"connect","id":"..."} | {"type":"connect_error","message":"..."}
//   {"type":"event","event":"x","args":[...],"raw":"[...]"} // every event the server emits
//   {"type":"ack","event":"x","args":[...],"raw":"[...]"}   // the server answered an ack
// `raw` is `args` as JSON text, in the order the client received the keys (a Rust test
// parsing the report into a `serde_json::Value` sorts them).
//   {"type":"disconnect","reason":"..."} | {"type":"error","message":"..."}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

let socket = null;

function report(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function connect({ url, auth, transports }) {
  socket = io(url, {
    auth: auth ?? {},
    transports: transports ?? ["polling", "websocket"],
    reconnection: false,
    forceNew: true,
  });
  socket.on("connect", () => report({ type: "connect", id: socket.id }));
  socket.on("connect_error", (err) => report({ type: "connect_error", message: err.message }));
  socket.on("disconnect", (reason) => report({ type: "disconnect", reason }));
  socket.onAny((event, ...args) => report({ type: "event", event, args, raw: JSON.stringify(args) }));
}

function emit({ event, args, ack }) {
  if (!socket) return report({ type: "error", message: "emit before connect" });
  if (ack) {
    socket.emit(event, ...(args ?? []), (...reply) =>
      report({ type: "ack", event, args: reply, raw: JSON.stringify(reply) }),
    );
  } else {
    socket.emit(event, ...(args ?? []));
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
