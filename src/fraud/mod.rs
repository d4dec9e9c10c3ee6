//! Who the client is, and whether to serve it: client address resolution behind
//! trusted proxies (block lists and link-sharing detection build on it).

pub mod client;
