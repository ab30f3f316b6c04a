//! Admin API response shapes (as our queries select them) and their mapping
//! onto the store's own types. Ids stay strings; counts that Shopify types as
//! `UnsignedInt64` arrive as strings and are parsed as integers, never floats.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::cache::{customer_tag, order_tag};
use crate::commerce::{Customer, FulfillmentStatus, LineItem, Order, OrderStatus, Product, Tracking, Variant};
use crate::identity::normalize_customer_id;

#[derive(Debug, Deserialize)]
pub struct Nodes<T> {
    pub nodes: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub amount: String,
    pub currency_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoneyBag {
    pub shop_money: Money,
}

#[derive(Debug, Deserialize)]
pub struct IdOnly {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlOrder {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub customer: Option<IdOnly>,
    pub created_at: String,
    pub cancelled_at: Option<String>,
    pub cancel_reason: Option<String>,
    pub display_financial_status: Option<String>,
    pub display_fulfillment_status: String,
    pub total_price_set: MoneyBag,
    pub total_refunded_set: Option<MoneyBag>,
    pub line_items: Nodes<GqlLineItem>,
    #[serde(default)]
    pub fulfillments: Vec<GqlFulfillment>,
}

#[derive(Debug, Deserialize)]
pub struct GqlLineItem {
    pub title: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlFulfillment {
    pub display_status: Option<String>,
    pub delivered_at: Option<String>,
    pub estimated_delivery_at: Option<String>,
    #[serde(default)]
    pub tracking_info: Vec<GqlTracking>,
}

#[derive(Debug, Deserialize)]
pub struct GqlTracking {
    pub company: Option<String>,
    pub number: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlCustomer {
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
    #[serde(deserialize_with = "unsigned")]
    pub number_of_orders: u64,
    pub amount_spent: Money,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlProduct {
    pub title: String,
    pub handle: String,
    pub online_store_url: Option<String>,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub price_range_v2: PriceRange,
    pub variants: Nodes<GqlVariant>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceRange {
    pub min_variant_price: Money,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GqlVariant {
    pub title: String,
    pub available_for_sale: bool,
    pub inventory_quantity: Option<i64>,
}

/// `UnsignedInt64` is a JSON string; accept a plain integer too.
fn unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        Value::Number(n) => n.as_u64().ok_or_else(|| serde::de::Error::custom("not an unsigned integer")),
        other => Err(serde::de::Error::custom(format!("expected an unsigned integer, got {other}"))),
    }
}

/// `"149.5"` → 14950 cents, exactly (no float on the way).
pub fn cents(amount: &str) -> i64 {
    let (whole, fraction) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
    let negative = whole.starts_with('-');
    let whole: i64 = whole.trim_start_matches('-').parse().unwrap_or(0);
    let fraction: String = fraction.chars().chain("00".chars()).take(2).collect();
    let total = whole * 100 + fraction.parse::<i64>().unwrap_or(0);
    if negative { -total } else { total }
}

/// The numeric tail of a gid (`gid://shopify/Order/42` → `42`).
pub fn gid_number(gid: &str) -> &str {
    gid.rsplit('/').next().unwrap_or(gid)
}

impl GqlOrder {
    /// Cache tags: the order by id and by name, and its customer.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![order_tag(gid_number(&self.id)), order_tag(&self.name)];
        tags.extend(self.customer.as_ref().map(|c| customer_tag(gid_number(&c.id))));
        tags
    }

    pub fn into_order(self) -> Order {
        let tracking = self
            .fulfillments
            .iter()
            .flat_map(|f| &f.tracking_info)
            .filter_map(|t| {
                Some(Tracking {
                    number: t.number.clone()?,
                    company: t.company.clone().unwrap_or_default(),
                    url: t.url.clone().unwrap_or_default(),
                })
            })
            .collect();
        let day = |t: &String| t.get(..10).map(str::to_owned);
        let latest = |pick: fn(&GqlFulfillment) -> Option<&String>| self.fulfillments.iter().filter_map(pick).max();
        let estimated_delivery = latest(|f| f.estimated_delivery_at.as_ref()).and_then(day);
        let delivered_on = latest(|f| f.delivered_at.as_ref()).and_then(day);
        let refunded_cents = self.total_refunded_set.as_ref().map_or(0, |m| cents(&m.shop_money.amount));
        Order {
            status: order_status(&self),
            fulfillment_status: fulfillment_status(&self),
            number: self.name,
            customer_id: self.customer.and_then(|c| normalize_customer_id(&c.id)),
            email: self.email.unwrap_or_default(),
            items: self
                .line_items
                .nodes
                .into_iter()
                .map(|i| LineItem { title: i.title, quantity: u32::try_from(i.quantity).unwrap_or(0) })
                .collect(),
            tracking,
            total_cents: cents(&self.total_price_set.shop_money.amount),
            currency: self.total_price_set.shop_money.currency_code,
            placed_at: self.created_at,
            estimated_delivery,
            delivered_on,
            cancel_reason: self.cancel_reason.map(|r| r.to_ascii_lowercase()),
            refunded_cents,
        }
    }
}

fn order_status(o: &GqlOrder) -> OrderStatus {
    match o.display_financial_status.as_deref() {
        Some("REFUNDED") => OrderStatus::Refunded,
        _ if o.cancelled_at.is_some() => OrderStatus::Cancelled,
        Some("PARTIALLY_REFUNDED") => OrderStatus::PartiallyRefunded,
        _ => OrderStatus::Open,
    }
}

fn fulfillment_status(o: &GqlOrder) -> FulfillmentStatus {
    let any =
        |states: &[&str]| o.fulfillments.iter().any(|f| states.contains(&f.display_status.as_deref().unwrap_or("")));
    match o.display_fulfillment_status.as_str() {
        "FULFILLED" if any(&["DELIVERED"]) => FulfillmentStatus::Delivered,
        "FULFILLED" if any(&["IN_TRANSIT", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "CONFIRMED"]) => {
            FulfillmentStatus::InTransit
        }
        "FULFILLED" => FulfillmentStatus::Fulfilled,
        "PARTIALLY_FULFILLED" => FulfillmentStatus::PartiallyFulfilled,
        _ => FulfillmentStatus::Unfulfilled,
    }
}

impl GqlCustomer {
    pub fn into_customer(self) -> Customer {
        Customer {
            id: normalize_customer_id(&self.id).unwrap_or_else(|| gid_number(&self.id).to_owned()),
            name: self.display_name,
            email: self.email.unwrap_or_default(),
            orders_count: u32::try_from(self.number_of_orders).unwrap_or(u32::MAX),
            total_spent_cents: cents(&self.amount_spent.amount),
        }
    }
}

impl GqlProduct {
    pub fn into_product(self, shop: &str) -> Product {
        Product {
            url: self.online_store_url.unwrap_or_else(|| format!("https://{shop}/products/{}", self.handle)),
            title: self.title,
            handle: self.handle,
            description: self.description,
            tags: self.tags,
            price_cents: cents(&self.price_range_v2.min_variant_price.amount),
            currency: self.price_range_v2.min_variant_price.currency_code,
            variants: self
                .variants
                .nodes
                .into_iter()
                .map(|v| Variant {
                    title: v.title,
                    available: v.available_for_sale,
                    // Without read_inventory the quantity is hidden: "available" is what we know.
                    inventory: v.inventory_quantity.unwrap_or(i64::from(v.available_for_sale)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_parsed_to_exact_cents() {
        assert_eq!(cents("149.00"), 14_900);
        assert_eq!(cents("149.5"), 14_950);
        assert_eq!(cents("0.07"), 7);
        assert_eq!(cents("12"), 1_200);
        assert_eq!(cents("-3.25"), -325);
    }

    #[test]
    fn an_unsigned_int64_count_arrives_as_a_string() {
        let c: GqlCustomer = serde_json::from_value(serde_json::json!({
            "id": "gid://shopify/Customer/18446744073709551",
            "displayName": "Ava", "email": null, "numberOfOrders": "3",
            "amountSpent": { "amount": "10.00", "currencyCode": "USD" }
        }))
        .unwrap();
        let c = c.into_customer();
        assert_eq!((c.id.as_str(), c.orders_count), ("18446744073709551", 3));
    }
}
