//! HTTP routes (PROTOCOL.md §4), one `router()` per area.

pub mod admin;
pub mod error;
pub mod handoff;
pub mod identity;
pub mod intercom;
pub mod kb;
pub mod ops;
pub mod preview;
pub mod shopify;
pub mod site;
