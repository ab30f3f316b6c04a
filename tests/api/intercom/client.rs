//! The Intercom help desk on its own: contacts, conversations, notes, tags,
//! assignment, and how each failure is reported to its caller.

use std::time::Duration;

use storefront_assistant::{
    config::Settings,
    handoff::{Attempt, ContactRole, Customer, HelpDesk, intercom::Intercom},
};

use super::mock::{Fault, MockContact, MockIntercom};

fn desk(mock: &MockIntercom) -> Intercom {
    let vars = mock.settings();
    let settings = Settings::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
        .expect("valid settings");
    Intercom::new(settings.intercom.as_ref().expect("Intercom is configured")).expect("a client")
}

fn ava() -> Customer {
    Customer {
        external_id: Some("7001".into()),
        email: Some("ava@example.com".into()),
        name: Some("Ava Chen".into()),
        phone: None,
    }
}

fn first_try(key: &str) -> Attempt<'_> {
    Attempt { key, first_tried_at: 0, retry: false }
}

fn retry(key: &str) -> Attempt<'_> {
    Attempt { key, first_tried_at: 0, retry: true }
}

#[tokio::test]
async fn a_known_customer_is_found_by_store_id_before_anything_is_created() {
    let mock = MockIntercom::start().await;
    let existing = MockContact::unsearchable_user("5f0000000000000000000abc", Some("7001"), None);
    mock.add_contact(MockContact { unsearchable: false, ..existing });
    let contact = desk(&mock).find_or_create_contact(&ava()).await.unwrap();
    assert_eq!(contact.id, "5f0000000000000000000abc");
    assert_eq!(mock.contacts().len(), 1, "no second contact");
    assert_eq!(mock.requests(), ["POST /contacts/search"]);
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_new_signed_in_customer_becomes_a_user_and_a_guest_a_lead() {
    let mock = MockIntercom::start().await;
    let desk = desk(&mock);
    let user = desk.find_or_create_contact(&ava()).await.unwrap();
    assert_eq!(user.role, ContactRole::User);
    let lead = desk.find_or_create_contact(&Customer::default()).await.unwrap();
    assert_eq!(lead.role, ContactRole::Lead);
    let contacts = mock.contacts();
    assert_eq!(contacts[0].external_id.as_deref(), Some("7001"));
    assert_eq!((contacts[0].role.as_str(), contacts[1].role.as_str()), ("user", "lead"));
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_409_on_contact_create_is_the_contact_that_already_exists() {
    let mock = MockIntercom::start().await;
    // Made moments ago, so Intercom's search does not have it yet.
    mock.add_contact(MockContact::unsearchable_user("5f0000000000000000000def", None, Some("ava@example.com")));
    let contact = desk(&mock).find_or_create_contact(&ava()).await.expect("a conflict is a match");
    assert_eq!(contact.id, "5f0000000000000000000def");
    assert_eq!(mock.contacts().len(), 1);
}

#[tokio::test]
async fn a_conversation_whose_answer_was_lost_is_found_on_retry_not_opened_twice() {
    let mock = MockIntercom::start().await;
    let desk = desk(&mock);
    let contact = desk.find_or_create_contact(&ava()).await.unwrap();
    mock.then(Fault::LoseResponse);
    let lost = desk.open_conversation(&contact, "My parcel never came.", first_try("esc-1")).await.unwrap_err();
    assert!(lost.is_retryable(), "{lost}");
    let wait = lost.retry_after().unwrap_or_default();
    assert!(wait >= Duration::from_secs(20), "the retry waits for Intercom's search to catch up: {wait:?}");
    mock.then(Fault::RateLimited(2));
    let limited = desk.open_conversation(&contact, "My parcel never came.", first_try("esc-1b")).await.unwrap_err();
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)), "a refused create made nothing: no extra wait");
    let id = desk.open_conversation(&contact, "My parcel never came.", retry("esc-1")).await.unwrap();
    let conversations = mock.conversations();
    assert_eq!(conversations.len(), 1, "one conversation");
    assert_eq!(conversations[0].id, id);
    assert!(conversations[0].body.starts_with("My parcel never came."), "the customer's own words");

    mock.then(Fault::LoseResponse);
    assert!(desk.add_note(&id, "<p>Context</p>", first_try("esc-1")).await.is_err());
    desk.add_note(&id, "<p>Context</p>", retry("esc-1")).await.unwrap();
    assert_eq!(mock.conversations()[0].notes().len(), 1, "one note");

    mock.then(Fault::LoseResponse);
    assert!(desk.reply_as_contact(&id, &contact, "Any news?", first_try("m2")).await.is_err());
    desk.reply_as_contact(&id, &contact, "Any news?", retry("m2")).await.unwrap();
    desk.reply_as_contact(&id, &contact, "Any news?", first_try("m3")).await.unwrap();
    assert_eq!(mock.conversations()[0].comments().len(), 2, "the retry added nothing; a new message did");
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn tags_and_a_team_assignment_reach_the_conversation() {
    let mock = MockIntercom::start().await;
    let desk = desk(&mock);
    let contact = desk.find_or_create_contact(&ava()).await.unwrap();
    let id = desk.open_conversation(&contact, "I want a refund", first_try("esc-2")).await.unwrap();
    desk.tag(&id, &["sensitive_topic".into(), "assistant-handoff".into()]).await.unwrap();
    desk.assign_team(&id, "123").await.unwrap();
    let conversation = &mock.conversations()[0];
    let tags: Vec<String> = conversation.tags.iter().filter_map(|t| mock.tag_name(t)).collect();
    assert_eq!(tags, ["sensitive_topic", "assistant-handoff"]);
    assert_eq!(conversation.team_id.as_deref(), Some("123"));
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn outages_and_rate_limits_are_retryable_and_refusals_are_not() {
    let mock = MockIntercom::start().await;
    let desk = desk(&mock);
    mock.then(Fault::Status(503));
    assert!(desk.find_or_create_contact(&ava()).await.unwrap_err().is_retryable());
    mock.then(Fault::RateLimited(7));
    let limited = desk.find_or_create_contact(&ava()).await.unwrap_err();
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
    mock.then(Fault::Stall(Duration::from_secs(5)));
    assert!(desk.find_or_create_contact(&ava()).await.unwrap_err().is_retryable(), "a timeout is retried");
    mock.then(Fault::Status(401));
    assert!(!desk.find_or_create_contact(&ava()).await.unwrap_err().is_retryable());
}
