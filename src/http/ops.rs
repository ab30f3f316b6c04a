//! Liveness, readiness and metrics for whoever runs the service.

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use crate::app::AppState;
use crate::commerce::Store;
use crate::db::Backend;

/// How long the store's readiness answer is reused. Probes come every few
/// seconds from every balancer and replica; each would be a Shopify Admin
/// API call, spending the store's rate-limit bucket on nothing.
const STORE_READINESS_TTL: Duration = Duration::from_secs(5);

/// The store's last readiness answer and when it was had.
#[derive(Default)]
pub struct StoreReadiness {
    // A tokio mutex, held across the call: probes arriving together wait
    // for one answer instead of each asking the store.
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl StoreReadiness {
    async fn check(&self, store: &dyn Store) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < STORE_READINESS_TTL
        {
            return answer.clone();
        }
        let answer = store.ready().await.map_err(|e| e.to_string());
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let database = app.db.ping().await.map_err(|e| e.to_string());
    let store = app.readiness.check(app.assistant.store()).await;
    let index = if app.knowledge.article_count() == 0 { Err("no articles loaded".to_owned()) } else { Ok(()) };
    let relay = if app.db.backend() == Backend::Postgres && !app.relay_listening.load(Ordering::SeqCst) {
        Err("not listening for other replicas' frames".to_owned())
    } else {
        Ok(())
    };
    let model =
        if app.knowledge.model_missing() { Err("EMBEDDINGS wants a model; none yet".to_owned()) } else { Ok(()) };
    let mut failing = Vec::new();
    let parts = [("database", &database), ("store", &store), ("index", &index), ("model", &model), ("relay", &relay)];
    for (part, result) in parts {
        if let Err(error) = result {
            tracing::warn!(part, %error, "not ready");
            failing.push(part);
        }
    }
    // Lexical only: no model was wanted, or none could be had at start.
    let retrieval = if app.knowledge.dense().is_some() { "hybrid" } else { "lexical" };
    if failing.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready", "retrieval": retrieval })))
    } else {
        let body = json!({ "status": "unavailable", "failing": failing, "retrieval": retrieval });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render())
}
