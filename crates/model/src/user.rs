//! Account and company records as the services see them; no persistence, no secrets.
use crate::{CompanyId, Login, Role, UserId};
use serde::Serialize;

/// A tenant: users belong to exactly one company, and admins see only their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
}

/// A user account without its password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub login: Login,
    pub display_name: String,
    pub company_id: CompanyId,
    pub company: String,
    pub role: Role,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
}
