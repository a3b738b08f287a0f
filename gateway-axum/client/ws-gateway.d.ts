// Types of ws-gateway.js, the client of ws-gateway's plain WebSocket protocol.

/** The shape of the WebSocket class the client uses (the browser's, `ws`'s, node 22's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "error", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
}

export interface ClientOptions {
  /** Query parameters added to the URL at every (re)connection; a function is called each
   * time, so a refreshed token is used. `pid` and `offset` are the client's own. */
  query?: Record<string, string | number | boolean | null | undefined>
    | (() => Record<string, string | number | boolean | null | undefined>);
  /** Subprotocols asked for at every connection. */
  protocols?: string | string[];
  /** The WebSocket class; default `globalThis.WebSocket`. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocketLike;
  /** Reconnect after a drop the client did not ask for (default true). */
  reconnect?: boolean;
  /** First reconnection delay in ms, doubled at each attempt (default 500). */
  reconnectDelay?: number;
  /** Longest reconnection delay in ms (default 10000). */
  reconnectDelayMax?: number;
  /** Each delay is spread by ± this fraction of itself (default 0.5). */
  randomization?: number;
  /** `emitWithAck`'s default timeout in ms (default 10000). */
  ackTimeout?: number;
  /** Frames kept while disconnected; past it the oldest is dropped (default 1000). */
  maxBuffered?: number;
  /** How long `connect` waits for a recovering server's `session` frame, in ms (default 2000). */
  sessionTimeout?: number;
}

/** Answers the server's acknowledgement request (`"ack": N`) once; later calls do nothing. */
export type Answer = (value?: unknown) => void;

/** A frame as received: `event`, `data`, and `id`, `ack` or `offset` when present. */
export interface Frame {
  event: string;
  data?: unknown;
  id?: number | string;
  ack?: number;
  offset?: string;
}

export interface ConnectEvent {
  /** True when the server restored the session: rooms, state, and the frames missed. */
  recovered: boolean;
}

export interface DisconnectEvent {
  code: number;
  reason: string;
  /** False after `close()` or with `reconnect: false`. */
  reconnecting: boolean;
}

export interface ReconnectAttemptEvent {
  attempt: number;
  delay: number;
}

export class GatewayError extends Error {
  /** The `exception` event's data: `status`, `message`, `cause`, and any extra field. */
  readonly data: { status?: string; message?: string; [field: string]: unknown };
}
export class TimeoutError extends Error {}
export class DisconnectedError extends Error {}

export class GatewayClient {
  constructor(url: string, options?: ClientOptions);
  /** True between the socket's open and its close. */
  readonly connected: boolean;
  /** True when the current connection recovered the previous session. */
  readonly recovered: boolean;
  on(event: "connect", listener: (event: ConnectEvent) => void): () => void;
  on(event: "disconnect", listener: (event: DisconnectEvent) => void): () => void;
  on(event: "reconnect_attempt", listener: (event: ReconnectAttemptEvent) => void): () => void;
  on(event: "error", listener: (error: Error) => void): () => void;
  on<T = any>(event: string, listener: (data: T, answer: Answer | undefined, frame: Frame) => void): () => void;
  once(event: string, listener: (...args: any[]) => void): () => void;
  off(event: string, listener: (...args: any[]) => void): void;
  emit(event: string, data?: unknown): void;
  emitWithAck<T = any>(event: string, data?: unknown, options?: { timeout?: number }): Promise<T>;
  close(code?: number, reason?: string): void;
}

export function connect(url: string, options?: ClientOptions): GatewayClient;

export function backoff(
  attempt: number,
  options: { reconnectDelay: number; reconnectDelayMax: number; randomization: number },
): number;
