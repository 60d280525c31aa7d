//! Progress on stderr, hidden when stderr is not a terminal. With `KAM_TIMINGS=1`, each step is
//! also printed as it starts, with the seconds since the command began and the process's peak
//! memory so far — where the time and memory of a run go, stage by stage.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// A spinner with a message per step; draws nothing when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    /// When the timings are on (`KAM_TIMINGS` set and not `0`): the start.
    timings: Option<Instant>,
}

/// The process's peak resident memory so far (Linux: `VmHWM`), in MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

impl Progress {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        let timings = std::env::var_os("KAM_TIMINGS").filter(|v| !v.is_empty() && v != "0").map(|_| Instant::now());
        Self { bar, timings }
    }

    pub fn step(&self, message: impl Into<String>) {
        let message = message.into();
        self.timing(&message);
        self.bar.set_message(message);
    }

    fn timing(&self, message: &str) {
        if let Some(start) = self.timings {
            let peak = peak_mib().map_or_else(String::new, |m| format!(", peak {m:.0} MiB"));
            self.bar.suspend(|| eprintln!("timings: {:8.3} s{peak}: {message}", start.elapsed().as_secs_f64()));
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.timing("done");
        self.bar.finish_and_clear();
    }
}
