// Rooms across instances, as the Rust scale-out servers (bench-server --redis,
// raw-socketioxide-redis) have them: `join` puts the socket in a room and answers under
// `join` once it is in; `say` {room, msg} emits `msg` under `room` to every member of the
// room, on whichever instance (through the RedisIoAdapter).
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';

@WebSocketGateway()
export class RoomGateway {
  @WebSocketServer()
  server!: Server;

  // 42["join","r7"] -> in room r7, then 42["join","r7"] back.
  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: Socket, @MessageBody() room: string) {
    await client.join(room);
    return { event: 'join', data: room };
  }

  // 42["say",{"room":"r7","msg":X}] -> 42["room",X] to every member of r7; no reply.
  @SubscribeMessage('say')
  say(@MessageBody() data: { room: string; msg: unknown }): void {
    this.server.to(data.room).emit('room', data.msg);
  }
}
