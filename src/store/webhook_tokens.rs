//! The one-time tokens of signed webhooks (Mailgun's `signature.token`): remembered with a
//! digest of the request that first carried them, so the web layer can refuse the same token on
//! another body (a replay) while letting a provider's retry of the same request through. Old
//! tokens are forgotten as new ones arrive.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};

impl Store {
    /// Remembers `token` (namespaced by the caller, e.g. `mailgun:<token>`) with `digest`, the
    /// request it came with, at `now`, after forgetting tokens seen before `forget_before`.
    /// True when the token is new or was seen with this same digest (a retry of the same
    /// request); false when it came before with another request (a replay).
    pub async fn remember_webhook_token(
        &self,
        token: &str,
        digest: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> StoreResult<bool> {
        with_pool!(self, p => {
            sqlx::query("DELETE FROM webhook_tokens WHERE seen_at < $1")
                .bind(forget_before)
                .execute(p)
                .await?;
            sqlx::query(
                "INSERT INTO webhook_tokens (token, digest, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (token) DO NOTHING",
            )
            .bind(token)
            .bind(digest)
            .bind(now)
            .execute(p)
            .await?;
            let stored: Option<String> =
                sqlx::query_scalar("SELECT digest FROM webhook_tokens WHERE token = $1")
                    .bind(token)
                    .fetch_optional(p)
                    .await?;
            Ok(stored.as_deref() == Some(digest))
        })
    }
}
