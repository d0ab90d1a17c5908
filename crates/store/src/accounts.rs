//! Companies and users: create, read, update, delete, in transactions.
use crate::error::conflict_as;
use crate::{Store, StoreError};
use iris_model::{Company, CompanyId, Login, Role, User, UserId};
use sqlx::any::AnyRow;
use sqlx::Row;

/// What is needed to create a user.
#[derive(Clone)]
pub struct NewUser<'a> {
    pub login: &'a Login,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

const USER_COLUMNS: &str = "u.id, u.login, u.display_name, u.company_id, c.name AS company, \
                            u.role, u.created_at";

fn company_from_row(row: &AnyRow) -> Result<Company, StoreError> {
    Ok(Company {
        id: CompanyId(row.try_get("id")?),
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let login: String = row.try_get("login")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        login: Login::parse(&login)
            .map_err(|e| StoreError::Corrupt(format!("login {login:?}: {e}")))?,
        display_name: row.try_get("display_name")?,
        company_id: CompanyId(row.try_get("company_id")?),
        company: row.try_get("company")?,
        role: role
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        created_at: row.try_get("created_at")?,
    })
}

/// Escapes `%`, `_` and `\` so user text is matched literally by `LIKE … ESCAPE '\'`.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

impl Store {
    /// Creates a company; `Conflict` if the name is taken.
    pub async fn create_company(&self, name: &str, now: i64) -> Result<Company, StoreError> {
        let row = sqlx::query("INSERT INTO companies (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at")
            .bind(name)
            .bind(now)
            .fetch_one(self.pool())
            .await
            .map_err(conflict_as("company"))?;
        company_from_row(&row)
    }

    /// The company with this id.
    pub async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM companies WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(company_from_row).transpose()
    }

    /// The company with this exact name.
    pub async fn company_by_name(&self, name: &str) -> Result<Option<Company>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM companies WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(company_from_row).transpose()
    }

    /// Every company, by name.
    pub async fn companies(&self) -> Result<Vec<Company>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM companies ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(company_from_row).collect()
    }

    /// Deletes a company with all its users (cascade). False if it did not exist.
    pub async fn delete_company(&self, id: CompanyId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM companies WHERE id = $1")
            .bind(id.0)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates a user in the company named `company`, creating the company in the same
    /// transaction when `create_company` is set. `Conflict("user")` if the login is taken,
    /// `Ok(None)` if the company does not exist and may not be created.
    pub async fn create_user(
        &self,
        new: NewUser<'_>,
        company: &str,
        create_company: bool,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let existing = sqlx::query("SELECT id FROM companies WHERE name = $1")
            .bind(company)
            .fetch_optional(&mut *tx)
            .await?;
        let company_id: i64 = match existing {
            Some(row) => row.try_get("id")?,
            None if create_company => {
                sqlx::query("INSERT INTO companies (name, created_at) VALUES ($1, $2) RETURNING id")
                    .bind(company)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_as("company"))?
                    .try_get("id")?
            }
            None => return Ok(None),
        };
        let id: i64 = sqlx::query(
            "INSERT INTO users (company_id, login, display_name, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(company_id)
        .bind(new.login.as_str())
        .bind(new.display_name)
        .bind(new.password_hash)
        .bind(new.role.as_str())
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_as("user"))?
        .try_get("id")?;
        tx.commit().await?;
        self.user(UserId(id)).await
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u JOIN companies c ON c.id = u.company_id WHERE u.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with this login and their password hash.
    pub async fn user_by_login(&self, login: &Login) -> Result<Option<(User, String)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u JOIN companies c ON c.id = u.company_id WHERE u.login = $1"
        );
        let row = sqlx::query(&sql)
            .bind(login.as_str())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// Users, optionally of one company and matching `search` in login or display name,
    /// ordered by login, paged.
    pub async fn users(
        &self,
        company: Option<CompanyId>,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<User>, StoreError> {
        let pattern = like_pattern(search.unwrap_or(""));
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN companies c ON c.id = u.company_id \
             WHERE ($1 = 0 OR u.company_id = $2) \
             AND (LOWER(u.login) LIKE $3 ESCAPE '\\' OR LOWER(u.display_name) LIKE $4 ESCAPE '\\') \
             ORDER BY u.login LIMIT $5 OFFSET $6"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(company.is_some()))
            .bind(company.map(|c| c.0).unwrap_or(0))
            .bind(&pattern)
            .bind(&pattern)
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Changes a user's display name and/or role. `None` if the user does not exist.
    pub async fn update_user(
        &self,
        id: UserId,
        display_name: Option<&str>,
        role: Option<Role>,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET display_name = COALESCE($1, display_name), role = COALESCE($2, role), \
             updated_at = $3 WHERE id = $4",
        )
        .bind(display_name)
        .bind(role.map(Role::as_str))
        .bind(now)
        .bind(id.0)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.user(id).await
    }

    /// Replaces a user's password hash and revokes all their sessions except `keep_session`,
    /// atomically. False if the user does not exist.
    pub async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        keep_session: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(now)
        .bind(id.0)
        .bind(keep_session.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a user with their sessions and contacts. False if they did not exist.
    pub async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.0)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Number of users with the given role (used to keep at least one superadmin).
    pub async fn count_role(&self, role: Role) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = $1")
            .bind(role.as_str())
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Failed logins so far for `login` and the time (Unix ms) until which it is locked.
    pub async fn login_failures(&self, login: &str) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query("SELECT failures, locked_until FROM login_failures WHERE login = $1")
            .bind(login)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok((row.try_get("failures")?, row.try_get("locked_until")?)),
            None => Ok((0, 0)),
        }
    }

    /// Records the failure count and lock deadline for `login`.
    pub async fn record_login_failure(
        &self,
        login: &str,
        failures: i64,
        locked_until: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_failures (login, failures, locked_until, last_failure) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (login) DO UPDATE SET failures = excluded.failures, \
             locked_until = excluded.locked_until, last_failure = excluded.last_failure",
        )
        .bind(login)
        .bind(failures)
        .bind(locked_until)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Adds one failure to `login` in a single statement (concurrent failures are never
    /// lost) and returns the new count.
    pub async fn increment_login_failures(&self, login: &str, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO login_failures (login, failures, locked_until, last_failure) VALUES ($1, 1, 0, $2) \
             ON CONFLICT (login) DO UPDATE SET failures = login_failures.failures + 1, \
             last_failure = excluded.last_failure RETURNING failures",
        )
        .bind(login)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("failures")?)
    }

    /// Locks `login` until `locked_until` (Unix milliseconds), never shortening a lock.
    pub async fn lock_login(&self, login: &str, locked_until: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_failures SET locked_until = $1 WHERE login = $2 AND locked_until < $1",
        )
        .bind(locked_until)
        .bind(login)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets the failures of `login` (after a successful login or a password reset).
    pub async fn clear_login_failures(&self, login: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE login = $1")
            .bind(login)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
