//! The built `chat` binary: its `--help`, what it refuses to start with and the exit code
//! that says why, and standard output that carries nothing but a command's output.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `chat` with these arguments and variables, none of the caller's chat variables, on an
/// ephemeral port.
fn chat(args: &[&str], vars: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat"));
    command
        .args(args)
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "JWT_SECRET",
        "CHAT_USERS",
        "REDIS_URL",
        "CHAT_TOKEN_TTL_SECS",
        "CHAT_MAX_USERNAME",
        "CHAT_HISTORY_PER_ROOM",
        "CHAT_HISTORY_ROOMS",
        "CHAT_LOGIN_CONCURRENCY",
        "HOST",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        command.env_remove(var);
    }
    command.envs(vars.iter().copied());
    command.spawn().expect("run the chat binary")
}

/// Waits for the process to exit by itself; a server that keeps running fails the test.
fn exits(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll the chat binary").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            let output = child.wait_with_output().expect("collect the chat binary");
            panic!(
                "chat kept running; stdout: {} stderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the chat binary")
}

#[test]
fn help_lists_every_option_and_its_variable() {
    let output = exits(chat(&["--help"], &[]));
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--host",
        "HOST",
        "--port",
        "PORT",
        "--redis-url",
        "REDIS_URL",
        "--jwt-secret",
        "JWT_SECRET",
        "--users",
        "CHAT_USERS",
        "--token-ttl-secs",
        "CHAT_TOKEN_TTL_SECS",
        "--max-username",
        "CHAT_MAX_USERNAME",
        "--login-concurrency",
        "CHAT_LOGIN_CONCURRENCY",
        "--history-per-room",
        "CHAT_HISTORY_PER_ROOM",
        "--history-rooms",
        "CHAT_HISTORY_ROOMS",
        "asyncapi",
        "RUST_LOG",
        "standard error",
        "Exit codes:",
        "0  stopped by ctrl-c or SIGTERM",
        "1  failed while running",
        "2  bad usage or configuration",
        "3  cannot listen on HOST:PORT",
        "4  cannot reach Redis at REDIS_URL",
    ] {
        assert!(
            help.contains(option),
            "{option} missing from --help:\n{help}"
        );
    }
}

/// A refusal: the documented exit code, the reason on standard error, nothing on standard
/// output.
fn refused(output: &Output, code: i32, reason: &str) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(reason), "{stderr}");
}

/// With users configured, the built-in development secret would let anyone sign a token
/// for any of them: the server refuses to start instead of warning.
#[test]
fn configured_users_without_a_secret_refuse_to_start() {
    let output = exits(chat(&[], &[("CHAT_USERS", "alice:wonderland")]));
    refused(&output, 2, "chat: CHAT_USERS is set but JWT_SECRET is not");
}

#[test]
fn usage_errors_and_malformed_values_exit_2() {
    refused(
        &exits(chat(&["--no-such-option"], &[])),
        2,
        "--no-such-option",
    );
    refused(
        &exits(chat(&[], &[("CHAT_TOKEN_TTL_SECS", "0")])),
        2,
        "--token-ttl-secs",
    );
    refused(
        &exits(chat(&[], &[("REDIS_URL", "not a url")])),
        2,
        "chat: invalid Redis URL",
    );
}

#[test]
fn an_address_in_use_exits_3() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let output = exits(chat(&[], &[("PORT", &port)]));
    refused(
        &output,
        3,
        &format!("chat: cannot listen on 127.0.0.1:{port}"),
    );
}

#[test]
fn an_unreachable_redis_exits_4() {
    // Nothing listens on port 1.
    let output = exits(chat(&[], &[("REDIS_URL", "redis://127.0.0.1:1")]));
    refused(
        &output,
        4,
        "chat: cannot connect to Redis at redis://127.0.0.1:1",
    );
}

/// `chat asyncapi > asyncapi.json` writes a JSON document and nothing else, even with
/// logging on; the logs go to standard error, without colour codes when it is not a
/// terminal.
#[test]
fn asyncapi_writes_only_the_document_to_standard_output() {
    let output = exits(chat(&["asyncapi"], &[("RUST_LOG", "debug")]));
    assert!(output.status.success(), "{output:?}");
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("standard output is one JSON document");
    assert_eq!(document["asyncapi"], "3.0.0");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chat gateway initialized"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "colour codes in {stderr:?}");
}
