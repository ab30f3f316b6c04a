//! Shopify App Proxy signatures: how a store without its own backend proves
//! who is logged in. Shopify signs the proxied request's query string with
//! the app's secret; we check it over the raw query, in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// Requests older (or newer) than this are refused as stale.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

/// Parameters Shopify sets once; a second copy can only come from the visitor's
/// own query string riding along, so its presence refuses the request.
const SINGLE_VALUED: [&str; 5] = ["logged_in_customer_id", "timestamp", "shop", "path_prefix", "signature"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    #[error("the request has no signature")]
    MissingSignature,
    #[error("`{0}` appears more than once")]
    Repeated(&'static str),
    #[error("the signature does not match")]
    BadSignature,
    #[error("the request has no valid timestamp")]
    MissingTimestamp,
    #[error("the request is stale")]
    Stale,
    #[error("the request is for another shop")]
    WrongShop,
    #[error("the customer id is not valid")]
    BadCustomerId,
}

impl ProxyError {
    /// Whether Shopify's signature vouched for the request before it was
    /// refused: only those are worth an audit row (anyone can send garbage).
    pub fn was_signed(&self) -> bool {
        matches!(self, Self::MissingTimestamp | Self::Stale | Self::WrongShop | Self::BadCustomerId)
    }
}

/// A verified App Proxy request.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `None` when no customer is logged in to the storefront.
    pub customer_id: Option<String>,
    pub shop: Option<String>,
    /// Lower-case hex, so case variants of one signature are one signature.
    pub signature: String,
    pub timestamp: i64,
}

/// Verifies `raw_query` (as received, still percent-encoded) at `now`. When
/// `expected_shop` is set, the request must be for that shop.
pub fn verify(
    raw_query: &str,
    secret: &Secret,
    expected_shop: Option<&str>,
    now: i64,
) -> Result<ProxyRequest, ProxyError> {
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    let mut signature = None;
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        let existing = params.iter_mut().find(|(k, _)| *k == key);
        let seen = existing.is_some() || (key == "signature" && signature.is_some());
        if seen && let Some(name) = SINGLE_VALUED.iter().find(|name| **name == key) {
            return Err(ProxyError::Repeated(name));
        }
        match (key.as_ref(), existing) {
            ("signature", _) => signature = Some(value.to_ascii_lowercase()),
            (_, Some((_, values))) => values.push(value.into_owned()),
            (_, None) => params.push((key.into_owned(), vec![value.into_owned()])),
        }
    }
    let signature = signature.ok_or(ProxyError::MissingSignature)?;
    // Shopify's message: each parameter as `key=v1,v2`, those strings sorted,
    // joined with nothing between them.
    let mut pairs: Vec<String> = params.iter().map(|(k, vs)| format!("{k}={}", vs.join(","))).collect();
    pairs.sort_unstable();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(pairs.concat().as_bytes());
    let expected = hex(&mac.finalize().into_bytes());
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return Err(ProxyError::BadSignature);
    }

    let value = |key: &str| params.iter().find(|(k, _)| k == key).and_then(|(_, vs)| vs.first()).cloned();
    let timestamp: i64 = value("timestamp").and_then(|t| t.parse().ok()).ok_or(ProxyError::MissingTimestamp)?;
    if (now - timestamp).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ProxyError::Stale);
    }
    let shop = value("shop");
    if let Some(expected) = expected_shop
        && !shop.as_deref().is_some_and(|shop| shop.eq_ignore_ascii_case(expected))
    {
        return Err(ProxyError::WrongShop);
    }
    let customer_id = match value("logged_in_customer_id").filter(|v| !v.is_empty()) {
        Some(raw) => Some(super::normalize_customer_id(&raw).ok_or(ProxyError::BadCustomerId)?),
        None => None,
    };
    Ok(ProxyRequest { customer_id, shop, signature, timestamp })
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
        let request = verify(DOCUMENTED_QUERY, &secret(), None, 1317327555).unwrap();
        assert_eq!(request.customer_id.as_deref(), Some("1"));
        assert_eq!(request.shop.as_deref(), Some("shop-name.myshopify.com"));
    }

    #[test]
    fn a_changed_parameter_breaks_the_signature() {
        let forged = DOCUMENTED_QUERY.replace("logged_in_customer_id=1", "logged_in_customer_id=2");
        assert_eq!(verify(&forged, &secret(), None, 1317327555), Err(ProxyError::BadSignature));
        assert_eq!(verify(DOCUMENTED_QUERY, &Secret::new("other"), None, 1317327555), Err(ProxyError::BadSignature));
        let unsigned = DOCUMENTED_QUERY.split("&signature").next().unwrap();
        assert_eq!(verify(unsigned, &secret(), None, 1317327555), Err(ProxyError::MissingSignature));
    }

    #[test]
    fn an_old_request_is_stale() {
        assert_eq!(verify(DOCUMENTED_QUERY, &secret(), None, 1317327555 + 3600), Err(ProxyError::Stale));
    }

    /// Signs `query` (without its signature) the way Shopify does, for tests
    /// that need queries Shopify would have produced.
    fn signed(query: &str) -> String {
        let mut pairs: Vec<String> = Vec::new();
        let mut params: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match params.iter_mut().find(|(key, _)| *key == k) {
                Some((_, vs)) => vs.push(v.into_owned()),
                None => params.push((k.into_owned(), vec![v.into_owned()])),
            }
        }
        pairs.extend(params.iter().map(|(k, vs)| format!("{k}={}", vs.join(","))));
        pairs.sort();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"hush").unwrap();
        mac.update(pairs.concat().as_bytes());
        format!("{query}&signature={}", hex(&mac.finalize().into_bytes()))
    }

    #[test]
    fn a_repeated_identity_parameter_refuses_even_a_signed_request() {
        // Shopify would sign both copies joined; the check reads one. Either way
        // the visitor chose a value, so the request is refused before the HMAC.
        let query = signed("shop=s.myshopify.com&logged_in_customer_id=1&logged_in_customer_id=2&timestamp=1317327555");
        assert_eq!(verify(&query, &secret(), None, 1317327555), Err(ProxyError::Repeated("logged_in_customer_id")));
        let query = signed("shop=s.myshopify.com&timestamp=1&timestamp=1317327555");
        assert_eq!(verify(&query, &secret(), None, 1317327555), Err(ProxyError::Repeated("timestamp")));
        let twice = format!("{DOCUMENTED_QUERY}&signature=00");
        assert_eq!(verify(&twice, &secret(), None, 1317327555), Err(ProxyError::Repeated("signature")));
        // Keys Shopify does allow to repeat still verify.
        assert!(verify(DOCUMENTED_QUERY, &secret(), None, 1317327555).is_ok());
    }

    #[test]
    fn the_shop_must_be_ours_when_we_know_it() {
        let ours = Some("shop-name.myshopify.com");
        assert!(verify(DOCUMENTED_QUERY, &secret(), ours, 1317327555).is_ok());
        let theirs = Some("other.myshopify.com");
        assert_eq!(verify(DOCUMENTED_QUERY, &secret(), theirs, 1317327555), Err(ProxyError::WrongShop));
        let no_shop = signed("logged_in_customer_id=1&timestamp=1317327555");
        assert_eq!(verify(&no_shop, &secret(), ours, 1317327555), Err(ProxyError::WrongShop));
    }

    #[test]
    fn the_message_sorts_the_joined_pairs_not_the_keys() {
        // By key `a` comes before `a-b`; as joined strings `a-b=2` comes before
        // `a=1` ('-' is 0x2D, '=' is 0x3D). Shopify sorts the joined strings.
        let query = signed("a-b=2&a=1&timestamp=1317327555");
        assert!(verify(&query, &secret(), None, 1317327555).is_ok());
    }

    #[test]
    fn the_signature_is_kept_in_one_case() {
        let upper = DOCUMENTED_QUERY.replace("4c68c8624d737112c91818c11017d24d", "4C68C8624D737112C91818C11017D24D");
        let request = verify(&upper, &secret(), None, 1317327555).unwrap();
        assert_eq!(request.signature, "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb");
    }
}
