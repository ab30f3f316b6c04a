//! Nothing lost, nothing twice: outages, rate limits, restarts and a
//! `kill -9` in the middle of delivering, with many customers escalating.

use std::time::Duration;

use serde_json::json;

use super::handoff::{escalate, eventually, frame_where, handoff, spawn};
use super::mock::{Fault, MockIntercom};
use crate::helpers::*;
use crate::on_both_databases;

/// Every escalation in Intercom exactly once: one contact per customer, one
/// conversation per escalation, one note each, and the mock saw nothing invalid.
fn exactly_once(mock: &MockIntercom, escalations: usize, users: usize) {
    let conversations = mock.conversations();
    assert_eq!(conversations.len(), escalations, "one conversation per escalation");
    for c in &conversations {
        assert_eq!(c.notes().len(), 1, "one note on conversation {}", c.id);
    }
    let contacts = mock.contacts();
    let user_contacts = contacts.iter().filter(|c| c.role == "user").count();
    assert_eq!(user_contacts, users, "one contact per signed-in customer");
    let mut ids: Vec<&str> = contacts.iter().filter_map(|c| c.external_id.as_deref()).collect();
    ids.dedup();
    assert_eq!(ids.len(), users);
    assert_eq!(mock.violations(), Vec::<String>::new());
}

on_both_databases!(an_outage_then_rate_limits_lose_nothing_and_duplicate_nothing, outage);
async fn outage(backend: Backend) {
    let mock = MockIntercom::start().await;
    // "A minute" of 503s, compressed; then Intercom rate limits twice.
    mock.outage(Duration::from_secs(2), 503);
    mock.then(Fault::RateLimited(1)).then(Fault::RateLimited(1));
    let app = spawn(&mock, backend, &[("INTERCOM_RETRY_BASE_MS", "50")]).await;
    let mut chats = Vec::new();
    for customer in ["7001", "7002", "7003"] {
        chats.push(app.customer(customer).await.0);
    }
    chats.push(app.guest().await.0);
    for chat in &mut chats {
        chat.send(json!({ "type": "message", "id": "m1", "text": "I want to talk to a person" })).await;
    }
    for chat in &mut chats {
        let (_, before) = frame_where(chat, handoff("created")).await;
        assert!(
            before.iter().any(|f| f["type"] == "handoff" && f["status"] == "failed_retrying"),
            "the customer heard a person will follow up while Intercom was down: {before:#?}"
        );
    }
    exactly_once(&mock, 4, 3);
    assert!(mock.contacts().iter().any(|c| c.role == "lead"), "the guest is a lead");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"assistant_handoff_deliveries_total{kind="open",outcome="retry"}"#), "{metrics}");
}

#[tokio::test]
async fn a_restart_resumes_the_deliveries_the_last_run_left() {
    let mock = MockIntercom::start().await;
    mock.outage(Duration::from_secs(600), 503);
    let first = spawn(&mock, Backend::Sqlite, &[("INTERCOM_RETRY_BASE_MS", "50")]).await;
    for customer in ["7001", "7002"] {
        let (mut chat, _) = first.customer(customer).await;
        escalate(&mut chat, "m1", "failed_retrying").await;
    }
    first.shutdown.cancel();
    mock.outage(Duration::ZERO, 503);
    let second = spawn(&mock, Backend::Sqlite, &[("DATABASE_URL", &first.database_url)]).await;
    eventually("both escalations reach Intercom after the restart", || {
        let c = mock.conversations();
        c.len() == 2 && c.iter().all(|c| c.notes().len() == 1)
    })
    .await;
    exactly_once(&mock, 2, 2);
    drop(second);
}

#[tokio::test]
async fn a_kill_9_in_the_middle_of_a_delivery_resumes_without_duplicates() {
    let mock = MockIntercom::start().await;
    // The note never lands while this process lives: it is killed mid-request.
    mock.stall_paths(Some(("/reply", Duration::from_secs(60))));
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/assistant.db", data.path().display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut env = mock.settings();
    env.extend([
        ("DATABASE_URL", database_url.clone()),
        ("DATA_DIR", data.path().display().to_string()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("EMBEDDINGS", "none".to_owned()),
        ("KNOWLEDGE_DIR", format!("{root}/knowledge")),
        ("PROMPTS_DIR", format!("{root}/prompts")),
        ("IDENTITY_JWT_SECRET", JWT_SECRET.to_owned()),
        ("INTERCOM_LEASE_MS", "1000".to_owned()),
        ("INTERCOM_TIMEOUT_MS", "60000".to_owned()),
        ("INTERCOM_TEAM_ROUTES", "default=789".to_owned()),
    ]);
    let mut process = tokio::process::Command::new(env!("CARGO_BIN_EXE_storefront-assistant"))
        .envs(env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the service");
    let (mut chat, deadline) = (None, std::time::Instant::now() + Duration::from_secs(60));
    while chat.is_none() {
        assert!(std::time::Instant::now() < deadline, "the service process never listened");
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/v1/chat")).await {
            chat = Some(ws);
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut chat = Chat::from_socket(chat.unwrap());
    chat.hello(json!({ "token": token_for("7001", 600) })).await;
    chat.send(json!({ "type": "message", "id": "m1", "text": "I want to talk to a person" })).await;
    eventually("the process is adding the note", || mock.requests().iter().any(|r| r.ends_with("/reply"))).await;
    assert_eq!(mock.conversations().len(), 1, "the conversation was made before the kill");
    process.start_kill().expect("SIGKILL");
    process.wait().await.unwrap();

    mock.stall_paths(None);
    let restarted =
        spawn(&mock, Backend::Sqlite, &[("DATABASE_URL", &database_url), ("INTERCOM_LEASE_MS", "1000")]).await;
    eventually("the escalation reaches Intercom after the kill", || {
        mock.conversations().first().is_some_and(|c| c.notes().len() == 1 && c.team_id.is_some())
    })
    .await;
    // The last step is recorded just after Intercom has it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let jobs: serde_json::Value = restarted.admin_get("/v1/admin/handoff/jobs").await.json().await.unwrap();
        if jobs["jobs"][0]["state"] == json!("done") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the job never finished: {jobs}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    exactly_once(&mock, 1, 1);
}
