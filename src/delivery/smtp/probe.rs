//! `tidings doctor`'s look at the relay: a session opened exactly as delivery opens one (the
//! parent module's socket, timeouts, TLS parameters and credentials), each step reported, and
//! closed with QUIT before any MAIL command: nothing is sent.

use lettre::transport::smtp::authentication::DEFAULT_MECHANISMS;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};

use super::{
    QUIT_WAIT, SmtpClient, TimedStream, error_text, implicit_tls, no_reply_within, open_socket,
};
use crate::config::{SmtpSettings, TlsMode};

/// How one step of [`probe`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Ok(String),
    /// The step worked but is weak (a session without TLS to a relay off this machine).
    Warning(String),
    /// The step failed; the text carries the server's reply or the local error as it came.
    Failed(String),
}

/// One step of [`probe`]: "connect", "TLS", "EHLO", "STARTTLS" or "AUTH".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStep {
    pub step: &'static str,
    pub outcome: ProbeOutcome,
}

/// For `tidings doctor`: opens a session with the relay exactly as delivery does (the same
/// socket, timeouts, TLS parameters and credentials: connect, implicit TLS or greeting and
/// EHLO, STARTTLS with the certificate checked, AUTH), then says QUIT. Nothing is sent: no
/// MAIL command is given. Stops at the first step that fails.
pub async fn probe(smtp: &SmtpSettings) -> Vec<ProbeStep> {
    let mut steps = Vec::new();
    let mut push = |step: &'static str, outcome: ProbeOutcome| {
        let failed = matches!(outcome, ProbeOutcome::Failed(_));
        steps.push(ProbeStep { step, outcome });
        !failed
    };
    let client = match SmtpClient::from_settings(smtp) {
        Ok(c) => c,
        Err(e) => {
            push("connect", ProbeOutcome::Failed(format!("{e:#}")));
            return steps;
        }
    };
    let server = client.server();
    let tcp =
        match tokio::time::timeout(client.timeout, open_socket(&client.host, client.port)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                push(
                    "connect",
                    ProbeOutcome::Failed(format!("cannot connect to {server}: {e}")),
                );
                return steps;
            }
            Err(_) => {
                let why = no_reply_within(client.timeout);
                push(
                    "connect",
                    ProbeOutcome::Failed(format!("cannot connect to {server}: {why}")),
                );
                return steps;
            }
        };
    let on_loopback = tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    push(
        "connect",
        ProbeOutcome::Ok(format!("connected to {server}")),
    );
    let tcp = TimedStream::new(tcp, client.timeout);
    let stream: Box<dyn AsyncTokioStream> = match &client.tls {
        Some((TlsMode::Tls, params)) => match implicit_tls(tcp, params.clone()).await {
            Ok(s) => {
                let note = format!("implicit TLS; the certificate for {} is valid", client.host);
                push("TLS", ProbeOutcome::Ok(note));
                Box::new(s)
            }
            Err(e) => {
                push("TLS", ProbeOutcome::Failed(error_text(&e)));
                return steps;
            }
        },
        _ => Box::new(tcp),
    };
    let mut conn = match AsyncSmtpConnection::connect_with_transport(stream, &client.hello).await {
        Ok(conn) => conn,
        Err(e) => {
            push(
                "EHLO",
                ProbeOutcome::Failed(format!("greeting or EHLO: {}", error_text(&e))),
            );
            return steps;
        }
    };
    let name = conn.server_info().name().to_string();
    push(
        "EHLO",
        ProbeOutcome::Ok(format!("the server calls itself {name}")),
    );
    let proceed = match &client.tls {
        Some((TlsMode::Starttls, params)) => {
            match conn.starttls(params.clone(), &client.hello).await {
                Ok(()) => push(
                    "STARTTLS",
                    ProbeOutcome::Ok(format!("the certificate for {} is valid", client.host)),
                ),
                Err(e) => {
                    // A failed TLS upgrade leaves lettre's connection without a stream: no QUIT
                    // (lettre panics on a write to it); dropping it closes the socket.
                    push("STARTTLS", ProbeOutcome::Failed(error_text(&e)));
                    return steps;
                }
            }
        }
        Some(_) => true,
        None if on_loopback => push(
            "TLS",
            ProbeOutcome::Ok("smtp.tls = \"none\" on a relay on this machine".into()),
        ),
        None => push(
            "TLS",
            ProbeOutcome::Warning(
                "smtp.tls = \"none\": mail and any password cross the network unencrypted".into(),
            ),
        ),
    };
    if proceed {
        match &client.credentials {
            Some(credentials) => {
                let outcome = match conn.auth(DEFAULT_MECHANISMS, credentials).await {
                    Ok(_) => ProbeOutcome::Ok(format!("logged in as {}", smtp.username)),
                    Err(e) => ProbeOutcome::Failed(error_text(&e)),
                };
                push("AUTH", outcome);
            }
            None => {
                push(
                    "AUTH",
                    ProbeOutcome::Ok("no smtp.username: the relay is used without a login".into()),
                );
            }
        }
    }
    let wait = client.timeout.min(QUIT_WAIT);
    let _ = tokio::time::timeout(wait, conn.quit()).await;
    steps
}
