//! What the hostile-client tests share.

/// This process's resident set size in KiB, from `/proc/self/status` (`VmRSS`).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Held by every test of this binary for as long as it runs: they share one process, and
/// a test reading [`rss_kib`] must not see the memory of another test's attack.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    MEASURING.lock().await
}

#[test]
fn rss_is_read() {
    assert!(rss_kib() > 0);
}
