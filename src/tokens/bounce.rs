//! Bounce tags: the `<tag>` of a VERP envelope sender `bounces+<tag>@domain`, naming the
//! delivery row a message was sent for ([`Purpose::Bounce`], signed with the link tokens' keys;
//! see the parent module's comment for the format). Pure: encoding and checking only.

use hmac::Mac;
use lettre::Address;

use super::{HmacSha256, Purpose, TokenSigner, VERSION, push_varint, read_varint};

/// Bytes of HMAC a bounce tag keeps (80 bits: a forgery is a 1 in 2^80 guess).
const BOUNCE_MAC_LEN: usize = 10;
/// Longest bounce tag: a 64-bit id takes at most 10 LEB128 bytes, 20 bytes in all.
pub const MAX_BOUNCE_TAG_CHARS: usize = (10 + BOUNCE_MAC_LEN) * 8 / 5;
// `bounces.address`, a `+` and the longest tag fit the 64 octets of an SMTP local part.
const _: () = assert!(crate::config::MAX_BOUNCE_LOCAL_PART + 1 + MAX_BOUNCE_TAG_CHARS <= 64);
/// The base32 alphabet of bounce tags, lower case.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl TokenSigner {
    /// The tag naming delivery row `delivery_id` in a VERP envelope sender (see the module
    /// comment): lower-case base32, at most [`MAX_BOUNCE_TAG_CHARS`] characters.
    pub fn bounce_tag(&self, delivery_id: i64) -> String {
        let mut bytes = Vec::with_capacity(10 + BOUNCE_MAC_LEN);
        push_varint(&mut bytes, delivery_id as u64);
        let mac = bounce_mac(&self.keys[0], &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&mac[..BOUNCE_MAC_LEN]);
        base32_encode(&bytes)
    }

    /// The delivery row a bounce tag names, in any letter case; `None` for anything this
    /// signer (current or previous secret) did not make: forged, garbled, truncated tags.
    pub fn bounce_tag_delivery(&self, tag: &str) -> Option<i64> {
        if tag.len() > MAX_BOUNCE_TAG_CHARS {
            return None;
        }
        let bytes = base32_decode(tag)?;
        if bytes.len() <= BOUNCE_MAC_LEN {
            return None;
        }
        let (payload, mac) = bytes.split_at(bytes.len() - BOUNCE_MAC_LEN);
        let signed = self.keys.iter().any(|key| {
            // Constant-time comparison of the truncated MAC.
            bounce_mac(key, payload).verify_truncated_left(mac).is_ok()
        });
        if !signed {
            return None;
        }
        match read_varint(payload)? {
            (id, []) => i64::try_from(id).ok(),
            _ => None,
        }
    }

    /// The VERP envelope sender of delivery row `delivery_id`: `base` with `+<tag>` after its
    /// local part (`bounces@news.example.com` -> `bounces+<tag>@news.example.com`).
    pub fn verp_address(&self, base: &Address, delivery_id: i64) -> String {
        format!(
            "{}+{}@{}",
            base.user(),
            self.bounce_tag(delivery_id),
            base.domain()
        )
    }

    /// The delivery row a VERP address made by [`TokenSigner::verp_address`] from `base`
    /// names (angle brackets, spaces and letter case ignored); `None` for another address or a
    /// tag this signer did not make.
    pub fn verp_delivery(&self, base: &Address, address: &str) -> Option<i64> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(base.domain()) {
            return None;
        }
        let (user, tag) = local.split_once('+')?;
        if !user.eq_ignore_ascii_case(base.user()) {
            return None;
        }
        self.bounce_tag_delivery(tag)
    }
}

/// The MAC of a bounce tag's payload: over version, purpose and payload, so no link token's
/// MAC can stand in for it.
fn bounce_mac(key: &HmacSha256, payload: &[u8]) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(&[VERSION, Purpose::Bounce.code()]);
    mac.update(payload);
    mac
}

/// Lower-case base32 without padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Base32 in either case, without padding; `None` on any other character, an impossible
/// length or unused trailing bits that are not zero (so each byte string has one spelling).
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let c = c.to_ascii_lowercase();
        let value = BASE32.iter().position(|b| *b == c)? as u32;
        buffer = ((buffer << 5) | value) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    if bits >= 5 || buffer & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenError;
    use crate::tokens::tests::{now, settings, signer};

    #[test]
    fn bounce_tags_round_trip_and_fit_an_smtp_local_part() {
        let s = signer();
        for id in [0, 1, 127, 128, 4_242, 7_000_000_001, i64::MAX] {
            let tag = s.bounce_tag(id);
            assert_eq!(s.bounce_tag_delivery(&tag), Some(id), "{id}: {tag}");
            assert!(tag.len() <= MAX_BOUNCE_TAG_CHARS, "{id}: {tag}");
            assert!(
                tag.bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
                "{tag}"
            );
        }
        assert!(s.bounce_tag(4_242).len() <= 21);
        // The longest VERP address `bounces.address` allows is still an address.
        let base: Address = format!("{}@x.org", "b".repeat(crate::config::MAX_BOUNCE_LOCAL_PART))
            .parse()
            .unwrap();
        let verp = s.verp_address(&base, i64::MAX);
        assert!(verp.split('@').next().unwrap().len() <= 64, "{verp}");
        assert!(verp.parse::<Address>().is_ok(), "{verp}");
    }

    #[test]
    fn bounce_tags_are_read_in_any_letter_case() {
        let s = signer();
        let tag = s.bounce_tag(31_337);
        assert_eq!(
            s.bounce_tag_delivery(&tag.to_ascii_uppercase()),
            Some(31_337)
        );
        let mixed: String = tag
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(s.bounce_tag_delivery(&mixed), Some(31_337));
    }

    #[test]
    fn forged_truncated_and_garbled_bounce_tags_name_no_delivery() {
        let s = signer();
        let tag = s.bounce_tag(4_242);
        let bytes = base32_decode(&tag).unwrap();
        // Any flipped bit, in the id or the MAC.
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert_eq!(s.bounce_tag_delivery(&base32_encode(&b)), None, "{i}/{bit}");
            }
        }
        // Another id with this id's MAC.
        let mut other = Vec::new();
        push_varint(&mut other, 4_243);
        other.extend_from_slice(&bytes[bytes.len() - BOUNCE_MAC_LEN..]);
        assert_eq!(s.bounce_tag_delivery(&base32_encode(&other)), None);
        // Cut short, or with characters added.
        for cut in 0..tag.len() {
            assert_eq!(s.bounce_tag_delivery(&tag[..cut]), None, "cut {cut}");
        }
        assert_eq!(s.bounce_tag_delivery(&format!("{tag}a")), None);
        assert_eq!(s.bounce_tag_delivery(&format!("a{tag}")), None);
        // Not base32 at all, or far too long.
        for junk in ["", "0189", "abc def", "abc=", "ümlaut", &"a".repeat(500)] {
            assert_eq!(s.bounce_tag_delivery(junk), None, "{junk:?}");
        }
        // A link token is no bounce tag, and a bounce tag no link token.
        assert_eq!(s.bounce_tag_delivery(&s.preferences(4_242)), None);
        assert_eq!(
            s.verify(&tag, Purpose::Preferences, now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn bounce_tags_of_another_secret_name_no_delivery_and_previous_secrets_still_do() {
        let old = TokenSigner::from_settings(&settings("old-secret-0123456789", &[]));
        let rotated = TokenSigner::from_settings(&settings(
            "new-secret-0123456789",
            &["old-secret-0123456789"],
        ));
        let other = TokenSigner::from_settings(&settings("new-secret-0123456789", &[]));
        let tag = old.bounce_tag(77);
        assert_eq!(rotated.bounce_tag_delivery(&tag), Some(77));
        assert_eq!(other.bounce_tag_delivery(&tag), None);
        assert_eq!(other.bounce_tag_delivery(&rotated.bounce_tag(77)), Some(77));
    }

    #[test]
    fn verp_addresses_name_their_delivery() {
        let s = signer();
        let base: Address = "bounces@news.example.com".parse().unwrap();
        let verp = s.verp_address(&base, 12);
        let tag = s.bounce_tag(12);
        assert_eq!(verp, format!("bounces+{tag}@news.example.com"));
        assert!(verp.parse::<Address>().is_ok(), "{verp}");
        for seen in [
            verp.clone(),
            verp.to_ascii_uppercase(),
            format!("<{verp}>"),
            format!("  {verp} "),
        ] {
            assert_eq!(s.verp_delivery(&base, &seen), Some(12), "{seen}");
        }
        for other in [
            format!("bounces+{tag}@other.example.com"),
            format!("postmaster+{tag}@news.example.com"),
            "bounces@news.example.com".to_string(),
            format!("bounces+{}@news.example.com", &tag[1..]),
            format!("bounces+{tag}x@news.example.com"),
            format!("bounces+{tag}"),
        ] {
            assert_eq!(s.verp_delivery(&base, &other), None, "{other}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648_in_lower_case() {
        // RFC 4648, section 10, without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        // One spelling per byte string: unused trailing bits must be zero.
        assert_eq!(base32_decode("mz"), None);
        assert_eq!(base32_decode("m"), None);
    }
}
