//! Serving a link: signing keys, presentation (Content-Disposition), validators and
//! conditional requests, byte ranges. The handler that ties them to the files table
//! comes with the downloads endpoint.

pub mod cache;
pub mod disposition;
pub mod keyring;
pub mod policy;
pub mod range;
pub mod read;
pub mod serve;
pub mod slots;
pub mod source;
pub mod tracked;
pub mod validators;

use crate::error::{ApiError, ErrorKind};
use crate::links::LinkError;

impl From<LinkError> for ApiError {
    /// Bad, unknown-key or retired-key signature → 403 `invalid_signature`;
    /// expired → 410 `link_expired` (SPEC §6).
    fn from(e: LinkError) -> Self {
        let kind = match e {
            LinkError::InvalidSignature | LinkError::UnknownKey(_) => ErrorKind::Forbidden,
            LinkError::Expired { .. } => ErrorKind::Gone,
        };
        ApiError::new(kind, e.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    #[test]
    fn link_errors_map_to_403_and_410() {
        let e = ApiError::from(LinkError::InvalidSignature);
        assert_eq!(
            (e.status(), e.reason.as_ref()),
            (StatusCode::FORBIDDEN, "invalid_signature")
        );
        let e = ApiError::from(LinkError::UnknownKey(4));
        assert_eq!(
            (e.status(), e.reason.as_ref()),
            (StatusCode::FORBIDDEN, "invalid_signature")
        );
        let e = ApiError::from(LinkError::Expired { expired_at: 1 });
        assert_eq!(
            (e.status(), e.reason.as_ref()),
            (StatusCode::GONE, "link_expired")
        );
    }
}
