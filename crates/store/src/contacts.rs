//! Contact pairs: both directions of an invitation are written in one transaction.
use crate::{Store, StoreError};
use iris_model::{Contact, ContactState, Login, UserId};
use sqlx::Row;

const CONTACT_SELECT: &str =
    "SELECT k.contact_id, u.login, u.display_name, k.state, k.name, k.groups, k.updated_at \
     FROM contacts k JOIN users u ON u.id = k.contact_id";

fn contact_from_row(row: &sqlx::any::AnyRow) -> Result<Contact, StoreError> {
    let login: String = row.try_get("login")?;
    let state: String = row.try_get("state")?;
    let groups: String = row.try_get("groups")?;
    Ok(Contact {
        user_id: UserId(row.try_get("contact_id")?),
        login: Login::parse(&login).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        display_name: row.try_get("display_name")?,
        state: state.parse().map_err(StoreError::Corrupt)?,
        name: row.try_get("name")?,
        groups: serde_json::from_str(&groups)
            .map_err(|e| StoreError::Corrupt(format!("contact groups: {e}")))?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// The contact list of `owner`, by login.
    pub async fn contacts(&self, owner: UserId) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(&format!(
            "{CONTACT_SELECT} WHERE k.owner_id = $1 ORDER BY u.login"
        ))
        .bind(owner.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(contact_from_row).collect()
    }

    /// `owner`'s entry of `other`, if any.
    pub async fn contact(
        &self,
        owner: UserId,
        other: UserId,
    ) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query(&format!(
            "{CONTACT_SELECT} WHERE k.owner_id = $1 AND k.contact_id = $2"
        ))
        .bind(owner.0)
        .bind(other.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(contact_from_row).transpose()
    }

    /// The state of `other` in `owner`'s contact list.
    pub async fn contact_state(
        &self,
        owner: UserId,
        other: UserId,
    ) -> Result<Option<ContactState>, StoreError> {
        let row = sqlx::query("SELECT state FROM contacts WHERE owner_id = $1 AND contact_id = $2")
            .bind(owner.0)
            .bind(other.0)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => {
                let state: String = row.try_get("state")?;
                Ok(Some(state.parse().map_err(StoreError::Corrupt)?))
            }
            None => Ok(None),
        }
    }

    /// Sets both directions of a contact pair atomically: `a` sees `b` as `a_state` and `b`
    /// sees `a` as `b_state`.
    pub async fn set_contact_pair(
        &self,
        a: UserId,
        b: UserId,
        a_state: ContactState,
        b_state: ContactState,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for (owner, other, state) in [(a, b, a_state), (b, a, b_state)] {
            sqlx::query(
                "INSERT INTO contacts (owner_id, contact_id, state, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (owner_id, contact_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(owner.0)
            .bind(other.0)
            .bind(state.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets `owner`'s own name and groups for `other`. False if `owner` has no entry of them.
    pub async fn set_contact_labels(
        &self,
        owner: UserId,
        other: UserId,
        name: Option<&str>,
        groups: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        let groups = serde_json::to_string(groups)
            .map_err(|e| StoreError::Corrupt(format!("contact groups: {e}")))?;
        let done = sqlx::query(
            "UPDATE contacts SET name = $1, groups = $2, updated_at = $3 \
             WHERE owner_id = $4 AND contact_id = $5",
        )
        .bind(name)
        .bind(groups)
        .bind(now)
        .bind(owner.0)
        .bind(other.0)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes both directions of a contact pair. False if there was none.
    pub async fn delete_contact_pair(&self, a: UserId, b: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM contacts WHERE (owner_id = $1 AND contact_id = $2) OR (owner_id = $3 AND contact_id = $4)",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(b.0)
        .bind(a.0)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
