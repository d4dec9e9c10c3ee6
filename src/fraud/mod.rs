//! Who the client is, and whether to serve it: client address resolution behind
//! trusted proxies, and the CIDR lists' range sets.

pub mod client;
pub mod ranges;
