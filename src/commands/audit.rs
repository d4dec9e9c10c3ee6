//! `filegate audit`: the download audit trail from the catalog, as a table or JSON lines.

use crate::api::audit::download_json;
use crate::catalog::audit::{self as table, Query};
use crate::cli::AuditArgs;
use crate::delivery::validators::http_date;
use crate::error::StartupError;
use crate::state::AppState;

/// `90s`, `15m`, `2h`, `7d` back from `now_ms`, or milliseconds since the epoch.
pub fn parse_when(s: &str, now_ms: i64) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return (ms >= 0).then_some(ms);
    }
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0)?;
    let ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(now_ms.saturating_sub(n.saturating_mul(ms)))
}

pub fn run(state: &AppState, a: AuditArgs) -> Result<(), StartupError> {
    let conn = state.catalog.conn()?;
    let now = state.clock.now_ms();
    let base = state.config.server.public_url.trim_end_matches('/').to_string();
    if let Some(id) = a.id {
        let Some((d, events)) = table::get(&conn, id, 10_000)? else {
            return Err(StartupError::Other(format!("no download {id}")));
        };
        if a.json {
            let mut v = download_json(&d, &base);
            v["events"] = serde_json::Value::Array(
                events
                    .iter()
                    .map(|e| {
                        serde_json::json!({"at": e.at, "method": e.method, "status": e.status,
                        "range": e.range, "bytes": e.bytes, "completed": e.completed, "ms": e.ms})
                    })
                    .collect(),
            );
            println!("{v}");
            return Ok(());
        }
        print_rows(std::slice::from_ref(&d));
        println!();
        println!(
            "{:<29}  {:<6}  {:>6}  {:>12}  {:>7}  {:<9}  RANGE",
            "AT", "METHOD", "STATUS", "BYTES", "MS", "COMPLETED"
        );
        for e in events {
            println!(
                "{:<29}  {:<6}  {:>6}  {:>12}  {:>7}  {:<9}  {}",
                http_date(e.at.div_euclid(1000)),
                e.method,
                e.status,
                e.bytes,
                e.ms,
                if e.completed { "yes" } else { "no" },
                e.range.unwrap_or_default()
            );
        }
        return Ok(());
    }
    let when = |v: &Option<String>, flag: &str| -> Result<Option<i64>, StartupError> {
        v.as_deref()
            .map(|s| {
                parse_when(s, now).ok_or_else(|| {
                    StartupError::Other(format!("{flag} {s:?}: use 90s, 15m, 2h, 7d or milliseconds"))
                })
            })
            .transpose()
    };
    let client = a
        .client
        .as_deref()
        .map(|c| {
            crate::api::downloads::parse_ip(c)
                .map(|ip| ip.to_string())
                .map_err(|_| StartupError::Other(format!("--client {c:?} is not an IP address")))
        })
        .transpose()?;
    let q = Query {
        file_id: a.file.clone(),
        app_id: a.app.clone(),
        tag: a.tag.clone(),
        client,
        outcome: a.reason.clone(),
        refused: match (a.refused, a.delivered) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        from: when(&a.since, "--since")?,
        to: when(&a.until, "--until")?,
        start: 0,
        limit: a.limit,
        ascending: false,
    };
    let (rows, total) = table::list(&conn, &q)?;
    if a.json {
        for d in &rows {
            println!("{}", download_json(d, &base));
        }
        return Ok(());
    }
    print_rows(&rows);
    eprintln!("{} of {total} shown", rows.len());
    Ok(())
}

fn print_rows(rows: &[table::DownloadRow]) {
    println!(
        "{:>6}  {:<29}  {:<24}  {:<39}  {:<28}  {:>5}  {:>12}  {:<24}  TAG",
        "ID", "LAST", "FILE", "CLIENT", "OUTCOME", "REQS", "BYTES", "APP"
    );
    for d in rows {
        let outcome = if d.outcome.is_empty() {
            format!("{} delivered", d.status)
        } else {
            format!("{} {}", d.status, d.outcome)
        };
        println!(
            "{:>6}  {:<29}  {:<24}  {:<39}  {:<28}  {:>5}  {:>12}  {:<24}  {}",
            d.id,
            http_date(d.last_at.div_euclid(1000)),
            d.file_id.as_deref().unwrap_or("-"),
            d.client,
            outcome,
            d.requests,
            d.bytes,
            d.app_id.as_deref().unwrap_or("-"),
            d.tag.as_deref().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_a_duration_back_or_milliseconds() {
        assert_eq!(parse_when("90s", 100_000), Some(10_000));
        assert_eq!(parse_when("2h", 10_000_000), Some(10_000_000 - 7_200_000));
        assert_eq!(parse_when("7d", 0), Some(-7 * 86_400_000));
        assert_eq!(parse_when("1767225600000", 5), Some(1_767_225_600_000));
        for bad in ["", "h", "5w", "-5m", "soon", "1.5h"] {
            assert_eq!(parse_when(bad, 100), None, "{bad}");
        }
    }
}
