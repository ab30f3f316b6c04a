//! Typed settings, read once from the environment and validated at start-up
//! (PROTOCOL.md §1). An invalid value stops start-up with one line that names
//! the setting; secrets live in [`Secret`] so they never reach a log.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use crate::http::client_addr::TrustedProxies;

/// A value that must never be printed: `Debug` and `Display` show a mask.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value; grep for it to audit where secrets go.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind_addr: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub knowledge_dir: PathBuf,
    pub prompts_dir: PathBuf,
    /// Days from delivery a return may be started in: the store's policy,
    /// applied to a signed-in customer's own orders (keep it in step with
    /// the returns article).
    pub return_window_days: i64,
    /// `None` means the process made up a random secret: tokens signed by the
    /// store cannot verify, which start-up warns about.
    pub identity_jwt_secret: Option<Secret>,
    /// RS256/ES256 keys of the store's backend, as a JWKS document.
    pub identity_jwks_url: Option<String>,
    pub identity_jwt_issuer: Option<String>,
    pub identity_jwt_audience: Option<String>,
    /// `None` disables the admin API.
    pub admin_token: Option<Secret>,
    /// `None`: the built-in demo store.
    pub shopify: Option<ShopifySettings>,
    /// Verifies `X-Shopify-Hmac-Sha256`; `None` refuses every webhook.
    pub shopify_webhook_secret: Option<Secret>,
    /// Verifies Shopify App Proxy signatures; defaults to the webhook secret
    /// (both are the app's client secret).
    pub shopify_app_proxy_secret: Option<Secret>,
    pub chat: ChatLimits,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Requests per minute from one client address to the App Proxy route
    /// and `/readyz` (`HTTP_REQUESTS_PER_MINUTE_PER_ADDRESS`).
    pub http_requests_per_minute_per_address: u32,
    /// The same for the webhook routes, which Shopify sends in bursts from a
    /// few addresses (`WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS`).
    pub webhook_requests_per_minute_per_address: u32,
    /// How long sessions and order verifications last, and how guessing is limited.
    pub sessions: SessionLimits,
    /// How knowledge is embedded for retrieval (`EMBEDDINGS`).
    pub embeddings: EmbeddingsMode,
    /// A local model's directory; `None`: the default model under `DATA_DIR`.
    pub embedding_model_dir: Option<PathBuf>,
    /// At most this many messages share one pass of the local model
    /// (`EMBEDDING_MAX_BATCH`; 1 reads each alone).
    pub embedding_max_batch: usize,
    /// The model `EMBEDDINGS=openai` asks for (`EMBEDDING_MODEL`).
    pub embedding_model: String,
    /// An OpenAI-compatible API (`OPENAI_BASE_URL`, default OpenAI's own).
    pub openai_base_url: String,
    pub openai_api_key: Option<Secret>,
    /// A Qdrant server; `None`: the embedded index under `DATA_DIR`.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<Secret>,
    /// `None` (no `INTERCOM_TOKEN`): escalations wait in the built-in queue.
    pub intercom: Option<IntercomSettings>,
    /// Verifies `X-Hub-Signature` on Intercom webhooks; `None` refuses them all.
    pub intercom_client_secret: Option<Secret>,
}

/// The Intercom workspace escalations are handed to.
#[derive(Debug, Clone)]
pub struct IntercomSettings {
    pub token: Secret,
    /// `https://api.intercom.io`, or the EU/AU region's.
    pub api_url: String,
    /// Sent as `Intercom-Version`; request bodies follow that version.
    pub api_version: String,
    /// The admin that authors notes and assignments; `None`: the token's own (`GET /me`).
    pub admin_id: Option<String>,
    /// Team ids by escalation reason (`INTERCOM_TEAM_ROUTES`).
    pub team_routes: TeamRoutes,
    /// One HTTP attempt's limit (`INTERCOM_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Deliveries of one outbox job before it is dead-lettered (`INTERCOM_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The first retry waits about this long, doubling after (`INTERCOM_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// A delivery not finished in this long is taken over by another worker (`INTERCOM_LEASE_MS`).
    pub lease: Duration,
}

/// `sensitive_topic=123,human_requested=456,default=789`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamRoutes {
    pub by_reason: Vec<(String, String)>,
    pub default: Option<String>,
}

impl TeamRoutes {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut routes = TeamRoutes::default();
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((reason, team)) = pair.split_once('=').map(|(r, t)| (r.trim(), t.trim())) else {
                return Err(format!("`{pair}` is not reason=team_id"));
            };
            if reason.is_empty() || team.is_empty() || !team.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{pair}` is not reason=team_id with a numeric team id"));
            }
            if reason == "default" {
                routes.default = Some(team.to_owned());
            } else {
                routes.by_reason.push((reason.to_owned(), team.to_owned()));
            }
        }
        Ok(routes)
    }

    /// The team for an escalation reason, else the default team.
    pub fn team_for(&self, reason: &str) -> Option<&str> {
        self.by_reason.iter().find(|(r, _)| r == reason).map(|(_, t)| t.as_str()).or(self.default.as_deref())
    }
}

/// Abuse limits of the chat gateway.
#[derive(Debug, Clone)]
pub struct ChatLimits {
    /// Open sockets at once; more are refused with 503.
    pub max_connections: usize,
    /// Open sockets from one client address; more are refused with 429.
    pub max_connections_per_address: usize,
    /// Of `max_connections`, how many may be sockets that have not said
    /// `hello` yet, so sockets that never do cannot fill the service.
    pub max_pending_hello: usize,
    /// A socket that has not said `hello` in this long is closed.
    pub hello_timeout: Duration,
    /// `Origin`s a WebSocket upgrade may come from; `None`: any.
    pub allowed_origins: Option<Vec<String>>,
    /// Customer frames per minute on one connection.
    pub messages_per_minute: u32,
    /// Customer frames per minute from one IP address, all its connections together.
    pub messages_per_minute_per_ip: u32,
    /// A socket that sends no customer frame (pings do not count) for this long is closed.
    pub idle_timeout: Duration,
}

/// How long what a customer proved lasts, and how verification guessing is limited.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// A session without a frame for this long is not resumed.
    pub idle_timeout: Duration,
    /// A session older than this is not resumed, however active.
    pub max_age: Duration,
    /// An order-verified scope lapses this long after verifying.
    pub order_verified_ttl: Duration,
    /// Failed verifications per minute across the service before verification is locked for everyone.
    pub verify_failures_per_minute: usize,
    /// Keys (connections, orders, emails, addresses) the failed-attempts table holds at most.
    pub verify_max_tracked_keys: usize,
}

/// A real store's Admin API, present when `SHOPIFY_SHOP` is set.
#[derive(Debug, Clone)]
pub struct ShopifySettings {
    pub shop: String,
    pub admin_token: Secret,
    pub api_version: String,
    /// `https://<shop>/admin/api/<version>/graphql.json` unless overridden.
    pub admin_api_url: String,
    /// One HTTP attempt's limit (`SHOPIFY_TIMEOUT_MS`).
    pub timeout: std::time::Duration,
    /// How long a read stays cached when no webhook touches it (`SHOPIFY_CACHE_TTL_SECS`).
    pub cache_ttl: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingsMode {
    /// A sentence model run in-process.
    Local,
    /// The embeddings endpoint of `OPENAI_BASE_URL`.
    OpenAi,
    /// Lexical retrieval only.
    None,
}

/// The shortest HS256 secret accepted: as long as the SHA-256 output.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_OPENAI_EMBEDDING_MODEL: &str = "text-embedding-3-small";

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can configure an app without
    /// touching the (process-global) environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let bind_addr = match get("BIND_ADDR") {
            Some(v) => v.parse().map_err(|_| ConfigError {
                name: "BIND_ADDR",
                reason: format!("`{v}` is not a socket address like 127.0.0.1:8080"),
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let public_url = match get("PUBLIC_URL") {
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => v.trim_end_matches('/').to_owned(),
            Some(_) => {
                return Err(ConfigError { name: "PUBLIC_URL", reason: "must start with http:// or https://".into() });
            }
            None => format!("http://{bind_addr}"),
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |v| parse_positive(name, &v))
        };
        let chat = ChatLimits {
            max_connections: number("CHAT_MAX_CONNECTIONS", 10_000)? as usize,
            messages_per_minute: number("CHAT_MESSAGES_PER_MINUTE", 20)? as u32,
            messages_per_minute_per_ip: number("CHAT_MESSAGES_PER_MINUTE_PER_IP", 120)? as u32,
            idle_timeout: Duration::from_secs(number("CHAT_IDLE_TIMEOUT_SECS", 900)?),
            max_connections_per_address: number("CHAT_MAX_CONNECTIONS_PER_ADDRESS", 20)? as usize,
            max_pending_hello: number("CHAT_MAX_PENDING_HELLO", 500)? as usize,
            hello_timeout: Duration::from_secs(number("CHAT_HELLO_TIMEOUT_SECS", 10)?),
            allowed_origins: get("CHAT_ALLOWED_ORIGINS").map(|v| parse_origins(&v)).transpose()?,
        };
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|v| TrustedProxies::parse(&v))
            .transpose()
            .map_err(|reason| ConfigError { name: "TRUSTED_PROXIES", reason })?
            .unwrap_or_default();
        let sessions = SessionLimits {
            idle_timeout: Duration::from_secs(number("SESSION_IDLE_TIMEOUT_SECS", 24 * 60 * 60)?),
            max_age: Duration::from_secs(number("SESSION_MAX_AGE_SECS", 30 * 24 * 60 * 60)?),
            order_verified_ttl: Duration::from_secs(number("ORDER_VERIFIED_TTL_SECS", 60 * 60)?),
            verify_failures_per_minute: number("VERIFY_FAILURES_PER_MINUTE", 60)? as usize,
            verify_max_tracked_keys: number("VERIFY_MAX_TRACKED_KEYS", 100_000)? as usize,
        };
        let identity_jwks_url = match get("IDENTITY_JWKS_URL") {
            Some(v) if v.starts_with("https://") || v.starts_with("http://") => Some(v),
            Some(_) => {
                return Err(ConfigError { name: "IDENTITY_JWKS_URL", reason: "must be an http(s) URL".into() });
            }
            None => None,
        };

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = match get("DATABASE_URL") {
            Some(v) if v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://") => v,
            Some(_) => {
                return Err(ConfigError {
                    name: "DATABASE_URL",
                    reason: "must start with sqlite:// or postgres://".into(),
                });
            }
            None => format!("sqlite://{}/assistant.db", data_dir.display()),
        };

        let settings = Self {
            bind_addr,
            public_url,
            database_url,
            knowledge_dir: PathBuf::from(get("KNOWLEDGE_DIR").unwrap_or_else(|| "knowledge".into())),
            prompts_dir: PathBuf::from(get("PROMPTS_DIR").unwrap_or_else(|| "prompts".into())),
            return_window_days: number("RETURN_WINDOW_DAYS", 30)? as i64,
            identity_jwt_secret: match get("IDENTITY_JWT_SECRET") {
                // RFC 7518 §3.2: an HS256 key shorter than the hash can be brute-forced offline.
                Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                    return Err(ConfigError {
                        name: "IDENTITY_JWT_SECRET",
                        reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                    });
                }
                other => other.map(Secret::new),
            },
            identity_jwks_url,
            identity_jwt_issuer: get("IDENTITY_JWT_ISSUER"),
            identity_jwt_audience: get("IDENTITY_JWT_AUDIENCE"),
            admin_token: match get("ADMIN_TOKEN") {
                Some(t) if t.len() < 16 => {
                    return Err(ConfigError { name: "ADMIN_TOKEN", reason: "must be at least 16 characters".into() });
                }
                other => other.map(Secret::new),
            },
            shopify: shopify_settings(&get)?,
            shopify_webhook_secret: get("SHOPIFY_WEBHOOK_SECRET").map(Secret::new),
            shopify_app_proxy_secret: get("SHOPIFY_APP_PROXY_SECRET")
                .or_else(|| get("SHOPIFY_WEBHOOK_SECRET"))
                .map(Secret::new),
            chat,
            trusted_proxies,
            http_requests_per_minute_per_address: number("HTTP_REQUESTS_PER_MINUTE_PER_ADDRESS", 300)? as u32,
            webhook_requests_per_minute_per_address: number("WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS", 3000)? as u32,
            sessions,
            embeddings: match get("EMBEDDINGS").as_deref() {
                None | Some("local") => EmbeddingsMode::Local,
                Some("openai") => EmbeddingsMode::OpenAi,
                Some("none") => EmbeddingsMode::None,
                Some(other) => {
                    return Err(ConfigError {
                        name: "EMBEDDINGS",
                        reason: format!("`{other}` is not one of local, openai, none"),
                    });
                }
            },
            embedding_model_dir: get("EMBEDDING_MODEL_DIR").map(PathBuf::from),
            embedding_max_batch: number("EMBEDDING_MAX_BATCH", 32)? as usize,
            embedding_model: get("EMBEDDING_MODEL").unwrap_or_else(|| DEFAULT_OPENAI_EMBEDDING_MODEL.to_owned()),
            openai_base_url: match get("OPENAI_BASE_URL") {
                Some(v) if v.starts_with("http://") || v.starts_with("https://") => v.trim_end_matches('/').to_owned(),
                Some(_) => {
                    return Err(ConfigError {
                        name: "OPENAI_BASE_URL",
                        reason: "must start with http:// or https://".into(),
                    });
                }
                None => DEFAULT_OPENAI_BASE_URL.to_owned(),
            },
            openai_api_key: get("OPENAI_API_KEY").map(Secret::new),
            qdrant_url: match get("QDRANT_URL") {
                Some(v) if v.starts_with("http://") || v.starts_with("https://") => Some(v),
                Some(_) => {
                    return Err(ConfigError {
                        name: "QDRANT_URL",
                        reason: "must start with http:// or https://".into(),
                    });
                }
                None => None,
            },
            qdrant_api_key: get("QDRANT_API_KEY").map(Secret::new),
            intercom: intercom_settings(&get)?,
            intercom_client_secret: get("INTERCOM_CLIENT_SECRET").map(Secret::new),
            data_dir,
        };
        let openai_unreachable =
            settings.openai_api_key.is_none() && settings.openai_base_url == DEFAULT_OPENAI_BASE_URL;
        if settings.embeddings == EmbeddingsMode::OpenAi && openai_unreachable {
            return Err(ConfigError {
                name: "EMBEDDINGS",
                reason: "`openai` needs OPENAI_API_KEY, or OPENAI_BASE_URL for a server without keys".into(),
            });
        }
        Ok(settings)
    }
}

/// `https://shop.example, https://www.shop.example`: each a scheme and host
/// (and port), compared as browsers send `Origin`: lower case, no path.
fn parse_origins(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        if !host.is_some_and(|h| !h.is_empty() && !h.contains('/')) {
            return Err(ConfigError {
                name: "CHAT_ALLOWED_ORIGINS",
                reason: format!("`{origin}` is not an origin like https://shop.example"),
            });
        }
        origins.push(origin);
    }
    Ok(origins)
}

fn parse_positive<T: FromStr + PartialOrd + Default>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    match value.trim().parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(ConfigError { name, reason: format!("`{value}` is not a positive whole number") }),
    }
}

fn shopify_settings(get: &impl Fn(&str) -> Option<String>) -> Result<Option<ShopifySettings>, ConfigError> {
    let Some(shop) = get("SHOPIFY_SHOP") else {
        return Ok(None);
    };
    let shop = shop.trim().to_ascii_lowercase();
    if !shop.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') || !shop.contains('.') {
        return Err(ConfigError { name: "SHOPIFY_SHOP", reason: "must be a host like yourstore.myshopify.com".into() });
    }
    let admin_token = get("SHOPIFY_ADMIN_TOKEN").map(Secret::new).ok_or_else(|| ConfigError {
        name: "SHOPIFY_ADMIN_TOKEN",
        reason: "is required when SHOPIFY_SHOP is set (the custom app's Admin API access token)".into(),
    })?;
    let api_version = get("SHOPIFY_API_VERSION").unwrap_or_else(|| "2025-01".into());
    let well_formed = api_version == "unstable"
        || (api_version.len() == 7
            && api_version.as_bytes()[4] == b'-'
            && api_version.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit()));
    if !well_formed {
        return Err(ConfigError { name: "SHOPIFY_API_VERSION", reason: "must look like 2025-01".into() });
    }
    let admin_api_url = match get("SHOPIFY_ADMIN_API_URL") {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
        Some(_) => {
            return Err(ConfigError {
                name: "SHOPIFY_ADMIN_API_URL",
                reason: "must start with http:// or https://".into(),
            });
        }
        None => format!("https://{shop}/admin/api/{api_version}/graphql.json"),
    };
    let millis = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError { name, reason: format!("`{v}` is not a positive whole number") }),
        }
    };
    Ok(Some(ShopifySettings {
        shop,
        admin_token,
        api_version,
        admin_api_url,
        timeout: std::time::Duration::from_millis(millis("SHOPIFY_TIMEOUT_MS", 10_000)?),
        cache_ttl: std::time::Duration::from_secs(millis("SHOPIFY_CACHE_TTL_SECS", 30)?),
    }))
}

fn http_url(name: &'static str, value: String) -> Result<String, ConfigError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError { name, reason: "must start with http:// or https://".into() })
    }
}

fn intercom_settings(get: &impl Fn(&str) -> Option<String>) -> Result<Option<IntercomSettings>, ConfigError> {
    let Some(token) = get("INTERCOM_TOKEN") else {
        return Ok(None);
    };
    let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
        get(name).map_or(Ok(default), |v| parse_positive(name, &v))
    };
    let api_version = get("INTERCOM_API_VERSION").unwrap_or_else(|| "2.16".into());
    if !api_version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && api_version != "Unstable"
    {
        return Err(ConfigError { name: "INTERCOM_API_VERSION", reason: "must look like 2.16".into() });
    }
    let admin_id = get("INTERCOM_ADMIN_ID");
    if admin_id.as_deref().is_some_and(|id| !id.bytes().all(|b| b.is_ascii_digit())) {
        return Err(ConfigError { name: "INTERCOM_ADMIN_ID", reason: "must be a numeric admin id".into() });
    }
    let team_routes = get("INTERCOM_TEAM_ROUTES")
        .map(|v| TeamRoutes::parse(&v))
        .transpose()
        .map_err(|reason| ConfigError { name: "INTERCOM_TEAM_ROUTES", reason })?
        .unwrap_or_default();
    Ok(Some(IntercomSettings {
        token: Secret::new(token),
        api_url: http_url(
            "INTERCOM_API_URL",
            get("INTERCOM_API_URL").unwrap_or_else(|| "https://api.intercom.io".into()),
        )?,
        api_version,
        admin_id,
        team_routes,
        timeout: Duration::from_millis(number("INTERCOM_TIMEOUT_MS", 10_000)?),
        max_attempts: number("INTERCOM_MAX_ATTEMPTS", 10)? as u32,
        retry_base: Duration::from_millis(number("INTERCOM_RETRY_BASE_MS", 2_000)?),
        lease: Duration::from_millis(number("INTERCOM_LEASE_MS", 60_000)?),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_need_no_settings() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://data/assistant.db");
        assert!(s.admin_token.is_none());
    }

    #[test]
    fn an_invalid_setting_is_named_in_the_error() {
        let err = settings(&[("BIND_ADDR", "not-an-address")]).unwrap_err();
        assert_eq!(err.name, "BIND_ADDR");
        assert!(err.to_string().starts_with("invalid setting BIND_ADDR"));
        assert_eq!(settings(&[("DATABASE_URL", "mysql://x")]).unwrap_err().name, "DATABASE_URL");
        assert_eq!(settings(&[("CHAT_MAX_CONNECTIONS", "0")]).unwrap_err().name, "CHAT_MAX_CONNECTIONS");
        assert_eq!(settings(&[("CHAT_IDLE_TIMEOUT_SECS", "soon")]).unwrap_err().name, "CHAT_IDLE_TIMEOUT_SECS");
        assert_eq!(settings(&[("EMBEDDINGS", "magic")]).unwrap_err().name, "EMBEDDINGS");
        assert_eq!(settings(&[("EMBEDDINGS", "openai")]).unwrap_err().name, "EMBEDDINGS");
        assert!(settings(&[("EMBEDDINGS", "openai"), ("OPENAI_API_KEY", "sk-test")]).is_ok());
        assert_eq!(settings(&[("OPENAI_BASE_URL", "localhost:11434")]).unwrap_err().name, "OPENAI_BASE_URL");
        assert_eq!(settings(&[("QDRANT_URL", "qdrant:6334")]).unwrap_err().name, "QDRANT_URL");
    }

    #[test]
    fn a_short_jwt_secret_is_refused_by_name() {
        let err = settings(&[("IDENTITY_JWT_SECRET", "secret")]).unwrap_err();
        assert_eq!(err.name, "IDENTITY_JWT_SECRET");
        assert!(!err.to_string().contains("secret\""), "the value itself is not echoed");
        let long = "x".repeat(MIN_JWT_SECRET_BYTES);
        assert!(settings(&[("IDENTITY_JWT_SECRET", &long)]).unwrap().identity_jwt_secret.is_some());
    }

    #[test]
    fn a_real_store_needs_its_admin_token() {
        assert!(settings(&[]).unwrap().shopify.is_none());
        let err = settings(&[("SHOPIFY_SHOP", "demo.myshopify.com")]).unwrap_err();
        assert_eq!(err.name, "SHOPIFY_ADMIN_TOKEN");
        let s = settings(&[("SHOPIFY_SHOP", "demo.myshopify.com"), ("SHOPIFY_ADMIN_TOKEN", "shpat_x")]).unwrap();
        let shopify = s.shopify.unwrap();
        assert_eq!(shopify.admin_api_url, "https://demo.myshopify.com/admin/api/2025-01/graphql.json");
        assert!(!format!("{shopify:?}").contains("shpat_x"));
        let bad = [("SHOPIFY_SHOP", "demo.myshopify.com"), ("SHOPIFY_ADMIN_TOKEN", "t"), ("SHOPIFY_API_VERSION", "v1")];
        assert_eq!(settings(&bad).unwrap_err().name, "SHOPIFY_API_VERSION");
    }

    #[test]
    fn intercom_is_off_without_a_token_and_routes_teams_by_reason() {
        assert!(settings(&[]).unwrap().intercom.is_none());
        let s = settings(&[
            ("INTERCOM_TOKEN", "dG9rOmludGVyY29t"),
            ("INTERCOM_TEAM_ROUTES", "sensitive_topic=123, human_requested=456,default=789"),
        ])
        .unwrap();
        let intercom = s.intercom.unwrap();
        assert_eq!(intercom.api_url, "https://api.intercom.io");
        assert_eq!(intercom.api_version, "2.16");
        assert_eq!(intercom.team_routes.team_for("sensitive_topic"), Some("123"));
        assert_eq!(intercom.team_routes.team_for("vip"), Some("789"));
        assert!(!format!("{intercom:?}").contains("dG9rOmludGVyY29t"));
        let bad = [("INTERCOM_TOKEN", "t"), ("INTERCOM_TEAM_ROUTES", "vip")];
        assert_eq!(settings(&bad).unwrap_err().name, "INTERCOM_TEAM_ROUTES");
        assert_eq!(
            settings(&[("INTERCOM_TOKEN", "t"), ("INTERCOM_API_URL", "x")]).unwrap_err().name,
            "INTERCOM_API_URL"
        );
    }

    #[test]
    fn abuse_limits_have_defaults_and_bad_values_are_refused_by_name() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.trusted_proxies, TrustedProxies::default());
        assert_eq!(s.chat.max_connections_per_address, 20);
        assert_eq!(s.chat.max_pending_hello, 500);
        assert_eq!(s.chat.hello_timeout, Duration::from_secs(10));
        assert!(s.chat.allowed_origins.is_none());
        let err = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/40")]).unwrap_err();
        assert_eq!(err.name, "TRUSTED_PROXIES");
        assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
        assert!(settings(&[("TRUSTED_PROXIES", "10.0.0.0/8,::1")]).is_ok());
        let s = settings(&[("CHAT_ALLOWED_ORIGINS", "https://Shop.example/, http://localhost:8080")]).unwrap();
        assert_eq!(s.chat.allowed_origins.unwrap(), ["https://shop.example", "http://localhost:8080"]);
        assert_eq!(settings(&[("CHAT_ALLOWED_ORIGINS", "shop.example")]).unwrap_err().name, "CHAT_ALLOWED_ORIGINS");
        for name in ["CHAT_MAX_CONNECTIONS_PER_ADDRESS", "CHAT_MAX_PENDING_HELLO", "CHAT_HELLO_TIMEOUT_SECS"] {
            assert_eq!(settings(&[(name, "0")]).unwrap_err().name, name);
        }
        assert_eq!(s.embedding_max_batch, 32);
        for name in
            ["HTTP_REQUESTS_PER_MINUTE_PER_ADDRESS", "WEBHOOK_REQUESTS_PER_MINUTE_PER_ADDRESS", "EMBEDDING_MAX_BATCH"]
        {
            assert_eq!(settings(&[(name, "many")]).unwrap_err().name, name);
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = settings(&[("ADMIN_TOKEN", "a-very-secret-admin-token")]).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("a-very-secret"), "{printed}");
    }
}
