//! The messages `tidings bounces ingest` reads: one from a file or stdin, the files of a
//! Maildir's `new/` and `cur/`, or the messages of an mbox file. Backlogs are read one message
//! at a time, so ingesting any number of them holds one message (at most
//! [`bounce::MAX_MESSAGE_BYTES`]) in memory, not the whole backlog.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::bounce;

/// A source of messages, read lazily.
pub(super) enum Backlog {
    /// One message already read (the pipe, or a single file).
    One(Option<Vec<u8>>),
    /// The files of a Maildir, by name; each read when its turn comes.
    Maildir(std::vec::IntoIter<PathBuf>),
    /// An mbox file, split as it is read.
    Mbox(Mbox<BufReader<File>>),
}

/// One item of a backlog: a message and how far it moved the progress (messages for a Maildir,
/// bytes for an mbox), or a message that could not be read, described.
pub(super) type Item = Result<(Vec<u8>, u64), String>;

impl Backlog {
    /// The files of `dir`'s `new/` and `cur/` folders, by name; an error when `dir` has
    /// neither folder or one cannot be listed.
    pub fn maildir(dir: &Path) -> std::io::Result<(Backlog, u64)> {
        let mut files: Vec<PathBuf> = Vec::new();
        let mut folders = 0;
        for sub in ["new", "cur"] {
            let folder = dir.join(sub);
            if !folder.is_dir() {
                continue;
            }
            folders += 1;
            for entry in std::fs::read_dir(&folder)? {
                let path = entry?.path();
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        if folders == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a Maildir (no new/ or cur/ folder)",
            ));
        }
        files.sort();
        let total = files.len() as u64;
        Ok((Backlog::Maildir(files.into_iter()), total))
    }

    /// The messages of the mbox file at `path`, and its size in bytes.
    pub fn mbox(path: &Path) -> std::io::Result<(Backlog, u64)> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok((Backlog::Mbox(Mbox::new(BufReader::new(file))), size))
    }
}

impl Iterator for Backlog {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        match self {
            Backlog::One(message) => message.take().map(|m| Ok((m, 1))),
            Backlog::Maildir(files) => files.next().map(|path| {
                File::open(&path)
                    .and_then(|mut f| read_capped(&mut f))
                    .map(|m| (m, 1))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            }),
            Backlog::Mbox(mbox) => {
                let before = mbox.consumed;
                match mbox.next_message() {
                    Ok(Some(m)) => Some(Ok((m, mbox.consumed - before))),
                    Ok(None) => None,
                    Err(e) => {
                        // A read error ends the file: what follows cannot be split reliably.
                        mbox.done = true;
                        Some(Err(format!(
                            "cannot read the mbox after byte {}: {e}",
                            mbox.consumed
                        )))
                    }
                }
            }
        }
    }
}

/// At most [`bounce::MAX_MESSAGE_BYTES`] of `input`; the rest is read and dropped, so the
/// writer (an MTA) is not cut off.
pub(super) fn read_capped(input: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input
        .take(bounce::MAX_MESSAGE_BYTES as u64)
        .read_to_end(&mut bytes)?;
    std::io::copy(input, &mut std::io::sink())?;
    Ok(bytes)
}

/// An mbox split as it is read: each message starts at a `From ` line at the start of the file
/// or after a blank line (the line itself is not part of the message); `>From ` lines lose one
/// `>` (mboxrd). Each message is cut at [`bounce::MAX_MESSAGE_BYTES`], and so is each line.
pub(super) struct Mbox<R> {
    reader: R,
    /// The message being read, once its `From ` line has been seen.
    current: Option<Vec<u8>>,
    after_blank: bool,
    done: bool,
    /// Bytes read from the file so far.
    consumed: u64,
}

impl<R: BufRead> Mbox<R> {
    pub fn new(reader: R) -> Self {
        Mbox {
            reader,
            current: None,
            after_blank: true,
            done: false,
            consumed: 0,
        }
    }

    /// The next message, None at the end of the file.
    pub fn next_message(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        while !self.done {
            line.clear();
            let read = read_line_capped(&mut self.reader, &mut line, bounce::MAX_MESSAGE_BYTES)?;
            if read == 0 {
                self.done = true;
                break;
            }
            self.consumed += read;
            if self.after_blank && line.starts_with(b"From ") {
                self.after_blank = false;
                if let Some(done) = self.current.replace(Vec::new()) {
                    return Ok(Some(done));
                }
                continue;
            }
            self.after_blank = line == b"\n" || line == b"\r\n";
            let Some(message) = self.current.as_mut() else {
                continue;
            };
            let quoted = line
                .iter()
                .position(|b| *b != b'>')
                .is_some_and(|i| i > 0 && line[i..].starts_with(b"From "));
            let line = if quoted { &line[1..] } else { &line[..] };
            if message.len() + line.len() <= bounce::MAX_MESSAGE_BYTES {
                message.extend_from_slice(line);
            }
        }
        Ok(self.current.take())
    }
}

/// Reads one line (up to and including `\n`) into `line`, keeping at most `cap` bytes of it;
/// the number of bytes consumed, 0 at the end of the input.
fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<u64> {
    let mut consumed = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(consumed);
        }
        let (chunk, end) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        reader.consume(n);
        consumed += n as u64;
        if end {
            return Ok(consumed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &[u8]) -> Vec<Vec<u8>> {
        let mut mbox = Mbox::new(text);
        let mut out = Vec::new();
        while let Some(m) = mbox.next_message().expect("in memory") {
            out.push(m);
        }
        assert_eq!(mbox.consumed, text.len() as u64);
        out
    }

    #[test]
    fn an_mbox_splits_at_from_lines_after_blank_lines_and_unquotes() {
        let text = b"From a Mon Feb  9 08:00:00 2026\nSubject: one\n\nbody\nFrom mid-line stays\n\
                     >From quoted\n\nFrom b Mon Feb  9 08:01:00 2026\r\nSubject: two\r\n\r\nbody\r\n";
        let messages = split(text);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0],
            b"Subject: one\n\nbody\nFrom mid-line stays\nFrom quoted\n\n".to_vec()
        );
        assert_eq!(messages[1], b"Subject: two\r\n\r\nbody\r\n".to_vec());
    }

    #[test]
    fn text_before_the_first_from_line_is_not_a_message() {
        assert!(split(b"").is_empty());
        assert!(split(b"garbage\nmore\n").is_empty());
        assert_eq!(split(b"junk\n\nFrom x\nA: b\n"), vec![b"A: b\n".to_vec()]);
    }

    #[test]
    fn a_huge_line_is_cut_and_the_next_message_still_found() {
        let mut text = b"From a\nX: ".to_vec();
        text.extend(std::iter::repeat_n(b'y', bounce::MAX_MESSAGE_BYTES * 2));
        text.extend_from_slice(b"\n\nFrom b\nSubject: two\n");
        let messages = split(&text);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].len() <= bounce::MAX_MESSAGE_BYTES);
        assert_eq!(messages[1], b"Subject: two\n".to_vec());
    }
}
