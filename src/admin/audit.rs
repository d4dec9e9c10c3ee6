//! The console's audit trail: `catalog::audit` filtered with the checks of
//! `GET /v1/downloads/` (the same `api::audit::query`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use filegate_templates::console::audit as views;

use super::files::pager;
use super::{catalog_failed, chrome, field, format_ms, html, query, refusal, viewer};
use crate::api::params::Params;
use crate::catalog::audit as table;
use crate::error::ApiError;
use crate::state::AppState;

const PAGE: u64 = 100;

/// The refusal reasons of link delivery, offered by the filter (sorted).
fn reasons() -> Vec<String> {
    let mut r: Vec<String> = crate::delivery::serve::REFUSALS
        .iter()
        .map(|(r, _)| r.to_string())
        .collect();
    r.sort();
    r
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/audit", web::get().to(page))
        // The page's first name (issue 8); kept so bookmarks work.
        .route("/admin/downloads", web::get().to(page));
}

/// `YYYY-MM-DDTHH:MM` (a `datetime-local` value, taken as UTC) → Unix ms.
pub fn parse_local(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T').or_else(|| s.split_once(' '))?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min) = (t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&min)
    {
        return None;
    }
    // Days from civil (H. Hinnant), proleptic Gregorian.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) * 1000)
}

fn filters(q: &[(String, String)]) -> views::AuditFilters {
    let g = |k: &str| field(q, k).trim().to_string();
    // `refused=1` was the page's only filter before; keep it meaning "refusals".
    let refused = match g("refused").as_str() {
        "true" | "1" => "true".to_string(),
        "false" | "0" => "false".to_string(),
        _ => String::new(),
    };
    views::AuditFilters {
        reason: g("reason"),
        file_id: g("file_id"),
        client_id: g("client_id"),
        client: g("client"),
        refused,
        from: g("from"),
        to: g("to"),
    }
}

/// The filters as `GET /v1/downloads/` parameters, checked by its own parser.
fn to_query(f: &views::AuditFilters, start: u64) -> Result<table::Query, ApiError> {
    let mut pairs: Vec<(String, String)> = [
        ("reason", &f.reason),
        ("file_id", &f.file_id),
        ("client_id", &f.client_id),
        ("client", &f.client),
        ("refused", &f.refused),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    for (k, v) in [("from", &f.from), ("to", &f.to)] {
        if !v.is_empty() {
            let ms = parse_local(v).ok_or_else(|| ApiError::invalid("invalid_time", k))?;
            pairs.push((k.to_string(), ms.max(0).to_string()));
        }
    }
    pairs.push(("start".into(), start.to_string()));
    pairs.push(("limit".into(), PAGE.to_string()));
    let p = Params::from_pairs(pairs, &[crate::api::params::LIST, crate::api::audit::FILTERS])?;
    crate::api::audit::query(&p)
}

async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = query(&req);
    let f = filters(&q);
    let start = field(&q, "start").parse().unwrap_or(0);
    let (status, error, aq) = match to_query(&f, start) {
        Ok(aq) => (StatusCode::OK, None, Some(aq)),
        Err(e) => (e.status(), Some(refusal(&e)), None),
    };
    let read = state
        .catalog
        .call(move |c| {
            Ok(match &aq {
                Some(aq) => table::list(c, aq)?,
                None => (Vec::new(), 0),
            })
        })
        .await;
    let Ok((rows, total)) = read else {
        return catalog_failed();
    };
    let keep = [
        ("reason", f.reason.clone()),
        ("file_id", f.file_id.clone()),
        ("client_id", f.client_id.clone()),
        ("client", f.client.clone()),
        ("refused", f.refused.clone()),
        ("from", f.from.clone()),
        ("to", f.to.clone()),
    ];
    let v = views::AuditView {
        pager: pager("/admin/audit", &keep, start, rows.len(), total, PAGE),
        downloads: rows
            .into_iter()
            .map(|d| views::DownloadItem {
                id: d.id,
                last: format_ms(d.last_at),
                file_id: d.file_id.unwrap_or_default(),
                client: d.client,
                reason: (!d.outcome.is_empty()).then_some(d.outcome),
                status: d.status,
                requests: d.requests,
                bytes: u64::try_from(d.bytes).unwrap_or(0),
                app_id: d.app_id.unwrap_or_default(),
                tag: d.tag.unwrap_or_default(),
                anti_fraud: d.anti_fraud,
            })
            .collect(),
        filters: f,
        reasons: reasons(),
        error,
    };
    html(status, views::audit(&chrome(&s, "audit"), &v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetime_local_values_are_utc_milliseconds() {
        assert_eq!(super::parse_local("1970-01-01T00:00"), Some(0));
        assert_eq!(super::parse_local("2026-01-01T00:00"), Some(1_767_225_600_000));
        assert_eq!(
            super::parse_local("2000-02-29T13:07"),
            Some(951_782_400_000 + 3_600_000 * 13 + 60_000 * 7)
        );
        for bad in [
            "",
            "2026-13-01T00:00",
            "2026-01-01",
            "yesterday",
            "2026-01-01T24:00",
        ] {
            assert_eq!(super::parse_local(bad), None, "{bad}");
        }
    }
}
