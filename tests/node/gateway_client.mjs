// ws-gateway.js (gateway-axum/client), the plain protocol's JavaScript client, on the `ws`
// package, driven by a Rust test (tests/js_client.rs) over stdin/stdout, one JSON object per
// line.
//
// Commands (stdin):
//   {"cmd":"connect","url":"ws://127.0.0.1:port/chat?token=..."}
//   {"cmd":"emit","event":"x","data":...}
//   {"cmd":"request","event":"x","data":...,"timeout":ms}   // emitWithAck
//   {"cmd":"answer","event":"x","value":...}                 // answer the server's asks of x
//   {"cmd":"close"}                                          // close for good and exit
// Reports (stdout):
//   {"type":"connect","recovered":bool} | {"type":"disconnect","code":N,"reconnecting":bool}
//   {"type":"reconnect_attempt","attempt":N}
//   {"type":"event","event":"x","data":...,"offset":"O"|null,"asked":bool}
//   {"type":"reply","event":"x","data":...}
//   {"type":"failed","event":"x","name":"GatewayError"|"TimeoutError"|...,"data":...}
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { connect } from "../../gateway-axum/client/ws-gateway.js";

let client = null;
const answers = new Map();

function report(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function open({ url }) {
  client = connect(url, { WebSocket, reconnectDelay: 100, reconnectDelayMax: 1000 });
  client.on("connect", ({ recovered }) => report({ type: "connect", recovered }));
  client.on("disconnect", ({ code, reconnecting }) =>
    report({ type: "disconnect", code, reconnecting }),
  );
  client.on("reconnect_attempt", ({ attempt }) => report({ type: "reconnect_attempt", attempt }));
  client.on("error", (err) => report({ type: "error", message: err.message }));
  for (const event of ["message", "question", "joined", "left", "session"]) {
    client.on(event, (data, answer, frame) => {
      report({ type: "event", event, data, offset: frame?.offset ?? null, asked: !!answer });
      if (answer && answers.has(event)) answer(answers.get(event));
    });
  }
}

async function request({ event, data, timeout }) {
  try {
    const reply = await client.emitWithAck(event, data, timeout ? { timeout } : {});
    report({ type: "reply", event, data: reply });
  } catch (err) {
    report({ type: "failed", event, name: err.name, message: err.message, data: err.data ?? null });
  }
}

const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  switch (command.cmd) {
    case "connect":
      return open(command);
    case "emit":
      return client.emit(command.event, command.data);
    case "request":
      return void request(command);
    case "answer":
      return void answers.set(command.event, command.value);
    case "close":
      client?.close();
      return process.exit(0);
    default:
      report({ type: "error", message: `unknown command ${command.cmd}` });
  }
});
commands.on("close", () => process.exit(0));
