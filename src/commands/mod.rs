//! CLI commands: most work on the data directory directly (also while the server runs);
//! `upload` talks to a running server over HTTP.

pub mod app;
pub mod http;
pub mod upload;
