//! Frames across replicas. Each replica publishes what it commits to its own
//! sockets; on PostgreSQL it also sends a `NOTIFY` in the same transaction,
//! and every other replica that has a socket of that session loads the new
//! frames from storage and publishes them locally. Sockets drop frames they
//! already have by `seq`, so a frame that arrives both ways is shown once.
//!
//! Knowledge-base edits travel the same way: each replica re-indexes an
//! article another one changed, and after any (re)connection, when notices
//! may have been missed, re-reads the whole knowledge base.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Outbound};
use crate::{
    db::{Db, KNOWLEDGE_CHANNEL},
    knowledge::KnowledgeBase,
};

const CHANNEL: &str = "assistant_frames";

/// Listens until `shutdown`, reconnecting after failures. `listening` tells
/// `/readyz` whether this replica currently hears the others.
pub async fn relay(
    database_url: String,
    replica_id: String,
    db: Db,
    hub: Hub,
    knowledge: Arc<KnowledgeBase>,
    listening: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    while !shutdown.is_cancelled() {
        let mut listener = match connect(&database_url).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cross-replica relay cannot listen; retrying");
                shutdown.run_until_cancelled(tokio::time::sleep(backoff)).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        listening.store(true, Ordering::SeqCst);
        let refresh = knowledge.clone();
        tokio::spawn(async move {
            if let Err(error) = refresh.reindex(false, &indicatif::ProgressBar::hidden()).await {
                tracing::warn!(%error, "cannot re-read the knowledge base after connecting");
            }
        });
        while let Some(received) = shutdown.run_until_cancelled(listener.recv()).await {
            let notification = match received {
                Ok(notification) => notification,
                Err(error) => {
                    tracing::warn!(%error, "cross-replica relay lost its connection");
                    listening.store(false, Ordering::SeqCst);
                    break;
                }
            };
            if notification.channel() == KNOWLEDGE_CHANNEL {
                let (knowledge, payload) = (knowledge.clone(), notification.payload().to_owned());
                tokio::spawn(async move {
                    if let Err(error) = knowledge.apply_remote_change(&payload).await {
                        tracing::warn!(%error, "cannot apply another replica's knowledge-base edit");
                    }
                });
                continue;
            }
            let mut parts = notification.payload().splitn(3, ' ');
            let (Some(from), Some(session_id), Some(after)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if from == replica_id || !hub.has_subscribers(session_id) {
                continue;
            }
            let Ok(after) = after.parse::<i64>() else { continue };
            match db.frames_after(session_id, after).await {
                Ok(frames) => {
                    for frame in frames {
                        hub.publish(session_id, Outbound::from(frame));
                    }
                }
                Err(error) => tracing::warn!(%error, "cross-replica relay cannot load frames"),
            }
        }
    }
}

async fn connect(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen_all([CHANNEL, KNOWLEDGE_CHANNEL]).await?;
    Ok(listener)
}
