//! What Intercom sends us: signed `notification_event`s. The signature is
//! `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the raw body with the app's
//! client secret; the events this service acts on are reduced to [`Event`].

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::html;
use crate::handoff::DeskEvent;

/// Verifies `sha1=<hex>` over the raw bytes, in constant time.
pub fn signature_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(given) = header.and_then(|h| h.trim().strip_prefix("sha1=")).and_then(decode_hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    bool::from(given.as_slice().ct_eq(&mac.finalize().into_bytes()[..]))
}

/// `sha1=<hex>` for `body`: what Intercom would send (tests sign with it).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha1={hex}")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// The notification's id, its topic, and the event when it is one we act on.
pub struct Notification {
    pub id: String,
    pub topic: String,
    /// `None`: a topic this service does not act on.
    pub event: Option<DeskEvent>,
}

pub fn parse(body: &Value) -> Option<Notification> {
    let id = body["id"].as_str()?.to_owned();
    let topic = body["topic"].as_str()?.to_owned();
    let item = &body["data"]["item"];
    let reference = item["id"].as_str().map(str::to_owned);
    let part = latest_part(item);
    let event = reference.and_then(|reference| match topic.as_str() {
        "conversation.admin.replied" => {
            let body =
                part.and_then(|p| p["body"].as_str()).or_else(|| item["conversation_message"]["body"].as_str())?;
            let text = html::to_text(body);
            (!text.is_empty()).then(|| DeskEvent::AgentReplied { reference, author: author_name(item, part), text })
        }
        "conversation.admin.closed" => Some(DeskEvent::Closed { reference }),
        "conversation.admin.assigned" => {
            let assignee = part
                .and_then(|p| p["assigned_to"]["name"].as_str())
                .or_else(|| item["assignee"]["name"].as_str())
                .or_else(|| item["team_assignee"]["name"].as_str())
                .unwrap_or("a teammate")
                .to_owned();
            Some(DeskEvent::Assigned { reference, assignee })
        }
        _ => None,
    });
    Some(Notification { id, topic, event })
}

/// The newest conversation part: the one the notification is about.
fn latest_part(item: &Value) -> Option<&Value> {
    item["conversation_parts"]["conversation_parts"].as_array()?.iter().max_by_key(|p| p["created_at"].as_i64())
}

fn author_name(item: &Value, part: Option<&Value>) -> String {
    part.and_then(|p| p["author"]["name"].as_str())
        .or_else(|| item["assignee"]["name"].as_str())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("Support team")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_over_other_bytes_or_with_another_secret_fails() {
        let body = br#"{"topic":"ping"}"#;
        let good = sign(b"secret", body);
        assert!(signature_valid(b"secret", body, Some(&good)));
        assert!(!signature_valid(b"other", body, Some(&good)));
        assert!(!signature_valid(b"secret", br#"{"topic":"ping" }"#, Some(&good)));
        assert!(!signature_valid(b"secret", body, Some(good.trim_start_matches("sha1="))));
        assert!(!signature_valid(b"secret", body, Some("sha1=zz")));
        assert!(!signature_valid(b"secret", body, None));
    }
}
