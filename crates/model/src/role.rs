//! What an account may do: user, company admin or superadmin; not how it is checked.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The role of an account. Ordered by power: `User < Admin < Superadmin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A member of a company.
    User,
    /// Manages the users of their own company only.
    Admin,
    /// Manages every company (the platform operator).
    Superadmin,
}

impl Role {
    /// The stable text stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Superadmin => "superadmin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `user`, `admin`, `superadmin`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected user, admin or superadmin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            "superadmin" => Ok(Role::Superadmin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}
