//! The handoff package: everything the person taking over needs so nobody
//! has to ask again, and nothing else. It is built from an allowlist: the
//! fields below are the only customer data that leaves for the help desk.
//! Payment details are not among them, and the customer's token never
//! reaches this code at all (an [`Identity`] does not hold it). What the
//! customer typed is passed on, except card numbers ([`redact_payment`]).

use serde::{Deserialize, Serialize};

use super::desk::Customer;
use crate::commerce::{Order, Store, format_money};
use crate::db::MessageRow;
use crate::identity::{Identity, normalize_order_number};

/// Orders listed for a signed-in customer who named none.
const RECENT_ORDERS: usize = 3;
/// Transcript lines kept, newest last: a long chat keeps its end.
const TRANSCRIPT_LINES: usize = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    pub reason: String,
    pub intent: Option<String>,
    pub summary: String,
    /// What opens the conversation in the desk: the customer's own words.
    pub customer_words: String,
    pub customer: Customer,
    /// `guest`, `order_verified` or `verified`, and how.
    pub identity: String,
    pub verified_how: String,
    pub orders_count: Option<u32>,
    pub lifetime_spend: Option<String>,
    pub tier: Option<String>,
    pub orders: Vec<OrderFacts>,
    pub transcript: Vec<Line>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderFacts {
    pub number: String,
    pub status: String,
    pub fulfillment: String,
    pub items: Vec<String>,
    pub tracking: Vec<String>,
    pub total: String,
    pub placed_at: String,
    pub estimated_delivery: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub role: String,
    pub text: String,
}

/// What a turn knows when it escalates.
pub struct Escalating<'a> {
    pub identity: &'a Identity,
    pub reason: &'a str,
    pub intent: Option<&'a str>,
    pub summary: &'a str,
    pub customer_words: &'a str,
    /// Order numbers the customer mentioned.
    pub order_numbers: &'a [String],
    pub transcript: &'a [MessageRow],
}

/// Reads what the identity may see from the store. A store that does not
/// answer leaves the orders out rather than holding up the handoff.
pub async fn build(store: &dyn Store, e: Escalating<'_>) -> Package {
    let scope = e.identity.scope();
    let profile = match scope.customer_id() {
        Some(_) => store.customer(&scope).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "no customer profile for the handoff package");
            None
        }),
        None => None,
    };
    let mut orders = Vec::new();
    // The orders in question: named in this message or earlier ones, or the one verified.
    let earlier = e.transcript.iter().filter(|m| m.role == "customer").flat_map(|m| mentioned_orders(&m.text));
    let mut wanted: Vec<String> = e
        .order_numbers
        .iter()
        .map(|n| normalize_order_number(n))
        .chain(earlier)
        .chain(scope.order_number().map(str::to_owned))
        .collect();
    wanted.sort();
    wanted.dedup();
    for number in &wanted {
        if let Ok(Some(order)) = store.order(&scope, number).await {
            orders.push(order);
        }
    }
    if orders.is_empty() && scope.customer_id().is_some() {
        orders = store.recent_orders(&scope, RECENT_ORDERS).await.unwrap_or_default();
    }
    let (customer, identity, verified_how) = match e.identity {
        Identity::Guest => (Customer::default(), "guest", "not verified".to_owned()),
        Identity::OrderVerified { order_number, email } => (
            Customer { email: Some(email.clone()), ..Customer::default() },
            "order_verified",
            format!("proved order {} and the email on it", normalize_order_number(order_number)),
        ),
        Identity::Verified { customer_id, email, name } => (
            Customer {
                external_id: Some(customer_id.clone()),
                email: email.clone().or_else(|| profile.as_ref().map(|p| p.email.clone())),
                name: name.clone().or_else(|| profile.as_ref().map(|p| p.name.clone())),
                phone: None,
            },
            "verified",
            "signed in on the store with a store-signed token".to_owned(),
        ),
    };
    let tier = profile.as_ref().map(|p| tier(p.orders_count, p.total_spent_cents).to_owned());
    let mut tags = vec!["assistant-handoff".to_owned(), e.reason.to_owned()];
    tags.extend(tier.iter().map(|t| format!("tier-{t}")));
    let skip = e.transcript.len().saturating_sub(TRANSCRIPT_LINES);
    Package {
        reason: e.reason.to_owned(),
        intent: e.intent.map(str::to_owned),
        summary: redact_payment(e.summary),
        customer_words: redact_payment(e.customer_words),
        customer,
        identity: identity.to_owned(),
        verified_how,
        orders_count: profile.as_ref().map(|p| p.orders_count),
        lifetime_spend: profile.as_ref().map(|p| format_money(p.total_spent_cents)),
        tier,
        orders: orders.iter().map(facts).collect(),
        transcript: e.transcript[skip..]
            .iter()
            .map(|m| Line { role: m.role.clone(), text: redact_payment(&m.text) })
            .collect(),
        tags,
    }
}

/// What a card number looks like once it is out of a customer's text.
const CARD_REMOVED: &str = "[card number removed]";

/// Replaces card numbers (13 to 19 digits, spaces or dashes between, passing
/// the Luhn check) that a customer typed: they never leave for the desk.
pub fn redact_payment(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            // The longest run of digits with single separators from here.
            let (mut end, mut digits) = (i, Vec::new());
            let mut j = i;
            while j < chars.len() {
                if chars[j].is_ascii_digit() {
                    digits.push(chars[j] as u8 - b'0');
                    end = j + 1;
                } else if !(matches!(chars[j], ' ' | '-') && chars.get(j + 1).is_some_and(char::is_ascii_digit)) {
                    break;
                }
                j += 1;
            }
            let boundary = chars.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
            if boundary && (13..=19).contains(&digits.len()) && luhn(&digits) {
                out.push_str(CARD_REMOVED);
                i = end;
                continue;
            }
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { u32::from(if d * 2 > 9 { d * 2 - 9 } else { d * 2 }) } else { u32::from(d) })
        .sum();
    sum.is_multiple_of(10)
}

/// `#1001`-style order numbers in a customer's text.
fn mentioned_orders(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
        .filter_map(|word| word.strip_prefix('#'))
        .filter(|digits| !digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit()))
        .map(|digits| format!("#{digits}"))
}

/// A customer's standing, for routing and the agent's first glance.
fn tier(orders: u32, spent_cents: i64) -> &'static str {
    if orders >= 10 || spent_cents >= 100_000 {
        "vip"
    } else if orders >= 2 {
        "returning"
    } else {
        "new"
    }
}

fn facts(o: &Order) -> OrderFacts {
    OrderFacts {
        number: o.number.clone(),
        status: label(&o.status),
        fulfillment: label(&o.fulfillment_status),
        items: o.items.iter().map(|i| format!("{} × {}", i.quantity, i.title)).collect(),
        tracking: o.tracking.iter().map(|t| format!("{} {} {}", t.company, t.number, t.url)).collect(),
        total: format!("{} {}", format_money(o.total_cents), o.currency),
        placed_at: o.placed_at.clone(),
        estimated_delivery: o.estimated_delivery.clone(),
    }
}

/// A store enum as its wire name (`in_transit`).
fn label<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl Package {
    /// The note agents read, as Intercom note HTML. Every value is escaped.
    pub fn note_html(&self) -> String {
        let mut html = String::new();
        let mut para = |label: &str, value: &str| html.push_str(&format!("<p><b>{label}:</b> {}</p>", escape(value)));
        para("Summary", &self.summary);
        para("Reason", &self.reason);
        if let Some(intent) = &self.intent {
            para("Intent", intent);
        }
        let who =
            [self.customer.name.as_deref(), self.customer.email.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        para("Customer", &if who.is_empty() { "anonymous guest".to_owned() } else { who.join(", ") });
        if let Some(id) = &self.customer.external_id {
            para("Store customer id", id);
        }
        para("Identity", &format!("{} ({})", self.identity, self.verified_how));
        if let (Some(count), Some(spend)) = (self.orders_count, &self.lifetime_spend) {
            let tier = self.tier.as_deref().unwrap_or("-");
            para("Lifetime", &format!("{count} orders, {spend} spent, tier {tier}"));
        }
        for o in &self.orders {
            let mut lines = vec![
                format!("Status: {}, fulfillment: {}", o.status, o.fulfillment),
                format!("Items: {}", o.items.join("; ")),
                format!("Total: {}, placed {}", o.total, o.placed_at),
            ];
            if !o.tracking.is_empty() {
                lines.push(format!("Tracking: {}", o.tracking.join("; ")));
            }
            if let Some(eta) = &o.estimated_delivery {
                lines.push(format!("Estimated delivery: {eta}"));
            }
            html.push_str(&format!("<p><b>Order {}</b></p><ul>", escape(&o.number)));
            for line in lines {
                html.push_str(&format!("<li>{}</li>", escape(&line)));
            }
            html.push_str("</ul>");
        }
        html.push_str("<p><b>Transcript</b></p><ul>");
        for line in &self.transcript {
            html.push_str(&format!("<li><b>{}:</b> {}</li>", escape(&line.role), escape(&line.text)));
        }
        html.push_str("</ul>");
        html
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_escapes_what_the_customer_typed() {
        let package = Package {
            reason: "human_requested".into(),
            intent: None,
            summary: "<script>x</script>".into(),
            customer_words: "hi".into(),
            customer: Customer::default(),
            identity: "guest".into(),
            verified_how: "not verified".into(),
            orders_count: None,
            lifetime_spend: None,
            tier: None,
            orders: vec![],
            transcript: vec![Line { role: "customer".into(), text: "<img src=x onerror=y>".into() }],
            tags: vec![],
        };
        let html = package.note_html();
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(html.contains("anonymous guest"));
    }

    #[test]
    fn card_numbers_a_customer_types_are_removed_and_other_numbers_kept() {
        let text = "card 4242 4242 4242 4242 or 4000-0566-5566-5556, order #1001, call 415 555 0100, \
                    track 9400111899223100012345, 1Z999AA10123456784, not a card 1234567890123";
        let redacted = redact_payment(text);
        assert!(!redacted.contains("4242") && !redacted.contains("5556"), "{redacted}");
        assert_eq!(redacted.matches(CARD_REMOVED).count(), 2, "{redacted}");
        for kept in ["#1001", "415 555 0100", "9400111899223100012345", "1Z999AA10123456784", "1234567890123"] {
            assert!(redacted.contains(kept), "{kept} kept: {redacted}");
        }
    }

    #[test]
    fn order_numbers_are_found_in_what_the_customer_wrote() {
        let found: Vec<String> = mentioned_orders("where's #1001? and (#1004), not #abc or # or 1005").collect();
        assert_eq!(found, ["#1001", "#1004"]);
    }

    #[test]
    fn tiers_follow_orders_and_spend() {
        assert_eq!(tier(1, 5_000), "new");
        assert_eq!(tier(3, 5_000), "returning");
        assert_eq!(tier(1, 150_000), "vip");
    }
}
