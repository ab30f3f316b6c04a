//! Fan-out of a session's frames to every socket of that session on this
//! replica. Frames are persisted before they are published, so a socket that
//! misses some (it lagged, or it was reconnecting) replays them from storage.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;

use crate::db::StoredFrame;

/// How many frames a slow socket may fall behind before it must resync from
/// storage instead.
const CHANNEL_CAPACITY: usize = 64;

/// A frame on its way to sockets: already serialized once for all of them.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// `None` for frames that are not part of the session log (`typing`, `delta`).
    pub seq: Option<i64>,
    pub json: Arc<str>,
    /// Set when the frame carries what an order lookup found: the scope that
    /// may see it (`replay::scope_tag`); other sockets get a placeholder.
    pub scope: Option<Arc<str>>,
}

impl Outbound {
    /// A frame for the socket at hand only, outside the session log.
    pub fn ephemeral(json: String) -> Self {
        Self { seq: None, json: json.into(), scope: None }
    }
}

impl From<StoredFrame> for Outbound {
    fn from(frame: StoredFrame) -> Self {
        Self { seq: Some(frame.seq), json: frame.body.into(), scope: frame.scope.map(Into::into) }
    }
}

#[derive(Default, Clone)]
pub struct Hub {
    // A std mutex: held only to look up or insert a channel, never across `.await`.
    sessions: Arc<Mutex<HashMap<String, broadcast::Sender<Outbound>>>>,
}

impl Hub {
    pub fn subscribe(&self, session_id: &str) -> broadcast::Receiver<Outbound> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.entry(session_id.to_owned()).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).subscribe()
    }

    pub fn publish(&self, session_id: &str, frame: Outbound) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = sessions.get(session_id)
            && sender.send(frame).is_err()
        {
            // Nobody listens any more: forget the session's channel.
            sessions.remove(session_id);
        }
    }

    /// Does any socket on this replica follow the session?
    pub fn has_subscribers(&self, session_id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(session_id).is_some_and(|s| s.receiver_count() > 0)
    }

    /// Called when a socket leaves, so idle sessions do not pin memory.
    pub fn release(&self, session_id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.get(session_id).is_some_and(|s| s.receiver_count() == 0) {
            sessions.remove(session_id);
        }
    }
}
