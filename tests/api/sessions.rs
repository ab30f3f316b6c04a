//! Session lifetimes: a session id stops resuming after the idle and the
//! absolute limit, and an order verification lapses after its lifetime.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;
use crate::on_both_databases;

const HOUR_MS: i64 = 60 * 60 * 1000;

/// A guest session with one answered turn; its id and latest seq.
async fn session_with_a_turn(app: &TestApp) -> (String, i64) {
    let (mut chat, welcome) = app.guest().await;
    let frames = chat.ask("m1", "Do you ship to Canada?").await;
    let seq = only(&frames, "message")["seq"].as_i64().unwrap();
    (welcome["session_id"].as_str().unwrap().to_owned(), seq)
}

on_both_databases!(an_idle_session_is_not_resumed_and_a_new_one_starts, idle_session);
async fn idle_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let (session_id, _) = session_with_a_turn(&app).await;
    // 25 hours without a frame, past the default idle limit of 24.
    app.execute_sql(&format!(
        "UPDATE sessions SET updated_at = updated_at - {} WHERE id = '{session_id}'",
        25 * HOUR_MS
    ))
    .await;

    let mut again = app.connect().await;
    let welcome = again.hello(json!({ "session_id": session_id, "last_seq": 0 })).await;
    assert_eq!(welcome["resumed"], false, "{welcome}");
    assert_ne!(welcome["session_id"], session_id.as_str());
    assert_eq!(welcome["seq"], 0);
}

on_both_databases!(a_session_past_its_maximum_age_is_not_resumed_however_active, old_session);
async fn old_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let (session_id, _) = session_with_a_turn(&app).await;
    // Opened 31 days ago, active a moment ago.
    app.execute_sql(&format!(
        "UPDATE sessions SET created_at = created_at - {} WHERE id = '{session_id}'",
        31 * 24 * HOUR_MS
    ))
    .await;

    let mut again = app.connect().await;
    let welcome = again.hello(json!({ "session_id": session_id, "last_seq": 0 })).await;
    assert_eq!(welcome["resumed"], false, "{welcome}");
    assert_ne!(welcome["session_id"], session_id.as_str());
}

#[tokio::test]
async fn a_session_within_its_limits_still_resumes() {
    let app = spawn_app(Backend::Sqlite).await;
    let (session_id, seq) = session_with_a_turn(&app).await;
    app.execute_sql(&format!(
        "UPDATE sessions SET updated_at = updated_at - {} WHERE id = '{session_id}'",
        23 * HOUR_MS
    ))
    .await;
    let mut again = app.connect().await;
    let welcome = again.hello(json!({ "session_id": session_id, "last_seq": seq })).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
}

#[tokio::test]
async fn an_order_verification_lapses_after_its_lifetime() {
    let app = spawn_app_with(Backend::Sqlite, &[("ORDER_VERIFIED_TTL_SECS", "1")]).await;
    let (mut chat, _) = app.guest().await;
    chat.send(json!({ "type": "verify", "order_number": "#1001", "email": "ava@example.com" })).await;
    assert_eq!(chat.recv().await["type"], "verified");
    // Not a synchronisation: the server set the deadline before it sent
    // `verified`, so a second after receiving it the scope has lapsed.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let frames = chat.ask("m1", "where is my order?").await;
    only(&frames, "verify_required");
    assert!(frames.iter().all(|f| f["type"] != "message"), "no order details after the lapse: {frames:#?}");
}

/// What Ava's order #1001 would reveal.
const AVA_ORDER: &[&str] = &["1Z999AA10123456784", "Ridgeline Hiking Boots", "Trailhead Rain Jacket"];

/// Reads the `count` frames a resume replays after its welcome.
async fn replayed(chat: &mut Chat, count: usize) -> Vec<serde_json::Value> {
    let mut frames = Vec::new();
    while frames.len() < count {
        frames.push(chat.recv().await);
    }
    frames
}

on_both_databases!(a_resume_by_a_guest_does_not_replay_order_details_it_cannot_see, guest_resume_withheld);
async fn guest_resume_withheld(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut ava, welcome) = app.guest().await;
    let session_id = welcome["session_id"].as_str().unwrap().to_owned();
    ava.send(json!({ "type": "verify", "order_number": "#1001", "email": "ava@example.com" })).await;
    let verified = ava.recv().await;
    let frames = ava.ask("m1", "where is my order?").await;
    let card = only(&frames, "message");
    assert_eq!(card["cards"][0]["order_number"], "#1001", "{card}");

    // Whoever holds the session id resumes as a guest: no order scope.
    let mut holder = app.connect().await;
    let welcome = holder.hello(json!({ "session_id": session_id, "last_seq": 0 })).await;
    assert_eq!(welcome["resumed"], true);
    let frames = replayed(&mut holder, 2).await;
    assert_eq!(frames[0]["seq"], verified["seq"]);
    let withheld = &frames[1];
    assert_eq!(withheld["seq"], card["seq"], "the placeholder keeps the seq: {withheld}");
    assert_eq!(withheld["id"], card["id"]);
    assert_eq!(withheld["cards"], json!([]));
    let text = frames.iter().map(|f| f.to_string()).collect::<String>();
    for marker in AVA_ORDER {
        assert!(!text.contains(marker), "replayed {marker:?}: {text}");
    }
}

#[tokio::test]
async fn a_signed_in_customer_resuming_their_session_sees_their_order_again() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut ava, welcome) = app.customer("7001").await;
    let session_id = welcome["session_id"].as_str().unwrap().to_owned();
    let frames = ava.ask("m1", "where is my order #1001?").await;
    let card = only(&frames, "message").clone();
    assert!(!card["cards"].as_array().unwrap().is_empty(), "{card}");

    let mut again = app.connect().await;
    let welcome =
        again.hello(json!({ "session_id": session_id, "last_seq": 0, "token": token_for("7001", 3600) })).await;
    assert_eq!(welcome["resumed"], true);
    let frames = replayed(&mut again, 1).await;
    assert_eq!(frames[0], card);
}

/// Sockets that share a session id need not share an identity (a resume
/// proves only the id): what one socket's order lookup finds reaches the
/// others live only with the same scope.
#[tokio::test]
async fn a_guest_holding_the_session_id_does_not_see_order_details_live() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut ava, welcome) = app.guest().await;
    let session_id = welcome["session_id"].as_str().unwrap().to_owned();
    ava.send(json!({ "type": "verify", "order_number": "#1001", "email": "ava@example.com" })).await;
    let verified = ava.recv().await;
    assert_eq!(verified["type"], "verified", "{verified}");
    let mut holder = app.connect().await;
    let welcome = holder.hello(json!({ "session_id": session_id, "last_seq": verified["seq"] })).await;
    assert_eq!((welcome["resumed"].clone(), welcome["identity"]["status"].clone()), (json!(true), json!("guest")));

    let frames = ava.ask("m1", "where is my order?").await;
    let card = only(&frames, "message");
    assert_eq!(card["cards"][0]["order_number"], "#1001", "{card}");
    let live = holder.turn_frames().await;
    let withheld = live.iter().find(|f| f["seq"] == card["seq"]).expect("the reply keeps its place");
    assert_eq!(withheld["cards"], json!([]), "{withheld}");
    let text = live.iter().map(|f| f.to_string()).collect::<String>();
    for marker in AVA_ORDER {
        assert!(!text.contains(marker), "a guest saw {marker:?} live: {text}");
    }
}
