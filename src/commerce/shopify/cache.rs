//! Brief caching of Shopify reads, keyed per identity (customer id) or per
//! order name, and dropped as soon as a webhook touches what an entry holds.
//!
//! Every entry carries tags (`order:<id>`, `order:#1001`, `customer:<id>`,
//! `products`); a webhook's [`Touched`] names tags, and every entry holding
//! one goes. Scope checks run on what comes out of the cache, never before
//! it, so sharing an order entry between identities reveals nothing.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::commerce::Touched;

/// Past this many entries, expired ones are swept before inserting.
const SWEEP_AT: usize = 10_000;

pub struct Cache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry<V>>>,
    /// Bumped by every invalidation, so a read that started before a webhook
    /// arrived cannot put its (now stale) answer back afterwards.
    generation: AtomicU64,
}

struct Entry<V> {
    value: V,
    tags: Vec<String>,
    expires: Instant,
}

impl<V: Clone> Cache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()), generation: AtomicU64::new(0) }
    }

    /// A fresh value for `key`, if cached.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.lock();
        entries.get(key).filter(|e| e.expires > Instant::now()).map(|e| e.value.clone())
    }

    /// The generation to pass to [`Cache::put`] for a read starting now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `value` unless an invalidation happened since `generation`.
    pub fn put(&self, generation: u64, key: String, value: V, tags: Vec<String>) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let now = Instant::now();
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, e| e.expires > now);
        }
        entries.insert(key, Entry { value, tags, expires: now + self.ttl });
    }

    pub fn invalidate(&self, touched: &Touched) {
        let tags = tags_of(touched);
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| !e.tags.iter().any(|t| tags.contains(t)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<V>>> {
        // A panic mid-insert leaves at worst a missing entry: keep serving.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub fn order_tag(id_or_number: &str) -> String {
    format!("order:{id_or_number}")
}

pub fn customer_tag(id: &str) -> String {
    format!("customer:{id}")
}

pub const PRODUCTS_TAG: &str = "products";

fn tags_of(touched: &Touched) -> Vec<String> {
    match touched {
        Touched::Order { id, number, customer_id } => {
            let mut tags = vec![order_tag(id)];
            tags.extend(number.as_deref().map(order_tag));
            tags.extend(customer_id.as_deref().map(customer_tag));
            tags
        }
        Touched::Customer { id } => vec![customer_tag(id)],
        Touched::Products => vec![PRODUCTS_TAG.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_drops_every_entry_that_holds_what_it_touched() {
        let cache = Cache::new(Duration::from_secs(60));
        let g = cache.generation();
        cache.put(g, "orders:7".into(), 1, vec![customer_tag("7"), order_tag("55"), order_tag("#1001")]);
        cache.put(g, "name:#1002".into(), 2, vec![order_tag("56"), order_tag("#1002")]);
        cache.invalidate(&Touched::Order { id: "55".into(), number: None, customer_id: None });
        assert_eq!(cache.get("orders:7"), None);
        assert_eq!(cache.get("name:#1002"), Some(2));
    }

    #[test]
    fn a_read_that_began_before_an_invalidation_is_not_cached() {
        let cache = Cache::new(Duration::from_secs(60));
        let before = cache.generation();
        cache.invalidate(&Touched::Products);
        cache.put(before, "products:boots".into(), 1, vec![PRODUCTS_TAG.into()]);
        assert_eq!(cache.get("products:boots"), None);
    }
}
