//! What the store benches share.

/// Peak resident memory of this process (since the last [`reset_peak`]), in MB.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts the peak over from the present resident size (Linux: clear_refs 5).
#[allow(dead_code)] // not every bench measures in phases
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
