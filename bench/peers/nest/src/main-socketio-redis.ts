// The NestJS peer of the scale-out benchmark: Socket.IO (`@nestjs/platform-socket.io`) with
// the docs' RedisIoAdapter, every instance on the Redis at localhost:6379:
// `npm ci && npm run build && PORT=3000 npm run start:socketio-redis`.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { RedisIoAdapter } from './redis-io.adapter.js';
import { RoomModule } from './room.module.js';

const app = await NestFactory.create(RoomModule, { logger: ['error', 'warn'] });
const redisIoAdapter = new RedisIoAdapter(app);
await redisIoAdapter.connectToRedis();
app.useWebSocketAdapter(redisIoAdapter);
await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
