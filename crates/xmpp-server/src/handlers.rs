//! What inbound stanzas mean: RFC 6121 messages, presence and roster, and the IQ services
//! (disco XEP-0030, ping XEP-0199, vCard XEP-0054, private XML XEP-0049, blocking XEP-0191,
//! carbons XEP-0280, MAM XEP-0313, last activity XEP-0012, version XEP-0092).
use crate::error::Failure;
use crate::hub::message_type;
use crate::session::{Handled, Session};
use crate::util::{el, format_time, now_ms, ns, parse_time, random_id, set, text_el, Jid};
use futures_util::future::{BoxFuture, FutureExt};
use iris_model::{ContactState, Login, UserId};
use iris_services::Actor;
use iris_store::{ArchiveQuery, ArchiveRow, OfflineRow};
use iris_xmpp::wire::{element_to_string, iq_result};
use iris_xmpp::Element;
use tokio::sync::oneshot;

/// Adds an XEP-0203 `<delay/>` stamp.
pub(crate) fn add_delay(msg: &mut Element, from: &str, at_ms: i64) {
    if !msg.has_child("delay", ns::DELAY) {
        msg.append_child(el(
            "delay",
            ns::DELAY,
            &[("from", from), ("stamp", &format_time(at_ms))],
        ));
    }
}

fn ready() -> BoxFuture<'static, Handled> {
    futures_util::future::ready(Handled::Done).boxed()
}

/// Waits for the archive commit of `stanza`.
fn committed(rx: oneshot::Receiver<bool>, stanza: Element) -> BoxFuture<'static, Handled> {
    async move {
        match rx.await {
            Ok(true) => Handled::Done,
            _ => Handled::Failed(stanza),
        }
    }
    .boxed()
}

/// XEP-0334 / XEP-0313 §5.1.1: messages with a body (or marked `<store/>`) are archived unless
/// marked `<no-store/>` or `<no-permanent-store/>`.
fn archivable(msg: &Element) -> bool {
    if msg.has_child("no-store", ns::HINTS) || msg.has_child("no-permanent-store", ns::HINTS) {
        return false;
    }
    matches!(message_type(msg), "chat" | "normal")
        && (msg.has_child("body", ns::CLIENT) || msg.has_child("store", ns::HINTS))
}

pub(crate) fn field_value<'a>(form: &'a Element, var: &str) -> Option<String> {
    form.children()
        .find(|f| f.name() == "field" && f.attr("var") == Some(var))
        .and_then(|f: &'a Element| f.get_child("value", ns::DATA))
        .map(Element::text)
}

impl Session {
    fn actor(&self) -> Option<Actor> {
        self.user.clone().map(|user| Actor {
            user,
            session_id: format!("xmpp:{}", self.stream.stream_id()),
        })
    }

    fn my_full(&self) -> String {
        self.full.clone().unwrap_or_default()
    }

    fn reply(&mut self, iq: &Element, payload: Option<Element>) {
        let _ = self.stream.send_stanza(&iq_result(iq, payload));
    }

    /// Handles one inbound stanza; the future resolves when it is durably handled.
    pub(crate) async fn handle_stanza(&mut self, stanza: Element) -> BoxFuture<'static, Handled> {
        let result = match stanza.name() {
            "message" => self.message(&stanza).await,
            "presence" => self.presence(&stanza).await.map(|()| None),
            "iq" => self.iq(&stanza).await.map(|()| None),
            _ => Err(Failure::BadRequest),
        };
        match result {
            Ok(Some(rx)) => committed(rx, stanza),
            Ok(None) => ready(),
            Err(f) => {
                if !matches!(f, Failure::Service(_) | Failure::Store(_))
                    || stanza.name() != "presence"
                {
                    if let Failure::Store(e) = &f {
                        tracing::warn!(error = %e, "stanza failed on the database");
                    }
                    self.send_failure(&stanza, &f);
                }
                ready()
            }
        }
    }

    // ---- messages ------------------------------------------------------------------------

    async fn message(&mut self, msg: &Element) -> Result<Option<oneshot::Receiver<bool>>, Failure> {
        let to = match msg.attr("to") {
            Some(t) => Jid::parse(t).ok_or(Failure::BadRequest)?,
            None => Jid::parse(&self.bare).ok_or(Failure::BadRequest)?,
        };
        if to.domain == self.hub.muc_domain && to.local.is_some() {
            return self.muc_message(msg, &to).await;
        }
        if !self.hub.is_local_user(&to) {
            return Err(Failure::Unavailable);
        }
        let to_bare = to.bare();
        let kind = message_type(msg).to_owned();
        if kind == "groupchat" {
            return Err(Failure::Unavailable);
        }
        // XEP-0191: the sender blocked the recipient, or the recipient blocked the sender
        if self.hub.blocklist(&self.bare).await?.contains(&to_bare) {
            return Err(Failure::Forbidden);
        }
        if self.hub.blocklist(&to_bare).await?.contains(&self.bare) {
            return Err(Failure::Unavailable);
        }
        let exists = match Login::parse(&to_bare) {
            Ok(l) => self.hub.store.user_by_login(&l).await?.is_some(),
            Err(_) => false,
        };
        if !exists {
            return Err(Failure::Unavailable);
        }
        let sender_full = self.my_full();
        // XEP-0359 §3.1: stanza ids by our JIDs are ours to set, never the client's
        let mut msg = msg.clone();
        while msg.remove_child("stanza-id", ns::SID).is_some() {}
        if kind == "error" || !archivable(&msg) {
            self.hub.deliver_message(&msg, &to);
            self.hub.carbons_sent(&sender_full, &msg);
            return Ok(None);
        }
        let now = now_ms();
        let mut theirs = msg.clone();
        theirs.append_child(el(
            "stanza-id",
            ns::SID,
            &[("by", &to_bare), ("id", &random_id())],
        ));
        let mut archive = Vec::new();
        let serialise = |e: &Element| element_to_string(e).ok_or(Failure::BadRequest);
        archive.push(ArchiveRow {
            owner: to_bare.clone(),
            stanza_id: theirs
                .get_child("stanza-id", ns::SID)
                .and_then(|s| s.attr("id"))
                .unwrap_or_default()
                .to_owned(),
            peer: self.bare.clone(),
            created_at: now,
            stanza: serialise(&theirs)?,
        });
        let mut mine = msg.clone();
        if to_bare != self.bare {
            let id = random_id();
            mine.append_child(el("stanza-id", ns::SID, &[("by", &self.bare), ("id", &id)]));
            archive.push(ArchiveRow {
                owner: self.bare.clone(),
                stanza_id: id,
                peer: to_bare.clone(),
                created_at: now,
                stanza: serialise(&mine)?,
            });
        }
        let mut offline = Vec::new();
        let live = self.hub.deliverable(&to, &kind);
        if !live {
            let mut stored = theirs.clone();
            add_delay(&mut stored, &self.hub.domain, now);
            offline.push(OfflineRow {
                owner: to_bare.clone(),
                created_at: now,
                stanza: serialise(&stored)?,
            });
        }
        let hub = self.hub.clone();
        let after = Box::new(move || {
            if live {
                hub.deliver_message(&theirs, &to);
            }
            hub.carbons_sent(&sender_full, &mine);
        });
        Ok(Some(self.hub.archive.submit(archive, offline, after).await))
    }

    // ---- presence ------------------------------------------------------------------------

    /// Sends a presence from this session to its accepted contacts and own resources.
    pub(crate) async fn broadcast_presence(&mut self, presence: &Element) {
        let Some(user) = &self.user else { return };
        let contacts = self.hub.accepted_contacts(user.id).await;
        let mut targets = Vec::with_capacity(contacts.len() + 1);
        for c in contacts {
            if !self.hub.blocked_either_way(&self.bare, &c).await {
                targets.push(c);
            }
        }
        targets.push(self.bare.clone());
        self.hub.fan_out_presence(presence, &targets);
    }

    async fn presence(&mut self, p: &Element) -> Result<(), Failure> {
        let kind = p.attr("type").map(str::to_owned);
        let Some(to) = p.attr("to").map(str::to_owned) else {
            return match kind.as_deref() {
                None => self.available(p).await,
                Some("unavailable") => {
                    self.presence = None;
                    let full = self.my_full();
                    self.hub.router.set_presence(&full, None, 0);
                    self.hub
                        .store
                        .set_last_activity(&self.bare, now_ms(), &status_of(p))
                        .await?;
                    self.broadcast_presence(p).await;
                    Ok(())
                }
                _ => Ok(()),
            };
        };
        let to = Jid::parse(&to).ok_or(Failure::BadRequest)?;
        if to.domain == self.hub.muc_domain && to.local.is_some() {
            return self.muc_presence(p, &to).await;
        }
        if !self.hub.is_local_user(&to) {
            return Ok(());
        }
        let actor = self.actor().ok_or(Failure::Forbidden)?;
        let to_bare = to.bare();
        let other = match Login::parse(&to_bare) {
            Ok(l) => self.hub.store.user_by_login(&l).await?.map(|(u, _)| u),
            Err(_) => None,
        };
        match kind.as_deref() {
            // RFC 6121 §3: subscriptions are Iris contacts
            Some("subscribe") => {
                let Ok(login) = Login::parse(&to_bare) else {
                    return Ok(());
                };
                match self.hub.contacts.invite(&actor, &login).await {
                    Ok(_)
                    | Err(iris_services::Error::Conflict(_) | iris_services::Error::NotFound(_)) => {
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Some("subscribed") => {
                let Some(other) = other else { return Ok(()) };
                match self.hub.contacts.accept(&actor, other.id).await {
                    Ok(_) | Err(iris_services::Error::NotFound(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Some("unsubscribe" | "unsubscribed") => {
                let Some(other) = other else { return Ok(()) };
                match self
                    .hub
                    .store
                    .contact_state(actor.user.id, other.id)
                    .await?
                {
                    Some(ContactState::Accepted) => {
                        self.hub.contacts.remove(&actor, other.id).await?
                    }
                    Some(_) => self.hub.contacts.decline(&actor, other.id).await?,
                    None => {}
                }
                Ok(())
            }
            Some("probe") => Ok(()),
            // directed presence (RFC 6121 §4.6) and presence errors
            _ => {
                match &to.resource {
                    Some(_) => {
                        self.hub.send_full(
                            &format!("{to_bare}/{}", to.resource.as_deref().unwrap_or_default()),
                            p.clone(),
                        );
                    }
                    None => self.hub.fan_out_presence(p, &[to_bare]),
                }
                Ok(())
            }
        }
    }

    /// RFC 6121 §4.2/§4.4: available presence; the first one also probes contacts, delivers
    /// offline messages and pending subscription requests.
    async fn available(&mut self, p: &Element) -> Result<(), Failure> {
        let priority = p
            .get_child("priority", ns::CLIENT)
            .and_then(|e| e.text().trim().parse::<i8>().ok())
            .unwrap_or(0);
        let initial = self.presence.is_none();
        let full = self.my_full();
        let before = self.presence.replace((p.clone(), priority)).map(|(b, _)| b);
        self.hub
            .router
            .set_presence(&full, Some(p.clone()), priority);
        self.broadcast_presence(p).await;
        self.pep_presence(p, before.as_ref()).await;
        if !initial {
            return Ok(());
        }
        let Some(user) = self.user.clone() else {
            return Ok(());
        };
        let contacts = self.hub.store.contacts(user.id).await?;
        for c in &contacts {
            match c.state {
                ContactState::Accepted
                    if !self
                        .hub
                        .blocked_either_way(&self.bare, c.login.as_str())
                        .await =>
                {
                    for r in self.hub.router.resources(c.login.as_str()) {
                        if let Some(mut theirs) = r.presence {
                            set(&mut theirs, "to", &full);
                            let _ = self.stream.send_stanza(&theirs);
                        }
                    }
                }
                ContactState::InvitationReceived => {
                    let s = el(
                        "presence",
                        ns::CLIENT,
                        &[
                            ("type", "subscribe"),
                            ("from", c.login.as_str()),
                            ("to", &full),
                        ],
                    );
                    let _ = self.stream.send_stanza(&s);
                }
                ContactState::InvitationSent | ContactState::Accepted => {}
            }
        }
        if priority >= 0 {
            let offline = self
                .hub
                .store
                .offline_messages(&self.bare, self.hub.config.offline_max)
                .await?;
            // rows already sent and waiting for an acknowledgement are not sent twice
            let sent_upto = self.offline_unacked.last().map(|(id, _)| *id);
            for (id, text) in offline {
                if sent_upto.is_some_and(|s| id <= s) {
                    continue;
                }
                if let Ok(m) = text.parse::<Element>() {
                    let _ = self.stream.send_stanza(&m);
                }
                match self.stream.outbound_counters() {
                    Some((_, sent)) => self.offline_unacked.push((id, sent)),
                    None => self.offline_unflushed = Some(id),
                }
            }
        }
        Ok(())
    }

    // ---- iq ------------------------------------------------------------------------------

    async fn iq(&mut self, iq: &Element) -> Result<(), Failure> {
        let kind = iq.attr("type").unwrap_or_default().to_owned();
        if kind == "result" || kind == "error" {
            if self.pep_caps_answer(iq).await {
                return Ok(());
            }
            // answers to our pushes, or to another client's iq
            if let Some(to) = iq.attr("to").and_then(Jid::parse) {
                if to.resource.is_some() && self.hub.is_local_user(&to) {
                    self.hub
                        .send_full(iq.attr("to").unwrap_or_default(), iq.clone());
                }
            }
            return Ok(());
        }
        if kind != "get" && kind != "set" {
            return Err(Failure::BadRequest);
        }
        let payload = iq.children().next().cloned().ok_or(Failure::BadRequest)?;
        let target = match iq.attr("to") {
            None => None,
            Some(t) => Some(Jid::parse(t).ok_or(Failure::BadRequest)?),
        };
        let to_self_or_server = match &target {
            None => true,
            Some(j) => {
                (j.local.is_none() && j.domain == self.hub.domain && j.resource.is_none())
                    || j.bare() == self.bare && j.resource.is_none()
            }
        };
        if !to_self_or_server {
            let Some(j) = target else {
                return Err(Failure::BadRequest);
            };
            if j.domain == self.hub.muc_domain {
                if let Some(r) = self.room_extension_iq(iq, &payload, &j).await {
                    return r;
                }
                return self.muc_iq(iq, &payload, &j).await;
            }
            if !self.hub.is_local_user(&j) {
                return Err(Failure::Unavailable);
            }
            if j.resource.is_some() {
                // RFC 6121 §8.5.3.1: an iq to a full JID goes to that resource
                if !self
                    .hub
                    .send_full(iq.attr("to").unwrap_or_default(), iq.clone())
                {
                    return Err(Failure::Unavailable);
                }
                return Ok(());
            }
            return self.iq_to_account(iq, &payload, &j.bare()).await;
        }
        let server = target.as_ref().is_some_and(|j| j.local.is_none());
        let pns = payload.ns();
        match (kind.as_str(), payload.name(), pns.as_str()) {
            ("get", "query", ns::ROSTER) => self.roster_get(iq, &payload).await,
            ("set", "query", ns::ROSTER) => self.roster_set(iq, &payload).await,
            (_, "pubsub", _) if !server && crate::pep::is_pubsub(&payload) => {
                let owner = self.bare.clone();
                self.pep_iq(iq, &payload, &owner).await
            }
            ("get", "query", ns::DISCO_INFO) => {
                let info = if server {
                    self.server_info()
                } else {
                    account_info()
                };
                self.reply(iq, Some(info));
                Ok(())
            }
            ("get", "query", ns::DISCO_ITEMS) if !server => {
                let owner = self.bare.clone();
                self.pep_disco_items(iq, &owner).await
            }
            ("get", "query", ns::DISCO_ITEMS) => {
                let mut items = el("query", ns::DISCO_ITEMS, &[]);
                if server {
                    let muc = self.hub.muc_domain.clone();
                    items.append_child(el(
                        "item",
                        ns::DISCO_ITEMS,
                        &[("jid", &muc), ("name", "Bubbles")],
                    ));
                }
                self.reply(iq, Some(items));
                Ok(())
            }
            ("get", "ping", ns::PING) => {
                self.reply(iq, None);
                Ok(())
            }
            ("get", "vCard", ns::VCARD) => {
                let bare = self.bare.clone();
                self.vcard_get(iq, &bare).await
            }
            ("set", "vCard", ns::VCARD) if !server => {
                let xml = element_to_string(&payload).ok_or(Failure::BadRequest)?;
                self.hub
                    .store
                    .set_private_xml(&self.bare, ns::VCARD, &xml)
                    .await?;
                self.reply(iq, None);
                if let Err(e) = self.vcard_to_avatar(&payload).await {
                    tracing::warn!(error = %e, "PEP avatar not updated from the vCard");
                }
                Ok(())
            }
            (_, "query", ns::PRIVATE) => self.private(iq, &payload, kind == "set").await,
            ("get", "blocklist", ns::BLOCKING) => {
                let mut list = el("blocklist", ns::BLOCKING, &[]);
                for jid in self.hub.blocklist(&self.bare).await?.iter() {
                    list.append_child(el("item", ns::BLOCKING, &[("jid", jid)]));
                }
                self.reply(iq, Some(list));
                Ok(())
            }
            ("set", "block" | "unblock", ns::BLOCKING) => self.block(iq, &payload).await,
            ("set", "enable" | "disable", ns::CARBONS) => {
                self.carbons = payload.name() == "enable";
                self.hub.router.set_carbons(&self.my_full(), self.carbons);
                self.reply(iq, None);
                Ok(())
            }
            ("set", "query", ns::MAM) => {
                let owner = self.bare.clone();
                self.mam_query_for(iq, &payload, owner).await
            }
            ("get", "query", ns::MAM) => {
                let mut q = el("query", ns::MAM, &[]);
                let mut x = el("x", ns::DATA, &[("type", "form")]);
                let mut form_type = el(
                    "field",
                    ns::DATA,
                    &[("var", "FORM_TYPE"), ("type", "hidden")],
                );
                form_type.append_child(text_el("value", ns::DATA, ns::MAM));
                x.append_child(form_type);
                for var in ["with", "start", "end"] {
                    x.append_child(el("field", ns::DATA, &[("var", var)]));
                }
                q.append_child(x);
                self.reply(iq, Some(q));
                Ok(())
            }
            ("get", "query", ns::LAST) if server => {
                let secs = self.hub.started.elapsed().as_secs().to_string();
                self.reply(iq, Some(el("query", ns::LAST, &[("seconds", &secs)])));
                Ok(())
            }
            ("get", "query", ns::VERSION) if server => {
                let mut q = el("query", ns::VERSION, &[]);
                q.append_child(text_el("name", ns::VERSION, "Iris"));
                q.append_child(text_el("version", ns::VERSION, env!("CARGO_PKG_VERSION")));
                self.reply(iq, Some(q));
                Ok(())
            }
            _ => Err(if server {
                Failure::NotImplemented
            } else {
                Failure::Unavailable
            }),
        }
    }

    /// IQs to another account's bare JID, answered by the server on its behalf.
    async fn iq_to_account(
        &mut self,
        iq: &Element,
        payload: &Element,
        bare: &str,
    ) -> Result<(), Failure> {
        let kind = iq.attr("type").unwrap_or_default();
        let pns = payload.ns();
        match (kind, payload.name(), pns.as_str()) {
            ("get", "vCard", ns::VCARD) => self.vcard_get(iq, bare).await,
            (_, "pubsub", _) if crate::pep::is_pubsub(payload) => {
                self.pep_iq(iq, payload, bare).await
            }
            ("get", "query", ns::DISCO_INFO) => {
                self.reply(iq, Some(account_info()));
                Ok(())
            }
            ("get", "query", ns::DISCO_ITEMS) => self.pep_disco_items(iq, bare).await,
            ("get", "query", ns::LAST) => {
                // XEP-0012 §4: only to those with a presence subscription
                let user = self.user.clone().ok_or(Failure::Forbidden)?;
                if !self
                    .hub
                    .accepted_contacts(user.id)
                    .await
                    .iter()
                    .any(|c| c == bare)
                {
                    return Err(Failure::Forbidden);
                }
                let (secs, status) = if self
                    .hub
                    .router
                    .resources(bare)
                    .iter()
                    .any(|r| r.presence.is_some())
                {
                    (0, String::new())
                } else {
                    match self.hub.store.last_activity(bare).await? {
                        Some((at, status)) => ((now_ms() - at).max(0) / 1000, status),
                        None => return Err(Failure::NotFound),
                    }
                };
                let mut q = el("query", ns::LAST, &[("seconds", &secs.to_string())]);
                if !status.is_empty() {
                    q.append_text(status);
                }
                self.reply(iq, Some(q));
                Ok(())
            }
            _ => Err(Failure::Unavailable),
        }
    }

    fn server_info(&self) -> Element {
        let mut q = el("query", ns::DISCO_INFO, &[]);
        q.append_child(el(
            "identity",
            ns::DISCO_INFO,
            &[("category", "server"), ("type", "im"), ("name", "Iris")],
        ));
        for f in [
            ns::DISCO_INFO,
            ns::DISCO_ITEMS,
            ns::PING,
            ns::VCARD,
            ns::PRIVATE,
            ns::BLOCKING,
            ns::CARBONS,
            ns::MAM,
            ns::SID,
            ns::LAST,
            ns::VERSION,
            ns::MSGOFFLINE,
            "urn:xmpp:sm:3",
            "urn:xmpp:csi:0",
        ] {
            q.append_child(el("feature", ns::DISCO_INFO, &[("var", f)]));
        }
        q
    }

    /// RFC 6121 §2.3–2.5: removing an item ends the contact (or the invitation); a set on an
    /// existing entry stores the user's name and groups for it (roster push to every resource
    /// via the contacts service). A set for a JID that is no contact yet is accepted and
    /// changes nothing: the entry appears when the user subscribes (invites).
    async fn roster_set(&mut self, iq: &Element, query: &Element) -> Result<(), Failure> {
        let item = query
            .get_child("item", ns::ROSTER)
            .ok_or(Failure::BadRequest)?;
        let jid = item
            .attr("jid")
            .and_then(Jid::parse)
            .ok_or(Failure::BadRequest)?;
        if item.attr("subscription") == Some("remove") {
            let actor = self.actor().ok_or(Failure::Forbidden)?;
            let login = Login::parse(&jid.bare()).map_err(|_| Failure::NotFound)?;
            let (other, _) = self
                .hub
                .store
                .user_by_login(&login)
                .await?
                .ok_or(Failure::NotFound)?;
            match self
                .hub
                .store
                .contact_state(actor.user.id, other.id)
                .await?
            {
                Some(ContactState::Accepted) => self.hub.contacts.remove(&actor, other.id).await?,
                Some(_) => self.hub.contacts.decline(&actor, other.id).await?,
                None => return Err(Failure::NotFound),
            }
        } else if let Some(other) = self.roster_target(&jid).await? {
            let actor = self.actor().ok_or(Failure::Forbidden)?;
            let groups: Vec<String> = item
                .children()
                .filter(|c| c.is("group", ns::ROSTER))
                .map(|g| g.text())
                .collect();
            // RFC 6121 §2.3.3: an empty or oversized group or name is `not-acceptable`.
            self.hub
                .contacts
                .relabel(&actor, other, item.attr("name"), &groups)
                .await
                .map_err(|e| match e {
                    iris_services::Error::Invalid { .. } => Failure::NotAcceptable,
                    other => other.into(),
                })?;
        }
        self.reply(iq, None);
        Ok(())
    }

    /// The user `jid` names if it is in the session user's contact list.
    async fn roster_target(&mut self, jid: &Jid) -> Result<Option<UserId>, Failure> {
        let user = self.user.clone().ok_or(Failure::Forbidden)?;
        let Ok(login) = Login::parse(&jid.bare()) else {
            return Ok(None);
        };
        let Some((other, _)) = self.hub.store.user_by_login(&login).await? else {
            return Ok(None);
        };
        let known = self.hub.store.contact_state(user.id, other.id).await?;
        Ok(known.map(|_| other.id))
    }

    async fn vcard_get(&mut self, iq: &Element, bare: &str) -> Result<(), Failure> {
        let card = match self.hub.store.private_xml(bare, ns::VCARD).await? {
            Some(xml) => xml.parse::<Element>().map_err(|_| Failure::NotFound)?,
            None => el("vCard", ns::VCARD, &[]),
        };
        self.reply(iq, Some(card));
        Ok(())
    }

    async fn private(
        &mut self,
        iq: &Element,
        query: &Element,
        is_set: bool,
    ) -> Result<(), Failure> {
        let mut out = el("query", ns::PRIVATE, &[]);
        let children: Vec<Element> = query.children().cloned().collect();
        if children.is_empty() {
            return Err(Failure::BadRequest);
        }
        for child in children {
            let key = format!("{} {}", child.ns(), child.name());
            if child.ns() == ns::PRIVATE || child.ns() == ns::CLIENT {
                return Err(Failure::BadRequest);
            }
            let bookmarks = key == crate::pep_legacy::BOOKMARKS_KEY;
            if is_set {
                if bookmarks {
                    self.private_to_bookmarks(&child).await?;
                }
                let xml = element_to_string(&child).ok_or(Failure::BadRequest)?;
                self.hub
                    .store
                    .set_private_xml(&self.bare, &key, &xml)
                    .await?;
            } else {
                if bookmarks {
                    if let Some(view) = self.bookmarks_as_private().await? {
                        out.append_child(view);
                        continue;
                    }
                }
                let stored = self.hub.store.private_xml(&self.bare, &key).await?;
                out.append_child(match stored.and_then(|x| x.parse::<Element>().ok()) {
                    Some(e) => e,
                    None => Element::bare(child.name(), child.ns()),
                });
            }
        }
        self.reply(iq, (!is_set).then_some(out));
        Ok(())
    }

    async fn block(&mut self, iq: &Element, payload: &Element) -> Result<(), Failure> {
        let block = payload.name() == "block";
        let jids: Vec<String> = payload
            .children()
            .filter(|c| c.name() == "item")
            .map(|c| {
                c.attr("jid")
                    .and_then(Jid::parse)
                    .map(|j| j.bare())
                    .ok_or(Failure::BadRequest)
            })
            .collect::<Result<_, _>>()?;
        if block && jids.is_empty() {
            return Err(Failure::BadRequest);
        }
        self.hub.store.set_blocked(&self.bare, &jids, block).await?;
        self.hub.forget_blocklist(&self.bare);
        self.reply(iq, None);
        // XEP-0191 §3.3: push the change to every resource
        for r in self.hub.router.resources(&self.bare) {
            let mut push = el(
                "iq",
                ns::CLIENT,
                &[("type", "set"), ("id", &random_id()), ("to", &r.full)],
            );
            push.append_child(payload.clone());
            self.hub.send_full(&r.full, push);
        }
        Ok(())
    }

    /// XEP-0313 §4 with XEP-0059 paging, on the user's own archive.
    pub(crate) async fn mam_query_for(
        &mut self,
        iq: &Element,
        query: &Element,
        owner: String,
    ) -> Result<(), Failure> {
        let mut q = ArchiveQuery {
            owner: owner.clone(),
            max: self.hub.config.archive_max_page,
            ..Default::default()
        };
        if let Some(form) = query.get_child("x", ns::DATA) {
            q.with = field_value(form, "with")
                .and_then(|w| Jid::parse(&w))
                .map(|j| j.bare());
            if let Some(s) = field_value(form, "start") {
                q.start = Some(parse_time(&s).ok_or(Failure::BadRequest)?);
            }
            if let Some(e) = field_value(form, "end") {
                q.end = Some(parse_time(&e).ok_or(Failure::BadRequest)?);
            }
        }
        if let Some(rsm) = query.get_child("set", ns::RSM) {
            if let Some(max) = rsm.get_child("max", ns::RSM) {
                let m: i64 = max.text().trim().parse().map_err(|_| Failure::BadRequest)?;
                q.max = m.clamp(0, self.hub.config.archive_max_page);
            }
            q.after = rsm
                .get_child("after", ns::RSM)
                .map(Element::text)
                .filter(|t| !t.is_empty());
            q.before = rsm
                .get_child("before", ns::RSM)
                .map(|b| Some(b.text()).filter(|t| !t.is_empty()));
        }
        let page = self
            .hub
            .store
            .archive_query(&q)
            .await?
            .ok_or(Failure::NotFound)?;
        let queryid = query.attr("queryid").map(str::to_owned);
        let full = self.my_full();
        for row in &page.rows {
            let Ok(original) = row.stanza.parse::<Element>() else {
                continue;
            };
            let mut forwarded = el("forwarded", ns::FORWARD, &[]);
            forwarded.append_child(el(
                "delay",
                ns::DELAY,
                &[("stamp", &format_time(row.created_at))],
            ));
            forwarded.append_child(original);
            let mut result = el("result", ns::MAM, &[("id", &row.stanza_id)]);
            if let Some(qid) = &queryid {
                set(&mut result, "queryid", qid);
            }
            result.append_child(forwarded);
            let mut m = el(
                "message",
                ns::CLIENT,
                &[("to", &full), ("from", &owner), ("id", &random_id())],
            );
            m.append_child(result);
            let _ = self.stream.send_stanza(&m);
        }
        let mut fin = el("fin", ns::MAM, &[]);
        if page.complete {
            set(&mut fin, "complete", "true");
        }
        let mut rsm = el("set", ns::RSM, &[]);
        if let (Some(first), Some(last)) = (page.rows.first(), page.rows.last()) {
            let mut f = text_el("first", ns::RSM, &first.stanza_id);
            set(&mut f, "index", "0");
            rsm.append_child(f);
            rsm.append_child(text_el("last", ns::RSM, &last.stanza_id));
        }
        fin.append_child(rsm);
        self.reply(iq, Some(fin));
        Ok(())
    }
}

fn account_info() -> Element {
    let mut q = el("query", ns::DISCO_INFO, &[]);
    q.append_child(el(
        "identity",
        ns::DISCO_INFO,
        &[("category", "account"), ("type", "registered")],
    ));
    q.append_child(el("feature", ns::DISCO_INFO, &[("var", ns::MAM)]));
    crate::pep::advertise(&mut q);
    q
}

fn status_of(p: &Element) -> String {
    p.get_child("status", ns::CLIENT)
        .map(Element::text)
        .unwrap_or_default()
}
