//! The DNS checks of `tidings doctor`, through hickory-resolver: SPF at the From domain, the
//! DKIM key record at `<selector>._domainkey.<domain>` against the configured key's public
//! half (and, with `[dkim] ed25519_private_key_path` set, the `k=ed25519` record at
//! `<ed25519_selector>._domainkey.<domain>` against the Ed25519 key's public key), DMARC at `_dmarc.<From domain>` (or its organisational domain) and its alignment with
//! From, and MX records for the bounce address's domain.
//!
//! The resolver is the system's (`/etc/resolv.conf`) unless `tidings doctor --nameserver
//! IP:PORT` names one (UDP, then TCP for long answers): tests point it at a DNS server on
//! loopback.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use super::Check;
use super::records::{
    aligned, check_spf, dkim_public_key, is_dmarc, organisational_domain, parse_dmarc, spf_records,
};
use crate::config::Settings;

/// How long one DNS question may take (each of at most two attempts).
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolver for the checks.
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// The system's resolver, or the name server at `nameserver` alone.
    pub fn new(nameserver: Option<SocketAddr>) -> Result<Dns, String> {
        let mut builder = match nameserver {
            Some(addr) => {
                let connection = |mut c: ConnectionConfig| {
                    c.port = addr.port();
                    c
                };
                let server = NameServerConfig::new(
                    addr.ip(),
                    true,
                    vec![
                        connection(ConnectionConfig::udp()),
                        connection(ConnectionConfig::tcp()),
                    ],
                );
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
        };
        let options = builder.options_mut();
        options.timeout = DNS_TIMEOUT;
        options.attempts = 2;
        let resolver = builder
            .build()
            .map_err(|e| format!("cannot set up DNS resolution: {e}"))?;
        Ok(Dns { resolver })
    }

    /// The TXT records at `name`, each record's strings joined; empty when there are none.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!("DNS lookup of {name} TXT failed: {e}")),
        }
    }

    /// The mail exchangers of `name`; empty when there are none.
    pub async fn mx(&self, name: &str) -> Result<Vec<String>, String> {
        match self.resolver.mx_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some(mx.exchange.to_string()),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!("DNS lookup of {name} MX failed: {e}")),
        }
    }
}

/// A name with the root's trailing dot, so no search domain is tried.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Every DNS check, in order.
pub async fn check_dns(settings: &Settings, dns: &Dns) -> Vec<Check> {
    let from_domain = settings.newsletter.from.email.domain().to_ascii_lowercase();
    let envelope_domain = settings
        .bounces
        .address
        .as_ref()
        .map(|a| a.domain().to_ascii_lowercase())
        .unwrap_or_else(|| from_domain.clone());
    let mut checks = vec![check_spf_record(dns, &envelope_domain).await];
    let dkim = check_dkim(settings, dns).await;
    let dkim_domain = (dkim.status == super::Status::Ok).then(|| settings.dkim.domain.trim());
    checks.push(dkim);
    if settings.dkim.ed25519_enabled() {
        checks.push(check_dkim_ed25519(settings, dns).await);
    }
    checks.push(check_dmarc(dns, &from_domain, dkim_domain, &envelope_domain).await);
    if let Some(address) = &settings.bounces.address {
        checks.push(check_bounce_mx(dns, address.domain()).await);
    }
    checks
}

/// SPF is checked where receivers look: the envelope sender's domain (the bounce address's
/// when one is set, else From's).
async fn check_spf_record(dns: &Dns, domain: &str) -> Check {
    const NAME: &str = "dns.spf";
    let fix = format!(
        "publish one TXT record at {domain} such as \"v=spf1 include:<your relay's SPF> -all\""
    );
    let txts = match dns.txt(domain).await {
        Ok(t) => t,
        Err(e) => {
            return Check::failed(
                NAME,
                e,
                "check the name server (--nameserver) and the domain",
            );
        }
    };
    match spf_records(&txts).as_slice() {
        [] => Check::failed(NAME, format!("{domain} has no SPF record"), fix),
        [one] => match check_spf(one) {
            Ok(summary) => match summary.warning {
                None => Check::ok(NAME, format!("{domain}: {one}")),
                Some(w) => Check::warning(
                    NAME,
                    format!("{domain}: {one}: {w}"),
                    "end the record in -all or ~all, after the servers that send for you",
                ),
            },
            Err(e) => Check::failed(
                NAME,
                format!("{domain}: {one:?} is not valid SPF: {e}"),
                fix,
            ),
        },
        many => Check::failed(
            NAME,
            format!(
                "{domain} has {} SPF records; receivers treat that as an error (RFC 7208)",
                many.len()
            ),
            format!("merge them into one v=spf1 record at {domain}"),
        ),
    }
}

async fn check_dkim(settings: &Settings, dns: &Dns) -> Check {
    const NAME: &str = "dns.dkim";
    let d = &settings.dkim;
    if !d.enabled() {
        return Check::warning(
            NAME,
            "DKIM signing is off ([dkim] private_key_path is empty); many receivers junk unsigned bulk mail",
            format!(
                "run `tidings dkim keygen --domain {} --selector tidings --out dkim.pem`, publish the TXT record it prints and copy its [dkim] lines into the config",
                settings.newsletter.from.email.domain()
            ),
        );
    }
    let (domain, selector) = (d.domain.trim(), d.selector.trim());
    let path = d.private_key_path.trim();
    let setting = (
        "dkim.private_key_path",
        "point dkim.private_key_path at an RSA private key in PKCS#1 PEM (BEGIN RSA PRIVATE KEY)",
    );
    let mine = match public_key(NAME, setting, path, public_key_of) {
        Ok(k) => k,
        Err(failed) => return failed,
    };
    let name = format!("{selector}._domainkey.{domain}");
    key_record_check(dns, NAME, &name, "rsa", &spki_base64(&mine), path, |p| {
        same_key(p, &mine)
    })
    .await
}

/// The Ed25519 key's record (RFC 8463): `k=ed25519` and `p=` its 32-byte public key.
async fn check_dkim_ed25519(settings: &Settings, dns: &Dns) -> Check {
    const NAME: &str = "dns.dkim_ed25519";
    let d = &settings.dkim;
    let (domain, selector) = (d.domain.trim(), d.ed25519_selector.trim());
    let path = d.ed25519_private_key_path.trim();
    let setting = (
        "dkim.ed25519_private_key_path",
        "point dkim.ed25519_private_key_path at a key written by `tidings dkim keygen --algorithm ed25519`",
    );
    let mine = match public_key(NAME, setting, path, crate::render::ed25519_public_key) {
        Ok(k) => k,
        Err(failed) => return failed,
    };
    let name = format!("{selector}._domainkey.{domain}");
    let engine = &base64::engine::general_purpose::STANDARD;
    key_record_check(
        dns,
        NAME,
        &name,
        "ed25519",
        &engine.encode(&mine),
        path,
        |p| engine.decode(p).is_ok_and(|published| published == mine),
    )
    .await
}

/// The DKIM key records at `name`: ok when one of type `key_type` publishes the key `is_mine`
/// recognises (the public half of the key file at `path`), else failed with the record to
/// publish (`p=` `public_b64`) as the fix.
async fn key_record_check(
    dns: &Dns,
    check: &'static str,
    name: &str,
    key_type: &str,
    public_b64: &str,
    path: &str,
    is_mine: impl Fn(&str) -> bool,
) -> Check {
    let publish =
        format!("publish a TXT record at {name}: \"v=DKIM1; k={key_type}; p={public_b64}\"");
    let txts = match dns.txt(name).await {
        Ok(t) => t,
        Err(e) => return Check::failed(check, e, "check the name server and the record"),
    };
    let keys: Vec<Result<String, String>> = txts
        .iter()
        .filter(|t| t.contains("p="))
        .map(|t| dkim_public_key(t, key_type))
        .collect();
    let Some(first) = keys.first() else {
        return Check::failed(check, format!("no DKIM key record at {name}"), publish);
    };
    if keys.iter().any(|k| k.as_ref().is_ok_and(|p| is_mine(p))) {
        return Check::ok(check, format!("{name} publishes the public half of {path}"));
    }
    let why = match first {
        Err(e) => format!("the record at {name} is not usable: {e}"),
        Ok(_) => format!("the key published at {name} is not the public half of {path}"),
    };
    Check::failed(check, why, publish)
}

/// The public half (by `public_of`) of the key file at `path`, the setting `key` names; the
/// failed check `check` with `fix` when the file cannot be read or holds no such key.
fn public_key<T>(
    check: &'static str,
    (key, fix): (&str, &str),
    path: &str,
    public_of: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, Check> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|text| public_of(&text))
        .map_err(|e| Check::failed(check, format!("{key}: {e}"), fix))
}

/// The public half of a PKCS#1 PEM RSA private key.
fn public_key_of(pem: &str) -> Result<rsa::RsaPublicKey, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    rsa::RsaPrivateKey::from_pkcs1_pem(pem)
        .map(|k| k.to_public_key())
        .map_err(|_| "not an RSA private key in PKCS#1 PEM (BEGIN RSA PRIVATE KEY)".to_string())
}

/// The key as DKIM records carry it: SubjectPublicKeyInfo DER in base64.
fn spki_base64(key: &rsa::RsaPublicKey) -> String {
    use rsa::pkcs8::EncodePublicKey;
    key.to_public_key_der()
        .map(|der| base64::engine::general_purpose::STANDARD.encode(der.as_bytes()))
        .unwrap_or_default()
}

/// Whether a record's `p=` is `key`: SubjectPublicKeyInfo (RFC 6376) or a bare PKCS#1 key.
fn same_key(p: &str, key: &rsa::RsaPublicKey) -> bool {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(p) else {
        return false;
    };
    rsa::RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|_| ()))
        .is_ok_and(|published| &published == key)
}

/// DMARC at `_dmarc.<From domain>`, else at its organisational domain; then whether mail
/// would pass it: DKIM signed by an aligned domain, or SPF for an aligned envelope sender.
async fn check_dmarc(
    dns: &Dns,
    from_domain: &str,
    dkim_domain: Option<&str>,
    envelope_domain: &str,
) -> Check {
    const NAME: &str = "dns.dmarc";
    let fix = format!(
        "publish a TXT record at _dmarc.{from_domain} such as \"v=DMARC1; p=quarantine; rua=mailto:dmarc@{from_domain}\""
    );
    let mut places = vec![from_domain.to_string()];
    let org = organisational_domain(from_domain);
    if org != from_domain {
        places.push(org);
    }
    let mut found = None;
    for place in &places {
        let name = format!("_dmarc.{place}");
        let txts = match dns.txt(&name).await {
            Ok(t) => t,
            Err(e) => return Check::failed(NAME, e, "check the name server and the record"),
        };
        let records: Vec<String> = txts.into_iter().filter(|t| is_dmarc(t)).collect();
        match records.len() {
            0 => continue,
            1 => {
                found = records.into_iter().next().map(|r| (name, r));
                break;
            }
            n => {
                return Check::failed(
                    NAME,
                    format!("{name} has {n} DMARC records; receivers then apply none"),
                    format!("keep one v=DMARC1 record at {name}"),
                );
            }
        }
    }
    let Some((name, record)) = found else {
        return Check::failed(NAME, format!("no DMARC record for {from_domain}"), fix);
    };
    let dmarc = match parse_dmarc(&record) {
        Ok(d) => d,
        Err(e) => {
            return Check::failed(NAME, format!("{name}: {record:?} is not valid: {e}"), fix);
        }
    };
    let dkim_aligned = dkim_domain.is_some_and(|d| aligned(from_domain, d, dmarc.adkim_strict));
    let spf_aligned = aligned(from_domain, envelope_domain, dmarc.aspf_strict);
    let mode = |strict: bool| if strict { "strict" } else { "relaxed" };
    if !dkim_aligned && !spf_aligned {
        return Check::failed(
            NAME,
            format!(
                "{name} p={}: neither DKIM ({}, {} alignment) nor SPF (envelope sender at {envelope_domain}, {} alignment) is aligned with From ({from_domain}), so every message fails DMARC",
                dmarc.policy,
                dkim_domain.unwrap_or("no valid signature"),
                mode(dmarc.adkim_strict),
                mode(dmarc.aspf_strict)
            ),
            "sign with dkim.domain equal to (or, with relaxed alignment, sharing the organisational domain of) the From domain, or send from an aligned bounce address",
        );
    }
    let how = match (dkim_aligned, spf_aligned) {
        (true, true) => "DKIM and SPF",
        (true, false) => "DKIM",
        _ => "SPF",
    };
    let message = format!("{name} p={}; aligned with From through {how}", dmarc.policy);
    if dmarc.policy == "none" {
        Check::warning(
            NAME,
            format!("{message}; p=none only monitors"),
            "once reports show your mail passing, raise the policy to p=quarantine or p=reject",
        )
    } else {
        Check::ok(NAME, message)
    }
}

async fn check_bounce_mx(dns: &Dns, domain: &str) -> Check {
    const NAME: &str = "dns.bounce_mx";
    match dns.mx(domain).await {
        Ok(mx) if mx.is_empty() => Check::failed(
            NAME,
            format!("{domain} (bounces.address) has no MX record: bounces cannot come back"),
            format!(
                "publish an MX record for {domain} pointing at the server that pipes bounces to `tidings bounces ingest`"
            ),
        ),
        Ok(mx) => Check::ok(NAME, format!("{domain}: MX {}", mx.join(", "))),
        Err(e) => Check::failed(NAME, e, "check the name server and the record"),
    }
}
