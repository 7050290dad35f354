//! The one shared HTTP client for sources and article pages: a user agent, connect and total
//! timeouts, a byte cap enforced on the decompressed body while it streams, a semaphore per host,
//! retries with backoff on 5xx and timeouts, and an SSRF guard.
//!
//! The guard refuses non-http(s) schemes and any address that is loopback, private, link-local,
//! CGNAT, multicast, unspecified, reserved or an IPv4-mapped/NAT64 form of those. It applies to
//! IP-literal hosts (including decimal and hex IPv4 forms, which the `url` crate normalises) before
//! any connection, to every address a name resolves to (a custom `reqwest::dns::Resolve` wrapping
//! an injectable [`HostResolver`]) and again on every redirect hop.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;

use crate::config::FetchSettings;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("refused {url}: {reason}")]
    Refused { url: String, reason: String },
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
}

impl FetchError {
    fn retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status >= 500,
            FetchError::Timeout { .. } | FetchError::Transport { .. } => true,
            FetchError::Refused { .. } | FetchError::TooLarge { .. } => false,
        }
    }
}

/// A successful (2xx or 304) response, body capped.
#[derive(Clone, Debug)]
pub struct FetchedBody {
    pub status: u16,
    pub final_url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl FetchedBody {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub type ResolveFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Name resolution, injectable so tests can make a name resolve to any address.
pub trait HostResolver: Send + Sync {
    fn resolve(&self, host: &str) -> ResolveFuture;
}

/// The system resolver (tokio's `lookup_host`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve(&self, host: &str) -> ResolveFuture {
        let host = host.to_string();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Which addresses may be contacted.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    /// `[fetch] allow_private_addresses`: everything is allowed (loopback tests).
    pub allow_private: bool,
    /// Addresses allowed even though they are private (a test's own fixture listener).
    pub exempt: Vec<IpAddr>,
}

impl AddressPolicy {
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || self.exempt.contains(&ip) || is_public(ip)
    }
}

/// Whether an address is a public unicast address that an outside fetch may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            // NAT64 64:ff9b::/96 embeds an IPv4 address.
            if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
                let o = v6.octets();
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            // IPv4-compatible ::a.b.c.d (deprecated) is refused outright.
            if seg[..6].iter().all(|s| *s == 0) {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || seg[0] == 0x2002 // 6to4 may embed private IPv4
                || (seg[0] == 0x2001 && seg[1] == 0)) // Teredo
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0 // 0.0.0.0/8
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240) // reserved 240.0.0.0/4
}

/// Checks a URL before any connection: scheme, and the address when the host is an IP literal.
pub fn check_url(url: &Url, policy: &AddressPolicy) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    match url.host() {
        None => Err("the URL has no host".into()),
        Some(url::Host::Ipv4(v4)) if !policy.allows(IpAddr::V4(v4)) => {
            Err(format!("address {v4} is not public"))
        }
        Some(url::Host::Ipv6(v6)) if !policy.allows(IpAddr::V6(v6)) => {
            Err(format!("address {v6} is not public"))
        }
        Some(_) => Ok(()),
    }
}

/// reqwest's resolver: resolves through the injected resolver and drops forbidden addresses.
struct GuardedResolver {
    inner: Arc<dyn HostResolver>,
    policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let fut = self.inner.resolve(&host);
        let policy = self.policy.clone();
        Box::pin(async move {
            let ips = fut.await?;
            let allowed: Vec<SocketAddr> = ips
                .iter()
                .filter(|ip| policy.allows(**ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if allowed.is_empty() {
                let msg = format!(
                    "{host} resolves only to non-public addresses ({}); refused",
                    ips.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, msg).into());
            }
            let it: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(it)
        })
    }
}

/// The shared client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: AddressPolicy,
    max_bytes: u64,
    retries: u32,
    per_host: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    backoff: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish()
    }
}

impl HttpClient {
    /// A client with the system resolver.
    pub fn new(settings: &FetchSettings) -> anyhow::Result<HttpClient> {
        Self::with_resolver(settings, Arc::new(SystemResolver), Vec::new())
    }

    /// A client with an injected resolver and addresses exempt from the guard.
    pub fn with_resolver(
        settings: &FetchSettings,
        resolver: Arc<dyn HostResolver>,
        exempt: Vec<IpAddr>,
    ) -> anyhow::Result<HttpClient> {
        let policy = AddressPolicy {
            allow_private: settings.allow_private_addresses,
            exempt,
        };
        let redirect_policy = policy.clone();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match check_url(attempt.url(), &redirect_policy) {
                Ok(()) => attempt.follow(),
                Err(reason) => {
                    let msg = format!("redirect to {} refused: {reason}", attempt.url());
                    attempt.error(msg)
                }
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json, application/rss+xml, application/atom+xml, application/xml;q=0.9, text/html;q=0.8, */*;q=0.5"),
        );
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .timeout(Duration::from_secs(settings.timeout_secs))
            .redirect(redirect)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                inner: resolver,
                policy: policy.clone(),
            }))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(HttpClient {
            client,
            policy,
            max_bytes: settings.max_bytes,
            retries: settings.retries,
            per_host: settings.per_host_concurrency.max(1),
            hosts: Arc::new(Mutex::new(HashMap::new())),
            backoff: Duration::from_millis(250),
        })
    }

    fn host_permit(&self, host: &str) -> Arc<Semaphore> {
        let mut map = match self.hosts.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// GET with retries; `headers` are added (conditional GET validators).
    pub async fn get(
        &self,
        raw_url: &str,
        headers: &[(&str, String)],
    ) -> Result<FetchedBody, FetchError> {
        let url = Url::parse(raw_url).map_err(|e| FetchError::Refused {
            url: raw_url.to_string(),
            reason: format!("not a URL: {e}"),
        })?;
        check_url(&url, &self.policy).map_err(|reason| FetchError::Refused {
            url: raw_url.to_string(),
            reason,
        })?;
        let host = url.host_str().unwrap_or_default().to_string();
        let sem = self.host_permit(&host);
        let mut attempt = 0;
        loop {
            let result = {
                let _permit = sem.acquire().await.map_err(|_| FetchError::Transport {
                    url: raw_url.to_string(),
                    reason: "client shut down".into(),
                })?;
                self.get_once(&url, headers).await
            };
            match result {
                Err(e) if e.retryable() && attempt < self.retries => {
                    attempt += 1;
                    let wait = self.backoff * 2u32.saturating_pow(attempt - 1);
                    tracing::debug!(url = %raw_url, attempt, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn get_once(
        &self,
        url: &Url,
        headers: &[(&str, String)],
    ) -> Result<FetchedBody, FetchError> {
        let shown = url.to_string();
        let mut req = self.client.get(url.clone());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let map_err = |e: reqwest::Error| classify_error(&shown, e);
        let mut resp = req.send().await.map_err(map_err)?;
        let status = resp.status();
        if !(status.is_success() || status == StatusCode::NOT_MODIFIED) {
            return Err(FetchError::Status {
                url: shown.clone(),
                status: status.as_u16(),
            });
        }
        if let Some(len) = resp.content_length() {
            // Content-Length is the compressed size when compressed; only a hint here.
            if len > self.max_bytes
                && resp
                    .headers()
                    .get(reqwest::header::CONTENT_ENCODING)
                    .is_none()
            {
                return Err(FetchError::TooLarge {
                    url: shown.clone(),
                    limit: self.max_bytes,
                });
            }
        }
        let final_url = resp.url().to_string();
        let resp_headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    url: shown.clone(),
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedBody {
            status: status.as_u16(),
            final_url,
            headers: resp_headers,
            body,
        })
    }
}

fn classify_error(url: &str, e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout {
            url: url.to_string(),
        };
    }
    // The URL leads every FetchError already; reqwest's own text would repeat it.
    let e = e.without_url();
    let mut reason = e.to_string();
    // Our guard refuses a host through the resolver with a PermissionDenied error, and a
    // redirect through the redirect policy (`is_redirect`).
    let mut guarded = e.is_redirect();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        guarded |= s
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
        src = s.source();
    }
    if guarded {
        return FetchError::Refused {
            url: url.to_string(),
            reason,
        };
    }
    FetchError::Transport {
        url: url.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_table() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::127.0.0.1",
        ];
        for a in refused {
            let ip: IpAddr = a.parse().unwrap();
            assert!(!is_public(ip), "{a} should be refused");
        }
        let allowed = [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ];
        for a in allowed {
            let ip: IpAddr = a.parse().unwrap();
            assert!(is_public(ip), "{a} should be allowed");
        }
    }

    #[test]
    fn ip_literal_forms_are_checked_before_connecting() {
        let policy = AddressPolicy::default();
        for u in [
            "http://2130706433/",   // decimal 127.0.0.1
            "http://0x7f000001/",   // hex
            "http://0x7f.0.0.1/",   // mixed hex
            "http://017700000001/", // octal
            "http://127.1/",        // short form
            "http://[::ffff:10.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:8080/",
            "ftp://example.com/",
            "file:///etc/passwd",
        ] {
            let url = Url::parse(u).unwrap();
            assert!(check_url(&url, &policy).is_err(), "{u}");
        }
        assert!(check_url(&Url::parse("https://example.com/").unwrap(), &policy).is_ok());
        let open = AddressPolicy {
            allow_private: true,
            exempt: vec![],
        };
        assert!(check_url(&Url::parse("http://127.0.0.1:9/").unwrap(), &open).is_ok());
    }
}
