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
use crate::assistant::{Assistant, TemplateError, Templates, UnderstandError, Understander};
use crate::chat::{ChatService, fanout, gateway, hub::Hub, limits::Guards};
use crate::commerce::{
    Store,
    demo::DemoStore,
    shopify::{ShopifyError, ShopifyStore, webhooks::WebhookIntake},
};
use crate::config::{Secret, Settings};
use crate::db::{Backend, Db};
use crate::handoff::{Escalations, HelpDesk, intercom::Intercom, outbox};
use crate::http::{self, ops::StoreReadiness, rate_limit::PublicLimits};
use crate::identity::{Jwks, TokenVerifier};
use crate::knowledge::{self, KnowledgeBase, KnowledgeError};

/// How long shutdown waits for in-flight turns before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Shared state: cheap handles only, cloned into every request.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub chat: Arc<ChatService>,
    pub assistant: Arc<Assistant>,
    /// Orders, customers and the catalog (the demo store or Shopify).
    pub store: Arc<dyn Store>,
    /// Shopify webhooks stored a batch per commit, then processed.
    pub webhooks: Arc<WebhookIntake>,
    /// Records escalations and queues their delivery.
    pub escalations: Arc<Escalations>,
    /// The help desk escalations go to; `None` without `INTERCOM_TOKEN`.
    pub desk: Option<Arc<dyn HelpDesk>>,
    /// Articles, their versions and retrieval; shared with the assistant.
    pub knowledge: Arc<KnowledgeBase>,
    /// Verifies the store's customer tokens.
    pub tokens: Arc<TokenVerifier>,
    pub metrics: Arc<Metrics>,
    /// Whether this replica hears other replicas' frames (PostgreSQL only).
    pub relay_listening: Arc<AtomicBool>,
    /// Connection cap and rate limits of the chat gateway.
    pub guards: Arc<Guards>,
    /// Per-client rate limits of the App Proxy, webhooks and `/readyz`.
    pub public_limits: Arc<PublicLimits>,
    /// The store's last readiness answer, so `/readyz` does not call Shopify on every probe.
    pub readiness: Arc<StoreReadiness>,
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
    #[error("cannot load the understanding rules and examples: {0}")]
    Understanding(#[from] UnderstandError),
    #[error("cannot open the knowledge base: {0}")]
    Knowledge(#[from] KnowledgeError),
    #[error("cannot set up the Shopify client: {0}")]
    Shopify(#[from] ShopifyError),
    #[error("cannot set up the Intercom client: {0}")]
    Intercom(reqwest::Error),
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
        let understander = Understander::load(&settings.prompts_dir)?;
        let knowledge = Arc::new(knowledge::startup::start(&settings, db.clone()).await?);
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
        let assistant = Arc::new(Assistant::new(
            store.clone(),
            knowledge.clone(),
            templates,
            understander,
            settings.return_window_days,
        ));
        assistant.attach_model(&settings.data_dir).await;

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
        let desk: Option<Arc<dyn HelpDesk>> = match &settings.intercom {
            Some(intercom) => {
                tracing::info!(url = %intercom.api_url, version = %intercom.api_version, "handing escalations to Intercom");
                Some(Arc::new(Intercom::new(intercom).map_err(StartupError::Intercom)?))
            }
            None => {
                tracing::info!("INTERCOM_TOKEN is not set: escalations wait in the built-in queue");
                None
            }
        };
        let routes = settings.intercom.as_ref().map(|i| i.team_routes.clone());
        let escalations = Arc::new(Escalations::new(db.clone(), store.clone(), metrics.clone(), routes));
        let chat = Arc::new(ChatService::new(
            db.clone(),
            Hub::default(),
            assistant.clone(),
            escalations.clone(),
            metrics.clone(),
            settings.sessions.clone(),
        ));
        let listener = TcpListener::bind(settings.bind_addr)
            .await
            .map_err(|source| StartupError::Bind { addr: settings.bind_addr, source })?;
        let guards = Arc::new(Guards::new(&settings.chat));
        let public_limits = Arc::new(PublicLimits::new(&settings));
        let webhooks = Arc::new(WebhookIntake::start(db.clone(), store.clone()));
        let state = AppState {
            settings: Arc::new(settings),
            db,
            chat,
            assistant,
            store,
            webhooks,
            escalations,
            desk,
            knowledge,
            tokens: Arc::new(tokens),
            metrics,
            guards,
            public_limits,
            readiness: Arc::default(),
            relay_listening: Arc::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let router = Router::new()
            .route("/v1/chat", get(gateway::chat))
            .merge(http::ops::router())
            .merge(http::admin::router())
            .merge(http::identity::router())
            .merge(http::intercom::router())
            .merge(http::handoff::router())
            .merge(http::kb::router())
            .merge(http::preview::router())
            .merge(http::site::router())
            .merge(http::shopify::router())
            .layer(axum::middleware::from_fn_with_state(state.clone(), http::rate_limit::enforce))
            .with_state(state.clone());
        http::shopify::resume(&state).await?;
        http::intercom::resume(&state).await?;
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
        let (guards, public_limits) = (state.guards.clone(), state.public_limits.clone());
        let sweeper = shutdown.clone();
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            while sweeper.run_until_cancelled(every_minute.tick()).await.is_some() {
                guards.sweep();
                public_limits.sweep();
            }
        });
        if state.knowledge.model_missing() {
            let (settings, assistant) = (state.settings.clone(), state.assistant.clone());
            let (knowledge, shutdown) = (state.knowledge.clone(), shutdown.clone());
            tokio::spawn(async move {
                knowledge::startup::keep_trying_the_model(settings.as_ref().clone(), knowledge, shutdown).await;
                assistant.attach_model(&settings.data_dir).await;
            });
        }
        if let (Some(desk), Some(intercom)) = (&state.desk, &state.settings.intercom) {
            let worker = outbox::Worker {
                db: state.db.clone(),
                desk: desk.clone(),
                chat: state.chat.clone(),
                owner: state.chat.replica_id().to_owned(),
                max_attempts: intercom.max_attempts,
                retry_base: intercom.retry_base,
                lease: intercom.lease,
                wake: state.escalations.wake_handle(),
                metrics: state.metrics.clone(),
            };
            state.tasks.spawn(worker.run(shutdown.clone()));
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
        // Peer addresses feed the per-client limits (see `http::client_addr`).
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

fn random_secret() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
