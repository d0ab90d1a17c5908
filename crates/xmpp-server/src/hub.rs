//! State shared by every session and the delivery rules of RFC 6121 §8.5 (bare and full JID,
//! priorities), XEP-0280 carbons, presence fan-out and roster pushes on contact changes.
use crate::archive::ArchiveWriter;
use crate::config::XmppConfig;
use crate::router::{Resource, Router, SessionCmd, SessionHandle};
use crate::util::{bare_of, el, ns, set, Jid};
use iris_model::{Contact, ContactState, UserId};
use iris_services::{Accounts, Bubbles, Contacts};
use iris_store::Store;
use iris_xmpp::Element;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// Everything a session needs from the server.
pub(crate) struct Hub {
    pub domain: String,
    /// `<muc_subdomain>.<domain>`.
    pub muc_domain: String,
    /// XEP-0045 room occupants.
    pub rooms: crate::muc::Rooms,
    /// Room IQ extensions (conference signalling).
    pub extensions: crate::extension::Extensions,
    /// XEP-0163 caps cache and queries in flight.
    pub pep: crate::pep::PepState,
    pub config: XmppConfig,
    pub core: Arc<iris_xmpp::Config>,
    pub router: Arc<dyn Router>,
    pub store: Store,
    pub accounts: Accounts,
    pub contacts: Contacts,
    pub bubbles: Bubbles,
    pub archive: ArchiveWriter,
    pub tls: Arc<rustls::ServerConfig>,
    /// XEP-0198 ids of resumable sessions.
    pub resumable: Mutex<HashMap<String, SessionHandle>>,
    /// XEP-0191 block lists, loaded on first use.
    blocklists: Mutex<HashMap<String, Arc<HashSet<String>>>>,
    pub shutdown: watch::Receiver<bool>,
    pub sessions: TaskTracker,
    pub started: std::time::Instant,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Resolves once `rx` turns true (the guard is not held across an await).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The message `type`, `normal` when absent (RFC 6121 §5.2.2).
pub(crate) fn message_type(msg: &Element) -> &str {
    msg.attr("type").unwrap_or("normal")
}

fn with_to(stanza: &Element, to: &str) -> Element {
    let mut s = stanza.clone();
    set(&mut s, "to", to);
    s
}

impl Hub {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        domain: String,
        config: XmppConfig,
        core: Arc<iris_xmpp::Config>,
        router: Arc<dyn Router>,
        store: Store,
        accounts: Accounts,
        contacts: Contacts,
        bubbles: Bubbles,
        archive: ArchiveWriter,
        tls: Arc<rustls::ServerConfig>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let muc_domain = format!("{}.{}", config.muc_subdomain, domain);
        Hub {
            domain,
            muc_domain,
            rooms: crate::muc::Rooms::default(),
            extensions: crate::extension::Extensions::default(),
            pep: crate::pep::PepState::default(),
            config,
            core,
            router,
            store,
            accounts,
            contacts,
            bubbles,
            archive,
            tls,
            resumable: Mutex::new(HashMap::new()),
            blocklists: Mutex::new(HashMap::new()),
            shutdown,
            sessions: TaskTracker::new(),
            started: std::time::Instant::now(),
        }
    }

    /// The account whose login is `bare`, when there is one (lookup failures read as none).
    pub async fn user_by_bare(&self, bare: &str) -> Option<iris_model::User> {
        let login = iris_model::Login::parse(bare).ok()?;
        self.store
            .user_by_login(&login)
            .await
            .ok()
            .flatten()
            .map(|(u, _)| u)
    }

    pub fn is_local_user(&self, jid: &Jid) -> bool {
        jid.local.is_some() && jid.domain == self.domain
    }

    pub fn resumable_insert(&self, id: String, handle: SessionHandle) {
        lock(&self.resumable).insert(id, handle);
    }

    pub fn resumable_get(&self, id: &str) -> Option<SessionHandle> {
        lock(&self.resumable).get(id).cloned()
    }

    pub fn resumable_remove(&self, id: &str, conn: u64) {
        let mut m = lock(&self.resumable);
        if m.get(id).is_some_and(|h| h.conn == conn) {
            m.remove(id);
        }
    }

    /// `owner`'s block list (XEP-0191).
    pub async fn blocklist(
        &self,
        owner: &str,
    ) -> Result<Arc<HashSet<String>>, iris_store::StoreError> {
        if let Some(b) = lock(&self.blocklists).get(owner) {
            return Ok(b.clone());
        }
        let list: HashSet<String> = self.store.blocklist(owner).await?.into_iter().collect();
        let list = Arc::new(list);
        lock(&self.blocklists).insert(owner.to_owned(), list.clone());
        Ok(list)
    }

    /// XEP-0191 §3.4: no presence flows between two users when either blocks the other.
    pub async fn blocked_either_way(&self, a: &str, b: &str) -> bool {
        let ab = self
            .blocklist(a)
            .await
            .map(|l| l.contains(b))
            .unwrap_or(false);
        ab || self
            .blocklist(b)
            .await
            .map(|l| l.contains(a))
            .unwrap_or(false)
    }

    pub fn forget_blocklist(&self, owner: &str) {
        lock(&self.blocklists).remove(owner);
    }

    /// Resources of `bare` that are available with a non-negative priority.
    pub fn available(&self, bare: &str) -> Vec<Resource> {
        self.router
            .resources(bare)
            .into_iter()
            .filter(|r| r.presence.is_some() && r.priority >= 0)
            .collect()
    }

    /// Sends a stanza to one full JID; false when it is not bound.
    pub fn send_full(&self, full: &str, stanza: Element) -> bool {
        match self.router.resource(full) {
            Some(r) => r.handle.send(SessionCmd::Stanza(Box::new(stanza))),
            None => false,
        }
    }

    /// Whether a message of this type to `to` would reach a session now.
    pub fn deliverable(&self, to: &Jid, kind: &str) -> bool {
        let bare = to.bare();
        if let Some(res) = &to.resource {
            if self.router.resource(&format!("{bare}/{res}")).is_some() {
                return true;
            }
            if !matches!(kind, "chat" | "normal") {
                return false;
            }
        }
        !self.available(&bare).is_empty()
    }

    /// RFC 6121 §8.5.2/§8.5.3: delivers a message to a local user, with XEP-0280 `received`
    /// copies. Returns how many sessions got it.
    pub fn deliver_message(&self, msg: &Element, to: &Jid) -> usize {
        let bare = to.bare();
        let kind = message_type(msg);
        if let Some(res) = &to.resource {
            let full = format!("{bare}/{res}");
            if let Some(r) = self.router.resource(&full) {
                r.handle.send(SessionCmd::Stanza(Box::new(msg.clone())));
                if carbon_eligible(msg) {
                    for other in self.router.resources(&bare) {
                        if other.full != full && other.carbons {
                            let copy = carbon(&bare, &other.full, "received", msg);
                            other.handle.send(SessionCmd::Stanza(Box::new(copy)));
                        }
                    }
                }
                return 1;
            }
            if !matches!(kind, "chat" | "normal") {
                return 0;
            }
        }
        let targets = self.available(&bare);
        for r in &targets {
            r.handle.send(SessionCmd::Stanza(Box::new(msg.clone())));
        }
        targets.len()
    }

    /// XEP-0280 `sent` copies of a message to the sender's other resources with carbons on.
    pub fn carbons_sent(&self, sender_full: &str, msg: &Element) {
        if !carbon_eligible(msg) {
            return;
        }
        let bare = bare_of(sender_full);
        for r in self.router.resources(bare) {
            if r.full != sender_full && r.carbons {
                r.handle.send(SessionCmd::Stanza(Box::new(carbon(
                    bare, &r.full, "sent", msg,
                ))));
            }
        }
    }

    /// Sends `presence` to every available resource of each bare JID in `to`.
    pub fn fan_out_presence(&self, presence: &Element, to: &[String]) {
        for bare in to {
            for r in self.router.resources(bare) {
                if r.presence.is_some() {
                    r.handle
                        .send(SessionCmd::Stanza(Box::new(with_to(presence, &r.full))));
                }
            }
        }
    }

    /// Bare JIDs of `user`'s accepted contacts (presence subscribers, `both`).
    pub async fn accepted_contacts(&self, user: UserId) -> Vec<String> {
        match self.store.contacts(user).await {
            Ok(list) => list
                .into_iter()
                .filter(|c| c.state == ContactState::Accepted)
                .map(|c| c.login.as_str().to_owned())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "contacts unavailable for presence");
                Vec::new()
            }
        }
    }

    /// Roster pushes (RFC 6121 §2.1.6) to `owner`'s sessions for their entry of `other`, with
    /// the presence exchange the new state implies when `presence`.
    async fn push_roster_change(
        &self,
        owner: UserId,
        other: UserId,
        presence: bool,
    ) -> Result<(), iris_store::StoreError> {
        let Some(other_user) = self.store.user(other).await? else {
            return Ok(());
        };
        self.push_roster_entry(owner, other, other_user.login.as_str(), presence)
            .await
    }

    /// [`Self::push_roster_change`] for `other` known by its login (which may be gone).
    async fn push_roster_entry(
        &self,
        owner: UserId,
        other: UserId,
        other_bare: &str,
        presence: bool,
    ) -> Result<(), iris_store::StoreError> {
        let Some(owner_user) = self.store.user(owner).await? else {
            return Ok(());
        };
        let owner_bare = owner_user.login.as_str().to_owned();
        let resources = self.router.resources(&owner_bare);
        if resources.is_empty() {
            return Ok(());
        }
        // the item and the roster version (RFC 6121 §2.6) from one read of the list
        let contacts = self.store.contacts(owner).await?;
        let entry = contacts.iter().find(|c| c.user_id == other);
        let state = entry.map(|c| c.state);
        let ver = crate::roster::version(&crate::roster::items(&contacts));
        let item = roster_item(other_bare, entry);
        for r in &resources {
            let mut query = el("query", ns::ROSTER, &[("ver", &ver)]);
            query.append_child(item.clone());
            let mut iq = el(
                "iq",
                ns::CLIENT,
                &[
                    ("type", "set"),
                    ("id", &crate::util::random_id()),
                    ("to", &r.full),
                ],
            );
            iq.append_child(query);
            r.handle.send(SessionCmd::Stanza(Box::new(iq)));
        }
        if !presence {
            return Ok(());
        }
        match state {
            Some(ContactState::InvitationReceived) => {
                let p = el(
                    "presence",
                    ns::CLIENT,
                    &[("type", "subscribe"), ("from", other_bare)],
                );
                self.fan_out_presence(&p, std::slice::from_ref(&owner_bare));
            }
            Some(ContactState::Accepted) => {
                for theirs in self.router.resources(other_bare) {
                    if let Some(p) = theirs.presence {
                        self.fan_out_presence(&p, std::slice::from_ref(&owner_bare));
                    }
                }
            }
            None | Some(ContactState::InvitationSent) => {
                for theirs in self.router.resources(other_bare) {
                    if theirs.presence.is_some() {
                        let p = el(
                            "presence",
                            ns::CLIENT,
                            &[("type", "unavailable"), ("from", &theirs.full)],
                        );
                        self.fan_out_presence(&p, std::slice::from_ref(&owner_bare));
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs until shutdown: turns every [`iris_services::contacts::ContactChanged`] into
    /// roster pushes for both users, a user's new display name into roster pushes for their
    /// contacts (RFC 6121 §2.6: the name is part of the versioned roster), and a deleted
    /// account into `remove` pushes for its former contacts.
    pub async fn roster_pushes(self: Arc<Self>) {
        use tokio::sync::broadcast::error::RecvError;
        let mut changes = self.contacts.subscribe();
        let mut renames = self.accounts.subscribe_renames();
        let mut deletions = self.accounts.subscribe_deletions();
        let mut stop = self.shutdown.clone();
        loop {
            // (owner, other, whether the presence exchange changes too)
            let pushes: Vec<(UserId, UserId, bool)> = tokio::select! {
                c = changes.recv() => match c {
                    // labels (name, groups) are the owner's alone: no presence change
                    Ok(c) if c.labels_only => vec![(c.a, c.b, false)],
                    Ok(c) => vec![(c.a, c.b, true), (c.b, c.a, true)],
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "roster pushes lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                r = renames.recv() => match r {
                    Ok(user) => match self.store.contacts(user).await {
                        Ok(list) => list.into_iter().map(|c| (c.user_id, user, false)).collect(),
                        Err(e) => {
                            tracing::warn!(error = %e, "contacts unavailable for a rename push");
                            continue;
                        }
                    },
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "rename pushes lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                d = deletions.recv() => match d {
                    // RFC 6121 §2.5.3-style removal: each former contact's resources get a
                    // `remove` push (and the account's unavailable presence, if online)
                    Ok(gone) => {
                        for owner in gone.contacts {
                            let pushed = self
                                .push_roster_entry(owner, gone.id, gone.login.as_str(), true)
                                .await;
                            if let Err(e) = pushed {
                                tracing::warn!(error = %e, "roster push failed");
                            }
                        }
                        continue;
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "deletion pushes lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = stopped(&mut stop) => return,
            };
            for (owner, other, presence) in pushes {
                if let Err(e) = self.push_roster_change(owner, other, presence).await {
                    tracing::warn!(error = %e, "roster push failed");
                }
            }
        }
    }
}

/// A `jabber:iq:roster` item for `owner`'s entry of a contact (RFC 6121 §2.1.2): accepted is
/// `both`, a sent invitation `none` + `ask='subscribe'`, a received one `none`, no entry
/// `remove`. The name is the owner's own name for the contact, else the contact's display
/// name; the owner's groups follow as `<group/>` children.
pub(crate) fn roster_item(jid: &str, entry: Option<&Contact>) -> Element {
    let mut attrs = vec![("jid", jid)];
    let Some(entry) = entry else {
        attrs.push(("subscription", "remove"));
        return el("item", ns::ROSTER, &attrs);
    };
    match entry.state {
        ContactState::Accepted => attrs.push(("subscription", "both")),
        ContactState::InvitationSent => {
            attrs.push(("subscription", "none"));
            attrs.push(("ask", "subscribe"));
        }
        ContactState::InvitationReceived => attrs.push(("subscription", "none")),
    }
    let name = entry.name.as_deref().unwrap_or(&entry.display_name);
    if !name.is_empty() {
        attrs.push(("name", name));
    }
    let mut item = el("item", ns::ROSTER, &attrs);
    for group in &entry.groups {
        item.append_child(
            Element::builder("group", ns::ROSTER)
                .append(group.as_str())
                .build(),
        );
    }
    item
}

/// XEP-0280 §6: chat messages (and normal ones with a body) are copied unless marked
/// `<private/>` or `<no-copy/>`.
fn carbon_eligible(msg: &Element) -> bool {
    let kind = message_type(msg);
    let eligible =
        kind == "chat" || (kind == "normal" && msg.get_child("body", ns::CLIENT).is_some());
    eligible && !msg.has_child("private", ns::CARBONS) && !msg.has_child("no-copy", ns::HINTS)
}

fn carbon(from_bare: &str, to_full: &str, kind: &str, msg: &Element) -> Element {
    let mut forwarded = el("forwarded", ns::FORWARD, &[]);
    forwarded.append_child(msg.clone());
    let mut wrapper = el(kind, ns::CARBONS, &[]);
    wrapper.append_child(forwarded);
    let mut m = el(
        "message",
        ns::CLIENT,
        &[
            ("from", from_bare),
            ("to", to_full),
            ("type", message_type(msg)),
        ],
    );
    m.append_child(wrapper);
    m
}
