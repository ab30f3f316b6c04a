//! Escalations delivered to Intercom through the outbox, and Intercom's
//! replies back to the customer's widget: the real service over real
//! sockets, Intercom mocked over real HTTP.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use storefront_assistant::handoff::intercom::webhook;

use super::mock::{Fault, MockContact, MockIntercom};
use crate::helpers::*;
use crate::on_both_databases;

pub const CLIENT_SECRET: &str = "intercom-client-secret-for-tests";
const DEADLINE: Duration = Duration::from_secs(20);

pub async fn spawn(mock: &MockIntercom, backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let owned = mock.settings();
    let mut settings: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    settings.push(("INTERCOM_CLIENT_SECRET", CLIENT_SECRET));
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

/// An Intercom `notification_event`, signed as Intercom signs it.
pub async fn post_webhook(app: &TestApp, body: &Value) -> reqwest::Response {
    let raw = body.to_string();
    let signature = webhook::sign(CLIENT_SECRET.as_bytes(), raw.as_bytes());
    app.http
        .post(app.url("/v1/webhooks/intercom"))
        .header("X-Hub-Signature", signature)
        .header("Content-Type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("request")
}

pub fn notification(id: &str, topic: &str, conversation_id: &str, part: Value) -> Value {
    json!({
        "type": "notification_event", "app_id": "testapp", "id": id, "topic": topic,
        "delivery_attempts": 1, "created_at": now(),
        "data": { "type": "notification_event_data", "item": {
            "type": "conversation", "id": conversation_id, "state": "open",
            "assignee": { "type": "admin", "id": "991", "name": "Andy" },
            "conversation_parts": { "type": "conversation_part.list", "total_count": 1, "conversation_parts": [part] },
        } },
    })
}

pub fn admin_part(part_type: &str, body: &str) -> Value {
    json!({ "type": "conversation_part", "id": "6073", "part_type": part_type, "body": body, "created_at": now(),
            "author": { "type": "admin", "id": "991", "name": "Andy" } })
}

on_both_databases!(a_handoff_reaches_intercom_with_everything_the_agent_needs, full_story);
async fn full_story(backend: Backend) {
    let mock = MockIntercom::start().await;
    let app = spawn(&mock, backend, &[]).await;
    let token = token_for("7001", 600);
    let mut chat = app.connect().await;
    chat.hello(json!({ "token": token })).await;
    chat.ask("m1", "where is my order #1001? I paid with 4242 4242 4242 4242").await;
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
    assert!(!note.contains("#1004"), "only the order in question, not every order: {note}");
    assert!(!note.contains(&token) && !note.contains("eyJ"), "the customer's token never leaves");
    assert!(note.contains("[card number removed]"), "the card the customer typed is removed: {note}");
    for payment in ["4242 4242", "credit_card", "card_number", "cvv", "iban", "gateway", "payment_details"] {
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

on_both_databases!(the_agents_replies_reach_the_widget_and_a_close_hands_back, both_ways);
async fn both_ways(backend: Backend) {
    let mock = MockIntercom::start().await;
    let app = spawn(&mock, backend, &[]).await;
    let (mut chat, _) = app.customer("7001").await;
    let (created, _) = escalate(&mut chat, "m1", "created").await;
    let reference = created["reference"].as_str().unwrap().to_owned();

    // The customer now talks to the person: their message goes to Intercom, not the assistant.
    chat.send(json!({ "type": "message", "id": "m2", "text": "It was a birthday present" })).await;
    eventually("the customer's message reaches the Intercom conversation", || {
        mock.conversations()[0].comments().iter().any(|p| p.body.contains("birthday present"))
    })
    .await;

    let html = r#"<p>Hi Ava, I'm on it. <a href="https://track.example.com/1Z">Track it here</a></p><script>alert(1)</script>"#;
    let reply = notification("notif_1", "conversation.admin.replied", &reference, admin_part("comment", html));
    assert_eq!(post_webhook(&app, &reply).await.status(), 200);
    // Had the assistant answered m2, that answer would have come first.
    let message = chat.recv().await;
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(message["role"], "agent");
    assert_eq!(message["author"]["name"], "Andy");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("Hi Ava, I'm on it.") && text.contains("[Track it here](https://track.example.com/1Z)"),
        "{text}"
    );
    assert!(!text.contains("script") && !text.contains("alert"), "{text}");
    assert_eq!(chat.recv().await["status"], "agent_replied");

    // A redelivery is acknowledged and changes nothing.
    let again = post_webhook(&app, &reply).await;
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");

    let assigned = notification(
        "notif_2",
        "conversation.admin.assigned",
        &reference,
        json!({
            "type": "conversation_part", "part_type": "assignment", "created_at": now(),
            "author": { "type": "admin", "id": "991", "name": "Andy" }, "assigned_to": { "type": "admin", "id": "992", "name": "Priya" }
        }),
    );
    assert_eq!(post_webhook(&app, &assigned).await.status(), 200);
    let who = chat.recv().await;
    assert!(who["text"].as_str().unwrap().contains("Priya"), "{who}");

    let closed = notification("notif_3", "conversation.admin.closed", &reference, admin_part("close", ""));
    assert_eq!(post_webhook(&app, &closed).await.status(), 200);
    let (closed, _) = frame_where(&mut chat, handoff("closed")).await;
    assert_eq!(closed["reference"], reference.as_str());

    // The assistant answers again.
    let frames = chat.ask("m3", "where is my order #1001?").await;
    assert_eq!(only(&frames, "message")["role"], "assistant");
    assert_eq!(mock.conversations()[0].comments().len(), 1, "m3 stayed with the assistant");
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_intercom_webhook_without_a_valid_signature_is_refused_and_unknown_topics_are_acknowledged() {
    let mock = MockIntercom::start().await;
    let app = spawn(&mock, Backend::Sqlite, &[]).await;
    let body =
        notification("notif_9", "conversation.admin.replied", "1", admin_part("comment", "<p>hi</p>")).to_string();
    for signature in [
        None,
        Some("sha1=0000000000000000000000000000000000000000".to_owned()),
        Some(webhook::sign(b"wrong", body.as_bytes())),
    ] {
        let mut request = app.http.post(app.url("/v1/webhooks/intercom")).body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature", signature);
        }
        assert_eq!(request.send().await.unwrap().status(), 401);
    }
    let ping = json!({ "type": "notification_event", "id": "notif_ping", "topic": "ping", "data": { "item": {} } });
    let response = post_webhook(&app, &ping).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "stored");
}

#[tokio::test]
async fn intercoms_own_sample_notifications_are_understood() {
    use storefront_assistant::handoff::DeskEvent;
    let Some(replied) = crate::shopify::contracts::read("intercom/webhooks/conversation.admin.replied.json") else {
        return;
    };
    let replied: Value = serde_json::from_slice(&replied).unwrap();
    let event = webhook::parse(&replied).unwrap().event;
    let expected =
        DeskEvent::AgentReplied { reference: "137324500000000".into(), author: "Andy".into(), text: "hi Bob".into() };
    assert_eq!(event, Some(expected));
    let closed = crate::shopify::contracts::read("intercom/webhooks/conversation.admin.closed.json").unwrap();
    let event = webhook::parse(&serde_json::from_slice(&closed).unwrap()).unwrap().event;
    assert_eq!(event, Some(DeskEvent::Closed { reference: "137324500000000".into() }));
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
async fn an_escalation_from_before_intercom_was_connected_stays_in_the_built_in_queue() {
    let before = spawn_app(Backend::Sqlite).await;
    let (mut chat, welcome) = before.customer("7001").await;
    chat.ask("m1", "I want to talk to a person").await;
    before.shutdown.cancel();

    let mock = MockIntercom::start().await;
    let after = spawn(&mock, Backend::Sqlite, &[("DATABASE_URL", &before.database_url)]).await;
    let mut chat = after.connect().await;
    let resume = json!({ "session_id": welcome["session_id"], "last_seq": 1000, "token": token_for("7001", 600) });
    assert_eq!(chat.hello(resume).await["resumed"], true);
    let frames = chat.ask("m2", "where is my order #1001?").await;
    assert_eq!(only(&frames, "message")["role"], "assistant", "the assistant still answers: {frames:#?}");
    assert_eq!(mock.requests(), Vec::<String>::new(), "nothing went to Intercom");
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

#[tokio::test]
async fn on_two_replicas_each_job_runs_once_and_an_agent_reply_reaches_the_other_replicas_socket() {
    if !postgres_available().await {
        return;
    }
    let mock = MockIntercom::start().await;
    let database_url = fresh_postgres_database().await;
    let first = spawn(&mock, Backend::Sqlite, &[("DATABASE_URL", &database_url)]).await;
    let second = spawn(&mock, Backend::Sqlite, &[("DATABASE_URL", &database_url)]).await;
    for app in [&first, &second] {
        let deadline = Instant::now() + DEADLINE;
        while app.http.get(app.url("/readyz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
            assert!(Instant::now() < deadline, "a replica never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Escalations through both replicas, so both workers claim from one queue.
    let mut chats = Vec::new();
    for (i, customer) in ["7001", "7002", "7003", "7004", "7005", "7006"].into_iter().enumerate() {
        let app = if i % 2 == 0 { &first } else { &second };
        chats.push(app.customer(customer).await.0);
    }
    let mut references = Vec::new();
    for chat in &mut chats {
        references.push(escalate(chat, "m1", "created").await.0["reference"].as_str().unwrap().to_owned());
    }
    let conversations = mock.conversations();
    assert_eq!(conversations.len(), 6, "one conversation per escalation");
    assert!(conversations.iter().all(|c| c.notes().len() == 1), "one note each");
    assert_eq!(mock.contacts().len(), 6);

    // The customer's socket is on the first replica; Intercom calls the second.
    let reply =
        notification("notif_r1", "conversation.admin.replied", &references[0], admin_part("comment", "<p>On it</p>"));
    assert_eq!(post_webhook(&second, &reply).await.status(), 200);
    let (message, _) = frame_where(&mut chats[0], |f| f["type"] == "message" && f["role"] == "agent").await;
    assert_eq!(message["text"], "On it");
    assert_eq!(message["author"]["name"], "Andy");
    assert_eq!(mock.violations(), Vec::<String>::new());
}
