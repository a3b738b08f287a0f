//! What the soak's tests share: the binary without the caller's soak variables, and the
//! figures of its report.

// Each test target uses part of this module; test helpers live outside `#[test]` fns,
// where clippy.toml's allowances do not reach.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

/// The soak binary, without the caller's soak variables.
pub(crate) fn soak() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_soak"));
    for var in [
        "SOAK_CLIENTS",
        "SOAK_ROOMS",
        "SOAK_MESSAGES",
        "SOAK_RATE",
        "SOAK_CHURN",
        "SOAK_STREAM_MAX_LEN",
        "SOAK_INSTANCES",
        "SOAK_RECOVER",
        "SOAK_RECONNECT",
        "SOAK_AWAY_MS",
        "SOAK_RESTART_REDIS_AT",
        "SOAK_REDIS_DOWN",
        "REDIS_URL",
    ] {
        command.env_remove(var);
    }
    command
}

/// Runs the soak with `args` and returns its output, standard output as text.
pub(crate) fn run(args: &[&str]) -> (Output, String) {
    let output = soak().args(args).output().expect("run the soak binary");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

/// The numbers on the report's line that starts with `label`, in order, e.g. `[142, 0]` for
/// `sessions:          142 recovered, 0 fresh`.
pub(crate) fn figures(report: &str, label: &str) -> Vec<u64> {
    let line = report
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in the report:\n{report}"));
    line[label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("digits"))
        .collect()
}

/// The first number on the report's line that starts with `label`.
pub(crate) fn figure(report: &str, label: &str) -> u64 {
    figures(report, label)[0]
}
