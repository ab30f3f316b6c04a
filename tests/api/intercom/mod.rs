//! The handoff to Intercom: the client against a mock Intercom over real
//! HTTP that checks every request against Intercom's OpenAPI description.

mod client;
mod faults;
pub(crate) mod handoff;
pub(crate) mod mock;
mod openapi;
