//! A storefront AI support assistant: customers chat in a widget, the
//! assistant answers from live store data and the store's own policies, and
//! hands the conversation to a person when it should not answer itself.
//!
//! Map of the crate (see `../shared/design/ARCHITECTURE.md` for the shape):
//!
//! - [`config`]: settings from the environment, validated once; [`config::Secret`].
//! - [`app`]: [`app::Application`] assembles state and routes and runs the server.
//! - [`chat`]: the WebSocket protocol, gateway, sessions, turns and fan-out.
//! - [`identity`]: who the customer is (tokens, guest verification) and the
//!   [`identity::Scope`] every store lookup requires.
//! - [`assistant`]: understand → decide (policy in code) → act → reply (templates).
//! - [`commerce`]: the [`commerce::Store`] trait, the built-in demo store and
//!   [`commerce::shopify`] (Admin GraphQL client, cache, throttle, webhooks).
//! - [`knowledge`]: the knowledge base: article files, passages, retrieval.
//! - [`analytics`]: Prometheus metrics.
//! - [`db`]: storage on SQLite or PostgreSQL, one set of queries.
//! - [`handoff`]: escalations: the package, the outbox, the help desk (Intercom).
//! - [`http`]: health, metrics, admin API, the demo page and the widget.
//! - [`load`]: `storefront-assistant load`, the load tool: held sessions,
//!   paced conversations, signed webhooks, from outside over real sockets.
//! - [`text`]: word and term normalisation shared by the pieces above.
//! - [`batch`]: work that arrives together done together (model passes, commits).

pub mod analytics;
pub mod app;
pub mod assistant;
pub mod batch;
pub mod chat;
pub mod commerce;
pub mod config;
pub mod db;
pub mod handoff;
pub mod http;
pub mod identity;
pub mod knowledge;
pub mod load;
pub mod telemetry;
pub mod text;
