//! Signed, URL-safe tokens (HMAC-SHA256) for unsubscribe, preferences and confirmation links.
//!
//! TEMP-STUB (owned by the render helper): only the constructor the delivery code calls.

use crate::config::NewsletterSettings;

/// Signs link tokens with `[newsletter] secret`. TEMP-STUB (owned by the render helper).
#[derive(Clone, Debug)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl TokenSigner {
    pub fn from_settings(newsletter: &NewsletterSettings) -> TokenSigner {
        TokenSigner {
            secret: newsletter.secret.expose().as_bytes().to_vec(),
        }
    }

    /// TEMP-STUB: a stand-in unsubscribe token.
    pub fn stub_token(&self, subscriber_id: i64, topic: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(format!("unsubscribe:{subscriber_id}:{topic}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }
}
