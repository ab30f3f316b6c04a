//! The store backend's public keys, fetched from `IDENTITY_JWKS_URL`, cached,
//! and refreshed when a token names a key we do not know (key rotation).

use std::{
    num::NonZeroU32,
    sync::RwLock,
    time::{Duration, Instant},
};

use governor::{DefaultDirectRateLimiter, Quota};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet},
};

use super::TokenError;

/// Keys are refetched after this long even without an unknown `kid`.
const MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Unknown `kid`s refetch the keys at most this often (per minute, all
/// tokens together), so made-up key ids cannot make us hammer the store's
/// backend, while a real key rotation is picked up at once.
const REFRESHES_PER_MINUTE: u32 = 10;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Key>,
    fetched_at: Option<Instant>,
}

pub struct Jwks {
    url: String,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    /// One refresh at a time; others wait for it and reuse its result.
    refreshing: tokio::sync::Mutex<()>,
    refresh_budget: DefaultDirectRateLimiter,
}

impl Jwks {
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default();
        let budget = Quota::per_minute(NonZeroU32::new(REFRESHES_PER_MINUTE).unwrap_or(NonZeroU32::MIN));
        Self {
            url,
            http,
            cache: RwLock::default(),
            refreshing: tokio::sync::Mutex::new(()),
            refresh_budget: DefaultDirectRateLimiter::direct(budget),
        }
    }

    /// The key for a token's `kid` and `alg`; the key's own algorithm must
    /// match the header's, so an RSA key never verifies an ES256 claim.
    pub async fn key(&self, kid: Option<&str>, algorithm: Algorithm) -> Result<DecodingKey, TokenError> {
        let fetched_at = self.cache.read().unwrap_or_else(|e| e.into_inner()).fetched_at;
        let stale = fetched_at.is_none_or(|t| t.elapsed() > MAX_AGE);
        if !stale && let Some(key) = self.lookup(kid, algorithm) {
            return Ok(key);
        }
        if stale || self.refresh_budget.check().is_ok() {
            self.refresh(fetched_at).await?;
        }
        self.lookup(kid, algorithm).ok_or_else(|| TokenError::UnknownKey(kid.unwrap_or("(no kid)").to_owned()))
    }

    fn lookup(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<DecodingKey> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let mut candidates = cache.keys.iter().filter(|k| k.algorithm == algorithm);
        match kid {
            Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)).map(|k| k.key.clone()),
            // Without a kid, only an unambiguous key will do.
            None => {
                let first = candidates.next()?;
                candidates.next().is_none().then(|| first.key.clone())
            }
        }
    }

    #[tracing::instrument(skip(self), fields(url = %self.url))]
    async fn refresh(&self, seen: Option<Instant>) -> Result<(), TokenError> {
        let _guard = self.refreshing.lock().await;
        if self.cache.read().unwrap_or_else(|e| e.into_inner()).fetched_at != seen {
            return Ok(()); // another caller refreshed while we waited
        }
        let unavailable = |e: reqwest::Error| TokenError::UnknownKey(format!("JWKS unavailable: {e}"));
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let keys: Vec<Key> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let algorithm = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(Key { kid: jwk.common.key_id.clone(), algorithm, key })
            })
            .collect();
        tracing::info!(keys = keys.len(), "fetched JWKS");
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Cache { keys, fetched_at: Some(Instant::now()) };
        Ok(())
    }
}
