//! Contacts: invitations between users, answered by accept or decline, and removal. Both
//! sides are written together. The XMPP roster is a view of these rows.
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
        let _ = self.changes.send(ContactChanged { a, b });
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

    async fn entry(&self, me: UserId, other: UserId) -> Result<Contact, Error> {
        self.store
            .contacts(me)
            .await?
            .into_iter()
            .find(|c| c.user_id == other)
            .ok_or(Error::NotFound("contact"))
    }
}
