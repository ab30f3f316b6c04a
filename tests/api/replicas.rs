//! Stateless replicas on one PostgreSQL: a session followed from sockets on
//! two replicas gets every frame on both, and an article edited through one
//! replica is what every replica answers from.

use serde_json::json;

use crate::helpers::*;

async fn until_ready(app: &TestApp) {
    for _ in 0..500 {
        let ready = app.http.get(app.url("/readyz")).send().await.map(|r| r.status() == 200).unwrap_or(false);
        if ready {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the replica never became ready");
}

/// Two replicas sharing a fresh PostgreSQL database, both listening to
/// each other; `None` where PostgreSQL is unreachable outside CI.
async fn two_replicas() -> Option<(TestApp, TestApp)> {
    if !postgres_available().await {
        return None;
    }
    let database_url = fresh_postgres_database().await;
    let first = spawn_app_with(Backend::Sqlite, &[("DATABASE_URL", &database_url)]).await;
    let second = spawn_app_with(Backend::Sqlite, &[("DATABASE_URL", &database_url)]).await;
    until_ready(&first).await;
    until_ready(&second).await;
    Some((first, second))
}

#[tokio::test]
async fn frames_reach_the_sockets_of_a_session_on_every_replica() {
    let Some((first, second)) = two_replicas().await else { return };

    let (mut on_first, welcome) = first.customer("7003").await;
    let mut on_second = second.connect().await;
    let resumed = on_second
        .hello(json!({ "session_id": welcome["session_id"], "last_seq": 0, "token": token_for("7003", 600) }))
        .await;
    assert_eq!(resumed["resumed"], true, "a session made on one replica resumes on another");

    let frames = on_first.ask("m1", "where is my order?").await;
    let reply = only(&frames, "message");
    // The other replica relays the committed frame; typing indicators stay local.
    let relayed = on_second.recv().await;
    assert_eq!(relayed["type"], "message");
    assert_eq!(relayed["id"], reply["id"]);
    assert_eq!(relayed["seq"], reply["seq"]);
}

#[tokio::test]
async fn an_article_edited_on_one_replica_answers_customers_on_every_replica() {
    let Some((first, second)) = two_replicas().await else { return };
    let question = "How long does a refund take to reach my card?";
    let (mut chat, _) = second.guest().await;
    let before = chat.ask("m1", question).await;
    assert!(only(&before, "message")["text"].as_str().unwrap().contains("5–10 business days"));

    let article_url = first.url("/v1/admin/kb/articles/refunds");
    let article: serde_json::Value =
        first.http.get(&article_url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    let body = article["body"].as_str().unwrap().replace("**5–10 business days**", "**1–2 business days**");
    let edit = first.http.put(&article_url).bearer_auth(ADMIN_TOKEN).json(&json!({ "body": body }));
    assert_eq!(edit.send().await.unwrap().status(), 200);

    // The edit reaches the other replica's index by the database's notice.
    let search = || async {
        let response = second.http.post(second.url("/v1/admin/kb/search")).bearer_auth(ADMIN_TOKEN);
        let results: serde_json::Value =
            response.json(&json!({ "query": question })).send().await.unwrap().json().await.unwrap();
        results["results"][0]["text"].as_str().unwrap_or_default().to_owned()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !search().await.contains("1–2 business days") {
        assert!(std::time::Instant::now() < deadline, "the other replica still answers from the old article");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let after = chat.ask("m2", question).await;
    let text = only(&after, "message")["text"].as_str().unwrap().to_owned();
    assert!(text.contains("1–2 business days") && !text.contains("5–10 business days"), "{text}");
}
