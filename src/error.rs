//! The API's one error type, its MediaHub codes, and the start-up error.

use std::borrow::Cow;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

/// What went wrong, as MediaHub classifies it. Each kind maps to exactly one
/// (HTTP status, error_code, error_message) in [`ErrorKind::parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidInput,
    InvalidToken,
    InsufficientScope,
    /// The answer names the resource: "Requested file does not exist".
    NotFound(&'static str),
    Conflict,
    PayloadTooLarge,
    TooManyRequests,
    /// A link that was valid and no longer is (expired, revoked).
    Gone,
    /// A link or signed URL refused for who is asking (bad signature, wrong address).
    Forbidden,
    RangeNotSatisfiable,
    PreconditionFailed,
    InsufficientStorage,
    MethodNotAllowed,
    /// A request body that came too slowly (`server.body_timeout`).
    RequestTimeout,
    /// A request head over `server.max_header_bytes`.
    HeadersTooLarge,
    Internal,
}

impl ErrorKind {
    /// The single table from kind to HTTP status, MediaHub code and message.
    pub fn parts(self) -> (StatusCode, &'static str, Cow<'static, str>) {
        use ErrorKind::*;
        match self {
            InvalidInput => (StatusCode::BAD_REQUEST, "0x0230001", "Invalid Input".into()),
            InvalidToken => (StatusCode::FORBIDDEN, "0x0000003", "Invalid access token".into()),
            InsufficientScope => (StatusCode::FORBIDDEN, "0x0000004", "Insufficient scope".into()),
            NotFound(what) => (
                StatusCode::NOT_FOUND,
                "0x0230002",
                format!("Requested {what} does not exist").into(),
            ),
            Conflict => (StatusCode::CONFLICT, "0x0230003", "Conflict".into()),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "0x0230004",
                "Payload Too Large".into(),
            ),
            TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "0x0230005",
                "Too Many Requests".into(),
            ),
            Gone => (StatusCode::GONE, "0x0230006", "Link no longer valid".into()),
            Forbidden => (StatusCode::FORBIDDEN, "0x0230007", "Access denied".into()),
            RangeNotSatisfiable => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "0x0230008",
                "Range Not Satisfiable".into(),
            ),
            PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "0x0230011",
                "Precondition Failed".into(),
            ),
            InsufficientStorage => (
                StatusCode::INSUFFICIENT_STORAGE,
                "0x0230009",
                "Insufficient Storage".into(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "0x0230010",
                "Method Not Allowed".into(),
            ),
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "0x0230012", "Request Timeout".into()),
            HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "0x0230013",
                "Request Header Fields Too Large".into(),
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "0x0000001",
                "Internal Error".into(),
            ),
        }
    }
}

/// An error answer: the kind, a stable snake_case `reason`, and the parameter at fault.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub reason: Cow<'static, str>,
    pub param: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some(p) = &self.param {
            write!(f, " ({p})")?;
        }
        Ok(())
    }
}

impl ApiError {
    pub fn new(kind: ErrorKind, reason: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            kind,
            reason: reason.into(),
            param: None,
        }
    }
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
    /// 400 for parameter `param`.
    pub fn invalid(reason: impl Into<Cow<'static, str>>, param: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, reason).with_param(param)
    }
    /// 400 about the body or the request as a whole.
    pub fn bad_request(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidInput, reason)
    }
    pub fn invalid_token(reason: &'static str) -> Self {
        Self::new(ErrorKind::InvalidToken, reason)
    }
    pub fn insufficient_scope(scope: &str) -> Self {
        Self::new(ErrorKind::InsufficientScope, "insufficient_scope").with_param(scope.to_string())
    }
    pub fn not_found(what: &'static str) -> Self {
        Self::new(
            ErrorKind::NotFound(what),
            format!("{}_not_found", what.replace(' ', "_")),
        )
    }
    pub fn conflict(reason: &'static str) -> Self {
        Self::new(ErrorKind::Conflict, reason)
    }
    /// 500; the cause goes to the log only, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorKind::Internal, "internal_error")
    }

    pub fn status(&self) -> StatusCode {
        self.kind.parts().0
    }

    /// The MediaHub error object, with our `reason` and `param`.
    pub fn to_value(&self) -> Value {
        let (_, code, message) = self.kind.parts();
        let mut err = json!({"error_code": code, "error_message": message, "reason": self.reason});
        if let Some(p) = &self.param {
            err["param"] = Value::String(p.clone());
        }
        json!({ "error": err })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    /// JSON by default; the rendering middleware re-renders it as XML or HTML
    /// when the request asked for that (it finds the error in the extensions).
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if self.kind == ErrorKind::InvalidToken {
            res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
        }
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        let mut res = res.json(self.to_value());
        res.extensions_mut().insert(self.clone());
        res
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        ApiError::internal(format!("catalog pool: {e}"))
    }
}

impl ApiError {
    /// 507: the disk (or the quota) of the data directory is full.
    pub fn insufficient_storage() -> Self {
        Self::new(ErrorKind::InsufficientStorage, "insufficient_storage")
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            tracing::warn!(error = %e, "catalog: disk full");
            return ApiError::insufficient_storage();
        }
        ApiError::internal(format!("catalog: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        // ENOSPC and EDQUOT: the client may try again once space is freed.
        if matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            tracing::warn!(error = %e, "store: no space left");
            return ApiError::insufficient_storage();
        }
        ApiError::internal(format!("io: {e}"))
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(format!("blocking pool: {e}"))
    }
}

/// Why the binary could not start or a command failed: printed, then exit 1.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("store: {0}")]
    Store(String),
    #[error("{0}")]
    Other(String),
}

impl From<rusqlite::Error> for StartupError {
    fn from(e: rusqlite::Error) -> Self {
        StartupError::Catalog(e.to_string())
    }
}
impl From<r2d2::Error> for StartupError {
    fn from(e: r2d2::Error) -> Self {
        StartupError::Catalog(e.to_string())
    }
}
