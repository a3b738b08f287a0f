// Echo and broadcast, as the Rust bench-server and raw-axum do.
import { MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { Server } from 'ws';

@WebSocketGateway({ path: '/' })
export class BenchGateway {
  @WebSocketServer()
  server!: Server;

  // {"event":"echo","data":X} -> the same back (WsAdapter sends what the handler returns).
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return { event: 'echo', data };
  }

  // {"event":"broadcast","data":X} -> {"event":"broadcast","data":X} to every client,
  // encoded once; no reply.
  @SubscribeMessage('broadcast')
  broadcast(@MessageBody() data: unknown): void {
    const frame = JSON.stringify({ event: 'broadcast', data });
    for (const client of this.server.clients) {
      client.send(frame);
    }
  }
}
