//! The WebSocket frames of PROTOCOL.md §3. Names here are the public contract.

use serde::{Deserialize, Serialize};

use crate::identity::IdentityView;

/// Frames larger than this get `too_large` (the connection stays open).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Customer message text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Page {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello {
        token: Option<String>,
        session_id: Option<String>,
        last_seq: Option<i64>,
        locale: Option<String>,
        page: Option<Page>,
    },
    Message {
        id: String,
        text: String,
    },
    Verify {
        order_number: String,
        email: String,
    },
    HandoffRequest {
        note: Option<String>,
    },
    Feedback {
        message_id: String,
        rating: Rating,
        comment: Option<String>,
    },
    Csat {
        score: u8,
        comment: Option<String>,
    },
    Ping,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }
}

/// Why a client frame was refused, as the `error` frame tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
}

impl FrameError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Parses one text frame, checking size and field limits. The message never
/// echoes the frame back.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::new(ErrorCode::TooLarge, format!("Frames are limited to {MAX_FRAME_BYTES} bytes.")));
    }
    let frame: ClientFrame = serde_json::from_str(text).map_err(|e| {
        let message = if e.is_syntax() || e.is_eof() {
            "The frame is not valid JSON.".to_owned()
        } else {
            // serde's wording names the field or the unknown `type`, never
            // more of the input than that.
            format!("The frame is not valid: {}.", e.to_string().split(" at line").next().unwrap_or("invalid"))
        };
        FrameError::new(ErrorCode::BadRequest, message)
    })?;
    validate(&frame)?;
    Ok(frame)
}

fn validate(frame: &ClientFrame) -> Result<(), FrameError> {
    let bad = |m: &str| Err(FrameError::new(ErrorCode::BadRequest, m));
    match frame {
        ClientFrame::Message { id, text } => {
            if id.trim().is_empty() || id.len() > 128 {
                return bad("A message needs an `id` of 1 to 128 characters.");
            }
            let chars = text.chars().count();
            if text.trim().is_empty() || chars > MAX_MESSAGE_CHARS {
                return bad("A message needs `text` of 1 to 4000 characters.");
            }
        }
        ClientFrame::Csat { score, .. } if !(1..=5).contains(score) => {
            return bad("`score` must be 1 to 5.");
        }
        ClientFrame::Verify { order_number, email } if order_number.len() > 64 || email.len() > 254 => {
            return bad("The order number or email is too long.");
        }
        _ => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    TooLarge,
    RateLimited,
    Unauthorized,
    VerificationFailed,
    VerificationLocked,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::VerificationFailed => "verification_failed",
            ErrorCode::VerificationLocked => "verification_locked",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Card {
    Order {
        order_number: String,
        status: String,
        fulfillment_status: String,
        tracking: Vec<crate::commerce::Tracking>,
        items: Vec<crate::commerce::LineItem>,
        total: String,
        currency: String,
        placed_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated_delivery: Option<String>,
    },
    Product {
        title: String,
        url: String,
        price: String,
        currency: String,
        available: bool,
        variants: Vec<crate::commerce::Variant>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Citation {
    pub article_id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Where a handoff stands, as the widget shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffStatus {
    /// Recorded; on its way to a person.
    Requested,
    /// The help desk has the conversation and the context note.
    Created,
    AgentReplied,
    /// The person closed it: the assistant answers again.
    Closed,
    /// The help desk is unreachable for now; delivery goes on.
    FailedRetrying,
}

impl HandoffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Requested => "requested",
            HandoffStatus::Created => "created",
            HandoffStatus::AgentReplied => "agent_replied",
            HandoffStatus::Closed => "closed",
            HandoffStatus::FailedRetrying => "failed_retrying",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Author {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageFrame {
    pub id: String,
    pub seq: i64,
    pub role: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub cards: Vec<Card>,
    pub citations: Vec<Citation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        session_id: String,
        seq: i64,
        identity: IdentityView,
        ai_disclosure: String,
        resumed: bool,
    },
    Typing {
        on: bool,
    },
    Delta {
        message_id: String,
        text: String,
    },
    Message(MessageFrame),
    VerifyRequired {
        seq: i64,
        reply_to: String,
        text: String,
        reason: String,
        methods: Vec<&'static str>,
    },
    Verified {
        seq: i64,
        identity: IdentityView,
    },
    Handoff {
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        status: HandoffStatus,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        code: ErrorCode,
        message: String,
    },
    Pong,
}

impl ServerFrame {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error { seq: None, reply_to: None, code, message: message.into() }
    }

    pub fn handoff(status: HandoffStatus, reason: &str, reply_to: Option<&str>, reference: Option<&str>) -> Self {
        ServerFrame::Handoff {
            seq: 0,
            reply_to: reply_to.map(str::to_owned),
            status,
            reason: reason.to_owned(),
            reference: reference.map(str::to_owned),
        }
    }

    /// A message from a person or the service itself (no intent, cards or citations).
    pub fn plain_message(id: String, role: &'static str, text: String, author: Option<String>) -> Self {
        ServerFrame::Message(MessageFrame {
            id,
            seq: 0,
            role,
            text,
            reply_to: None,
            intent: None,
            confidence: None,
            cards: vec![],
            citations: vec![],
            author: author.map(|name| Author { name }),
        })
    }

    /// The `type` name, as stored in the frame log.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Welcome { .. } => "welcome",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Delta { .. } => "delta",
            ServerFrame::Message(_) => "message",
            ServerFrame::VerifyRequired { .. } => "verify_required",
            ServerFrame::Verified { .. } => "verified",
            ServerFrame::Handoff { .. } => "handoff",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Pong => "pong",
        }
    }

    pub fn reply_to(&self) -> Option<&str> {
        match self {
            ServerFrame::Message(m) => m.reply_to.as_deref(),
            ServerFrame::VerifyRequired { reply_to, .. } => Some(reply_to),
            ServerFrame::Handoff { reply_to, .. } | ServerFrame::Error { reply_to, .. } => reply_to.as_deref(),
            _ => None,
        }
    }

    /// Stamps the seq on a frame that carries one.
    pub fn set_seq(&mut self, value: i64) {
        match self {
            ServerFrame::Message(MessageFrame { seq, .. })
            | ServerFrame::VerifyRequired { seq, .. }
            | ServerFrame::Verified { seq, .. }
            | ServerFrame::Handoff { seq, .. } => *seq = value,
            ServerFrame::Error { seq, .. } => *seq = Some(value),
            ServerFrame::Welcome { .. }
            | ServerFrame::Typing { .. }
            | ServerFrame::Delta { .. }
            | ServerFrame::Pong => {}
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_bad_json_are_bad_requests() {
        for text in ["{", "[]", r#"{"type":"launch_missiles"}"#, r#"{"type":"message","id":"1"}"#, r#"{"text":"hi"}"#] {
            let err = parse_client_frame(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadRequest, "{text}");
        }
    }

    #[test]
    fn message_text_is_limited_to_4000_characters() {
        let ok = format!(r#"{{"type":"message","id":"1","text":"{}"}}"#, "é".repeat(4000));
        assert!(parse_client_frame(&ok).is_ok());
        let long = format!(r#"{{"type":"message","id":"1","text":"{}"}}"#, "a".repeat(4001));
        assert_eq!(parse_client_frame(&long).unwrap_err().code, ErrorCode::BadRequest);
        let empty = r#"{"type":"message","id":"1","text":"  "}"#;
        assert_eq!(parse_client_frame(empty).unwrap_err().code, ErrorCode::BadRequest);
    }

    #[test]
    fn oversize_frames_are_too_large() {
        let huge = format!(r#"{{"type":"message","id":"1","text":"{}"}}"#, "a".repeat(MAX_FRAME_BYTES));
        assert_eq!(parse_client_frame(&huge).unwrap_err().code, ErrorCode::TooLarge);
    }

    #[test]
    fn frames_serialize_with_their_type() {
        let json = ServerFrame::error(ErrorCode::TooLarge, "x").to_json();
        assert_eq!(json, r#"{"type":"error","code":"too_large","message":"x"}"#);
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever a client sends, parsing answers with a frame or an error; it never panics.
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,300}") {
            let _ = parse_client_frame(&text);
        }

        #[test]
        fn frame_shaped_json_parses_or_is_refused(
            kind in prop::sample::select(vec!["hello", "message", "verify", "handoff_request", "feedback", "csat", "ping", "x"]),
            id in ".{0,200}",
            text in ".{0,5000}",
            score in any::<i64>(),
            extra in prop::option::of(".{0,50}"),
        ) {
            let frame = serde_json::json!({
                "type": kind, "id": id, "text": text, "score": score, "rating": extra,
                "order_number": extra, "email": extra, "message_id": id, "token": extra,
            });
            let _ = parse_client_frame(&frame.to_string());
        }
    }
}
