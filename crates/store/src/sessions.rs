//! Login sessions: one row per refresh token (stored hashed), revocable.
use crate::{Store, StoreError};
use iris_model::UserId;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A stored login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl SessionRow {
    /// Usable at `now`: not revoked and not expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

fn session_from_row(row: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: row.try_get("id")?,
        user_id: UserId(row.try_get("user_id")?),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Stores a new session whose refresh token hashes to `refresh_hash`.
    pub async fn create_session(
        &self,
        id: &str,
        user: UserId,
        refresh_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user.0)
        .bind(refresh_hash)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session with this id.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// The session whose current refresh token hashes to `refresh_hash`.
    pub async fn session_by_refresh(
        &self,
        refresh_hash: &str,
    ) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE refresh_hash = $1",
        )
        .bind(refresh_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Replaces the refresh token of an active session if it still is `old_hash` (so a refresh
    /// token is usable once). False if it was already rotated or revoked.
    pub async fn rotate_refresh(
        &self,
        id: &str,
        old_hash: &str,
        new_hash: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET refresh_hash = $1, expires_at = $2 \
             WHERE id = $3 AND refresh_hash = $4 AND revoked_at IS NULL",
        )
        .bind(new_hash)
        .bind(expires_at)
        .bind(id)
        .bind(old_hash)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes one session (logout).
    pub async fn revoke_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes sessions that expired or were revoked before `before`.
    pub async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $2")
            .bind(before)
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
