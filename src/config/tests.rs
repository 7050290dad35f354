//! Unit tests of loading, parsing and validating the settings.

use super::*;

#[test]
fn a_weak_secret_is_refused_only_for_a_public_base_url() {
    let with = |base: &str, secret: &str| {
        let mut s = Settings::default();
        s.newsletter.base_url = base.into();
        s.newsletter.secret = Secret::new(secret);
        s.check_secret_for_public_links()
    };
    let strong = "q3J1c2V0LXRoaXMtaXMtYS10ZXN0LXNlY3JldA==";
    for base in [
        "http://localhost:8080",
        "http://127.0.0.1:8080",
        "http://127.1.2.3",
        "http://[::1]:8080/",
    ] {
        assert!(with(base, PLACEHOLDER_SECRET).is_ok(), "{base}");
        assert!(with(base, "sixteen-chars-ok").is_ok(), "{base}");
    }
    for base in [
        "https://news.example.com",
        "http://10.0.0.1",
        "http://localhost.example.com",
    ] {
        let e = with(base, PLACEHOLDER_SECRET).unwrap_err().to_string();
        assert!(
            e.contains("newsletter.secret") && e.contains("placeholder"),
            "{e}"
        );
        assert!(e.contains("openssl rand -base64 32"), "{e}");
        assert!(!e.contains(PLACEHOLDER_SECRET), "{e}");
        let e = with(base, "sixteen-chars-ok").unwrap_err().to_string();
        assert!(e.contains("shorter than 32"), "{e}");
        assert!(!e.contains("sixteen-chars-ok"), "{e}");
        assert!(with(base, strong).is_ok(), "{base}");
    }
    let mut s = Settings::default();
    s.newsletter.base_url = "https://news.example.com".into();
    s.newsletter.secret = Secret::new(strong);
    s.newsletter.previous_secrets = vec![Secret::new(PLACEHOLDER_SECRET)];
    let e = s.check_secret_for_public_links().unwrap_err().to_string();
    assert!(e.contains("newsletter.previous_secrets[0]"), "{e}");
}

#[test]
fn secrets_print_as_stars() {
    let mut s = Settings::default();
    s.smtp.password = Secret::new("hunter2-very-secret");
    s.database.url = "postgres://bob:pgpass@localhost/db".into();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(!dbg.contains("pgpass"), "{dbg}");
    assert!(!dbg.contains("change-me-to"), "{dbg}");
    assert!(dbg.contains("***"));
}

#[test]
fn defaults_validate() {
    Settings::default().validate().unwrap();
}

#[test]
fn errors_name_the_key() {
    let e = Settings::from_toml("[smtp]\nusername = \"bob\"\n").unwrap_err();
    assert!(e.to_string().contains("smtp.username"), "{e}");
    let e = Settings::from_toml("[schedule]\ntimezone = \"Mars/Base\"\n").unwrap_err();
    assert!(e.to_string().contains("schedule.timezone"), "{e}");
    let e = Settings::from_toml("[delivery]\nconcurrency = 0\n").unwrap_err();
    assert!(e.to_string().contains("delivery.concurrency"), "{e}");
    let e = Settings::from_toml("[smtp]\nport = \"abc\"\n").unwrap_err();
    assert!(e.to_string().contains("smtp.port"), "{e}");
    let e = Settings::from_toml("[[topics]]\nslug = \"Bad Slug\"\nname = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("topics[0].slug"), "{e}");
    let e = Settings::from_toml("[web]\nmax_connections = 10\nmax_connections_per_client = 11\n")
        .unwrap_err();
    assert!(
        e.to_string().contains("web.max_connections_per_client"),
        "{e}"
    );
    let e = Settings::from_toml("[web]\nheader_read_timeout_secs = 0\n").unwrap_err();
    assert!(
        e.to_string().contains("web.header_read_timeout_secs"),
        "{e}"
    );
    let e = Settings::from_toml("[newsletter]\nbogus = 1\n").unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    // An Ed25519 key is a second signature: it needs the RSA key and its own selector.
    let e = Settings::from_toml(
        "[dkim]\ndomain = \"example.com\"\ned25519_selector = \"ed\"\ned25519_private_key_path = \"ed.key\"\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("dkim.ed25519_private_key_path is set without dkim.private_key_path"),
        "{e}"
    );
    let e = Settings::from_toml(
        "[dkim]\ndomain = \"example.com\"\nselector = \"s\"\nprivate_key_path = \"k.pem\"\ned25519_private_key_path = \"ed.key\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("dkim.ed25519_selector"), "{e}");
}

#[test]
fn the_soft_bounce_limit_and_window_default_and_must_be_positive() {
    let d = Settings::default().bounces;
    assert_eq!((d.soft_limit, d.soft_window_days), (3, 30));
    let s = Settings::from_toml("[bounces]\nsoft_limit = 5\nsoft_window_days = 7\n").unwrap();
    assert_eq!((s.bounces.soft_limit, s.bounces.soft_window_days), (5, 7));
    for key in ["soft_limit", "soft_window_days"] {
        let e = Settings::from_toml(&format!("[bounces]\n{key} = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("bounces.{key}")), "{e}");
    }
}

#[test]
fn the_webhook_secret_is_optional_and_never_printed() {
    assert!(Settings::default().bounces.webhook_secret.is_none());
    let blank = Settings::from_toml("[bounces]\nwebhook_secret = \" \"\n").unwrap();
    assert!(blank.bounces.webhook_secret.is_none());
    let s = Settings::from_toml("[bounces]\nwebhook_secret = \"hush-hush-0123\"\n").unwrap();
    assert_eq!(
        s.bounces.webhook_secret.as_ref().map(|w| w.expose()),
        Some("hush-hush-0123")
    );
    assert!(!format!("{:?}", s.bounces).contains("hush-hush"));
}

#[test]
fn provider_webhook_credentials_are_optional_checked_and_never_printed() {
    let d = Settings::default().bounces;
    assert!(d.ses_topic_arns.is_empty() && d.postmark.is_none());
    assert!(d.sendgrid_public_key.is_none() && d.mailgun_signing_key.is_none());
    let s = Settings::from_toml(
        "[bounces]\nses_topic_arns = [\"arn:aws:sns:eu-west-1:123456789012:b\"]\n\
         postmark_username = \"pm\"\npostmark_password = \"pm-secret-777\"\n\
         mailgun_signing_key = \"mg-secret-888\"\n",
    )
    .unwrap();
    assert_eq!(s.bounces.ses_topic_arns.len(), 1);
    assert_eq!(s.bounces.postmark.as_ref().unwrap().username, "pm");
    let printed = format!("{:?}", s.bounces);
    assert!(
        !printed.contains("pm-secret") && !printed.contains("mg-secret"),
        "{printed}"
    );
    for (toml, key) in [
        (
            "ses_topic_arns = [\"arn:aws:s3:::bucket\"]",
            "bounces.ses_topic_arns",
        ),
        ("postmark_username = \"pm\"", "bounces.postmark_password"),
        ("postmark_password = \"x\"", "bounces.postmark_username"),
        (
            "sendgrid_public_key = \"not base64!\"",
            "bounces.sendgrid_public_key",
        ),
        (
            "sendgrid_public_key = \"AAAA\"",
            "bounces.sendgrid_public_key",
        ),
    ] {
        let e = Settings::from_toml(&format!("[bounces]\n{toml}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{toml}: {e}");
    }
}

#[test]
fn a_bounce_address_is_parsed_once_and_checked_with_its_key() {
    assert!(Settings::default().bounces.address.is_none());
    let s = Settings::from_toml("[bounces]\naddress = \" bounces@news.example.com \"\n").unwrap();
    let address = s.bounces.address.unwrap();
    assert_eq!(address.user(), "bounces");
    assert_eq!(address.domain(), "news.example.com");
    assert!(
        Settings::from_toml("[bounces]\naddress = \"\"\n")
            .unwrap()
            .bounces
            .address
            .is_none()
    );
    let longest = "b".repeat(MAX_BOUNCE_LOCAL_PART);
    assert!(Settings::from_toml(&format!("[bounces]\naddress = \"{longest}@x.org\"\n")).is_ok());
    let too_long = format!("b{longest}@x.org");
    for (bad, why) in [
        ("not an address", "is not an email address"),
        ("bounces+x@news.example.com", "no '+'"),
        (r#"\"b c\"@news.example.com"#, "plain local part"),
        ("bounces@bücher.de", "A-label"),
        (too_long.as_str(), "longer than 31"),
    ] {
        let e = Settings::from_toml(&format!("[bounces]\naddress = \"{bad}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bounces.address") && e.contains(why),
            "{bad}: {e}"
        );
    }
}

/// Every key of every section appears in config/tidings.toml (set or commented out), so the
/// shipped file documents the whole configuration.
#[test]
fn shipped_config_names_every_key() {
    let text = include_str!("../../config/tidings.toml");
    Settings::from_toml(text).unwrap();
    let defaults = figment::Figment::from(Serialized::defaults(RawSettings::default()));
    let value: figment::value::Dict = defaults.extract().unwrap();
    for (section, inner) in value {
        let Some(dict) = inner.as_dict() else {
            continue;
        };
        assert!(
            text.contains(&format!("[{section}]")),
            "section [{section}] is missing"
        );
        for key in dict.keys() {
            let named = text
                .lines()
                .map(|l| l.trim_start_matches('#').trim())
                .any(|l| l.starts_with(&format!("{key} =")));
            assert!(named, "{section}.{key} is not named in config/tidings.toml");
        }
    }
    for key in [
        "kind",
        "name",
        "weight",
        "base_url",
        "url",
        "min_points",
        "tags",
    ] {
        assert!(text.contains(key), "sources key {key} is not documented");
    }
    for key in [
        "slug",
        "keywords",
        "exclude",
        "domains",
        "window_days",
        "limit",
        "max_per_domain",
        "repeat",
        "cron",
        "deliver_at_local",
    ] {
        assert!(text.contains(key), "topics key {key} is not documented");
    }
}

#[test]
fn smtp_timeout_takes_fractions_and_must_be_positive() {
    let s = Settings::from_toml("[smtp]\ntimeout_secs = 0.5\n").unwrap();
    assert_eq!(s.smtp.timeout_secs, 0.5);
    let s = Settings::from_toml("[smtp]\ntimeout_secs = 7\n").unwrap();
    assert_eq!(s.smtp.timeout_secs, 7.0);
    let e = Settings::from_toml("[smtp]\ntimeout_secs = 0\n").unwrap_err();
    assert!(e.to_string().contains("smtp.timeout_secs"), "{e}");
    assert_eq!(Settings::default().delivery.unknown_retries, 1);
}

#[test]
fn transport_defaults_to_file_without_smtp_host() {
    let s = Settings::default();
    assert_eq!(s.delivery.effective_transport(&s.smtp), TransportKind::File);
    let s = Settings::from_toml("[smtp]\nhost = \"mail.example.com\"\n").unwrap();
    assert_eq!(s.delivery.effective_transport(&s.smtp), TransportKind::Smtp);
}

/// Values that need parsing are parsed once, when the settings load, into the types the rest of
/// the program reads: nobody parses configuration text again.
#[test]
fn settings_hold_parsed_values() {
    let s = Settings::from_toml(
        r#"
[newsletter]
from = "Tidings Weekly <news@example.com>"
reply_to = "Editors <editors@example.com>"

[web]
bind = "0.0.0.0:9090"
trusted_proxies = ["10.0.0.1", "::1"]

[schedule]
cron = "0 0 8 * * Mon"
timezone = "Europe/Berlin"
fetch_cron = "0 15 * * * *"
retry_cron = ""
housekeeping_cron = "  "

[[topics]]
slug = "rust"
name = "Rust"
deliver_at_local = "07:30"

[[topics]]
slug = "go"
name = "Go"
cron = "0 30 7 * * *"

[[topics]]
slug = "zig"
name = "Zig"
cron = " "
"#,
    )
    .unwrap();
    let n = &s.newsletter;
    assert_eq!(n.from.name.as_deref(), Some("Tidings Weekly"));
    assert_eq!(n.from.email.to_string(), "news@example.com");
    let reply_to = n.reply_to.as_ref().unwrap();
    assert_eq!(reply_to.email.to_string(), "editors@example.com");
    assert!(Settings::default().newsletter.reply_to.is_none());

    assert_eq!(
        s.web.bind,
        "0.0.0.0:9090".parse::<std::net::SocketAddr>().unwrap()
    );
    let proxies: Vec<std::net::IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    assert_eq!(s.web.trusted_proxies, proxies);

    let sch = &s.schedule;
    assert_eq!(sch.timezone, chrono_tz::Europe::Berlin);
    let weekly = sch.cron.as_ref().unwrap();
    assert_eq!(weekly.expression(), "0 0 8 * * Mon");
    assert_eq!(weekly.timezone(), chrono_tz::Europe::Berlin);
    assert_eq!(
        sch.fetch_cron.as_ref().unwrap().timezone(),
        chrono_tz::Europe::Berlin
    );
    assert!(sch.retry_cron.is_none(), "a blank cron is no job");
    assert!(sch.housekeeping_cron.is_none(), "a blank cron is no job");

    let [rust, go, zig] = &s.topics[..] else {
        panic!("three topics");
    };
    assert_eq!(rust.slug.as_str(), "rust");
    assert_eq!(
        rust.deliver_at_local,
        chrono::NaiveTime::from_hms_opt(7, 30, 0)
    );
    assert!(rust.cron.is_none());
    assert_eq!(rust.schedule_or(sch).unwrap().expression(), "0 0 8 * * Mon");
    let own = go.schedule_or(sch).unwrap();
    assert_eq!(own.expression(), "0 30 7 * * *");
    assert_eq!(own.timezone(), chrono_tz::Europe::Berlin);
    assert!(zig.cron.is_none(), "a blank topic cron falls back");
    assert_eq!(zig.schedule_or(sch).unwrap().expression(), "0 0 8 * * Mon");
    assert!(go.deliver_at_local.is_none());
    assert_eq!(s.topic("go").map(|t| t.name.as_str()), Some("Go"));
    assert!(s.topic("nope").is_none());
}

#[test]
fn without_any_cron_a_topic_has_no_schedule() {
    let s = Settings::from_toml(
        "[schedule]\ncron = \"\"\n\n[[topics]]\nslug = \"rust\"\nname = \"Rust\"\n",
    )
    .unwrap();
    assert!(s.schedule.cron.is_none());
    assert!(s.topics[0].schedule_or(&s.schedule).is_none());
}

/// Each value parsed at load names its key when it does not parse.
#[test]
fn parse_errors_name_the_key() {
    let cases = [
        (
            "[newsletter]\nfrom = \"Evil\\r\\nBcc: victim@example.org <digest@example.com>\"\n",
            "newsletter.from",
        ),
        (
            "[newsletter]\nfrom = \"not a mailbox\"\n",
            "newsletter.from",
        ),
        (
            "[newsletter]\nreply_to = \"Evil\\u0000Name <r@example.com>\"\n",
            "newsletter.reply_to",
        ),
        ("[web]\nbind = \"localhost:8080\"\n", "web.bind"),
        (
            "[web]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
            "web.trusted_proxies",
        ),
        (
            "[schedule]\ntimezone = \"Mars/Base\"\n",
            "schedule.timezone",
        ),
        ("[schedule]\ncron = \"0 8 * * Mon\"\n", "schedule.cron"),
        (
            "[schedule]\nfetch_cron = \"0 0 25 * * *\"\n",
            "schedule.fetch_cron",
        ),
        ("[schedule]\nretry_cron = \"x\"\n", "schedule.retry_cron"),
        (
            "[schedule]\nhousekeeping_cron = \"1 2 3\"\n",
            "schedule.housekeeping_cron",
        ),
        (
            "[[topics]]\nslug = \"rust\"\nname = \"Rust\"\n\n[[topics]]\nslug = \"go\"\nname = \"Go\"\ncron = \"0 7 * * *\"\n",
            "topics[1].cron",
        ),
        (
            "[[topics]]\nslug = \"rust\"\nname = \"Rust\"\ndeliver_at_local = \"8am\"\n",
            "topics[0].deliver_at_local",
        ),
        (
            "[[topics]]\nslug = \"rust\"\nname = \"Rust\"\n\n[[topics]]\nslug = \"rust\"\nname = \"Again\"\n",
            "topics[1].slug",
        ),
    ];
    for (toml, key) in cases {
        let e = Settings::from_toml(toml).unwrap_err().to_string();
        assert!(e.contains(key), "{toml}: {e}");
    }
}

/// Only `src/config` turns configuration text into crons, mailboxes and times of day (the
/// defining modules `schedule.rs` and `domain/email.rs` aside): the rest of the program reads
/// the typed settings, so each value has one parser and one error message naming its key.
#[test]
fn only_config_parses_configuration_text() {
    fn visit(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let allowed = [
        src.join("config"),
        src.join("schedule.rs"),
        src.join("domain").join("email.rs"),
    ];
    for file in files {
        if allowed.iter().any(|a| file.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for call in [
            "Schedule::parse(",
            "parse_cron(",
            "parse_mailbox(",
            "NaiveTime::parse_from_str(",
        ] {
            assert!(
                !text.contains(call),
                "{} calls {call}: read the typed value from the settings instead",
                file.display()
            );
        }
    }
}

#[test]
fn accent_colours_pick_a_readable_ink_and_decide_the_links() {
    let dark = AccentColor::parse("#0B5394").unwrap();
    assert_eq!(dark.hex(), "#0b5394");
    assert!(dark.readable_on_white());
    assert_eq!(dark.ink().hex(), "#ffffff");
    let light = AccentColor::parse("#ffd700").unwrap();
    assert!(!light.readable_on_white());
    assert_eq!(light.ink().hex(), "#1a1a1a");
    assert!(
        (AccentColor::parse("#000000")
            .unwrap()
            .contrast(AccentColor::parse("#ffffff").unwrap())
            - 21.0)
            .abs()
            < 1e-9
    );
    for bad in [
        "0b5394", "#0b539", "#0b53944", "#gggggg", "#0b5394 ", "#ééé",
    ] {
        assert!(AccentColor::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn ranking_keys_are_checked_and_named() {
    let s = Settings::default();
    assert_eq!(s.ranking.default_percentile, 0.5);
    assert_eq!(s.ranking.trailing_days, 28);
    let s =
        Settings::from_toml("[ranking]\ndefault_percentile = 0.8\ntrailing_days = 14\n").unwrap();
    assert_eq!(
        (s.ranking.default_percentile, s.ranking.trailing_days),
        (0.8, 14)
    );
    for (bad, key) in [
        ("default_percentile = 1.5", "ranking.default_percentile"),
        ("default_percentile = -0.1", "ranking.default_percentile"),
        ("trailing_days = 0", "ranking.trailing_days"),
    ] {
        let e = Settings::from_toml(&format!("[ranking]\n{bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}
