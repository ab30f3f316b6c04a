//! Escalations delivered to Intercom through the outbox: the real service
//! over real sockets, Intercom mocked over real HTTP.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::mock::{Fault, MockContact, MockIntercom};
use crate::helpers::*;
use crate::on_both_databases;

const DEADLINE: Duration = Duration::from_secs(20);

pub async fn spawn(mock: &MockIntercom, backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let owned = mock.settings();
    let mut settings: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    settings.push(("INTERCOM_TEAM_ROUTES", "sensitive_topic=123,human_requested=456,default=789"));
    settings.extend_from_slice(extra);
    spawn_app_with(backend, &settings).await
}

/// Polls `check` until it holds, failing the test at the deadline.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Frames until one matches; returns it with the ones before it.
pub async fn frame_where(chat: &mut Chat, wanted: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let frame = chat.recv().await;
        if wanted(&frame) {
            return (frame, before);
        }
        before.push(frame);
    }
}

/// Asks for a person; returns the `handoff` frame with `status` and the frames before it.
pub async fn escalate(chat: &mut Chat, id: &str, status: &'static str) -> (Value, Vec<Value>) {
    chat.send(json!({ "type": "message", "id": id, "text": "I want to talk to a person" })).await;
    frame_where(chat, handoff(status)).await
}

pub fn handoff(status: &'static str) -> impl Fn(&Value) -> bool {
    move |f: &Value| f["type"] == "handoff" && f["status"] == status
}

on_both_databases!(a_handoff_reaches_intercom_with_everything_the_agent_needs, full_story);
async fn full_story(backend: Backend) {
    let mock = MockIntercom::start().await;
    let app = spawn(&mock, backend, &[]).await;
    let token = token_for("7001", 600);
    let mut chat = app.connect().await;
    chat.hello(json!({ "token": token })).await;
    chat.ask("m1", "where is my order #1001?").await;
    let (created, frames) = escalate(&mut chat, "m2", "created").await;
    assert_eq!(only(&frames, "handoff")["status"], "requested");

    let conversations = mock.conversations();
    assert_eq!(conversations.len(), 1, "one conversation");
    let conversation = &conversations[0];
    assert_eq!(created["reference"], conversation.id.as_str(), "the widget learns the reference");
    assert!(created["seq"].as_i64().unwrap() > only(&frames, "handoff")["seq"].as_i64().unwrap());
    assert!(conversation.body.starts_with("I want to talk to a person"), "{}", conversation.body);

    let contacts = mock.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].external_id.as_deref(), contacts[0].role.as_str()), (Some("7001"), "user"));
    assert_eq!(contacts[0].email.as_deref(), Some("customer7001@example.com"));

    let notes = conversation.notes();
    assert_eq!(notes.len(), 1, "one note");
    let note = &notes[0].body;
    for expected in [
        "where is my order #1001?",   // the transcript, from the first message
        "I want to talk to a person", // to the last
        "#1001",                      // the order in question
        "in_transit",                 // its status
        "1Z999AA10123456784",         // its tracking
        "Ridgeline Hiking Boots",     // its items
        "human_requested",            // the reason
        "signed in",                  // how the identity was verified
        "Lifetime:",                  // lifetime orders and spend
    ] {
        assert!(note.contains(expected), "the note lacks {expected:?}: {note}");
    }
    assert!(!note.contains(&token) && !note.contains("eyJ"), "the customer's token never leaves");
    for payment in ["credit_card", "card_number", "cvv", "iban", "gateway", "payment_details"] {
        assert!(!note.contains(payment), "no payment details ({payment}) in {note}");
    }

    eventually("the conversation is tagged and assigned", || {
        let c = &mock.conversations()[0];
        c.team_id.is_some() && c.tags.len() >= 2
    })
    .await;
    let conversation = &mock.conversations()[0];
    assert_eq!(conversation.team_id.as_deref(), Some("456"), "human_requested routes to team 456");
    let tags: Vec<String> = conversation.tags.iter().filter_map(|t| mock.tag_name(t)).collect();
    assert!(tags.contains(&"human_requested".to_owned()), "{tags:?}");
    assert_eq!(mock.violations(), Vec::<String>::new());
}

on_both_databases!(without_an_intercom_token_escalations_wait_in_the_built_in_queue, built_in_queue);
async fn built_in_queue(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut chat, _) = app.customer("7001").await;
    chat.ask("m1", "I want to talk to a person").await;
    let jobs: Value = app.admin_get("/v1/admin/handoff/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"], json!([]), "nothing to deliver");
    let queue: Value = app.admin_get("/v1/admin/conversations?status=escalated").await.json().await.unwrap();
    assert_eq!(queue["conversations"].as_array().unwrap().len(), 1);
    // The assistant keeps answering as before.
    let frames = chat.ask("m2", "where is my order #1001?").await;
    assert!(frames.iter().any(|f| f["type"] == "message"), "{frames:#?}");
}

#[tokio::test]
async fn a_409_on_contact_create_reuses_the_contact_intercom_already_has() {
    let mock = MockIntercom::start().await;
    mock.add_contact(MockContact::unsearchable_user("5f0000000000000000000abc", Some("7001"), None));
    let app = spawn(&mock, Backend::Sqlite, &[]).await;
    let (mut chat, _) = app.customer("7001").await;
    escalate(&mut chat, "m1", "created").await;
    assert_eq!(mock.contacts().len(), 1, "no second contact");
    assert_eq!(mock.conversations()[0].contact_id, "5f0000000000000000000abc");
}

#[tokio::test]
async fn a_refused_delivery_is_dead_lettered_and_an_operator_can_retry_it() {
    let mock = MockIntercom::start().await;
    mock.then(Fault::Status(422));
    let app = spawn(&mock, Backend::Sqlite, &[]).await;
    let (mut chat, _) = app.customer("7001").await;
    let (retrying, _) = escalate(&mut chat, "m1", "failed_retrying").await;
    assert_eq!(retrying["reason"], "human_requested", "the customer is told a person will follow up");

    let dead = || async {
        let jobs: Value = app.admin_get("/v1/admin/handoff/jobs?state=dead").await.json().await.unwrap();
        jobs["jobs"].as_array().unwrap().clone()
    };
    let deadline = Instant::now() + DEADLINE;
    let jobs = loop {
        let jobs = dead().await;
        if !jobs.is_empty() {
            break jobs;
        }
        assert!(Instant::now() < deadline, "the job was never dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(jobs[0]["last_error"].as_str().unwrap().contains("422"));
    let id = jobs[0]["id"].as_str().unwrap();
    let url = app.url(&format!("/v1/admin/handoff/jobs/{id}/retry"));
    assert_eq!(app.http.post(&url).send().await.unwrap().status(), 401, "admin only");
    assert_eq!(app.http.post(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), 200);
    frame_where(&mut chat, handoff("created")).await;
    assert_eq!(mock.conversations().len(), 1);
    assert_eq!(app.http.post(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), 409, "done, not dead");
}
