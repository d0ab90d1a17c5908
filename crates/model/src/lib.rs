//! Domain newtypes and records shared by every layer (logins, ids, roles, contacts); no I/O, no policy.
#![forbid(unsafe_code)]

pub mod contact;
pub mod ids;
pub mod login;
pub mod role;
pub mod secret;
pub mod user;

pub use contact::{Contact, ContactState};
pub use ids::{CompanyId, UserId};
pub use login::{Login, LoginError};
pub use role::Role;
pub use secret::Secret;
pub use user::{Company, User};
