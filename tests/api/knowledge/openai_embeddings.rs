//! `EMBEDDINGS=openai` against a local OpenAI-compatible embeddings endpoint
//! over real HTTP. The mock checks every request as OpenAI would (bearer
//! key, model, a list of non-empty strings, no unknown fields) and answers
//! with word-bucket vectors in which the made-up word "zorblax" means
//! "bonus": only retrieval driven by the endpoint's vectors can connect a
//! question about zorblax to the refunds article, whose store-credit bonus
//! no other article mentions.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use serde_json::{Value, json};

use crate::helpers::*;

const KEY: &str = "sk-test-embeddings-key";
const MODEL: &str = "test-embedding-model";
const DIMENSION: usize = 256;

#[derive(Default)]
struct Seen {
    /// Every accepted request's inputs.
    inputs: Vec<Vec<String>>,
    /// What OpenAI would have refused.
    violations: Vec<String>,
    /// Answer every request as OpenAI answers a revoked key.
    revoked: bool,
    /// Answer with one embedding fewer than asked for.
    short: bool,
}

struct MockOpenAi {
    base_url: String,
    seen: Arc<Mutex<Seen>>,
}

impl MockOpenAi {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let router = Router::new().route("/v1/embeddings", post(embeddings)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base_url, seen }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Json<Value>) {
    let body = json!({ "error": { "message": message, "type": "invalid_request_error", "param": null, "code": code } });
    (status, Json(body))
}

async fn embeddings(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().unwrap();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    if authorization != Some(&format!("Bearer {KEY}")) {
        seen.violations.push(format!("authorization: {authorization:?}"));
        return error(StatusCode::UNAUTHORIZED, "invalid_api_key", "Incorrect API key provided.");
    }
    if seen.revoked {
        return error(StatusCode::UNAUTHORIZED, "invalid_api_key", "Incorrect API key provided.");
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            seen.violations.push(format!("body is not JSON: {e}"));
            return error(StatusCode::BAD_REQUEST, "invalid_json", "We could not parse the JSON body.");
        }
    };
    let known = ["model", "input", "encoding_format", "dimensions", "user"];
    let fields = request.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let inputs: Option<Vec<String>> = request["input"]
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)).collect());
    let problem = if request["model"] != MODEL {
        Some(format!("model: {}", request["model"]))
    } else if let Some(field) = fields.iter().find(|f| !known.contains(&f.as_str())) {
        Some(format!("unknown field `{field}`"))
    } else if !matches!(request.get("encoding_format").and_then(Value::as_str), None | Some("float")) {
        Some(format!("encoding_format: {}", request["encoding_format"]))
    } else if inputs.as_ref().is_none_or(|i| i.is_empty() || i.len() > 2048) {
        Some(format!("input is not 1-2048 non-empty strings: {}", request["input"]))
    } else {
        None
    };
    if let Some(problem) = problem {
        seen.violations.push(problem.clone());
        return error(StatusCode::BAD_REQUEST, "invalid_request", &problem);
    }
    let mut inputs = inputs.unwrap_or_default();
    if seen.short {
        inputs.pop();
    }
    // Answered last to first: the index field, not the order, says which is which.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| json!({ "object": "embedding", "index": index, "embedding": vector(text) }))
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    seen.inputs.push(inputs);
    let usage = json!({ "prompt_tokens": tokens, "total_tokens": tokens });
    (StatusCode::OK, Json(json!({ "object": "list", "data": data, "model": MODEL, "usage": usage })))
}

/// Word counts in hashed buckets, not normalised (the service must cope).
fn vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.0; DIMENSION];
    for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = if word == "zorblax" { "bonus" } else { word };
        let bucket = word.bytes().fold(2_166_136_261_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
        v[bucket as usize % DIMENSION] += 1.0;
    }
    v
}

fn openai_settings(base_url: &str) -> [(&str, &str); 4] {
    [("EMBEDDINGS", "openai"), ("OPENAI_BASE_URL", base_url), ("OPENAI_API_KEY", KEY), ("EMBEDDING_MODEL", MODEL)]
}

#[tokio::test]
async fn knowledge_is_embedded_and_searched_through_an_openai_compatible_endpoint() {
    let mock = MockOpenAi::start().await;
    let app = spawn_app_with(Backend::Sqlite, &openai_settings(&mock.base_url)).await;
    let chunks = {
        let seen = mock.seen();
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        seen.inputs.iter().map(Vec::len).sum::<usize>()
    };
    assert!(chunks > 8, "the probe and every chunk of the 8 articles were embedded: {chunks}");
    let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["retrieval"], "hybrid");

    let results = app.kb_search("what is zorblax").await;
    assert_eq!(results[0]["article_id"], "refunds", "{results:#?}");
    assert!(results[0]["similarity"].as_f64().is_some_and(|s| s > 0.0), "{results:#?}");
    assert_eq!(mock.seen().inputs.last().unwrap(), &vec!["what is zorblax".to_owned()]);

    // An edit is embedded through the endpoint too, and found by meaning.
    let article = json!({ "id": "loyalty", "title": "Trail club", "body": "Members collect zorblax on every order." });
    let (status, body) = app.admin_send(reqwest::Method::POST, "/v1/admin/kb/articles", Some(article)).await;
    assert_eq!(status, 201, "{body}");
    assert!(mock.seen().inputs.iter().flatten().any(|t| t.contains("Members collect zorblax")));
    assert!(mock.seen().violations.is_empty(), "{:?}", mock.seen().violations);
}

#[tokio::test]
async fn a_failing_endpoint_degrades_answers_to_lexical_search_instead_of_failing_them() {
    let mock = MockOpenAi::start().await;
    let app = spawn_app_with(Backend::Sqlite, &openai_settings(&mock.base_url)).await;
    mock.seen().revoked = true;

    let results = app.kb_search("How long does a refund take to reach my card?").await;
    assert_eq!(results[0]["article_id"], "refunds", "{results:#?}");
    assert!(results[0]["similarity"].is_null(), "no vectors this time: {results:#?}");
    let (mut chat, _) = app.guest().await;
    let frames = chat.ask("m1", "How long does a refund take to reach my card?").await;
    assert_eq!(only(&frames, "message")["citations"][0]["article_id"], "refunds", "{frames:#?}");
}

#[tokio::test]
async fn an_endpoint_down_at_start_leaves_the_service_answering_and_is_taken_up_when_it_returns() {
    let mock = MockOpenAi::start().await;
    mock.seen().revoked = true;
    let app = spawn_app_with(Backend::Sqlite, &openai_settings(&mock.base_url)).await;

    // Not ready (a model was asked for), but customers are answered.
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!((ready["failing"].clone(), ready["retrieval"].as_str()), (json!(["model"]), Some("lexical")));
    let results = app.kb_search("How long does a refund take to reach my card?").await;
    assert_eq!(results[0]["article_id"], "refunds", "{results:#?}");

    mock.seen().revoked = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
        if ready["status"] == "ready" {
            assert_eq!(ready["retrieval"], "hybrid");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the model was never taken up: {ready}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.kb_search("what is zorblax").await[0]["article_id"], "refunds");
}

#[tokio::test]
async fn an_endpoint_answering_with_the_wrong_number_of_vectors_is_not_trusted() {
    let mock = MockOpenAi::start().await;
    let app = spawn_app_with(Backend::Sqlite, &openai_settings(&mock.base_url)).await;
    mock.seen().short = true;

    // Nothing is matched to the wrong input: the question falls back to words.
    let results = app.kb_search("what is zorblax").await;
    assert!(results.iter().all(|r| r["similarity"].is_null()), "{results:#?}");
    let results = app.kb_search("How long does a refund take to reach my card?").await;
    assert_eq!(results[0]["article_id"], "refunds", "{results:#?}");
}
