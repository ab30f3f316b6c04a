//! The help desk behind a trait, as the store is: Intercom today, another
//! desk later. Nothing in the turn or the outbox knows which one it is.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One error type for the help-desk boundary. The outbox only needs to know
/// whether trying again can help, and when.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// Down, timing out, or rate limiting: the same step may succeed later.
    #[error("the help desk is unavailable: {message}")]
    Retryable { message: String, retry_after: Option<Duration> },
    /// The desk refused the request as it stands (bad token, bad request).
    #[error("the help desk refused the request: {0}")]
    Permanent(String),
}

impl DeskError {
    pub fn retryable(message: impl Into<String>) -> Self {
        DeskError::Retryable { message: message.into(), retry_after: None }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeskError::Retryable { retry_after, .. } => *retry_after,
            DeskError::Permanent(_) => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, DeskError::Retryable { .. })
    }
}

/// Who the customer is, as far as the desk may know: the allowlisted fields only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Customer {
    /// The store's customer id, for a signed-in customer.
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
}

impl Customer {
    /// Known to the store (signed in, or proved an order's email): a `user`;
    /// otherwise an anonymous `lead`.
    pub fn identified(&self) -> bool {
        self.external_id.is_some() || self.email.is_some()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    User,
    Lead,
}

impl ContactRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactRole::User => "user",
            ContactRole::Lead => "lead",
        }
    }
}

/// The desk's own record of the customer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub role: ContactRole,
}

/// What makes a create safely retryable: a key the desk can find the
/// earlier result by, and when the first attempt was made.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// Unique per step (an escalation id, a message id).
    pub key: &'a str,
    /// Unix seconds of the first attempt: nothing older can be this step's result.
    pub first_tried_at: i64,
    /// Whether an earlier attempt may already have reached the desk.
    pub retry: bool,
}

/// What the desk tells us happened to a conversation (its webhooks, parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskEvent {
    /// A person answered the customer; `text` is plain (safe) text.
    AgentReplied { reference: String, author: String, text: String },
    /// The person closed it: the assistant answers again.
    Closed { reference: String },
    /// Someone took the conversation over.
    Assigned { reference: String, assignee: String },
}

#[async_trait]
pub trait HelpDesk: Send + Sync {
    /// Finds the customer's contact (by store id, then email, then phone) or
    /// creates one; a desk that says "already exists" has found it.
    async fn find_or_create_contact(&self, customer: &Customer) -> Result<Contact, DeskError>;

    /// Opens a conversation as the contact, in the customer's own words.
    /// Returns the desk's conversation id.
    async fn open_conversation(&self, contact: &Contact, text: &str, attempt: Attempt<'_>)
    -> Result<String, DeskError>;

    /// An internal note for the agents (HTML).
    async fn add_note(&self, conversation_id: &str, html: &str, attempt: Attempt<'_>) -> Result<(), DeskError>;

    /// Tags the conversation; tagging twice is harmless.
    async fn tag(&self, conversation_id: &str, tags: &[String]) -> Result<(), DeskError>;

    /// Hands the conversation to a team; assigning twice is harmless.
    async fn assign_team(&self, conversation_id: &str, team_id: &str) -> Result<(), DeskError>;

    /// Appends a later customer message to the conversation, as the contact.
    async fn reply_as_contact(
        &self,
        conversation_id: &str,
        contact: &Contact,
        text: &str,
        attempt: Attempt<'_>,
    ) -> Result<(), DeskError>;
}
