//! Typed settings, read once from the environment and validated at start-up
//! (PROTOCOL.md §1). An invalid value stops start-up with one line that names
//! the setting; secrets live in [`Secret`] so they never reach a log.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

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
    /// How knowledge is embedded for retrieval (`EMBEDDINGS`).
    pub embeddings: EmbeddingsMode,
    /// A local model's directory; `None`: the default model under `DATA_DIR`.
    pub embedding_model_dir: Option<PathBuf>,
    /// The model `EMBEDDINGS=openai` asks for (`EMBEDDING_MODEL`).
    pub embedding_model: String,
    /// An OpenAI-compatible API (`OPENAI_BASE_URL`, default OpenAI's own).
    pub openai_base_url: String,
    pub openai_api_key: Option<Secret>,
    /// A Qdrant server; `None`: the embedded index under `DATA_DIR`.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<Secret>,
}

/// Abuse limits of the chat gateway.
#[derive(Debug, Clone)]
pub struct ChatLimits {
    /// Open sockets at once; more are refused with 503.
    pub max_connections: usize,
    /// Customer frames per minute on one connection.
    pub messages_per_minute: u32,
    /// Customer frames per minute from one IP address, all its connections together.
    pub messages_per_minute_per_ip: u32,
    /// A socket that sends nothing for this long is closed.
    pub idle_timeout: Duration,
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
            identity_jwt_secret: get("IDENTITY_JWT_SECRET").map(Secret::new),
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
    fn secrets_never_print() {
        let s = settings(&[("ADMIN_TOKEN", "a-very-secret-admin-token")]).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("a-very-secret"), "{printed}");
    }
}
