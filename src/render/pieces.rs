//! A rendered digest text kept as pieces around the per-subscriber link placeholders, so a
//! subscriber's message is a concatenation, never a template render; also the same pieces
//! quoted-printable encoded once per issue, so only the links are encoded per subscriber.

use super::qp;

/// Placeholders for the per-subscriber links. They contain a control character, which
/// [`super::text::clean_line`] removes from all data and the `url` crate percent-encodes, so no
/// input can produce them.
pub(super) const UNSUBSCRIBE_MARK: &str = "\u{1}tidings:unsubscribe-url\u{1}";
pub(super) const PREFERENCES_MARK: &str = "\u{1}tidings:preferences-url\u{1}";

/// A rendered text split around the personal-link placeholders.
#[derive(Clone, Debug)]
pub(super) struct Pieces {
    parts: Vec<Piece>,
    literal_len: usize,
}

#[derive(Clone, Debug)]
enum Piece {
    Literal(String),
    Unsubscribe,
    Preferences,
}

impl Pieces {
    pub(super) fn split(rendered: &str) -> Pieces {
        let mut parts = Vec::new();
        let mut rest = rendered;
        loop {
            let next = [
                (
                    rest.find(UNSUBSCRIBE_MARK),
                    UNSUBSCRIBE_MARK,
                    Piece::Unsubscribe,
                ),
                (
                    rest.find(PREFERENCES_MARK),
                    PREFERENCES_MARK,
                    Piece::Preferences,
                ),
            ]
            .into_iter()
            .filter_map(|(at, mark, piece)| at.map(|at| (at, mark, piece)))
            .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, mark, piece)) => {
                    if at > 0 {
                        parts.push(Piece::Literal(rest[..at].to_string()));
                    }
                    parts.push(piece);
                    rest = &rest[at + mark.len()..];
                }
                None => {
                    if !rest.is_empty() {
                        parts.push(Piece::Literal(rest.to_string()));
                    }
                    break;
                }
            }
        }
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                _ => 0,
            })
            .sum();
        Pieces { parts, literal_len }
    }

    /// The same pieces with every literal quoted-printable encoded (once per issue).
    pub(super) fn encoded(&self) -> Pieces {
        let parts: Vec<Piece> = self
            .parts
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => Piece::Literal(qp::encode(s)),
                Piece::Unsubscribe => Piece::Unsubscribe,
                Piece::Preferences => Piece::Preferences,
            })
            .collect();
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len() + qp::SOFT_BREAK.len(),
                _ => qp::SOFT_BREAK.len(),
            })
            .sum();
        Pieces { parts, literal_len }
    }

    /// Joins encoded pieces (from [`Pieces::encoded`]) and the encoded personal links with soft
    /// line breaks: a quoted-printable body whose decoded text is `fill`'s.
    pub(super) fn fill_encoded(&self, unsubscribe: &str, preferences: &str) -> String {
        let mut out =
            String::with_capacity(self.literal_len + 4 * (unsubscribe.len() + preferences.len()));
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_str(qp::SOFT_BREAK);
            }
            match part {
                Piece::Literal(s) => out.push_str(s),
                Piece::Unsubscribe => out.push_str(unsubscribe),
                Piece::Preferences => out.push_str(preferences),
            }
        }
        out
    }

    pub(super) fn fill(&self, unsubscribe: &str, preferences: &str) -> String {
        let mut out = String::with_capacity(self.literal_len + 4 * (unsubscribe.len() + 64));
        for part in &self.parts {
            match part {
                Piece::Literal(s) => out.push_str(s),
                Piece::Unsubscribe => out.push_str(unsubscribe),
                Piece::Preferences => out.push_str(preferences),
            }
        }
        out
    }
}
