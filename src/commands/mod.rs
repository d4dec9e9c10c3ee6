//! CLI commands that work on the data directory directly (also while the server runs).

pub mod admin;
pub mod app;
pub mod keys;
pub mod sign;
