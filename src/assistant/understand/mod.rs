//! Understanding one customer message: intent with a confidence, the signals
//! that force a handoff, and the order numbers and emails it mentions.
//!
//! With a sentence model, intent and signals come from the meaning of the
//! message against labelled example phrasings ([`examples`]); phrase rules
//! ([`rules`]) may add an escalation the examples missed, never remove one.
//! Without a model (`EMBEDDINGS=none`) the rules decide alone. Both are data
//! in `prompts/understanding/`, and both explain themselves in the admin
//! preview.

pub mod examples;
mod head;
mod rules;
mod words;

use std::{
    path::Path,
    sync::{Arc, OnceLock},
};

use serde::{Deserialize, Serialize};

pub use examples::{Classifier, Examples, Method, Neighbour, Params, SignalScore};
use rules::{Normalized, Rules};

use crate::knowledge::embeddings::{Embedder, EmbeddingError, MessageEmbedding};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    OrderStatus,
    OrderChange,
    ReturnRefund,
    ProductQuestion,
    PolicyQuestion,
    AccountHelp,
    BillingIssue,
    Complaint,
    HumanRequest,
    Greeting,
    Other,
}

impl Intent {
    pub const ALL: [Intent; 11] = [
        Intent::OrderStatus,
        Intent::OrderChange,
        Intent::ReturnRefund,
        Intent::ProductQuestion,
        Intent::PolicyQuestion,
        Intent::AccountHelp,
        Intent::BillingIssue,
        Intent::Complaint,
        Intent::HumanRequest,
        Intent::Greeting,
        Intent::Other,
    ];

    /// Complaints and requests for a person always reach a person.
    pub fn escalates(self) -> bool {
        matches!(self, Intent::Complaint | Intent::HumanRequest)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::OrderStatus => "order_status",
            Intent::OrderChange => "order_change",
            Intent::ReturnRefund => "return_refund",
            Intent::ProductQuestion => "product_question",
            Intent::PolicyQuestion => "policy_question",
            Intent::AccountHelp => "account_help",
            Intent::BillingIssue => "billing_issue",
            Intent::Complaint => "complaint",
            Intent::HumanRequest => "human_request",
            Intent::Greeting => "greeting",
            Intent::Other => "other",
        }
    }
}

/// Something in the message that decides the turn whatever the intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Legal threat, chargeback or dispute, fraud, safety, harassment, data deletion.
    SensitiveTopic,
    HumanRequested,
    NegativeSentiment,
    /// Damaged, defective or wrong goods: someone must arrange a remedy.
    DamagedGoods,
}

impl Signal {
    /// When several fire, the first names the escalation: a legal threat
    /// routes as sensitive even when it also asks for a person.
    pub const PRECEDENCE: [Signal; 4] =
        [Signal::SensitiveTopic, Signal::HumanRequested, Signal::NegativeSentiment, Signal::DamagedGoods];
}

/// Where the reading of a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Examples,
    Rules,
}

#[derive(Debug, Clone, Serialize)]
pub struct Understanding {
    pub intent: Intent,
    pub confidence: f64,
    /// The signal that decides the turn, if any.
    pub signal: Option<Signal>,
    /// Every signal's score (with a model) and which rules matched.
    pub signals: Vec<SignalScore>,
    pub source: Source,
    /// The nearest example phrasings (with a model).
    pub neighbours: Vec<Neighbour>,
    pub order_numbers: Vec<String>,
    pub emails: Vec<String>,
    /// A size the customer asked about (`10`, `8.5`, `m`), for variant lookups.
    pub size: Option<String>,
    /// About sending something back: the return window may be theirs to know.
    pub about_returns: bool,
    /// The message's sentence embedding, made once and shared with retrieval.
    #[serde(skip)]
    pub embedding: Option<Arc<[f32]>>,
}

impl Understanding {
    /// Confident enough to act on the intent; below, the assistant asks.
    pub fn is_confident(&self) -> bool {
        self.source == Source::Rules || self.confidence >= MIN_CONFIDENCE
    }
}

/// Below this the intent is a guess (calibrated on `eval/messages.yaml`).
pub const MIN_CONFIDENCE: f64 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum UnderstandError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot embed the example phrasings: {0}")]
    Embedding(#[from] EmbeddingError),
}

impl UnderstandError {
    fn read(path: &Path, e: std::io::Error) -> Self {
        Self::Read { path: path.display().to_string(), reason: e.to_string() }
    }

    fn parse(path: &Path, e: serde_yaml::Error) -> Self {
        Self::Parse { path: path.display().to_string(), reason: e.to_string() }
    }
}

/// Reads messages: the rules always, the examples once a model is attached.
pub struct Understander {
    rules: Rules,
    examples: Examples,
    classifier: OnceLock<Classifier>,
}

impl Understander {
    pub fn load(prompts_dir: &Path) -> Result<Self, UnderstandError> {
        Ok(Self {
            rules: Rules::load(prompts_dir)?,
            examples: Examples::load(prompts_dir)?,
            classifier: OnceLock::new(),
        })
    }

    /// Brings the examples into use with the model retrieval uses (their
    /// vectors are cached in `cache_dir`). A second call changes nothing.
    pub async fn attach(&self, embedder: &Embedder, cache_dir: Option<&Path>) -> Result<(), UnderstandError> {
        if self.classifier.get().is_some() {
            return Ok(());
        }
        let classifier = Classifier::build(self.examples.clone(), embedder, cache_dir).await?;
        let _ = self.classifier.set(classifier);
        Ok(())
    }

    pub fn classifier(&self) -> Option<&Classifier> {
        self.classifier.get()
    }

    /// Reads `text`, by its `embedding` when there is one and a classifier
    /// to compare it with, by the rules otherwise.
    pub fn understand(&self, text: &str, embedding: Option<MessageEmbedding>) -> Understanding {
        self.understand_with(text, embedding, self.classifier.get())
    }

    /// [`Self::understand`] with a chosen classifier (`eval --tune` tries several).
    pub fn understand_with(
        &self,
        text: &str,
        embedding: Option<MessageEmbedding>,
        classifier: Option<&Classifier>,
    ) -> Understanding {
        let normalized = Normalized::new(text);
        let order_numbers = order_numbers(text);
        let rule_signal = self.rules.signal(text, &normalized);
        let judged = classifier.zip(embedding.as_ref()).map(|(c, e)| c.judge(text, &e.whole, &e.sentences));
        let (intent, confidence, signal, signals, neighbours, source) = match judged {
            Some(j) => {
                let learned = j.signals.iter().find(|s| s.fired).map(|s| s.signal);
                // Rules may add an escalation, never take one away.
                let signal = learned.or(rule_signal);
                (j.intent, j.confidence, signal, j.signals, j.neighbours, Source::Examples)
            }
            None => {
                let (intent, confidence) = self.rules.intent(&normalized, !order_numbers.is_empty());
                (intent, confidence, rule_signal, Vec::new(), Vec::new(), Source::Rules)
            }
        };
        let (intent, confidence) = match signal {
            // Whatever else the message says, it asks for a person or is angry.
            Some(Signal::HumanRequested) if !intent.escalates() => (Intent::HumanRequest, confidence.max(0.7)),
            Some(Signal::NegativeSentiment) if !intent.escalates() => (Intent::Complaint, confidence.max(0.7)),
            Some(Signal::SensitiveTopic) if matches!(intent, Intent::Other | Intent::Greeting) => {
                (Intent::Complaint, confidence.max(0.7))
            }
            _ => (intent, confidence),
        };
        Understanding {
            intent,
            confidence: (confidence * 100.0).round() / 100.0,
            signal,
            signals,
            source,
            neighbours,
            order_numbers,
            emails: emails(text),
            size: size(&normalized),
            about_returns: self.rules.about_returns(&normalized),
            embedding: embedding.map(|e| e.whole),
        }
    }
}

/// `#1001`, `order 1001`, `order number 1001`, `order no. 1001`.
fn order_numbers(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let tokens: Vec<&str> = lower.split(|c: char| c.is_whitespace() || c == ',' || c == '?' || c == ':').collect();
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let digits = token.trim_start_matches('#').trim_end_matches(['.', '!', ')']);
        let is_number = (3..=12).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        let after_order_word =
            tokens[..i].iter().rev().take(2).any(|t| matches!(*t, "order" | "number" | "no." | "no" | "#"));
        if is_number && (token.starts_with('#') || after_order_word) {
            let number = format!("#{digits}");
            if !found.contains(&number) {
                found.push(number);
            }
        }
    }
    found
}

fn emails(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '(' | ')'))
        .map(|t| t.trim_end_matches(['.', '!', '?']))
        .filter(|t| t.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.')))
        .map(str::to_lowercase)
        .collect()
}

/// "size 10", "in a 10.5", "a medium".
fn size(normalized: &Normalized) -> Option<String> {
    let tokens: Vec<&str> = normalized.words().iter().map(String::as_str).collect();
    for (i, t) in tokens.iter().enumerate() {
        let named = match *t {
            "small" => Some("s"),
            "medium" => Some("m"),
            "large" => Some("l"),
            "xl" | "x-large" => Some("xl"),
            _ => None,
        };
        if let Some(s) = named {
            return Some(s.into());
        }
        let introduces_size = *t == "size" || (*t == "a" && i > 0 && tokens[i - 1] == "in");
        if let Some(next) = tokens.get(i + 1).filter(|_| introduces_size)
            && (next.parse::<f64>().is_ok() || matches!(*next, "s" | "m" | "l" | "xl"))
        {
            return Some((*next).to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_only() -> Understander {
        Understander::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")).expect("the shipped rules load")
    }

    fn intent(text: &str) -> Intent {
        rules_only().understand(text, None).intent
    }

    fn signal(text: &str) -> Option<Signal> {
        rules_only().understand(text, None).signal
    }

    #[test]
    fn without_a_model_the_rules_read_everyday_questions() {
        assert_eq!(intent("where is my order?"), Intent::OrderStatus);
        assert_eq!(intent("Any news on #1001"), Intent::OrderStatus);
        assert_eq!(intent("can I return these boots?"), Intent::ReturnRefund);
        assert_eq!(intent("do you have the ridgeline boots in size 10?"), Intent::ProductQuestion);
        assert_eq!(intent("do you ship to canada"), Intent::PolicyQuestion);
        assert_eq!(intent("I need to cancel my order"), Intent::OrderChange);
        assert_eq!(intent("I was charged twice"), Intent::BillingIssue);
        assert_eq!(intent("hello!"), Intent::Greeting);
        assert_eq!(intent("what's the airspeed of a swallow"), Intent::Other);
    }

    #[test]
    fn without_a_model_the_rules_see_signals_that_force_a_person() {
        assert_eq!(signal("can I talk to a person"), Some(Signal::HumanRequested));
        assert_eq!(signal("could you help me to speak to somebody?"), Some(Signal::HumanRequested));
        assert_eq!(signal("I'll file a chargeback with my bank"), Some(Signal::SensitiveTopic));
        assert_eq!(signal("close Pro account"), Some(Signal::SensitiveTopic));
        assert_eq!(signal("this is ridiculous, worst service ever"), Some(Signal::NegativeSentiment));
        assert_eq!(signal("WHERE IS MY ORDER I PAID TWO WEEKS AGO"), Some(Signal::NegativeSentiment));
        assert_eq!(signal("my boots arrived damaged"), Some(Signal::DamagedGoods));
        assert_eq!(signal("my parcel arrived damaged, what happens now?"), Some(Signal::DamagedGoods));
        assert_eq!(signal("what happens if my parcel arrives damaged?"), None);
        assert_eq!(signal("what if it's broken, will you sue me"), Some(Signal::SensitiveTopic));
        assert_eq!(signal("what's your phone number? I want to ring someone"), Some(Signal::HumanRequested));
        assert_eq!(signal("I'd like to change the phone number on my account"), None);
        assert_eq!(signal("where is my order"), None);
        assert_eq!(signal("how do I make a warranty claim?"), None);
    }

    #[test]
    fn garbage_in_the_data_files_stops_start_up_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("understanding")).unwrap();
        std::fs::write(dir.path().join("understanding/rules.yaml"), "signals: [not, a, map]\n\0").unwrap();
        let error = Understander::load(dir.path()).err().expect("garbage is refused").to_string();
        assert!(error.contains("rules.yaml"), "{error}");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/understanding/rules.yaml");
        std::fs::copy(shipped, dir.path().join("understanding/rules.yaml")).unwrap();
        std::fs::write(dir.path().join("understanding/intents.yaml"), "greeting: [\"hi\"]\nnot_an_intent: [\"x\"]\n")
            .unwrap();
        std::fs::write(dir.path().join("understanding/signals.yaml"), "{}\n").unwrap();
        let error = Understander::load(dir.path()).err().expect("an unknown intent is refused").to_string();
        assert!(error.contains("intents.yaml"), "{error}");
    }

    #[test]
    fn order_numbers_emails_and_sizes_are_extracted() {
        let u = rules_only().understand("Order #1001 for ava@example.com, size 8.5 please", None);
        assert_eq!(u.order_numbers, ["#1001"]);
        assert_eq!(u.emails, ["ava@example.com"]);
        assert_eq!(u.size.as_deref(), Some("8.5"));
        assert_eq!(order_numbers("order number 1002"), ["#1002"]);
        assert!(order_numbers("I want 2 pairs in 2024").is_empty());
    }
}
