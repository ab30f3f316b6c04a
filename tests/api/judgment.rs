//! Judgment on messages as customers write them: who must reach a person,
//! what the knowledge base may answer, and the policy applied to the
//! customer's own order. With the real sentence model, since understanding
//! by meaning is what customers get on the embedded defaults.

use serde_json::{Value, json};
use storefront_assistant::{assistant::eval, config::Settings};

use crate::helpers::*;

fn message(frames: &[Value]) -> &Value {
    only(frames, "message")
}

fn handoff_reason(frames: &[Value]) -> Option<String> {
    frames.iter().find(|f| f["type"] == "handoff").map(|f| f["reason"].as_str().unwrap().to_owned())
}

fn cited(frames: &[Value]) -> Vec<String> {
    message(frames)["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["article_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn messages_that_must_reach_a_person_do_whatever_their_wording() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    let cases = [
        "could you help me to speak to somebody?",
        "help me lodge a claim against ur organization",
        "I need help to make a claim",
        "close Pro account",
        "someone used my card without my permission on your site",
        "please erase all the data you hold about me",
        "i want an actual person, not this bot",
    ];
    for (i, text) in cases.iter().enumerate() {
        let (mut chat, _) = app.guest().await;
        let frames = chat.ask(&format!("m{i}"), text).await;
        let reason = handoff_reason(&frames);
        assert!(reason.is_some(), "{text:?} must reach a person: {frames:#?}");
        assert!(cited(&frames).is_empty(), "{text:?} is handed off, not answered from an article");
    }
}

#[tokio::test]
async fn everyday_policy_questions_are_answered_from_the_right_article() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    let (mut chat, _) = app.guest().await;
    let cases = [
        ("how long do i have to send something back?", "returns-and-exchanges", "30 days from the delivery date"),
        // The whole topic: the article's overview, with its sections.
        ("What is your return policy?", "returns-and-exchanges", "How do I start a return?"),
        // Names a product, asks how: care tips, not a pair of boots.
        ("how do I clean my leather boots?", "warranty", "soft brush"),
    ];
    for (i, (text, article, quoted)) in cases.into_iter().enumerate() {
        let frames = chat.ask(&format!("q{i}"), text).await;
        assert_eq!(handoff_reason(&frames), None, "{text:?} is routine: {frames:#?}");
        assert_eq!(cited(&frames), [article], "{text:?}: {frames:#?}");
        let reply = message(&frames);
        assert!(reply["text"].as_str().unwrap().contains(quoted), "{text:?} is answered, not asked about: {reply}");
        let cards = reply["cards"].as_array().unwrap();
        assert!(cards.is_empty(), "{text:?} wants the policy, not a product listing: {cards:?}");
    }
}

#[tokio::test]
async fn a_near_miss_names_the_article_instead_of_quoting_or_shrugging() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    let (mut chat, _) = app.guest().await;
    let frames = chat.ask("c", "is there a way to pay cash when the courier comes").await;
    assert_eq!(handoff_reason(&frames), None, "{frames:#?}");
    assert_eq!(cited(&frames), ["payment-methods"], "{frames:#?}");
    let text = message(&frames)["text"].as_str().unwrap();
    assert!(text.contains("**Payment methods**?"), "it asks whether that article is meant: {text}");
    assert!(!text.contains("Visa"), "nothing is quoted from an article that did not pass the answer test: {text}");
}

#[tokio::test]
async fn a_listed_answer_keeps_its_shape() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    let (mut chat, _) = app.guest().await;
    let frames = chat.ask("p", "can i pay with paypal").await;
    assert_eq!(cited(&frames), ["payment-methods"]);
    let text = message(&frames)["text"].as_str().unwrap();
    assert!(text.contains("- **PayPal**"), "the list item survives with its emphasis: {text}");
    assert!(text.contains("\n- **Apple Pay**"), "one item a line, not one run-together line: {text}");
}

#[tokio::test]
async fn a_signed_in_customer_asking_to_return_gets_their_orders_window() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    // Liam's boots (#1008) were delivered 12 days ago: inside the 30 days.
    let (mut chat, _) = app.customer("7002").await;
    let frames = chat.ask("r1", "can I still return my boots?").await;
    let text = message(&frames)["text"].as_str().unwrap();
    let deadline = (time::OffsetDateTime::now_utc() + time::Duration::days(18)).date();
    assert!(text.contains("#1008"), "{text}");
    assert!(text.contains(&deadline.year().to_string()) && text.contains("until"), "{text}");
    assert_eq!(message(&frames)["cards"][0]["order_number"], "#1008");
    assert_eq!(handoff_reason(&frames), None);

    // Ava's jacket (#1004) was delivered 35 days ago: the window has closed.
    let (mut chat, _) = app.customer("7001").await;
    let frames = chat.ask("r2", "is it too late to send back the rain jacket?").await;
    let text = message(&frames)["text"].as_str().unwrap();
    assert!(text.contains("#1004") && text.contains("closed"), "{text}");
}

#[tokio::test]
async fn can_i_cancel_knows_whether_the_order_has_shipped() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    // Ava's latest order (#1001) is on its way: explained, not handed off.
    let (mut chat, _) = app.customer("7001").await;
    let frames = chat.ask("c1", "can I cancel my order?").await;
    let text = message(&frames)["text"].as_str().unwrap();
    assert!(text.contains("#1001") && text.contains("can no longer"), "{text}");
    assert_eq!(handoff_reason(&frames), None);
    // Liam's latest (#1002) has not shipped: a person cancels it.
    let (mut chat, _) = app.customer("7002").await;
    let frames = chat.ask("c2", "can I cancel my order?").await;
    assert_eq!(handoff_reason(&frames).as_deref(), Some("action_required"), "{frames:#?}");
}

#[tokio::test]
async fn the_preview_shows_the_reading_and_the_reply_and_stores_nothing() {
    let Some(app) = spawn_app_with_model(Backend::Sqlite, &[]).await else { return };
    let preview = |body: Value| {
        let request = app.http.post(app.url("/v1/admin/preview")).bearer_auth(ADMIN_TOKEN).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = preview(json!({ "text": "how long do i have to send something back?" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["escalate"], false);
    assert_eq!(body["understood_by"], "examples");
    assert_eq!(body["citations"][0]["article_id"], "returns-and-exchanges");
    assert!(!body["passages"].as_array().unwrap().is_empty() && !body["neighbours"].as_array().unwrap().is_empty());

    let (_, body) = preview(json!({ "text": "my lawyer will hear about this" })).await;
    assert_eq!((body["escalate"].clone(), body["reason"].clone()), (json!(true), json!("sensitive_topic")), "{body}");

    let as_liam =
        json!({ "text": "can I still return my boots?", "identity": { "status": "verified", "customer_id": "7002" } });
    let (_, body) = preview(as_liam).await;
    assert_eq!(body["decision"], "return_window", "{body}");
    assert!(body["reply"].as_str().unwrap().contains("#1008"));

    let (status, _) = preview(json!({ "text": "" })).await;
    assert_eq!(status, 400);
    let forged = app
        .http
        .post(app.url("/v1/admin/preview"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"text":"where is my order","identity":{"status":"root","customer_id":7}}"#)
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error(), "an unknown identity is refused, not guessed at");
    let unauthorized = app.http.post(app.url("/v1/admin/preview")).json(&json!({ "text": "hi" })).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let list: Value = app.admin_get("/v1/admin/conversations").await.json().await.unwrap();
    assert_eq!(list["conversations"].as_array().map(Vec::len), Some(0), "a preview leaves no trace: {list}");
}

/// The guard on the figure that matters most: of the tuning set's messages
/// that must reach a person, at least 98 in 100 do (the goal of issue #9).
/// The held-out sets are further from it (README), so there the guard keeps
/// what is reached from regressing: at least 95 in 100 escalated on the
/// older one, 90 in 100 on the one written blind last. On every set at most
/// 5 in 100 routine messages are handed off, and at most 5 in 100 knowledge
/// questions are answered wrongly.
#[tokio::test]
async fn judgment_on_the_labelled_sets_does_not_regress() {
    let Some(model) = embedding_model_dir().await else { return };
    let root = env!("CARGO_MANIFEST_DIR");
    let scratch = tempfile::tempdir().unwrap();
    let vars = [
        ("KNOWLEDGE_DIR", format!("{root}/knowledge")),
        ("PROMPTS_DIR", format!("{root}/prompts")),
        ("EMBEDDING_MODEL_DIR", model.display().to_string()),
    ];
    let settings = Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    let assistant = eval::scratch_assistant(&settings, scratch.path()).await.unwrap();
    for (set, min_recall) in [("messages.yaml", 0.98), ("messages-holdout.yaml", 0.95), ("messages-unseen.yaml", 0.90)]
    {
        let messages: Vec<eval::LabelledMessage> = eval::load(format!("{root}/eval/{set}").as_ref()).unwrap();
        let report = eval::messages(&assistant, &messages).await;
        assert!(
            report.escalation_recall() >= min_recall,
            "{set}: recall {:.3}\n{}",
            report.escalation_recall(),
            report.misses.join("\n")
        );
        assert!(
            report.false_escalation_rate() <= 0.05,
            "{set}: false escalations {:.3}",
            report.false_escalation_rate()
        );
    }
    // An answer from the knowledge base is right or not given.
    for set in
        ["retrieval.yaml", "holdout.yaml", "answerable-holdout.yaml", "unanswerable.yaml", "unanswerable-holdout.yaml"]
    {
        let questions: Vec<eval::LabelledQuestion> = eval::load(format!("{root}/eval/{set}").as_ref()).unwrap();
        let report = eval::answers(&assistant, &questions).await;
        assert!(report.wrong * 20 <= report.total, "{set}: {} wrong answers of {}", report.wrong, report.total);
    }
}
