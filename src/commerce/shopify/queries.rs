//! The GraphQL documents we send, one `.graphql` file each (fragments are
//! appended), so a test can validate every one against Shopify's schema.

/// One operation as sent: its name (the throttle prices queries by it) and text.
#[derive(Debug, Clone, Copy)]
pub struct Document {
    pub name: &'static str,
    pub text: &'static str,
}

pub const ORDER_BY_NAME: Document = Document {
    name: "OrderByName",
    text: concat!(include_str!("queries/order_by_name.graphql"), include_str!("queries/order_fields.graphql")),
};

pub const CUSTOMER_ORDERS: Document = Document {
    name: "CustomerOrders",
    text: concat!(include_str!("queries/customer_orders.graphql"), include_str!("queries/order_fields.graphql")),
};

pub const CUSTOMER_BY_ID: Document = Document {
    name: "CustomerById",
    text: concat!(include_str!("queries/customer_by_id.graphql"), include_str!("queries/customer_fields.graphql")),
};

pub const CUSTOMER_BY_EMAIL: Document = Document {
    name: "CustomerByEmail",
    text: concat!(include_str!("queries/customer_by_email.graphql"), include_str!("queries/customer_fields.graphql")),
};

pub const PRODUCT_SEARCH: Document =
    Document { name: "ProductSearch", text: include_str!("queries/product_search.graphql") };

pub const SHOP: Document = Document { name: "Shop", text: include_str!("queries/shop.graphql") };

/// Every document the client may send.
pub const ALL: &[Document] = &[ORDER_BY_NAME, CUSTOMER_ORDERS, CUSTOMER_BY_ID, CUSTOMER_BY_EMAIL, PRODUCT_SEARCH, SHOP];
