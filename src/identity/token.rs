//! Customer tokens signed by the store's backend (PROTOCOL.md §2): HS256 with
//! `IDENTITY_JWT_SECRET`, or RS256/ES256 with keys from `IDENTITY_JWKS_URL`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use super::{Identity, jwks::Jwks, normalize_customer_id};
use crate::config::Secret;

/// Tokens may live at most this long: a longer-lived token is refused even if
/// its signature is good, so a leaked token cannot be used for weeks.
pub const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// Clock skew tolerated between the store's backend and us.
const LEEWAY_SECS: u64 = 30;
/// The `sub` of tokens the assistant signs for App Proxy visitors who are not logged in.
const GUEST_SUBJECT: &str = "guest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not valid: {0}")]
    Invalid(String),
    #[error("token lives longer than 24 hours")]
    TooLongLived,
    #[error("token has no usable customer id")]
    BadSubject,
    #[error("token algorithm {0} is not accepted here")]
    Algorithm(String),
    #[error("no key for this token: {0}")]
    UnknownKey(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: serde_json::Value,
    exp: u64,
    email: Option<String>,
    name: Option<String>,
}

/// The claims of a token the assistant signs itself (App Proxy).
#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

pub struct TokenVerifier {
    /// Verifies HS256 tokens: the store's shared secret (or, unset, a random
    /// one, so only tokens the assistant issued itself verify). Never a JWKS
    /// key: that is what stops a token "signed" with a public key as an HMAC secret.
    hmac: Secret,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl TokenVerifier {
    pub fn new(hmac: Secret, jwks: Option<Jwks>, issuer: Option<String>, audience: Option<String>) -> Self {
        Self { hmac, jwks, issuer, audience }
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        // One algorithm per validation: the header cannot choose another.
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        // `alg: none` and unknown algorithms fail right here: the header
        // does not parse into an algorithm we know.
        let header = decode_header(token).map_err(|e| TokenError::Invalid(format!("{:?}", e.kind())))?;
        let key = match header.alg {
            Algorithm::HS256 => DecodingKey::from_secret(self.hmac.expose().as_bytes()),
            Algorithm::RS256 | Algorithm::ES256 => match &self.jwks {
                Some(jwks) => jwks.key(header.kid.as_deref(), header.alg).await?,
                None => return Err(TokenError::Algorithm(format!("{:?}", header.alg))),
            },
            other => return Err(TokenError::Algorithm(format!("{other:?}"))),
        };
        let claims = decode::<Claims>(token, &key, &self.validation(header.alg))
            // The error kind only: no token material reaches a log.
            .map_err(|e| TokenError::Invalid(format!("{:?}", e.kind())))?
            .claims;
        if claims.exp > now() + MAX_LIFETIME_SECS + LEEWAY_SECS {
            return Err(TokenError::TooLongLived);
        }
        if claims.sub == GUEST_SUBJECT {
            return Ok(Identity::Guest);
        }
        let customer_id = match &claims.sub {
            serde_json::Value::String(s) => normalize_customer_id(s),
            serde_json::Value::Number(n) if n.is_u64() => Some(n.to_string()),
            _ => None,
        }
        .ok_or(TokenError::BadSubject)?;
        Ok(Identity::Verified { customer_id, email: claims.email, name: claims.name })
    }

    /// Signs a short-lived token for `customer_id` (or a guest) with the HS256
    /// secret, so tokens the assistant issues verify like the store's own.
    pub fn issue(&self, customer_id: Option<&str>, lifetime_secs: u64) -> (String, u64) {
        let (iat, exp) = (now(), now() + lifetime_secs.min(MAX_LIFETIME_SECS));
        let claims = IssuedClaims {
            sub: customer_id.unwrap_or(GUEST_SUBJECT),
            iat,
            exp,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        let key = EncodingKey::from_secret(self.hmac.expose().as_bytes());
        let token = encode(&Header::new(Algorithm::HS256), &claims, &key).expect("HS256 signing cannot fail");
        (token, exp)
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
