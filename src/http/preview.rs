//! `POST /v1/admin/preview`: what the assistant would do with a message, as
//! a given identity, without storing or sending anything.

use axum::{Json, Router, extract::State, routing::post};
use serde::{Deserialize, Serialize};

use super::{
    admin::Admin,
    error::{ApiError, ApiResult},
};
use crate::app::AppState;
use crate::assistant::{Neighbour, Reply, SignalScore, Source, TurnContext};
use crate::chat::protocol::{Card, Citation, MAX_MESSAGE_CHARS};
use crate::identity::Identity;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/preview", post(preview))
}

#[derive(Deserialize)]
struct PreviewRequest {
    text: String,
    identity: Option<PreviewIdentity>,
}

/// Who to preview as. The operator states it; nothing is verified, and the
/// store is read with exactly that scope.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum PreviewIdentity {
    Guest,
    OrderVerified { order_number: String, email: String },
    Verified { customer_id: String, email: Option<String>, name: Option<String> },
}

impl From<PreviewIdentity> for Identity {
    fn from(identity: PreviewIdentity) -> Self {
        match identity {
            PreviewIdentity::Guest => Identity::Guest,
            PreviewIdentity::OrderVerified { order_number, email } => Identity::OrderVerified {
                order_number: crate::identity::normalize_order_number(&order_number),
                email: email.trim().to_lowercase(),
            },
            PreviewIdentity::Verified { customer_id, email, name } => Identity::Verified { customer_id, email, name },
        }
    }
}

#[derive(Serialize)]
struct Passage {
    article_id: String,
    title: String,
    heading: Option<String>,
    text: String,
    score: f64,
    similarity: Option<f64>,
    /// Cosine with the nearest of the questions the passage answers.
    question_similarity: Option<f64>,
    coverage: f64,
}

#[derive(Serialize)]
struct PreviewResponse {
    intent: &'static str,
    confidence: f64,
    escalate: bool,
    reason: Option<&'static str>,
    signals: Vec<SignalScore>,
    /// `examples` (by meaning) or `rules` (by phrase).
    understood_by: Source,
    decision: &'static str,
    outcome: &'static str,
    reply: String,
    cards: Vec<Card>,
    citations: Vec<Citation>,
    passages: Vec<Passage>,
    neighbours: Vec<Neighbour>,
    tools: Vec<&'static str>,
}

async fn preview(
    _: Admin,
    State(app): State<AppState>,
    Json(request): Json<PreviewRequest>,
) -> ApiResult<Json<PreviewResponse>> {
    let text = request.text.trim();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::BadRequest(format!("text must be 1-{MAX_MESSAGE_CHARS} characters")));
    }
    let identity: Identity = request.identity.map_or(Identity::Guest, Identity::from);
    let understanding = app.assistant.understand(text).await;
    let ctx = TurnContext { identity: &identity, page: None, prior_unanswered: 0, escalated: false };
    let response = app.assistant.respond(text, &understanding, &ctx).await;
    let (reply, cards, citations, reason) = match response.reply {
        Reply::Answer { text, cards, citations } => (text, cards, citations, None),
        Reply::VerifyRequired { text, .. } => (text, vec![], vec![], None),
        Reply::Handoff { text, reason, .. } => (text, vec![], vec![], Some(reason.as_str())),
    };
    let mut signals = understanding.signals;
    if signals.is_empty()
        && let Some(signal) = understanding.signal
    {
        // Rules only: the one that matched.
        signals.push(SignalScore { signal, score: 1.0, fired: true });
    }
    Ok(Json(PreviewResponse {
        intent: response.intent.as_str(),
        confidence: response.confidence,
        escalate: reason.is_some(),
        reason,
        signals,
        understood_by: understanding.source,
        decision: response.action.as_str(),
        outcome: response.outcome.as_str(),
        reply,
        cards,
        citations,
        passages: response
            .passages
            .into_iter()
            .map(|h| Passage {
                article_id: h.article_id,
                title: h.title,
                heading: h.heading,
                text: h.text,
                score: h.score,
                similarity: h.similarity,
                question_similarity: h.question_similarity,
                coverage: h.coverage,
            })
            .collect(),
        neighbours: understanding.neighbours,
        tools: response.tools,
    }))
}
