//! Who the customer is, and the [`Scope`] of store data that identity may see.
//!
//! A `Scope` can only be made here, from an [`Identity`]; every store lookup
//! takes one. Nothing a customer types, nothing a model writes and no client
//! field reaches a store call except through this type.

pub mod app_proxy;
mod attempts;
mod jwks;
mod token;

pub use attempts::{AttemptLimiter, AttemptLimits, Refusal};
pub use jwks::Jwks;
pub use token::{MAX_LIFETIME_SECS, TokenError, TokenVerifier};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Nothing verified: policy and product questions only.
    Guest,
    /// Proved an order number plus the email on it: that one order only.
    OrderVerified { order_number: String, email: String },
    /// Presented a token signed by the store: their own orders and profile.
    Verified { customer_id: String, email: Option<String>, name: Option<String> },
}

/// What the widget is told about the identity (`welcome`, `verified`).
#[derive(Debug, Clone, Serialize)]
pub struct IdentityView {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Identity {
    pub fn status(&self) -> &'static str {
        match self {
            Identity::Guest => "guest",
            Identity::OrderVerified { .. } => "order_verified",
            Identity::Verified { .. } => "verified",
        }
    }

    pub fn view(&self) -> IdentityView {
        let name = match self {
            Identity::Verified { name, .. } => name.clone(),
            _ => None,
        };
        IdentityView { status: self.status(), name }
    }

    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Identity::Verified { customer_id, .. } => Some(customer_id),
            _ => None,
        }
    }

    pub fn scope(&self) -> Scope {
        Scope(match self {
            Identity::Guest => Grant::Nothing,
            Identity::OrderVerified { order_number, email } => {
                Grant::Order { number: normalize_order_number(order_number), email: email.to_lowercase() }
            }
            Identity::Verified { customer_id, .. } => Grant::Customer(customer_id.clone()),
        })
    }
}

/// The store data an identity may see. Deliberately opaque: the fields are
/// private, so only [`Identity::scope`] can grant access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(Grant);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    Nothing,
    Order { number: String, email: String },
    Customer(String),
}

/// The facts about an order a scope decision needs.
pub struct OrderOwner<'a> {
    pub number: &'a str,
    pub customer_id: Option<&'a str>,
    pub email: &'a str,
}

impl Scope {
    /// May this scope see the order described by `owner`?
    pub fn permits(&self, owner: &OrderOwner<'_>) -> bool {
        match &self.0 {
            Grant::Nothing => false,
            Grant::Order { number, email } => {
                normalize_order_number(owner.number) == *number && owner.email.eq_ignore_ascii_case(email)
            }
            Grant::Customer(id) => owner.customer_id == Some(id.as_str()),
        }
    }

    /// The customer whose orders and profile may be listed, if any.
    pub fn customer_id(&self) -> Option<&str> {
        match &self.0 {
            Grant::Customer(id) => Some(id),
            _ => None,
        }
    }

    /// The single order an order-verified identity may see.
    pub fn order_number(&self) -> Option<&str> {
        match &self.0 {
            Grant::Order { number, .. } => Some(number),
            _ => None,
        }
    }

    pub fn is_guest(&self) -> bool {
        self.0 == Grant::Nothing
    }
}

/// `#1001`, `1001` and ` #1001 ` name the same order.
pub fn normalize_order_number(raw: &str) -> String {
    format!("#{}", raw.trim().trim_start_matches('#'))
}

/// Shopify customer ids arrive as `123` or `gid://shopify/Customer/123`.
pub fn normalize_customer_id(raw: &str) -> Option<String> {
    let id = raw.trim().strip_prefix("gid://shopify/Customer/").unwrap_or(raw.trim());
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order<'a>(number: &'a str, customer: Option<&'a str>, email: &'a str) -> OrderOwner<'a> {
        OrderOwner { number, customer_id: customer, email }
    }

    #[test]
    fn a_guest_scope_permits_no_order() {
        assert!(!Identity::Guest.scope().permits(&order("#1001", Some("1"), "a@b.c")));
    }

    #[test]
    fn a_verified_customer_sees_only_their_own_orders() {
        let scope = Identity::Verified { customer_id: "1".into(), email: None, name: None }.scope();
        assert!(scope.permits(&order("#1001", Some("1"), "a@b.c")));
        assert!(!scope.permits(&order("#1002", Some("2"), "a@b.c")));
        assert!(!scope.permits(&order("#1003", None, "a@b.c")));
    }

    #[test]
    fn an_order_verified_guest_sees_that_one_order() {
        let scope = Identity::OrderVerified { order_number: "1001".into(), email: "Ava@Example.com".into() }.scope();
        assert!(scope.permits(&order("#1001", Some("1"), "ava@example.com")));
        assert!(!scope.permits(&order("#1002", Some("1"), "ava@example.com")));
        assert!(!scope.permits(&order("#1001", Some("1"), "other@example.com")));
    }

    #[test]
    fn customer_ids_accept_numbers_and_gids_only() {
        assert_eq!(normalize_customer_id("gid://shopify/Customer/42").as_deref(), Some("42"));
        assert_eq!(normalize_customer_id("42").as_deref(), Some("42"));
        assert_eq!(normalize_customer_id("42 OR 1=1"), None);
        assert_eq!(normalize_customer_id(""), None);
    }
}
