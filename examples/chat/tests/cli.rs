//! The built `chat` binary: its `--help`, and what it refuses to start with.

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
    ] {
        assert!(
            help.contains(option),
            "{option} missing from --help:\n{help}"
        );
    }
}

/// With users configured, the built-in development secret would let anyone sign a token
/// for any of them: the server refuses to start instead of warning.
#[test]
fn configured_users_without_a_secret_refuse_to_start() {
    let output = exits(chat(&[], &[("CHAT_USERS", "alice:wonderland")]));
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CHAT_USERS is set but JWT_SECRET is not"),
        "{stderr}"
    );
}
