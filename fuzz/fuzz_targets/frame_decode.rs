//! Arbitrary bytes through frame decoding: the nesting check, the envelope parser, and the
//! exception frame built from whatever parsed.

#![no_main]

use ws_gateway_core::frame::{exceeds_depth, exception_frame};
use ws_gateway_core::{IncomingFrame, WsException};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = exceeds_depth(text, 64);
    match IncomingFrame::parse(text) {
        Ok(frame) => {
            let reply = exception_frame(&WsException::new("fuzz"), Some(&frame));
            // Whatever came in, what goes out is valid JSON.
            serde_json::from_str::<serde_json::Value>(reply.as_str()).expect("valid JSON out");
        }
        Err(err) => {
            let reply = exception_frame(&WsException::from(err), None);
            serde_json::from_str::<serde_json::Value>(reply.as_str()).expect("valid JSON out");
        }
    }
});
