//! The client's IP address: the TCP peer, or the last untrusted hop of `X-Forwarded-For` when
//! the peer is one of `[web] trusted_proxies`. A header from anyone else is ignored, so a
//! client cannot pick its own rate-limit key. [`network_key`] is what the limits count a client
//! under (an IPv6 /64 is one client).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;

/// The address a request came from, as far as we can trust it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(client_ip(
            peer,
            &parts.headers,
            &state.settings.web.trusted_proxies,
        )))
    }
}

/// Resolves the client address from the peer and the forwarding header.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer.to_canonical()) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .collect();
    // Walk from the nearest hop outwards; the first one we do not run is the client.
    hops.into_iter()
        .rev()
        .map(|ip| ip.to_canonical())
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// The key a client is counted under by the sign-up rate limit and the per-client connection
/// cap: its IPv4 address (`::ffff:a.b.c.d` as `a.b.c.d`), or for IPv6 its /64 network (one
/// subscriber line or host usually holds a whole /64, so per-address limits would not hold).
pub fn network_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The request's User-Agent, shortened to something reasonable for a consent record.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers
        .get(axum::http::header::USER_AGENT)?
        .to_str()
        .ok()?
        .trim();
    if ua.is_empty() {
        return None;
    }
    Some(ua.chars().filter(|c| !c.is_control()).take(512).collect())
}

/// What the consent record keeps of a request: its address and user agent, when
/// `[web] record_consent_ip` is on; nothing otherwise.
pub fn consent_evidence(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
) -> (Option<String>, Option<String>) {
    if state.settings.web.record_consent_ip {
        (Some(ip.to_string()), user_agent(headers))
    } else {
        (None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn forwarded_header_from_an_untrusted_peer_is_ignored() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &xff("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn trusted_proxy_yields_the_last_untrusted_hop() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let got = client_ip(
            proxy,
            &xff("6.6.6.6, 198.51.100.7, 10.0.0.2"),
            &[proxy, inner],
        );
        assert_eq!(got, "198.51.100.7".parse::<IpAddr>().unwrap());
        // No usable header: the proxy itself.
        assert_eq!(client_ip(proxy, &xff("garbage"), &[proxy]), proxy);
        // A mapped IPv6 peer counts as its IPv4 address.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(mapped, &xff("198.51.100.8"), &[proxy]),
            "198.51.100.8".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_and_ipv4_per_address() {
        let key = |s: &str| network_key(s.parse().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("192.0.2.1"), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
    }
}
