//! `POST /webhooks/ses` through the real HTTP server, with the SNS signing certificate fetched
//! over real HTTPS from a loopback server that answers for `sns.us-east-1.amazonaws.com` (its
//! own throwaway CA, trusted only by the test's fetcher). Messages are signed as SNS signs them:
//! the canonical string of the message type, SHA1withRSA (SignatureVersion 1) or SHA256withRSA
//! (2) by a key whose certificate the server hands out. A permanent bounce suppresses, a
//! complaint marks complained, a transient bounce only counts; a forged or altered message, a
//! certificate URL off SNS and a topic not configured change nothing; a subscription is
//! confirmed by fetching its SubscribeURL, only on SNS. With `[bounces] address` the VERP tag of
//! `mail.source` names the delivery. The whole loop: a digest sent by `tidings send` over real
//! SMTP, then an SES, a Mailgun and a SendGrid event naming only its Message-ID, matched to
//! their deliveries.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey as _;
use tidings::domain::SubscriberStatus;
use tidings::web::SnsCertFetcher;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::TestApp;
use super::live::{TestDb, client, serve, url};
use crate::support::cli::{TestEnv, stdout};
use crate::support::db::{Backend, per_backend};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:tidings-bounces";
const SNS_HOST: &str = "sns.us-east-1.amazonaws.com";
const CERT_PATH: &str = "/SimpleNotificationService-0123456789abcdef.pem";

fn with_topic() -> String {
    format!("[bounces]\nses_topic_arns = [\"{TOPIC}\"]\n")
}

/// The signing key SNS would hold, and its certificate.
struct Signer {
    pkcs8: Vec<u8>,
    cert_pem: String,
}

impl Signer {
    fn new() -> Signer {
        let rc_key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        let pkcs8 = rc_key.serialize_der();
        let mut params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sns.amazonaws.com");
        let cert = params.self_signed(&rc_key).unwrap();
        Signer {
            pkcs8,
            cert_pem: cert.pem(),
        }
    }

    /// `text` signed as SignatureVersion `version` says, base64.
    fn sign(&self, version: &str, text: &str) -> String {
        let signature = match version {
            "1" => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(&self.pkcs8).unwrap();
                let digest = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                    text.as_bytes(),
                );
                // The DigestInfo prefix of SHA-1 (RFC 8017 9.2, note 1).
                let prefix: &[u8] = &[
                    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
                    0x04, 0x14,
                ];
                let scheme = rsa::Pkcs1v15Sign {
                    hash_len: Some(20),
                    prefix: prefix.into(),
                };
                key.sign(scheme, digest.as_ref()).unwrap()
            }
            _ => {
                let key = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    text.as_bytes(),
                    &mut signature,
                )
                .unwrap();
                signature
            }
        };
        base64::engine::general_purpose::STANDARD.encode(signature)
    }
}

/// An SNS message before signing: its fields in SNS's names.
#[derive(Clone)]
struct Sns {
    kind: &'static str,
    message_id: String,
    topic: String,
    message: String,
    subscribe_url: Option<String>,
    token: Option<String>,
    cert_url: String,
}

impl Sns {
    fn notification(id: &str, message: &str) -> Sns {
        Sns {
            kind: "Notification",
            message_id: id.into(),
            topic: TOPIC.into(),
            message: message.into(),
            subscribe_url: None,
            token: None,
            cert_url: format!("https://{SNS_HOST}{CERT_PATH}"),
        }
    }

    /// The string SNS signs (written here from AWS's description, not taken from tidings).
    fn canonical(&self) -> String {
        let mut fields = vec![
            ("Message", self.message.clone()),
            ("MessageId", self.message_id.clone()),
        ];
        if let Some(url) = &self.subscribe_url {
            fields.push(("SubscribeURL", url.clone()));
        }
        fields.push(("Timestamp", "2026-12-01T19:00:00.000Z".into()));
        if let Some(token) = &self.token {
            fields.push(("Token", token.clone()));
        }
        fields.push(("TopicArn", self.topic.clone()));
        fields.push(("Type", self.kind.into()));
        fields
            .into_iter()
            .map(|(k, v)| format!("{k}\n{v}\n"))
            .collect()
    }

    /// The JSON body SNS posts, signed by `signer` as `version`.
    fn body(&self, signer: &Signer, version: &str) -> String {
        let signature = signer.sign(version, &self.canonical());
        self.body_with_signature(version, &signature)
    }

    fn body_with_signature(&self, version: &str, signature: &str) -> String {
        let mut body = serde_json::json!({
            "Type": self.kind,
            "MessageId": self.message_id,
            "TopicArn": self.topic,
            "Message": self.message,
            "Timestamp": "2026-12-01T19:00:00.000Z",
            "SignatureVersion": version,
            "Signature": signature,
            "SigningCertURL": self.cert_url,
            "UnsubscribeURL": format!("https://{SNS_HOST}/?Action=Unsubscribe"),
        });
        if let Some(url) = &self.subscribe_url {
            body["SubscribeURL"] = url.clone().into();
        }
        if let Some(token) = &self.token {
            body["Token"] = token.clone().into();
        }
        body.to_string()
    }
}

/// An SES notification as SES writes it into the SNS message.
fn ses_bounce(email: &str, bounce_type: &str, sub_type: &str) -> String {
    ses_bounce_from(email, bounce_type, sub_type, "news@example.org")
}

/// [`ses_bounce`] of a message sent with the envelope sender `source`.
fn ses_bounce_from(email: &str, bounce_type: &str, sub_type: &str, source: &str) -> String {
    serde_json::json!({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [{
                "emailAddress": email, "action": "failed", "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }],
            "timestamp": "2026-12-01T18:59:00.000Z",
            "feedbackId": "0100018c-feedback",
        },
        "mail": {
            "timestamp": "2026-12-01T18:58:00.000Z",
            "source": source,
            "messageId": "0100018c-ses-message-id",
            "destination": [email],
            "commonHeaders": {"messageId": "<not-ours@example.org>"},
        },
    })
    .to_string()
}

fn ses_complaint(email: &str) -> String {
    serde_json::json!({
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": email}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-01T18:59:00.000Z",
            "feedbackId": "0100018c-complaint",
        },
        "mail": {"messageId": "0100018c-ses-message-id", "destination": [email]},
    })
    .to_string()
}

/// The loopback server that answers for SNS over HTTPS: the certificate at `CERT_PATH`, 200 for
/// anything else; it keeps every request line it answered.
struct FakeSns {
    port: u16,
    ca_der: Vec<u8>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeSns {
    async fn start(cert_pem: String) -> FakeSns {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![SNS_HOST.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let seen = Arc::clone(&seen);
                let cert_pem = cert_pem.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().to_string();
                    let body = if line.contains(".pem ") {
                        cert_pem
                    } else {
                        "<ConfirmSubscriptionResponse/>".to_string()
                    };
                    seen.lock().unwrap().push(line);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        FakeSns {
            port,
            ca_der: ca_cert.der().to_vec(),
            requests,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

struct Setup {
    db: TestDb,
    app: TestApp,
    addr: SocketAddr,
    sns: FakeSns,
    signer: Signer,
    _stop: oneshot::Sender<()>,
}

/// A served app whose SNS fetcher reaches [`FakeSns`], with the confirmed subscriber
/// gone@example.org.
async fn setup(backend: Backend, extra: &str) -> Option<Setup> {
    let db = TestDb::on(backend).await?;
    let app = db.app(extra).await;
    app.add_confirmed("gone@example.org", &["rust"]).await;
    let signer = Signer::new();
    let sns = FakeSns::start(signer.cert_pem.clone()).await;
    let mut state = app.state.clone();
    state.sns = SnsCertFetcher::loopback_for_tests(sns.port, &[SNS_HOST], &sns.ca_der).unwrap();
    let (addr, stop) = serve(state).await;
    Some(Setup {
        db,
        app,
        addr,
        sns,
        signer,
        _stop: stop,
    })
}

async fn post(addr: SocketAddr, body: &str) -> u16 {
    client()
        .post(url(addr, "/webhooks/ses"))
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", "Notification")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn status(app: &TestApp, email: &str) -> SubscriberStatus {
    app.subscriber(email).await.unwrap().status
}

/// `tidings bounces list --json`, as the operator reads it.
fn bounces_list(db: &TestDb) -> Vec<serde_json::Value> {
    let env = TestEnv::new(&db.url, "");
    let out = env.run(&["bounces", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&stdout(&out)).unwrap()
}

per_backend!(a_permanent_bounce_suppresses_once);
async fn a_permanent_bounce_suppresses_once(backend: Backend) {
    let Some(s) = setup(backend, &with_topic()).await else {
        return;
    };
    let label = s.app.label;
    let message = Sns::notification(
        "sns-1",
        &ses_bounce("gone@example.org", "Permanent", "General"),
    );
    // SignatureVersion 1: SHA1withRSA.
    let body = message.body(&s.signer, "1");
    assert_eq!(post(s.addr, &body).await, 200, "{label}");
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Bounced,
        "{label}"
    );
    // SNS delivers at least once: the same message again changes nothing.
    assert_eq!(post(s.addr, &body).await, 200, "{label}");
    let rows = bounces_list(&s.db);
    assert_eq!(rows.len(), 1, "{label}: {rows:#?}");
    assert_eq!(rows[0]["source"], "webhook", "{label}");
    assert_eq!(rows[0]["kind"], "bounce", "{label}");
    assert_eq!(rows[0]["effect"], "hard", "{label}");
    assert_eq!(rows[0]["status"], "5.1.1", "{label}");
    assert_eq!(rows[0]["subscriber_email"], "gone@example.org", "{label}");
    assert_eq!(rows[0]["status_change"], "bounced", "{label}");
    // The certificate was fetched once and then taken from the cache.
    let fetched = s.sns.requests();
    assert_eq!(fetched.len(), 1, "{label}: {fetched:?}");
    assert!(
        fetched[0].starts_with(&format!("GET {CERT_PATH} ")),
        "{label}: {fetched:?}"
    );
}

per_backend!(a_transient_bounce_counts_and_a_complaint_suppresses);
async fn a_transient_bounce_counts_and_a_complaint_suppresses(backend: Backend) {
    let Some(s) = setup(backend, &with_topic()).await else {
        return;
    };
    let label = s.app.label;
    // SignatureVersion 2: SHA256withRSA.
    let soft = Sns::notification(
        "sns-2",
        &ses_bounce("gone@example.org", "Transient", "MailboxFull"),
    );
    assert_eq!(
        post(s.addr, &soft.body(&s.signer, "2")).await,
        200,
        "{label}"
    );
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}: one soft bounce only counts"
    );
    let complaint = Sns::notification("sns-3", &ses_complaint("gone@example.org"));
    assert_eq!(
        post(s.addr, &complaint.body(&s.signer, "2")).await,
        200,
        "{label}"
    );
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Complained,
        "{label}"
    );
    let events = s.app.store.bounce_events().await.unwrap();
    let effects: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.effect.as_str()))
        .collect();
    assert_eq!(
        effects,
        vec![("bounce", "soft"), ("complaint", "complaint")],
        "{label}"
    );
    // Suppressed: the CLI refuses to add the address again.
    let env = TestEnv::new(&s.db.url, "");
    let out = env.run(&["subscribers", "add", "gone@example.org", "--topic", "rust"]);
    assert!(
        !out.status.success(),
        "{label}: a complained address was added again"
    );
}

#[tokio::test]
async fn forged_or_altered_messages_change_nothing() {
    let Some(s) = setup(Backend::Sqlite, &with_topic()).await else {
        return;
    };
    let message = Sns::notification(
        "sns-4",
        &ses_bounce("gone@example.org", "Permanent", "General"),
    );
    // Signed by another key than the certificate's.
    let other = Signer::new();
    assert_eq!(post(s.addr, &message.body(&other, "1")).await, 401);
    assert_eq!(post(s.addr, &message.body(&other, "2")).await, 401);
    // Signed, then the recipient changed.
    let signature = s.signer.sign("2", &message.canonical());
    let altered = Sns {
        message: ses_bounce("other@example.org", "Permanent", "General"),
        ..message.clone()
    };
    assert_eq!(
        post(s.addr, &altered.body_with_signature("2", &signature)).await,
        401
    );
    // A good signature under a version SNS does not have, and no signature at all.
    assert_eq!(
        post(s.addr, &message.body_with_signature("3", &signature)).await,
        401
    );
    let mut unsigned: serde_json::Value =
        serde_json::from_str(&message.body(&s.signer, "2")).unwrap();
    unsigned.as_object_mut().unwrap().remove("Signature");
    assert_eq!(post(s.addr, &unsigned.to_string()).await, 401);
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Confirmed
    );
    assert!(s.app.store.bounce_events().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_certificate_off_sns_is_never_fetched() {
    let Some(s) = setup(Backend::Sqlite, &with_topic()).await else {
        return;
    };
    for cert_url in [
        format!("https://{SNS_HOST}.evil.example{CERT_PATH}"),
        format!("https://evil.example/{SNS_HOST}{CERT_PATH}"),
        format!("http://{SNS_HOST}{CERT_PATH}"),
        format!("https://{SNS_HOST}:8443{CERT_PATH}"),
        format!("https://s3.us-east-1.amazonaws.com{CERT_PATH}"),
    ] {
        let message = Sns {
            cert_url: cert_url.clone(),
            ..Sns::notification(
                "sns-5",
                &ses_bounce("gone@example.org", "Permanent", "General"),
            )
        };
        assert_eq!(
            post(s.addr, &message.body(&s.signer, "2")).await,
            401,
            "{cert_url}"
        );
    }
    assert!(s.sns.requests().is_empty(), "{:?}", s.sns.requests());
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Confirmed
    );
    assert!(s.app.store.bounce_events().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_subscription_is_confirmed_only_on_sns() {
    let Some(s) = setup(Backend::Sqlite, &with_topic()).await else {
        return;
    };
    let confirm = |id: &str, url: String| Sns {
        kind: "SubscriptionConfirmation",
        subscribe_url: Some(url),
        token: Some("2336412f37fb687f5d51e6e2425c464d".into()),
        message: "You have chosen to subscribe to the topic".into(),
        ..Sns::notification(id, "")
    };
    let good = confirm(
        "sns-6",
        format!("https://{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336"),
    );
    assert_eq!(post(s.addr, &good.body(&s.signer, "1")).await, 200);
    let requests = s.sns.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /?Action=ConfirmSubscription&")),
        "{requests:?}"
    );
    // Signed by SNS, but sending us elsewhere: refused, nothing fetched.
    let before = s.sns.requests().len();
    let elsewhere = confirm(
        "sns-7",
        "https://evil.example/?Action=ConfirmSubscription".into(),
    );
    assert_eq!(post(s.addr, &elsewhere.body(&s.signer, "1")).await, 400);
    assert_eq!(s.sns.requests().len(), before);
    // An unsubscribe confirmation is taken and changes nothing.
    let unsubscribe = Sns {
        kind: "UnsubscribeConfirmation",
        ..confirm(
            "sns-8",
            format!("https://{SNS_HOST}/?Action=ConfirmSubscription"),
        )
    };
    assert_eq!(post(s.addr, &unsubscribe.body(&s.signer, "2")).await, 200);
    assert!(s.app.store.bounce_events().await.unwrap().is_empty());
}

#[tokio::test]
async fn other_topics_unknown_types_and_oversize_bodies() {
    let Some(s) = setup(Backend::Sqlite, &with_topic()).await else {
        return;
    };
    // Validly signed by SNS, but from someone else's topic.
    let foreign = Sns {
        topic: "arn:aws:sns:us-east-1:999999999999:not-ours".into(),
        ..Sns::notification(
            "sns-9",
            &ses_bounce("gone@example.org", "Permanent", "General"),
        )
    };
    assert_eq!(post(s.addr, &foreign.body(&s.signer, "2")).await, 403);
    // An SES event type we do not act on: recorded as unknown, nothing changes.
    let open = Sns::notification("sns-10", r#"{"eventType":"Open","mail":{}}"#);
    assert_eq!(post(s.addr, &open.body(&s.signer, "2")).await, 200);
    let events = s.app.store.bounce_events().await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].kind.as_str(), events[0].effect.as_str()),
        ("unknown", "none")
    );
    // A notification of 240 KiB of quotes (SNS carries up to 256 KB) is 480 KiB once escaped
    // again in the SNS envelope: it passes; 560 KiB is over the 512 KiB limit, 413 before
    // anything is read.
    let padded = |id: &str, quotes: usize| {
        let mut message: serde_json::Value =
            serde_json::from_str(&ses_bounce("gone@example.org", "Transient", "General")).unwrap();
        message["padding"] = "\"".repeat(quotes).into();
        Sns::notification(id, &message.to_string())
    };
    let fits = padded("sns-11", 120 * 1024).body(&s.signer, "2");
    assert!(fits.len() > 470 * 1024, "{}", fits.len());
    assert_eq!(post(s.addr, &fits).await, 200);
    assert_eq!(s.app.store.bounce_events().await.unwrap().len(), 2);
    let over = padded("sns-12", 140 * 1024).body(&s.signer, "2");
    assert_eq!(post(s.addr, &over).await, 413);
    assert_eq!(s.app.store.bounce_events().await.unwrap().len(), 2);
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Confirmed
    );
}

#[tokio::test]
async fn without_topics_the_route_is_not_there() {
    let Some(s) = setup(Backend::Sqlite, "").await else {
        return;
    };
    let message = Sns::notification(
        "sns-15",
        &ses_bounce("gone@example.org", "Permanent", "General"),
    );
    assert_eq!(post(s.addr, &message.body(&s.signer, "2")).await, 404);
    assert_eq!(
        status(&s.app, "gone@example.org").await,
        SubscriberStatus::Confirmed
    );
}

per_backend!(a_verp_source_names_the_exact_delivery);
/// With `[bounces] address` set, SES's `mail.source` is our VERP envelope sender: it names the
/// delivery (and so the subscriber) even when the bounced address is another one; a forged tag
/// names nothing.
async fn a_verp_source_names_the_exact_delivery(backend: Backend) {
    let extra = format!("{}address = \"bounces@news.example.com\"\n", with_topic());
    let Some(s) = setup(backend, &extra).await else {
        return;
    };
    let label = s.app.label;
    let reader = s.app.add_confirmed("reader@example.org", &["rust"]).await;
    let delivery = s
        .app
        .store
        .enqueue_transactional(
            tidings::store::DeliveryKind::Confirm,
            reader,
            "reader@example.org",
            "<confirm.1@news.example.com>",
            b"payload",
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
    let base: lettre::Address = "bounces@news.example.com".parse().unwrap();
    let verp = s.app.state.tokens.verp_address(&base, delivery);
    let forged = verp.replace("bounces+", "bounces+a");
    let bounce = |id: &str, source: &str| {
        Sns::notification(
            id,
            &ses_bounce_from(
                "forwarded@elsewhere.example",
                "Permanent",
                "General",
                source,
            ),
        )
    };
    assert_eq!(
        post(s.addr, &bounce("sns-13", &forged).body(&s.signer, "2")).await,
        200,
        "{label}"
    );
    assert_eq!(
        status(&s.app, "reader@example.org").await,
        SubscriberStatus::Confirmed,
        "{label}: a forged tag matched"
    );
    assert_eq!(
        post(s.addr, &bounce("sns-14", &verp).body(&s.signer, "2")).await,
        200,
        "{label}"
    );
    assert_eq!(
        status(&s.app, "reader@example.org").await,
        SubscriberStatus::Bounced,
        "{label}"
    );
    let rows = bounces_list(&s.db);
    assert_eq!(rows.len(), 2, "{label}: {rows:#?}");
    assert!(rows[0]["delivery_id"].is_null(), "{label}: {rows:#?}");
    assert_eq!(rows[1]["delivery_id"], delivery, "{label}");
    assert_eq!(rows[1]["subscriber_email"], "reader@example.org", "{label}");
    assert_eq!(rows[1]["status_change"], "bounced", "{label}");
}

/// A digest's Message-ID, as received.
fn message_id(raw: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
    parsed.message_id().unwrap().to_string()
}

per_backend!(a_digest_sent_over_smtp_then_each_providers_reports_end_in_the_right_status);
/// The whole loop: `tidings send` mails a digest over real SMTP to six readers; then an SES
/// permanent bounce, a Mailgun temporary failure, a SendGrid spam report and a generic hard
/// bounce arrive, each naming only the digest's Message-ID (the address they report is another
/// one), and a Postmark hard bounce and auto-reply, which name the reader's address (Postmark's
/// MessageID is its own, not ours). Each event names its delivery, or for Postmark its
/// subscriber; the readers end bounced, confirmed, complained, bounced, bounced and confirmed;
/// `deliveries --issue` shows the rates the operator watches.
async fn a_digest_sent_over_smtp_then_each_providers_reports_end_in_the_right_status(
    backend: Backend,
) {
    use super::webhooks::{SECRET, post_signed};
    use super::webhooks_providers::{
        MAILGUN_KEY, configured, mailgun_body, mailgun_event, now, post_mailgun, post_postmark,
        post_sendgrid, postmark_bounce, postmark_credentials, sendgrid_event,
    };
    use crate::operator::{Op, Options, at, issue_in};
    let Some(db) = TestDb::on(backend).await else {
        return;
    };
    let label = db.label;
    let op = Op::start(&db.url, Options::default()).await;
    let readers = [
        "gone@example.org",
        "full@example.org",
        "angry@example.net",
        "generic@example.org",
        "postmark@example.org",
        "away@example.org",
    ];
    for email in readers {
        op.subscribe(email).await;
    }
    let when = at().to_rfc3339();
    op.ok(&["fetch", "--at", &when]).await;
    let sent = op.ok(&["send", "--topic", "rust", "--at", &when]).await;
    let issue = issue_in(&sent);
    let received = op.smtp.received();
    assert_eq!(received.len(), readers.len(), "{label}: {sent}");
    let id_for = |email: &str| {
        let m = received
            .iter()
            .find(|m| m.to.iter().any(|t| t == email))
            .unwrap_or_else(|| panic!("{label}: nothing sent to {email}"));
        message_id(&m.raw)
    };

    // The webhooks on the same database, every provider configured.
    let sendgrid = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    )
    .unwrap();
    let extra = format!(
        "{}ses_topic_arns = [\"{TOPIC}\"]\nwebhook_secret = \"{SECRET}\"\n",
        configured(&sendgrid)
    );
    let store = tidings::store::Store::open(&db.url, 5).await.unwrap();
    let app = TestApp::new(label, store, super::settings(&extra));
    let signer = Signer::new();
    let sns = FakeSns::start(signer.cert_pem.clone()).await;
    let mut state = app.state.clone();
    state.sns = SnsCertFetcher::loopback_for_tests(sns.port, &[SNS_HOST], &sns.ca_der).unwrap();
    let (addr, _stop) = serve(state).await;

    let mut ses: serde_json::Value = serde_json::from_str(&ses_bounce(
        "forwarded@elsewhere.example",
        "Permanent",
        "General",
    ))
    .unwrap();
    ses["mail"]["commonHeaders"]["messageId"] = format!("<{}>", id_for("gone@example.org")).into();
    let ses = Sns::notification("sns-loop-1", &ses.to_string());
    assert_eq!(post(addr, &ses.body(&signer, "1")).await, 200, "{label}");

    let mut failed = mailgun_event(
        "mg-loop-1",
        "failed",
        Some("temporary"),
        "alias@elsewhere.example",
    );
    failed["message"]["headers"]["message-id"] = id_for("full@example.org").into();
    let failed = mailgun_body(MAILGUN_KEY, now(), "t-loop-1", failed);
    assert_eq!(post_mailgun(addr, &failed).await, 200, "{label}");

    let mut spam = sendgrid_event("sg-loop-1", "spamreport", None, "someone@elsewhere.example");
    spam["smtp-id"] = format!("<{}>", id_for("angry@example.net")).into();
    let batch = serde_json::json!([spam]).to_string();
    assert_eq!(
        post_sendgrid(addr, &batch, Some(&sendgrid)).await,
        200,
        "{label}"
    );

    let generic = serde_json::json!({
        "event_id": "generic-loop-1", "type": "bounce", "email": "old@elsewhere.example",
        "hard": true, "status": "5.1.1", "reason": "user unknown",
        "message_id": format!("<{}>", id_for("generic@example.org")),
    })
    .to_string();
    assert_eq!(post_signed(addr, &generic).await, 200, "{label}");

    let credentials = postmark_credentials();
    for (id, kind, email) in [
        (9001, "HardBounce", "postmark@example.org"),
        (9002, "AutoResponder", "away@example.org"),
    ] {
        let body = postmark_bounce(id, kind, email);
        assert_eq!(
            post_postmark(addr, &body, Some(&credentials)).await,
            200,
            "{label}"
        );
    }

    // What the operator sees.
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&op.ok(&["subscribers", "list", "--json"]).await).unwrap();
    let status_of = |email: &str| {
        list.iter()
            .find(|r| r["email"] == email)
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{label}: {email} not listed: {list:?}"))
    };
    assert_eq!(status_of("gone@example.org"), "bounced", "{label}");
    assert_eq!(status_of("full@example.org"), "confirmed", "{label}");
    assert_eq!(status_of("angry@example.net"), "complained", "{label}");
    assert_eq!(status_of("generic@example.org"), "bounced", "{label}");
    assert_eq!(status_of("postmark@example.org"), "bounced", "{label}");
    assert_eq!(status_of("away@example.org"), "confirmed", "{label}");
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&op.ok(&["bounces", "list", "--json"]).await).unwrap();
    let matched: Vec<(&str, &str, bool)> = events
        .iter()
        .map(|e| {
            (
                e["subscriber_email"].as_str().unwrap_or_default(),
                e["effect"].as_str().unwrap_or_default(),
                e["delivery_id"].is_i64(),
            )
        })
        .collect();
    assert_eq!(
        matched,
        vec![
            ("gone@example.org", "hard", true),
            ("full@example.org", "soft", true),
            ("angry@example.net", "complaint", true),
            ("generic@example.org", "hard", true),
            ("postmark@example.org", "hard", false),
            ("away@example.org", "none", false),
        ],
        "{label}: {events:?}"
    );
    let deliveries = op.ok(&["deliveries", "--issue", &issue.to_string()]).await;
    // The rates count deliveries a report was matched to; Postmark's name only the address.
    assert!(
        deliveries.contains(&format!(
            "issue {issue}: 6 sent; bounces 3 (50.00%), complaints 1 (16.67%)"
        )),
        "{label}: {deliveries}"
    );
    assert!(
        deliveries.contains("warning: complaint rate"),
        "{label}: {deliveries}"
    );
}
