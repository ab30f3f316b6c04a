//! The help desk's side of the conversation, back to the customer: a reply
//! becomes an `agent` message, a close hands the conversation back to the
//! assistant, an assignment says who has it. Frames are stored with their
//! seq and published like every other, so they reach the customer's socket
//! on whichever replica holds it.

use super::DeskEvent;
use crate::chat::{
    ChatService,
    protocol::{HandoffStatus, ServerFrame},
};
use crate::db::{Db, NewMessage, TurnWriter};

#[derive(Debug, PartialEq, Eq)]
pub enum Relayed {
    Relayed,
    /// Not one of our conversations, or already closed.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
    #[error(transparent)]
    Chat(#[from] crate::chat::service::ChatError),
}

pub async fn relay(db: &Db, chat: &ChatService, event: &DeskEvent) -> Result<Relayed, RelayError> {
    let reference = match event {
        DeskEvent::AgentReplied { reference, .. }
        | DeskEvent::Closed { reference }
        | DeskEvent::Assigned { reference, .. } => reference,
    };
    let Some(handed) = db.handed_by_reference(reference).await? else {
        return Ok(Relayed::Unknown);
    };
    if handed.status == HandoffStatus::Closed.as_str() {
        return Ok(Relayed::Unknown);
    }
    let mut w = db.writer(&handed.session_id, &handed.conversation_id).await?;
    let frames = match event {
        DeskEvent::AgentReplied { author, text, .. } => {
            let id = insert(&mut w, "agent", text).await?;
            let mut frames = vec![ServerFrame::plain_message(id, "agent", text.clone(), Some(author.clone()))];
            if handed.status != HandoffStatus::AgentReplied.as_str() {
                w.set_escalation_status(&handed.escalation_id, HandoffStatus::AgentReplied.as_str()).await?;
                frames.push(ServerFrame::handoff(HandoffStatus::AgentReplied, &handed.reason, None, Some(reference)));
            }
            frames
        }
        DeskEvent::Closed { .. } => {
            w.close_escalation(&handed.escalation_id).await?;
            vec![ServerFrame::handoff(HandoffStatus::Closed, &handed.reason, None, Some(reference))]
        }
        DeskEvent::Assigned { assignee, .. } => {
            let text = format!("{assignee} from our team has your conversation.");
            let id = insert(&mut w, "system", &text).await?;
            vec![ServerFrame::plain_message(id, "system", text, None)]
        }
    };
    chat.commit_frames(w, &handed.session_id, frames).await?;
    Ok(Relayed::Relayed)
}

async fn insert(w: &mut TurnWriter, role: &'static str, text: &str) -> Result<String, sqlx::Error> {
    let message = NewMessage { role, reply_to: None, text, intent: None, confidence: None, tools: &[], outcome: None };
    w.insert_message(&message).await
}
