// The client of ws-gateway's plain WebSocket protocol (the README's "The wire protocol"):
// JSON text frames {"event": E, "data": D}, "id" to pair a request with its reply,
// {"event", "data", "ack": N} questions answered with {"ack": N, "data": A}, and connection
// state recovery ({"event": "session", "data": {"pid", "recovered"}} first, an "offset" on
// every delivered frame, ?pid=P&offset=O when reconnecting).
//
// One ES module, no build step, no dependency: the browser's WebSocket, or any class with the
// same API in node (the `ws` package's `WebSocket`, or node 22's global one).
//
//   import { connect } from "/ws-gateway.js";
//   const chat = connect("ws://localhost:3000/chat", { query: () => ({ token }) });
//   chat.on("message", (data) => console.log(data.from, data.text));
//   chat.on("question", (data, answer) => answer(prompt(data.question)));
//   const joined = await chat.emitWithAck("join", { room: "lobby" });
//   chat.emit("message", { room: "lobby", text: "hi" });

/** The reply to a request was an `exception` event: its `data` is the exception. */
export class GatewayError extends Error {
  constructor(data) {
    super(typeof data?.message === "string" ? data.message : "exception");
    this.name = "GatewayError";
    this.data = data;
  }
}

/** No reply to a request within its timeout. */
export class TimeoutError extends Error {
  constructor(event, ms) {
    super(`no reply to "${event}" within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/** The client was closed, or its send buffer overflowed, before a request was answered. */
export class DisconnectedError extends Error {
  constructor(message = "the client was closed") {
    super(message);
    this.name = "DisconnectedError";
  }
}

const DEFAULTS = {
  reconnect: true,
  reconnectDelay: 500,
  reconnectDelayMax: 10_000,
  randomization: 0.5,
  ackTimeout: 10_000,
  maxBuffered: 1000,
  sessionTimeout: 2000,
};

// Local events: emitted by the client itself, never sent by the server under these names.
const LOCAL = new Set(["connect", "disconnect", "reconnect_attempt", "error"]);

/**
 * Opens a client on `url` (`ws://host/path`, or `http(s)://`, or a path relative to the
 * page) and keeps it open: it reconnects with exponential backoff and jitter after any drop
 * it did not ask for, and recovers the missed frames when the server has recovery on.
 */
export function connect(url, options = {}) {
  return new GatewayClient(url, options);
}

export class GatewayClient {
  constructor(url, options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.WebSocket = this.options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError("no WebSocket class: pass { WebSocket } (e.g. the `ws` package's)");
    }
    this.url = resolveUrl(url);
    /** True between the socket's open and its close. */
    this.connected = false;
    /** True when the server restored this session's rooms, state and missed frames. */
    this.recovered = false;
    this.listeners = new Map();
    this.pending = new Map();
    this.nextId = 1;
    this.buffer = [];
    this.attempt = 0;
    this.closed = false;
    this.announced = false;
    this.socket = null;
    this.timer = null;
    // Recovery: the session's private id and the last offset received.
    this.pid = null;
    this.offset = null;
    this.open();
  }

  /** Calls `listener(data, answer, frame)` for every `event` the server sends; `answer` is a
   * function when the server asked for an acknowledgement (`"ack": N`), else `undefined`.
   * Local events: `connect` ({recovered}), `disconnect` ({code, reason, reconnecting}),
   * `reconnect_attempt` ({attempt, delay}), `error` (an Error). Returns a function that
   * removes the listener. */
  on(event, listener) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Like `on`, for the next `event` only. */
  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      return listener(...args);
    });
    return off;
  }

  off(event, listener) {
    this.listeners.get(event)?.delete(listener);
  }

  /** Sends `{"event", "data"}`: now when connected, else when the next connection opens
   * (at most `maxBuffered` frames wait; past that the oldest is dropped with an `error`). */
  emit(event, data) {
    this.send({ event, data });
  }

  /** Sends `{"event", "data", "id"}` and resolves to the `data` of the reply carrying the
   * same `id`; rejects with a `GatewayError` for an `exception` reply, a `TimeoutError` past
   * `timeout` ms (default `ackTimeout`), a `DisconnectedError` when closed first. A request
   * buffered across a reconnect keeps its id. */
  emitWithAck(event, data, { timeout = this.options.ackTimeout } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(event, timeout));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ event, data, id });
    });
  }

  /** Closes the client for good: no reconnection, pending requests rejected. */
  close(code = 1000, reason = "") {
    this.closed = true;
    clearTimeout(this.timer);
    this.buffer = [];
    for (const [id, request] of this.pending) {
      clearTimeout(request.timer);
      request.reject(new DisconnectedError());
      this.pending.delete(id);
    }
    if (this.socket && this.socket.readyState <= 1) this.socket.close(code, reason);
  }

  // --- the connection ---------------------------------------------------------------

  open() {
    const url = new URL(this.url);
    const query = typeof this.options.query === "function" ? this.options.query() : this.options.query;
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    if (this.pid !== null) {
      url.searchParams.set("pid", this.pid);
      if (this.offset !== null) url.searchParams.set("offset", this.offset);
    }
    const socket = new this.WebSocket(url.toString(), this.options.protocols);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.connected = true;
      this.attempt = 0;
      this.recovered = false;
      this.announced = false;
      // A server with recovery on sends its `session` frame first; once one was seen, `connect`
      // waits for it (it says whether the session recovered), a little while at most.
      if (this.pid === null) this.announce();
      else this.timer = setTimeout(() => this.announce(), this.options.sessionTimeout);
    });
    socket.addEventListener("message", (message) => {
      if (socket === this.socket) this.receive(message.data);
    });
    socket.addEventListener("close", (close) => {
      if (socket !== this.socket) return;
      this.dropped(close.code, close.reason);
    });
    socket.addEventListener("error", () => {
      // A close event follows every error: the reconnection is decided there.
    });
  }

  announce() {
    clearTimeout(this.timer);
    if (this.announced || !this.connected) return;
    this.announced = true;
    this.dispatch("connect", { recovered: this.recovered });
    const waiting = this.buffer;
    this.buffer = [];
    for (const text of waiting) this.socket.send(text);
  }

  dropped(code, reason) {
    const wasConnected = this.announced;
    this.connected = false;
    this.announced = false;
    clearTimeout(this.timer);
    const reconnecting = !this.closed && this.options.reconnect !== false;
    if (wasConnected) this.dispatch("disconnect", { code, reason, reconnecting });
    if (!reconnecting) {
      this.close();
      return;
    }
    this.attempt += 1;
    const delay = backoff(this.attempt, this.options);
    this.dispatch("reconnect_attempt", { attempt: this.attempt, delay });
    this.timer = setTimeout(() => {
      if (!this.closed) this.open();
    }, delay);
  }

  send(frame) {
    const text = JSON.stringify(frame);
    if (this.announced && this.socket.readyState === 1 && this.buffer.length === 0) {
      this.socket.send(text);
      return;
    }
    if (this.closed) {
      this.fail(frame.id, new DisconnectedError());
      return;
    }
    this.buffer.push(text);
    if (this.buffer.length > this.options.maxBuffered) {
      const oldest = JSON.parse(this.buffer.shift());
      this.fail(oldest.id, new DisconnectedError("the send buffer overflowed"));
      this.dispatch("error", new Error(`send buffer full: dropped a "${oldest.event}" frame`));
    }
  }

  fail(id, error) {
    const request = id === undefined ? undefined : this.pending.get(id);
    if (!request) return;
    clearTimeout(request.timer);
    this.pending.delete(id);
    request.reject(error);
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      this.dispatch("error", new Error(`not JSON from the server: ${err.message}`));
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    if (typeof frame.offset === "string") this.offset = frame.offset;
    const { event, data, id, ack } = frame;
    if (event === "session" && data && typeof data.pid === "string" && !this.announced) {
      this.pid = data.pid;
      this.recovered = data.recovered === true;
      // A fresh session (the old one expired, or none was asked for) starts from nothing.
      if (!this.recovered) this.offset = null;
      this.announce();
      return;
    }
    if (event === "session" && data && typeof data.pid === "string") {
      // The first connection announced itself at its open; its session's id comes now.
      this.pid = data.pid;
      if (data.recovered !== true) this.offset = null;
      return;
    }
    // Anything else first: this server sends no `session` frame (recovery off).
    if (!this.announced) this.announce();
    if (id !== undefined && this.pending.has(id)) {
      const request = this.pending.get(id);
      clearTimeout(request.timer);
      this.pending.delete(id);
      if (event === "exception") request.reject(new GatewayError(data));
      else request.resolve(data);
      return;
    }
    if (typeof event !== "string" || LOCAL.has(event)) return;
    let answer;
    if (Number.isInteger(ack)) {
      let answered = false;
      answer = (value) => {
        if (answered || !this.connected) return;
        answered = true;
        this.socket.send(JSON.stringify({ ack, data: value ?? null }));
      };
    }
    this.dispatch(event, data, answer, frame);
  }

  dispatch(event, ...args) {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        if (event === "error") throw err;
        this.dispatch("error", err);
      }
    }
  }
}

/** The delay before reconnection attempt `attempt` (1, 2, ...): `reconnectDelay` doubled
 * each attempt up to `reconnectDelayMax`, spread by ±`randomization` so that clients dropped
 * together do not come back together. */
export function backoff(attempt, { reconnectDelay, reconnectDelayMax, randomization }) {
  const base = Math.min(reconnectDelayMax, reconnectDelay * 2 ** Math.min(attempt - 1, 30));
  const spread = base * randomization * (Math.random() * 2 - 1);
  return Math.max(0, Math.round(Math.min(reconnectDelayMax, base + spread)));
}

function resolveUrl(url) {
  const base = globalThis.location?.href;
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.toString();
}
