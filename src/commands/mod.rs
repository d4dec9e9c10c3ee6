//! CLI commands: most work on the data directory directly (also while the server runs);
//! `upload` talks to a running server over HTTP.

pub mod admin;
pub mod app;
pub mod audit;
pub mod backup;
pub mod fraud;
pub mod http;
pub mod keys;
pub mod progress;
pub mod sign;
pub mod upload;
pub mod verify;
