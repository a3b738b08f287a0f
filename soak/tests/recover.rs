//! `soak --recover`, short: churning clients drop abruptly and come back with their
//! session while the traffic flows, and must miss nothing, receive nothing twice and see
//! every sender's messages in order, as the stable members do. Each run is a few seconds
//! of traffic (the figures of a long run are in the soak's section of `bench/README.md`).
//!
//! The two-instance runs use the Redis at 127.0.0.1:6379 (`scripts/test.sh` starts one),
//! except the restart, which starts its own `redis-server` so as to kill it.

mod common;

use common::{figure, figures, run};

/// The options every run shares: 100 clients, 30 of them churning, in 10 rooms; `messages`
/// at 1,000/s.
fn short(messages: &str, more: &[&'static str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--clients",
        "100",
        "--rooms",
        "10",
        "--churn",
        "0.3",
        "--rate",
        "1000",
        "--messages",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(messages.to_owned());
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

fn soak(args: &[String]) -> (std::process::Output, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

/// Nothing lost, duplicated or reordered, to stable and churning members alike, and the
/// churning clients came back as themselves.
fn assert_exactly_once_with_recovery(output: &std::process::Output, report: &str) {
    assert!(output.status.success(), "{output:?}\n{report}");
    assert_eq!(figures(report, "lost:"), [0, 0], "{report}");
    assert_eq!(figure(report, "duplicated:"), 0, "{report}");
    assert_eq!(figure(report, "reordered:"), 0, "{report}");
    // 30 churning members were checked, besides the 70 stable ones.
    assert_eq!(figures(report, "expected:")[1..], [70, 30], "{report}");
    let [recovered, fresh] = figures(report, "sessions:")[..] else {
        panic!("{report}");
    };
    assert!(recovered > 0, "no session recovered:\n{report}");
    assert_eq!(
        fresh, 0,
        "a reconnection within the window got a fresh session:\n{report}"
    );
    assert!(report.contains("soak: ok"), "{report}");
}

#[test]
fn one_instance_in_memory_recovers_every_dropped_client() {
    let (output, report) = soak(&short("3000", &["--instances", "1", "--recover", "30"]));
    assert!(report.contains("on 1 instance, in memory"), "{report}");
    assert_exactly_once_with_recovery(&output, &report);
}

#[test]
fn two_instances_through_redis_recover_on_the_same_instance() {
    let (output, report) = soak(&short("3000", &["--recover", "30", "--reconnect", "same"]));
    assert!(report.contains("on 2 instances through Redis"), "{report}");
    assert_exactly_once_with_recovery(&output, &report);
}

#[test]
fn a_redis_restart_under_churn_with_recovery_loses_nothing() {
    // Redis is down from the 1.5th second of traffic to the 2.5th, of 6. (Not longer: when
    // the adapter reconnects more than 2 s after the kill, what the other instance had not
    // read yet is lost, since it appends again only the entries of the 2 s before it
    // reconnects.)
    let (output, report) = soak(&short(
        "6000",
        &[
            "--recover",
            "30",
            "--restart-redis-at",
            "1.5",
            "--redis-down",
            "1",
        ],
    ));
    assert!(report.contains("through the soak's Redis"), "{report}");
    let restart = report
        .lines()
        .find(|line| line.starts_with("redis restart:"))
        .unwrap_or_else(|| panic!("no restart in the report:\n{report}"));
    assert!(
        restart.contains("every instance connected again at"),
        "{report}"
    );
    assert_exactly_once_with_recovery(&output, &report);
}

#[test]
fn clients_away_past_the_window_get_fresh_sessions_and_fail_the_check() {
    // Away up to 3 s with a 1 s window: most reconnections find their session expired,
    // and what they missed meanwhile (100 messages a second to their room) is lost.
    let (output, report) = soak(&short(
        "3000",
        &["--instances", "1", "--recover", "1", "--away-ms", "3000"],
    ));
    assert_eq!(output.status.code(), Some(5), "{output:?}\n{report}");
    let [_, fresh] = figures(&report, "sessions:")[..] else {
        panic!("{report}");
    };
    assert!(fresh > 0, "{report}");
    let [lost, lost_churning] = figures(&report, "lost:")[..] else {
        panic!("{report}");
    };
    assert!(lost > 0, "{report}");
    assert_eq!(
        lost, lost_churning,
        "a stable member lost a message:\n{report}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("soak: FAILED"), "{stderr}");
}
