//! Bubbles (group chats) for the REST API: list, create, rename, delete, members and their
//! roles, scoped to the caller's company. The same rows are the XEP-0045 rooms of the XMPP
//! server, which follows every change through [`BubbleEvent`]s (invitations, affiliation
//! changes, destruction). No wire formats here.
use crate::clock::now_ms;
use crate::{Actor, Error};
use iris_model::{Role, UserId};
use iris_store::{NewRoom, RoomRow, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

const MAX_NAME: usize = 128;
const MAX_DESCRIPTION: usize = 1024;
const MAX_MEMBERS_AT_CREATION: usize = 500;

/// A member's role in a bubble; stored as the XEP-0045 affiliation owner / admin / member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BubbleRole {
    Member,
    Moderator,
    Owner,
}

impl BubbleRole {
    /// The XEP-0045 affiliation this role is stored as.
    pub fn affiliation(self) -> &'static str {
        match self {
            BubbleRole::Owner => "owner",
            BubbleRole::Moderator => "admin",
            BubbleRole::Member => "member",
        }
    }

    /// The role of an affiliation; `None` for outcasts and unknown values.
    pub fn from_affiliation(a: &str) -> Option<Self> {
        match a {
            "owner" => Some(BubbleRole::Owner),
            "admin" => Some(BubbleRole::Moderator),
            "member" => Some(BubbleRole::Member),
            _ => None,
        }
    }
}

/// A bubble as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bubble {
    /// The room's local part: `<id>@<muc domain>`.
    pub id: String,
    /// The room's bare JID.
    pub jid: String,
    pub name: String,
    pub description: String,
    pub company_id: Option<i64>,
    pub created_at: i64,
    /// The caller's role; `None` for a company admin who is not a member.
    pub my_role: Option<BubbleRole>,
}

/// One member of a bubble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BubbleMember {
    /// `None` when the JID is not (or no longer) a local user.
    pub user_id: Option<UserId>,
    /// The member's bare JID (their login for local users).
    pub jid: String,
    pub display_name: String,
    pub role: BubbleRole,
}

/// What the XMPP server must reflect to connected clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BubbleEvent {
    /// `jid`'s affiliation with `room` changed (`None`: removed); `invited` when it was not a
    /// member before (it gets an invitation); `by` is the bare JID of who did it.
    Affiliation {
        room: String,
        jid: String,
        affiliation: Option<String>,
        invited: bool,
        by: String,
    },
    /// The room was deleted: occupants get the XEP-0045 destroy presence.
    Destroyed {
        room: String,
        reason: Option<String>,
    },
}

/// Changes asked for by `PATCH /bubbles/{id}`.
#[derive(Debug, Clone, Default)]
pub struct BubbleUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// The bubbles service; cheap to clone.
#[derive(Clone)]
pub struct Bubbles {
    store: Store,
    muc_domain: String,
    events: broadcast::Sender<BubbleEvent>,
}

fn check_text(field: &'static str, value: &str, max: usize, empty_ok: bool) -> Result<(), Error> {
    if !empty_ok && value.trim().is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {max} printable characters"),
        ));
    }
    Ok(())
}

/// A bubble id is a room local part: 1–64 characters, no `@`, `/`, space or control.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.chars().any(|c| {
            matches!(c, '@' | '/' | '"' | '&' | '\'' | '<' | '>' | ':')
                || c.is_whitespace()
                || c.is_control()
        })
}

fn random_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

impl Bubbles {
    /// `muc_domain` is where rooms live (`conference.<domain>`).
    pub fn new(store: Store, muc_domain: impl Into<String>) -> Self {
        Bubbles {
            store,
            muc_domain: muc_domain.into().to_ascii_lowercase(),
            events: broadcast::channel(1024).0,
        }
    }

    /// The domain rooms live at.
    pub fn muc_domain(&self) -> &str {
        &self.muc_domain
    }

    /// Subscribes to changes the XMPP server must reflect.
    pub fn subscribe(&self) -> broadcast::Receiver<BubbleEvent> {
        self.events.subscribe()
    }

    fn emit(&self, e: BubbleEvent) {
        // No subscriber is fine: no XMPP role runs in this process.
        let _ = self.events.send(e);
    }

    fn jid_of(&self, id: &str) -> Result<String, Error> {
        if !valid_id(id) {
            return Err(Error::NotFound("bubble"));
        }
        Ok(format!("{}@{}", id.to_ascii_lowercase(), self.muc_domain))
    }

    fn view(&self, row: RoomRow, my_role: Option<BubbleRole>) -> Bubble {
        let id = row
            .jid
            .split_once('@')
            .map(|(l, _)| l.to_owned())
            .unwrap_or_default();
        Bubble {
            id,
            jid: row.jid,
            name: row.name,
            description: row.description,
            company_id: row.company_id,
            created_at: row.created_at,
            my_role,
        }
    }

    fn is_company_admin(actor: &Actor, company: Option<i64>) -> bool {
        match actor.user.role {
            Role::Superadmin => true,
            Role::Admin => company == Some(actor.user.company_id.0),
            Role::User => false,
        }
    }

    /// The room and the caller's role; "not found" when the caller may not see it (another
    /// company, or neither member nor company admin).
    async fn load(&self, actor: &Actor, id: &str) -> Result<(RoomRow, Option<BubbleRole>), Error> {
        let jid = self.jid_of(id)?;
        let row = self
            .store
            .room(&jid)
            .await?
            .ok_or(Error::NotFound("bubble"))?;
        let mine = self
            .store
            .room_affiliation(&jid, actor.user.login.as_str())
            .await?
            .as_deref()
            .and_then(BubbleRole::from_affiliation);
        let same_company = row.company_id.is_none_or(|c| c == actor.user.company_id.0)
            || actor.user.role == Role::Superadmin;
        if !same_company || (mine.is_none() && !Self::is_company_admin(actor, row.company_id)) {
            return Err(Error::NotFound("bubble"));
        }
        Ok((row, mine))
    }

    /// May the caller manage members at `role` level in this room?
    fn may_manage(actor: &Actor, row: &RoomRow, mine: Option<BubbleRole>) -> bool {
        mine >= Some(BubbleRole::Moderator) || Self::is_company_admin(actor, row.company_id)
    }

    fn may_own(actor: &Actor, row: &RoomRow, mine: Option<BubbleRole>) -> bool {
        mine == Some(BubbleRole::Owner) || Self::is_company_admin(actor, row.company_id)
    }

    /// The bubbles the caller belongs to (in their company).
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Bubble>, Error> {
        let login = actor.user.login.as_str();
        let mut out = Vec::new();
        for row in self.store.rooms_of(login).await? {
            if row.company_id.is_some_and(|c| c != actor.user.company_id.0)
                && actor.user.role != Role::Superadmin
            {
                continue;
            }
            let mine = self
                .store
                .room_affiliation(&row.jid, login)
                .await?
                .as_deref()
                .and_then(BubbleRole::from_affiliation);
            out.push(self.view(row, mine));
        }
        Ok(out)
    }

    /// One bubble.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Bubble, Error> {
        let (row, mine) = self.load(actor, id).await?;
        Ok(self.view(row, mine))
    }

    /// Creates a bubble owned by the caller in their company, with initial members (who get
    /// invitations).
    pub async fn create(
        &self,
        actor: &Actor,
        name: &str,
        description: &str,
        members: &[(UserId, BubbleRole)],
    ) -> Result<Bubble, Error> {
        check_text("name", name, MAX_NAME, false)?;
        check_text("description", description, MAX_DESCRIPTION, true)?;
        if members.len() > MAX_MEMBERS_AT_CREATION {
            return Err(Error::invalid("members", "too many members"));
        }
        let owner = actor.user.login.as_str().to_owned();
        let mut rows: Vec<(String, String)> = Vec::new();
        for (user, role) in members {
            let login = self.company_user(actor, *user).await?;
            if login != owner && !rows.iter().any(|(j, _)| *j == login) {
                rows.push((login, role.affiliation().to_owned()));
            }
        }
        let id = random_id();
        let jid = format!("{id}@{}", self.muc_domain);
        self.store
            .create_room(&NewRoom {
                jid: &jid,
                name: name.trim(),
                description,
                company_id: Some(actor.user.company_id.0),
                owner: &owner,
                members: &rows,
                now: now_ms(),
            })
            .await?;
        for (member, affiliation) in rows {
            self.emit(BubbleEvent::Affiliation {
                room: jid.clone(),
                jid: member,
                affiliation: Some(affiliation),
                invited: true,
                by: owner.clone(),
            });
        }
        self.get(actor, &id).await
    }

    /// The login of `user` when it is in the caller's company (a superadmin may add anyone).
    async fn company_user(&self, actor: &Actor, user: UserId) -> Result<String, Error> {
        let u = self
            .store
            .user(user)
            .await?
            .filter(|u| {
                u.company_id == actor.user.company_id || actor.user.role == Role::Superadmin
            })
            .ok_or(Error::NotFound("user"))?;
        Ok(u.login.as_str().to_owned())
    }

    /// Renames a bubble or changes its description (owner or company admin).
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        up: &BubbleUpdate,
    ) -> Result<Bubble, Error> {
        let (row, mine) = self.load(actor, id).await?;
        if !Self::may_own(actor, &row, mine) {
            return Err(Error::Forbidden);
        }
        if let Some(n) = &up.name {
            check_text("name", n, MAX_NAME, false)?;
        }
        if let Some(d) = &up.description {
            check_text("description", d, MAX_DESCRIPTION, true)?;
        }
        self.store
            .update_room(
                &row.jid,
                up.name.as_deref().map(str::trim),
                up.description.as_deref(),
            )
            .await?;
        self.get(actor, id).await
    }

    /// Deletes a bubble, its members and its archive (owner or company admin); occupants are
    /// told the room was destroyed.
    pub async fn delete(&self, actor: &Actor, id: &str) -> Result<(), Error> {
        let (row, mine) = self.load(actor, id).await?;
        if !Self::may_own(actor, &row, mine) {
            return Err(Error::Forbidden);
        }
        if !self.store.delete_room(&row.jid).await? {
            return Err(Error::NotFound("bubble"));
        }
        self.emit(BubbleEvent::Destroyed {
            room: row.jid,
            reason: None,
        });
        Ok(())
    }

    /// The members of a bubble with their roles (outcasts are not listed).
    pub async fn members(&self, actor: &Actor, id: &str) -> Result<Vec<BubbleMember>, Error> {
        let (row, _) = self.load(actor, id).await?;
        Ok(self
            .store
            .room_members(&row.jid)
            .await?
            .into_iter()
            .filter_map(|m| {
                let role = BubbleRole::from_affiliation(&m.affiliation)?;
                Some(BubbleMember {
                    user_id: m.user_id.map(UserId),
                    display_name: m.display_name.unwrap_or_default(),
                    jid: m.jid,
                    role,
                })
            })
            .collect())
    }

    /// Adds a member or changes their role. Moderators add members and moderators; only an
    /// owner (or company admin) grants or takes away ownership.
    pub async fn set_member(
        &self,
        actor: &Actor,
        id: &str,
        user: UserId,
        role: BubbleRole,
    ) -> Result<BubbleMember, Error> {
        let (row, mine) = self.load(actor, id).await?;
        if !Self::may_manage(actor, &row, mine) {
            return Err(Error::Forbidden);
        }
        let login = self.company_user(actor, user).await?;
        let before = self
            .store
            .room_affiliation(&row.jid, &login)
            .await?
            .as_deref()
            .and_then(BubbleRole::from_affiliation);
        let touches_owner = role == BubbleRole::Owner || before == Some(BubbleRole::Owner);
        if touches_owner && !Self::may_own(actor, &row, mine) {
            return Err(Error::Forbidden);
        }
        if before == Some(BubbleRole::Owner) && role != BubbleRole::Owner {
            self.keep_an_owner(&row.jid).await?;
        }
        self.store
            .set_room_affiliation(&row.jid, &login, Some(role.affiliation()))
            .await?;
        self.emit(BubbleEvent::Affiliation {
            room: row.jid.clone(),
            jid: login.clone(),
            affiliation: Some(role.affiliation().to_owned()),
            invited: before.is_none(),
            by: actor.user.login.as_str().to_owned(),
        });
        self.members(actor, id)
            .await?
            .into_iter()
            .find(|m| m.jid == login)
            .ok_or(Error::NotFound("member"))
    }

    /// Refuses to take away the last owner.
    async fn keep_an_owner(&self, room: &str) -> Result<(), Error> {
        let owners = self
            .store
            .room_affiliations(room)
            .await?
            .into_iter()
            .filter(|(_, a)| a == "owner")
            .count();
        if owners <= 1 {
            return Err(Error::invalid("role", "a bubble needs at least one owner"));
        }
        Ok(())
    }

    /// Removes a member: moderators remove members, owners anyone, and anyone may leave.
    pub async fn remove_member(&self, actor: &Actor, id: &str, user: UserId) -> Result<(), Error> {
        let (row, mine) = self.load(actor, id).await?;
        let login = if user == actor.user.id {
            actor.user.login.as_str().to_owned()
        } else {
            self.company_user(actor, user).await?
        };
        let before = self
            .store
            .room_affiliation(&row.jid, &login)
            .await?
            .as_deref()
            .and_then(BubbleRole::from_affiliation)
            .ok_or(Error::NotFound("member"))?;
        let allowed = user == actor.user.id
            || (before == BubbleRole::Owner && Self::may_own(actor, &row, mine))
            || (before < BubbleRole::Owner && Self::may_manage(actor, &row, mine));
        if !allowed {
            return Err(Error::Forbidden);
        }
        if before == BubbleRole::Owner {
            self.keep_an_owner(&row.jid).await?;
        }
        self.store
            .set_room_affiliation(&row.jid, &login, None)
            .await?;
        self.emit(BubbleEvent::Affiliation {
            room: row.jid,
            jid: login,
            affiliation: None,
            invited: false,
            by: actor.user.login.as_str().to_owned(),
        });
        Ok(())
    }
}
