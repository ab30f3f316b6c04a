//! How store records look to the customer: template contexts, cards and
//! excerpts. Presentation only; every record here was already scope-checked.

use serde_json::{Value, json};

use crate::chat::protocol::Card;
use crate::commerce::{FulfillmentStatus, Order, OrderStatus, Product, format_money};
use crate::text::{is_stopword, terms};

/// "is on its way", "was delivered on 2026-11-02": completes "Order #1001 …".
fn order_state(order: &Order) -> String {
    match (order.status, order.fulfillment_status) {
        (OrderStatus::Cancelled, _) => match order.cancel_reason.as_deref() {
            Some("customer") => "was cancelled at your request".into(),
            Some("inventory") => "was cancelled because an item was out of stock".into(),
            Some("declined") => "was cancelled because the payment was declined".into(),
            // Fraud and other internal reasons are not the customer's to read.
            _ => "was cancelled".into(),
        },
        (OrderStatus::Refunded, _) => "was cancelled and refunded in full".into(),
        (_, FulfillmentStatus::Delivered) => match &order.delivered_on {
            Some(day) => format!("was delivered on {day}"),
            None => "was delivered".into(),
        },
        (_, FulfillmentStatus::InTransit | FulfillmentStatus::Fulfilled) => "has shipped and is on its way".into(),
        (_, FulfillmentStatus::PartiallyFulfilled) => "has partly shipped; the rest follows separately".into(),
        (_, FulfillmentStatus::Unfulfilled) => "is being prepared at our warehouse and hasn't shipped yet".into(),
    }
}

pub fn order(order: &Order) -> Value {
    json!({
        "number": order.number,
        "state": order_state(order),
        "placed_on": order.placed_at.get(..10),
        "tracking": order.tracking,
        "estimated_delivery": order.estimated_delivery,
        "items": order.items,
        "total": format_money(order.total_cents),
        "currency": order.currency,
        "refunded": (order.refunded_cents > 0 && order.status != OrderStatus::Refunded)
            .then(|| format_money(order.refunded_cents)),
    })
}

fn label<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub fn order_card(order: &Order) -> Card {
    Card::Order {
        order_number: order.number.clone(),
        status: label(order.status),
        fulfillment_status: label(order.fulfillment_status),
        tracking: order.tracking.clone(),
        items: order.items.clone(),
        total: format_money(order.total_cents),
        currency: order.currency.clone(),
        placed_at: order.placed_at.clone(),
        estimated_delivery: order.estimated_delivery.clone(),
    }
}

pub fn product_card(product: &Product) -> Card {
    Card::Product {
        title: product.title.clone(),
        url: product.url.clone(),
        price: format_money(product.price_cents),
        currency: product.currency.clone(),
        available: product.available(),
        variants: product.variants.clone(),
    }
}

pub fn product_context(product: &Product, size: Option<&str>, others: &[Product]) -> Value {
    // Variants are titled by size ("10", "M") or colour; match the size exactly.
    let variant = size.and_then(|s| product.variants.iter().find(|v| v.title.eq_ignore_ascii_case(s)));
    let in_stock: Vec<&str> = product.variants.iter().filter(|v| v.available).map(|v| v.title.as_str()).collect();
    json!({
        "product": { "title": product.title, "price": format_money(product.price_cents) },
        "currency": product.currency,
        "size": size,
        "size_label": size.map(|s| format!("size {}", s.to_uppercase())),
        "variant": variant,
        "in_stock": in_stock,
        "others": others.iter().map(|p| p.title.as_str()).collect::<Vec<_>>(),
    })
}

/// `https://shop/products/ridgeline-hiking-boots?variant=1` → the handle.
pub fn product_handle(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let handle = path.split("/products/").nth(1)?.split('/').next()?;
    (!handle.is_empty()).then(|| handle.to_owned())
}

/// One piece of a passage an excerpt may take: a sentence of prose or a
/// whole list item, with its Markdown (emphasis, links) as written.
struct Unit<'a> {
    text: &'a str,
    /// Which paragraph or list it belongs to.
    block: usize,
    list_item: bool,
}

/// The parts of a passage that speak to the question, in their own order,
/// within about `max_chars`, in the article's own Markdown: a list stays a
/// list (all of it, when one item answers and the list is short: "can I pay
/// with PayPal?" wants to see the other ways to pay too), emphasis and links
/// stay. Sentences and items are kept whole: a half sentence of policy is
/// worse than none. Table rows are used only when the passage has nothing else.
pub fn excerpt(passage: &str, question: &str, max_chars: usize) -> String {
    let wanted: Vec<String> = terms(question).filter(|t| !is_stopword(t)).collect();
    let has_prose = passage.lines().any(|l| !l.trim().is_empty() && !l.trim().starts_with('|'));
    let mut units = Vec::new();
    for (block, text) in passage.split("\n\n").enumerate() {
        for line in text.lines().map(str::trim).filter(|l| !(l.is_empty() || has_prose && l.starts_with('|'))) {
            if is_list_item(line) {
                units.push(Unit { text: line, block, list_item: true });
            } else {
                units.extend(split_sentences(line).into_iter().map(|text| Unit { text, block, list_item: false }));
            }
        }
    }
    let mut ranked: Vec<(usize, usize)> =
        units.iter().enumerate().map(|(i, u)| (i, terms(u.text).filter(|t| wanted.contains(t)).count())).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let mut chosen = vec![false; units.len()];
    let mut length = 0;
    for (i, score) in ranked {
        let unit_len = units[i].text.chars().count();
        if length > 0 && (score == 0 || length + unit_len > max_chars) {
            continue;
        }
        chosen[i] = true;
        length += unit_len + 1;
    }
    // A list one of whose items answers is shown whole, with the sentence
    // that introduces it, if that stays short.
    for i in 0..units.len() {
        if !(chosen[i] && units[i].list_item) {
            continue;
        }
        let block = units[i].block;
        let members: Vec<usize> = (0..units.len()).filter(|&j| units[j].block == block).collect();
        let extra: usize = members.iter().filter(|&&j| !chosen[j]).map(|&j| units[j].text.chars().count() + 1).sum();
        if length + extra <= max_chars * 3 / 2 {
            members.iter().for_each(|&j| chosen[j] = true);
            length += extra;
        }
    }

    let mut out = String::new();
    let mut previous: Option<&Unit> = None;
    for unit in units.iter().zip(&chosen).filter(|(_, c)| **c).map(|(u, _)| u) {
        if let Some(prev) = previous {
            out.push_str(match (prev.block == unit.block, prev.list_item, unit.list_item) {
                (true, false, false) => " ",
                (true, _, _) => "\n",
                (false, _, _) => "\n\n",
            });
        }
        out.push_str(unit.text);
        previous = Some(unit);
    }
    out
}

/// `- item`, `* item`, `3. item`.
fn is_list_item(line: &str) -> bool {
    if line.starts_with("- ") || line.starts_with("* ") {
        return true;
    }
    line.split_once(". ").is_some_and(|(n, _)| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn split_sentences(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        // A full stop followed by a space and a capital ends a sentence;
        // "3.5" or "e.g. this" does not. Emphasis may open the next one.
        let next = bytes.get(i + 2..).map(|rest| rest.iter().find(|&&c| c != b'*' && c != b'_'));
        if matches!(b, b'.' | b'!' | b'?')
            && bytes.get(i + 1) == Some(&b' ')
            && next.flatten().is_some_and(u8::is_ascii_uppercase)
        {
            out.push(line[start..=i].trim());
            start = i + 1;
        }
    }
    out.push(line[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_keep_the_sentences_that_answer() {
        let passage = "We ship from Portland. Standard shipping takes 3-5 business days. Overnight costs $29.95.";
        let e = excerpt(passage, "how many days does standard shipping take", 60);
        assert_eq!(e, "Standard shipping takes 3-5 business days.");
    }

    #[test]
    fn excerpts_keep_the_articles_markdown() {
        let passage = "We ship in **3-5 business days**. See *Returns*.\n\n| a | b |";
        assert_eq!(
            excerpt(passage, "how many business days does it ship in", 200),
            "We ship in **3-5 business days**."
        );
    }

    #[test]
    fn a_list_that_answers_is_shown_whole_as_a_list() {
        let passage = "We accept these:\n\n- **Cards:** Visa, Mastercard\n- **PayPal**\n- **Apple Pay**\n\nNo cash.";
        assert_eq!(
            excerpt(passage, "can i pay with paypal", 200),
            "- **Cards:** Visa, Mastercard\n- **PayPal**\n- **Apple Pay**"
        );
    }

    #[test]
    fn product_handles_come_from_product_urls_only() {
        assert_eq!(
            product_handle("https://s.example/products/ridgeline-boots?variant=2").as_deref(),
            Some("ridgeline-boots")
        );
        assert_eq!(product_handle("https://s.example/collections/all"), None);
    }
}
