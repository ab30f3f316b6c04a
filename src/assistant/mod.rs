//! The turn pipeline: understand the message, decide by policy written in
//! code, use the store and the knowledge base within the identity's scope,
//! and phrase the reply from templates.

mod decide;
mod reply;
mod understand;
mod views;

pub use decide::{Action, EscalationReason, decide};
pub use reply::{TemplateError, Templates};
pub use understand::{Intent, Signal, Understanding, understand};

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use crate::chat::protocol::{Card, Citation, Page};
use crate::commerce::{Store, StoreError};
use crate::identity::Identity;
use crate::knowledge::{Hit, KnowledgeBase};

/// Below this share of the question's weight a passage is not an answer...
const MIN_KNOWLEDGE_COVERAGE: f64 = 0.5;
/// ...unless its meaning is this close to the question's (cosine, for
/// all-MiniLM-L6-v2: unrelated text stays well below it, a paraphrase of a
/// policy question lands above it).
const MIN_KNOWLEDGE_SIMILARITY: f64 = 0.55;

/// Everything a turn knows besides the message itself.
pub struct TurnContext<'a> {
    pub identity: &'a Identity,
    pub page: Option<&'a Page>,
    /// Earlier turns of this conversation the assistant could not answer.
    pub prior_unanswered: i64,
    /// A person already has the conversation.
    pub escalated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    VerifyRequired,
    Escalated,
    Unanswered,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::VerifyRequired => "verify_required",
            Outcome::Escalated => "escalated",
            Outcome::Unanswered => "unanswered",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Answer { text: String, cards: Vec<Card>, citations: Vec<Citation> },
    VerifyRequired { text: String, reason: &'static str },
    Handoff { text: String, reason: EscalationReason, summary: String },
}

#[derive(Debug, Clone)]
pub struct Response {
    pub intent: Intent,
    pub confidence: f64,
    pub reply: Reply,
    pub tools: Vec<&'static str>,
    pub outcome: Outcome,
}

pub struct Assistant {
    store: Arc<dyn Store>,
    knowledge: Arc<KnowledgeBase>,
    templates: Templates,
}

impl Assistant {
    pub fn new(store: Arc<dyn Store>, knowledge: Arc<KnowledgeBase>, templates: Templates) -> Self {
        Self { store, knowledge, templates }
    }

    pub fn ai_disclosure(&self) -> String {
        self.templates.render("ai_disclosure", ())
    }

    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.knowledge
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The text a handoff requested outside a message (`handoff_request`) shows.
    pub fn handoff_text(&self, reason: EscalationReason, already: bool) -> String {
        if already {
            self.templates.render("handoff_already", ())
        } else {
            self.templates.render("handoff", json!({ "reason": reason.as_str() }))
        }
    }

    #[tracing::instrument(skip_all, fields(identity = ctx.identity.status()))]
    pub async fn respond(&self, text: &str, ctx: &TurnContext<'_>) -> Response {
        let understanding = understand(text);
        let action = decide(&understanding, ctx.identity, ctx.escalated);
        let mut tools = Vec::new();
        let result = self.act(&action, text, &understanding, ctx, &mut tools).await;
        let (reply, outcome) = match result {
            Ok(done) => done,
            Err(error) => {
                tracing::warn!(%error, "store unavailable during a turn");
                let text = self.templates.render("store_unavailable", ());
                (Reply::Answer { text, cards: vec![], citations: vec![] }, Outcome::Unanswered)
            }
        };
        let (reply, outcome) = self.escalate_repeated_failure(reply, outcome, text, ctx);
        Response { intent: understanding.intent, confidence: understanding.confidence, reply, tools, outcome }
    }

    /// A second unanswered question in one conversation goes to a person:
    /// the customer should not have to ask for one.
    fn escalate_repeated_failure(
        &self,
        reply: Reply,
        outcome: Outcome,
        text: &str,
        ctx: &TurnContext<'_>,
    ) -> (Reply, Outcome) {
        if outcome != Outcome::Unanswered || ctx.prior_unanswered < 1 || ctx.escalated {
            return (reply, outcome);
        }
        let text_out = self.templates.render("unknown", json!({ "escalated": true }));
        let summary = format!("The assistant could not answer twice. Last question: {}", clip(text, 300));
        (Reply::Handoff { text: text_out, reason: EscalationReason::RepeatedFailure, summary }, Outcome::Escalated)
    }

    async fn act(
        &self,
        action: &Action,
        text: &str,
        u: &Understanding,
        ctx: &TurnContext<'_>,
        tools: &mut Vec<&'static str>,
    ) -> Result<(Reply, Outcome), StoreError> {
        let scope = ctx.identity.scope();
        Ok(match action {
            Action::Handoff(reason) => {
                let order = u.order_numbers.first().cloned();
                let text_out = self.templates.render("handoff", json!({ "reason": reason.as_str(), "order": order }));
                let summary = format!("{} ({}): {}", reason.as_str(), u.intent.as_str(), clip(text, 300));
                (Reply::Handoff { text: text_out, reason: *reason, summary }, Outcome::Escalated)
            }
            Action::AlreadyWithAgent => {
                let text = self.templates.render("handoff_already", ());
                (Reply::Answer { text, cards: vec![], citations: vec![] }, Outcome::Escalated)
            }
            Action::VerifyRequired => {
                let text = self.templates.render("verify_required", ());
                (Reply::VerifyRequired { text, reason: "order_lookup" }, Outcome::VerifyRequired)
            }
            Action::OrderStatus => {
                tools.push("store.orders");
                let orders = match u.order_numbers.first() {
                    Some(number) => match self.store.order(&scope, number).await? {
                        Some(order) => vec![order],
                        None => {
                            let text = self.templates.render("order_not_found", json!({ "number": number }));
                            return Ok((Reply::Answer { text, cards: vec![], citations: vec![] }, Outcome::Answered));
                        }
                    },
                    None => self.store.recent_orders(&scope, 3).await?,
                };
                if orders.is_empty() {
                    let text = self.templates.render("no_orders", ());
                    return Ok((Reply::Answer { text, cards: vec![], citations: vec![] }, Outcome::Answered));
                }
                // The latest order answers "where is my order?"; others are a number away.
                let shown = &orders[..1];
                let text = self.templates.render(
                    "order_status",
                    json!({ "orders": shown.iter().map(views::order).collect::<Vec<_>>(), "more": orders.len() > 1 }),
                );
                (
                    Reply::Answer { text, cards: shown.iter().map(views::order_card).collect(), citations: vec![] },
                    Outcome::Answered,
                )
            }
            Action::OrderChange => {
                tools.push("store.orders");
                let order = match u.order_numbers.first() {
                    Some(number) => self.store.order(&scope, number).await?,
                    None => self.store.recent_orders(&scope, 1).await?.into_iter().next(),
                };
                let reply = self.templates.render("order_change", json!({ "order": order.as_ref().map(views::order) }));
                let summary = match &order {
                    Some(o) => format!("Change or cancellation of {} requested: {}", o.number, clip(text, 300)),
                    None => format!("Change or cancellation requested: {}", clip(text, 300)),
                };
                let reason = EscalationReason::ActionRequired;
                (Reply::Handoff { text: reply, reason, summary }, Outcome::Escalated)
            }
            Action::ProductSearch => {
                tools.push("store.products");
                match self.product_reply(text, u, ctx.page).await? {
                    Some(reply) => (reply, Outcome::Answered),
                    // Not a product we sell: a policy may still answer it (sizing, care).
                    None => match self.knowledge_reply(text, tools).await {
                        Some(reply) => (reply, Outcome::Answered),
                        None => (self.plain("product_not_found"), Outcome::Unanswered),
                    },
                }
            }
            Action::Knowledge => match self.knowledge_reply(text, tools).await {
                Some(reply) => (reply, Outcome::Answered),
                None => (self.unknown(), Outcome::Unanswered),
            },
            Action::Greeting => {
                let name = match ctx.identity {
                    Identity::Verified { name: Some(name), .. } => name.split_whitespace().next().map(str::to_owned),
                    _ => None,
                };
                (self.render_answer("greeting", json!({ "name": name })), Outcome::Answered)
            }
            Action::Unknown => {
                // Customers rarely use our words: try the knowledge base, then
                // the catalog, before admitting we do not know.
                if let Some(reply) = self.knowledge_reply(text, tools).await {
                    return Ok((reply, Outcome::Answered));
                }
                tools.push("store.products");
                match self.product_reply(text, u, None).await? {
                    Some(reply) => (reply, Outcome::Answered),
                    None => (self.unknown(), Outcome::Unanswered),
                }
            }
        })
    }

    fn plain(&self, template: &str) -> Reply {
        self.render_answer(template, ())
    }

    fn unknown(&self) -> Reply {
        self.render_answer("unknown", json!({ "escalated": false }))
    }

    fn render_answer(&self, template: &str, context: impl Serialize) -> Reply {
        Reply::Answer { text: self.templates.render(template, context), cards: vec![], citations: vec![] }
    }

    /// The best knowledge passage, quoted with its citation, if it is good enough.
    async fn knowledge_reply(&self, text: &str, tools: &mut Vec<&'static str>) -> Option<Reply> {
        tools.push("knowledge.search");
        let hit = match self.knowledge.search(text, 1).await {
            Ok(hits) => hits.into_iter().next()?,
            Err(error) => {
                tracing::warn!(%error, "knowledge search failed during a turn");
                return None;
            }
        };
        if !answers(&hit) {
            return None;
        }
        let excerpt = views::excerpt(&hit.text, text, 420);
        let answer = self
            .templates
            .render("knowledge_answer", json!({ "excerpt": excerpt, "title": hit.title, "heading": hit.heading }));
        let citation = Citation { article_id: hit.article_id, title: hit.title, url: hit.url };
        Some(Reply::Answer { text: answer, cards: vec![], citations: vec![citation] })
    }

    async fn product_reply(
        &self,
        text: &str,
        u: &Understanding,
        page: Option<&Page>,
    ) -> Result<Option<Reply>, StoreError> {
        let mut products = self.store.search_products(text, 3).await?;
        if products.is_empty() {
            // "Do you have this in a 10?" on a product page means that product.
            if let Some(handle) = page.and_then(|p| p.url.as_deref()).and_then(views::product_handle) {
                products = self.store.search_products(&handle.replace('-', " "), 1).await?;
            }
        }
        let Some(product) = products.first() else {
            return Ok(None);
        };
        let context = views::product_context(product, u.size.as_deref(), &products[1..]);
        let text = self.templates.render("product_answer", context);
        Ok(Some(Reply::Answer { text, cards: vec![views::product_card(product)], citations: vec![] }))
    }
}

/// Whether a passage answers the question: it speaks to most of the
/// question's words, or means nearly the same. (`kb eval` counts how often
/// the right passage passes this test.)
pub fn answers(hit: &Hit) -> bool {
    hit.coverage >= MIN_KNOWLEDGE_COVERAGE || hit.similarity.is_some_and(|s| s >= MIN_KNOWLEDGE_SIMILARITY)
}

fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max_chars).collect();
    clipped.push('…');
    clipped
}
