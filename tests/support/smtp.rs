//! An in-process SMTP server on 127.0.0.1 port 0, written with tokio: EHLO/HELO, MAIL, RCPT,
//! DATA (with dot-unstuffing), RSET, NOOP, QUIT, and on request STARTTLS or implicit TLS (a
//! throwaway CA and certificate made with rcgen) and AUTH PLAIN. It records every accepted
//! message (envelope and raw bytes) and every connection, and follows a script of faults: a
//! negative reply at MAIL, RCPT, DATA or the final "." for the Nth message, 550 5.1.1 for given
//! recipients, hanging up after the final "." without a reply for the Nth message, hanging up
//! after a number of messages on one connection, a delay before each reply to the final ".", and
//! a delay before the greeting and each reply while a session is set up (EHLO, STARTTLS, AUTH).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// The SMTP stage a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
    /// The reply to the final "." (the message is then not recorded as received).
    Dot,
}

/// What the server does wrong, and when. Message numbers count every MAIL FROM, from 1.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// (message number, stage, reply line) such as (3, Stage::Rcpt, "450 4.2.0 try later").
    pub replies: Vec<(u64, Stage, String)>,
    /// Recipients answered "550 5.1.1 no such user" at RCPT.
    pub bad_mailboxes: HashSet<String>,
    /// Message numbers after whose final "." the connection is closed without a reply.
    pub drop_after_data: HashSet<u64>,
    /// A pause before answering each final ".".
    pub delay: Option<Duration>,
    /// A pause before the greeting and before each reply to EHLO, HELO, STARTTLS and AUTH (a
    /// relay slow to set up a session).
    pub step_delay: Option<Duration>,
    /// After this many accepted messages on one connection the server hangs up without a word
    /// (as a server does with a client it has timed out).
    pub close_after: Option<u64>,
    /// Require AUTH PLAIN with this user name and password before MAIL.
    pub auth: Option<(String, String)>,
    /// Speak TLS: offer STARTTLS (and require it before MAIL), or TLS from the first byte.
    pub tls: Option<ServerTls>,
}

/// How the server offers TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTls {
    Starttls,
    Implicit,
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Received {
    /// The name the client gave in EHLO/HELO (tells several sending instances apart).
    pub helo: String,
    /// The message came over TLS.
    pub tls: bool,
    pub from: String,
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Messages whose data arrived but got no reply (dropped after ".").
    dropped: Vec<Received>,
    transactions: u64,
    connections: u64,
}

/// A handle on a running server.
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    /// With `Faults::tls`: the PEM of the CA that signed the server's certificate.
    pub ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

/// Anything the server can speak over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How a session ended.
enum End {
    Closed,
    /// The client asked for STARTTLS: the plain stream, to be wrapped in TLS.
    StartTls(Box<dyn Io>),
}

/// A throwaway CA and a certificate for 127.0.0.1 and localhost signed by it: (CA PEM, acceptor).
fn tls_acceptor() -> (String, TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tidings test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
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
    (ca_cert.pem(), TlsAcceptor::from(Arc::new(config)))
}

impl SmtpServer {
    /// Starts a server following `faults`; it runs until the test's runtime ends.
    pub async fn start(faults: Faults) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMTP server");
        let port = listener.local_addr().expect("local addr").port();
        let (ca_pem, acceptor) = match faults.tls {
            Some(_) => {
                let (pem, acceptor) = tls_acceptor();
                (Some(pem), Some(acceptor))
            }
            None => (None, None),
        };
        let server = SmtpServer {
            port,
            ca_pem,
            state: Arc::default(),
            notify: Arc::new(Notify::new()),
        };
        let faults = Arc::new(faults);
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.state.lock().unwrap().connections += 1;
                let s = s.clone();
                let faults = faults.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = s.connection(stream, &faults, acceptor).await;
                });
            }
        });
        server
    }

    /// How many TCP connections clients have opened so far.
    pub fn connections(&self) -> u64 {
        self.state.lock().unwrap().connections
    }

    /// Every accepted message so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Messages whose connection was dropped after the final ".".
    pub fn dropped(&self) -> Vec<Received> {
        self.state.lock().unwrap().dropped.clone()
    }

    /// Waits until at least `n` messages were accepted; panics after `deadline`.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let end = Instant::now() + deadline;
        loop {
            let notified = self.notify.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "SMTP server got {} of {n} messages before the deadline",
                got.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// One client connection: TLS first if implicit, then sessions (a new one after STARTTLS).
    async fn connection(
        &self,
        tcp: TcpStream,
        faults: &Faults,
        acceptor: Option<TlsAcceptor>,
    ) -> std::io::Result<()> {
        let mut stream: Box<dyn Io> = match (&acceptor, faults.tls) {
            (Some(a), Some(ServerTls::Implicit)) => Box::new(a.accept(tcp).await?),
            _ => Box::new(tcp),
        };
        let mut secure = faults.tls == Some(ServerTls::Implicit);
        loop {
            match self.session(stream, faults, secure).await? {
                End::Closed => return Ok(()),
                End::StartTls(plain) => {
                    let Some(a) = &acceptor else { return Ok(()) };
                    stream = Box::new(a.accept(plain).await?);
                    secure = true;
                }
            }
        }
    }

    /// Serves commands until QUIT, a hang-up, or STARTTLS. After STARTTLS there is no greeting.
    async fn session(
        &self,
        stream: Box<dyn Io>,
        faults: &Faults,
        secure: bool,
    ) -> std::io::Result<End> {
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let upgraded = secure && faults.tls == Some(ServerTls::Starttls);
        if !upgraded {
            if let Some(d) = faults.step_delay {
                tokio::time::sleep(d).await;
            }
            write
                .write_all(b"220 localhost test SMTP ready\r\n")
                .await?;
            write.flush().await?;
        }
        let mut helo = String::new();
        let mut from = String::new();
        let mut to: Vec<String> = Vec::new();
        let mut number = 0u64;
        let mut accepted_here = 0u64;
        let mut authenticated = faults.auth.is_none();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(End::Closed);
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            let fault = |stage: Stage, n: u64| {
                faults
                    .replies
                    .iter()
                    .find(|(m, s, _)| *m == n && *s == stage)
                    .map(|(_, _, r)| format!("{r}\r\n"))
            };
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                helo = cmd.get(5..).unwrap_or("").trim().to_string();
            }
            let tls_missing = faults.tls.is_some() && !secure;
            let setting_up = ["EHLO", "HELO", "STARTTLS", "AUTH"]
                .iter()
                .any(|c| upper.starts_with(c));
            if let (true, Some(d)) = (setting_up, faults.step_delay) {
                tokio::time::sleep(d).await;
            }
            let reply: String = if upper.starts_with("EHLO") {
                let mut lines = vec!["localhost", "PIPELINING", "8BITMIME"];
                if tls_missing {
                    lines.push("STARTTLS");
                } else if faults.auth.is_some() {
                    lines.push("AUTH PLAIN");
                }
                lines.push("SMTPUTF8");
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                    .collect()
            } else if upper.starts_with("HELO") {
                "250 localhost\r\n".into()
            } else if upper == "STARTTLS" && tls_missing {
                write.write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
                write.flush().await?;
                return Ok(End::StartTls(reader.into_inner().unsplit(write)));
            } else if upper.starts_with("AUTH PLAIN ") && faults.auth.is_some() && !tls_missing {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(cmd[11..].trim())
                    .unwrap_or_default();
                let (user, pass) = faults.auth.clone().unwrap_or_default();
                if decoded == format!("\0{user}\0{pass}").into_bytes() {
                    authenticated = true;
                    "235 2.7.0 authentication successful\r\n".into()
                } else {
                    "535 5.7.8 authentication credentials invalid\r\n".into()
                }
            } else if upper.starts_with("MAIL FROM:") && tls_missing {
                "530 5.7.0 must issue a STARTTLS command first\r\n".into()
            } else if upper.starts_with("MAIL FROM:") && !authenticated {
                "530 5.7.0 authentication required\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                number = {
                    let mut st = self.state.lock().unwrap();
                    st.transactions += 1;
                    st.transactions
                };
                from = address(&cmd[10..]);
                to.clear();
                fault(Stage::Mail, number).unwrap_or_else(|| "250 2.1.0 ok\r\n".into())
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = address(&cmd[8..]);
                if faults.bad_mailboxes.contains(&rcpt) {
                    "550 5.1.1 no such user here\r\n".into()
                } else if let Some(r) = fault(Stage::Rcpt, number) {
                    r
                } else {
                    to.push(rcpt);
                    "250 2.1.5 ok\r\n".into()
                }
            } else if upper == "DATA" {
                if let Some(r) = fault(Stage::Data, number) {
                    r
                } else if to.is_empty() {
                    "554 5.5.1 no valid recipients\r\n".into()
                } else {
                    write
                        .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    write.flush().await?;
                    let raw = read_data(&mut reader).await?;
                    let msg = Received {
                        helo: helo.clone(),
                        tls: secure,
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        raw,
                    };
                    if let Some(d) = faults.delay {
                        tokio::time::sleep(d).await;
                    }
                    if faults.drop_after_data.contains(&number) {
                        self.state.lock().unwrap().dropped.push(msg);
                        return Ok(End::Closed);
                    }
                    if let Some(r) = fault(Stage::Dot, number) {
                        write.write_all(r.as_bytes()).await?;
                        write.flush().await?;
                        continue;
                    }
                    self.state.lock().unwrap().received.push(msg);
                    self.notify.notify_waiters();
                    accepted_here += 1;
                    if faults.close_after == Some(accepted_here) {
                        write.write_all(b"250 2.0.0 queued\r\n").await?;
                        write.flush().await?;
                        return Ok(End::Closed);
                    }
                    "250 2.0.0 queued\r\n".into()
                }
            } else if upper == "RSET" {
                to.clear();
                "250 2.0.0 ok\r\n".into()
            } else if upper == "NOOP" {
                "250 2.0.0 ok\r\n".into()
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                write.flush().await?;
                return Ok(End::Closed);
            } else {
                "502 5.5.2 command not implemented\r\n".into()
            };
            write.write_all(reply.as_bytes()).await?;
            write.flush().await?;
        }
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or(arg);
    inner.trim().to_string()
}

/// Reads DATA lines up to the lone ".", undoing dot-stuffing; keeps CRLF line ends.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(raw);
        }
        let body = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        raw.extend_from_slice(body);
    }
}
