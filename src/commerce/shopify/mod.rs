//! A real Shopify store over the Admin GraphQL API.
//!
//! - `client`: GraphQL over HTTP with timeouts, retries and the throttle.
//! - `throttle`: the local estimate of Shopify's cost bucket.
//! - `cache`: brief per-identity caching, invalidated by webhooks.
//! - `queries`: the `.graphql` documents we send.
//! - `model`: response shapes and their mapping onto the store's types.
//! - `webhooks`: signature checks and what a stored event means for the store
//!   (`http::shopify` receives them).
//!
//! Scope is enforced here as in the demo store: every order fetched is
//! checked with [`Scope::permits`] before it leaves, and one outside the
//! scope is reported exactly like one that does not exist.

mod cache;
mod client;
mod model;
pub mod queries;
mod throttle;
pub mod webhooks;

pub use client::{ShopifyClient, ShopifyError};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use self::cache::{Cache, PRODUCTS_TAG, customer_tag, order_tag};
use self::model::{GqlCustomer, GqlOrder, GqlProduct, Nodes};
use super::{Customer, Order, Product, Store, StoreError, Touched};
use crate::config::ShopifySettings;
use crate::identity::{Scope, normalize_order_number};
use crate::text::{is_stopword, words};

pub struct ShopifyStore {
    shop: String,
    client: ShopifyClient,
    /// By order name: shared by identities, since the scope check follows the cache.
    orders_by_name: Cache<Option<Order>>,
    /// By customer id: one entry per verified identity.
    customer_orders: Cache<Vec<Order>>,
    customers: Cache<Option<Customer>>,
    products: Cache<Vec<Product>>,
}

#[derive(Deserialize)]
struct OrdersData {
    orders: Nodes<GqlOrder>,
}

#[derive(Deserialize)]
struct CustomerOrdersData {
    customer: Option<CustomerOrders>,
}

#[derive(Deserialize)]
struct CustomerOrders {
    orders: Nodes<GqlOrder>,
}

#[derive(Deserialize)]
struct CustomerData {
    customer: Option<GqlCustomer>,
}

#[derive(Deserialize)]
struct CustomersData {
    customers: Nodes<GqlCustomer>,
}

#[derive(Deserialize)]
struct ProductsData {
    products: Nodes<GqlProduct>,
}

impl From<ShopifyError> for StoreError {
    fn from(error: ShopifyError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl ShopifyStore {
    pub fn new(settings: &ShopifySettings) -> Result<Self, ShopifyError> {
        Ok(Self {
            shop: settings.shop.clone(),
            client: ShopifyClient::new(settings)?,
            orders_by_name: Cache::new(settings.cache_ttl),
            customer_orders: Cache::new(settings.cache_ttl),
            customers: Cache::new(settings.cache_ttl),
            products: Cache::new(settings.cache_ttl),
        })
    }

    /// The order named `number`, unscoped: callers check the scope.
    async fn order_by_name(&self, number: &str) -> Result<Option<Order>, StoreError> {
        let number = normalize_order_number(number);
        // Only plain names reach Shopify's search syntax.
        if !number[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || number.len() < 2 {
            return Ok(None);
        }
        let key = format!("name:{number}");
        if let Some(hit) = self.orders_by_name.get(&key) {
            return Ok(hit);
        }
        let generation = self.orders_by_name.generation();
        let data: OrdersData =
            self.client.query(&queries::ORDER_BY_NAME, json!({ "query": format!("name:\"{number}\"") })).await?;
        // Search is fuzzy; only the exact name counts.
        let found = data.orders.nodes.into_iter().find(|o| o.name == number);
        let mut tags = vec![order_tag(&number)];
        tags.extend(found.as_ref().map(GqlOrder::tags).unwrap_or_default());
        let order = found.map(GqlOrder::into_order);
        self.orders_by_name.put(generation, key, order.clone(), tags);
        Ok(order)
    }

    /// The profile of the customer with this email, for a scope that may see it.
    pub async fn customer_by_email(&self, scope: &Scope, email: &str) -> Result<Option<Customer>, StoreError> {
        let Some(id) = scope.customer_id() else {
            return Ok(None);
        };
        let email = email.trim();
        if email.is_empty() || email.contains(['"', '\\', ' ']) {
            return Ok(None);
        }
        let data: CustomersData =
            self.client.query(&queries::CUSTOMER_BY_EMAIL, json!({ "query": format!("email:\"{email}\"") })).await?;
        let customer = data.customers.nodes.into_iter().next().map(GqlCustomer::into_customer);
        Ok(customer.filter(|c| c.id == id))
    }
}

fn customer_gid(id: &str) -> String {
    format!("gid://shopify/Customer/{id}")
}

#[async_trait]
impl Store for ShopifyStore {
    async fn customer(&self, scope: &Scope) -> Result<Option<Customer>, StoreError> {
        let Some(id) = scope.customer_id() else {
            return Ok(None);
        };
        let key = format!("customer:{id}");
        if let Some(hit) = self.customers.get(&key) {
            return Ok(hit);
        }
        let generation = self.customers.generation();
        let data: CustomerData = self.client.query(&queries::CUSTOMER_BY_ID, json!({ "id": customer_gid(id) })).await?;
        let customer = data.customer.map(GqlCustomer::into_customer);
        self.customers.put(generation, key, customer.clone(), vec![customer_tag(id)]);
        Ok(customer)
    }

    async fn recent_orders(&self, scope: &Scope, limit: usize) -> Result<Vec<Order>, StoreError> {
        if let Some(number) = scope.order_number() {
            return Ok(self.order(scope, number).await?.into_iter().collect());
        }
        let Some(id) = scope.customer_id() else {
            return Ok(vec![]);
        };
        let limit = limit.clamp(1, 20);
        let key = format!("orders:{id}:{limit}");
        let orders = match self.customer_orders.get(&key) {
            Some(hit) => hit,
            None => {
                let generation = self.customer_orders.generation();
                let data: CustomerOrdersData = self
                    .client
                    .query(&queries::CUSTOMER_ORDERS, json!({ "id": customer_gid(id), "first": limit }))
                    .await?;
                let nodes = data.customer.map(|c| c.orders.nodes).unwrap_or_default();
                let mut tags = vec![customer_tag(id)];
                tags.extend(nodes.iter().flat_map(GqlOrder::tags));
                let orders: Vec<Order> = nodes.into_iter().map(GqlOrder::into_order).collect();
                self.customer_orders.put(generation, key, orders.clone(), tags);
                orders
            }
        };
        Ok(orders.into_iter().filter(|o| scope.permits(&o.owner())).collect())
    }

    async fn order(&self, scope: &Scope, number: &str) -> Result<Option<Order>, StoreError> {
        if scope.is_guest() {
            return Ok(None);
        }
        Ok(self.order_by_name(number).await?.filter(|o| scope.permits(&o.owner())))
    }

    async fn order_matches_email(&self, number: &str, email: &str) -> Result<bool, StoreError> {
        let order = self.order_by_name(number).await?;
        Ok(order.is_some_and(|o| !o.email.is_empty() && o.email.eq_ignore_ascii_case(email.trim())))
    }

    async fn search_products(&self, query: &str, limit: usize) -> Result<Vec<Product>, StoreError> {
        // Shopify ANDs the words of a search; a customer's sentence would match
        // nothing. Any significant word may match, and relevance ranks them.
        let mut significant: Vec<String> = words(query)
            .filter(|w| w.len() > 1 && !is_stopword(w) && w.chars().all(|c| c.is_alphanumeric() || c == '.'))
            .collect();
        significant.dedup();
        significant.truncate(8);
        if significant.is_empty() {
            return Ok(vec![]);
        }
        let search = significant.join(" OR ");
        let limit = limit.clamp(1, 10);
        let key = format!("products:{limit}:{search}");
        if let Some(hit) = self.products.get(&key) {
            return Ok(hit);
        }
        let generation = self.products.generation();
        let data: ProductsData =
            self.client.query(&queries::PRODUCT_SEARCH, json!({ "query": search, "first": limit })).await?;
        let products: Vec<Product> = data.products.nodes.into_iter().map(|p| p.into_product(&self.shop)).collect();
        self.products.put(generation, key, products.clone(), vec![PRODUCTS_TAG.to_owned()]);
        Ok(products)
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let _: serde_json::Value = self.client.query(&queries::SHOP, json!({})).await?;
        Ok(())
    }

    fn invalidate(&self, touched: &Touched) {
        self.orders_by_name.invalidate(touched);
        self.customer_orders.invalidate(touched);
        self.customers.invalidate(touched);
        self.products.invalidate(touched);
    }
}
