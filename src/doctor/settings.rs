//! The configuration checks of `tidings doctor`, pure: the settings in, checklist lines out.
//! The secret that signs every link (the shipped placeholder or a short one fails), `base_url`
//! (not https warns), the sender and the postal address still being the shipped examples.

use super::Check;
use crate::config::{MIN_PUBLIC_SECRET_LEN, Settings};

/// The postal address of the shipped `config/tidings.toml`.
const SHIPPED_POSTAL_ADDRESS: &str = "Tidings, 1 Example Street, 10115 Exampletown";

/// Every configuration check, in order.
pub fn check_settings(settings: &Settings) -> Vec<Check> {
    vec![
        check_secret(settings),
        check_base_url(&settings.newsletter.base_url),
        check_from(settings),
        check_postal_address(&settings.newsletter.postal_address),
    ]
}

fn check_secret(settings: &Settings) -> Check {
    const NAME: &str = "newsletter.secret";
    const FIX: &str = "generate one with `openssl rand -base64 32` and set it as newsletter.secret \
                       or TIDINGS__NEWSLETTER__SECRET";
    if let Some((key, problem)) = settings.weak_secret() {
        return Check::failed(
            NAME,
            format!("{key} {problem}: anyone could forge unsubscribe and preferences links"),
            FIX,
        );
    }
    Check::ok(
        NAME,
        format!("set, not the placeholder, at least {MIN_PUBLIC_SECRET_LEN} characters"),
    )
}

fn check_base_url(base_url: &str) -> Check {
    const NAME: &str = "newsletter.base_url";
    let url = match url::Url::parse(base_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            return Check::failed(
                NAME,
                format!(
                    "{base_url:?} is not an http(s) URL; every link in an email starts with it"
                ),
                "set newsletter.base_url to the public https address of the web app, for example https://news.example.com",
            );
        }
    };
    if url.scheme() == "https" {
        Check::ok(NAME, format!("{base_url} (https)"))
    } else {
        Check::warning(
            NAME,
            format!(
                "{base_url} is not https: links in emails and the subscribe form travel unencrypted"
            ),
            "put the web app behind a TLS reverse proxy and set newsletter.base_url to its https address",
        )
    }
}

fn check_from(settings: &Settings) -> Check {
    const NAME: &str = "newsletter.from";
    let from = &settings.newsletter.from;
    let domain = from.email.domain();
    let local = domain.eq_ignore_ascii_case("localhost")
        || domain.to_ascii_lowercase().ends_with(".localdomain")
        || !domain.contains('.');
    if local {
        Check::warning(
            NAME,
            format!(
                "{} is not a public domain: receivers refuse or junk its mail",
                from.email
            ),
            "set newsletter.from to an address on a domain you control, with SPF, DKIM and DMARC records",
        )
    } else {
        Check::ok(NAME, from.to_string())
    }
}

fn check_postal_address(postal: &str) -> Check {
    const NAME: &str = "newsletter.postal_address";
    let shipped = postal.trim() == SHIPPED_POSTAL_ADDRESS || postal.contains("Example Street");
    if postal.trim().is_empty() || shipped {
        Check::warning(
            NAME,
            "is empty or the shipped example; bulk mail must carry the sender's postal address (CAN-SPAM)",
            "set newsletter.postal_address to your real postal address",
        )
    } else {
        Check::ok(NAME, "set")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PLACEHOLDER_SECRET;
    use crate::doctor::Status;

    fn settings(extra: &str) -> Settings {
        Settings::from_toml(extra).unwrap()
    }

    #[test]
    fn the_placeholder_and_short_secrets_fail() {
        let s = settings("");
        assert_eq!(check_secret(&s).status, Status::Failed);
        let s = settings("[newsletter]\nsecret = \"twenty-characters-xx\"\n");
        let c = check_secret(&s);
        assert_eq!(c.status, Status::Failed);
        assert!(c.message.contains("shorter than 32"), "{}", c.message);
        let s = settings(&format!(
            "[newsletter]\nsecret = \"{}\"\nprevious_secrets = [\"{PLACEHOLDER_SECRET}\"]\n",
            "x".repeat(40)
        ));
        let c = check_secret(&s);
        assert!(c.message.contains("previous_secrets[0]"), "{}", c.message);
        let s = settings(&format!("[newsletter]\nsecret = \"{}\"\n", "x".repeat(40)));
        assert_eq!(check_secret(&s).status, Status::Ok);
    }

    #[test]
    fn base_url_without_https_warns() {
        assert_eq!(
            check_base_url("https://news.example.com").status,
            Status::Ok
        );
        assert_eq!(
            check_base_url("http://news.example.com").status,
            Status::Warning
        );
        assert_eq!(check_base_url("news.example.com").status, Status::Failed);
    }
}
