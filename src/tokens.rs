//! Signed, URL-safe tokens (HMAC-SHA256) for unsubscribe, preferences and confirmation links.
