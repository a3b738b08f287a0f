//! The integration tests of the gateway workspace live beside this file, one target per
//! topic (`chat_roundtrip.rs`, `protocol.rs`, `lifecycle.rs`, `pipeline.rs`, ...); the
//! compile-fail and pass cases of the macros are under `ui/`. Run them all with
//! `./scripts/test.sh`, which also starts what they need.
