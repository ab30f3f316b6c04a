//! What a socket may see of a session's stored frames. A frame carrying what
//! an order lookup found is tagged with the scope that looked it up; a socket
//! without that scope gets a placeholder in its place.

use std::time::Instant;

use super::{hub::Outbound, service::Session};
use crate::db::StoredFrame;
use crate::identity::{Identity, normalize_order_number};

/// The scope a frame is tagged with, and a socket compared by.
pub(super) fn scope_tag(identity: &Identity) -> Option<String> {
    match identity {
        Identity::Guest => None,
        Identity::OrderVerified { order_number, .. } => Some(format!("order:{}", normalize_order_number(order_number))),
        Identity::Verified { customer_id, .. } => Some(format!("customer:{customer_id}")),
    }
}

/// Whom a socket shows live frames to: its own session's identity, as its
/// worker last left it. Sockets that share a session id need not share an
/// identity (a resume proves only the id), so each filters what the others'
/// turns publish.
#[derive(Clone)]
pub(super) struct Viewer {
    identity: Identity,
    order_verified_until: Option<Instant>,
}

impl Viewer {
    pub fn of(session: &Session) -> Self {
        Self { identity: session.identity.clone(), order_verified_until: session.order_verified_until }
    }

    /// The scope this socket holds now: an order verification lapses on
    /// time, not only at the next turn.
    pub fn tag(&self, now: Instant) -> Option<String> {
        scope_tag(&super::service::identity_at(&self.identity, self.order_verified_until, now))
    }
}

const WITHHELD: &str = "Order details are hidden here. Sign in or verify your order again to see them.";

/// A stored `frame` as a socket with scope `viewer` may see it.
pub(super) fn visible(frame: StoredFrame, viewer: Option<&str>) -> Outbound {
    shown(Outbound::from(frame), viewer)
}

/// `frame` as a socket with scope `viewer` may see it.
pub(super) fn shown(frame: Outbound, viewer: Option<&str>) -> Outbound {
    let (Some(scope), Some(seq)) = (frame.scope.as_deref(), frame.seq) else { return frame };
    if Some(scope) == viewer {
        return frame;
    }
    let mut body: serde_json::Value = serde_json::from_str(&frame.json).unwrap_or_default();
    if body["type"] == "message" || !body.is_object() {
        // Only messages carry order details; they keep their id, seq and reply_to.
        let mut withheld = serde_json::json!({ "type": "message", "role": "system", "cards": [], "citations": [] });
        for key in ["id", "reply_to", "intent", "confidence"] {
            if let Some(value) = body.get(key) {
                withheld[key] = value.clone();
            }
        }
        withheld["role"] = body.get("role").cloned().unwrap_or_else(|| "system".into());
        withheld["seq"] = seq.into();
        withheld["text"] = WITHHELD.into();
        body = withheld;
    }
    Outbound { seq: Some(seq), json: body.to_string().into(), scope: None }
}
