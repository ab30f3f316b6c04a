//! Abuse limits of the chat gateway: a cap on open sockets, customer frames
//! per minute per connection and per IP address, and an idle timeout.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ChatLimits;

pub struct Guards {
    connections: Arc<Semaphore>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_connection: Quota,
    pub idle_timeout: Duration,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Guards {
    pub fn new(limits: &ChatLimits) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            per_ip: DefaultKeyedRateLimiter::keyed(per_minute(limits.messages_per_minute_per_ip)),
            per_connection: per_minute(limits.messages_per_minute),
            idle_timeout: limits.idle_timeout,
        }
    }

    /// A place for one more socket, held for as long as it is open; `None`
    /// when the service is full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    pub fn connection_limiter(&self) -> DefaultDirectRateLimiter {
        DefaultDirectRateLimiter::direct(self.per_connection)
    }

    /// May this connection, from this address, send another frame now?
    pub fn allow(&self, ip: IpAddr, connection: &DefaultDirectRateLimiter) -> bool {
        connection.check().is_ok() && self.per_ip.check_key(&ip).is_ok()
    }

    /// Forgets addresses that have been quiet, so the table stays small.
    pub fn sweep(&self) {
        self.per_ip.retain_recent();
    }
}
