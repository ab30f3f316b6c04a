//! Who is asking: the address every per-client limit is keyed by. It is the
//! TCP peer, unless the peer is one of our `TRUSTED_PROXIES`; then it is the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
//! Only the right-most entries were written by proxies we run; anything left
//! of them came from the client and could be made up.

use std::{
    convert::Infallible,
    net::{IpAddr, Ipv6Addr, SocketAddr},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;

use crate::app::AppState;

/// The networks whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma-separated CIDRs (`10.0.0.0/8, 2001:db8::/32`); a bare address is
    /// one host. The error names the entry that is not a CIDR.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let network = match entry.parse::<IpNet>() {
                Ok(network) => network.trunc(),
                Err(_) => entry.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("`{entry}` is not a CIDR"))?,
            };
            networks.push(network);
        }
        Ok(Self(networks))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|network| network.contains(&ip))
    }
}

/// The client address of a request or upgrade, as [`resolve`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key per-client limits count under: an IPv4 address, or an IPv6
    /// address's /64 (one subscriber usually holds a whole /64).
    pub fn key(self) -> AddressKey {
        match canonical(self.0) {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !(u128::MAX >> 64);
                AddressKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

/// An address as per-client limits count it (see [`ClientAddr::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

/// `203.0.113.9`, or `2001:db8:0:1::/64`: the text other tables key by.
impl std::fmt::Display for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The client behind `peer`, believing `X-Forwarded-For` only from trusted proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientAddr {
    if !trusted.contains(peer) {
        return ClientAddr(canonical(peer));
    }
    // Every hop appends; read from the right, past our own proxies.
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = canonical(peer);
    for entry in forwarded.into_iter().rev() {
        let Ok(hop) = entry.parse::<IpAddr>() else {
            // Not an address: whoever wrote it is the last hop we can name.
            break;
        };
        client = canonical(hop);
        if !trusted.contains(client) {
            break;
        }
    }
    ClientAddr(client)
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, from dual-stack listeners) as IPv4,
/// so one client is one key however it arrived.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        Ok(from_parts(&parts.extensions, &parts.headers, &app.settings.trusted_proxies))
    }
}

/// From a request's extensions (the peer the listener recorded) and headers.
pub fn from_parts(extensions: &axum::http::Extensions, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientAddr {
    // The listener always records the peer; a router driven without one
    // (a unit test) counts as one unknown client.
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from(Ipv6Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
    resolve(peer, headers, trusted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_and_bare_addresses_parse_and_anything_else_is_named() {
        let trusted = TrustedProxies::parse(" 10.0.0.0/8, 2001:db8::/32 ,192.0.2.7").unwrap();
        assert!(trusted.contains(ip("10.1.2.3")));
        assert!(trusted.contains(ip("2001:db8:1::1")));
        assert!(trusted.contains(ip("192.0.2.7")));
        assert!(!trusted.contains(ip("192.0.2.8")));
        assert!(trusted.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped is the IPv4 address");
        assert_eq!(TrustedProxies::parse("").unwrap(), TrustedProxies::default());
        assert_eq!(TrustedProxies::parse("10.0.0.0/33").unwrap_err(), "`10.0.0.0/33` is not a CIDR");
        assert!(TrustedProxies::parse("10.0.0.0/8,proxy.local").unwrap_err().contains("proxy.local"));
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let none = TrustedProxies::default();
        let client = resolve(ip("198.51.100.1"), &forwarded(&["203.0.113.9"]), &none);
        assert_eq!(client, ClientAddr(ip("198.51.100.1")));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client made up the first entry; our proxies appended the rest.
        let headers = forwarded(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &headers, &trusted), ClientAddr(ip("203.0.113.9")));
        // Nothing forwarded: the proxy itself is all we know.
        assert_eq!(resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ClientAddr(ip("10.0.0.1")));
        // Garbage stops the walk at the last hop that was an address.
        let garbage = forwarded(&["203.0.113.9, unknown, 10.0.0.3"]);
        assert_eq!(resolve(ip("10.0.0.1"), &garbage, &trusted), ClientAddr(ip("10.0.0.3")));
    }

    #[test]
    fn ipv4_keys_are_the_address_and_ipv6_keys_the_64() {
        let key = |s| ClientAddr(ip(s)).key();
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"));
        assert_eq!(key("2001:db8:0:1::1"), key("2001:db8:0:1:ffff::2"));
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8:0:2::1"));
        assert_eq!(key("::ffff:203.0.113.9"), key("203.0.113.9"));
        assert_eq!(key("2001:db8:0:1:ffff::2").to_string(), "2001:db8:0:1::/64");
        assert_eq!(key("::ffff:203.0.113.9").to_string(), "203.0.113.9");
    }
}
