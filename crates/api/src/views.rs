//! Wire shapes of the REST API (requests and responses), kept apart from the domain records.
use iris_model::{Company, Contact, ContactState, Role, User};
use iris_services::{Bubble, BubbleMember, BubbleRole};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    /// `name@domain`; also the user's XMPP address.
    pub login: String,
    pub display_name: String,
    pub company_id: i64,
    pub company: String,
    #[schema(value_type = String, example = "user")]
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id.0,
            login: u.login.to_string(),
            display_name: u.display_name,
            company_id: u.company_id.0,
            company: u.company,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyView {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

impl From<Company> for CompanyView {
    fn from(c: Company) -> Self {
        CompanyView {
            id: c.id.0,
            name: c.name,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub user_id: i64,
    pub login: String,
    pub display_name: String,
    /// invitation_sent, invitation_received or accepted.
    #[schema(value_type = String, example = "accepted")]
    pub state: ContactState,
    /// The caller's own name for this contact (the XMPP roster item name); absent: none set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The caller's roster groups for this contact.
    pub groups: Vec<String>,
    pub updated_at: i64,
}

/// The caller's own labels for a contact; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelabelContact {
    /// The caller's name for the contact; `""` clears it.
    pub name: Option<String>,
    /// The roster groups, replacing the current ones; `[]` clears them.
    pub groups: Option<Vec<String>>,
}

impl From<Contact> for ContactView {
    fn from(c: Contact) -> Self {
        ContactView {
            user_id: c.user_id.0,
            login: c.login.to_string(),
            display_name: c.display_name,
            state: c.state,
            name: c.name,
            groups: c.groups,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokensView {
    /// Present as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at `/api/v1/auth/refresh` before the access token expires; usable once.
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub user: UserView,
}

impl From<iris_services::Tokens> for TokensView {
    fn from(t: iris_services::Tokens) -> Self {
        TokensView {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            user: t.user.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub login: String,
    pub password: String,
    pub display_name: Option<String>,
    /// user (default), admin or superadmin.
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Company name; defaults to the caller's company. Only a superadmin may name another.
    pub company: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCompany {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteContact {
    /// Login of the user to invite.
    pub login: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Text to find in logins and display names.
    pub q: Option<String>,
    /// At most this many (1–500, default 100).
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BubbleView {
    /// Use in `/api/v1/bubbles/{id}`; the room is `<id>@<conference domain>`.
    pub id: String,
    /// The XMPP room address (XEP-0045).
    pub jid: String,
    pub name: String,
    pub description: String,
    pub company_id: Option<i64>,
    pub created_at: i64,
    /// The caller's role: owner, moderator or member; null for a company admin who is not a member.
    #[schema(value_type = Option<String>, example = "owner")]
    pub my_role: Option<BubbleRole>,
}

impl From<Bubble> for BubbleView {
    fn from(b: Bubble) -> Self {
        BubbleView {
            id: b.id,
            jid: b.jid,
            name: b.name,
            description: b.description,
            company_id: b.company_id,
            created_at: b.created_at,
            my_role: b.my_role,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BubbleMemberView {
    /// Null when the address is not a user of this server.
    pub user_id: Option<i64>,
    /// The member's XMPP address (their login).
    pub jid: String,
    pub display_name: String,
    /// owner, moderator or member.
    #[schema(value_type = String, example = "member")]
    pub role: BubbleRole,
}

impl From<BubbleMember> for BubbleMemberView {
    fn from(m: BubbleMember) -> Self {
        BubbleMemberView {
            user_id: m.user_id.map(|u| u.0),
            jid: m.jid,
            display_name: m.display_name,
            role: m.role,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBubbleMember {
    pub user_id: i64,
    /// owner, moderator or member (default).
    #[schema(value_type = Option<String>)]
    pub role: Option<BubbleRole>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBubble {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Initial members (users of the caller's company); they get an invitation.
    #[serde(default)]
    pub members: Vec<NewBubbleMember>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBubble {
    pub name: Option<String>,
    pub description: Option<String>,
}
