//! The built-in demo store: a handful of customers, orders in every state and
//! a small catalog, so the assistant is useful with no Shopify store at all.
//! It keeps to the same [`Store`] contract as the Shopify client, scope rules
//! included.

use async_trait::async_trait;
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description};

use super::*;
use crate::identity::{Scope, normalize_order_number};
use crate::text::terms;

pub const STORE_URL: &str = "https://juniper-pine.example";

pub struct DemoStore {
    customers: Vec<Customer>,
    orders: Vec<Order>,
    products: Vec<Product>,
}

impl Default for DemoStore {
    fn default() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }
}

impl DemoStore {
    /// Dates are relative to `now` so that "in transit" and "within the
    /// return window" stay true whenever the demo runs.
    pub fn new(now: OffsetDateTime) -> Self {
        let customers = vec![
            customer("7001", "Ava Thompson", "ava@example.com", 2, 32_800),
            customer("7002", "Liam Chen", "liam@example.com", 3, 26_800),
            customer("7003", "Sofia Garcia", "sofia@example.com", 2, 41_700),
        ];
        let ups = |n: &str| Tracking {
            company: "UPS".into(),
            number: n.into(),
            url: format!("https://www.ups.com/track?tracknum={n}"),
        };
        let usps = |n: &str| Tracking {
            company: "USPS".into(),
            number: n.into(),
            url: format!("https://tools.usps.com/go/TrackConfirmAction?tLabels={n}"),
        };
        let orders = vec![
            Order {
                number: "#1001".into(),
                customer_id: Some("7001".into()),
                email: "ava@example.com".into(),
                status: OrderStatus::Open,
                fulfillment_status: FulfillmentStatus::InTransit,
                items: vec![
                    item("Ridgeline Hiking Boots - 8.5 / Walnut", 1),
                    item("Merino Hiking Socks 3-Pack - M", 1),
                ],
                tracking: vec![ups("1Z999AA10123456784")],
                total_cents: 17_800,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(3)),
                estimated_delivery: Some(date(now + Duration::days(2))),
                delivered_on: None,
                cancel_reason: None,
                refunded_cents: 0,
            },
            Order {
                number: "#1004".into(),
                customer_id: Some("7001".into()),
                email: "ava@example.com".into(),
                status: OrderStatus::Open,
                fulfillment_status: FulfillmentStatus::Delivered,
                items: vec![item("Trailhead Rain Jacket - M / Moss", 1)],
                tracking: vec![usps("9400111899223100012345")],
                total_cents: 15_000,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(40)),
                estimated_delivery: None,
                delivered_on: Some(date(now - Duration::days(35))),
                cancel_reason: None,
                refunded_cents: 0,
            },
            Order {
                number: "#1002".into(),
                customer_id: Some("7002".into()),
                email: "liam@example.com".into(),
                status: OrderStatus::Open,
                fulfillment_status: FulfillmentStatus::Unfulfilled,
                items: vec![item("Canyon Trail Runners - 10 / Slate", 1)],
                tracking: vec![],
                total_cents: 11_900,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::hours(5)),
                estimated_delivery: Some(date(now + Duration::days(5))),
                delivered_on: None,
                cancel_reason: None,
                refunded_cents: 0,
            },
            Order {
                number: "#1008".into(),
                customer_id: Some("7002".into()),
                email: "liam@example.com".into(),
                status: OrderStatus::Open,
                fulfillment_status: FulfillmentStatus::Delivered,
                items: vec![item("Ridgeline Hiking Boots - 10 / Walnut", 1)],
                tracking: vec![ups("1Z999AA10123459999")],
                total_cents: 14_900,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(16)),
                estimated_delivery: None,
                // Inside the 30-day return window.
                delivered_on: Some(date(now - Duration::days(12))),
                cancel_reason: None,
                refunded_cents: 0,
            },
            Order {
                number: "#1005".into(),
                customer_id: Some("7002".into()),
                email: "liam@example.com".into(),
                status: OrderStatus::Refunded,
                fulfillment_status: FulfillmentStatus::Unfulfilled,
                items: vec![item("Alpine Down Vest - L / Black", 1)],
                tracking: vec![],
                total_cents: 12_900,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(12)),
                estimated_delivery: None,
                delivered_on: None,
                cancel_reason: None,
                refunded_cents: 12_900,
            },
            Order {
                number: "#1003".into(),
                customer_id: Some("7003".into()),
                email: "sofia@example.com".into(),
                status: OrderStatus::Open,
                fulfillment_status: FulfillmentStatus::PartiallyFulfilled,
                items: vec![item("Summit Daypack 24L - Glacier", 1), item("Ridgeline Hiking Boots - 7 / Walnut", 1)],
                tracking: vec![usps("9400111899223100067890")],
                total_cents: 23_800,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(6)),
                estimated_delivery: Some(date(now + Duration::days(1))),
                delivered_on: None,
                cancel_reason: None,
                refunded_cents: 0,
            },
            Order {
                number: "#1006".into(),
                customer_id: Some("7003".into()),
                email: "sofia@example.com".into(),
                status: OrderStatus::PartiallyRefunded,
                fulfillment_status: FulfillmentStatus::Delivered,
                items: vec![item("Merino Hiking Socks 3-Pack - S", 2), item("Alpine Down Vest - S / Rust", 1)],
                tracking: vec![ups("1Z999AA10123450000")],
                total_cents: 18_700,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(60)),
                estimated_delivery: None,
                delivered_on: Some(date(now - Duration::days(55))),
                cancel_reason: None,
                refunded_cents: 2_900,
            },
            // A guest checkout: no customer account, reachable only by order number + email.
            Order {
                number: "#1007".into(),
                customer_id: None,
                email: "noah@example.com".into(),
                status: OrderStatus::Cancelled,
                fulfillment_status: FulfillmentStatus::Unfulfilled,
                items: vec![item("Gift Card - $50", 1)],
                tracking: vec![],
                total_cents: 5_000,
                currency: "USD".into(),
                placed_at: rfc3339(now - Duration::days(2)),
                estimated_delivery: None,
                delivered_on: None,
                cancel_reason: Some("customer".into()),
                refunded_cents: 5_000,
            },
        ];
        Self { customers, orders, products: catalog() }
    }

    fn permitted<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a Order> + 'a {
        self.orders.iter().filter(move |o| scope.permits(&o.owner()))
    }
}

#[async_trait]
impl Store for DemoStore {
    async fn customer(&self, scope: &Scope) -> Result<Option<Customer>, StoreError> {
        let Some(id) = scope.customer_id() else {
            return Ok(None);
        };
        Ok(self.customers.iter().find(|c| c.id == id).cloned())
    }

    async fn recent_orders(&self, scope: &Scope, limit: usize) -> Result<Vec<Order>, StoreError> {
        let mut orders: Vec<Order> = self.permitted(scope).cloned().collect();
        // RFC 3339 timestamps in one offset sort as text.
        orders.sort_by(|a, b| b.placed_at.cmp(&a.placed_at));
        orders.truncate(limit);
        Ok(orders)
    }

    async fn order(&self, scope: &Scope, number: &str) -> Result<Option<Order>, StoreError> {
        let number = normalize_order_number(number);
        Ok(self.permitted(scope).find(|o| o.number == number).cloned())
    }

    async fn order_matches_email(&self, number: &str, email: &str) -> Result<bool, StoreError> {
        let number = normalize_order_number(number);
        Ok(self.orders.iter().any(|o| o.number == number && o.email.eq_ignore_ascii_case(email.trim())))
    }

    async fn search_products(&self, query: &str, limit: usize) -> Result<Vec<Product>, StoreError> {
        let query: Vec<String> = terms(query).collect();
        let mut scored: Vec<(usize, &Product)> = self
            .products
            .iter()
            .map(|p| {
                let haystack: Vec<String> = terms(&format!("{} {} {}", p.title, p.tags.join(" "), p.handle)).collect();
                (query.iter().filter(|w| haystack.contains(w)).count(), p)
            })
            .filter(|(score, _)| *score > 0)
            .collect();
        scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        Ok(scored.into_iter().take(limit).map(|(_, p)| p.clone()).collect())
    }

    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn customer(id: &str, name: &str, email: &str, orders_count: u32, total_spent_cents: i64) -> Customer {
    Customer { id: id.into(), name: name.into(), email: email.into(), orders_count, total_spent_cents }
}

fn item(title: &str, quantity: u32) -> LineItem {
    LineItem { title: title.into(), quantity }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&Rfc3339).unwrap_or_default()
}

fn date(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

fn catalog() -> Vec<Product> {
    let sizes = |stock: &[(&str, i64)]| -> Vec<Variant> {
        stock
            .iter()
            .map(|(title, inventory)| Variant {
                title: (*title).into(),
                available: *inventory > 0,
                inventory: *inventory,
            })
            .collect()
    };
    let product = |title: &str, handle: &str, tags: &[&str], price_cents, description: &str, variants| Product {
        title: title.into(),
        handle: handle.into(),
        url: format!("{STORE_URL}/products/{handle}"),
        description: description.into(),
        tags: tags.iter().map(|t| (*t).into()).collect(),
        price_cents,
        currency: "USD".into(),
        variants,
    };
    vec![
        product(
            "Ridgeline Hiking Boots",
            "ridgeline-hiking-boots",
            &["boots", "hiking", "waterproof", "footwear", "shoes"],
            14_900,
            "Waterproof leather hiking boots with a Vibram sole.",
            sizes(&[
                ("7", 4),
                ("7.5", 0),
                ("8", 6),
                ("8.5", 3),
                ("9", 5),
                ("9.5", 2),
                ("10", 7),
                ("10.5", 0),
                ("11", 2),
                ("12", 1),
            ]),
        ),
        product(
            "Canyon Trail Runners",
            "canyon-trail-runners",
            &["trail", "running", "runners", "shoes", "sneakers", "footwear"],
            11_900,
            "Light trail running shoes with a rock plate.",
            sizes(&[("8", 3), ("9", 0), ("10", 4), ("11", 2), ("12", 0)]),
        ),
        product(
            "Trailhead Rain Jacket",
            "trailhead-rain-jacket",
            &["jacket", "rain", "waterproof", "shell", "coat"],
            17_900,
            "Three-layer waterproof, breathable shell.",
            sizes(&[("S", 5), ("M", 0), ("L", 6), ("XL", 2)]),
        ),
        product(
            "Alpine Down Vest",
            "alpine-down-vest",
            &["vest", "down", "insulated", "gilet"],
            12_900,
            "800-fill responsibly sourced down vest.",
            sizes(&[("S", 2), ("M", 4), ("L", 0), ("XL", 1)]),
        ),
        product(
            "Merino Hiking Socks 3-Pack",
            "merino-hiking-socks",
            &["socks", "merino", "wool"],
            2_900,
            "Cushioned merino wool hiking socks, three pairs.",
            sizes(&[("S", 20), ("M", 35), ("L", 12)]),
        ),
        product(
            "Summit Daypack 24L",
            "summit-daypack-24l",
            &["backpack", "daypack", "pack", "bag"],
            8_900,
            "A 24-litre daypack with a hydration sleeve.",
            sizes(&[("Glacier", 8), ("Charcoal", 0)]),
        ),
    ]
}
