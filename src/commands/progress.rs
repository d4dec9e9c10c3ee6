//! A one-line progress bar on stderr for long CLI operations (uploads, checksums).

use std::time::Instant;

/// A one-line progress bar on stderr, drawn only on a terminal.
pub struct Progress {
    total: u64,
    on: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(total: u64, on: bool) -> Progress {
        Progress {
            total,
            on,
            started: Instant::now(),
            last: None,
        }
    }

    pub fn update(&mut self, sent: u64) {
        if !self.on || (self.last.is_some_and(|t| t.elapsed().as_millis() < 100) && sent < self.total) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprint!("\r{}", render(sent, self.total, sent as f64 / secs));
    }

    pub fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// `[#########...........]  45%  1.2 GiB / 2.0 GiB  85.3 MiB/s`
fn render(sent: u64, total: u64, rate: f64) -> String {
    const WIDTH: u64 = 30;
    let frac = if total == 0 {
        1.0
    } else {
        sent as f64 / total as f64
    };
    let filled = ((frac * WIDTH as f64) as u64).min(WIDTH);
    format!(
        "[{}{}] {:>3}%  {} / {}  {}/s",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        (frac * 100.0) as u64,
        human(sent as f64),
        human(total as f64),
        human(rate)
    )
}

pub fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut n = n;
    let mut u = 0;
    while n >= 1024.0 && u < UNITS.len() - 1 {
        n /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n:.0} {}", UNITS[u])
    } else {
        format!("{n:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line() {
        assert_eq!(
            render(1 << 30, 2 << 30, 85.3 * 1048576.0),
            "[###############...............]  50%  1.0 GiB / 2.0 GiB  85.3 MiB/s"
        );
        assert_eq!(
            render(0, 0, 0.0),
            "[##############################] 100%  0 B / 0 B  0 B/s"
        );
        assert_eq!(human(1536.0), "1.5 KiB");
    }
}
