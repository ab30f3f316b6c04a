//! A local mock of Shopify's Admin GraphQL endpoint over real HTTP. It checks
//! the access token header and that every `query` is one of our documents,
//! answers with schema-shaped JSON from a small data set, and can be told to
//! throttle, fail or stall the next requests.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, http::HeaderMap, http::StatusCode, response::IntoResponse, routing::post};
use serde_json::{Value, json};
use storefront_assistant::commerce::shopify::queries;

use crate::helpers::{Backend, TestApp, spawn_app_with};

pub const TOKEN: &str = "shpat_test_admin_token";
const PATH: &str = "/admin/api/2025-01/graphql.json";
/// What every query costs at this mock Shopify.
const COST: f64 = 12.0;

/// What the mock does with the next request, before answering normally.
#[derive(Debug, Clone)]
pub enum Next {
    Throttled,
    Status(u16),
    Stall(Duration),
}

#[derive(Default)]
struct Data {
    plan: VecDeque<Next>,
    orders: Vec<Value>,
    products: Vec<Value>,
    /// `operationName` of every request that carried the right token and a known document.
    seen: Vec<String>,
    /// Anything a real Shopify would refuse: wrong token, unknown document.
    violations: Vec<String>,
    /// Shopify's leaky bucket, when a test asks for one.
    bucket: Option<Bucket>,
    /// Requests the bucket refused with `THROTTLED`.
    throttled: usize,
}

struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
}

impl Bucket {
    /// Refills for the time passed; spends `COST` if it is there.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.available =
            (self.available + now.duration_since(self.at).as_secs_f64() * self.restore_rate).min(self.maximum);
        self.at = now;
        let enough = self.available >= COST;
        if enough {
            self.available -= COST;
        }
        enough
    }

    fn status(&self) -> Value {
        json!({ "maximumAvailable": self.maximum, "currentlyAvailable": self.available, "restoreRate": self.restore_rate })
    }
}

#[derive(Clone)]
pub struct MockShopify {
    pub url: String,
    data: Arc<Mutex<Data>>,
}

impl MockShopify {
    pub async fn start() -> Self {
        let data = Arc::new(Mutex::new(Data::default()));
        let app = Router::new().route(PATH, post(graphql)).with_state(data.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the mock");
        let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, data }
    }

    /// The service on SQLite, pointed at this mock, with `extra` settings.
    pub async fn spawn_app(&self, extra: &[(&str, &str)]) -> TestApp {
        let mut settings = vec![
            ("SHOPIFY_SHOP", "mock-store.myshopify.com"),
            ("SHOPIFY_ADMIN_TOKEN", TOKEN),
            ("SHOPIFY_ADMIN_API_URL", self.url.as_str()),
        ];
        settings.extend_from_slice(extra);
        spawn_app_with(Backend::Sqlite, &settings).await
    }

    pub fn then(&self, next: Next) -> &Self {
        self.data.lock().unwrap().plan.push_back(next);
        self
    }

    /// Enforces a cost bucket like Shopify's: `maximum` points, refilled at `restore_rate` a second.
    pub fn limit(&self, maximum: f64, restore_rate: f64) {
        let bucket = Bucket { maximum, available: maximum, restore_rate, at: Instant::now() };
        self.data.lock().unwrap().bucket = Some(bucket);
    }

    /// How many requests the bucket refused with `THROTTLED`.
    pub fn throttled(&self) -> usize {
        self.data.lock().unwrap().throttled
    }

    pub fn add_order(&self, order: Value) {
        self.data.lock().unwrap().orders.push(order);
    }

    /// Replaces the order with the same name: the store changed.
    pub fn update_order(&self, order: Value) {
        let mut data = self.data.lock().unwrap();
        data.orders.retain(|o| o["name"] != order["name"]);
        data.orders.push(order);
    }

    pub fn add_product(&self, product: Value) {
        self.data.lock().unwrap().products.push(product);
    }

    /// How many requests of `operation` reached the mock.
    pub fn count(&self, operation: &str) -> usize {
        self.data.lock().unwrap().seen.iter().filter(|s| *s == operation).count()
    }

    pub fn assert_no_violations(&self) {
        let data = self.data.lock().unwrap();
        assert!(data.violations.is_empty(), "the mock Shopify saw requests it would refuse: {:#?}", data.violations);
    }
}

fn cost(status: Value) -> Value {
    json!({ "cost": { "requestedQueryCost": COST, "actualQueryCost": COST, "throttleStatus": status } })
}

fn default_status(available: f64) -> Value {
    json!({ "maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": 100.0 })
}

fn throttled_answer(status: Value) -> (StatusCode, Json<Value>) {
    let error = json!({ "message": "Throttled", "extensions": { "code": "THROTTLED",
        "documentation": "https://shopify.dev/api/usage/rate-limits" } });
    (StatusCode::OK, Json(json!({ "errors": [error], "extensions": cost(status) })))
}

async fn graphql(
    State(data): State<Arc<Mutex<Data>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let operation = body["operationName"].as_str().unwrap_or_default().to_owned();
    let next = {
        let mut d = data.lock().unwrap();
        if headers.get("X-Shopify-Access-Token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            d.violations.push(format!("{operation}: missing or wrong X-Shopify-Access-Token"));
            return (StatusCode::UNAUTHORIZED, Json(json!({ "errors": "[API] Invalid API key or access token" })));
        }
        if !queries::ALL.iter().any(|q| q.name == operation && body["query"] == q.text) {
            d.violations.push(format!("{operation}: not one of our documents: {}", body["query"]));
            return (StatusCode::BAD_REQUEST, Json(json!({ "errors": "unknown document" })));
        }
        d.seen.push(operation.clone());
        d.plan.pop_front()
    };
    match next {
        // Nothing left: the client must wait about 12 / 100 s before retrying.
        Some(Next::Throttled) => return throttled_answer(default_status(0.0)),
        Some(Next::Status(status)) => {
            return (StatusCode::from_u16(status).unwrap(), Json(json!({ "errors": "upstream trouble" })));
        }
        // A slow Shopify, not synchronisation: the client's timeout should fire first.
        Some(Next::Stall(pause)) => tokio::time::sleep(pause).await,
        None => {}
    }
    let mut d = data.lock().unwrap();
    let status = match d.bucket.as_mut().map(|bucket| (bucket.take(), bucket.status())) {
        Some((false, status)) => {
            d.throttled += 1;
            return throttled_answer(status);
        }
        Some((true, status)) => status,
        None => default_status(1988.0),
    };
    let vars = &body["variables"];
    let answer = match operation.as_str() {
        "OrderByName" => {
            let name = vars["query"].as_str().unwrap_or_default().trim_start_matches("name:").trim_matches('"');
            json!({ "orders": { "nodes": d.orders.iter().filter(|o| o["name"] == name).collect::<Vec<_>>() } })
        }
        "CustomerOrders" => {
            let id = &vars["id"];
            let mine: Vec<&Value> = d.orders.iter().filter(|o| o["customer"]["id"] == *id).collect();
            json!({ "customer": { "id": id, "orders": { "nodes": mine } } })
        }
        "ProductSearch" => {
            let words: Vec<String> =
                vars["query"].as_str().unwrap_or_default().split(" OR ").map(str::to_lowercase).collect();
            let hits: Vec<&Value> = d
                .products
                .iter()
                .filter(|p| words.iter().any(|w| p["title"].as_str().unwrap_or_default().to_lowercase().contains(w)))
                .collect();
            json!({ "products": { "nodes": hits } })
        }
        "Shop" => json!({ "shop": { "name": "Mock Store" } }),
        _ => json!({ "customer": null }),
    };
    (StatusCode::OK, Json(json!({ "data": answer, "extensions": cost(status) })))
}

/// An order as `OrderFields` selects it.
pub fn order(name: &str, id: &str, customer_id: &str, email: &str, shipped: bool) -> Value {
    let fulfillments = if shipped {
        json!([{ "displayStatus": "IN_TRANSIT", "deliveredAt": null, "estimatedDeliveryAt": "2030-01-05T12:00:00Z",
            "trackingInfo": [{ "company": "UPS", "number": "1Z827WK74630", "url": "https://www.ups.com/track?tracknum=1Z827WK74630" }] }])
    } else {
        json!([])
    };
    json!({
        "id": format!("gid://shopify/Order/{id}"),
        "name": name,
        "email": email,
        "customer": { "id": format!("gid://shopify/Customer/{customer_id}") },
        "createdAt": "2029-12-30T10:00:00Z",
        "updatedAt": "2029-12-30T10:00:00Z",
        "cancelledAt": null,
        "cancelReason": null,
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": if shipped { "FULFILLED" } else { "UNFULFILLED" },
        "totalPriceSet": { "shopMoney": { "amount": "398.0", "currencyCode": "USD" } },
        "totalRefundedSet": { "shopMoney": { "amount": "0.0", "currencyCode": "USD" } },
        "lineItems": { "nodes": [{ "title": "IPod Nano - 8GB", "quantity": 2 }] },
        "fulfillments": fulfillments,
        "refunds": []
    })
}

/// A product as `ProductSearch` selects it.
pub fn product(title: &str, handle: &str, price: &str, variants: &[(&str, bool)]) -> Value {
    json!({
        "id": "gid://shopify/Product/632910392",
        "title": title,
        "handle": handle,
        "onlineStoreUrl": format!("https://mock-store.example/products/{handle}"),
        "description": "A product from the mock store.",
        "tags": ["mock"],
        "priceRangeV2": { "minVariantPrice": { "amount": price, "currencyCode": "USD" } },
        "variants": { "nodes": variants.iter().map(|(title, available)| json!({
            "title": title, "availableForSale": available, "inventoryQuantity": null
        })).collect::<Vec<_>>() }
    })
}
