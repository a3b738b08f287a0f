//! The built `msgpack-adapter` binary: its `--help`, and the exit code of an address in use.

// Helpers of tests: a test fails by panicking.
#![allow(clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `msgpack-adapter` with these arguments until it exits by itself; a server that keeps
/// running fails the test.
fn msgpack_adapter(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_msgpack-adapter"))
        .args(args)
        .env_remove("HOST")
        .env_remove("PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run msgpack-adapter");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll msgpack-adapter").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("msgpack-adapter kept running with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect msgpack-adapter")
}

#[test]
fn help_lists_every_option_its_variable_and_the_exit_codes() {
    let output = msgpack_adapter(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "--host",
        "[env: HOST=]",
        "--port",
        "[env: PORT=]",
        "Exit codes:",
        "3  cannot listen on HOST:PORT",
    ] {
        assert!(help.contains(text), "{text} missing from --help:\n{help}");
    }
}

#[test]
fn an_address_in_use_exits_3_and_says_so_on_standard_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("its address").port();
    let output = msgpack_adapter(&["--port", &port.to_string()]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}
