//! HTTP routes (PROTOCOL.md §4), one `router()` per area.

pub mod admin;
pub mod client_addr;
pub mod error;
pub mod handoff;
pub mod identity;
pub mod intercom;
pub mod kb;
pub mod ops;
pub mod preview;
pub mod rate_limit;
pub mod shopify;
pub mod site;
