//! Assembly: settings in, a listening service out. `Application::build`
//! binds the listener first (port 0 in tests) and reports the real address.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use axum::{Router, routing::get};
use rand::RngCore;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::analytics::Metrics;
use crate::assistant::{Assistant, TemplateError, Templates};
use crate::chat::{ChatService, fanout, gateway, hub::Hub, limits::Guards};
use crate::commerce::{
    Store,
    demo::DemoStore,
    shopify::{ShopifyError, ShopifyStore, webhooks},
};
use crate::config::{EmbeddingsMode, Secret, Settings};
use crate::db::{Backend, Db};
use crate::http;
use crate::identity::{Jwks, TokenVerifier};
use crate::knowledge::{
    DenseRetrieval, KnowledgeBase, KnowledgeError,
    embeddings::{Embedder, fetch},
    index::{VectorIndex, edge::EdgeIndex, remote::RemoteIndex},
};

/// How long shutdown waits for in-flight turns before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Shared state: cheap handles only, cloned into every request.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub chat: Arc<ChatService>,
    pub assistant: Arc<Assistant>,
    /// Articles, their versions and retrieval; shared with the assistant.
    pub knowledge: Arc<KnowledgeBase>,
    /// Verifies the store's customer tokens.
    pub tokens: Arc<TokenVerifier>,
    pub metrics: Arc<Metrics>,
    /// Whether this replica hears other replicas' frames (PostgreSQL only).
    pub relay_listening: Arc<AtomicBool>,
    /// Connection cap and rate limits of the chat gateway.
    pub guards: Arc<Guards>,
    /// Cancelled when the service begins to stop; sockets watch it.
    pub shutdown: CancellationToken,
    /// Every socket and turn, so shutdown can wait for them to finish.
    pub tasks: TaskTracker,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot load reply templates: {0}")]
    Templates(#[from] TemplateError),
    #[error("cannot open the knowledge base: {0}")]
    Knowledge(#[from] KnowledgeError),
    #[error("cannot use the Qdrant server at QDRANT_URL: {0}")]
    Qdrant(#[from] crate::knowledge::index::IndexError),
    #[error("cannot set up the Shopify client: {0}")]
    Shopify(#[from] ShopifyError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let db = Db::connect(&settings.database_url).await?;
        db.migrate().await?;

        let templates = Templates::load(&settings.prompts_dir)?;
        let knowledge = Arc::new(open_knowledge(&settings, db.clone(), false).await?);
        let report = knowledge.import_dir(&settings.knowledge_dir, &indicatif::ProgressBar::hidden()).await?;
        for problem in &report.skipped {
            tracing::warn!(file = %problem.file, reason = %problem.reason, "skipped a knowledge-base file");
        }
        tracing::info!(
            created = report.created.len(),
            updated = report.updated.len(),
            unchanged = report.unchanged,
            skipped = report.skipped.len(),
            "knowledge base imported"
        );
        let store: Arc<dyn Store> = match &settings.shopify {
            Some(shopify) => {
                tracing::info!(shop = %shopify.shop, url = %shopify.admin_api_url, "using the Shopify Admin API");
                if settings.shopify_webhook_secret.is_none() {
                    tracing::warn!(
                        "SHOPIFY_WEBHOOK_SECRET is not set: webhooks are refused, so reads stay cached for their TTL"
                    );
                }
                Arc::new(ShopifyStore::new(shopify)?)
            }
            None => Arc::new(DemoStore::default()),
        };
        let assistant = Arc::new(Assistant::new(store, knowledge.clone(), templates));

        let jwt_secret = settings.identity_jwt_secret.clone().unwrap_or_else(|| {
            tracing::warn!(
                "IDENTITY_JWT_SECRET is not set: using a random secret, so no store-signed customer token will verify"
            );
            random_secret()
        });
        let tokens = TokenVerifier::new(
            jwt_secret,
            settings.identity_jwks_url.clone().map(Jwks::new),
            settings.identity_jwt_issuer.clone(),
            settings.identity_jwt_audience.clone(),
        );
        if settings.admin_token.is_none() {
            tracing::warn!("ADMIN_TOKEN is not set: the admin API is disabled");
        }

        let metrics = Arc::new(Metrics::default());
        let chat = Arc::new(ChatService::new(db.clone(), Hub::default(), assistant.clone(), metrics.clone()));
        let listener = TcpListener::bind(settings.bind_addr)
            .await
            .map_err(|source| StartupError::Bind { addr: settings.bind_addr, source })?;
        let guards = Arc::new(Guards::new(&settings.chat));
        let state = AppState {
            settings: Arc::new(settings),
            db,
            chat,
            assistant,
            knowledge,
            tokens: Arc::new(tokens),
            metrics,
            guards,
            relay_listening: Arc::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let router = Router::new()
            .route("/v1/chat", get(gateway::chat))
            .merge(http::ops::router())
            .merge(http::admin::router())
            .merge(http::identity::router())
            .merge(http::kb::router())
            .merge(http::site::router())
            .merge(webhooks::router())
            .with_state(state.clone());
        webhooks::resume(&state).await?;
        Ok(Self { listener, router, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// A token that stops the service gracefully when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until `shutdown_token()` is cancelled, then stops accepting,
    /// lets sockets finish their in-flight turns, and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self { listener, router, state } = self;
        let shutdown = state.shutdown.clone();
        let guards = state.guards.clone();
        let sweeper = shutdown.clone();
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            while sweeper.run_until_cancelled(every_minute.tick()).await.is_some() {
                guards.sweep();
            }
        });
        if state.knowledge.model_missing() {
            let knowledge = state.knowledge.clone();
            tokio::spawn(keep_trying_the_model(state.settings.as_ref().clone(), knowledge, shutdown.clone()));
        }
        if state.db.backend() == Backend::Postgres {
            let relay = fanout::relay(
                state.settings.database_url.clone(),
                state.chat.replica_id().to_owned(),
                state.db.clone(),
                state.chat.hub().clone(),
                state.knowledge.clone(),
                state.relay_listening.clone(),
                shutdown.clone(),
            );
            tokio::spawn(relay);
        }
        // Peer addresses feed the per-IP rate limit.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
        state.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, state.tasks.wait()).await.is_err() {
            tracing::warn!("shutdown grace period over; abandoning unfinished turns");
        }
        state.db.close().await;
        Ok(())
    }
}

/// The knowledge base over `db`, with dense retrieval when `EMBEDDINGS`
/// asks for it and a model is at hand (else lexical, and not ready until
/// [`keep_trying_the_model`] brings one). `progress` draws bars (CLI).
pub async fn open_knowledge(settings: &Settings, db: Db, progress: bool) -> Result<KnowledgeBase, StartupError> {
    let dense = match embedder(settings, progress).await {
        None => None,
        Some(Ok(embedder)) => Some(DenseRetrieval::new(Arc::new(embedder), vector_index(settings)?)),
        Some(Err(reason)) => {
            tracing::warn!("no embedding model ({reason}): knowledge retrieval is lexical only until one can be had");
            None
        }
    };
    let bar = if progress { crate::knowledge::cli::bar("indexing") } else { indicatif::ProgressBar::hidden() };
    let model_wanted = settings.embeddings != EmbeddingsMode::None;
    Ok(KnowledgeBase::open(db, dense, model_wanted, &bar).await?)
}

/// The model `EMBEDDINGS` asks for: `None` if it asks for none.
async fn embedder(settings: &Settings, progress: bool) -> Option<Result<Embedder, String>> {
    match settings.embeddings {
        EmbeddingsMode::None => None,
        EmbeddingsMode::OpenAi => {
            let (base_url, model) = (&settings.openai_base_url, &settings.embedding_model);
            let connected = Embedder::connect_openai(base_url, settings.openai_api_key.as_ref(), model).await;
            Some(connected.map_err(|e| format!("{model} at {base_url}: {e}")))
        }
        EmbeddingsMode::Local => Some(load_local_model(settings, progress).await),
    }
}

fn vector_index(settings: &Settings) -> Result<Arc<dyn VectorIndex>, StartupError> {
    Ok(match &settings.qdrant_url {
        Some(url) => Arc::new(RemoteIndex::connect(url, settings.qdrant_api_key.as_ref())?),
        None => Arc::new(EdgeIndex::new(settings.data_dir.join("index"))),
    })
}

/// A model that could not be had at start (an endpoint down, a download
/// failed) is tried again, backing off to once a minute, until it is in
/// service; `/readyz` says `model` until then.
async fn keep_trying_the_model(settings: Settings, knowledge: Arc<KnowledgeBase>, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(1);
    while knowledge.model_missing() && shutdown.run_until_cancelled(tokio::time::sleep(wait)).await.is_some() {
        wait = (wait * 2).min(Duration::from_secs(60));
        let attached = match embedder(&settings, false).await {
            Some(Ok(embedder)) => match vector_index(&settings) {
                Ok(index) => knowledge
                    .attach_dense(DenseRetrieval::new(Arc::new(embedder), index), &indicatif::ProgressBar::hidden())
                    .await
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            },
            Some(Err(reason)) => Err(reason),
            None => return,
        };
        match attached {
            Ok(()) => tracing::info!("the embedding model is in service: retrieval is hybrid"),
            // Start-up already warned once; a line a minute would drown the log.
            Err(reason) => tracing::debug!(retry_in = ?wait, "still no embedding model ({reason})"),
        }
    }
}

/// The local model from `EMBEDDING_MODEL_DIR`, or the default one under
/// `DATA_DIR`, fetched there once.
async fn load_local_model(settings: &Settings, progress: bool) -> Result<Embedder, String> {
    let dir = match &settings.embedding_model_dir {
        Some(dir) => dir.clone(),
        None => {
            let dir = fetch::default_model_dir(&settings.data_dir);
            fetch::ensure_model(&dir, progress).await.map_err(|e| e.to_string())?;
            dir
        }
    };
    let loaded = tokio::task::spawn_blocking(move || Embedder::load(&dir)).await.map_err(|e| e.to_string())?;
    loaded.map_err(|e| e.to_string())
}

fn random_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
