//! `GET`/`HEAD /d/<token>/<name>`: verify a link, apply its policy, serve the bytes
//! with validators, conditional requests and byte ranges (SPEC §6).

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::future::Either;
use futures_util::stream::{self, Stream, StreamExt};

use super::disposition::{self, presentation};
use super::range::{self, ByteRange, MultipartBody, RangeAnswer};
use super::read;
use super::source::{self, open_blob, small_blob, Source, SMALL};
use super::tracked::Seen;
use super::validators::{self, Conditionals, Precondition};
use crate::autograph::copy::Segment;
use crate::catalog::{self, files::FileRow};
use crate::error::{ApiError, ErrorKind};
use crate::ids;
use crate::links::{LinkClaims, VerifiedLink};
use crate::metrics::Metrics;
use crate::state::AppState;

/// Read size for larger files. Each streaming answer holds about one chunk plus actix's
/// 32 KiB write buffer while its client is slow, so this bounds memory under many slow
/// readers; reads from the page cache cost no thread hop (see [`read`]), so the size is
/// a trade of per-piece work against memory. Measured with 1 000 slow readers and a
/// 1 GiB file (BENCHMARKS.md, scenarios 5 and 3): 256 KiB 430 MiB; 64 KiB ~105 MiB and
/// 0.99x nginx; 32 KiB 88 MiB and 0.95x; 16 KiB 69-88 MiB and 0.91x. Since actix's
/// write buffer no longer grows to two pieces (`crate::server::WRITE_BUFFER`), 32 KiB
/// pieces take 58-66 MiB at 1.06-1.19x.
const CHUNK: usize = 32 * 1024;
/// The first piece of a streamed range: see [`read_range`].
const FIRST_CHUNK: usize = CHUNK + crate::server::WRITE_BUFFER;

/// The single exit: every answer, delivered or refused, goes to the audit trail.
pub async fn deliver(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    // Mounted on the `/d` prefix: only `/d/<token>/<name>` is a link.
    let shaped = req
        .path()
        .strip_prefix("/d/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(token, name)| !token.is_empty() && !name.is_empty() && !name.contains('/'));
    if !shaped {
        return actix_web::ResponseError::error_response(&ApiError::new(
            ErrorKind::NotFound("resource"),
            "no_such_route",
        ));
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return actix_web::ResponseError::error_response(&ApiError::new(
            ErrorKind::MethodNotAllowed,
            "method_not_allowed",
        ));
    }
    let mut seen = Seen::new(&state, &req);
    match serve(&state, &req, &mut seen).await {
        Ok(res) => seen.delivered(&state.audit, res),
        Err(e) => {
            let res = refusal(&req, &e);
            seen.refused(&state.audit, &e);
            res
        }
    }
}

/// Every refusal reason that serving a link can answer (here, in `policy`, `source`,
/// `links` and `jobs::download_gate`), with the sentence its HTML page shows a person.
pub const REFUSALS: &[(&str, &str)] = &[
    ("invalid_signature", "This download link is not valid: it is incomplete or was altered, or the key it was signed with has been retired."),
    ("link_expired", "This download link has expired. Ask for a new one."),
    ("link_revoked", "This download link has been revoked. Ask for a new one."),
    ("method_not_signed", "This link only allows checking the file (HEAD requests), not downloading it."),
    ("ip_not_allowed", "This download link is bound to another network address."),
    ("blocked_ip", "Downloads from your network address are blocked."),
    ("anonymizer", "This link cannot be used through an anonymizing service such as Tor or a VPN. Connect directly and try again."),
    ("proxy_detected", "This link cannot be used through a proxy. Connect directly and try again."),
    ("link_shared", "This download link is already in use by another network address."),
    ("too_many_parallel_downloads", "Too many downloads of this link are running. Try again later."),
    ("file_not_found", "The file behind this link no longer exists."),
    ("item_not_found", "The archive entry behind this link no longer exists."),
    ("file_missing", "The file behind this link is damaged or missing on the server. Tell the people who sent you the link."),
    ("job_not_finished", "The file behind this link is not ready yet: the job producing it has not finished. Try again later."),
    ("job_failed", "The file behind this link is not available: the job that produced it failed."),
    ("precondition_failed", "The file is not the version your browser asked for (a conditional request failed). Reload to fetch it again."),
    ("internal_error", "The server could not serve this file just now. Try again later."),
];

/// The sentence a browser is shown for a refusal `reason`.
pub fn explain(reason: &str) -> &'static str {
    REFUSALS
        .iter()
        .find(|(r, _)| *r == reason)
        .map(|(_, text)| *text)
        .unwrap_or("This download link cannot be used.")
}

/// A refusal never carries file bytes: JSON for programs, a short page for browsers.
fn refusal(req: &HttpRequest, e: &ApiError) -> HttpResponse {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return actix_web::ResponseError::error_response(e);
    }
    let (status, _, message) = e.kind.parts();
    let text = explain(&e.reason);
    let page = filegate_templates::console::message(&message, text);
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(page.into_string());
    res.extensions_mut().insert(e.clone());
    res
}

async fn serve(state: &AppState, req: &HttpRequest, seen: &mut Seen) -> Result<HttpResponse, ApiError> {
    let now_ms = state.clock.now_ms();
    let raw = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    let VerifiedLink { claims, name, .. } = state.keys.verify(raw, now_ms).await?;
    seen.verified(&claims);
    if !claims.method.allows(req.method().as_str()) {
        return Err(ApiError::new(ErrorKind::Forbidden, "method_not_signed"));
    }
    if claims.ip.is_some() && !seen.client.is_some_and(|c| claims.ip_allows(c.addr)) {
        return Err(ApiError::new(ErrorKind::Forbidden, "ip_not_allowed"));
    }
    let file = file_row(state, &claims.file_id, now_ms).await?;
    if file.is_expired(now_ms) {
        return Err(ApiError::not_found("file"));
    }
    if file.is_missing() {
        return Err(ApiError::new(ErrorKind::Gone, "file_missing"));
    }
    if claims.is_revoked(Some(file.revoked_before))
        || !app_enabled(state, claims.app_id.as_deref(), now_ms).await?
    {
        return Err(ApiError::new(ErrorKind::Gone, "link_revoked"));
    }
    if file.job_id.is_some() {
        // Rare and must be current (a job moved to FAILED kills its links): ask the catalog.
        let f = file.clone();
        state
            .catalog
            .call(move |c| crate::jobs::download_gate(c, &f))
            .await?;
    }
    seen.check_policy(state, req, &claims).await?;
    let source = match (&claims.item, &claims.autograph_tag) {
        (Some(item), _) => Source::Entry(source::entry(state, &file.id, item, now_ms).await?),
        // The mark id is the link's key: the same copy on every request of the link.
        (None, Some(tag)) => Source::Marked(source::marked(state, &file, seen.link, tag, now_ms).await?),
        (None, None) => Source::Blob,
    };
    respond(state, req, &claims, &name, &file, &source, now_ms).await
}

async fn file_row(state: &AppState, id: &str, now_ms: i64) -> Result<Arc<FileRow>, ApiError> {
    if let Some(f) = state.cache.file(id, now_ms) {
        return Ok(f);
    }
    let id = id.to_string();
    let row = state
        .catalog
        .call(move |c| Ok(catalog::files::get(c, &id)?))
        .await?;
    let row = Arc::new(row.ok_or_else(|| ApiError::not_found("file"))?);
    state.cache.put_file(row.clone(), now_ms);
    Ok(row)
}

/// Links issued for an application die with it (like S3 presigned URLs with their key).
async fn app_enabled(state: &AppState, app_id: Option<&str>, now_ms: i64) -> Result<bool, ApiError> {
    let Some(id) = app_id else { return Ok(true) };
    if let Some(e) = state.cache.app_enabled(id, now_ms) {
        return Ok(e);
    }
    let key = id.to_string();
    let enabled = state
        .catalog
        .call(move |c| Ok(catalog::apps::get(c, &key)?.is_some_and(|a| a.enabled)))
        .await?;
    state.cache.put_app(id, enabled, now_ms);
    Ok(enabled)
}

async fn respond(
    state: &AppState,
    req: &HttpRequest,
    claims: &LinkClaims,
    name: &str,
    file: &FileRow,
    source: &Source,
    now_ms: i64,
) -> Result<HttpResponse, ApiError> {
    let total = source.size(file);
    let etag = source.etag(file);
    let mime_type = source.mime_type(file);
    let last_modified = validators::last_modified_secs(file.created_at);
    let h = |n: header::HeaderName| req.headers().get(n).and_then(|v| v.to_str().ok());
    let shown = presentation(claims.disposition, mime_type);

    let mut res = HttpResponse::Ok();
    res.insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::LAST_MODIFIED, validators::http_date(last_modified)))
        .insert_header((
            header::CACHE_CONTROL,
            format!(
                "private, max-age={}",
                claims.remaining_secs(now_ms.div_euclid(1000))
            ),
        ))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, disposition::NOSNIFF));

    let conditionals = Conditionals {
        if_match: h(header::IF_MATCH),
        if_none_match: h(header::IF_NONE_MATCH),
        if_modified_since: h(header::IF_MODIFIED_SINCE),
        if_unmodified_since: h(header::IF_UNMODIFIED_SINCE),
    };
    match validators::evaluate(&conditionals, &etag, last_modified) {
        Precondition::Proceed => {}
        Precondition::NotModified => return Ok(res.status(StatusCode::NOT_MODIFIED).finish()),
        Precondition::Failed => {
            return Err(ApiError::new(
                ErrorKind::PreconditionFailed,
                "precondition_failed",
            ));
        }
    }

    res.insert_header((
        header::CONTENT_DISPOSITION,
        disposition::content_disposition(shown.disposition, name),
    ));
    if shown.sandbox {
        res.insert_header((header::CONTENT_SECURITY_POLICY, disposition::SANDBOX_CSP));
    }
    let content_type = HeaderValue::from_str(mime_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let head = req.method() == Method::HEAD;
    let answer = range::evaluate(h(header::RANGE), h(header::IF_RANGE), total, &etag, last_modified);
    let metrics = state.metrics.clone();
    if matches!(source, Source::Marked(_)) && !head && answer != RangeAnswer::Unsatisfiable {
        state.metrics.autograph_copies.fetch_add(1, Ordering::Relaxed);
    }
    // A small file's bytes (and a tagged copy's, but for its mark) come from memory when
    // the file was read within the last second.
    let size = u64::try_from(file.size).unwrap_or(0);
    let small = match source {
        Source::Blob | Source::Marked(_) => (1..=SMALL).contains(&size) && !head,
        Source::Entry(e) => (1..=SMALL).contains(&e.size) && !head,
    };
    let open = || async move { open_blob(state, file) };
    match answer {
        RangeAnswer::Unsatisfiable => Ok(res
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .insert_header((header::CONTENT_RANGE, range::unsatisfied_content_range(total)))
            .finish()),
        RangeAnswer::Full => {
            res.insert_header((header::CONTENT_TYPE, content_type));
            if head {
                return Ok(sized_empty(res, total));
            }
            if small {
                let whole = ByteRange {
                    start: 0,
                    end: total - 1,
                };
                let b = small_body(
                    source,
                    small_bytes(state, file, source, now_ms).await?,
                    whole,
                    &metrics,
                );
                return Ok(res.no_chunking(total).body(b));
            }
            let f = open().await?;
            Ok(send(
                source,
                res,
                f,
                vec![(
                    Bytes::new(),
                    ByteRange {
                        start: 0,
                        end: total.saturating_sub(1),
                    },
                )],
                total,
                Bytes::new(),
                metrics,
            )
            .await?)
        }
        RangeAnswer::Partial(r) => {
            res.status(StatusCode::PARTIAL_CONTENT)
                .insert_header((header::CONTENT_TYPE, content_type))
                .insert_header((header::CONTENT_RANGE, r.content_range(total)));
            if head {
                return Ok(sized_empty(res, r.len()));
            }
            if small {
                let b = small_body(
                    source,
                    small_bytes(state, file, source, now_ms).await?,
                    r,
                    &metrics,
                );
                return Ok(res.no_chunking(r.len()).body(b));
            }
            let f = open().await?;
            Ok(send(
                source,
                res,
                f,
                vec![(Bytes::new(), r)],
                r.len(),
                Bytes::new(),
                metrics,
            )
            .await?)
        }
        RangeAnswer::Multipart(ranges) => {
            let mut rnd = [0u8; 16];
            ids::random_bytes(&mut rnd);
            let mp = MultipartBody::new(&ranges, mime_type, total, &range::boundary_from(&rnd));
            res.status(StatusCode::PARTIAL_CONTENT)
                .insert_header((header::CONTENT_TYPE, mp.content_type()));
            if head {
                return Ok(sized_empty(res, mp.content_length()));
            }
            let parts = mp
                .parts()
                .map(|(hd, r)| (Bytes::copy_from_slice(hd.as_bytes()), r))
                .collect();
            let f = open().await?;
            Ok(send(
                source,
                res,
                f,
                parts,
                mp.content_length(),
                Bytes::copy_from_slice(mp.tail().as_bytes()),
                metrics,
            )
            .await?)
        }
    }
}

/// What a small answer is cut from: all of the entry's bytes for an entry, else all of
/// the blob's.
async fn small_bytes(
    state: &AppState,
    file: &FileRow,
    source: &Source,
    now_ms: i64,
) -> Result<Bytes, ApiError> {
    match source {
        Source::Entry(e) => source::small_entry(state, file, e, now_ms).await,
        _ => small_blob(state, file, u64::try_from(file.size).unwrap_or(0), now_ms).await,
    }
}

/// Bytes `r` of what `source` serves, from [`small_bytes`]: a slice of them, or for a
/// tagged copy its pieces (the mark's bytes and slices of the blob's).
fn small_body(source: &Source, bytes: Bytes, r: ByteRange, metrics: &Metrics) -> Bytes {
    let Source::Marked(m) = source else {
        metrics.bytes_served.fetch_add(r.len(), Ordering::Relaxed);
        return bytes.slice(r.start as usize..=r.end as usize);
    };
    let mut out = Vec::with_capacity(r.len() as usize);
    for p in m.copy.pieces(r.start, r.end) {
        match p {
            Segment::Bytes(b) => out.extend_from_slice(&b),
            Segment::File { start, len } => {
                out.extend_from_slice(&bytes[start as usize..(start + len) as usize]);
                metrics.bytes_served.fetch_add(len, Ordering::Relaxed);
            }
        }
    }
    Bytes::from(out)
}

/// The body from the blob, or from the archive entry the link names.
async fn send(
    source: &Source,
    res: HttpResponseBuilder,
    file: Arc<File>,
    parts: Vec<(Bytes, ByteRange)>,
    len: u64,
    tail: Bytes,
    metrics: Arc<Metrics>,
) -> Result<HttpResponse, ApiError> {
    // An empty representation is served whole, and has no byte range to read.
    let parts = if len == 0 { Vec::new() } else { parts };
    let whole = |hd: Bytes, r: ByteRange| {
        [
            Segment::Bytes(hd),
            Segment::File {
                start: r.start,
                len: r.len(),
            },
        ]
    };
    let pieces: Vec<Segment> = match source {
        Source::Entry(e) => {
            return source::entry_body(res, file, e.clone(), parts, len, tail, metrics).await;
        }
        Source::Blob => parts.into_iter().flat_map(|(hd, r)| whole(hd, r)).collect(),
        Source::Marked(m) => parts
            .into_iter()
            .flat_map(|(hd, r)| std::iter::once(Segment::Bytes(hd)).chain(m.copy.pieces(r.start, r.end)))
            .collect(),
    };
    let pieces = pieces
        .into_iter()
        .chain([Segment::Bytes(tail)])
        .filter(|p| !matches!(p, Segment::Bytes(b) if b.is_empty()))
        .collect();
    body(res, file, pieces, len, metrics).await
}

/// A HEAD answer: the headers the GET would get, `Content-Length` included, no body.
fn sized_empty(mut res: HttpResponseBuilder, len: u64) -> HttpResponse {
    res.no_chunking(len).body(SizedEmpty(len))
}

/// An empty body that reports the size the GET would have (actix sends no body on HEAD).
struct SizedEmpty(u64);

impl MessageBody for SizedEmpty {
    type Error = io::Error;
    fn size(&self) -> BodySize {
        BodySize::Sized(self.0)
    }
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        std::task::Poll::Ready(None)
    }
}

/// The body: `pieces` in order, bytes held in memory or ranges of `file`. Small bodies
/// are read at once; larger ones stream in `CHUNK`s (see [`read`]: from the page cache
/// here, from the disk on the blocking pool), so memory
/// stays flat whatever the file size.
async fn body(
    mut res: HttpResponseBuilder,
    file: Arc<File>,
    pieces: Vec<Segment>,
    len: u64,
    metrics: Arc<Metrics>,
) -> Result<HttpResponse, ApiError> {
    if len <= SMALL {
        let mut data_len = 0;
        let buf = match &pieces[..] {
            [Segment::File { start, len }] => {
                data_len = *len;
                read::read_exact_at(&file, *start, *len as usize).await?
            }
            _ => {
                let mut out = Vec::with_capacity(len as usize);
                for p in &pieces {
                    match p {
                        Segment::Bytes(b) => out.extend_from_slice(b),
                        Segment::File { start, len } => {
                            out.extend_from_slice(&read::read_exact_at(&file, *start, *len as usize).await?);
                            data_len += len;
                        }
                    }
                }
                out
            }
        };
        metrics.bytes_served.fetch_add(data_len, Ordering::Relaxed);
        return Ok(res.no_chunking(len).body(buf));
    }
    let stream = stream::iter(pieces).flat_map(move |p| match p {
        Segment::Bytes(b) => Either::Left(stream::once(async move { Ok::<Bytes, io::Error>(b) })),
        Segment::File { start, len } => Either::Right(read_range(
            file.clone(),
            ByteRange {
                start,
                end: start + len - 1,
            },
            metrics.clone(),
        )),
    });
    Ok(res.no_chunking(len).streaming(stream))
}

fn read_range(file: Arc<File>, r: ByteRange, metrics: Arc<Metrics>) -> impl Stream<Item = io::Result<Bytes>> {
    stream::unfold((r.start, r.len()), move |(pos, left)| {
        let file = file.clone();
        let metrics = metrics.clone();
        async move {
            if left == 0 {
                return None;
            }
            // The first piece is larger by the connection's write-buffer threshold, so
            // that actix's write buffer, sized by it, then takes every later piece
            // without growing (crate::server::WRITE_BUFFER).
            let piece = if pos == r.start { FIRST_CHUNK } else { CHUNK };
            let n = left.min(piece as u64) as usize;
            match read::read_bytes(&file, pos, n).await {
                Ok(buf) => {
                    metrics.bytes_served.fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok(buf), (pos + n as u64, left - n as u64)))
                }
                Err(e) => Some((Err(e), (pos, 0))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_reason_has_its_own_sentence() {
        for (i, (reason, text)) in REFUSALS.iter().enumerate() {
            assert_eq!(explain(reason), *text);
            assert!(
                REFUSALS[..i].iter().all(|(r, t)| r != reason && t != text),
                "{reason} is listed once, with a sentence of its own"
            );
        }
        assert_eq!(explain("no_such_reason"), "This download link cannot be used.");
    }
}
