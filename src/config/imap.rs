//! `[bounces] imap_*`: the bounce mailbox `serve` polls over IMAP, parsed from `imap_url`
//! (`imaps://user@host[:port]/MAILBOX`; `imap://` without TLS only for a loopback host) with
//! its password (`imap_password`, a [`Secret`]), CA file, poll interval and the two folders
//! messages are moved to. Blank `imap_url`: no poller.

use std::path::PathBuf;

use super::file::RawBounces;
use super::secret::Secret;
use super::{ConfigError, err};

/// Where and how `serve` polls the bounce mailbox.
#[derive(Clone, Debug)]
pub struct ImapSettings {
    /// `imaps://` (TLS from the first byte); false for `imap://` on a loopback host.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    /// The mailbox polled (the URL's path; `INBOX` when it has none).
    pub mailbox: String,
    /// `bounces.imap_ca_file`: a PEM file of certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `bounces.poll_secs`: seconds between polls (at least 1).
    pub poll_secs: u64,
    /// `bounces.processed_folder`: where messages that matched a delivery or subscriber go.
    pub processed_folder: String,
    /// `bounces.unmatched_folder`: where the rest go.
    pub unmatched_folder: String,
}

impl ImapSettings {
    /// `host:port/mailbox` as user@host, without the password, for logs.
    pub fn label(&self) -> String {
        let scheme = if self.tls { "imaps" } else { "imap" };
        format!(
            "{scheme}://{}@{}:{}/{}",
            self.user, self.host, self.port, self.mailbox
        )
    }
}

/// The poller's settings, `None` when `bounces.imap_url` is blank.
pub(super) fn parse(raw: &RawBounces) -> Result<Option<ImapSettings>, ConfigError> {
    let text = raw.imap_url.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| err(format!("bounces.imap_url {text:?} {why}"));
    let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let tls = match url.scheme() {
        "imaps" => true,
        "imap" => false,
        _ => {
            return Err(bad(
                "must start with imaps:// (or imap:// for a loopback host)",
            ));
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(bad("names no host")),
    };
    // An imap(s) URL is not a "special" URL to the url crate, so an IPv4 address arrives as
    // a domain name: read it back as an address.
    let loopback = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    };
    if !tls && !loopback {
        return Err(bad(
            "uses imap:// (no TLS) for a host that is not loopback: use imaps://, so the \
             password never crosses the network in clear",
        ));
    }
    if url.password().is_some() {
        return Err(bad("carries a password: put it in bounces.imap_password \
             (or TIDINGS__BOUNCES__IMAP_PASSWORD)"));
    }
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| bad("has a malformed %-escape or non-UTF-8 text"))
    };
    let user = decode(url.username())?;
    if user.is_empty() {
        return Err(bad("names no user (imaps://user@host/INBOX)"));
    }
    let mailbox = decode(url.path().trim_start_matches('/'))?;
    let mailbox = if mailbox.is_empty() {
        "INBOX".to_string()
    } else {
        mailbox
    };
    let port = url.port().unwrap_or(if tls { 993 } else { 143 });
    if raw.imap_password.expose().is_empty() {
        return Err(err(
            "bounces.imap_password is empty while bounces.imap_url is set \
             (set it, or TIDINGS__BOUNCES__IMAP_PASSWORD)",
        ));
    }
    if raw.poll_secs == 0 {
        return Err(err("bounces.poll_secs must be at least 1"));
    }
    let folder = |key: &str, value: &str| {
        let value = value.trim();
        if value.is_empty()
            || value
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            Err(err(format!(
                "bounces.{key} {value:?} must be a folder name (not blank; no control \
                 characters, '\"' or '\\')"
            )))
        } else if value.eq_ignore_ascii_case(&mailbox) {
            Err(err(format!(
                "bounces.{key} {value:?} is the polled mailbox itself (bounces.imap_url)"
            )))
        } else {
            Ok(value.to_string())
        }
    };
    let processed_folder = folder("processed_folder", &raw.processed_folder)?;
    let unmatched_folder = folder("unmatched_folder", &raw.unmatched_folder)?;
    let ca_file = match raw.imap_ca_file.trim() {
        "" => None,
        path => Some(PathBuf::from(path)),
    };
    Ok(Some(ImapSettings {
        tls,
        host,
        port,
        user,
        password: raw.imap_password.clone(),
        mailbox,
        ca_file,
        poll_secs: raw.poll_secs,
        processed_folder,
        unmatched_folder,
    }))
}

/// `%XX` escapes decoded; `None` when one is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn with(extra: &str) -> Result<Settings, String> {
        Settings::from_toml(&format!("[bounces]\n{extra}\n")).map_err(|e| e.to_string())
    }

    #[test]
    fn blank_imap_url_means_no_poller() {
        assert!(with("").unwrap().bounces.imap.is_none());
    }

    #[test]
    fn an_imaps_url_is_read_with_its_defaults() {
        let s = with(
            "imap_url = \"imaps://bounce%40example.com@Mail.Example.com/Bounces\"\n\
             imap_password = \"pw-secret-123\"",
        )
        .unwrap();
        let imap = s.bounces.imap.unwrap();
        assert!(imap.tls);
        assert_eq!(imap.host, "mail.example.com");
        assert_eq!(imap.port, 993);
        assert_eq!(imap.user, "bounce@example.com");
        assert_eq!(imap.mailbox, "Bounces");
        assert_eq!(imap.poll_secs, 60);
        assert_eq!(imap.processed_folder, "Processed");
        assert_eq!(imap.unmatched_folder, "Unmatched");
        assert!(imap.ca_file.is_none());
        assert!(!format!("{imap:?}").contains("pw-secret-123"));
        assert!(!imap.label().contains("pw-secret-123"));
        let plain = with("imap_url = \"imap://u@127.0.0.2:1143\"\nimap_password = \"p\"")
            .unwrap()
            .bounces
            .imap
            .unwrap();
        assert_eq!((plain.tls, plain.port), (false, 1143));
        assert_eq!(plain.mailbox, "INBOX");
    }

    #[test]
    fn imap_errors_name_the_key() {
        for (extra, key) in [
            (
                "imap_url = \"imap://u@mail.example.com/INBOX\"\nimap_password = \"p\"",
                "imap_url",
            ),
            (
                "imap_url = \"imap://u@10.0.0.1/INBOX\"\nimap_password = \"p\"",
                "imap_url",
            ),
            (
                "imap_url = \"pop3://u@mail.example.com\"\nimap_password = \"p\"",
                "imap_url",
            ),
            (
                "imap_url = \"imaps://mail.example.com\"\nimap_password = \"p\"",
                "imap_url",
            ),
            (
                "imap_url = \"imaps://u:pw@mail.example.com\"\nimap_password = \"p\"",
                "imap_url",
            ),
            ("imap_url = \"imaps://u@mail.example.com\"", "imap_password"),
            (
                "imap_url = \"imaps://u@mail.example.com\"\nimap_password = \"p\"\npoll_secs = 0",
                "poll_secs",
            ),
            (
                "imap_url = \"imaps://u@mail.example.com\"\nimap_password = \"p\"\nprocessed_folder = \" \"",
                "processed_folder",
            ),
            (
                "imap_url = \"imaps://u@mail.example.com\"\nimap_password = \"p\"\nunmatched_folder = \"inbox\"",
                "unmatched_folder",
            ),
        ] {
            let e = with(extra).unwrap_err();
            assert!(e.contains(&format!("bounces.{key}")), "{extra}: {e}");
        }
    }
}
