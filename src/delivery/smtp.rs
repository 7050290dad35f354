//! SMTP sessions: each worker task keeps one connection open and sends its messages over it in
//! turn. We open the TCP socket ourselves so that it has TCP_NODELAY: lettre writes the message
//! and the final "\r\n.\r\n" separately, and with Nagle's algorithm on (lettre's own pool) that
//! small last write waits for the server's delayed ACK, about 40 ms per message. lettre still
//! speaks the protocol (EHLO, STARTTLS, AUTH, dot-stuffing, replies); this module times every
//! step on its own and sorts each failure by the stage it happened in. Each step of setting up a
//! session (connect, greeting, EHLO, TLS handshake, STARTTLS, AUTH) gets the whole
//! `smtp.timeout_secs`: the socket is a [`TimedStream`], which fails a read or write that waits
//! longer than that with no byte moving, so a relay that answers each step slowly but in time
//! gets a session (one timeout around the whole set-up used to cut it off). Each command of a
//! transaction is also timed on its own.
//! - no session (refused, unreachable, greeting/EHLO/STARTTLS/AUTH rejected): deferred, no reply;
//! - a negative reply to RCPT, DATA or the final ".": that reply decides (4xx deferred, 5xx
//!   failed), and the connection is reset and kept unless the server said 421;
//! - a negative reply to MAIL names only our sender, never the reader: deferred, and counted
//!   with the session failures that stop a `send` when nothing gets through;
//! - 421 on a reused connection before the message was sent: a server that timed out an idle
//!   client; the message is sent once more over a new connection;
//! - the connection lost before the message was sent: the message was not taken, so a reused
//!   connection (perhaps closed by the server while idle) is replaced and the message sent once
//!   more; on a fresh connection it is deferred;
//! - the connection lost or timed out after the message was sent: the outcome is unknown (the
//!   message may have arrived); it is sent again at most `delivery.unknown_retries` times.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

use super::outcome::{DeliveryOutcome, SendResult, classify_error, error_text};
use crate::config::{SmtpSettings, TlsMode};

mod probe;
pub use probe::{ProbeOutcome, ProbeStep, probe};

/// A connection unused for this long is closed rather than reused: many servers drop idle
/// clients after a minute or less.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// How long QUIT may take before the connection is simply dropped.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// How to reach the relay; shared by all worker tasks. The password stays inside lettre's
/// `Credentials` and is never printed.
pub struct SmtpClient {
    host: String,
    port: u16,
    tls: Option<(TlsMode, TlsParameters)>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.as_ref().map(|(mode, _)| mode))
            .field("auth", &self.credentials.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpClient {
    /// Reads `[smtp]`; fails when the host is empty or TLS cannot be set up.
    pub fn from_settings(smtp: &SmtpSettings) -> anyhow::Result<SmtpClient> {
        let host = smtp.host.trim();
        anyhow::ensure!(
            !host.is_empty(),
            "smtp.host is empty but delivery.transport is \"smtp\""
        );
        let tls = match smtp.tls {
            TlsMode::None => None,
            mode => Some((mode, tls_parameters(host, smtp.ca_file.trim())?)),
        };
        let credentials = (!smtp.username.is_empty())
            .then(|| Credentials::new(smtp.username.clone(), smtp.password.expose().to_string()));
        let hello = match smtp.helo_name.trim() {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        };
        Ok(SmtpClient {
            host: host.to_string(),
            port: smtp.port,
            tls,
            credentials,
            hello,
            timeout: Duration::try_from_secs_f64(smtp.timeout_secs)
                .unwrap_or(Duration::from_secs(30)),
        })
    }

    /// A sender with no connection yet; it connects on its first message.
    pub fn sender(&self) -> SmtpSender<'_> {
        SmtpSender {
            client: self,
            session: None,
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a session: TCP (with TCP_NODELAY), implicit TLS or STARTTLS, EHLO, AUTH, each step
    /// under its own timeout (connect here, the others through [`TimedStream`]). The error
    /// says which step failed.
    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let tcp = tokio::time::timeout(self.timeout, open_socket(&self.host, self.port))
            .await
            .map_err(|_| format!("connect: {}", no_reply_within(self.timeout)))?
            .map_err(|e| format!("connect: {e}"))?;
        let tcp = TimedStream::new(tcp, self.timeout);
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Some((TlsMode::Tls, params)) => Box::new(
                implicit_tls(tcp, params.clone())
                    .await
                    .map_err(|e| format!("TLS: {}", error_text(&e)))?,
            ),
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| format!("greeting: {}", error_text(&e)))?;
        if let Some((TlsMode::Starttls, params)) = &self.tls {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| format!("STARTTLS: {}", error_text(&e)))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| format!("login: {}", error_text(&e)))?;
        }
        Ok(conn)
    }
}

/// "no reply within 2 s", "no reply within 0.5 s".
fn no_reply_within(timeout: Duration) -> String {
    format!("no reply within {} s", timeout.as_secs_f64())
}

/// The relay's socket with a timeout on every wait: a read or write that cannot go on arms a
/// timer of `timeout`, and any byte moving disarms it. Each step of a session (a command and
/// its reply, the TLS handshake) therefore gets the whole timeout, however many steps there
/// are, and a relay that stops answering fails the step it stopped in.
#[derive(Debug)]
struct TimedStream {
    inner: TcpStream,
    timeout: Duration,
    /// Armed while a read or write waits; `None` while bytes move.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimedStream {
    fn new(inner: TcpStream, timeout: Duration) -> TimedStream {
        TimedStream {
            inner,
            timeout,
            deadline: None,
        }
    }

    /// Called when the inner stream returned `Pending`: arms the timer if needed and fails once
    /// it has run out.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.deadline = None;
                Poll::Ready(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    no_reply_within(timeout),
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Wraps a poll of the inner stream: progress disarms the timer, a wait is timed.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.waiting(cx).map(Err),
        }
    }
}

impl tokio::io::AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().timed(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().timed(cx, |s, cx| s.poll_shutdown(cx))
    }
}

impl AsyncTokioStream for TimedStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

/// lettre's TLS settings for `host`: the system's roots, plus those of `ca_file` if set.
fn tls_parameters(host: &str, ca_file: &str) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(host.to_string());
    if !ca_file.is_empty() {
        let pem = std::fs::read(ca_file)
            .map_err(|e| anyhow::anyhow!("smtp.ca_file: cannot read {ca_file}: {e}"))?;
        let no_cert = || anyhow::anyhow!("smtp.ca_file: {ca_file} holds no PEM certificate");
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(no_cert());
        }
        let cert = Certificate::from_pem(&pem).map_err(|_| no_cert())?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("smtp.tls: cannot set up TLS for {host}: {e}"))
}

/// Connects to `host:port`, trying each resolved address in turn, and turns Nagle off.
pub async fn open_socket(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// TLS from the first byte (port 465), through lettre's TLS set-up, then adapted back to the
/// tokio stream that `connect_with_transport` takes.
#[allow(deprecated)]
async fn implicit_tls(tcp: TimedStream, params: TlsParameters) -> Result<TlsStream, SmtpError> {
    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
    stream.upgrade_tls(params).await?;
    Ok(TlsStream(
        tokio_util::compat::FuturesAsyncReadCompatExt::compat(stream),
    ))
}

/// lettre's TLS stream (futures-io) seen as a tokio stream.
#[allow(deprecated)]
#[derive(Debug)]
struct TlsStream(tokio_util::compat::Compat<AsyncNetworkStream>);

impl tokio::io::AsyncRead for TlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().peer_addr()
    }
}

/// One open connection and when it was last used.
struct Session {
    conn: AsyncSmtpConnection,
    last_used: Instant,
}

/// One worker task's connection: opened on first use, reused for the next messages, replaced
/// after a failure or a long idle spell.
pub struct SmtpSender<'a> {
    client: &'a SmtpClient,
    session: Option<Session>,
}

/// The step of a transaction a reply or failure belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Mail,
    Rcpt,
    Data,
    /// The reply to the final "." (the message data has been sent).
    Dot,
}

/// Why a transaction did not end with a positive reply.
enum TxError {
    /// The server answered with a negative reply; the connection still works unless it was 421.
    Reply { error: SmtpError, stage: Stage },
    /// Refused on our side before anything was sent (the server lacks a needed extension).
    Refused(String),
    /// No reply: the connection failed or timed out. `sent` tells whether the message data had
    /// been written (then the outcome is unknown).
    Lost { error: String, sent: bool },
}

impl SmtpSender<'_> {
    /// Sends one message over this task's connection and classifies what happened.
    pub async fn send(&mut self, envelope: &Envelope, raw: &[u8]) -> SendResult {
        let mut retried = false;
        loop {
            self.close_if_idle().await;
            let reused = self.session.is_some();
            let mut session = match self.session.take() {
                Some(s) => s,
                None => match self.client.connect().await {
                    Ok(conn) => Session {
                        conn,
                        last_used: Instant::now(),
                    },
                    Err(e) => return self.no_session(&e),
                },
            };
            let result = self.transaction(&mut session.conn, envelope, raw).await;
            session.last_used = Instant::now();
            match result {
                Ok(response) => {
                    self.session = Some(session);
                    let text: Vec<&str> = response.message().collect();
                    return SendResult::sent(format!("{} {}", response.code(), text.join(" ")));
                }
                Err(TxError::Reply { error, stage }) => {
                    let closing = error.status().is_some_and(|c| c.to_string() == "421");
                    if closing && stage != Stage::Dot && reused && !retried {
                        // A server that timed out an idle client answers the next command
                        // with 421 and hangs up; nothing was taken, so try a new connection.
                        tracing::debug!(reply = %error, "reused SMTP connection closed by the server; reconnecting");
                        retried = true;
                        continue;
                    }
                    if !closing && self.reset(&mut session.conn).await {
                        self.session = Some(session);
                    }
                    if stage == Stage::Mail {
                        // MAIL FROM names only us: a refusal says nothing about the reader.
                        return SendResult {
                            outcome: DeliveryOutcome::Deferred {
                                reply: format!(
                                    "the relay refused the sender: {}",
                                    error_text(&error)
                                ),
                            },
                            no_reply: true,
                        };
                    }
                    return classify_error(&error);
                }
                Err(TxError::Refused(reply)) => {
                    self.session = Some(session);
                    return SendResult {
                        outcome: DeliveryOutcome::Failed {
                            reply,
                            bounce: false,
                        },
                        no_reply: false,
                    };
                }
                Err(TxError::Lost { error, sent }) => {
                    // Dropping the session closes the socket; no QUIT on a broken connection.
                    drop(session);
                    if !sent && reused && !retried {
                        tracing::debug!(error = %error, "reused SMTP connection lost; reconnecting");
                        retried = true;
                        continue;
                    }
                    let outcome = if sent {
                        DeliveryOutcome::Unknown {
                            reply: format!(
                                "unknown outcome: no reply after the message was sent: {error}"
                            ),
                        }
                    } else {
                        DeliveryOutcome::Deferred {
                            reply: format!("connection lost before the message was sent: {error}"),
                        }
                    };
                    return SendResult {
                        outcome,
                        no_reply: true,
                    };
                }
            }
        }
    }

    /// Says QUIT and closes the connection, if one is open. An idle connection may be dead
    /// already, so the goodbye waits at most `QUIT_WAIT`.
    pub async fn close(&mut self) {
        if let Some(mut session) = self.session.take() {
            let wait = self.client.timeout.min(QUIT_WAIT);
            let _ = tokio::time::timeout(wait, session.conn.quit()).await;
        }
    }

    /// Closes the connection when it has been idle too long (called while the worker waits).
    pub async fn close_if_idle(&mut self) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.last_used.elapsed() > IDLE_LIMIT)
        {
            self.close().await;
        }
    }

    fn no_session(&self, error: &str) -> SendResult {
        SendResult {
            outcome: DeliveryOutcome::Deferred {
                reply: format!(
                    "cannot open an SMTP session with {}: {error}",
                    self.client.server()
                ),
            },
            no_reply: true,
        }
    }

    /// Runs `fut` under the per-command timeout; the error names the timeout.
    async fn timed<T>(&self, fut: impl Future<Output = T>) -> Result<T, String> {
        tokio::time::timeout(self.client.timeout, fut)
            .await
            .map_err(|_| no_reply_within(self.client.timeout))
    }

    /// MAIL, RCPT, DATA and the message, each step under the timeout.
    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<Response, TxError> {
        let mut params = Vec::new();
        let non_ascii_address = envelope
            .from()
            .is_some_and(|a| !AsRef::<str>::as_ref(a).is_ascii())
            || envelope
                .to()
                .iter()
                .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        let ascii_envelope;
        let envelope = if !non_ascii_address {
            envelope
        } else if conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            params.push(MailParameter::SmtpUtfEight);
            envelope
        } else {
            // Without SMTPUTF8 an internationalised domain still travels as its A-label.
            ascii_envelope = ascii_only(envelope).ok_or_else(|| {
                TxError::Refused(
                    "the address is not ASCII and the server does not offer SMTPUTF8".into(),
                )
            })?;
            &ascii_envelope
        };
        if !raw.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(TxError::Refused(
                    "the message is not ASCII and the server does not offer 8BITMIME".into(),
                ));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let step = |r: Result<Result<Response, SmtpError>, String>, stage: Stage| {
            let sent = stage == Stage::Dot;
            match r {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) if error.is_transient() || error.is_permanent() => {
                    Err(TxError::Reply { error, stage })
                }
                Ok(Err(e)) => Err(TxError::Lost {
                    error: error_text(&e),
                    sent,
                }),
                Err(timeout) => Err(TxError::Lost {
                    error: timeout,
                    sent,
                }),
            }
        };
        let mail = Mail::new(envelope.from().cloned(), params);
        step(self.timed(conn.command(mail)).await, Stage::Mail)?;
        for to in envelope.to() {
            let rcpt = Rcpt::new(to.clone(), vec![]);
            step(self.timed(conn.command(rcpt)).await, Stage::Rcpt)?;
        }
        step(self.timed(conn.command(Data)).await, Stage::Data)?;
        step(self.timed(conn.message(raw)).await, Stage::Dot)
    }

    /// RSET after a refused transaction, so the connection can carry the next message.
    async fn reset(&self, conn: &mut AsyncSmtpConnection) -> bool {
        matches!(self.timed(conn.command(Rset)).await, Ok(Ok(_)))
    }
}

/// The envelope with every domain as its IDNA A-label; None when a local part is not ASCII.
fn ascii_only(envelope: &Envelope) -> Option<Envelope> {
    let ascii = |a: &Address| -> Option<Address> {
        crate::domain::ascii_envelope_address(a.as_ref())?
            .parse()
            .ok()
    };
    let from = match envelope.from() {
        Some(a) => Some(ascii(a)?),
        None => None,
    };
    let to = envelope
        .to()
        .iter()
        .map(ascii)
        .collect::<Option<Vec<_>>>()?;
    Envelope::new(from, to).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_are_opened_with_nagle_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let socket = open_socket("127.0.0.1", port).await.unwrap();
        assert!(socket.nodelay().unwrap());
    }

    #[test]
    fn debug_output_shows_no_password() {
        let smtp = SmtpSettings {
            host: "relay.example.com".into(),
            tls: TlsMode::None,
            username: "news".into(),
            password: crate::config::Secret::new("hunter2-secret"),
            ..SmtpSettings::default()
        };
        let client = SmtpClient::from_settings(&smtp).unwrap();
        let shown = format!("{client:?}");
        assert!(shown.contains("relay.example.com"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
