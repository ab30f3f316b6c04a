//! What a socket may see of a session's stored frames. A frame carrying what
//! an order lookup found is tagged with the scope that looked it up; a socket
//! without that scope gets a placeholder in its place.

use super::{hub::Outbound, service::outbound};
use crate::db::StoredFrame;
use crate::identity::{Identity, normalize_order_number};

/// The scope a frame is tagged with, and a resuming socket compared by.
pub(super) fn scope_tag(identity: &Identity) -> Option<String> {
    match identity {
        Identity::Guest => None,
        Identity::OrderVerified { order_number, .. } => Some(format!("order:{}", normalize_order_number(order_number))),
        Identity::Verified { customer_id, .. } => Some(format!("customer:{customer_id}")),
    }
}

const WITHHELD: &str = "Order details are hidden here. Sign in or verify your order again to see them.";

/// `frame` as a socket with scope `viewer` may see it.
pub(super) fn visible(frame: StoredFrame, viewer: Option<&str>) -> Outbound {
    if frame.scope.is_none() || frame.scope.as_deref() == viewer {
        return outbound(frame);
    }
    let mut body: serde_json::Value = serde_json::from_str(&frame.body).unwrap_or_default();
    if body["type"] == "message" || !body.is_object() {
        // Only messages carry order details; they keep their id, seq and reply_to.
        let mut withheld = serde_json::json!({ "type": "message", "role": "system", "cards": [], "citations": [] });
        for key in ["id", "reply_to", "intent", "confidence"] {
            if let Some(value) = body.get(key) {
                withheld[key] = value.clone();
            }
        }
        withheld["role"] = body.get("role").cloned().unwrap_or_else(|| "system".into());
        withheld["seq"] = frame.seq.into();
        withheld["text"] = WITHHELD.into();
        body = withheld;
    }
    Outbound { seq: Some(frame.seq), json: body.to_string().into() }
}
