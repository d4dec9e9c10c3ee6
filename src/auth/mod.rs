//! Who is asking: OAuth2 tokens and bearer checks, application secrets, scopes.

pub mod apps;
pub mod bearer;
pub mod scopes;
pub mod secrets;
pub mod signed;
pub mod signed_url;
pub mod tokens;

pub use bearer::{authenticate, Principal};
pub use scopes::{Scope, Scopes};
