//! Stateless replicas on one PostgreSQL: a session followed from sockets on
//! two replicas gets every frame on both.

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

#[tokio::test]
async fn frames_reach_the_sockets_of_a_session_on_every_replica() {
    if !postgres_available().await {
        return;
    }
    let database_url = fresh_postgres_database().await;
    let first = spawn_app_with(Backend::Sqlite, &[("DATABASE_URL", &database_url)]).await;
    let second = spawn_app_with(Backend::Sqlite, &[("DATABASE_URL", &database_url)]).await;
    until_ready(&first).await;
    until_ready(&second).await;

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
