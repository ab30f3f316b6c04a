//! Understanding one customer message: intent with a confidence, the signals
//! that force a handoff, and the order numbers and emails it mentions.
//!
//! Deterministic keyword rules: fast, explainable in the admin preview, and
//! the floor a configured model can only improve on.

use serde::Serialize;

use crate::text::words;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    HumanRequested,
    /// Legal threat, chargeback or dispute, fraud, safety, harassment, data deletion.
    SensitiveTopic,
    NegativeSentiment,
    /// Damaged, defective or wrong goods: someone must arrange a remedy.
    DamagedGoods,
}

#[derive(Debug, Clone, Serialize)]
pub struct Understanding {
    pub intent: Intent,
    pub confidence: f64,
    pub signal: Option<Signal>,
    pub order_numbers: Vec<String>,
    pub emails: Vec<String>,
    /// A size the customer asked about (`10`, `8.5`, `m`), for variant lookups.
    pub size: Option<String>,
}

const HUMAN: &[&str] = &[
    "talk to a person",
    "speak to a person",
    "talk to someone",
    "speak to someone",
    "talk to a human",
    "speak to a human",
    "real person",
    "a human",
    "human agent",
    "live agent",
    "an agent",
    "representative",
    "customer service",
    "speak with someone",
    "talk with someone",
    "operator",
    "call me",
    "phone call",
    "speak to a manager",
    "talk to a manager",
];
const SENSITIVE: &[&str] = &[
    "lawyer",
    "attorney",
    "legal action",
    "sue you",
    "suing",
    "court",
    "small claims",
    "chargeback",
    "charge back",
    "dispute",
    "fraud",
    "fraudulent",
    "scam",
    "stolen card",
    "unauthorized charge",
    "unauthorised charge",
    "identity theft",
    "harass",
    "threat",
    "unsafe",
    "injury",
    "injured",
    "hurt me",
    "caught fire",
    "burned",
    "allergic reaction",
    "delete my data",
    "delete my account",
    "erase my data",
    "remove my data",
    "gdpr",
    "ccpa",
    "data protection",
    "police",
];
const NEGATIVE: &[&str] = &[
    "terrible",
    "awful",
    "horrible",
    "worst",
    "ridiculous",
    "unacceptable",
    "furious",
    "angry",
    "disgusted",
    "disgusting",
    "useless",
    "pathetic",
    "never again",
    "fed up",
    "sick of",
    "rip off",
    "ripoff",
    "wtf",
    "incompetent",
    "outraged",
    "livid",
    "disappointed",
    "very unhappy",
    "so annoyed",
];
const DAMAGED: &[&str] = &[
    "damaged",
    "broken",
    "broke",
    "stopped working",
    "doesn't work",
    "does not work",
    "defect",
    "defective",
    "faulty",
    "torn",
    "ripped",
    "came apart",
    "fell apart",
    "wrong item",
    "wrong size sent",
    "missing item",
    "item missing",
    "not what i ordered",
    "arrived wet",
    "leaking",
];

/// Phrases per intent, each with a weight. Longer phrases carry more weight
/// because they are less ambiguous.
const INTENT_PHRASES: &[(Intent, &[&str])] = &[
    (
        Intent::OrderStatus,
        &[
            "where is my order",
            "where's my order",
            "wheres my order",
            "order status",
            "status of my order",
            "track my order",
            "tracking",
            "track",
            "shipped yet",
            "has it shipped",
            "when will my order",
            "when will it arrive",
            "when will i get",
            "not arrived",
            "hasn't arrived",
            "hasnt arrived",
            "still waiting",
            "where is my package",
            "where's my package",
            "where is my parcel",
            "delivery date",
            "estimated delivery",
            "out for delivery",
        ],
    ),
    (
        Intent::OrderChange,
        &[
            "cancel",
            "change my address",
            "change the address",
            "change my shipping address",
            "wrong address",
            "edit my order",
            "change my order",
            "modify my order",
            "update my order",
            "add an item",
            "add to my order",
            "remove an item",
            "change the size on my order",
            "update the shipping address",
        ],
    ),
    (
        Intent::ReturnRefund,
        &[
            "return",
            "refund",
            "exchange",
            "send back",
            "send it back",
            "money back",
            "swap for",
            "returns",
            "refunds",
            "exchanges",
            "store credit",
        ],
    ),
    (
        Intent::ProductQuestion,
        &[
            "in stock",
            "available",
            "availability",
            "do you have",
            "do you sell",
            "do you carry",
            "size",
            "sizes",
            "fit",
            "does it fit",
            "run small",
            "run large",
            "waterproof",
            "colour",
            "color",
            "restock",
            "back in stock",
            "price of",
            "material",
            "compatible",
            "recommend",
        ],
    ),
    (
        Intent::PolicyQuestion,
        &[
            "shipping",
            "ship to",
            "deliver to",
            "policy",
            "warranty",
            "guarantee",
            "payment",
            "pay with",
            "paypal",
            "installments",
            "instalments",
            "klarna",
            "afterpay",
            "shop pay",
            "apple pay",
            "privacy",
            "duties",
            "customs",
            "international",
            "canada",
            "uk",
            "europe",
            "australia",
            "gift card",
            "express",
            "overnight",
            "po box",
            "discount code",
            "promo code",
            "holiday",
        ],
    ),
    (
        Intent::AccountHelp,
        &[
            "account",
            "password",
            "log in",
            "login",
            "sign in",
            "signin",
            "unsubscribe",
            "newsletter",
            "change my email",
            "reset",
        ],
    ),
    (
        Intent::BillingIssue,
        &[
            "charged twice",
            "double charged",
            "charged two times",
            "payment failed",
            "card declined",
            "declined",
            "overcharged",
            "charged me",
            "extra charge",
            "billing",
            "invoice",
            "receipt",
            "charge on my card",
            "chargeback",
            "charge back",
            "dispute",
        ],
    ),
    (
        Intent::Greeting,
        &["hi", "hello", "hey", "good morning", "good afternoon", "good evening", "thanks", "thank you", "howdy"],
    ),
];

/// Words that lean towards an intent without deciding it alone.
const WEAK_PHRASES: &[(Intent, &[&str])] = &[
    (Intent::PolicyQuestion, &["how long does", "how long do", "how long will", "how much does", "do you"]),
    (Intent::ProductQuestion, &["how much is", "how much are"]),
    (Intent::OrderStatus, &["my order", "my package", "my parcel", "my delivery", "arrive", "shipped"]),
    (
        Intent::ProductQuestion,
        &["boots", "jacket", "vest", "socks", "daypack", "backpack", "runners", "shoes", "ridgeline"],
    ),
];
const WEAK_WEIGHT: f64 = 0.5;

pub fn understand(text: &str) -> Understanding {
    // Normalise to single-spaced lower-case words, padded so that phrase
    // matching respects word boundaries.
    let normalized = format!(" {} ", words(text).collect::<Vec<_>>().join(" "));
    let has = |phrase: &str| normalized.contains(&format!(" {phrase} "));
    let any = |phrases: &[&str]| phrases.iter().any(|p| has(p));

    let signal = if any(HUMAN) {
        Some(Signal::HumanRequested)
    } else if any(SENSITIVE) {
        Some(Signal::SensitiveTopic)
    } else if any(NEGATIVE) || shouting(text) {
        Some(Signal::NegativeSentiment)
    } else if any(DAMAGED) {
        Some(Signal::DamagedGoods)
    } else {
        None
    };

    let order_numbers = order_numbers(text);
    let mut scores: Vec<(Intent, f64)> = INTENT_PHRASES
        .iter()
        .map(|(intent, phrases)| {
            let score = phrases.iter().filter(|p| has(p)).map(|p| 1.0 + p.split(' ').count() as f64 * 0.5).sum::<f64>();
            let weak = WEAK_PHRASES.iter().filter(|(i, _)| i == intent).flat_map(|(_, ps)| ps.iter());
            (*intent, score + weak.filter(|p| has(p)).count() as f64 * WEAK_WEIGHT)
        })
        .collect();
    if !order_numbers.is_empty() {
        // An order number alone is most likely "what about this order?".
        scores.iter_mut().filter(|(i, _)| *i == Intent::OrderStatus).for_each(|(_, s)| *s += 1.5);
    }
    let word_count = normalized.split_whitespace().count();
    if word_count > 6 {
        // "Hi, where is my order?" is not a greeting.
        scores.iter_mut().filter(|(i, _)| *i == Intent::Greeting).for_each(|(_, s)| *s *= 0.2);
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, best_score) = scores[0];
    let runner_up = scores[1].1;

    let (intent, confidence) = match signal {
        Some(Signal::HumanRequested) => (Intent::HumanRequest, 0.95),
        Some(Signal::NegativeSentiment) => (Intent::Complaint, 0.85),
        Some(Signal::SensitiveTopic) if best_score == 0.0 || best == Intent::Greeting => (Intent::Complaint, 0.7),
        _ if best_score == 0.0 => (Intent::Other, 0.2),
        // Confidence grows with evidence and with the margin over the runner-up.
        _ => (best, (0.45 + 0.1 * best_score + 0.15 * (best_score - runner_up) / best_score).min(0.95)),
    };

    Understanding {
        intent,
        confidence: (confidence * 100.0).round() / 100.0,
        signal,
        order_numbers,
        emails: emails(text),
        size: size(&normalized),
    }
}

/// Several exclamation marks or a shouted sentence read as anger.
fn shouting(text: &str) -> bool {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    text.contains("!!!") || (letters.len() >= 12 && upper * 10 >= letters.len() * 8)
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
fn size(normalized: &str) -> Option<String> {
    let tokens: Vec<&str> = normalized.split_whitespace().collect();
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

    fn intent(text: &str) -> Intent {
        understand(text).intent
    }

    #[test]
    fn everyday_questions_get_the_right_intent() {
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
    fn signals_that_force_a_person_are_seen() {
        assert_eq!(understand("can I talk to a person").signal, Some(Signal::HumanRequested));
        assert_eq!(understand("I'll file a chargeback with my bank").signal, Some(Signal::SensitiveTopic));
        assert_eq!(understand("this is ridiculous, worst service ever").signal, Some(Signal::NegativeSentiment));
        assert_eq!(understand("WHERE IS MY ORDER I PAID TWO WEEKS AGO").signal, Some(Signal::NegativeSentiment));
        assert_eq!(understand("my boots arrived damaged").signal, Some(Signal::DamagedGoods));
        assert_eq!(understand("where is my order").signal, None);
    }

    #[test]
    fn order_numbers_emails_and_sizes_are_extracted() {
        let u = understand("Order #1001 for ava@example.com, size 8.5 please");
        assert_eq!(u.order_numbers, ["#1001"]);
        assert_eq!(u.emails, ["ava@example.com"]);
        assert_eq!(u.size.as_deref(), Some("8.5"));
        assert_eq!(understand("order number 1002").order_numbers, ["#1002"]);
        assert!(understand("I want 2 pairs in 2024").order_numbers.is_empty());
    }
}
