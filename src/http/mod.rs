//! HTTP routes (PROTOCOL.md §4), one `router()` per area.

pub mod admin;
pub mod error;
pub mod handoff;
pub mod identity;
pub mod kb;
pub mod ops;
pub mod preview;
pub mod shopify;
pub mod site;
