//! Phrase rules (`prompts/understanding/rules.yaml`): the whole of
//! understanding without a sentence model, and a second pair of eyes for
//! escalations with one.

use std::{collections::HashMap, path::Path};

use serde::Deserialize;

use super::{Intent, Signal, UnderstandError};
use crate::text::words;

/// How much each phrase that is only a hint counts against a full phrase.
const WEAK_WEIGHT: f64 = 0.5;

#[derive(Debug, Deserialize)]
struct RulesFile {
    signals: HashMap<Signal, Vec<String>>,
    intents: HashMap<Intent, Vec<String>>,
    #[serde(default)]
    weak: HashMap<Intent, Vec<String>>,
    #[serde(default)]
    topics: Topics<String>,
    #[serde(default)]
    conditional: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Topics<P> {
    #[serde(default = "Vec::new")]
    returns: Vec<P>,
}

/// A phrase as words; `None` is the one-word wildcard `*`.
type Phrase = Vec<Option<String>>;

#[derive(Debug)]
pub struct Rules {
    /// In precedence order: the first signal that matches is the one.
    signals: Vec<(Signal, Vec<Phrase>)>,
    intents: Vec<(Intent, Vec<Phrase>)>,
    weak: Vec<(Intent, Vec<Phrase>)>,
    returns: Vec<Phrase>,
    /// "What happens if my parcel arrives damaged?": a question about what
    /// would happen, which the damaged-goods phrases must not read as a
    /// report that it did.
    conditional: Vec<Phrase>,
}

/// A message as lower-case words, ready for phrase matching.
pub struct Normalized(Vec<String>);

impl Normalized {
    pub fn new(text: &str) -> Self {
        Self(words(text).collect())
    }

    pub fn word_count(&self) -> usize {
        self.0.len()
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    fn has(&self, phrase: &Phrase) -> bool {
        let n = phrase.len();
        n > 0
            && self
                .0
                .windows(n)
                .any(|window| window.iter().zip(phrase).all(|(word, want)| want.as_deref().is_none_or(|w| w == word)))
    }
}

impl Rules {
    pub fn load(prompts_dir: &Path) -> Result<Self, UnderstandError> {
        let path = prompts_dir.join("understanding/rules.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| UnderstandError::read(&path, e))?;
        let file: RulesFile = serde_yaml::from_str(&text).map_err(|e| UnderstandError::parse(&path, e))?;
        let compile = |phrases: &[String]| -> Vec<Phrase> {
            phrases
                .iter()
                .map(|p| p.split_whitespace().map(|w| (w != "*").then(|| w.to_lowercase())).collect())
                .collect()
        };
        let signals = Signal::PRECEDENCE
            .iter()
            .map(|s| (*s, file.signals.get(s).map(|p| compile(p)).unwrap_or_default()))
            .collect();
        let mut intents: Vec<(Intent, Vec<Phrase>)> = file.intents.iter().map(|(i, p)| (*i, compile(p))).collect();
        intents.sort_by_key(|(i, _)| *i);
        let weak = file.weak.iter().map(|(i, p)| (*i, compile(p))).collect();
        Ok(Self {
            signals,
            intents,
            weak,
            returns: compile(&file.topics.returns),
            conditional: compile(&file.conditional),
        })
    }

    /// Whether the message is about sending something back.
    pub fn about_returns(&self, normalized: &Normalized) -> bool {
        self.returns.iter().any(|p| normalized.has(p))
    }

    /// The first signal whose phrases the message contains, or shouting.
    pub fn signal(&self, text: &str, normalized: &Normalized) -> Option<Signal> {
        let conditional = || self.conditional.iter().any(|p| normalized.has(p));
        let matched = self.signals.iter().find(|(signal, phrases)| {
            phrases.iter().any(|p| normalized.has(p)) && !(*signal == Signal::DamagedGoods && conditional())
        });
        match matched {
            Some((signal, _)) => Some(*signal),
            None if shouting(text) => Some(Signal::NegativeSentiment),
            None => None,
        }
    }

    /// The intent the phrases point to, with a confidence that grows with
    /// the evidence and with its margin over the runner-up; `Other` when
    /// nothing matches.
    pub fn intent(&self, normalized: &Normalized, has_order_number: bool) -> (Intent, f64) {
        let weight = |p: &Phrase| 1.0 + p.len() as f64 * 0.5;
        let mut scores: Vec<(Intent, f64)> = self
            .intents
            .iter()
            .map(|(intent, phrases)| {
                let strong: f64 = phrases.iter().filter(|p| normalized.has(p)).map(weight).sum();
                let weak = self.weak.iter().filter(|(i, _)| i == intent).flat_map(|(_, ps)| ps);
                (*intent, strong + weak.filter(|p| normalized.has(p)).count() as f64 * WEAK_WEIGHT)
            })
            .collect();
        for (intent, score) in &mut scores {
            // An order number alone is most likely "what about this order?".
            if *intent == Intent::OrderStatus && has_order_number {
                *score += 1.5;
            }
            // "Hi, where is my order?" is not a greeting.
            if *intent == Intent::Greeting && normalized.word_count() > 6 {
                *score *= 0.2;
            }
        }
        scores.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (best, best_score) = scores.first().copied().unwrap_or((Intent::Other, 0.0));
        let runner_up = scores.get(1).map_or(0.0, |s| s.1);
        if best_score == 0.0 {
            return (Intent::Other, 0.2);
        }
        (best, (0.45 + 0.1 * best_score + 0.15 * (best_score - runner_up) / best_score).min(0.95))
    }
}

/// Several exclamation marks or a shouted sentence read as anger.
fn shouting(text: &str) -> bool {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    text.contains("!!!") || (letters.len() >= 12 && upper * 10 >= letters.len() * 8)
}
