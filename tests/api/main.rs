//! End-to-end tests: the real service on port 0, spoken to over real
//! WebSockets and HTTP, on SQLite and (where reachable) PostgreSQL.

mod admin;
mod browser;
mod chat;
mod guessing;
mod helpers;
mod identity;
mod intercom;
mod judgment;
mod knowledge;
mod limits;
mod load;
mod ops;
mod redteam;
mod replicas;
mod sessions;
mod shopify;
mod vector_index;
