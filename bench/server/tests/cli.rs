//! The five benchmark servers' command line: one `--help`, one exit code for an address in use,
//! and for the three that scale out over Redis, one for a Redis that is not there.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVERS: [&str; 5] = [
    env!("CARGO_BIN_EXE_bench-server"),
    env!("CARGO_BIN_EXE_raw-axum"),
    env!("CARGO_BIN_EXE_socketio-bench-server"),
    env!("CARGO_BIN_EXE_raw-socketioxide"),
    env!("CARGO_BIN_EXE_raw-socketioxide-redis"),
];

/// The servers that take `--redis`.
const SCALE_OUT: [&str; 3] = [
    env!("CARGO_BIN_EXE_bench-server"),
    env!("CARGO_BIN_EXE_socketio-bench-server"),
    env!("CARGO_BIN_EXE_raw-socketioxide-redis"),
];

/// Runs `server` with these arguments until it exits by itself; a server that keeps running
/// fails the test.
fn exits(server: &str, args: &[&str]) -> Output {
    let mut child = Command::new(server)
        .args(args)
        .env_remove("PORT")
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll the server").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{server} kept running with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the server")
}

#[test]
fn help_lists_the_port_its_variable_and_the_exit_codes() {
    for server in SERVERS {
        let output = exits(server, &["--help"]);
        assert!(output.status.success(), "{server}: {output:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        for text in ["--port", "[env: PORT=]", "Exit codes:", "3  cannot listen"] {
            assert!(
                help.contains(text),
                "{text} missing from {server} --help:\n{help}"
            );
        }
    }
}

#[test]
fn an_address_in_use_exits_3_and_a_bad_port_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    for server in SERVERS {
        let output = exits(server, &["--port", &port]);
        assert_eq!(output.status.code(), Some(3), "{server}: {output:?}");
        assert!(output.stdout.is_empty(), "{server}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "{server}: {stderr}"
        );
        let output = exits(server, &["--port", "http"]);
        assert_eq!(output.status.code(), Some(2), "{server}: {output:?}");
    }
}

#[test]
fn a_redis_that_is_not_there_exits_4_naming_it() {
    for server in SCALE_OUT {
        let help = exits(server, &["--help"]);
        let help = String::from_utf8_lossy(&help.stdout);
        for text in ["--redis", "[env: REDIS_URL=]", "4  cannot reach Redis"] {
            assert!(
                help.contains(text),
                "{text} missing from {server} --help:\n{help}"
            );
        }
        // Nothing listens on port 1; port 0 lets the server listen anywhere.
        let output = exits(server, &["--port", "0", "--redis", "redis://127.0.0.1:1"]);
        assert_eq!(output.status.code(), Some(4), "{server}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot reach Redis at redis://127.0.0.1:1"),
            "{server}: {stderr}"
        );
    }
}
