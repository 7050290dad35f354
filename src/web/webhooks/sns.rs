//! Amazon SNS message signatures: the string SNS signs for each message type, the rule for the
//! URLs SNS may send us to (the signing certificate and a subscription's confirmation: https,
//! host `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`, no other port), and
//! [`SnsCertFetcher`], which fetches and caches signing certificates and confirms
//! subscriptions. SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA, both PKCS#1 v1.5 over the
//! public key of the certificate (parsed by rustls-webpki, verified by aws-lc-rs).
//!
//! Tests cannot reach AWS: [`SnsCertFetcher::loopback_for_tests`] builds a fetcher that still
//! applies the production URL rule and then sends the request to a server on 127.0.0.1, trusting
//! only the test's own root certificate. `serve` always builds [`SnsCertFetcher::new`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, alg_id,
};
use url::Url;

/// The largest certificate read.
const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// The most certificates kept (SNS rotates them rarely; the cache is emptied when full).
const MAX_CACHED: usize = 32;

/// The fields of an SNS message that its signature covers.
#[derive(Clone, Debug, Default)]
pub struct Signed<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    pub message_id: &'a str,
    pub subject: Option<&'a str>,
    pub subscribe_url: Option<&'a str>,
    pub timestamp: &'a str,
    pub token: Option<&'a str>,
    pub topic_arn: &'a str,
}

/// The string SNS signs: `name\nvalue\n` for each field of the message type, in byte order of
/// the names (`Subject` only when present). `None` for a type SNS does not send or a missing field.
pub fn canonical_string(m: &Signed<'_>) -> Option<String> {
    let mut fields: Vec<(&str, &str)> = vec![("Message", m.message), ("MessageId", m.message_id)];
    match m.kind {
        "Notification" => {
            if let Some(subject) = m.subject {
                fields.push(("Subject", subject));
            }
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            fields.push(("SubscribeURL", m.subscribe_url?));
        }
        _ => return None,
    }
    fields.push(("Timestamp", m.timestamp));
    if m.kind != "Notification" {
        fields.push(("Token", m.token?));
    }
    fields.push(("TopicArn", m.topic_arn));
    fields.push(("Type", m.kind));
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(name);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
    }
    Some(out)
}

/// A URL SNS may send us to: https, host `sns.<region>.amazonaws.com` (or `.amazonaws.com.cn`),
/// no user name, password or port other than 443. `None` for anything else.
pub fn allowed_url(raw: &str) -> Option<Url> {
    let url = Url::parse(raw.trim()).ok()?;
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    if url.port().is_some_and(|p| p != 443) {
        return None;
    }
    let host = match url.host()? {
        url::Host::Domain(host) => host.to_ascii_lowercase(),
        _ => return None,
    };
    let region = host
        .strip_prefix("sns.")?
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_prefix("sns.")?.strip_suffix(".amazonaws.com.cn"))?;
    let region_ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    region_ok.then_some(url)
}

/// Whether `signature` (base64) is `version`'s signature of `canonical` by the key of the PEM
/// certificate `pem`.
pub fn verify(pem: &[u8], version: &str, canonical: &str, signature: &str) -> bool {
    let algorithm: &dyn SignatureVerificationAlgorithm = match version.trim() {
        "1" => &RSA_PKCS1_SHA1,
        "2" => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
        _ => return false,
    };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(der) = CertificateDer::from_pem_slice(pem) else {
        return false;
    };
    let Ok(certificate) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    certificate
        .verify_signature(algorithm, canonical.as_bytes(), &signature)
        .is_ok()
}

/// SHA1withRSA (PKCS#1 v1.5, keys of 2048 bits or more), which rustls-webpki leaves out: SNS
/// SignatureVersion 1.
#[derive(Debug)]
struct RsaPkcs1Sha1;

static RSA_PKCS1_SHA1: RsaPkcs1Sha1 = RsaPkcs1Sha1;

impl SignatureVerificationAlgorithm for RsaPkcs1Sha1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    /// Only used to match certificate signatures, which this algorithm never checks.
    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_PKCS1_SHA256
    }
}

/// Why a fetch from SNS failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL breaks the rule of [`allowed_url`]: the message is not from SNS.
    #[error("not an SNS URL")]
    Refused,
    /// SNS could not be reached or answered badly: worth a retry.
    #[error("fetching from SNS failed: {0}")]
    Failed(String),
}

/// Fetches signing certificates (cached by URL) and confirms subscriptions, only from URLs
/// [`allowed_url`] accepts. Cheap to clone.
#[derive(Clone)]
pub struct SnsCertFetcher {
    client: reqwest::Client,
    /// Tests only: every request goes to this port on 127.0.0.1.
    loopback_port: Option<u16>,
    cache: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
}

impl SnsCertFetcher {
    /// The production fetcher: the system's roots, no redirects, https only, short timeouts.
    pub fn new() -> anyhow::Result<SnsCertFetcher> {
        let client = Self::builder()
            .build()
            .context("building the SNS HTTP client")?;
        Ok(SnsCertFetcher {
            client,
            loopback_port: None,
            cache: Arc::default(),
        })
    }

    /// For tests: applies the same URL rule, then connects to 127.0.0.1:`port` for every name in
    /// `hosts`, trusting only `root_der` (the test's certificate authority). `port` must be a
    /// loopback server's port; nothing else is reachable through this fetcher.
    pub fn loopback_for_tests(
        port: u16,
        hosts: &[&str],
        root_der: &[u8],
    ) -> anyhow::Result<SnsCertFetcher> {
        let root = reqwest::Certificate::from_der(root_der).context("the test root")?;
        let mut builder = Self::builder().tls_certs_only([root]);
        for host in hosts {
            let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            builder = builder.resolve(host, loopback);
        }
        let client = builder.build().context("building the SNS test client")?;
        Ok(SnsCertFetcher {
            client,
            loopback_port: Some(port),
            cache: Arc::default(),
        })
    }

    fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("tidings/", env!("CARGO_PKG_VERSION")))
    }

    /// The PEM certificate at `raw` (an allowed `.pem` URL), from the cache when fetched before.
    pub async fn certificate(&self, raw: &str) -> Result<Arc<Vec<u8>>, FetchError> {
        let url = allowed_url(raw).ok_or(FetchError::Refused)?;
        if !url.path().ends_with(".pem") {
            return Err(FetchError::Refused);
        }
        let key = url.as_str().to_string();
        if let Some(pem) = self.cached(&key) {
            return Ok(pem);
        }
        let pem = Arc::new(self.get(url, MAX_CERTIFICATE_BYTES).await?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&pem));
        }
        Ok(pem)
    }

    fn cached(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        self.cache.lock().ok()?.get(key).cloned()
    }

    /// Confirms a subscription by fetching its `SubscribeURL` (an allowed URL).
    pub async fn confirm(&self, raw: &str) -> Result<(), FetchError> {
        let url = allowed_url(raw).ok_or(FetchError::Refused)?;
        self.get(url, MAX_CERTIFICATE_BYTES).await.map(|_| ())
    }

    /// GET `url` (already checked), at most `limit` bytes of a 2xx answer.
    async fn get(&self, mut url: Url, limit: usize) -> Result<Vec<u8>, FetchError> {
        if let Some(port) = self.loopback_port {
            url.set_port(Some(port))
                .map_err(|()| FetchError::Failed("cannot set the test port".into()))?;
        }
        let failed = |e: reqwest::Error| FetchError::Failed(e.without_url().to_string());
        let mut response = self.client.get(url).send().await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(FetchError::Failed(format!("answer {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::Failed(format!("answer over {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_on_https_are_allowed() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://SNS.eu-west-1.amazonaws.com:443/x.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        ] {
            assert!(allowed_url(good).is_some(), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://s3.us-east-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.us_east.amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://54.239.0.1/x.pem",
            "not a url",
        ] {
            assert!(allowed_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_canonical_string_follows_the_message_type() {
        let notification = Signed {
            kind: "Notification",
            message: "m",
            message_id: "id",
            subject: None,
            subscribe_url: None,
            timestamp: "t",
            token: None,
            topic_arn: "arn",
        };
        assert_eq!(
            canonical_string(&notification).unwrap(),
            "Message\nm\nMessageId\nid\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n"
        );
        let with_subject = Signed {
            subject: Some("s"),
            ..notification.clone()
        };
        assert!(
            canonical_string(&with_subject)
                .unwrap()
                .contains("MessageId\nid\nSubject\ns\nTimestamp\n")
        );
        let confirmation = Signed {
            kind: "SubscriptionConfirmation",
            subscribe_url: Some("u"),
            token: Some("k"),
            ..notification.clone()
        };
        assert_eq!(
            canonical_string(&confirmation).unwrap(),
            "Message\nm\nMessageId\nid\nSubscribeURL\nu\nTimestamp\nt\nToken\nk\n\
             TopicArn\narn\nType\nSubscriptionConfirmation\n"
        );
        let missing_token = Signed {
            token: None,
            ..confirmation
        };
        assert!(canonical_string(&missing_token).is_none());
        let other = Signed {
            kind: "Other",
            ..notification
        };
        assert!(canonical_string(&other).is_none());
    }
}
