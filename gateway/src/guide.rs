//! The guide: one chapter per page of the NestJS WebSocket documentation, then what
//! running it in production asks for. Every code block is compiled and run as a test.
