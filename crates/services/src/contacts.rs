//! Contacts: invitations between users, answered by accept or decline, and removal. Both
//! sides are written together; each side's own labels (name, groups) for the other are its
//! alone. The XMPP roster is a view of these rows.
use crate::clock::now_ms;
use crate::{Actor, Error};
use iris_model::{Contact, ContactState, Login, UserId};
use iris_store::Store;
use tokio::sync::broadcast;

/// A change to the contact pair (a, b): both users' rosters must be refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactChanged {
    pub a: UserId,
    pub b: UserId,
    /// Only `a`'s own labels (name, groups) for `b` changed: `b`'s entry of `a` is as it was.
    pub labels_only: bool,
}

/// The contacts service; cheap to clone.
#[derive(Clone)]
pub struct Contacts {
    store: Store,
    changes: broadcast::Sender<ContactChanged>,
}

impl Contacts {
    pub fn new(store: Store) -> Self {
        Contacts {
            store,
            changes: broadcast::channel(1024).0,
        }
    }

    /// Subscribes to contact changes (for roster pushes).
    pub fn subscribe(&self) -> broadcast::Receiver<ContactChanged> {
        self.changes.subscribe()
    }

    fn changed(&self, a: UserId, b: UserId) {
        // No subscriber is fine: nobody is online to push to.
        let _ = self.changes.send(ContactChanged {
            a,
            b,
            labels_only: false,
        });
    }

    /// The actor's contact list.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Contact>, Error> {
        Ok(self.store.contacts(actor.user.id).await?)
    }

    /// Invites the user with `login`. Inviting someone who already invited you accepts.
    pub async fn invite(&self, actor: &Actor, login: &Login) -> Result<Contact, Error> {
        let me = actor.user.id;
        let (other, _) = self
            .store
            .user_by_login(login)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if other.id == me {
            return Err(Error::invalid("login", "you cannot invite yourself"));
        }
        match self.store.contact_state(me, other.id).await? {
            Some(ContactState::Accepted) => return Err(Error::Conflict("contact")),
            Some(ContactState::InvitationReceived) => return self.accept(actor, other.id).await,
            Some(ContactState::InvitationSent) | None => {}
        }
        self.store
            .set_contact_pair(
                me,
                other.id,
                ContactState::InvitationSent,
                ContactState::InvitationReceived,
                now_ms(),
            )
            .await?;
        self.changed(me, other.id);
        self.entry(me, other.id).await
    }

    /// Accepts a received invitation.
    pub async fn accept(&self, actor: &Actor, other: UserId) -> Result<Contact, Error> {
        let me = actor.user.id;
        match self.store.contact_state(me, other).await? {
            Some(ContactState::InvitationReceived) => {}
            Some(ContactState::Accepted) => return self.entry(me, other).await,
            _ => return Err(Error::NotFound("invitation")),
        }
        self.store
            .set_contact_pair(
                me,
                other,
                ContactState::Accepted,
                ContactState::Accepted,
                now_ms(),
            )
            .await?;
        self.changed(me, other);
        self.entry(me, other).await
    }

    /// Declines a received invitation (or withdraws a sent one).
    pub async fn decline(&self, actor: &Actor, other: UserId) -> Result<(), Error> {
        let me = actor.user.id;
        match self.store.contact_state(me, other).await? {
            Some(ContactState::InvitationReceived | ContactState::InvitationSent) => {}
            _ => return Err(Error::NotFound("invitation")),
        }
        self.store.delete_contact_pair(me, other).await?;
        self.changed(me, other);
        Ok(())
    }

    /// Removes a contact in both directions.
    pub async fn remove(&self, actor: &Actor, other: UserId) -> Result<(), Error> {
        if !self.store.delete_contact_pair(actor.user.id, other).await? {
            return Err(Error::NotFound("contact"));
        }
        self.changed(actor.user.id, other);
        Ok(())
    }

    /// Sets the actor's own name and roster groups for a contact (an accepted contact or a
    /// pending invitation either way); the other user's entry is untouched.
    pub async fn relabel(
        &self,
        actor: &Actor,
        other: UserId,
        name: Option<&str>,
        groups: &[String],
    ) -> Result<Contact, Error> {
        let (name, groups) = normalize_labels(name, groups)?;
        let me = actor.user.id;
        if !self
            .store
            .set_contact_labels(me, other, name.as_deref(), &groups, now_ms())
            .await?
        {
            return Err(Error::NotFound("contact"));
        }
        let _ = self.changes.send(ContactChanged {
            a: me,
            b: other,
            labels_only: true,
        });
        self.entry(me, other).await
    }

    async fn entry(&self, me: UserId, other: UserId) -> Result<Contact, Error> {
        self.store
            .contact(me, other)
            .await?
            .ok_or(Error::NotFound("contact"))
    }
}

/// Most roster groups per contact.
pub const MAX_GROUPS: usize = 32;
/// Longest contact name or group name, in characters.
pub const MAX_LABEL_CHARS: usize = 256;

/// Checks and normalises an owner's labels for a contact: the name is trimmed (empty means
/// none); groups are trimmed, must not be empty (RFC 6121 §2.1.2.5) nor hold control
/// characters, and duplicates are dropped. The error says which part is wrong.
pub fn normalize_labels(
    name: Option<&str>,
    groups: &[String],
) -> Result<(Option<String>, Vec<String>), Error> {
    let valid = |field: &'static str, what: &str, s: &str| -> Result<(), Error> {
        if s.chars().count() > MAX_LABEL_CHARS {
            let why = format!("{what} is longer than {MAX_LABEL_CHARS} characters");
            return Err(Error::invalid(field, why));
        }
        if s.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                format!("{what} holds a control character"),
            ));
        }
        Ok(())
    };
    let name = match name.map(str::trim) {
        Some(n) if !n.is_empty() => {
            valid("name", "the name", n)?;
            Some(n.to_owned())
        }
        _ => None,
    };
    if groups.len() > MAX_GROUPS {
        let why = format!("more than {MAX_GROUPS} groups");
        return Err(Error::invalid("groups", why));
    }
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for g in groups {
        let g = g.trim();
        if g.is_empty() {
            return Err(Error::invalid("groups", "a group name is empty"));
        }
        valid("groups", "a group name", g)?;
        if !out.iter().any(|o| o == g) {
            out.push(g.to_owned());
        }
    }
    Ok((name, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_deduplicated_and_bounded() {
        let groups = vec![" Work ".to_owned(), "Work".to_owned(), "Friends".to_owned()];
        let (name, groups) = normalize_labels(Some("  Bob  "), &groups).expect("valid");
        assert_eq!(name.as_deref(), Some("Bob"));
        assert_eq!(groups, ["Work", "Friends"]);
        assert_eq!(normalize_labels(Some("   "), &[]).expect("valid").0, None);
        assert!(normalize_labels(None, &[" ".to_owned()]).is_err());
        assert!(normalize_labels(Some("a\u{7}b"), &[]).is_err());
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| i.to_string()).collect();
        assert!(normalize_labels(None, &many).is_err());
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        assert!(normalize_labels(Some(&long), &[]).is_err());
    }
}
