//! Customer tokens signed by the store's backend (PROTOCOL.md §2).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

use super::{Identity, normalize_customer_id};
use crate::config::Secret;

/// Tokens may live at most this long: a longer-lived token is refused even if
/// its signature is good, so a leaked token cannot be used for weeks.
const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// Clock skew tolerated between the store's backend and us.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not valid: {0}")]
    Invalid(String),
    #[error("token lives longer than 24 hours")]
    TooLongLived,
    #[error("token has no usable customer id")]
    BadSubject,
}

#[derive(Deserialize)]
struct Claims {
    sub: serde_json::Value,
    exp: u64,
    email: Option<String>,
    name: Option<String>,
}

pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn hs256(secret: &Secret, issuer: Option<&str>, audience: Option<&str>) -> Self {
        // Pinning the algorithm list is what refuses `alg: none` and any
        // algorithm-confusion trick: the header cannot choose the algorithm.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self { key: DecodingKey::from_secret(secret.expose().as_bytes()), validation }
    }

    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| TokenError::Invalid(format!("{:?}", e.kind())))?; // the kind only: no token material in logs
        let claims = data.claims;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if claims.exp > now + MAX_LIFETIME_SECS + LEEWAY_SECS {
            return Err(TokenError::TooLongLived);
        }
        let sub = match &claims.sub {
            serde_json::Value::String(s) => normalize_customer_id(s),
            serde_json::Value::Number(n) if n.is_u64() => Some(n.to_string()),
            _ => None,
        }
        .ok_or(TokenError::BadSubject)?;
        Ok(Identity::Verified { customer_id: sub, email: claims.email, name: claims.name })
    }
}
