//! The throwaway IMAP server (Dovecot) that `scripts/test` starts, described by
//! `TIDINGS_TEST_IMAP` (`host=..;imap_port=..;imaps_port=..;password=..;ca_file=..;mail_dir=..`):
//! any user name logs in with the one password and gets a Maildir of its own, so each test takes
//! a new user and tests run in parallel. On 127.0.0.2 the server offers neither MOVE nor
//! UIDPLUS. Without the variable the IMAP tests are skipped loudly, and `TIDINGS_REQUIRE_ALL=1`
//! turns the skip into a failure. Tests put messages in with IMAP APPEND and look with IMAP.

use std::path::PathBuf;
use std::sync::Once;

use async_imap::Session;
use futures::TryStreamExt as _;
use tokio::net::TcpStream;

static SKIP_WARNING: Once = Once::new();

/// The test IMAP server.
#[derive(Clone, Debug)]
pub struct ImapServer {
    pub host: String,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub password: String,
    /// The PEM certificate imaps presents (self-signed, for 127.0.0.1 and localhost).
    pub ca_file: PathBuf,
}

/// The server of `TIDINGS_TEST_IMAP`, or None (after a loud warning) when it is not set.
pub fn server() -> Option<ImapServer> {
    let text = match std::env::var("TIDINGS_TEST_IMAP") {
        Ok(text) if !text.is_empty() => text,
        _ => {
            SKIP_WARNING.call_once(|| {
                eprintln!(
                    "!!!!!!!! TIDINGS_TEST_IMAP is not set: IMAP tests are SKIPPED (run scripts/test)"
                );
            });
            assert!(
                std::env::var("TIDINGS_REQUIRE_ALL").as_deref() != Ok("1"),
                "TIDINGS_REQUIRE_ALL=1 but no IMAP server is available (run scripts/test)"
            );
            return None;
        }
    };
    let field = |name: &str| {
        text.split(';')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("TIDINGS_TEST_IMAP has no {name}: {text}"))
            .to_string()
    };
    Some(ImapServer {
        host: field("host"),
        imap_port: field("imap_port").parse().expect("imap_port"),
        imaps_port: field("imaps_port").parse().expect("imaps_port"),
        password: field("password"),
        ca_file: PathBuf::from(field("ca_file")),
    })
}

impl ImapServer {
    /// A user name no other test uses (its mailbox starts empty).
    pub fn new_user(&self) -> String {
        format!("t{}", uuid::Uuid::new_v4().simple())
    }

    /// The `[bounces]` keys that poll `user`'s INBOX over imaps, trusting the test certificate.
    pub fn bounces_config(&self, user: &str, poll_secs: u64) -> String {
        format!(
            "[bounces]\nimap_url = \"imaps://{user}@{}:{}/INBOX\"\nimap_password = \"{}\"\n\
             imap_ca_file = \"{}\"\npoll_secs = {poll_secs}\n",
            self.host,
            self.imaps_port,
            self.password,
            self.ca_file.display()
        )
    }

    /// A plain-text session as `user` on `host` (127.0.0.1, or 127.0.0.2 for the server
    /// without MOVE).
    pub async fn login_on(&self, host: &str, user: &str) -> Session<TcpStream> {
        let tcp = TcpStream::connect((host, self.imap_port))
            .await
            .expect("connect to the test IMAP server");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        client
            .login(user, &self.password)
            .await
            .map_err(|(e, _)| e)
            .expect("log in to the test IMAP server")
    }

    pub async fn login(&self, user: &str) -> Session<TcpStream> {
        let host = self.host.clone();
        self.login_on(&host, user).await
    }

    /// Puts `message` into `user`'s INBOX.
    pub async fn append(&self, user: &str, message: &[u8]) {
        let mut session = self.login(user).await;
        session
            .append("INBOX", None, None, message)
            .await
            .expect("APPEND");
        session.logout().await.expect("LOGOUT");
    }

    /// The Message-IDs of the messages in `user`'s `folder`, sorted; empty when the folder does
    /// not exist.
    pub async fn message_ids(&self, user: &str, folder: &str) -> Vec<String> {
        let mut session = self.login(user).await;
        let exists = {
            let names = session
                .list(None, Some(&format!("\"{folder}\"")))
                .await
                .expect("LIST");
            !names
                .try_collect::<Vec<_>>()
                .await
                .expect("LIST")
                .is_empty()
        };
        if !exists {
            session.logout().await.expect("LOGOUT");
            return Vec::new();
        }
        let mailbox = session.examine(folder).await.expect("EXAMINE");
        let mut ids = Vec::new();
        if mailbox.exists > 0 {
            let fetches: Vec<_> = session
                .fetch("1:*", "BODY.PEEK[]")
                .await
                .expect("FETCH")
                .try_collect()
                .await
                .expect("FETCH");
            for f in &fetches {
                let body = String::from_utf8_lossy(f.body().expect("body"));
                let id = body
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(name, _)| name.eq_ignore_ascii_case("message-id"))
                            .map(|(_, v)| v.trim().to_string())
                    })
                    .unwrap_or_default();
                ids.push(id);
            }
        }
        session.logout().await.expect("LOGOUT");
        ids.sort();
        ids
    }
}
