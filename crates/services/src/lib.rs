//! Domain services above the store: accounts and tenants, login sessions and tokens,
//! contacts, bubbles (group chats). They decide what is allowed; they know nothing of HTTP or XMPP wire formats.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod bubbles;
pub mod clock;
pub mod contacts;
pub mod error;
pub mod hash_pool;
pub mod password;
pub mod tokens;

pub use accounts::{Accounts, AccountsConfig, Actor, DeletedUser, NewAccount, Tokens};
pub use bubbles::{Bubble, BubbleEvent, BubbleMember, BubbleRole, BubbleUpdate, Bubbles};
pub use contacts::Contacts;
pub use error::Error;
