//! Quoted-printable body encoding (RFC 2045 6.7) for text with CRLF hard line breaks, done
//! piece by piece: a digest's fixed text is encoded once per issue and each subscriber's links
//! are encoded alone and spliced in between with soft line breaks (`=` CRLF), which decoders
//! join back, so the decoded body is exactly the personal text.

/// Encoded lines are at most 75 characters before a soft break's `=` (76 with it).
const MAX_COLUMN: usize = 75;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Encodes `input` (any line ends: `\n` or `\r\n` become hard CRLF breaks) as quoted-printable,
/// starting at column 0. The result never ends in a soft break, so pieces can be joined with
/// [`SOFT_BREAK`].
pub(crate) fn encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 16 + 8);
    let mut lines = input.split('\n').peekable();
    while let Some(line) = lines.next() {
        let last_line = lines.peek().is_none();
        let line = if last_line {
            line
        } else {
            line.strip_suffix('\r').unwrap_or(line)
        };
        encode_line(&mut out, line.as_bytes());
        if !last_line {
            out.push_str("\r\n");
        }
    }
    out
}

/// Joins encoded pieces without changing the decoded text.
pub(crate) const SOFT_BREAK: &str = "=\r\n";

/// Encodes one line; white space at its end is always encoded (`=20`), whether a hard break, a
/// soft break or the end of the body follows, so no decoder can strip it.
fn encode_line(out: &mut String, line: &[u8]) {
    let mut column = 0usize;
    for (i, &b) in line.iter().enumerate() {
        let is_last = i + 1 == line.len();
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !is_last,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        if column + width > MAX_COLUMN {
            out.push_str(SOFT_BREAK);
            column = 0;
        }
        if literal {
            out.push(char::from(b));
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        column += width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> String {
        let bytes = s.replace("=\r\n", "");
        let b = bytes.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' {
                out.push(u8::from_str_radix(&bytes[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn round_trips_and_keeps_lines_short() {
        let text = format!(
            "Hello = world \nCafé {}\n\ttab at end\t\nlast line without break ",
            "x".repeat(300)
        );
        let enc = encode(&text);
        assert_eq!(decode(&enc), text.replace('\n', "\r\n"));
        for line in enc.split("\r\n") {
            assert!(line.len() <= 76, "{line:?}");
            assert!(!line.ends_with(' ') && !line.ends_with('\t'), "{line:?}");
            assert!(line.is_ascii());
        }
    }

    #[test]
    fn pieces_joined_with_soft_breaks_decode_to_the_whole() {
        let a = "Unsubscribe: ";
        let url = format!("https://example.com/unsubscribe/{}", "T".repeat(90));
        let b = "\nThanks =)\n";
        let joined = [encode(a), encode(&url), encode(b)].join(SOFT_BREAK);
        assert_eq!(
            decode(&joined),
            format!("{a}{url}{b}").replace('\n', "\r\n")
        );
        assert!(joined.split("\r\n").all(|l| l.len() <= 76));
    }
}
