//! An internationalised domain through a relay that does not offer SMTPUTF8: a minimal SMTP
//! server on loopback (EHLO answers only 8BITMIME) records the envelope it is given.

use std::sync::{Arc, Mutex};

use lettre::Address;
use lettre::address::Envelope;
use tidings::config::{Settings, SmtpSettings, TlsMode};
use tidings::delivery::{DeliveryOutcome, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Serves one SMTP session without SMTPUTF8; returns the port and the commands it received.
async fn relay_without_smtputf8() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 relay ready\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                }
                continue;
            }
            log.lock().unwrap().push(line.clone());
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-relay\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 2.1.0 ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
    });
    (port, seen)
}

#[tokio::test]
async fn an_internationalised_domain_goes_as_its_a_label_to_a_relay_without_smtputf8() {
    let (port, seen) = relay_without_smtputf8().await;
    let settings = Settings {
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            timeout_secs: 10.0,
            ..SmtpSettings::default()
        },
        ..Settings::default()
    };
    let Transport::Smtp(client) = Transport::from_settings(&settings).unwrap() else {
        panic!("an [smtp] host gives the SMTP transport");
    };
    let to: Address = "user@b\u{fc}cher.de".parse().unwrap();
    let from: Address = "news@example.com".parse().unwrap();
    let envelope = Envelope::new(Some(from), vec![to]).unwrap();
    let mut sender = client.sender();
    let result = sender
        .send(&envelope, b"Subject: hello\r\n\r\nhello\r\n")
        .await;
    sender.close().await;
    assert!(
        matches!(result.outcome, DeliveryOutcome::Sent { .. }),
        "{result:?}"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|l| l.eq_ignore_ascii_case("RCPT TO:<user@xn--bcher-kva.de>")),
        "{seen:?}"
    );
}
