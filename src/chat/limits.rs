//! Abuse limits of the chat gateway: a cap on open sockets, on open sockets
//! per client address, and on sockets that have not said `hello` yet;
//! client frames per minute per connection and per client address; an idle
//! timeout and a hello timeout.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ChatLimits;
use crate::http::client_addr::AddressKey;

pub struct Guards {
    connections: Arc<Semaphore>,
    /// Places for sockets that have not said `hello`: a socket that never
    /// does holds one of these, not one of the few per address or the many overall.
    pending_hello: Arc<Semaphore>,
    per_address: Arc<OpenPerAddress>,
    per_ip: DefaultKeyedRateLimiter<AddressKey>,
    per_connection: Quota,
    pub idle_timeout: Duration,
    pub hello_timeout: Duration,
}

/// Why a socket was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every place, or every place for sockets before `hello`, is taken.
    Full,
    /// This client address holds its share of sockets already.
    AddressFull,
}

/// One socket's places, released as it says hello and as it closes.
pub struct Admission {
    _connection: OwnedSemaphorePermit,
    _address: AddressSlot,
    pending_hello: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// The socket said hello: its place in the pending pool is free again.
    pub fn said_hello(&mut self) {
        self.pending_hello = None;
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Guards {
    pub fn new(limits: &ChatLimits) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            pending_hello: Arc::new(Semaphore::new(limits.max_pending_hello)),
            per_address: Arc::new(OpenPerAddress { limit: limits.max_connections_per_address, open: Mutex::default() }),
            per_ip: DefaultKeyedRateLimiter::keyed(per_minute(limits.messages_per_minute_per_ip)),
            per_connection: per_minute(limits.messages_per_minute),
            idle_timeout: limits.idle_timeout,
            hello_timeout: limits.hello_timeout,
        }
    }

    /// Places for one more socket from `client`, held for as long as it is
    /// open (the pending one until it says hello).
    pub fn admit(&self, client: AddressKey) -> Result<Admission, Refusal> {
        let address = OpenPerAddress::take(&self.per_address, client).ok_or(Refusal::AddressFull)?;
        let pending_hello = self.pending_hello.clone().try_acquire_owned().map_err(|_| Refusal::Full)?;
        let connection = self.connections.clone().try_acquire_owned().map_err(|_| Refusal::Full)?;
        Ok(Admission { _connection: connection, _address: address, pending_hello: Some(pending_hello) })
    }

    pub fn connection_limiter(&self) -> DefaultDirectRateLimiter {
        DefaultDirectRateLimiter::direct(self.per_connection)
    }

    /// May this connection, from this client, send another frame now?
    pub fn allow(&self, client: AddressKey, connection: &DefaultDirectRateLimiter) -> bool {
        connection.check().is_ok() && self.per_ip.check_key(&client).is_ok()
    }

    /// Forgets addresses that have been quiet, so the table stays small.
    pub fn sweep(&self) {
        self.per_ip.retain_recent();
    }
}

/// Open sockets by client address. Entries go when their last socket
/// closes, so the table is as big as the set of connected addresses.
struct OpenPerAddress {
    limit: usize,
    open: Mutex<HashMap<AddressKey, usize>>,
}

impl OpenPerAddress {
    fn take(this: &Arc<Self>, client: AddressKey) -> Option<AddressSlot> {
        let mut open = this.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(client).or_default();
        if *count >= this.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot { table: this.clone(), client })
    }
}

/// One socket's share of its address, given back on drop.
struct AddressSlot {
    table: Arc<OpenPerAddress>,
    client: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client_addr::ClientAddr;

    fn limits(max_connections: usize, per_address: usize, pending: usize) -> ChatLimits {
        ChatLimits {
            max_connections,
            max_connections_per_address: per_address,
            max_pending_hello: pending,
            hello_timeout: Duration::from_secs(10),
            allowed_origins: None,
            messages_per_minute: 20,
            messages_per_minute_per_ip: 120,
            idle_timeout: Duration::from_secs(900),
        }
    }

    fn key(ip: &str) -> AddressKey {
        ClientAddr(ip.parse().unwrap()).key()
    }

    #[test]
    fn an_address_gets_its_share_back_when_a_socket_closes() {
        let guards = Guards::new(&limits(10, 2, 10));
        let first = guards.admit(key("192.0.2.1")).unwrap();
        let second = guards.admit(key("192.0.2.1")).unwrap();
        assert_eq!(guards.admit(key("192.0.2.1")).err(), Some(Refusal::AddressFull));
        assert!(guards.admit(key("192.0.2.2")).is_ok(), "another address has its own share");
        drop(first);
        assert!(guards.admit(key("192.0.2.1")).is_ok());
        drop(second);
        assert!(guards.per_address.open.lock().unwrap().is_empty(), "closed addresses are forgotten");
    }

    #[test]
    fn sockets_before_hello_have_a_pool_of_their_own() {
        let guards = Guards::new(&limits(10, 10, 1));
        let mut first = guards.admit(key("192.0.2.1")).unwrap();
        assert_eq!(guards.admit(key("192.0.2.2")).err(), Some(Refusal::Full));
        first.said_hello();
        assert!(guards.admit(key("192.0.2.2")).is_ok());
    }
}
