//! Shopify App Proxy signatures: how a store without its own backend proves
//! who is logged in. Shopify signs the proxied request's query string with
//! the app's secret; we check it over the raw query, in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// Requests older (or newer) than this are refused as stale.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    #[error("the request has no signature")]
    MissingSignature,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the request has no valid timestamp")]
    MissingTimestamp,
    #[error("the request is stale")]
    Stale,
    #[error("the customer id is not valid")]
    BadCustomerId,
}

/// A verified App Proxy request.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `None` when no customer is logged in to the storefront.
    pub customer_id: Option<String>,
    pub shop: Option<String>,
    pub signature: String,
    pub timestamp: i64,
}

/// Verifies `raw_query` (as received, still percent-encoded) at `now`.
pub fn verify(raw_query: &str, secret: &Secret, now: i64) -> Result<ProxyRequest, ProxyError> {
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    let mut signature = None;
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        if key == "signature" {
            signature = Some(value.into_owned());
            continue;
        }
        match params.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value.into_owned()),
            None => params.push((key.into_owned(), vec![value.into_owned()])),
        }
    }
    let signature = signature.ok_or(ProxyError::MissingSignature)?;
    // Shopify's message: parameters sorted by key, each `key=v1,v2`, joined
    // with nothing between them.
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let message: String = params.iter().map(|(k, vs)| format!("{k}={}", vs.join(","))).collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    if !bool::from(expected.as_bytes().ct_eq(signature.to_ascii_lowercase().as_bytes())) {
        return Err(ProxyError::BadSignature);
    }

    let value = |key: &str| params.iter().find(|(k, _)| k == key).and_then(|(_, vs)| vs.first()).cloned();
    let timestamp: i64 = value("timestamp").and_then(|t| t.parse().ok()).ok_or(ProxyError::MissingTimestamp)?;
    if (now - timestamp).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ProxyError::Stale);
    }
    let customer_id = match value("logged_in_customer_id").filter(|v| !v.is_empty()) {
        Some(raw) => Some(super::normalize_customer_id(&raw).ok_or(ProxyError::BadCustomerId)?),
        None => None,
    };
    Ok(ProxyRequest { customer_id, shop: value("shop"), signature, timestamp })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in Shopify's "Authenticate app proxies" documentation: secret `hush`.
    const DOCUMENTED_QUERY: &str = "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1\
        &path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555\
        &signature=4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb";

    fn secret() -> Secret {
        Secret::new("hush")
    }

    #[test]
    fn shopifys_documented_example_verifies() {
        let request = verify(DOCUMENTED_QUERY, &secret(), 1317327555).unwrap();
        assert_eq!(request.customer_id.as_deref(), Some("1"));
        assert_eq!(request.shop.as_deref(), Some("shop-name.myshopify.com"));
    }

    #[test]
    fn a_changed_parameter_breaks_the_signature() {
        let forged = DOCUMENTED_QUERY.replace("logged_in_customer_id=1", "logged_in_customer_id=2");
        assert_eq!(verify(&forged, &secret(), 1317327555), Err(ProxyError::BadSignature));
        assert_eq!(verify(DOCUMENTED_QUERY, &Secret::new("other"), 1317327555), Err(ProxyError::BadSignature));
        let unsigned = DOCUMENTED_QUERY.split("&signature").next().unwrap();
        assert_eq!(verify(unsigned, &secret(), 1317327555), Err(ProxyError::MissingSignature));
    }

    #[test]
    fn an_old_request_is_stale() {
        assert_eq!(verify(DOCUMENTED_QUERY, &secret(), 1317327555 + 3600), Err(ProxyError::Stale));
    }
}
