//! Live store data: the Shopify client against a mock Shopify over real
//! HTTP, webhooks with Shopify's own samples, and our queries against
//! Shopify's schema.

pub(crate) mod contracts;
mod mock;
mod schema;
mod store;
mod webhooks;
