//! Who may say hello as whom, and whose session they may resume.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn refused_tokens_get_unauthorized_and_the_client_may_say_hello_again() {
    let app = spawn_app(Backend::Sqlite).await;
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not-the-store-secret");
        let claims = json!({ "sub": "7001", "exp": now() + 600 });
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    };
    let expired = sign(json!({ "sub": "7001", "exp": now() - 3600, "iat": now() - 7200 }));
    let too_long = sign(json!({ "sub": "7001", "exp": now() + 7 * 24 * 3600 }));
    let no_exp = sign(json!({ "sub": "7001" }));
    // `alg: none`: header {"alg":"none"}, claims, empty signature.
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        base64_url(&json!({ "sub": "7001", "exp": now() + 600 }).to_string())
    );

    for token in [forged, expired, too_long, no_exp, unsigned, "garbage".to_owned()] {
        let mut chat = app.connect().await;
        chat.send(json!({ "type": "hello", "token": token })).await;
        let refused = chat.recv().await;
        assert_eq!(refused["code"], "unauthorized", "{token}: {refused}");
        // No session was made; the same socket may try again.
        let welcome = chat.hello(json!({ "token": token_for("7001", 600) })).await;
        assert_eq!(welcome["identity"]["status"], "verified");
    }
}

#[tokio::test]
async fn a_signed_in_customers_session_cannot_be_resumed_by_anyone_else() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut ava, welcome) = app.customer("7001").await;
    let session_id = welcome["session_id"].as_str().unwrap().to_owned();
    let frames = ava.ask("m1", "where is my order?").await;
    assert_eq!(only(&frames, "message")["cards"][0]["order_number"], "#1001");

    for intruder in [Some("7002"), None] {
        let mut chat = app.connect().await;
        let token = intruder.map(|id| token_for(id, 600));
        let welcome = chat.hello(json!({ "session_id": session_id, "last_seq": 0, "token": token })).await;
        assert_eq!(welcome["resumed"], false, "{intruder:?} got a new session");
        assert_ne!(welcome["session_id"], session_id.as_str());
        assert_eq!(welcome["seq"], 0);
    }
}

#[tokio::test]
async fn every_socket_of_a_session_receives_its_frames() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut phone, welcome) = app.customer("7002").await;
    let mut laptop = app.connect().await;
    let token = token_for("7002", 600);
    let resumed = laptop.hello(json!({ "session_id": welcome["session_id"], "last_seq": 0, "token": token })).await;
    assert_eq!(resumed["resumed"], true);

    let frames = phone.ask("m1", "where is my order?").await;
    let reply = only(&frames, "message");
    let mirrored = laptop.turn_frames().await;
    assert_eq!(only(&mirrored, "message")["id"], reply["id"]);
    assert_eq!(only(&mirrored, "message")["seq"], reply["seq"]);
}

fn base64_url(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
