//! Reading `multipart/form-data` upload bodies: a few small text fields, then one `file`
//! field whose bytes stream to a temp file in bounded batches.

use actix_multipart::{Field, Multipart};
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorKind};
use crate::files::digest::Expected;
use crate::files::ingest::{Ingest, Ingested, BATCH};
use crate::store::Store;

/// Longest text field, in bytes.
pub const MAX_FIELD: usize = 8 * 1024;
/// Most text fields in one form.
pub const MAX_FIELDS: usize = 32;
/// What framing and text fields may add to the file's bytes in a Content-Length.
pub const SLACK: u64 = 1 << 20;
/// A client that sends nothing for this long is dropped (its temp file with it).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The field that carries the data.
pub const FILE_FIELD: &str = "file";

pub fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// 413 up front when the declared body is bigger than `limit` bytes of data could make it.
pub fn check_length(req: &HttpRequest, limit: u64) -> Result<(), ApiError> {
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match len {
        Some(n) if n > limit.saturating_add(SLACK) => Err(too_large()),
        _ => Ok(()),
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, "upload_too_large")
}

fn bad_form() -> ApiError {
    ApiError::bad_request("invalid_multipart")
}

/// A body cut for being too slow ([`crate::limits`]) is a 408; anything else `otherwise`.
fn read_error(e: &actix_multipart::MultipartError, otherwise: fn() -> ApiError) -> ApiError {
    match e {
        actix_multipart::MultipartError::Payload(p) if crate::limits::is_body_timeout(p) => {
            crate::limits::body_timeout()
        }
        _ => otherwise(),
    }
}

fn incomplete_body() -> ApiError {
    ApiError::bad_request("incomplete_body")
}

/// On error, the error answer with the form (and so the request body) kept alive until
/// the answer's last byte has been written: actix then closes the connection after a
/// short lingering close, instead of reading and discarding the rest of a chunked body
/// for as long as the client sends it. This is what bounds what a refused upload reads.
pub fn keep_unread_on_error(
    answer: Result<actix_web::HttpResponse, ApiError>,
    form: Form,
) -> Result<actix_web::HttpResponse, ApiError> {
    use actix_web::ResponseError;
    answer.or_else(|e| Ok(holding(e.error_response(), Box::new(form))))
}

/// `res` whose body keeps `keep` alive until it has been sent.
pub fn holding(res: actix_web::HttpResponse, keep: Box<dyn std::any::Any>) -> actix_web::HttpResponse {
    res.map_body(|_, body| Holding {
        body: actix_web::body::BoxBody::new(body),
        _keep: keep,
    })
    .map_into_boxed_body()
}

/// A response body that holds something until the body itself is dropped.
pub struct Holding {
    body: actix_web::body::BoxBody,
    _keep: Box<dyn std::any::Any>,
}

impl actix_web::body::MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The `file` part: its stream, the file name it carries and the digests in its headers.
pub struct FilePart {
    pub field: Field,
    pub filename: Option<String>,
    pub expected: Expected,
}

pub struct Form {
    mp: Multipart,
}

impl Form {
    pub fn new(req: &HttpRequest, payload: web::Payload) -> Form {
        Form {
            mp: Multipart::new(req.headers(), payload),
        }
    }

    /// Reads the text fields that precede `file`; returns them and the file part, if any.
    pub async fn until_file(&mut self) -> Result<(Vec<(String, String)>, Option<FilePart>), ApiError> {
        let mut fields = Vec::new();
        while let Some(field) = self.mp.next().await {
            let mut field = field.map_err(|e| read_error(&e, bad_form))?;
            let name = field.name().unwrap_or("").to_string();
            if name == FILE_FIELD {
                let filename = field.content_disposition().and_then(|cd| {
                    cd.get_filename_ext()
                        .and_then(|x| String::from_utf8(x.value.clone()).ok())
                        .or_else(|| cd.get_filename().map(str::to_string))
                });
                let h = |n: &str| field.headers().get(n).and_then(|v| v.to_str().ok());
                let expected = Expected::parse(h("content-md5"), h("x-checksum-sha256"))
                    .map_err(|which| ApiError::invalid("invalid_digest", which))?;
                return Ok((
                    fields,
                    Some(FilePart {
                        field,
                        filename: filename.filter(|f| !f.is_empty()),
                        expected,
                    }),
                ));
            }
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::bad_request("too_many_fields"));
            }
            let value = read_text(&mut field, &name).await?;
            fields.push((name, value));
        }
        Ok((fields, None))
    }

    /// After the file: text fields are read and ignored (bounded); another file → 400.
    pub async fn finish(&mut self) -> Result<(), ApiError> {
        let mut n = 0;
        while let Some(field) = self.mp.next().await {
            let mut field = field.map_err(|e| read_error(&e, bad_form))?;
            let name = field.name().unwrap_or("").to_string();
            if name == FILE_FIELD {
                return Err(ApiError::invalid("multiple_files", FILE_FIELD));
            }
            n += 1;
            if n > MAX_FIELDS {
                return Err(ApiError::bad_request("too_many_fields"));
            }
            read_text(&mut field, &name).await?;
        }
        Ok(())
    }
}

async fn read_text(field: &mut Field, name: &str) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| read_error(&e, bad_form))?;
        if buf.len() + chunk.len() > MAX_FIELD {
            return Err(ApiError::invalid("field_too_large", name.to_string()));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::invalid("invalid_utf8", name.to_string()))
}

/// Streams the part's bytes into a new temp file, writing and hashing them off the async
/// workers (see [`Ingest`]), one batch written while the next is read. More than `limit` bytes → 413 after reading at
/// most one network buffer past it; the temp file is removed on every failure. Consumes
/// the field: the form can be read on only once it is gone.
pub async fn stream_to_temp(mut field: Field, store: &Store, limit: u64) -> Result<Ingested, ApiError> {
    let st = store.clone();
    let mut ingest = Some(web::block(move || Ingest::new(&st)).await??);
    let mut pending: Option<_> = None;
    // The network's pieces, not copied: written with one writev, hashed in place.
    let mut batch = Vec::new();
    let mut batch_len = 0;
    let mut size: u64 = 0;
    loop {
        let next = actix_web::rt::time::timeout(IDLE_TIMEOUT, field.next()).await;
        let end = matches!(next, Ok(None));
        let failure = match next {
            Err(_) => Some(ApiError::bad_request("upload_stalled")),
            Ok(Some(Err(e))) => Some(read_error(&e, incomplete_body)),
            Ok(Some(Ok(b))) => {
                size += b.len() as u64;
                batch_len += b.len();
                batch.push(b);
                (size > limit).then(too_large)
            }
            Ok(None) => None,
        };
        if let Some(e) = failure {
            // Let the write in flight end, so that the temp file is gone when we answer.
            if let Some(p) = pending.take() {
                let _ = p.await;
            }
            return Err(e);
        }
        if batch_len >= BATCH || (end && batch_len > 0) {
            if let Some(p) = pending.take() {
                ingest = Some(finish_write(p).await?);
            }
            let mut ing = ingest.take().ok_or_else(|| ApiError::internal("ingest lost"))?;
            let buf = std::mem::take(&mut batch);
            batch_len = 0;
            pending = Some(web::block(move || {
                let r = ing.write_pieces(buf);
                (ing, r)
            }));
        }
        if end {
            break;
        }
    }
    drop(field);
    if let Some(p) = pending.take() {
        ingest = Some(finish_write(p).await?);
    }
    let ing = ingest.ok_or_else(|| ApiError::internal("ingest lost"))?;
    Ok(web::block(move || ing.finish()).await??)
}

/// Waits for one batch write; a failed write drops (and so removes) the temp file.
async fn finish_write(
    p: impl std::future::Future<Output = Result<(Ingest, std::io::Result<()>), actix_web::error::BlockingError>>,
) -> Result<Ingest, ApiError> {
    let (ing, r) = p.await?;
    r?;
    Ok(ing)
}
