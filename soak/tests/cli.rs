//! The built `soak` binary's command line.

use std::process::Command;

/// The soak binary, without the caller's soak variables.
fn soak() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_soak"));
    for var in [
        "SOAK_CLIENTS",
        "SOAK_ROOMS",
        "SOAK_MESSAGES",
        "SOAK_RATE",
        "SOAK_CHURN",
        "REDIS_URL",
    ] {
        command.env_remove(var);
    }
    command
}

#[test]
fn help_lists_every_option_with_its_default_and_variable() {
    let output = soak().arg("--help").output().expect("run the soak binary");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--clients",
        "[default: 2000]",
        "--rooms",
        "[default: 50]",
        "--messages",
        "[default: 100000]",
        "--rate",
        "[default: 5000]",
        "--churn",
        "[default: 0.2]",
        "--redis",
        "[default: redis://127.0.0.1:6379]",
        "[env: SOAK_CLIENTS=]",
        "[env: SOAK_ROOMS=]",
        "[env: SOAK_MESSAGES=]",
        "[env: SOAK_RATE=]",
        "[env: SOAK_CHURN=]",
        "[env: REDIS_URL=]",
        "Exit codes:",
        "4  cannot reach Redis",
        "5  the check failed",
    ] {
        assert!(
            help.contains(option),
            "{option} missing from --help:\n{help}"
        );
    }
}

#[test]
fn a_bad_option_is_refused_before_anything_starts() {
    let output = soak()
        .args(["--churn", "1.5"])
        .output()
        .expect("run the soak binary");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--churn"), "{stderr}");
}

#[test]
fn an_unreachable_redis_exits_4_before_any_figure() {
    // Nothing listens on port 1.
    let output = soak()
        .args(["--redis", "redis://127.0.0.1:1"])
        .output()
        .expect("run the soak binary");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("soak: cannot connect to Redis at redis://127.0.0.1:1"),
        "{stderr}"
    );
}
