//! Messages read lately, by their exact text. Customers repeat each other
//! ("where is my order?", "thanks", "hi"), and a message read before needs
//! no forward pass. Two generations: when the current one fills it becomes
//! the previous one and the older is dropped; a hit in the previous one
//! moves back to the current. A message asked often stays, one asked once
//! ages out: the effect of LRU without its bookkeeping.

use std::{collections::HashMap, sync::Mutex};

use super::MessageEmbedding;

/// Longer messages are rarely repeated word for word (and are likelier to
/// hold an address or an email): they are not kept.
const MAX_TEXT_BYTES: usize = 200;

pub struct Recent {
    generations: Mutex<Generations>,
    per_generation: usize,
}

#[derive(Default)]
struct Generations {
    current: HashMap<String, MessageEmbedding>,
    previous: HashMap<String, MessageEmbedding>,
}

impl Generations {
    fn keep(&mut self, text: String, embedding: MessageEmbedding, per_generation: usize) {
        if self.current.len() >= per_generation {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(text, embedding);
    }
}

impl Recent {
    /// Holds at most `2 × per_generation` messages.
    pub fn new(per_generation: usize) -> Self {
        Self { generations: Mutex::default(), per_generation: per_generation.max(1) }
    }

    pub fn get(&self, text: &str) -> Option<MessageEmbedding> {
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = generations.current.get(text) {
            return Some(found.clone());
        }
        let found = generations.previous.remove(text)?;
        generations.keep(text.to_owned(), found.clone(), self.per_generation);
        Some(found)
    }

    pub fn put(&self, text: &str, embedding: &MessageEmbedding) {
        if text.len() <= MAX_TEXT_BYTES {
            let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            generations.keep(text.to_owned(), embedding.clone(), self.per_generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding(x: f32) -> MessageEmbedding {
        MessageEmbedding { whole: vec![x].into(), sentences: Vec::new() }
    }

    #[test]
    fn a_message_asked_often_stays_and_one_asked_once_ages_out() {
        let recent = Recent::new(2);
        recent.put("where is my order", &embedding(1.0));
        recent.put("hi", &embedding(2.0));
        // The first generation is full: "thanks" starts the next one.
        recent.put("thanks", &embedding(3.0));
        assert_eq!(recent.get("where is my order").map(|e| e.whole[0]), Some(1.0), "moved back to the current");
        // "hi" was never asked again: two generations on it is gone.
        recent.put("bye", &embedding(4.0));
        recent.put("ok", &embedding(5.0));
        assert!(recent.get("hi").is_none());
        assert_eq!(recent.get("where is my order").map(|e| e.whole[0]), Some(1.0));
        assert!(recent.get(&"a long message ".repeat(20)).is_none());
        recent.put(&"a long message ".repeat(20), &embedding(6.0));
        assert!(recent.get(&"a long message ".repeat(20)).is_none(), "long messages are not kept");
    }
}
