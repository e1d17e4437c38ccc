//! `--stats`: the AWS requests a command sent (by service and operation, from the SDK
//! interceptor in `moodlestack_aws::stats`) and the wall time of each phase (observe, diff,
//! execute, ...), printed to stderr after the command.
//!
//! The last line is machine-readable for the benchmark:
//! `stats: requests=N mutating=N observe_ms=N diff_ms=N ...`.

use moodlestack_aws::RequestStats;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static REQUESTS: OnceLock<RequestStats> = OnceLock::new();
static PHASES: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());

/// Remembers the request counter of the command's cloud (the first one registered wins).
pub fn register(stats: &RequestStats) {
    let _ = REQUESTS.set(stats.clone());
}

/// Adds `elapsed` to `phase`.
pub fn record(phase: &'static str, elapsed: Duration) {
    let mut phases = PHASES.lock().unwrap_or_else(|e| e.into_inner());
    match phases.iter_mut().find(|(p, _)| *p == phase) {
        Some((_, total)) => *total += elapsed,
        None => phases.push((phase, elapsed)),
    }
}

/// Runs `fut`, recording its wall time under `phase`.
pub async fn timed<T>(phase: &'static str, fut: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = fut.await;
    record(phase, start.elapsed());
    out
}

/// The report printed by `--stats`.
pub fn report(total: Duration) -> String {
    let mut out = String::from("\nAWS requests:\n");
    let counts = REQUESTS
        .get()
        .map(RequestStats::snapshot)
        .unwrap_or_default();
    if counts.is_empty() {
        out.push_str("  (none)\n");
    }
    for c in &counts {
        let kind = if c.mutating { "write" } else { "read" };
        out.push_str(&format!(
            "  {:>5}  {:<5} {}:{}\n",
            c.count, kind, c.service, c.operation
        ));
    }
    let requests: u64 = counts.iter().map(|c| c.count).sum();
    let mutating: u64 = counts.iter().filter(|c| c.mutating).map(|c| c.count).sum();
    out.push_str(&format!(
        "  {requests:>5}  total ({mutating} mutating)\n\nWall time:\n"
    ));
    let phases = PHASES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (phase, d) in &phases {
        out.push_str(&format!("  {:>9.3} s  {phase}\n", d.as_secs_f64()));
    }
    out.push_str(&format!("  {:>9.3} s  total\n", total.as_secs_f64()));
    let mut line = format!("stats: requests={requests} mutating={mutating}");
    for (phase, d) in &phases {
        line.push_str(&format!(
            " {}_ms={}",
            phase.replace(' ', "_"),
            d.as_millis()
        ));
    }
    line.push_str(&format!(" total_ms={}", total.as_millis()));
    out.push_str(&line);
    out
}
