//! The knowledge base as operators and customers meet it: editing through
//! the admin API, importing files, and retrieval that finds the right
//! passage even when the question shares none of its words.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_databases;

mod openai_embeddings;

const REFUND_QUESTION: &str = "How long does a refund take to reach my card?";

impl TestApp {
    async fn admin_send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN);
        request = request.header("X-Admin-Name", "dana");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn kb_search(&self, query: &str) -> Vec<Value> {
        let (status, body) =
            self.admin_send(reqwest::Method::POST, "/v1/admin/kb/search", Some(json!({ "query": query }))).await;
        assert_eq!(status, 200, "{body}");
        body["results"].as_array().unwrap().clone()
    }
}

fn reply_text(frames: &[Value]) -> String {
    only(frames, "message")["text"].as_str().unwrap().to_owned()
}

on_both_databases!(an_edited_article_changes_the_very_next_answer, edit_changes_answer);
async fn edit_changes_answer(backend: Backend) {
    let Some(app) = spawn_app_with_model(backend, &[]).await else { return };
    let (mut chat, _) = app.guest().await;
    let first = reply_text(&chat.ask("m1", REFUND_QUESTION).await);
    assert!(first.contains("5–10 business days"), "{first}");

    let (_, article) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles/refunds", None).await;
    let body = article["body"].as_str().unwrap().replace("**5–10 business days**", "**1–2 business days**");
    let edit = json!({ "body": body, "version": article["version"] });
    let (status, updated) =
        app.admin_send(reqwest::Method::PUT, "/v1/admin/kb/articles/refunds", Some(edit.clone())).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], article["version"].as_i64().unwrap() + 1);

    let frames = chat.ask("m2", REFUND_QUESTION).await;
    assert!(reply_text(&frames).contains("1–2 business days"), "{frames:#?}");
    assert!(!reply_text(&frames).contains("5–10 business days"));
    assert_eq!(only(&frames, "message")["citations"][0]["article_id"], "refunds");

    // The history says who changed what; a stale edit is refused, not merged.
    let (_, article) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles/refunds", None).await;
    let latest = &article["versions"][0];
    assert_eq!((latest["author"].as_str(), latest["changes"].clone()), (Some("dana"), json!(["body"])));
    assert_eq!(article["versions"][1]["author"], "import");
    let (status, body) = app.admin_send(reqwest::Method::PUT, "/v1/admin/kb/articles/refunds", Some(edit)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));
}

on_both_databases!(drafts_stay_hidden_until_published_and_deleted_articles_disappear, article_lifecycle);
async fn article_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let new = json!({
        "title": "Gift wrapping",
        "body": "## Can you gift wrap my order?\nYes: add gift wrapping at checkout for $5 per item, with a handwritten card.",
        "tags": ["gifts"],
        "status": "draft",
    });
    let (status, created) = app.admin_send(reqwest::Method::POST, "/v1/admin/kb/articles", Some(new.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["id"].as_str(), created["version"].as_i64()), (Some("gift-wrapping"), Some(1)));
    let (status, _) = app.admin_send(reqwest::Method::POST, "/v1/admin/kb/articles", Some(new)).await;
    assert_eq!(status, 409, "the same id twice is a conflict");

    let ids = |results: &[Value]| results.iter().map(|r| r["article_id"].as_str().unwrap().to_owned()).collect();
    let found: Vec<String> = ids(&app.kb_search("can you gift wrap a present").await);
    assert!(!found.contains(&"gift-wrapping".to_owned()), "a draft is not searchable: {found:?}");

    let publish = Some(json!({ "status": "published" }));
    let (status, _) = app.admin_send(reqwest::Method::PUT, "/v1/admin/kb/articles/gift-wrapping", publish).await;
    assert_eq!(status, 200);
    let (mut chat, _) = app.guest().await;
    let frames = chat.ask("m1", "can you gift wrap a present?").await;
    assert_eq!(only(&frames, "message")["citations"][0]["article_id"], "gift-wrapping", "{frames:#?}");
    assert!(reply_text(&frames).contains("$5 per item"));

    let (_, list) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles", None).await;
    assert_eq!(list["articles"].as_array().unwrap().len(), 9, "eight imported, one created: {list}");
    let response =
        app.http.delete(app.url("/v1/admin/kb/articles/gift-wrapping")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let found: Vec<String> = ids(&app.kb_search("can you gift wrap a present").await);
    assert!(!found.contains(&"gift-wrapping".to_owned()), "{found:?}");
    let (status, _) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles/gift-wrapping", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_edits_get_a_clear_error_and_change_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    for (body, expected) in [
        (json!({ "title": "", "body": "x" }), "title"),
        (json!({ "title": "X", "body": "   " }), "body"),
        (json!({ "title": "X", "body": "y", "status": "live" }), "status"),
        (json!({ "title": "X", "body": "y", "url": "javascript:alert(1)" }), "url"),
        (json!({ "id": "../etc/passwd", "title": "X", "body": "y" }), "id"),
        (json!({ "title": 5 }), "field"),
        (json!({ "title": "X", "body": "Hours.\n<!-- customers ask:\n- when\n## Phone\nCall." }), "never closed"),
    ] {
        let (status, error) = app.admin_send(reqwest::Method::POST, "/v1/admin/kb/articles", Some(body)).await;
        assert_eq!(status, 400, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(expected), "{error}");
    }
    let response = app
        .http
        .post(app.url("/v1/admin/kb/articles"))
        .bearer_auth(ADMIN_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let unauthorised = app.http.get(app.url("/v1/admin/kb/articles")).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    let (_, list) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles", None).await;
    assert_eq!(list["articles"].as_array().unwrap().len(), 8);
}

/// Runs `storefront-assistant kb import` as an operator would.
fn kb_import(knowledge: &Path, database_url: &str, data_dir: &Path) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_storefront-assistant"))
        .args(["kb", "import"])
        .env("KNOWLEDGE_DIR", knowledge)
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("EMBEDDINGS", "none")
        .output()
        .expect("run the CLI");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

on_both_databases!(import_is_idempotent_reports_bad_files_and_keeps_api_edits, import_rules);
async fn import_rules(backend: Backend) {
    let data = tempfile::tempdir().unwrap();
    let knowledge = data.path().join("knowledge");
    std::fs::create_dir(&knowledge).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    for name in ["refunds.md", "shipping.md"] {
        std::fs::copy(format!("{root}/knowledge/{name}"), knowledge.join(name)).unwrap();
    }
    std::fs::write(knowledge.join("no-front-matter.md"), "Just text.").unwrap();
    std::fs::write(knowledge.join("empty.md"), "---\ntitle: Empty\n---\n").unwrap();
    std::fs::write(knowledge.join("binary.md"), b"---\ntitle: Bin\n---\n\0\x01\x02").unwrap();
    std::fs::write(knowledge.join("huge.md"), format!("---\ntitle: Huge\n---\n{}", "a".repeat(600 * 1024))).unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}/kb.db", data.path().display()),
        Backend::Postgres => fresh_postgres_database().await,
    };

    let first = kb_import(&knowledge, &database_url, data.path());
    assert!(first.contains("2 new, 0 updated, 0 unchanged, 4 skipped"), "{first}");
    for bad in ["no-front-matter.md", "empty.md", "binary.md", "huge.md"] {
        assert!(first.contains(&format!("skipped {bad}: ")), "{bad} is named: {first}");
    }
    let again = kb_import(&knowledge, &database_url, data.path());
    assert!(again.contains("0 new, 0 updated, 2 unchanged"), "{again}");

    // An edit through the API survives imports of the unchanged file...
    let vars = [
        ("KNOWLEDGE_DIR", knowledge.to_str().unwrap()),
        ("DATABASE_URL", database_url.as_str()),
        ("EMBEDDINGS", "none"),
    ];
    let app = spawn_app_with(backend, &vars).await;
    let edit = Some(json!({ "title": "Refunds (edited)" }));
    let (status, _) = app.admin_send(reqwest::Method::PUT, "/v1/admin/kb/articles/refunds", edit).await;
    assert_eq!(status, 200);
    let again = kb_import(&knowledge, &database_url, data.path());
    assert!(again.contains("0 updated, 2 unchanged"), "{again}");
    let (_, article) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles/refunds", None).await;
    assert_eq!(article["title"], "Refunds (edited)");

    // ...until the file itself changes: then the file wins.
    let path = knowledge.join("refunds.md");
    let text = std::fs::read_to_string(&path).unwrap().replace("title: Refunds", "title: Refunds and credits");
    std::fs::write(&path, text).unwrap();
    let changed = kb_import(&knowledge, &database_url, data.path());
    assert!(changed.contains("0 new, 1 updated, 1 unchanged"), "{changed}");
    let (_, article) = app.admin_send(reqwest::Method::GET, "/v1/admin/kb/articles/refunds", None).await;
    assert_eq!(article["title"], "Refunds and credits");
    assert_eq!(article["versions"][0]["author"], "import");
}

#[tokio::test]
async fn a_question_the_operator_teaches_a_section_is_answered_from_it() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    const QUESTION: &str = "could i pop round to watch you make the boots";
    const ANSWER: &str = "Saturdays from 10am to 4pm";
    let section = "Our Portland workshop welcomes visitors on Saturdays from 10am to 4pm; no booking needed.";
    let article = json!({
        "title": "Workshop visits",
        "body": format!("## Can I visit your workshop?\n{section}"),
        "status": "published",
    });
    let (status, created) = app.admin_send(reqwest::Method::POST, "/v1/admin/kb/articles", Some(article)).await;
    assert_eq!(status, 201, "{created}");
    let (mut chat, _) = app.guest().await;
    let before = chat.ask("m1", QUESTION).await;
    assert!(!reply_text(&before).contains(ANSWER), "the section shares too little with the question: {before:#?}");

    // The operator adds the customer's words to the section that answers them.
    let taught = format!("## Can I visit your workshop?\n<!-- customers ask:\n- {QUESTION}\n-->\n{section}");
    let edit = json!({ "body": taught, "version": created["version"] });
    let (status, body) =
        app.admin_send(reqwest::Method::PUT, "/v1/admin/kb/articles/workshop-visits", Some(edit)).await;
    assert_eq!(status, 200, "{body}");

    let (mut next_customer, _) = app.guest().await;
    let after = next_customer.ask("m1", QUESTION).await;
    let text = reply_text(&after);
    assert!(text.contains(ANSWER), "{after:#?}");
    assert!(!text.contains("customers ask"), "the operator's list is not for customers: {text}");
    assert_eq!(only(&after, "message")["citations"][0]["article_id"], "workshop-visits");
}

#[tokio::test]
async fn a_question_that_shares_no_words_with_the_policy_finds_it_by_meaning() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    let results = app.kb_search("the sole came off my ridgelines after a year").await;
    assert_eq!(results[0]["article_id"], "warranty", "{results:#?}");
    assert!(results[0]["similarity"].as_f64().is_some(), "dense retrieval ran: {results:#?}");
}

#[tokio::test]
async fn a_missing_index_is_rebuilt_from_the_articles_in_the_database() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let database_url = format!("sqlite://{}/assistant.db", first.path().display());
    let (first_dir, second_dir) = (first.path().display().to_string(), second.path().display().to_string());
    let query = "the sole came off my ridgelines after a year";
    let vars = [("DATA_DIR", first_dir.as_str()), ("DATABASE_URL", database_url.as_str())];
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &vars).await else { return };
    assert_eq!(app.kb_search(query).await[0]["article_id"], "warranty");
    app.shutdown.cancel();

    // Same database, no index: the files import as unchanged, so only a
    // rebuild from the database can make dense retrieval work.
    let vars = [("DATA_DIR", second_dir.as_str()), ("DATABASE_URL", database_url.as_str())];
    let app = spawn_app_with_model(Backend::Sqlite, &vars).await.expect("the model was there a moment ago");
    let results = app.kb_search(query).await;
    assert_eq!(results[0]["article_id"], "warranty", "{results:#?}");
    assert!(results[0]["similarity"].as_f64().is_some(), "{results:#?}");
    assert!(second.path().join("index").join("shard").exists());
}

/// The retrieval evaluation as a guard: on both labelled sets, what
/// customers get (hybrid) must rank the answering article first at least as
/// often as each ranking alone, with a better mean reciprocal rank.
#[tokio::test]
async fn hybrid_retrieval_beats_lexical_and_dense_on_the_labelled_questions() {
    use storefront_assistant::knowledge::{Ranking, eval};
    let Some(model_dir) = embedding_model_dir().await else { return };
    let data_dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let (data, model) = (data_dir.path().display().to_string(), model_dir.display().to_string());
    let database_url = format!("sqlite://{data}/kb.db");
    let vars: std::collections::HashMap<&str, &str> = [
        ("DATA_DIR", data.as_str()),
        ("DATABASE_URL", database_url.as_str()),
        ("EMBEDDING_MODEL_DIR", model.as_str()),
        ("KNOWLEDGE_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge")),
    ]
    .into_iter()
    .collect();
    let settings =
        storefront_assistant::config::Settings::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
    let db = storefront_assistant::db::Db::connect(&settings.database_url).await.unwrap();
    db.migrate().await.unwrap();
    let kb = storefront_assistant::knowledge::startup::open(&settings, db, false).await.unwrap();
    kb.import_dir(&settings.knowledge_dir, &indicatif::ProgressBar::hidden()).await.unwrap();
    for set in ["eval/retrieval.yaml", "eval/holdout.yaml"] {
        let cases = eval::load_cases(&Path::new(root).join(set)).unwrap();
        let hybrid = eval::evaluate(&kb, &cases, Ranking::Hybrid).await.unwrap();
        for other in [Ranking::Lexical, Ranking::Dense] {
            let alone = eval::evaluate(&kb, &cases, other).await.unwrap();
            assert!(
                hybrid.recall_at_1 >= alone.recall_at_1 && hybrid.mrr > alone.mrr,
                "{set}: hybrid {hybrid:?} vs {other:?} {alone:?}"
            );
        }
    }
}

/// Customers' messages that arrive together share one forward pass of the
/// model; each must still read exactly as it would alone (padding masked
/// out), sentence vectors included, or a busy hour would change answers.
#[tokio::test]
async fn messages_read_together_read_as_they_do_alone() {
    use storefront_assistant::knowledge::embeddings::{Embedder, local::LocalModel};
    let Some(model_dir) = embedding_model_dir().await else { return };
    let alone = LocalModel::load(&model_dir).unwrap();
    let embedder = std::sync::Arc::new(Embedder::load(&model_dir, 8).unwrap());
    let texts: Vec<String> = [
        "hi",
        "where is my order",
        "The zip on my jacket broke after a week. I want a refund. Who do I talk to?",
        "do u ship to canada",
        "Can I return boots I wore once outside? They pinch at the heel and the left one squeaks.",
        "wtf",
    ]
    .iter()
    .flat_map(|t| [t.to_string(), t.to_uppercase()])
    .collect();
    let together = futures_util::future::join_all(texts.iter().map(|text| {
        let embedder = embedder.clone();
        async move { embedder.embed_message(text.clone()).await.unwrap() }
    }))
    .await;
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for (text, read) in texts.iter().zip(&together) {
        let single = alone.embed_message(text).unwrap();
        assert!(cosine(&read.whole, &single.whole) > 0.9999, "{text:?} reads differently beside others");
        assert_eq!(read.sentences.len(), single.sentences.len(), "{text:?}");
        for (a, b) in read.sentences.iter().zip(&single.sentences) {
            assert!(cosine(a, b) > 0.9999, "a sentence of {text:?} reads differently beside others");
        }
    }
    let batched = alone.embed_messages(&texts.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    assert!(batched.iter().zip(&together).all(|(a, b)| cosine(&a.whole, &b.whole) > 0.9999));
}
