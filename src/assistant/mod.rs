//! The turn pipeline: understand the message, decide by policy written in
//! code, use the store and the knowledge base within the identity's scope,
//! and phrase the reply from templates.

mod decide;
pub mod eval;
mod reply;
pub mod understand;
mod views;

pub use decide::{Action, EscalationReason, decide};
pub use reply::{TemplateError, Templates};
pub use understand::{Intent, Neighbour, Signal, SignalScore, Source, UnderstandError, Understander, Understanding};

use std::{path::Path, sync::Arc};

use serde::Serialize;
use serde_json::json;
use time::{Date, Duration, OffsetDateTime, format_description::well_known::Iso8601, macros::format_description};

use crate::chat::protocol::{Card, Citation, Page};
use crate::commerce::{FulfillmentStatus, Order, OrderStatus, Store, StoreError};
use crate::identity::Identity;
use crate::knowledge::{Hit, KnowledgeBase, Ranking, Verdict};

/// Passages looked at per question: the best, and the runner-up that may
/// make it ambiguous.
const PASSAGES: usize = 3;
/// A product question is answered from the knowledge base instead of the
/// catalog when a passage means this nearly what was asked, or when it asks
/// how to do something ("how do I clean leather boots?" wants care tips, not
/// a pair of boots) and the passage passes the answer test.
const CARE_SIMILARITY: f64 = 0.6;
/// A passage this near that fails the answer test is named, not quoted:
/// "is it about Returns?" helps more than "I don't know".
const SUGGEST_SIMILARITY: f64 = 0.45;

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
    /// The assistant asked what was meant instead of guessing.
    Clarify,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::VerifyRequired => "verify_required",
            Outcome::Escalated => "escalated",
            Outcome::Unanswered => "unanswered",
            Outcome::Clarify => "clarify",
        }
    }

    /// Not an answer: twice in a conversation and a person takes over.
    fn is_miss(self) -> bool {
        matches!(self, Outcome::Unanswered | Outcome::Clarify)
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
    pub action: Action,
    pub reply: Reply,
    pub tools: Vec<&'static str>,
    /// The knowledge passages the answer was chosen from (admin preview).
    pub passages: Vec<Hit>,
    pub outcome: Outcome,
}

/// What a turn did besides replying: tools used and passages seen.
#[derive(Default)]
struct Trace {
    tools: Vec<&'static str>,
    passages: Vec<Hit>,
}

/// What the knowledge base had for a question.
enum Found {
    Answer(Reply),
    /// Not sure which article, or whether one fits: the reply asks.
    Ask(Reply),
    Nothing,
}

pub struct Assistant {
    store: Arc<dyn Store>,
    knowledge: Arc<KnowledgeBase>,
    templates: Templates,
    understander: Understander,
    /// Days from delivery a return may be started in (`RETURN_WINDOW_DAYS`).
    return_window_days: i64,
}

impl Assistant {
    pub fn new(
        store: Arc<dyn Store>,
        knowledge: Arc<KnowledgeBase>,
        templates: Templates,
        understander: Understander,
        return_window_days: i64,
    ) -> Self {
        Self { store, knowledge, templates, understander, return_window_days }
    }

    /// Understanding from meaning, once the knowledge base has a model: the
    /// example phrasings are embedded with it (cached under `data_dir`).
    /// Until then, and if that fails, the rules read messages.
    pub async fn attach_model(&self, data_dir: &Path) {
        let Some(dense) = self.knowledge.dense() else { return };
        match self.understander.attach(dense.embedder(), Some(data_dir)).await {
            Ok(()) => tracing::info!("understanding by example phrasings"),
            Err(error) => tracing::warn!(%error, "understanding stays with the phrase rules"),
        }
    }

    pub fn understander(&self) -> &Understander {
        &self.understander
    }

    /// Reads a message, making its embedding once: understanding and the
    /// knowledge search of the same turn share it.
    pub async fn understand(&self, text: &str) -> Understanding {
        let embedding = self.knowledge.embed_message(text).await;
        self.understander.understand(text, embedding)
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
    pub async fn respond(&self, text: &str, understanding: &Understanding, ctx: &TurnContext<'_>) -> Response {
        let action = decide(understanding, ctx.identity, ctx.escalated);
        let mut trace = Trace::default();
        let result = self.act(&action, text, understanding, ctx, &mut trace).await;
        let (reply, outcome) = match result {
            Ok(done) => done,
            Err(error) => {
                tracing::warn!(%error, "store unavailable during a turn");
                let text = self.templates.render("store_unavailable", ());
                (Reply::Answer { text, cards: vec![], citations: vec![] }, Outcome::Unanswered)
            }
        };
        let (reply, outcome) = self.escalate_repeated_failure(reply, outcome, text, ctx);
        Response {
            intent: understanding.intent,
            confidence: understanding.confidence,
            action,
            reply,
            tools: trace.tools,
            passages: trace.passages,
            outcome,
        }
    }

    /// A second question in one conversation the assistant could not answer
    /// (or had to ask about) goes to a person: the customer should not have
    /// to ask for one.
    fn escalate_repeated_failure(
        &self,
        reply: Reply,
        outcome: Outcome,
        text: &str,
        ctx: &TurnContext<'_>,
    ) -> (Reply, Outcome) {
        if !outcome.is_miss() || ctx.prior_unanswered < 1 || ctx.escalated {
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
        trace: &mut Trace,
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
                trace.tools.push("store.orders");
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
            Action::OrderChange => self.order_change(text, u, ctx, trace).await?,
            Action::ReturnWindow => match self.return_window(text, u, ctx, trace).await? {
                Some(done) => done,
                None => self.answer_from_knowledge(text, u, trace).await,
            },
            Action::ProductSearch => {
                // Care and how-to questions name products but want a policy.
                let found = self.knowledge_reply(text, u, trace).await;
                let close = asks_how(text)
                    || trace.passages.first().and_then(|h| h.similarity).is_some_and(|s| s >= CARE_SIMILARITY);
                let found = match found {
                    Found::Answer(reply) if close => return Ok((reply, Outcome::Answered)),
                    other => other,
                };
                trace.tools.push("store.products");
                match self.product_reply(text, u, ctx.page).await? {
                    Some(reply) => (reply, Outcome::Answered),
                    None => match found {
                        Found::Answer(reply) => (reply, Outcome::Answered),
                        Found::Ask(reply) => (reply, Outcome::Clarify),
                        Found::Nothing => (self.plain("product_not_found"), Outcome::Unanswered),
                    },
                }
            }
            Action::Knowledge => self.answer_from_knowledge(text, u, trace).await,
            Action::Greeting => {
                let name = match ctx.identity {
                    Identity::Verified { name: Some(name), .. } => name.split_whitespace().next().map(str::to_owned),
                    _ => None,
                };
                (self.render_answer("greeting", json!({ "name": name })), Outcome::Answered)
            }
            Action::Clarify => match self.knowledge_reply(text, u, trace).await {
                // Unsure what was meant, but the knowledge base has exactly it.
                Found::Answer(reply) => (reply, Outcome::Answered),
                Found::Ask(reply) => (reply, Outcome::Clarify),
                Found::Nothing => {
                    let second = ctx.prior_unanswered > 0;
                    (self.render_answer("clarify", json!({ "second": second })), Outcome::Clarify)
                }
            },
            Action::Unknown => {
                // Customers rarely use our words: try the knowledge base, then
                // the catalog, before admitting we do not know.
                match self.knowledge_reply(text, u, trace).await {
                    Found::Answer(reply) => return Ok((reply, Outcome::Answered)),
                    Found::Ask(reply) => return Ok((reply, Outcome::Clarify)),
                    Found::Nothing => {}
                }
                trace.tools.push("store.products");
                match self.product_reply(text, u, None).await? {
                    Some(reply) => (reply, Outcome::Answered),
                    None => (self.unknown(), Outcome::Unanswered),
                }
            }
        })
    }

    async fn answer_from_knowledge(&self, text: &str, u: &Understanding, trace: &mut Trace) -> (Reply, Outcome) {
        match self.knowledge_reply(text, u, trace).await {
            Found::Answer(reply) => (reply, Outcome::Answered),
            Found::Ask(reply) => (reply, Outcome::Clarify),
            Found::Nothing => (self.unknown(), Outcome::Unanswered),
        }
    }

    /// "Can I cancel?": what can still be done depends on whether it shipped.
    /// A person makes the change; a shipped order is explained, not handed off.
    async fn order_change(
        &self,
        text: &str,
        u: &Understanding,
        ctx: &TurnContext<'_>,
        trace: &mut Trace,
    ) -> Result<(Reply, Outcome), StoreError> {
        trace.tools.push("store.orders");
        let scope = ctx.identity.scope();
        let order = match u.order_numbers.first() {
            Some(number) => self.store.order(&scope, number).await?,
            None => self.store.recent_orders(&scope, 1).await?.into_iter().next(),
        };
        let state = order.as_ref().map(|o| match (o.status, o.fulfillment_status) {
            (OrderStatus::Cancelled | OrderStatus::Refunded, _) => "closed",
            (_, FulfillmentStatus::Unfulfilled) => "open",
            _ => "shipped",
        });
        let context = json!({
            "order": order.as_ref().map(views::order),
            "state": state,
            "days": self.return_window_days,
        });
        let reply = self.templates.render("order_change", context);
        if matches!(state, Some("shipped" | "closed")) {
            let cards = order.iter().map(views::order_card).collect();
            return Ok((Reply::Answer { text: reply, cards, citations: vec![] }, Outcome::Answered));
        }
        let summary = match &order {
            Some(o) => format!("Change or cancellation of {} requested: {}", o.number, clip(text, 300)),
            None => format!("Change or cancellation requested: {}", clip(text, 300)),
        };
        Ok((Reply::Handoff { text: reply, reason: EscalationReason::ActionRequired, summary }, Outcome::Escalated))
    }

    /// "Can I still return my boots?" from a customer whose orders we may
    /// see: the policy applied to their order (delivered when, inside or
    /// outside the window). `None` when no order of theirs fits: the policy
    /// alone answers.
    async fn return_window(
        &self,
        text: &str,
        u: &Understanding,
        ctx: &TurnContext<'_>,
        trace: &mut Trace,
    ) -> Result<Option<(Reply, Outcome)>, StoreError> {
        trace.tools.push("store.orders");
        let scope = ctx.identity.scope();
        let orders = match u.order_numbers.first() {
            Some(number) => self.store.order(&scope, number).await?.into_iter().collect(),
            None => self.store.recent_orders(&scope, 5).await?,
        };
        let Some(order) = order_in_question(&orders, text) else { return Ok(None) };
        let deadline =
            order.delivered_on.as_deref().and_then(parse_day).map(|d| d + Duration::days(self.return_window_days));
        let state = match (order.status, deadline) {
            (OrderStatus::Cancelled | OrderStatus::Refunded, _) => "nothing",
            (_, Some(deadline)) if OffsetDateTime::now_utc().date() <= deadline => "open",
            (_, Some(_)) => "closed",
            (_, None) => "not_delivered",
        };
        // The policy itself, quoted and cited beside the customer's dates.
        let quoted = match self.knowledge_reply(text, u, trace).await {
            Found::Answer(_) => trace.passages.first().cloned(),
            _ => None,
        };
        let excerpt = quoted.as_ref().map(|hit| views::excerpt(&hit.text, text, 300));
        let items: Vec<&str> = order.items.iter().map(|i| item_name(&i.title)).collect();
        let context = json!({
            "order": views::order(order),
            "state": state,
            "items": items.join(", "),
            "delivered_on": order.delivered_on,
            "deadline": deadline.map(format_day),
            "days": self.return_window_days,
            "excerpt": excerpt,
            "title": quoted.as_ref().map(|h| &h.title),
            "heading": quoted.as_ref().and_then(|h| h.heading.as_ref()),
        });
        let text = self.templates.render("return_window", context);
        let citations = quoted.iter().map(citation).collect();
        let reply = Reply::Answer { text, cards: vec![views::order_card(order)], citations };
        Ok(Some((reply, Outcome::Answered)))
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

    /// The best knowledge passage, quoted with its citation, if the answer
    /// test says it answers; a question back if two articles fit alike.
    async fn knowledge_reply(&self, text: &str, u: &Understanding, trace: &mut Trace) -> Found {
        trace.tools.push("knowledge.search");
        let search = self.knowledge.search_ranked(text, u.embedding.as_deref(), PASSAGES, Ranking::Hybrid);
        trace.passages = match search.await {
            Ok(hits) => hits,
            Err(error) => {
                tracing::warn!(%error, "knowledge search failed during a turn");
                return Found::Nothing;
            }
        };
        match self.knowledge.answer_test().judge(&trace.passages) {
            Verdict::Answer(hit) => {
                let excerpt = views::excerpt(&hit.text, text, 420);
                let context = json!({ "excerpt": excerpt, "title": hit.title, "heading": hit.heading });
                let answer = self.templates.render("knowledge_answer", context);
                Found::Answer(Reply::Answer { text: answer, cards: vec![], citations: vec![citation(hit)] })
            }
            Verdict::Ambiguous(first, second) => {
                let title = |h: &Hit| h.heading.clone().unwrap_or_else(|| h.title.clone());
                let context = json!({ "first": title(first), "second": title(second) });
                let text = self.templates.render("clarify_article", context);
                Found::Ask(Reply::Answer { text, cards: vec![], citations: vec![citation(first), citation(second)] })
            }
            // A question about an article's whole topic: its overview.
            Verdict::Decline if let Some(overview) = self.knowledge.overview_for(text) => {
                let hit = &overview.opening;
                let excerpt = views::excerpt(&hit.text, text, 420);
                let context = json!({ "excerpt": excerpt, "title": hit.title, "sections": overview.sections });
                let answer = self.templates.render("knowledge_overview", context);
                Found::Answer(Reply::Answer { text: answer, cards: vec![], citations: vec![citation(hit)] })
            }
            // Near, but not near enough to quote: name the article and ask,
            // rather than guess or give a bare "I don't know".
            Verdict::Decline => match trace.passages.first() {
                Some(hit) if hit.similarity.is_some_and(|s| s >= SUGGEST_SIMILARITY) => {
                    let text = self.templates.render("suggest_article", json!({ "title": hit.title }));
                    Found::Ask(Reply::Answer { text, cards: vec![], citations: vec![citation(hit)] })
                }
                _ => Found::Nothing,
            },
        }
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

/// "How do I…", "how to…": a listing of products cannot answer it. How much
/// or how many asks a price or a quantity, which the catalog does answer.
fn asks_how(text: &str) -> bool {
    let words: Vec<String> = crate::text::words(text).collect();
    words.windows(2).any(|w| w[0] == "how" && !matches!(w[1].as_str(), "much" | "many"))
}

fn citation(hit: &Hit) -> Citation {
    Citation { article_id: hit.article_id.clone(), title: hit.title.clone(), url: hit.url.clone() }
}

/// The order a return question is about: one whose items the message
/// names ("my boots"), else the latest delivered one, else the latest.
fn order_in_question<'a>(orders: &'a [Order], text: &str) -> Option<&'a Order> {
    let asked: Vec<String> = crate::text::terms(text).filter(|t| !crate::text::is_stopword(t)).collect();
    let names_an_item =
        |o: &&Order| o.items.iter().any(|i| crate::text::terms(item_name(&i.title)).any(|t| asked.contains(&t)));
    orders
        .iter()
        .find(names_an_item)
        .or_else(|| orders.iter().find(|o| o.delivered_on.is_some()))
        .or_else(|| orders.first())
}

/// "Ridgeline Hiking Boots - 8.5 / Walnut" → "Ridgeline Hiking Boots".
fn item_name(title: &str) -> &str {
    title.split(" - ").next().unwrap_or(title).trim()
}

fn parse_day(day: &str) -> Option<Date> {
    Date::parse(day.get(..10)?, &Iso8601::DATE).ok()
}

fn format_day(day: Date) -> String {
    day.format(format_description!("[month repr:long] [day padding:none], [year]")).unwrap_or_else(|_| day.to_string())
}

fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max_chars).collect();
    clipped.push('…');
    clipped
}
