//! The operator's kit through the built binary: `tidings init` (a complete config that loads
//! with the real loader, a fresh secret, a migrated database on either backend, never over an
//! existing file), `tidings dkim keygen` (an RSA or Ed25519 key `[dkim]` loads whose signatures
//! verify against the printed DNS record, checked with mail-auth; both keys configured, every
//! message carries both signatures; a key that cannot be read stops start-up), `tidings --version` (version and commit),
//! and `[theme]` (accent colour, logo and footer line in the digest that `preview` renders, in
//! the confirmation that arrives over SMTP and on the web pages; bad values refused at start
//! with the key named).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::http::StatusCode;
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use tidings::config::{Settings, redact_url};
use tidings::store::Store;

use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{self, Backend, per_backend};
use crate::support::scheduler::seed_article;
use crate::web::TestApp;

const SHIPPED: &str = include_str!("../config/tidings.toml");

/// The built binary in `dir`, with nothing of the environment's configuration inherited.
fn tidings_in(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("TIDINGS_CONFIG")
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS__") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run tidings")
}

fn temp_dir() -> PathBuf {
    tempfile::tempdir().expect("temp dir").keep()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---- tidings init ----

/// `init DIR` with the operator's values on `database` (None: the SQLite default).
fn init(dir: &Path, database: Option<&str>) -> Output {
    let target = dir.join("site");
    let target = target.to_str().unwrap();
    let mut args = vec![
        "init",
        target,
        "--base-url",
        "https://news.example.com",
        "--from",
        "Example News <news@example.com>",
        "--postal-address",
        "Example Ltd, 5 Quay \"Street\", Harbourtown",
    ];
    if let Some(url) = database {
        args.extend(["--database", url]);
    }
    tidings_in(dir, &args)
}

per_backend!(init_writes_a_config_that_loads_and_migrates_the_database);
async fn init_writes_a_config_that_loads_and_migrates_the_database(backend: Backend) {
    let url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match backend.url().await {
            Some((_, url)) => Some(url),
            None => return,
        },
    };
    let dir = temp_dir();
    let out = init(&dir, url.as_deref());
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let config = dir.join("site/tidings.toml");
    assert!(config.exists(), "{printed}");

    // The real loader reads it, with the operator's values and a fresh, strong secret.
    let settings = Settings::load(Some(&config)).expect("the written config loads");
    let n = &settings.newsletter;
    assert_eq!(n.base_url, "https://news.example.com");
    assert_eq!(n.from.to_string(), "Example News <news@example.com>");
    assert_eq!(
        n.postal_address,
        "Example Ltd, 5 Quay \"Street\", Harbourtown"
    );
    let secret = base64::engine::general_purpose::STANDARD
        .decode(n.secret.expose())
        .expect("the secret is base64");
    assert_eq!(secret.len(), 32);
    settings
        .check_secret_for_public_links()
        .expect("serve, run and send accept the new secret");
    match &url {
        Some(url) => assert_eq!(&settings.database.url, url),
        None => assert_eq!(
            settings.database.url,
            format!("sqlite://{}", dir.join("site/data/tidings.db").display())
        ),
    }
    #[cfg(unix)]
    assert_eq!(mode(&config), 0o600, "the file holds the secret");

    // Every setting line of the shipped file is there, only the operator's values changed.
    let written = std::fs::read_to_string(&config).unwrap();
    let filled = [
        "secret",
        "url",
        "outbox_dir",
        "base_url",
        "from",
        "postal_address",
    ];
    for line in SHIPPED.lines() {
        let key = line.split(" =").next().unwrap_or_default();
        if filled.contains(&key) {
            assert!(
                written.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key}"
            );
        } else {
            assert!(written.lines().any(|l| l == line), "missing: {line}");
        }
    }

    // The database exists and is migrated: `status` opens it without creating one.
    let status = tidings_in(&dir, &["--config", config.to_str().unwrap(), "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let store = Store::open_existing(&settings.database.url, 1)
        .await
        .unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0, "nothing left to migrate");
    store.close().await;

    // The next steps name the DNS records, the checks, a test send and `serve`.
    for expected in [
        "Next steps",
        "example.com IN TXT \"v=spf1",
        "tidings dkim keygen --domain example.com --selector tidings",
        "_dmarc.example.com IN TXT \"v=DMARC1; p=none",
        "doctor",
        "send --topic distributed-systems --to",
        "serve",
    ] {
        assert!(printed.contains(expected), "{expected:?} in {printed}");
    }
    assert!(
        printed.contains(&redact_url(&settings.database.url)),
        "{printed}"
    );
    assert!(
        !printed.contains(n.secret.expose()),
        "the secret is not printed"
    );
}

#[test]
fn init_gives_every_installation_its_own_secret() {
    let (a, b) = (temp_dir(), temp_dir());
    assert!(init(&a, None).status.success());
    assert!(init(&b, None).status.success());
    let secret = |dir: &Path| {
        Settings::load(Some(&dir.join("site/tidings.toml")))
            .unwrap()
            .newsletter
            .secret
            .expose()
            .to_string()
    };
    assert_ne!(secret(&a), secret(&b));
}

#[test]
fn init_never_overwrites_an_existing_config() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.join("site")).unwrap();
    let config = dir.join("site/tidings.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    let out = init(&dir, None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    assert!(!dir.join("site/data").exists(), "no database was created");
}

#[test]
fn init_refuses_a_bad_value_naming_the_key_and_writes_nothing() {
    let dir = temp_dir();
    let target = dir.join("site");
    let out = tidings_in(
        &dir,
        &["init", target.to_str().unwrap(), "--from", "not a mailbox"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("newsletter.from"), "{}", stderr(&out));
    assert!(!target.join("tidings.toml").exists());
    assert!(!target.join("data").exists());
}

// ---- tidings dkim keygen ----

mod dns {
    //! A TXT "resolver cache" so mail-auth verifies without touching the network.
    use mail_auth::{ResolverCache, Txt};
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::Mutex;
    use std::time::Instant;

    pub struct Records(pub Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for Records {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }
        fn insert(&self, key: Box<str>, value: Txt, _: Instant) {
            self.0.lock().unwrap().insert(key, value);
        }
    }
}

/// The DKIM results of `raw`, each with its signature's selector (`?` for none), with each
/// `(name, record)` (the TXT value) published.
async fn verify_dkim(
    raw: &[u8],
    published: &[(&str, &str)],
) -> Vec<(String, mail_auth::DkimResult)> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{AuthenticatedMessage, MessageAuthenticator, Parameters, Txt};

    let records = dns::Records(Default::default());
    for (name, record) in published {
        let key = DomainKey::parse(record.as_bytes()).expect("the printed record parses");
        let txt: Txt = key.into();
        for name in [format!("{name}."), name.to_string()] {
            records.0.lock().unwrap().insert(name.into(), txt.clone());
        }
    }
    // The resolver is never asked: the records are in the cache above.
    let authenticator = MessageAuthenticator::new_cloudflare().unwrap();
    let message = AuthenticatedMessage::parse(raw).expect("mail-auth parses the message");
    let params = Parameters::new(&message).with_txt_cache(&records);
    authenticator
        .verify_dkim(params)
        .await
        .into_iter()
        .map(|o| {
            let selector = o.signature().map_or("?".into(), |s| s.s.clone());
            (selector, o.result().clone())
        })
        .collect()
}

/// `tidings dkim keygen --domain DOMAIN --selector SELECTOR --out OUT` with `extra` flags.
fn run_keygen(dir: &Path, domain: &str, selector: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "dkim",
        "keygen",
        "--domain",
        domain,
        "--selector",
        selector,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    tidings_in(dir, &args)
}

/// A new key for example.com at DIR/FILE; (its path, the TXT value printed on the record line,
/// stdout).
fn keygen(dir: &Path, selector: &str, file: &str, extra: &[&str]) -> (PathBuf, String, String) {
    let key = dir.join(file);
    let out = run_keygen(dir, "example.com", selector, &key, extra);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let record = record_line(&printed, &format!("{selector}._domainkey.example.com"))
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    (key, record, printed)
}

/// The line of `printed` with the TXT record for `name`.
fn record_line<'a>(printed: &'a str, name: &str) -> &'a str {
    printed
        .lines()
        .find(|l| l.starts_with(&format!("{name} IN TXT \"")))
        .unwrap_or_else(|| panic!("no record line in {printed}"))
}

/// A second `keygen` over `key` is refused (exit code 2) and leaves the key as it was.
fn keygen_refuses_to_overwrite(dir: &Path, selector: &str, key: &Path, extra: &[&str]) {
    let before = std::fs::read_to_string(key).unwrap();
    let again = run_keygen(dir, "example.com", selector, key, extra);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("already exists"));
    assert_eq!(std::fs::read_to_string(key).unwrap(), before);
}

/// The signature with selector `pass` verifies and the one with selector `fail` does not.
fn passes_and_fails(results: &[(String, mail_auth::DkimResult)], pass: &str, fail: &str) {
    let of = |selector: &str| {
        results
            .iter()
            .find(|(s, _)| s == selector)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no signature with s={selector}: {results:?}"))
    };
    assert_eq!(of(pass), mail_auth::DkimResult::Pass, "{results:?}");
    assert_ne!(of(fail), mail_auth::DkimResult::Pass, "{results:?}");
}

/// The RSA test key and its record, for the RSA half of dual signing.
fn rsa_fixture() -> (PathBuf, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public = std::fs::read_to_string(dir.join("dkim-test-key.pub.b64")).unwrap();
    (
        dir.join("dkim-test-key.pem"),
        format!("v=DKIM1; k=rsa; p={}", public.trim()),
    )
}

/// `[dkim]` signing for example.com with the RSA key at `rsa` (selector news2026) and the
/// Ed25519 key at `ed25519` (selector ed2026).
fn dual_dkim(rsa: &Path, ed25519: &Path) -> String {
    format!(
        "[dkim]\ndomain = \"example.com\"\nselector = \"news2026\"\nprivate_key_path = \"{}\"\n\
         ed25519_selector = \"ed2026\"\ned25519_private_key_path = \"{}\"",
        rsa.display(),
        ed25519.display()
    )
}

/// The values of the DKIM-Signature headers of `raw`, unfolded.
fn dkim_signatures(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("DKIM-Signature:").map(str::to_string))
        .collect()
}

/// Monday 2026-02-02 08:00 UTC, a slot of the weekly digest below.
fn monday() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0).unwrap()
}

/// A binary config on a SQLite database holding one article on `rust` for Monday's digest,
/// with `extra` TOML (sections) appended.
async fn digest_env(extra: &str) -> TestEnv {
    let url = db::sqlite_url();
    let store = Store::open(&url, 1).await.unwrap();
    seed_article(&store, monday()).await;
    store.close().await;
    let env = TestEnv::new(&url, "");
    std::fs::write(
        &env.config,
        format!(
            "[newsletter]\nfrom = \"Tidings <news@example.com>\"\n\n[database]\nurl = \"{url}\"\n\n\
             [schedule]\ncron = \"0 0 8 * * Mon\"\ntimezone = \"UTC\"\n\n{extra}\n\n\
             [[topics]]\nslug = \"rust\"\nname = \"Rust\"\nkeywords = [\"Rust\"]\n"
        ),
    )
    .unwrap();
    env
}

fn preview(env: &TestEnv, format: &str) -> Output {
    env.run(&[
        "preview",
        "--topic",
        "rust",
        "--at",
        &monday().to_rfc3339(),
        "--format",
        format,
    ])
}

#[tokio::test]
async fn dkim_keygen_writes_a_key_whose_signatures_verify_against_the_printed_record() {
    let dir = temp_dir();
    let key = dir.join("keys/tidings.pem");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let out = run_keygen(&dir, "Example.COM", "news2026", &key, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pem}");
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);

    // The record line: `S._domainkey.D IN TXT "..." "..."`, no string over 255 characters.
    let line = record_line(&printed, "news2026._domainkey.example.com");
    let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert!(
        strings.len() >= 2,
        "a 2048-bit key needs two strings: {line}"
    );
    assert!(strings.iter().all(|s| s.len() <= 255), "{line}");
    let record = strings.concat();
    assert!(record.starts_with("v=DKIM1; k=rsa; p=MIIB"), "{record}");
    assert!(
        printed.contains(&format!("private_key_path = \"{}\"", key.display())),
        "{printed}"
    );

    // `[dkim]` loads it, and a digest signed with it verifies against the printed record.
    let env = digest_env(&format!(
        "[dkim]\ndomain = \"example.com\"\nselector = \"news2026\"\nprivate_key_path = \"{}\"",
        key.display()
    ))
    .await;
    let eml = preview(&env, "eml");
    assert!(eml.status.success(), "{}", stderr(&eml));
    assert!(stdout(&eml).contains("DKIM-Signature:"));
    let results = verify_dkim(
        &eml.stdout,
        &[("news2026._domainkey.example.com", record.as_str())],
    )
    .await;
    assert_eq!(
        results,
        vec![("news2026".to_string(), mail_auth::DkimResult::Pass)]
    );

    // Never over an existing key.
    keygen_refuses_to_overwrite(&dir, "news2026", &key, &[]);
}

#[tokio::test]
async fn dkim_keygen_ed25519_writes_a_key_whose_signatures_verify_against_the_printed_record() {
    let dir = temp_dir();
    let (key, record, printed) = keygen(&dir, "ed2026", "ed.key", &["--algorithm", "ed25519"]);
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    // The form lettre reads: the base64 of the 32-byte seed.
    let text = std::fs::read_to_string(&key).unwrap();
    let seed = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    assert_eq!(seed.len(), 32, "{text}");
    // RFC 8463: k=ed25519 and p= the raw 32-byte public key, one string.
    let public = record
        .strip_prefix("v=DKIM1; k=ed25519; p=")
        .unwrap_or_else(|| panic!("{record}"));
    let public_key = base64::engine::general_purpose::STANDARD
        .decode(public)
        .unwrap();
    assert_eq!(public_key.len(), 32, "{record}");
    assert!(
        !printed.contains(text.trim()),
        "the key is printed: {printed}"
    );
    for line in [
        "ed25519_selector = \"ed2026\"".to_string(),
        format!("ed25519_private_key_path = \"{}\"", key.display()),
    ] {
        assert!(printed.contains(&line), "{line} not in {printed}");
    }

    // Signed through `[dkim]` (beside the RSA test key), the Ed25519 signature verifies
    // against the printed record alone; the RSA one, whose record is not published, does not.
    let (rsa, _) = rsa_fixture();
    let env = digest_env(&dual_dkim(&rsa, &key)).await;
    let eml = preview(&env, "eml");
    assert!(eml.status.success(), "{}", stderr(&eml));
    let results = verify_dkim(&eml.stdout, &[("ed2026._domainkey.example.com", &record)]).await;
    assert_eq!(results.len(), 2, "{results:?}");
    passes_and_fails(&results, "ed2026", "news2026");

    // Never over an existing key.
    keygen_refuses_to_overwrite(&dir, "ed2026", &key, &["--algorithm", "ed25519"]);
}

#[tokio::test]
async fn a_dual_signed_message_carries_an_rsa_and_an_ed25519_signature_that_each_verify() {
    let dir = temp_dir();
    let (rsa, rsa_key, _) = keygen(&dir, "news2026", "rsa.pem", &[]);
    let (ed25519, ed25519_key, _) = keygen(&dir, "ed2026", "ed.key", &["--algorithm", "ed25519"]);
    let env = digest_env(&dual_dkim(&rsa, &ed25519)).await;
    let eml = preview(&env, "eml");
    assert!(eml.status.success(), "{}", stderr(&eml));

    let signatures = dkim_signatures(&eml.stdout);
    assert_eq!(signatures.len(), 2, "{signatures:#?}");
    let with = |a: &str, s: &str| {
        signatures
            .iter()
            .filter(|v| v.contains(&format!("a={a};")) && v.contains(&format!("s={s};")))
            .count()
    };
    assert_eq!(with("rsa-sha256", "news2026"), 1, "{signatures:#?}");
    assert_eq!(with("ed25519-sha256", "ed2026"), 1, "{signatures:#?}");

    let published = [
        ("news2026._domainkey.example.com", rsa_key.as_str()),
        ("ed2026._domainkey.example.com", ed25519_key.as_str()),
    ];
    let mut results = verify_dkim(&eml.stdout, &published).await;
    results.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        results,
        vec![
            ("ed2026".to_string(), mail_auth::DkimResult::Pass),
            ("news2026".to_string(), mail_auth::DkimResult::Pass),
        ]
    );

    // Another Ed25519 key published at the Ed25519 selector: that signature fails, RSA's passes.
    let (_, other_key, _) = keygen(&dir, "ed2026", "other.key", &["--algorithm", "ed25519"]);
    assert_ne!(other_key, ed25519_key);
    let published = [
        published[0],
        ("ed2026._domainkey.example.com", other_key.as_str()),
    ];
    let results = verify_dkim(&eml.stdout, &published).await;
    passes_and_fails(&results, "news2026", "ed2026");
}

#[tokio::test]
async fn a_dkim_key_that_cannot_be_read_stops_start_up_naming_its_setting() {
    let dir = temp_dir();
    let (rsa, _) = rsa_fixture();
    let missing = dir.join("missing.key");
    let not_a_key = dir.join("not-a-key");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    for (rsa, ed25519, setting) in [
        (
            rsa.as_path(),
            missing.as_path(),
            "dkim.ed25519_private_key_path",
        ),
        (
            rsa.as_path(),
            not_a_key.as_path(),
            "dkim.ed25519_private_key_path",
        ),
        (missing.as_path(), rsa.as_path(), "dkim.private_key_path"),
    ] {
        let env = digest_env(&dual_dkim(rsa, ed25519)).await;
        let out = preview(&env, "eml");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("{setting} ")), "{setting}: {err}");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
}

#[test]
fn dkim_keygen_refuses_a_name_that_is_not_a_domain() {
    let dir = temp_dir();
    let out = tidings_in(
        &dir,
        &[
            "dkim",
            "keygen",
            "--domain",
            "exa mple.com",
            "--selector",
            "s",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--domain"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no file written"
    );
}

// ---- tidings --version ----

#[test]
fn version_names_the_release_and_the_commit() {
    let out = tidings_in(&temp_dir(), &["--version"]);
    assert!(out.status.success());
    let manifest = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let in_checkout = git(&["rev-parse", "--show-toplevel"])
        .is_some_and(|top| std::fs::canonicalize(top).ok() == std::fs::canonicalize(manifest).ok());
    let commit = in_checkout
        .then(|| git(&["rev-parse", "--short", "HEAD"]))
        .flatten()
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        stdout(&out),
        format!("tidings {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

// ---- [theme] ----

/// `html` with the entities askama and css-inline write for `&`, `<`, `>` and `"` decoded.
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

const THEME: &str = "[theme]\naccent_color = \"#C0392B\"\nlogo_url = \"https://cdn.example.com/logo.png?v=2&size=96\"\nfooter = \"Made by <Example> & friends\"";

#[tokio::test]
async fn the_digest_shows_the_theme() {
    let env = digest_env(THEME).await;
    let html = preview(&env, "html");
    assert!(html.status.success(), "{}", stderr(&html));
    let html = stdout(&html);
    assert!(
        html.contains("src=\"https://cdn.example.com/logo.png?v=2&amp;size=96\""),
        "{html}"
    );
    assert!(html.contains("alt=\"Tidings\""), "{html}");
    assert!(
        html.contains("Made by &lt;Example&gt; &amp; friends"),
        "{html}"
    );
    assert!(!html.contains("<Example>"), "the footer is escaped");
    assert!(html.contains("border-top: 4px solid #c0392b"), "{html}");
    // Dark enough to read on white: the links take it too.
    let title_link = html
        .split("<a ")
        .find(|a| a.contains("class=\"title-link\""))
        .and_then(|a| a.split('>').next())
        .unwrap_or_default();
    assert!(title_link.contains("color: #c0392b"), "{title_link}");

    // Without [theme] none of it.
    let plain = digest_env("").await;
    let plain = stdout(&preview(&plain, "html"));
    assert!(!plain.contains("cdn.example.com") && !plain.contains("#c0392b"));
    assert!(!plain.contains("theme-footer"), "{plain}");
}

per_backend!(the_confirmation_that_arrives_shows_the_theme);
async fn the_confirmation_that_arrives_shows_the_theme(backend: Backend) {
    let Some(app) = TestApp::on_with(backend, THEME).await else {
        return;
    };
    let a = app
        .post_form("/subscribe", "email=ann%40example.com&topic=rust&website=")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}: {}", app.label, a.body);
    let mails = app.mail_received_by("ann@example.com").await;
    assert_eq!(mails.len(), 1, "{}", app.label);
    let message = mail_parser::MessageParser::default()
        .parse(&mails[0])
        .unwrap();
    let html = message.body_html(0).unwrap().into_owned();
    assert!(
        html.contains("src=\"https://cdn.example.com/logo.png?v=2&amp;size=96\""),
        "{html}"
    );
    assert!(
        html.contains("Made by &lt;Example&gt; &amp; friends"),
        "{html}"
    );
    // The confirm button wears the accent, with white text (more contrast than black).
    let button = html
        .split("<a ")
        .find(|a| a.contains("class=\"button\""))
        .and_then(|a| a.split('>').next())
        .unwrap_or_default();
    assert!(
        button.contains("background-color: #c0392b") && button.contains("color: #ffffff"),
        "{button}"
    );
    assert!(html.contains("border-top: 4px solid #c0392b"), "{html}");
}

per_backend!(the_web_pages_show_the_theme);
async fn the_web_pages_show_the_theme(backend: Backend) {
    let Some(app) = TestApp::on_with(backend, THEME).await else {
        return;
    };
    for page in ["/", "/archive", "/no-such-page"] {
        let a = app.get(page).await;
        let body = unescape(&a.body);
        assert!(
            body.contains("<link rel=\"stylesheet\" href=\"/static/theme.css\">"),
            "{page}: {body}"
        );
        assert!(
            body.contains("src=\"https://cdn.example.com/logo.png?v=2&size=96\""),
            "{page}: {body}"
        );
        assert!(
            body.contains("Made by <Example> & friends"),
            "{page}: {body}"
        );
        assert!(!a.body.contains("<Example>"), "the footer is escaped");
    }
    let css = app.get("/static/theme.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        css.body.contains("border-top: 4px solid #c0392b"),
        "{}",
        css.body
    );
    assert!(css.body.contains("--accent: #c0392b"), "{}", css.body);

    // Without [theme]: the built-in look, no extra stylesheet.
    let Some(plain) = TestApp::on(backend).await else {
        return;
    };
    let home = plain.get("/").await;
    assert!(!home.body.contains("theme.css") && !home.body.contains("class=\"logo\""));
    assert_eq!(
        plain.get("/static/theme.css").await.status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn bad_theme_values_stop_start_up_naming_the_key() {
    for (theme, key, why) in [
        ("accent_color = \"red\"", "theme.accent_color", "#rrggbb"),
        ("accent_color = \"#12345\"", "theme.accent_color", "#rrggbb"),
        (
            "logo_url = \"http://cdn.example.com/logo.png\"",
            "theme.logo_url",
            "https://",
        ),
        ("logo_url = \"logo.png\"", "theme.logo_url", "not a URL"),
        ("footer = \"two\\nlines\"", "theme.footer", "one line"),
    ] {
        let env = TestEnv::new(&db::sqlite_url(), &format!("[theme]\n{theme}\n"));
        let out = env.run(&["topics"]);
        assert_eq!(out.status.code(), Some(2), "{theme}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(key) && err.contains(why), "{theme}: {err}");
    }
}
