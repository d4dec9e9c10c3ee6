//! `GET /v1/files/downloads`: a time-limited signed link to a stored file (SPEC §5).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::base_url;
use super::expand::Expand;
use super::files::expand_file_links;
use super::params::Params;
use super::render::Rendering;
use crate::archive::Entry;
use crate::auth::signed::accepted_params;
use crate::auth::{authenticate, Scope};
use crate::catalog::archives as catalog_archives;
use crate::catalog::autograph as catalog_autograph;
use crate::catalog::files::{self as catalog_files, FileRow};
use crate::delivery::policy::link_key;
use crate::error::ApiError;
use crate::fraud::client::canonical;
use crate::ids;
use crate::links::{Disposition, LinkClaims};
use crate::state::AppState;

/// The parameters of a download request (besides §1's `format`, `human`, …).
pub const PARAMS: &[&str] = &[
    "file_id",
    "object_key",
    "pipeline_id",
    "expiry_time",
    "ip",
    "redirect",
    "streaming",
    "autograph_tag",
    "anti_fraud",
    "item",
    "max_parallel_downloads",
];

/// Largest `max_parallel_downloads` accepted.
pub const MAX_PARALLEL: u64 = 10_000;
/// Longest AutoGraph tag, in characters (SPEC §5).
pub const MAX_TAG_CHARS: usize = 128;

/// Which file the request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Id(String),
    Key {
        pipeline_id: Option<String>,
        object_key: String,
    },
}

/// The validated parameters of a download request (everything but the file lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    pub selector: Selector,
    /// Link expiry, Unix seconds.
    pub expiry_time: i64,
    pub ip: Option<IpAddr>,
    pub redirect: bool,
    pub streaming: bool,
    pub autograph_tag: Option<String>,
    pub anti_fraud: bool,
    pub item: Option<String>,
    pub max_parallel_downloads: Option<u32>,
}

/// Checks every parameter; `signed_expiry` is the `expiry_time` of a MediaHub signed URL
/// (it then bounds the link instead of being a link parameter of its own).
pub fn parse(
    p: &Params,
    now_secs: i64,
    default_ttl: u64,
    max_ttl: u64,
    signed_expiry: Option<i64>,
) -> Result<DownloadRequest, ApiError> {
    let selector = match (p.get("file_id"), p.get("object_key"), p.get("pipeline_id")) {
        (Some(_), Some(_), _) => return Err(ApiError::invalid("conflicting_file_selector", "object_key")),
        (Some(_), None, Some(_)) => {
            return Err(ApiError::invalid("pipeline_id_needs_object_key", "pipeline_id"))
        }
        (None, None, _) => return Err(ApiError::invalid("missing_file_selector", "file_id")),
        (Some(id), None, None) => Selector::Id(id.to_string()),
        (None, Some(key), pipeline) => {
            if key.is_empty() {
                return Err(ApiError::invalid("invalid_object_key", "object_key"));
            }
            if pipeline.is_some_and(|p| !ids::is_id(p)) {
                return Err(ApiError::invalid("invalid_pipeline_id", "pipeline_id"));
            }
            Selector::Key {
                pipeline_id: pipeline.map(str::to_string),
                object_key: key.to_string(),
            }
        }
    };
    let max = now_secs.saturating_add(max_ttl as i64);
    let expiry_time = match signed_expiry {
        // Already checked to lie in the future; the link lives no longer than the URL.
        Some(e) => e.min(max),
        None => match p.get("expiry_time") {
            None => now_secs.saturating_add(default_ttl as i64),
            Some(v) => {
                let t =
                    parse_digits(v).ok_or_else(|| ApiError::invalid("invalid_expiry_time", "expiry_time"))?;
                if t <= now_secs {
                    return Err(ApiError::invalid("expiry_in_past", "expiry_time"));
                }
                if t > max {
                    return Err(ApiError::invalid("expiry_too_far", "expiry_time"));
                }
                t
            }
        },
    };
    let ip = p.get("ip").map(parse_ip).transpose()?;
    let autograph_tag = match p.get("autograph_tag") {
        None => None,
        Some(t) => {
            let n = t.chars().count();
            if n == 0 || n > MAX_TAG_CHARS || t.chars().any(not_printable) {
                return Err(ApiError::invalid("invalid_autograph_tag", "autograph_tag"));
            }
            Some(t.to_string())
        }
    };
    let item = match p.get("item") {
        None => None,
        Some("") => return Err(ApiError::invalid("invalid_item", "item")),
        Some(i) => Some(i.to_string()),
    };
    let max_parallel_downloads = p
        .u64_in(
            "max_parallel_downloads",
            1,
            MAX_PARALLEL,
            "invalid_max_parallel_downloads",
        )?
        .map(|n| n as u32);
    Ok(DownloadRequest {
        selector,
        expiry_time,
        ip,
        redirect: p.flag("redirect")?,
        streaming: p.flag("streaming")?,
        autograph_tag,
        anti_fraud: p.flag("anti_fraud")?,
        item,
        max_parallel_downloads,
    })
}

/// Characters a tag may not hold: controls (C0, DEL, C1), line and paragraph separators,
/// and the bidirectional overrides and isolates that make text display as something
/// else (a tag is shown in the audit trail, backtraces and the console).
fn not_printable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn parse_digits(v: &str) -> Option<i64> {
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// MediaHub's form is IPv4 as a 32-bit unsigned integer (3232236033 = 192.168.2.1); as
/// our extension also a dotted IPv4 or an IPv6 address. Anything else → 400 `invalid_ip`.
pub fn parse_ip(v: &str) -> Result<IpAddr, ApiError> {
    let bad = || ApiError::invalid("invalid_ip", "ip");
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        if v.len() > 10 {
            return Err(bad());
        }
        let n: u64 = v.parse().map_err(|_| bad())?;
        let n = u32::try_from(n).map_err(|_| bad())?;
        return Ok(IpAddr::V4(Ipv4Addr::from(n)));
    }
    v.parse::<IpAddr>().map(canonical).map_err(|_| bad())
}

async fn select(state: &AppState, selector: Selector) -> Result<FileRow, ApiError> {
    let now = state.clock.now_ms();
    // The delivery cache's row (at most `cache::TTL_MS` old, dropped at once when this
    // process deletes or revokes the file) spares the catalog a read per link issued.
    let cached = match &selector {
        Selector::Id(id) => state.cache.file(id, now),
        Selector::Key { .. } => None,
    };
    let row = match cached {
        Some(row) => Some(FileRow::clone(&row)),
        None => {
            let row = state
                .catalog
                .call(move |c| {
                    Ok(match &selector {
                        Selector::Id(id) if ids::is_id(id) => catalog_files::get(c, id)?,
                        Selector::Id(_) => None,
                        Selector::Key {
                            pipeline_id,
                            object_key,
                        } => catalog_files::by_key(c, pipeline_id.as_deref(), object_key)?,
                    })
                })
                .await?;
            if let Some(f) = &row {
                state.cache.put_file(std::sync::Arc::new(f.clone()), now);
            }
            row
        }
    };
    let file = match row {
        Some(f) if !f.is_expired(now) => f,
        _ => return Err(ApiError::not_found("file")),
    };
    if file.is_missing() {
        // `filegate verify --repair` found its bytes gone or damaged.
        return Err(ApiError::new(crate::error::ErrorKind::Gone, "file_missing"));
    }
    // A job's outputs are served only once the job succeeded (409 otherwise).
    if file.job_id.is_some() {
        let f = file.clone();
        state
            .catalog
            .call(move |c| crate::jobs::download_gate(c, &f))
            .await?;
    }
    Ok(file)
}

pub async fn downloads(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[PARAMS, accepted_params(&req)])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, &["file"])?;
    let who = authenticate(&state, &req, &params).await?;
    who.require(Scope::MediahubDownloadFiles)?;
    let now_ms = state.clock.now_ms();
    let now_secs = now_ms.div_euclid(1000);
    let links = &state.config.links;
    let d = parse(
        &params,
        now_secs,
        links.default_ttl,
        links.max_ttl,
        who.signed_expiry,
    )?;
    if d.autograph_tag.is_some() {
        who.require(Scope::Autograph)?;
    }

    let base = base_url(&req, &state.config);
    let mut download = issue(&state, &d, Some(who.app_id.clone()), &base).await?;
    if d.redirect {
        if let Some(url) = download["url"].as_str() {
            return Ok(HttpResponse::build(StatusCode::FOUND)
                .insert_header((header::LOCATION, url))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish());
        }
    }
    if x.has("file") {
        expand_file_links(&state, &mut download, &base).await?;
    }
    let mut res = rendering.ok(json!({ "download": download }));
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// Signs the link (or an archive's links) that `d` asks for, for application `app_id`
/// (`None`: the admin console), and answers the `download` object of SPEC §5. The API
/// endpoint and the console's link maker both issue links through here only, so the
/// console cannot hand out anything the API would refuse.
pub async fn issue(
    state: &AppState,
    d: &DownloadRequest,
    app_id: Option<String>,
    base: &str,
) -> Result<Value, ApiError> {
    let now_ms = state.clock.now_ms();
    let file = select(state, d.selector.clone()).await?;
    if d.autograph_tag.is_some() && !file.autograph {
        return Err(ApiError::invalid("autograph_not_enabled", "autograph_tag"));
    }
    // A tagged link to an archive serves the whole archive, marked (its entries cannot
    // carry a mark of their own): one `url`, not `items`.
    let is_archive = file.kind == "archive" && d.autograph_tag.is_none();
    if is_archive && d.redirect && d.item.is_none() {
        return Err(ApiError::invalid("redirect_archive", "redirect"));
    }
    if d.item.is_some() && d.autograph_tag.is_some() {
        return Err(ApiError::invalid("autograph_item_not_supported", "item"));
    }
    if d.item.is_some() && !is_archive {
        return Err(ApiError::invalid("not_an_archive", "item"));
    }
    let entry = match &d.item {
        Some(item) => Some(entry_named(state, &file.id, item).await?),
        None => None,
    };

    let claims = LinkClaims {
        item: entry.as_ref().map(|e| e.name.clone()),
        ip: d.ip,
        disposition: if d.streaming {
            Disposition::Inline
        } else {
            Disposition::Attachment
        },
        autograph_tag: d.autograph_tag.clone(),
        anti_fraud: d.anti_fraud,
        max_parallel_downloads: d.max_parallel_downloads,
        app_id: app_id.clone(),
        ..LinkClaims::new(file.id.clone(), now_ms, d.expiry_time)
    };
    let sign = |claims: &LinkClaims, name: &str| -> Result<String, ApiError> {
        let path = state
            .keys
            .sign(claims, name)
            .map_err(|e| ApiError::internal(format!("signing a link: {e:?}")))?;
        Ok(format!("{base}{path}"))
    };
    let (what, link) = match &entry {
        Some(e) => (Described::of_entry(e), Link::Url(sign(&claims, e.base_name())?)),
        None if is_archive => {
            let id = file.id.clone();
            let entries = state
                .catalog
                .call(move |c| Ok(catalog_archives::list(c, &id)?))
                .await?;
            let mut items = Vec::with_capacity(entries.len());
            for e in &entries {
                let c = LinkClaims {
                    item: Some(e.name.clone()),
                    ..claims.clone()
                };
                items.push(json!({
                    "name": e.name,
                    "size": e.size,
                    "mime_type": e.mime_type,
                    "url": sign(&c, e.base_name())?,
                }));
            }
            (Described::of_file(&file), Link::Items(items))
        }
        None => (Described::of_file(&file), Link::Url(sign(&claims, &file.name)?)),
    };
    if let (Some(tag), Link::Url(url)) = (&d.autograph_tag, &link) {
        record_tagged_link(state, url, base, &claims, tag).await?;
    }
    let issued = match &link {
        Link::Url(_) => 1,
        Link::Items(items) => items.len() as u64,
    };
    state.metrics.links_issued.fetch_add(issued, Ordering::Relaxed);
    tracing::info!(file_id = %file.id, app_id = app_id.as_deref().unwrap_or("console"), expires = d.expiry_time, links = issued, "link issued");

    Ok(answer(&file, &what, d, link, base))
}

/// A tagged link is written down before it is handed out (durably, like any catalog
/// write): whatever becomes of the audit trail, a backtrace of one of its copies names
/// the file, the tag, the application and when the link was issued.
async fn record_tagged_link(
    state: &AppState,
    url: &str,
    base: &str,
    claims: &LinkClaims,
    tag: &str,
) -> Result<(), ApiError> {
    let row = catalog_autograph::LinkRow {
        mark_id: link_key(url.strip_prefix(base).unwrap_or(url)),
        file_id: claims.file_id.clone(),
        tag: tag.to_string(),
        app_id: claims.app_id.clone(),
        issued_at: claims.issued_at_ms,
        expires_at: claims.expires_at,
    };
    state
        .catalog
        .call(move |c| Ok(catalog_autograph::insert_link(c, &row)?))
        .await?;
    state
        .metrics
        .autograph_links_issued
        .fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The archive entry that `item=` names (its display name): 404 `item_not_found` if none.
async fn entry_named(state: &AppState, file_id: &str, item: &str) -> Result<Entry, ApiError> {
    let (id, item) = (file_id.to_string(), item.to_string());
    state
        .catalog
        .call(move |c| Ok(catalog_archives::by_name(c, &id, &item)?))
        .await?
        .ok_or_else(|| ApiError::not_found("item").with_param("item"))
}

/// What the answer describes: the file, or the one archive entry asked for.
struct Described {
    name: String,
    mime_type: String,
    size: u64,
}

impl Described {
    fn of_file(f: &FileRow) -> Described {
        Described {
            name: f.name.clone(),
            mime_type: f.mime_type.clone(),
            size: u64::try_from(f.size).unwrap_or(0),
        }
    }
    fn of_entry(e: &Entry) -> Described {
        Described {
            name: e.name.clone(),
            mime_type: e.mime_type.clone(),
            size: e.size,
        }
    }
}

/// One link, or (for a whole archive) one per entry (SPEC §5).
enum Link {
    Url(String),
    Items(Vec<Value>),
}

fn answer(f: &FileRow, what: &Described, d: &DownloadRequest, link: Link, base: &str) -> Value {
    let mut out = serde_json::Map::new();
    match link {
        Link::Url(url) => out.insert("url".into(), Value::String(url)),
        Link::Items(items) => out.insert("items".into(), Value::Array(items)),
    };
    let rest = json!({
        "expiry_time": d.expiry_time,
        "file": {"id": f.id, "href": format!("{base}/v1/files/{}", f.id)},
        "name": what.name,
        "mime_type": what.mime_type,
        "size": what.size,
        "streaming": d.streaming,
        "ip": d.ip.map(|i| i.to_string()),
        "anti_fraud": d.anti_fraud,
        "autograph_tag": d.autograph_tag,
        "max_parallel_downloads": d.max_parallel_downloads,
    });
    if let Value::Object(rest) = rest {
        out.extend(rest);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::SIGNED;

    fn p(q: &str) -> Params {
        Params::parse(q, &[PARAMS, SIGNED]).unwrap()
    }
    fn reason(q: &str) -> String {
        parse(&p(q), 1000, 60, 3600, None)
            .unwrap_err()
            .reason
            .into_owned()
    }

    #[test]
    fn mediahub_integer_ip_and_our_extensions() {
        assert_eq!(
            parse_ip("3232236033").unwrap(),
            "192.168.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(parse_ip("0").unwrap(), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(
            parse_ip("4294967295").unwrap(),
            "255.255.255.255".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_ip("10.1.2.3").unwrap(),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_ip("2001:db8::1").unwrap(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_ip("::ffff:10.1.2.3").unwrap(),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        for bad in [
            "4294967296",
            "-1",
            "",
            "1.2.3",
            "01.2.3.4",
            "host",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(parse_ip(bad).unwrap_err().reason, "invalid_ip", "{bad}");
        }
    }

    #[test]
    fn selector_rules() {
        assert_eq!(reason("object_key=a&file_id=x"), "conflicting_file_selector");
        assert_eq!(reason("file_id=x&pipeline_id=y"), "pipeline_id_needs_object_key");
        assert_eq!(reason("redirect=true"), "missing_file_selector");
        assert_eq!(reason("object_key=a&pipeline_id=nope"), "invalid_pipeline_id");
    }

    #[test]
    fn expiry_bounds() {
        let ok = parse(&p("file_id=x"), 1000, 60, 3600, None).unwrap();
        assert_eq!(ok.expiry_time, 1060, "default ttl");
        assert_eq!(reason("file_id=x&expiry_time=1000"), "expiry_in_past");
        assert_eq!(reason("file_id=x&expiry_time=4601"), "expiry_too_far");
        assert_eq!(
            parse(&p("file_id=x&expiry_time=4600"), 1000, 60, 3600, None)
                .unwrap()
                .expiry_time,
            4600
        );
        assert_eq!(
            parse(&p("file_id=x&expiry_time=1001"), 1000, 60, 3600, None)
                .unwrap()
                .expiry_time,
            1001
        );
        assert_eq!(reason("file_id=x&expiry_time=+1500"), "invalid_expiry_time");
        assert_eq!(reason("file_id=x&expiry_time=1500.0"), "invalid_expiry_time");
        let signed = parse(&p("file_id=x"), 1000, 60, 3600, Some(99_999)).unwrap();
        assert_eq!(
            signed.expiry_time, 4600,
            "a signed URL's expiry bounds the link, within max_ttl"
        );
    }

    #[test]
    fn tags_and_parallel_limits() {
        assert_eq!(reason("file_id=x&autograph_tag="), "invalid_autograph_tag");
        assert_eq!(
            reason(&format!("file_id=x&autograph_tag={}", "a".repeat(129))),
            "invalid_autograph_tag"
        );
        assert_eq!(reason("file_id=x&autograph_tag=a%0Ab"), "invalid_autograph_tag");
        for bad in ["%7F", "%C2%85", "%E2%80%A8", "%E2%80%AE", "%E2%81%A6"] {
            assert_eq!(
                reason(&format!("file_id=x&autograph_tag=a{bad}b")),
                "invalid_autograph_tag",
                "{bad}"
            );
        }
        let t = parse(
            &p(&format!("file_id=x&autograph_tag={}", "é".repeat(128))),
            1000,
            60,
            3600,
            None,
        );
        assert!(t.is_ok());
        assert_eq!(
            reason("file_id=x&max_parallel_downloads=0"),
            "invalid_max_parallel_downloads"
        );
        assert_eq!(reason("file_id=x&redirect=yes"), "invalid_boolean");
    }
}
