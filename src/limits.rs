//! Limits against slow or oversized clients: the size of a request head (431) and the
//! progress of a request body (408). The time to send a head is actix's
//! `client_request_timeout` (`server.request_timeout`, set in `server.rs`).
//!
//! A slow body is judged only on the time spent waiting for the *client*: the clock runs
//! while the handler asks for more bytes and none have come, never while the server
//! itself is busy (writing the previous batch to disk), so a slow disk cannot make a
//! client look slow. Every `server.body_timeout` seconds of such waiting must bring at
//! least `server.body_min_rate` × `body_timeout` bytes (and at least one byte), else the
//! body ends with an error and the connection is closed: a client trickling a byte now
//! and then (slowloris) cannot hold a connection and a temp file for ever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::HttpMessage;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

/// The message of the I/O error a too-slow body ends with (see [`is_body_timeout`]).
const TOO_SLOW: &str = "request body too slow";

/// The root middleware: refuses a head larger than `server.max_header_bytes` (431
/// `headers_too_large`), and wraps a request body in [`BodyGuard`].
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_left_body());
    };
    let server = &state.config.server;
    if head_bytes(&req) > server.max_header_bytes {
        let err = ApiError::new(ErrorKind::HeadersTooLarge, "headers_too_large");
        return Ok(req.error_response(err).map_into_right_body());
    }
    if has_body(&req) {
        let window = Duration::from_secs(server.body_timeout);
        let min_bytes = server.body_min_rate.saturating_mul(server.body_timeout).max(1);
        let inner = req.take_payload();
        let guarded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(BodyGuard::new(inner, window, min_bytes));
        req.set_payload(Payload::from(guarded));
    }
    next.call(req).await.map(|r| r.map_into_left_body())
}

/// The bytes of the request line and header fields as received (a close estimate:
/// names, values and the `: ` and CRLF around them).
fn head_bytes(req: &ServiceRequest) -> u64 {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    (line + fields) as u64
}

fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// True when a body read failed because the client was too slow ([`BodyGuard`]).
pub fn is_body_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut && io.to_string() == TOO_SLOW)
}

/// The answer for a body cut by [`BodyGuard`].
pub fn body_timeout() -> ApiError {
    ApiError::new(ErrorKind::RequestTimeout, "body_too_slow")
}

/// A request body that must keep a minimum pace (see the module docs).
pub struct BodyGuard<S> {
    inner: S,
    window: Duration,
    min_bytes: u64,
    /// Bytes received in the current window.
    got: u64,
    /// Time spent waiting for the client in the current window, before `since`.
    waited: Duration,
    /// Waiting for the client since then (the handler asked, nothing came yet).
    since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    failed: bool,
}

impl<S> BodyGuard<S> {
    pub fn new(inner: S, window: Duration, min_bytes: u64) -> BodyGuard<S> {
        BodyGuard {
            inner,
            window,
            min_bytes,
            got: 0,
            waited: Duration::ZERO,
            since: None,
            timer: Box::pin(tokio::time::sleep(window)),
            failed: false,
        }
    }

    /// Ends the window when it is over: `false` when it brought too few bytes.
    fn window_ok(&mut self, now: Instant) -> bool {
        let waited = self.waited + self.since.map_or(Duration::ZERO, |s| now - s);
        if waited < self.window {
            return true;
        }
        if self.got < self.min_bytes {
            return false;
        }
        self.got = 0;
        self.waited = Duration::ZERO;
        self.since = self.since.map(|_| now);
        true
    }
}

impl<S> Stream for BodyGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                let now = Instant::now();
                if let Some(s) = this.since.take() {
                    this.waited += now - s;
                }
                this.got += bytes.len() as u64;
                // A window that ran out is judged with these bytes counted in.
                let _ = this.window_ok(now);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                let now = Instant::now();
                let since = *this.since.get_or_insert(now);
                if !this.window_ok(now) {
                    this.failed = true;
                    tracing::info!(window_secs = this.window.as_secs(), "request body too slow: cut");
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, TOO_SLOW);
                    return Poll::Ready(Some(Err(PayloadError::Io(e))));
                }
                // Wake up when this window's waiting time would run out.
                let since = this.since.unwrap_or(since);
                let deadline = since + this.window.saturating_sub(this.waited);
                this.timer.as_mut().reset(deadline);
                if this.timer.as_mut().poll(cx).is_ready() {
                    // Already due: poll again at once, which judges the window.
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}
