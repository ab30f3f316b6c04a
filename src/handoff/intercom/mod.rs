//! Intercom as the [`HelpDesk`]: contacts, conversations, notes, tags and
//! team assignment over the REST API (version from `INTERCOM_API_VERSION`).
//!
//! Creates are made safely retryable: a conversation carries a reference
//! token (searched for before a retry creates again), a note carries the
//! same token (looked for among the conversation's parts), and a customer
//! reply on retry is looked for among the contact's parts since the first try.

mod client;
pub mod html;
pub mod webhook;

use std::{collections::HashMap, sync::Mutex, time::Duration};

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use self::client::{Client, Failure};
use super::desk::{Attempt, Contact, ContactRole, Customer, DeskError, HelpDesk};
use crate::config::IntercomSettings;

/// How long Intercom's search may trail a write. A conversation create that
/// failed without an answer may have happened, so its retry (which searches
/// first) waits at least this long for the search to see it.
const SEARCH_LAG: Duration = Duration::from_secs(20);

pub struct Intercom {
    client: Client,
    /// `INTERCOM_ADMIN_ID`, or the token's own admin from `GET /me`, asked once.
    admin_id: OnceCell<String>,
    /// Tag ids by name: tags are created once per process, then reused.
    tags: Mutex<HashMap<String, String>>,
}

/// The token Intercom searches for: one word, so `source.body` search finds it.
pub fn reference_token(key: &str) -> String {
    format!("SA{}", key.replace('-', ""))
}

impl Intercom {
    pub fn new(settings: &IntercomSettings) -> Result<Self, reqwest::Error> {
        let admin_id = OnceCell::new_with(settings.admin_id.clone());
        Ok(Self { client: Client::new(settings)?, admin_id, tags: Mutex::default() })
    }

    async fn admin_id(&self) -> Result<&str, DeskError> {
        let id = self
            .admin_id
            .get_or_try_init(|| async {
                let me = self.client.call(Method::GET, "/me", None).await?;
                me["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| DeskError::Permanent("GET /me has no admin id".into()))
            })
            .await?;
        Ok(id.as_str())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, DeskError> {
        Ok(self.client.call(Method::POST, path, Some(&body)).await?)
    }

    /// The first contact whose `field` equals `value`.
    async fn search_contact(&self, field: &str, value: &str) -> Result<Option<Contact>, DeskError> {
        let query = json!({ "query": { "field": field, "operator": "=", "value": value } });
        let found = self.post("/contacts/search", query).await?;
        Ok(found["data"].as_array().and_then(|d| d.first()).and_then(contact))
    }

    async fn conversation(&self, id: &str) -> Result<Value, DeskError> {
        Ok(self.client.call(Method::GET, &format!("/conversations/{id}"), None).await?)
    }

    /// Parts of the conversation (notes, comments), oldest first.
    async fn parts(&self, conversation_id: &str) -> Result<Vec<Value>, DeskError> {
        let conversation = self.conversation(conversation_id).await?;
        Ok(conversation["conversation_parts"]["conversation_parts"].as_array().cloned().unwrap_or_default())
    }

    async fn tag_id(&self, name: &str) -> Result<String, DeskError> {
        if let Some(id) = self.tags.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(id.clone());
        }
        // Creating a tag that exists returns it: the call is its own lookup.
        let tag = self.post("/tags", json!({ "name": name })).await?;
        let id = tag["id"].as_str().ok_or_else(|| DeskError::Permanent("a tag without an id".into()))?.to_owned();
        self.tags.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), id.clone());
        Ok(id)
    }
}

fn contact(value: &Value) -> Option<Contact> {
    let role = if value["role"].as_str() == Some("lead") { ContactRole::Lead } else { ContactRole::User };
    Some(Contact { id: value["id"].as_str()?.to_owned(), role })
}

/// `A contact matching those details already exists with id=…`
fn existing_contact_id(message: &str) -> Option<String> {
    let id = message.split("id=").nth(1)?;
    let id: String = id.chars().take_while(char::is_ascii_alphanumeric).collect();
    (!id.is_empty()).then_some(id)
}

#[async_trait]
impl HelpDesk for Intercom {
    #[tracing::instrument(skip_all)]
    async fn find_or_create_contact(&self, customer: &Customer) -> Result<Contact, DeskError> {
        let keys = [("external_id", &customer.external_id), ("email", &customer.email), ("phone", &customer.phone)];
        for (field, value) in keys {
            if let Some(value) = value
                && let Some(found) = self.search_contact(field, value).await?
            {
                return Ok(found);
            }
        }
        let role = if customer.identified() { ContactRole::User } else { ContactRole::Lead };
        let mut body = json!({ "role": role.as_str() });
        for (field, value) in [
            ("external_id", &customer.external_id),
            ("email", &customer.email),
            ("phone", &customer.phone),
            ("name", &customer.name),
        ] {
            if let Some(value) = value {
                body[field] = json!(value);
            }
        }
        match self.client.call(Method::POST, "/contacts", Some(&body)).await {
            Ok(created) => contact(&created).ok_or_else(|| DeskError::Permanent("a contact without an id".into())),
            // Made between our search and our create (or not yet searchable): a match.
            Err(Failure::Refused(r)) if r.status == StatusCode::CONFLICT => match existing_contact_id(r.message()) {
                Some(id) => Ok(Contact { id, role }),
                None => Err(DeskError::retryable("Intercom says the contact exists but not which it is")),
            },
            Err(failure) => Err(failure.into()),
        }
    }

    #[tracing::instrument(skip_all, fields(key = attempt.key))]
    async fn open_conversation(
        &self,
        contact: &Contact,
        text: &str,
        attempt: Attempt<'_>,
    ) -> Result<String, DeskError> {
        let token = reference_token(attempt.key);
        if attempt.retry {
            let query = json!({ "query": { "operator": "AND", "value": [
                { "field": "contact_ids", "operator": "=", "value": contact.id },
                { "field": "source.body", "operator": "=", "value": token },
            ] } });
            let found = self.post("/conversations/search", query).await?;
            if let Some(id) = found["conversations"].as_array().and_then(|c| c.first()).and_then(|c| c["id"].as_str()) {
                return Ok(id.to_owned());
            }
        }
        let body = format!("{text}\n\nReference: {token}");
        let from = json!({ "type": contact.role.as_str(), "id": contact.id });
        let request = json!({ "from": from, "body": body });
        let created = match self.client.call(Method::POST, "/conversations", Some(&request)).await {
            Ok(created) => created,
            // Refused before anything was made (rate limited, bad request): the usual rules.
            Err(Failure::Refused(r)) if r.status.is_client_error() => return Err(Failure::Refused(r).into()),
            // It may have been made: the retry searches first, so give the search time to see it.
            Err(failure) => {
                let lagged = |wait: Option<Duration>| Some(wait.unwrap_or_default().max(SEARCH_LAG));
                return Err(match DeskError::from(failure) {
                    DeskError::Retryable { message, retry_after } => {
                        DeskError::Retryable { message, retry_after: lagged(retry_after) }
                    }
                    permanent => permanent,
                });
            }
        };
        let id = created["conversation_id"].as_str().or_else(|| created["id"].as_str());
        id.map(str::to_owned).ok_or_else(|| DeskError::Permanent("a new conversation without an id".into()))
    }

    #[tracing::instrument(skip_all, fields(conversation = conversation_id, key = attempt.key))]
    async fn add_note(&self, conversation_id: &str, html: &str, attempt: Attempt<'_>) -> Result<(), DeskError> {
        let token = reference_token(attempt.key);
        if attempt.retry {
            let parts = self.parts(conversation_id).await?;
            let noted = parts.iter().any(|p| {
                p["part_type"].as_str() == Some("note") && p["body"].as_str().is_some_and(|b| b.contains(&token))
            });
            if noted {
                return Ok(());
            }
        }
        let admin_id = self.admin_id().await?;
        let body = format!("{html}<p>Reference: {token}</p>");
        let note = json!({ "message_type": "note", "type": "admin", "admin_id": admin_id, "body": body });
        self.post(&format!("/conversations/{conversation_id}/reply"), note).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(conversation = conversation_id))]
    async fn tag(&self, conversation_id: &str, tags: &[String]) -> Result<(), DeskError> {
        let admin_id = self.admin_id().await?.to_owned();
        for name in tags {
            let id = self.tag_id(name).await?;
            self.post(&format!("/conversations/{conversation_id}/tags"), json!({ "id": id, "admin_id": admin_id }))
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(conversation = conversation_id, team = team_id))]
    async fn assign_team(&self, conversation_id: &str, team_id: &str) -> Result<(), DeskError> {
        let admin_id = self.admin_id().await?;
        let assignment =
            json!({ "message_type": "assignment", "type": "team", "admin_id": admin_id, "assignee_id": team_id });
        self.post(&format!("/conversations/{conversation_id}/parts"), assignment).await.map(drop)
    }

    #[tracing::instrument(skip_all, fields(conversation = conversation_id, key = attempt.key))]
    async fn reply_as_contact(
        &self,
        conversation_id: &str,
        contact: &Contact,
        text: &str,
        attempt: Attempt<'_>,
    ) -> Result<(), DeskError> {
        if attempt.retry {
            let parts = self.parts(conversation_id).await?;
            let sent = parts.iter().any(|p| {
                p["author"]["id"].as_str() == Some(contact.id.as_str())
                    && p["created_at"].as_i64().unwrap_or(0) >= attempt.first_tried_at - 1
                    && p["body"].as_str().is_some_and(|b| html::to_text(b) == text.trim())
            });
            if sent {
                return Ok(());
            }
        }
        let reply = json!({ "message_type": "comment", "type": "user", "intercom_user_id": contact.id, "body": text });
        self.post(&format!("/conversations/{conversation_id}/reply"), reply).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_names_the_contact_that_exists() {
        let message = "A contact matching those details already exists with id=5f9a1b2c3d4e5f6a7b8c9d0e";
        assert_eq!(existing_contact_id(message).as_deref(), Some("5f9a1b2c3d4e5f6a7b8c9d0e"));
        assert_eq!(existing_contact_id("conflict"), None);
        assert_eq!(reference_token("a1-b2"), "SAa1b2");
    }
}
