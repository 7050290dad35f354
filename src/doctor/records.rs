//! Reading the DNS records a sender publishes, pure: SPF (RFC 7208: one `v=spf1` record, its
//! terms well formed, at most ten DNS-querying terms), DMARC (RFC 7489: `v=DMARC1` first, a
//! policy, the alignment modes) and DKIM key records (RFC 6376: the tags, `p=`), and DMARC
//! alignment between two domains.
//!
//! Relaxed alignment compares organisational domains. Without the Public Suffix List this is
//! an approximation: the last two labels, or three when the last two look like a country's
//! second-level suffix (`co.uk`, `com.au`).

/// The `v=spf1` records among a name's TXT records (each TXT record's strings already joined).
pub fn spf_records(txts: &[String]) -> Vec<&str> {
    txts.iter()
        .map(String::as_str)
        .filter(|t| {
            let t = t.trim_start();
            t.len() >= 6
                && t[..6].eq_ignore_ascii_case("v=spf1")
                && t[6..].chars().next().is_none_or(|c| c == ' ')
        })
        .collect()
}

/// What an SPF record says that is worth a warning; `Err` when it is not valid SPF.
#[derive(Debug, PartialEq, Eq)]
pub struct SpfSummary {
    /// `+all` or `?all`-style endings that let anyone pass; `None` when fine.
    pub warning: Option<String>,
    /// The terms that query DNS (include, a, mx, ptr, exists, redirect).
    pub lookups: usize,
}

/// Checks one SPF record's syntax (RFC 7208 section 12).
pub fn check_spf(record: &str) -> Result<SpfSummary, String> {
    let mut terms = record.split(' ').filter(|t| !t.is_empty());
    match terms.next() {
        Some(v) if v.eq_ignore_ascii_case("v=spf1") => {}
        _ => return Err("it does not start with v=spf1".into()),
    }
    let mut lookups = 0;
    let mut redirects = 0;
    let mut explanations = 0;
    let mut ending = None;
    for term in terms {
        let lower = term.to_ascii_lowercase();
        if let Some((name, value)) = lower.split_once('=')
            && !name.contains(':')
            && !name.contains('/')
        {
            let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !name_ok {
                return Err(format!("{term:?} is not a valid modifier"));
            }
            match name {
                "redirect" => {
                    redirects += 1;
                    lookups += 1;
                    domain_spec(term, value)?;
                }
                "exp" => {
                    explanations += 1;
                    domain_spec(term, value)?;
                }
                _ => {}
            }
            continue;
        }
        let (qualifier, mechanism) = match lower.chars().next() {
            Some(q @ ('+' | '-' | '~' | '?')) => (q, &lower[1..]),
            _ => ('+', lower.as_str()),
        };
        let (name, arg) = match mechanism.find([':', '/']) {
            Some(i) => (&mechanism[..i], Some(&mechanism[i..])),
            None => (mechanism, None),
        };
        match (name, arg) {
            ("all", None) => ending = Some(qualifier),
            ("include" | "exists", Some(a)) if a.starts_with(':') => {
                lookups += 1;
                domain_spec(term, &a[1..])?;
            }
            ("a" | "mx", a) => {
                lookups += 1;
                let a = a.unwrap_or("");
                let (domain, cidr) = match a.find('/') {
                    Some(i) => (&a[..i], Some(&a[i + 1..])),
                    None => (a, None),
                };
                if let Some(d) = domain.strip_prefix(':') {
                    domain_spec(term, d)?;
                } else if !domain.is_empty() {
                    return Err(format!("{term:?} is not a valid mechanism"));
                }
                if let Some(c) = cidr {
                    dual_cidr(term, c)?;
                }
            }
            ("ptr", a) => {
                lookups += 1;
                match a {
                    None => {}
                    Some(d) if d.starts_with(':') => domain_spec(term, &d[1..])?,
                    Some(_) => return Err(format!("{term:?} is not a valid mechanism")),
                }
            }
            ("ip4", Some(a)) if a.starts_with(':') => {
                ip_network::<std::net::Ipv4Addr>(term, &a[1..], 32)?
            }
            ("ip6", Some(a)) if a.starts_with(':') => {
                ip_network::<std::net::Ipv6Addr>(term, &a[1..], 128)?
            }
            _ => return Err(format!("{term:?} is not a valid SPF mechanism or modifier")),
        }
    }
    if redirects > 1 || explanations > 1 {
        return Err("redirect= or exp= appears more than once".into());
    }
    if lookups > 10 {
        return Err(format!(
            "it has {lookups} terms that query DNS; receivers give up after 10 (permerror)"
        ));
    }
    let warning = match ending {
        Some('+') => Some("it ends in +all: any server may send as this domain".to_string()),
        Some('?') => Some("it ends in ?all: receivers learn nothing from it".to_string()),
        None if redirects == 0 => {
            Some("it has no all mechanism: mail from other servers is neutral".to_string())
        }
        _ => None,
    };
    Ok(SpfSummary { warning, lookups })
}

fn domain_spec(term: &str, spec: &str) -> Result<(), String> {
    let ok = !spec.is_empty() && spec.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(format!("{term:?} names no valid domain"))
    }
}

fn dual_cidr(term: &str, cidr: &str) -> Result<(), String> {
    // "24", "24//64" or "/64" (the IPv6 part after a second slash).
    let parts: Vec<&str> = cidr.split('/').collect();
    let valid = |s: &str, max: u8| s.is_empty() || s.parse::<u8>().is_ok_and(|n| n <= max);
    let ok = match parts.as_slice() {
        [v4] => !v4.is_empty() && valid(v4, 32),
        [v4, "", v6] => valid(v4, 32) && !v6.is_empty() && valid(v6, 128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{term:?} has an invalid prefix length"))
    }
}

fn ip_network<A: std::str::FromStr>(term: &str, value: &str, max: u8) -> Result<(), String> {
    let (ip, prefix) = match value.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (value, None),
    };
    let prefix_ok = prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max));
    if ip.parse::<A>().is_ok() && prefix_ok {
        Ok(())
    } else {
        Err(format!("{term:?} is not a valid address or network"))
    }
}

/// `tag=value` pairs separated by `;` (DKIM and DMARC records), tags lower-cased, whitespace
/// around them dropped.
pub fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|part| {
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// A DMARC record, read.
#[derive(Debug, PartialEq, Eq)]
pub struct Dmarc {
    /// "none", "quarantine" or "reject".
    pub policy: String,
    pub adkim_strict: bool,
    pub aspf_strict: bool,
}

/// Whether a TXT record is a DMARC record at all (starts with `v=DMARC1`).
pub fn is_dmarc(record: &str) -> bool {
    tags(record)
        .first()
        .is_some_and(|(k, v)| k == "v" && v.eq_ignore_ascii_case("DMARC1"))
}

/// Reads a DMARC record (RFC 7489 section 6.3): `v=DMARC1` first, then `p=`.
pub fn parse_dmarc(record: &str) -> Result<Dmarc, String> {
    if !is_dmarc(record) {
        return Err("it does not start with v=DMARC1".into());
    }
    let all = tags(record);
    let get = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let policy = match get("p").map(str::to_ascii_lowercase) {
        Some(p) if matches!(p.as_str(), "none" | "quarantine" | "reject") => p,
        Some(p) => return Err(format!("p={p} is not none, quarantine or reject")),
        None => return Err("it has no p= policy tag".into()),
    };
    let mode = |name: &str| -> Result<bool, String> {
        match get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("r") => Ok(false),
            Some("s") => Ok(true),
            Some(other) => Err(format!("{name}={other} is neither r nor s")),
        }
    };
    Ok(Dmarc {
        policy,
        adkim_strict: mode("adkim")?,
        aspf_strict: mode("aspf")?,
    })
}

/// The organisational domain, approximated (see the module comment).
pub fn organisational_domain(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let n = labels.len();
    let keep = if n >= 3 && labels[n - 1].len() == 2 && labels[n - 2].len() <= 3 {
        3
    } else {
        2
    };
    labels[n.saturating_sub(keep)..].join(".")
}

/// DMARC identifier alignment (RFC 7489 section 3.1): strict is the same domain, relaxed the
/// same organisational domain.
pub fn aligned(from_domain: &str, other: &str, strict: bool) -> bool {
    let a = from_domain.trim_end_matches('.');
    let b = other.trim_end_matches('.');
    if strict {
        a.eq_ignore_ascii_case(b)
    } else {
        organisational_domain(a) == organisational_domain(b)
    }
}

/// The base64 public key (`p=`) of a DKIM key record for a key of type `key_type` (`rsa`, the
/// default when `k=` is absent, or `ed25519`, RFC 8463); `Err` when the record is not one, is
/// for another type of key, or the key is revoked (empty `p=`).
pub fn dkim_public_key(record: &str, key_type: &str) -> Result<String, String> {
    let all = tags(record);
    if let Some((_, v)) = all.iter().find(|(k, _)| k == "v")
        && v != "DKIM1"
    {
        return Err(format!("v={v} is not DKIM1"));
    }
    let k = all
        .iter()
        .find(|(k, _)| k == "k")
        .map_or("rsa", |(_, k)| k.as_str());
    if !k.eq_ignore_ascii_case(key_type) {
        return Err(format!("k={k}, but the configured key is {key_type}"));
    }
    match all.iter().find(|(k, _)| k == "p") {
        None => Err("it has no p= tag".into()),
        Some((_, p)) if p.is_empty() => Err("p= is empty: the key is revoked".into()),
        Some((_, p)) => Ok(p.chars().filter(|c| !c.is_whitespace()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_syntax() {
        let ok = check_spf("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.net mx a:mail.example.com/28 -all").unwrap();
        assert_eq!(ok.warning, None);
        assert_eq!(ok.lookups, 3);
        assert!(
            check_spf("v=spf1 redirect=_spf.example.com")
                .unwrap()
                .warning
                .is_none()
        );
        assert!(check_spf("v=spf1 +all").unwrap().warning.is_some());
        assert!(check_spf("v=spf1 mx").unwrap().warning.is_some());
        for bad in [
            "v=spf1 ip4:300.1.1.1 -all",
            "v=spf1 include -all",
            "v=spf1 foo:bar -all",
            "v=spf1 ip6:2001:db8::/129 -all",
            "v=spf1 a/33 -all",
            "v=spf1 redirect=a.example redirect=b.example",
            "spf1 -all",
        ] {
            assert!(check_spf(bad).is_err(), "{bad}");
        }
        let many = format!("v=spf1 {} -all", "include:x.example ".repeat(11));
        assert!(check_spf(&many).unwrap_err().contains("11 terms"));
    }

    #[test]
    fn only_spf_records_are_picked() {
        let txts = vec![
            "v=spf1 -all".to_string(),
            "v=spf10".to_string(),
            "google-site-verification=x".to_string(),
        ];
        assert_eq!(spf_records(&txts), vec!["v=spf1 -all"]);
    }

    #[test]
    fn dmarc_records() {
        let d = parse_dmarc("v=DMARC1; p=reject; adkim=s; rua=mailto:d@example.com").unwrap();
        assert_eq!(d.policy, "reject");
        assert!(d.adkim_strict);
        assert!(!d.aspf_strict);
        assert!(parse_dmarc("v=DMARC1; rua=mailto:x@example.com").is_err());
        assert!(parse_dmarc("p=none; v=DMARC1").is_err());
        assert!(parse_dmarc("v=DMARC1; p=maybe").is_err());
    }

    #[test]
    fn alignment() {
        assert!(aligned("news.example.com", "example.com", false));
        assert!(!aligned("news.example.com", "example.com", true));
        assert!(aligned("example.co.uk", "mail.example.co.uk", false));
        assert!(!aligned("a.co.uk", "b.co.uk", false));
        assert!(!aligned("example.com", "example.net", false));
    }

    #[test]
    fn dkim_key_records() {
        assert_eq!(
            dkim_public_key("v=DKIM1; k=rsa; p=MIIB IjAN", "rsa").unwrap(),
            "MIIBIjAN"
        );
        assert_eq!(dkim_public_key("v=DKIM1; p=MIIB", "rsa").unwrap(), "MIIB");
        assert!(
            dkim_public_key("v=DKIM1; p=", "rsa")
                .unwrap_err()
                .contains("revoked")
        );
        assert!(dkim_public_key("v=DKIM1; k=ed25519; p=abc", "rsa").is_err());
        assert_eq!(
            dkim_public_key("v=DKIM1; k=ed25519; p=abc", "ed25519").unwrap(),
            "abc"
        );
        // An Ed25519 record must say so: without k= a record is RSA's.
        assert!(
            dkim_public_key("v=DKIM1; p=abc", "ed25519")
                .unwrap_err()
                .contains("k=rsa")
        );
    }
}
