//! Typed settings, read once from the environment and validated at start-up
//! (PROTOCOL.md §1). An invalid value stops start-up with one line that names
//! the setting; secrets live in [`Secret`] so they never reach a log.

use std::{fmt, net::SocketAddr, path::PathBuf};

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
    /// `None` means the process made up a random secret: tokens signed by the
    /// store cannot verify, which start-up warns about.
    pub identity_jwt_secret: Option<Secret>,
    pub identity_jwt_issuer: Option<String>,
    pub identity_jwt_audience: Option<String>,
    /// `None` disables the admin API.
    pub admin_token: Option<Secret>,
    pub shopify_shop: Option<String>,
    /// How knowledge is embedded for retrieval (`EMBEDDINGS`).
    pub embeddings: EmbeddingsMode,
    /// A local model's directory; `None`: the default model under `DATA_DIR`.
    pub embedding_model_dir: Option<PathBuf>,
    /// A Qdrant server; `None`: the embedded index under `DATA_DIR`.
    pub qdrant_url: Option<String>,
    pub qdrant_api_key: Option<Secret>,
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

        Ok(Self {
            bind_addr,
            public_url,
            database_url,
            knowledge_dir: PathBuf::from(get("KNOWLEDGE_DIR").unwrap_or_else(|| "knowledge".into())),
            prompts_dir: PathBuf::from(get("PROMPTS_DIR").unwrap_or_else(|| "prompts".into())),
            identity_jwt_secret: get("IDENTITY_JWT_SECRET").map(Secret::new),
            identity_jwt_issuer: get("IDENTITY_JWT_ISSUER"),
            identity_jwt_audience: get("IDENTITY_JWT_AUDIENCE"),
            admin_token: match get("ADMIN_TOKEN") {
                Some(t) if t.len() < 16 => {
                    return Err(ConfigError { name: "ADMIN_TOKEN", reason: "must be at least 16 characters".into() });
                }
                other => other.map(Secret::new),
            },
            shopify_shop: get("SHOPIFY_SHOP"),
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
        })
    }
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
        assert_eq!(settings(&[("EMBEDDINGS", "magic")]).unwrap_err().name, "EMBEDDINGS");
        assert_eq!(settings(&[("QDRANT_URL", "qdrant:6334")]).unwrap_err().name, "QDRANT_URL");
    }

    #[test]
    fn secrets_never_print() {
        let s = settings(&[("ADMIN_TOKEN", "a-very-secret-admin-token")]).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("a-very-secret"), "{printed}");
    }
}
