//! The load generator's command line: `--help`, and the exit code when no server is there.

use std::process::Command;

/// The load generator, without the caller's `LOADGEN_*` variables.
fn loadgen() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("LOADGEN_") {
            command.env_remove(var);
        }
    }
    command
}

#[test]
fn help_lists_every_option_its_variable_and_the_exit_codes() {
    let output = loadgen()
        .arg("--help")
        .output()
        .expect("run the load generator");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "[env: LOADGEN_HOST=]",
        "[env: LOADGEN_PORT=]",
        "[env: LOADGEN_PROTOCOL=]",
        "[env: LOADGEN_SERVER_PID=]",
        "Exit codes:",
        "4  nothing answers at HOST:PORT",
    ] {
        assert!(help.contains(text), "{text} missing from --help:\n{help}");
    }
    let output = loadgen()
        .args(["echo", "--help"])
        .output()
        .expect("run the load generator");
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "[env: LOADGEN_CONNECTIONS=]",
        "[env: LOADGEN_DURATION=]",
        "Exit codes:",
    ] {
        assert!(
            help.contains(text),
            "{text} missing from echo --help:\n{help}"
        );
    }
    let output = loadgen()
        .args(["ask", "--help"])
        .output()
        .expect("run the load generator");
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "[env: LOADGEN_RECEIVERS=]",
        "[env: LOADGEN_WINDOW=]",
        "Exit codes:",
    ] {
        assert!(
            help.contains(text),
            "{text} missing from ask --help:\n{help}"
        );
    }
    let output = loadgen()
        .args(["rooms", "--help"])
        .output()
        .expect("run the load generator");
    let help = String::from_utf8_lossy(&output.stdout);
    for text in [
        "[env: LOADGEN_PORTS=]",
        "[env: LOADGEN_MEMBERS=]",
        "[env: LOADGEN_SPREAD=]",
        "[env: LOADGEN_REDIS_PID=]",
        "Exit codes:",
    ] {
        assert!(
            help.contains(text),
            "{text} missing from rooms --help:\n{help}"
        );
    }
}

#[test]
fn no_server_exits_4_with_the_reason_on_standard_error() {
    // Nothing listens on port 1.
    let output = loadgen()
        .args(["--port", "1", "echo"])
        .output()
        .expect("run the load generator");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the server at 127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn rooms_probes_every_instance() {
    // Something listens on the first port, nothing on port 1.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("its address").port();
    let output = loadgen()
        .args(["rooms", "--ports", &format!("{port},1")])
        .output()
        .expect("run the load generator");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the server at 127.0.0.1:1"),
        "{stderr}"
    );
}
