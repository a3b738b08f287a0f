//! The built `soak` binary's command line.

use std::process::Command;

#[test]
fn help_lists_every_option_with_its_default() {
    let output = Command::new(env!("CARGO_BIN_EXE_soak"))
        .arg("--help")
        .output()
        .expect("run the soak binary");
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
    ] {
        assert!(
            help.contains(option),
            "{option} missing from --help:\n{help}"
        );
    }
}

#[test]
fn a_bad_option_is_refused_before_anything_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--churn", "1.5"])
        .output()
        .expect("run the soak binary");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--churn"), "{stderr}");
}
