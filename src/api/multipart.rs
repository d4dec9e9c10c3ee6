//! Reading `multipart/form-data` upload bodies: a few small text fields, then one `file`
//! field whose bytes stream to a temp file through a bounded channel.

use actix_multipart::{Field, Multipart};
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorKind};
use crate::files::digest::Expected;
use crate::files::ingest::{Ingest, Ingested, CHANNEL_DEPTH};
use crate::store::Store;

/// Longest text field, in bytes.
pub const MAX_FIELD: usize = 8 * 1024;
/// Most text fields in one form.
pub const MAX_FIELDS: usize = 32;
/// What framing and text fields may add to the file's bytes in a Content-Length.
pub const SLACK: u64 = 1 << 20;
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
            let mut field = field.map_err(|_| bad_form())?;
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
            let mut field = field.map_err(|_| bad_form())?;
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
        let chunk = chunk.map_err(|_| bad_form())?;
        if buf.len() + chunk.len() > MAX_FIELD {
            return Err(ApiError::invalid("field_too_large", name.to_string()));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| ApiError::invalid("invalid_utf8", name.to_string()))
}

/// Streams the part's bytes into a new temp file, hashing them, on the blocking pool.
/// More than `limit` bytes → 413 after reading at most one network buffer past it; the
/// temp file is removed on every failure. Consumes the field: the form can be read on
/// only once it is gone.
pub async fn stream_to_temp(mut field: Field, store: &Store, limit: u64) -> Result<Ingested, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<web::Bytes>(CHANNEL_DEPTH);
    let st = store.clone();
    let writer = web::block(move || Ingest::run(&st, rx));
    let mut size: u64 = 0;
    let mut failure = None;
    while let Some(chunk) = field.next().await {
        match chunk {
            Err(_) => {
                failure = Some(ApiError::bad_request("incomplete_body"));
                break;
            }
            Ok(b) => {
                size += b.len() as u64;
                if size > limit {
                    failure = Some(too_large());
                    break;
                }
                if tx.send(b).await.is_err() {
                    break; // the writer stopped: its error is reported below
                }
            }
        }
    }
    drop(tx);
    drop(field);
    let written = writer.await?;
    if let Some(e) = failure {
        return Err(e); // `written` is dropped here, and with it the temp file
    }
    Ok(written?)
}
