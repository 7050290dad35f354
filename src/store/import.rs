//! What an import carries beyond `add_subscribers`: the date each imported person gave consent
//! (the `created_at` column of an exported CSV), so a round trip through export and import keeps
//! it instead of restamping everyone with the day of the import.

use chrono::{DateTime, Utc};

use super::{BeginWrite, Store, StoreResult, with_pool};

impl Store {
    /// Sets `created_at` of each given subscriber, and `asked_at` of their consent records, to
    /// the consent date the import carried. For subscribers the import just created; one
    /// transaction for the batch.
    pub async fn backdate_consent(&self, rows: &[(i64, DateTime<Utc>)]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            for (id, at) in rows {
                super::transitions::update_with_consents!(tx, id, at,
                    subscriber: "created_at = $1",
                    consents: "asked_at = $1");
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
