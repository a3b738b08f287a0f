//! Hostile clients (issue 13): every input a client controls has a bound, and going past it
//! gets a precise answer (an `exception` frame, a close code, an HTTP status) while the
//! server and the other clients notice nothing.
//!
//! One module per kind of attack. Where memory is the point, a test reads the server's
//! resident set from `/proc/self/status` (the server runs in this process) with bounds
//! generous enough for a noisy machine; nothing asserts a duration.

mod amplification;
mod chat;
mod common;
mod handshake;
mod in_flight;
mod rooms;
mod wire;
