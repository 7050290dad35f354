//! An in-process SMTP server on 127.0.0.1 port 0, written with tokio: EHLO/HELO, MAIL, RCPT,
//! DATA (with dot-unstuffing), RSET, NOOP, QUIT. It records every accepted message (envelope
//! and raw bytes) and follows a script of faults: a 421/450 reply at MAIL, RCPT or DATA for the
//! Nth message, 550 5.1.1 for given recipients, hanging up after the final "." without a reply
//! for the Nth message, and a delay before each reply to the final ".".

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The SMTP stage a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
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
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Received {
    /// The name the client gave in EHLO/HELO (tells several sending instances apart).
    pub helo: String,
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
}

/// A handle on a running server.
#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl SmtpServer {
    /// Starts a server following `faults`; it runs until the test's runtime ends.
    pub async fn start(faults: Faults) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMTP server");
        let port = listener.local_addr().expect("local addr").port();
        let server = SmtpServer {
            port,
            state: Arc::default(),
            notify: Arc::new(Notify::new()),
        };
        let faults = Arc::new(faults);
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                let faults = faults.clone();
                tokio::spawn(async move {
                    let _ = s.session(stream, &faults).await;
                });
            }
        });
        server
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

    async fn session(&self, stream: TcpStream, faults: &Faults) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write
            .write_all(b"220 localhost test SMTP ready\r\n")
            .await?;
        let mut helo = String::new();
        let mut from = String::new();
        let mut to: Vec<String> = Vec::new();
        let mut number = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
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
            let reply: String = if upper.starts_with("EHLO") {
                "250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
            } else if upper.starts_with("HELO") {
                "250 localhost\r\n".into()
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
                    let raw = read_data(&mut reader).await?;
                    let msg = Received {
                        helo: helo.clone(),
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        raw,
                    };
                    if let Some(d) = faults.delay {
                        tokio::time::sleep(d).await;
                    }
                    if faults.drop_after_data.contains(&number) {
                        self.state.lock().unwrap().dropped.push(msg);
                        return Ok(());
                    }
                    self.state.lock().unwrap().received.push(msg);
                    self.notify.notify_waiters();
                    "250 2.0.0 queued\r\n".into()
                }
            } else if upper == "RSET" {
                to.clear();
                "250 2.0.0 ok\r\n".into()
            } else if upper == "NOOP" {
                "250 2.0.0 ok\r\n".into()
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            } else {
                "502 5.5.2 command not implemented\r\n".into()
            };
            write.write_all(reply.as_bytes()).await?;
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
