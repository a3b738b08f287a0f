//! The four benchmark servers' command line: one `--help`, one exit code for an address in use.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVERS: [&str; 4] = [
    env!("CARGO_BIN_EXE_bench-server"),
    env!("CARGO_BIN_EXE_raw-axum"),
    env!("CARGO_BIN_EXE_socketio-bench-server"),
    env!("CARGO_BIN_EXE_raw-socketioxide"),
];

/// Runs `server` with these arguments until it exits by itself; a server that keeps running
/// fails the test.
fn exits(server: &str, args: &[&str]) -> Output {
    let mut child = Command::new(server)
        .args(args)
        .env_remove("PORT")
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
