//! In-process counters and histograms, rendered in the Prometheus text format (0.0.4).
//! Kept dependency-free: a handful of atomics and one small map per family.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// What one route pattern saw: answers by method and status, and their latency.
#[derive(Default)]
struct RouteStats {
    answers: Vec<(String, u16, u64)>,
    latency: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    /// One lock and, once a route has been seen, no allocation per request.
    routes: Mutex<HashMap<String, RouteStats>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    pub bytes_served: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub links_issued: AtomicU64,
    pub uploads_completed: AtomicU64,
    /// Downloads started: one per link and client, however many Range requests.
    pub downloads: AtomicU64,
    /// Audit rows lost because the writer could not keep up (or the catalog failed).
    pub audit_dropped: AtomicU64,
    /// AutoGraph: tagged links issued, marked copies sent (answers with a body).
    pub autograph_links_issued: AtomicU64,
    pub autograph_copies: AtomicU64,
    /// Backtraces by result: found, no_mark, forged_mark.
    pub backtraces: [AtomicU64; 3],
}

/// Values read at scrape time from the catalog and the disk.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    pub catalog_bytes: u64,
    pub files: u64,
    pub stored_bytes: u64,
    pub applications: u64,
    /// Blobs kept open for serving ([`crate::store::Store::open_shared`]).
    pub open_blobs: u64,
    /// Bytes of small files and entries kept in memory ([`crate::delivery::cache::Cache::small_blob`]).
    pub memory_cache_bytes: u64,
}

impl Metrics {
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let Ok(mut m) = self.routes.lock() else { return };
        let r = match m.get_mut(route) {
            Some(r) => r,
            None => m.entry(route.to_string()).or_default(),
        };
        match r.answers.iter_mut().find(|(m, s, _)| m == method && *s == status) {
            Some((_, _, n)) => *n += 1,
            None => r.answers.push((method.to_string(), status, 1)),
        }
        let h = &mut r.latency;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// An upload became a file of `size` bytes.
    pub fn upload_completed(&self, size: i64) {
        self.uploads_completed.fetch_add(1, Ordering::Relaxed);
        self.bytes_uploaded
            .fetch_add(u64::try_from(size).unwrap_or(0), Ordering::Relaxed);
    }

    /// A request refused with this stable `reason` (4xx answers).
    pub fn refused(&self, reason: &str) {
        if let Ok(mut m) = self.refusals.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        header(
            o,
            "filegate_http_requests_total",
            "counter",
            "HTTP requests answered, by route pattern, method and status.",
        );
        let routes = self.routes.lock();
        // Sorted, so that scrapes list series in a stable order.
        let routes: BTreeMap<&String, &RouteStats> = match &routes {
            Ok(m) => m.iter().collect(),
            Err(_) => BTreeMap::new(),
        };
        for (route, r) in &routes {
            let mut answers: Vec<_> = r.answers.iter().collect();
            answers.sort();
            for (method, status, n) in answers {
                let _ = writeln!(
                    o,
                    "filegate_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    esc(route),
                    esc(method)
                );
            }
        }
        header(
            o,
            "filegate_http_request_duration_seconds",
            "histogram",
            "Time to answer (headers ready), by route pattern.",
        );
        {
            for (route, rs) in &routes {
                let h = &rs.latency;
                let r = esc(route);
                for (i, le) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "filegate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    o,
                    "filegate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    o,
                    "filegate_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "filegate_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count
                );
            }
        }
        header(
            o,
            "filegate_refusals_total",
            "counter",
            "Requests refused, by stable reason.",
        );
        if let Ok(m) = self.refusals.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(o, "filegate_refusals_total{{reason=\"{}\"}} {n}", esc(reason));
            }
        }
        let counters = [
            (
                "filegate_bytes_served_total",
                "File bytes sent to clients.",
                &self.bytes_served,
            ),
            (
                "filegate_bytes_uploaded_total",
                "File bytes received in uploads.",
                &self.bytes_uploaded,
            ),
            (
                "filegate_links_issued_total",
                "Download links issued.",
                &self.links_issued,
            ),
            (
                "filegate_uploads_completed_total",
                "Uploads that became files.",
                &self.uploads_completed,
            ),
            (
                "filegate_downloads_total",
                "Downloads recorded in the audit trail (one per link and client, however many Range requests).",
                &self.downloads,
            ),
            (
                "filegate_audit_dropped_total",
                "Audit rows dropped because the writer could not keep up.",
                &self.audit_dropped,
            ),
        ];
        let autograph = [
            (
                "filegate_autograph_links_issued_total",
                "AutoGraph-tagged download links issued.",
                &self.autograph_links_issued,
            ),
            (
                "filegate_autograph_copies_total",
                "Answers that sent (part of) a marked AutoGraph copy.",
                &self.autograph_copies,
            ),
        ];
        for (name, help, v) in counters.into_iter().chain(autograph) {
            header(o, name, "counter", help);
            let _ = writeln!(o, "{name} {}", v.load(Ordering::Relaxed));
        }
        header(
            o,
            "filegate_backtraces_total",
            "counter",
            "Backtraces of suspect copies, by result.",
        );
        for (result, v) in ["found", "no_mark", "forged_mark"].iter().zip(&self.backtraces) {
            let _ = writeln!(
                o,
                "filegate_backtraces_total{{result=\"{result}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            (
                "filegate_catalog_bytes",
                "Size of the SQLite catalog files on disk.",
                g.catalog_bytes,
            ),
            ("filegate_files", "Files in the catalog.", g.files),
            (
                "filegate_stored_bytes",
                "Bytes of file contents in the blob store.",
                g.stored_bytes,
            ),
            (
                "filegate_applications",
                "Applications (API clients).",
                g.applications,
            ),
            (
                "filegate_open_blobs",
                "Files kept open for serving (reused for a second).",
                g.open_blobs,
            ),
            (
                "filegate_memory_cache_bytes",
                "Bytes of small files and archive entries kept in memory for a second.",
                g.memory_cache_bytes,
            ),
        ];
        for (name, help, v) in gauges {
            header(o, name, "gauge", help);
            let _ = writeln!(o, "{name} {v}");
        }
        out
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.observe_request("/a\"b", "GET", 200, 0.003);
        m.observe_request("/a\"b", "GET", 200, 20.0);
        let t = m.render(&Gauges::default());
        assert!(
            t.contains(r#"filegate_http_requests_total{route="/a\"b",method="GET",status="200"} 2"#),
            "{t}"
        );
        assert!(t.contains(r#"_bucket{route="/a\"b",le="0.0025"} 0"#));
        assert!(t.contains(r#"_bucket{route="/a\"b",le="0.005"} 1"#));
        assert!(t.contains(r#"_bucket{route="/a\"b",le="10"} 1"#));
        assert!(t.contains(r#"_bucket{route="/a\"b",le="+Inf"} 2"#));
    }
}
