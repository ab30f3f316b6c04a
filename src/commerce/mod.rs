//! The store: orders, customers and the catalog. Shopify stays the system of
//! record; [`Store`] is how the assistant reads it, always through a [`Scope`].
//!
//! `demo` is the built-in store used when `SHOPIFY_SHOP` is unset; `shopify`
//! reads a real store over the Admin GraphQL API and keeps fresh by webhooks.

pub mod demo;
pub mod shopify;

use async_trait::async_trait;
use serde::Serialize;

use crate::identity::{OrderOwner, Scope};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (down, timing out, throttled past patience).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub orders_count: u32,
    pub total_spent_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    Cancelled,
    Refunded,
    PartiallyRefunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
    InTransit,
    Delivered,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tracking {
    pub company: String,
    pub number: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineItem {
    pub title: String,
    pub quantity: u32,
}

#[derive(Debug, Clone)]
pub struct Order {
    /// The order's name as customers know it: `#1001`.
    pub number: String,
    pub customer_id: Option<String>,
    pub email: String,
    pub status: OrderStatus,
    pub fulfillment_status: FulfillmentStatus,
    pub items: Vec<LineItem>,
    pub tracking: Vec<Tracking>,
    pub total_cents: i64,
    pub currency: String,
    /// RFC 3339.
    pub placed_at: String,
    /// `YYYY-MM-DD`, when the carrier gave one.
    pub estimated_delivery: Option<String>,
    /// `YYYY-MM-DD`, once delivered: return windows count from here.
    pub delivered_on: Option<String>,
    /// Shopify's reason code (`customer`, `inventory`, `fraud`, …) when cancelled.
    pub cancel_reason: Option<String>,
    /// Everything refunded so far.
    pub refunded_cents: i64,
}

impl Order {
    /// What a [`Scope`] decides on: the only way stores check an order against one.
    pub fn owner(&self) -> OrderOwner<'_> {
        OrderOwner { number: &self.number, customer_id: self.customer_id.as_deref(), email: &self.email }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub title: String,
    pub available: bool,
    pub inventory: i64,
}

#[derive(Debug, Clone)]
pub struct Product {
    pub title: String,
    pub handle: String,
    pub url: String,
    pub description: String,
    pub tags: Vec<String>,
    pub price_cents: i64,
    pub currency: String,
    pub variants: Vec<Variant>,
}

impl Product {
    pub fn available(&self) -> bool {
        self.variants.iter().any(|v| v.available)
    }
}

/// `14900` cents → `"149.00"`: the decimal string Shopify itself uses.
pub fn format_money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

/// What a webhook changed: cached reads that include it must be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// An order, by its numeric id, and by name and customer when the event says.
    Order {
        id: String,
        number: Option<String>,
        customer_id: Option<String>,
    },
    Customer {
        id: String,
    },
    Products,
}

/// Reads from the store. Every customer-data method takes a [`Scope`] and
/// must answer as if the data did not exist when the scope does not permit it.
#[async_trait]
pub trait Store: Send + Sync {
    /// The customer the scope belongs to, for a verified identity.
    async fn customer(&self, scope: &Scope) -> Result<Option<Customer>, StoreError>;

    /// The scope's orders, newest first.
    async fn recent_orders(&self, scope: &Scope, limit: usize) -> Result<Vec<Order>, StoreError>;

    /// One order by its number, or `None` when it does not exist *or* lies
    /// outside the scope: the two must be indistinguishable.
    async fn order(&self, scope: &Scope, number: &str) -> Result<Option<Order>, StoreError>;

    /// Whether `email` is the email on order `number` (guest verification).
    async fn order_matches_email(&self, number: &str, email: &str) -> Result<bool, StoreError>;

    /// Catalog search by free text, best match first.
    async fn search_products(&self, query: &str, limit: usize) -> Result<Vec<Product>, StoreError>;

    /// Is the store answering? Used by `/readyz`.
    async fn ready(&self) -> Result<(), StoreError>;

    /// A webhook says `touched` changed. Stores that cache reads drop them;
    /// the demo store has nothing cached.
    fn invalidate(&self, _touched: &Touched) {}
}
