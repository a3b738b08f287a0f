//! The built `soak` binary's command line.

mod common;

use common::soak;

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
        "--stream-max-len",
        "[default: 10000]",
        "--instances",
        "[default: 2]",
        "--recover",
        "--reconnect",
        "[default: same]",
        "- other: The other one",
        "--away-ms",
        "[default: 250]",
        "--restart-redis-at",
        "--redis-down",
        "[default: 2]",
        "[env: SOAK_CLIENTS=]",
        "[env: SOAK_ROOMS=]",
        "[env: SOAK_MESSAGES=]",
        "[env: SOAK_RATE=]",
        "[env: SOAK_CHURN=]",
        "[env: REDIS_URL=]",
        "[env: SOAK_STREAM_MAX_LEN=]",
        "[env: SOAK_INSTANCES=]",
        "[env: SOAK_RECOVER=]",
        "[env: SOAK_RECONNECT=]",
        "[env: SOAK_AWAY_MS=]",
        "[env: SOAK_RESTART_REDIS_AT=]",
        "[env: SOAK_REDIS_DOWN=]",
        "Exit codes:",
        "4  cannot reach Redis",
        "5  the check failed: a message was lost, delivered twice or out of order",
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

#[test]
fn options_that_contradict_each_other_exit_2_before_any_figure() {
    for (args, reason) in [
        (
            &["--instances", "1", "--restart-redis-at", "1"][..],
            "--restart-redis-at needs the instances to share Redis",
        ),
        (
            &["--instances", "1", "--recover", "5", "--reconnect", "other"][..],
            "--reconnect other needs another instance",
        ),
        (
            // 1,000 messages at 1,000/s are sent in a second.
            &[
                "--messages",
                "1000",
                "--rate",
                "1000",
                "--restart-redis-at",
                "2",
            ][..],
            "--restart-redis-at 2 is past the end of the traffic (1.0 s",
        ),
        (&["--instances", "3"][..], "--instances"),
        (&["--recover", "0"][..], "--recover"),
        (&["--redis-down=-1"][..], "--redis-down"),
    ] {
        let output = soak().args(args).output().expect("run the soak binary");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
