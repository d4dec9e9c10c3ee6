//! What one request of a link did, for the audit trail: gathered while serving
//! ([`Seen`]), then written when the answer is refused or when its body ends or is
//! dropped ([`Tracked`], which also holds the `max_parallel_downloads` slots).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::{header, Method};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use super::policy::{self, link_key};
use super::slots::Held;
use crate::audit::Audit;
use crate::catalog::audit::NewRequest;
use crate::error::ApiError;
use crate::fraud::client::{self, Client};
use crate::fraud::shared::LinkKey;
use crate::links::LinkClaims;
use crate::state::AppState;

/// Longest `Range` header kept in the audit trail.
const MAX_RANGE: usize = 200;

/// A request of a link, as far as serving it got.
pub struct Seen {
    started: Instant,
    at_ms: i64,
    pub link: LinkKey,
    /// `None` when the peer is unknown (not on a TCP connection).
    pub client: Option<Client>,
    claims: Option<LinkClaims>,
    head: bool,
    method: &'static str,
    range: Option<String>,
    held: Option<Held>,
}

impl Seen {
    pub fn new(state: &AppState, req: &HttpRequest) -> Seen {
        let client = req
            .peer_addr()
            .map(|p| client::resolve(p.ip(), req.headers(), &state.config.trusted_proxies()));
        let range = req
            .headers()
            .get(header::RANGE)
            .map(|v| String::from_utf8_lossy(&v.as_bytes()[..v.len().min(MAX_RANGE)]).into_owned());
        Seen {
            started: Instant::now(),
            at_ms: state.clock.now_ms(),
            link: link_key(req.path()),
            client,
            claims: None,
            head: req.method() == Method::HEAD,
            method: if req.method() == Method::HEAD {
                "HEAD"
            } else {
                "GET"
            },
            range,
            held: None,
        }
    }

    /// The link verified: its fields go into the audit row.
    pub fn verified(&mut self, claims: &LinkClaims) {
        self.claims = Some(claims.clone());
    }

    /// Applies the link's policy (`delivery::policy`); the slots it takes are held
    /// until the answer's body ends.
    pub async fn check_policy(
        &mut self,
        state: &AppState,
        req: &HttpRequest,
        claims: &LinkClaims,
    ) -> Result<(), ApiError> {
        let client = policy::client_or_unknown(self.client);
        self.held = policy::check(state, req, claims, self.link, client).await?;
        Ok(())
    }

    fn row(&self, status: u16, outcome: &str) -> NewRequest {
        let c = self.claims.as_ref();
        NewRequest {
            at: self.at_ms,
            link: self.link.to_vec(),
            client: policy::client_or_unknown(self.client).addr.to_string(),
            outcome: outcome.to_string(),
            file_id: c.map(|c| c.file_id.clone()),
            app_id: c.and_then(|c| c.app_id.clone()),
            tag: c.and_then(|c| c.autograph_tag.clone()),
            item: c.and_then(|c| c.item.clone()),
            link_expires_at: c.map(|c| c.expires_at),
            anti_fraud: c.is_some_and(|c| c.anti_fraud),
            method: self.method.to_string(),
            status,
            range: self.range.clone(),
            bytes: 0,
            completed: true,
            ms: 0,
        }
    }

    /// A refusal: recorded with its reason at once.
    pub fn refused(self, audit: &Audit, e: &ApiError) {
        let mut row = self.row(e.status().as_u16(), &e.reason);
        row.ms = self.started.elapsed().as_millis() as u64;
        audit.record(row);
    }

    /// An answer: its body is wrapped so that the row is written (with the bytes sent)
    /// and the slots freed when the body ends or is dropped.
    pub fn delivered(self, audit: &Arc<Audit>, res: HttpResponse) -> HttpResponse {
        let row = self.row(res.status().as_u16(), "");
        let head = self.head;
        let started = self.started;
        let held = self.held;
        let audit = audit.clone();
        res.map_body(move |_, body| {
            BoxBody::new(Tracked {
                inner: body,
                sent: 0,
                ended: false,
                head,
                finish: Some(Finish {
                    audit,
                    row,
                    started,
                    _held: held,
                }),
            })
        })
    }
}

struct Finish {
    audit: Arc<Audit>,
    row: NewRequest,
    started: Instant,
    /// Dropped with the `Finish`: the slots are free once the row is queued.
    _held: Option<Held>,
}

/// A response body that counts the bytes it yields and, when it ends or is dropped,
/// queues the audit row and frees its slots.
pub struct Tracked {
    inner: BoxBody,
    sent: u64,
    ended: bool,
    head: bool,
    finish: Option<Finish>,
}

impl Tracked {
    fn finish(&mut self) {
        let Some(f) = self.finish.take() else { return };
        let empty = matches!(self.inner.size(), BodySize::None | BodySize::Sized(0));
        let mut row = f.row;
        row.bytes = self.sent;
        row.completed = self.ended || self.head || (empty && self.sent == 0);
        row.ms = f.started.elapsed().as_millis() as u64;
        f.audit.record(row);
    }
}

impl MessageBody for Tracked {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(b))) => this.sent += b.len() as u64,
            Poll::Ready(None) => {
                this.ended = true;
                this.finish();
            }
            Poll::Ready(Some(Err(_))) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}
