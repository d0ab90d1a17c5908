//! XEP-0045 multi-user chat at `conference.<domain>`: persistent members-only rooms
//! ("bubbles") kept in the database, occupants in memory, join with history, groupchat
//! fan-out through the archive, mediated invitations (kept offline for invitees not online),
//! affiliations, kicks and bans (by nick or JID), nick changes, moderated rooms with voice
//! (visitor and participant roles), room destruction and basic configuration. Rooms created,
//! changed or deleted over REST (`iris_services::Bubbles`) reach occupants through
//! [`Hub::bubble_changes`]. Voice requests (§7.13) are in `muc_voice`; owners and admins grant
//! and revoke the moderator role (§9.6/§9.7). Not covered: anonymous rooms.
use crate::error::Failure;
use crate::hub::{stopped, Hub};
use crate::session::Session;
use crate::util::{el, format_time, now_ms, ns, random_id, set, text_el, Jid};
use iris_services::BubbleEvent;
use iris_store::{ArchiveQuery, ArchiveRow, NewRoom, OfflineRow};
use iris_xmpp::wire::{element_to_string, iq_result};
use iris_xmpp::Element;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::oneshot;

const MUC: &str = "http://jabber.org/protocol/muc";
const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const CONFERENCE: &str = "jabber:x:conference";
const MODERATED_FIELD: &str = "muc#roomconfig_moderatedroom";

/// One occupant of a room.
#[derive(Debug, Clone)]
pub(crate) struct Occupant {
    pub nick: String,
    pub full: String,
    pub affiliation: String,
    /// `moderator`, `participant` or `visitor` (no voice in a moderated room).
    pub role: String,
    /// A voice request (§7.13) of this visitor awaits a moderator's answer.
    pub voice_requested: bool,
}

/// Occupants of every room with someone in it.
#[derive(Default)]
pub(crate) struct Rooms {
    map: Mutex<HashMap<String, Vec<Occupant>>>,
}

impl Rooms {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<Occupant>>) -> T) -> T {
        let mut g = match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    pub fn occupants(&self, room: &str) -> Vec<Occupant> {
        self.with(|m| m.get(room).cloned().unwrap_or_default())
    }

    pub(crate) fn occupant_by_full(&self, room: &str, full: &str) -> Option<Occupant> {
        self.with(|m| {
            m.get(room)
                .and_then(|l| l.iter().find(|o| o.full == full).cloned())
        })
    }

    /// Adds an occupant; false when the nick is held by another session.
    fn join(&self, room: &str, occupant: Occupant) -> bool {
        self.with(|m| {
            let list = m.entry(room.to_owned()).or_default();
            if list
                .iter()
                .any(|o| o.nick == occupant.nick && o.full != occupant.full)
            {
                return false;
            }
            list.retain(|o| o.full != occupant.full);
            list.push(occupant);
            true
        })
    }

    /// XEP-0045 §7.6: gives the occupant `full` the nick `nick`; `Err(true)` when another
    /// session holds it, `Err(false)` when `full` is not in the room. Returns the new state.
    fn rename(&self, room: &str, full: &str, nick: &str) -> Result<Occupant, bool> {
        self.with(|m| {
            let list = m.get_mut(room).ok_or(false)?;
            if list.iter().any(|o| o.nick == nick && o.full != full) {
                return Err(true);
            }
            let o = list.iter_mut().find(|o| o.full == full).ok_or(false)?;
            o.nick = nick.to_owned();
            Ok(o.clone())
        })
    }

    /// Sets the role of the occupant `full`; returns them with the new role.
    pub(crate) fn set_role(&self, room: &str, full: &str, role: &str) -> Option<Occupant> {
        self.with(|m| {
            let o = m.get_mut(room)?.iter_mut().find(|o| o.full == full)?;
            o.role = role.to_owned();
            o.voice_requested = false;
            Some(o.clone())
        })
    }

    /// Sets whether the occupant `full` has a voice request pending; returns the old state.
    pub(crate) fn set_voice_request(&self, room: &str, full: &str, pending: bool) -> bool {
        self.with(|m| {
            m.get_mut(room)
                .and_then(|l| l.iter_mut().find(|o| o.full == full))
                .is_some_and(|o| std::mem::replace(&mut o.voice_requested, pending))
        })
    }

    /// Gives every visitor of `room` voice (the room stopped being moderated); returns them.
    fn voice_all(&self, room: &str) -> Vec<Occupant> {
        self.with(|m| {
            let Some(list) = m.get_mut(room) else {
                return Vec::new();
            };
            list.iter_mut()
                .filter(|o| o.role == "visitor")
                .map(|o| {
                    o.role = "participant".to_owned();
                    o.clone()
                })
                .collect()
        })
    }

    /// Takes every occupant out of `room` (it was destroyed).
    fn clear(&self, room: &str) -> Vec<Occupant> {
        self.with(|m| m.remove(room).unwrap_or_default())
    }

    /// Sets the affiliation of every occupant whose bare JID is `bare`; returns them.
    fn set_affiliation(&self, room: &str, bare: &str, affiliation: &str) -> Vec<Occupant> {
        self.with(|m| {
            let Some(list) = m.get_mut(room) else {
                return Vec::new();
            };
            let mut changed = Vec::new();
            for o in list
                .iter_mut()
                .filter(|o| crate::util::bare_of(&o.full) == bare)
            {
                o.affiliation = affiliation.to_owned();
                // a new admin or owner moderates; a former one keeps voice
                let role = role_of(affiliation);
                if role == "moderator" || o.role == "moderator" {
                    o.role = role.to_owned();
                }
                changed.push(o.clone());
            }
            changed
        })
    }

    fn leave(&self, room: &str, full: &str) -> Option<Occupant> {
        self.with(|m| {
            let list = m.get_mut(room)?;
            let pos = list.iter().position(|o| o.full == full)?;
            let o = list.remove(pos);
            if list.is_empty() {
                m.remove(room);
            }
            Some(o)
        })
    }
}

/// XEP-0045 §5.1.3: the default role of an affiliation in a members-only room (members are
/// participants there, moderated or not).
fn role_of(affiliation: &str) -> &'static str {
    match affiliation {
        "owner" | "admin" => "moderator",
        _ => "participant",
    }
}

fn occupant_presence(
    room: &str,
    o: &Occupant,
    to: &str,
    kind: Option<&str>,
    codes: &[&str],
) -> Element {
    let from = format!("{room}/{}", o.nick);
    let mut p = el("presence", ns::CLIENT, &[("from", &from), ("to", to)]);
    if let Some(k) = kind {
        set(&mut p, "type", k);
    }
    let mut x = el("x", MUC_USER, &[]);
    let role = if kind == Some("unavailable") && !codes.contains(&"303") {
        "none"
    } else {
        o.role.as_str()
    };
    x.append_child(el(
        "item",
        MUC_USER,
        &[
            ("affiliation", &o.affiliation),
            ("role", role),
            ("jid", &o.full),
        ],
    ));
    for c in codes {
        x.append_child(el("status", MUC_USER, &[("code", c)]));
    }
    p.append_child(x);
    p
}

fn is_member(aff: Option<&str>) -> bool {
    matches!(aff, Some("owner" | "admin" | "member"))
}

impl Session {
    fn muc_reply(&mut self, iq: &Element, payload: Option<Element>) {
        let _ = self.stream.send_stanza(&iq_result(iq, payload));
    }

    async fn affiliation(&mut self, room: &str) -> Result<Option<String>, Failure> {
        Ok(self.hub.store.room_affiliation(room, &self.bare).await?)
    }

    /// Presence to `room/nick`: join (creating the room for its first user) or leave.
    pub(crate) async fn muc_presence(&mut self, p: &Element, to: &Jid) -> Result<(), Failure> {
        let room = to.bare();
        let full = self.full.clone().unwrap_or_default();
        if p.attr("type") == Some("unavailable") {
            self.muc_leave(&room, &full);
            return Ok(());
        }
        if p.attr("type").is_some() {
            return Ok(());
        }
        let nick = to.resource.clone().ok_or(Failure::BadRequest)?;
        let mut codes = vec!["110"];
        if self.hub.store.room(&room).await?.is_none() {
            let name = to.local.clone().unwrap_or_default();
            let new = NewRoom {
                jid: &room,
                name: &name,
                description: "",
                company_id: self.user.as_ref().map(|u| u.company_id.0),
                owner: &self.bare,
                members: &[],
                now: now_ms(),
            };
            match self.hub.store.create_room(&new).await {
                Ok(()) => codes.push("201"),
                Err(iris_store::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let affiliation = self.affiliation(&room).await?;
        if affiliation.as_deref() == Some("outcast") {
            return Err(Failure::Forbidden);
        }
        if !is_member(affiliation.as_deref()) {
            return Err(Failure::NotMember);
        }
        let previous = self.hub.rooms.occupant_by_full(&room, &full);
        if let Some(prev) = previous.as_ref().filter(|p| p.nick != nick) {
            return self.muc_change_nick(&room, prev, &nick);
        }
        let affiliation = affiliation.unwrap_or_default();
        let me = Occupant {
            nick,
            full: full.clone(),
            role: previous
                .map(|p| p.role)
                .unwrap_or_else(|| role_of(&affiliation).to_owned()),
            affiliation,
            voice_requested: false,
        };
        let already = self.hub.rooms.occupant_by_full(&room, &full).is_some();
        if !self.hub.rooms.join(&room, me.clone()) {
            return Err(Failure::Conflict);
        }
        let others: Vec<Occupant> = self
            .hub
            .rooms
            .occupants(&room)
            .into_iter()
            .filter(|o| o.full != full)
            .collect();
        if !already {
            for o in &others {
                let _ = self
                    .stream
                    .send_stanza(&occupant_presence(&room, o, &full, None, &[]));
            }
        }
        for o in &others {
            self.hub
                .send_full(&o.full, occupant_presence(&room, &me, &o.full, None, &[]));
        }
        let _ = self
            .stream
            .send_stanza(&occupant_presence(&room, &me, &full, None, &codes));
        if already {
            return Ok(());
        }
        if !self.rooms.contains(&room) {
            self.rooms.push(room.clone());
        }
        // XEP-0045 §7.2.15: history, then the subject
        let max = p
            .get_child("x", MUC)
            .and_then(|x| x.get_child("history", MUC))
            .and_then(|h| h.attr("maxstanzas"))
            .and_then(|m| m.parse::<i64>().ok())
            .unwrap_or(20)
            .clamp(0, 100);
        if max > 0 {
            let q = ArchiveQuery {
                owner: room.clone(),
                before: Some(None),
                max,
                ..Default::default()
            };
            if let Some(page) = self.hub.store.archive_query(&q).await? {
                for row in page.rows {
                    let Ok(mut m) = row.stanza.parse::<Element>() else {
                        continue;
                    };
                    set(&mut m, "to", &full);
                    m.append_child(el(
                        "delay",
                        ns::DELAY,
                        &[("from", &room), ("stamp", &format_time(row.created_at))],
                    ));
                    let _ = self.stream.send_stanza(&m);
                }
            }
        }
        let mut subject = el(
            "message",
            ns::CLIENT,
            &[
                ("from", &room),
                ("to", &full),
                ("type", "groupchat"),
                ("id", &random_id()),
            ],
        );
        subject.append_child(el("subject", ns::CLIENT, &[]));
        let _ = self.stream.send_stanza(&subject);
        Ok(())
    }

    /// XEP-0045 §7.6: an occupant takes another nick. Everyone (the occupant with 110 too)
    /// gets unavailable presence from the old nick with status 303 and the new nick, then
    /// presence from the new nick. A nick held by someone else is a conflict.
    fn muc_change_nick(&mut self, room: &str, prev: &Occupant, nick: &str) -> Result<(), Failure> {
        let renamed = match self.hub.rooms.rename(room, &prev.full, nick) {
            Ok(o) => o,
            Err(true) => return Err(Failure::Conflict),
            Err(false) => return Err(Failure::NotAcceptable),
        };
        for o in self.hub.rooms.occupants(room) {
            let own = o.full == prev.full;
            let codes: &[&str] = if own { &["303", "110"] } else { &["303"] };
            let mut gone = occupant_presence(room, prev, &o.full, Some("unavailable"), codes);
            if let Some(item) = gone
                .get_child_mut("x", MUC_USER)
                .and_then(|x| x.get_child_mut("item", MUC_USER))
            {
                set(item, "nick", nick);
            }
            let codes: &[&str] = if own { &["110"] } else { &[] };
            let now = occupant_presence(room, &renamed, &o.full, None, codes);
            if own {
                let _ = self.stream.send_stanza(&gone);
                let _ = self.stream.send_stanza(&now);
            } else {
                self.hub.send_full(&o.full, gone);
                self.hub.send_full(&o.full, now);
            }
        }
        Ok(())
    }

    /// Leaves `room` (explicitly or when the session ends).
    pub(crate) fn muc_leave(&mut self, room: &str, full: &str) {
        self.rooms.retain(|r| r != room);
        let Some(me) = self.hub.rooms.leave(room, full) else {
            return;
        };
        let _ = self.stream.send_stanza(&occupant_presence(
            room,
            &me,
            full,
            Some("unavailable"),
            &["110"],
        ));
        for o in self.hub.rooms.occupants(room) {
            self.hub.send_full(
                &o.full,
                occupant_presence(room, &me, &o.full, Some("unavailable"), &[]),
            );
        }
    }

    /// Messages to a room: groupchat fan-out (archived first), invitations, private messages.
    pub(crate) async fn muc_message(
        &mut self,
        msg: &Element,
        to: &Jid,
    ) -> Result<Option<oneshot::Receiver<bool>>, Failure> {
        let room = to.bare();
        let full = self.full.clone().unwrap_or_default();
        if let Some(invite) = msg
            .get_child("x", MUC_USER)
            .and_then(|x| x.get_child("invite", MUC_USER))
        {
            return self.muc_invite(&room, invite).await.map(|()| None);
        }
        let me = self
            .hub
            .rooms
            .occupant_by_full(&room, &full)
            .ok_or(Failure::NotAcceptable)?;
        let from = format!("{room}/{}", me.nick);
        if let Some(form) = crate::muc_voice::request_form(msg).filter(|_| to.resource.is_none()) {
            return self.muc_voice_form(&room, &me, form).map(|()| None);
        }
        if let Some(nick) = &to.resource {
            // XEP-0045 §7.5: a private message to one occupant
            let target = self
                .hub
                .rooms
                .occupants(&room)
                .into_iter()
                .find(|o| &o.nick == nick)
                .ok_or(Failure::NotFound)?;
            let mut m = msg.clone();
            set(&mut m, "from", &from);
            set(&mut m, "to", &target.full);
            m.append_child(el("x", MUC_USER, &[]));
            self.hub.send_full(&target.full, m);
            return Ok(None);
        }
        if msg.attr("type") != Some("groupchat") {
            return Err(Failure::BadRequest);
        }
        // §7.4 / §8.4: a visitor (no voice in a moderated room) may not send to everyone
        if me.role == "visitor" {
            return Err(Failure::Forbidden);
        }
        let mut out = msg.clone();
        iris_xmpp::wire::remove_attr(&mut out, "to");
        set(&mut out, "from", &from);
        while out.remove_child("stanza-id", ns::SID).is_some() {}
        let fan_out = |hub: &crate::hub::Hub, out: &Element, room: &str| {
            for o in hub.rooms.occupants(room) {
                let mut copy = out.clone();
                set(&mut copy, "to", &o.full);
                hub.send_full(&o.full, copy);
            }
        };
        if !msg.has_child("body", ns::CLIENT) {
            fan_out(&self.hub, &out, &room);
            return Ok(None);
        }
        let id = random_id();
        out.append_child(el("stanza-id", ns::SID, &[("by", &room), ("id", &id)]));
        let row = ArchiveRow {
            owner: room.clone(),
            stanza_id: id,
            peer: from.clone(),
            created_at: now_ms(),
            stanza: element_to_string(&out).ok_or(Failure::BadRequest)?,
        };
        let hub = self.hub.clone();
        let after = Box::new(move || fan_out(&hub, &out, &room));
        Ok(Some(
            self.hub.archive.submit(vec![row], Vec::new(), after).await,
        ))
    }

    /// XEP-0045 §7.8.2: a mediated invitation makes the invitee a member.
    async fn muc_invite(&mut self, room: &str, invite: &Element) -> Result<(), Failure> {
        if !matches!(
            self.affiliation(room).await?.as_deref(),
            Some("owner" | "admin")
        ) {
            return Err(Failure::Forbidden);
        }
        let invitee = invite
            .attr("to")
            .and_then(Jid::parse)
            .ok_or(Failure::BadRequest)?;
        if !self.hub.is_local_user(&invitee) {
            return Err(Failure::Unavailable);
        }
        let invitee = invitee.bare();
        if self
            .hub
            .store
            .room_affiliation(room, &invitee)
            .await?
            .is_none()
        {
            self.hub
                .store
                .set_room_affiliation(room, &invitee, Some("member"))
                .await?;
        }
        let reason = invite
            .get_child("reason", MUC_USER)
            .map(Element::text)
            .unwrap_or_default();
        self.hub
            .send_invitation(room, &invitee, &self.bare, &reason);
        Ok(())
    }

    /// IQs to the MUC service or a room.
    pub(crate) async fn muc_iq(
        &mut self,
        iq: &Element,
        payload: &Element,
        to: &Jid,
    ) -> Result<(), Failure> {
        let kind = iq.attr("type").unwrap_or_default().to_owned();
        let pns = payload.ns();
        if to.local.is_none() {
            return match (kind.as_str(), pns.as_str()) {
                ("get", ns::DISCO_INFO) => {
                    let mut q = el("query", ns::DISCO_INFO, &[]);
                    q.append_child(el(
                        "identity",
                        ns::DISCO_INFO,
                        &[
                            ("category", "conference"),
                            ("type", "text"),
                            ("name", "Bubbles"),
                        ],
                    ));
                    q.append_child(el("feature", ns::DISCO_INFO, &[("var", MUC)]));
                    q.append_child(el("feature", ns::DISCO_INFO, &[("var", ns::DISCO_ITEMS)]));
                    self.muc_reply(iq, Some(q));
                    Ok(())
                }
                ("get", ns::DISCO_ITEMS) => {
                    let mut q = el("query", ns::DISCO_ITEMS, &[]);
                    for r in self.hub.store.rooms_of(&self.bare).await? {
                        q.append_child(el(
                            "item",
                            ns::DISCO_ITEMS,
                            &[("jid", &r.jid), ("name", &r.name)],
                        ));
                    }
                    self.muc_reply(iq, Some(q));
                    Ok(())
                }
                _ => Err(Failure::NotImplemented),
            };
        }
        let room = to.bare();
        let row = self.hub.store.room(&room).await?.ok_or(Failure::NotFound)?;
        let aff = self.affiliation(&room).await?;
        match (kind.as_str(), payload.name(), pns.as_str()) {
            ("get", "query", ns::DISCO_INFO) => {
                let mut q = el("query", ns::DISCO_INFO, &[]);
                q.append_child(el(
                    "identity",
                    ns::DISCO_INFO,
                    &[
                        ("category", "conference"),
                        ("type", "text"),
                        ("name", &row.name),
                    ],
                ));
                let moderation = if row.moderated {
                    "muc_moderated"
                } else {
                    "muc_unmoderated"
                };
                for f in [
                    MUC,
                    moderation,
                    "muc_membersonly",
                    "muc_persistent",
                    "muc_nonanonymous",
                    crate::muc_voice::REQUEST,
                    ns::MAM,
                    ns::SID,
                ] {
                    q.append_child(el("feature", ns::DISCO_INFO, &[("var", f)]));
                }
                self.muc_reply(iq, Some(q));
                Ok(())
            }
            ("set", "query", ns::MAM) if is_member(aff.as_deref()) => {
                self.mam_query_for(iq, payload, room).await
            }
            ("get", "query", MUC_ADMIN)
                if payload
                    .get_child("item", MUC_ADMIN)
                    .is_some_and(|i| i.attr("role").is_some()) =>
            {
                // §8.5 voice list, §8.7 moderator list: occupants by role, for moderators
                if !matches!(aff.as_deref(), Some("owner" | "admin")) {
                    return Err(Failure::Forbidden);
                }
                let wanted = payload
                    .get_child("item", MUC_ADMIN)
                    .and_then(|i| i.attr("role"))
                    .unwrap_or_default();
                let mut q = el("query", MUC_ADMIN, &[]);
                for o in self.hub.rooms.occupants(&room) {
                    if o.role == wanted {
                        q.append_child(el(
                            "item",
                            MUC_ADMIN,
                            &[
                                ("nick", &o.nick),
                                ("role", &o.role),
                                ("affiliation", &o.affiliation),
                                ("jid", &o.full),
                            ],
                        ));
                    }
                }
                self.muc_reply(iq, Some(q));
                Ok(())
            }
            ("get", "query", MUC_ADMIN) if is_member(aff.as_deref()) => {
                let wanted = payload
                    .get_child("item", MUC_ADMIN)
                    .and_then(|i| i.attr("affiliation"))
                    .unwrap_or("member");
                let mut q = el("query", MUC_ADMIN, &[]);
                for (jid, a) in self.hub.store.room_affiliations(&room).await? {
                    if a == wanted {
                        q.append_child(el(
                            "item",
                            MUC_ADMIN,
                            &[("jid", &jid), ("affiliation", &a)],
                        ));
                    }
                }
                self.muc_reply(iq, Some(q));
                Ok(())
            }
            ("set", "query", MUC_ADMIN) => {
                // owners and admins, and occupants given the moderator role (§8, role items)
                let me = self.full.clone().unwrap_or_default();
                let moderator = self
                    .hub
                    .rooms
                    .occupant_by_full(&room, &me)
                    .is_some_and(|o| o.role == "moderator");
                if !moderator && !matches!(aff.as_deref(), Some("owner" | "admin")) {
                    return Err(Failure::Forbidden);
                }
                let items: Vec<Element> = payload
                    .children()
                    .filter(|c| c.name() == "item")
                    .cloned()
                    .collect();
                for item in &items {
                    self.muc_admin_item(&room, aff.as_deref(), item).await?;
                }
                self.muc_reply(iq, None);
                Ok(())
            }
            ("get", "query", MUC_OWNER) if aff.as_deref() == Some("owner") => {
                let mut x = el("x", ns::DATA, &[("type", "form")]);
                let mut ft = el(
                    "field",
                    ns::DATA,
                    &[("var", "FORM_TYPE"), ("type", "hidden")],
                );
                ft.append_child(text_el(
                    "value",
                    ns::DATA,
                    "http://jabber.org/protocol/muc#roomconfig",
                ));
                x.append_child(ft);
                let mut name = el(
                    "field",
                    ns::DATA,
                    &[("var", "muc#roomconfig_roomname"), ("type", "text-single")],
                );
                name.append_child(text_el("value", ns::DATA, &row.name));
                x.append_child(name);
                let mut moderated = el(
                    "field",
                    ns::DATA,
                    &[("var", MODERATED_FIELD), ("type", "boolean")],
                );
                let value = if row.moderated { "1" } else { "0" };
                moderated.append_child(text_el("value", ns::DATA, value));
                x.append_child(moderated);
                let mut q = el("query", MUC_OWNER, &[]);
                q.append_child(x);
                self.muc_reply(iq, Some(q));
                Ok(())
            }
            ("set", "query", MUC_OWNER) if aff.as_deref() == Some("owner") => {
                if let Some(destroy) = payload.get_child("destroy", MUC_OWNER) {
                    // XEP-0045 §10.9: delete the room, then tell every occupant
                    let reason = destroy.get_child("reason", MUC_OWNER).map(Element::text);
                    self.hub.store.delete_room(&room).await?;
                    self.hub.room_destroyed(&room, reason.as_deref());
                    self.muc_reply(iq, None);
                    return Ok(());
                }
                if let Some(x) = payload.get_child("x", ns::DATA) {
                    let name = x
                        .children()
                        .find(|f| f.attr("var") == Some("muc#roomconfig_roomname"))
                        .and_then(|f| f.get_child("value", ns::DATA))
                        .map(Element::text);
                    if let Some(name) = name {
                        self.hub.store.set_room_name(&room, &name).await?;
                    }
                    let moderated = x
                        .children()
                        .find(|f| f.attr("var") == Some(MODERATED_FIELD))
                        .and_then(|f| f.get_child("value", ns::DATA))
                        .map(|v| matches!(v.text().trim(), "1" | "true"));
                    if let Some(moderated) = moderated {
                        self.hub.store.set_room_moderated(&room, moderated).await?;
                        if !moderated {
                            // nobody is without voice in an unmoderated room
                            for o in self.hub.rooms.voice_all(&room) {
                                self.hub.role_changed(&room, &o, "");
                            }
                        }
                    }
                }
                self.muc_reply(iq, None);
                Ok(())
            }
            _ => Err(Failure::Forbidden),
        }
    }
}

/// The rank of an affiliation, for "may X change Y" checks.
fn rank(affiliation: Option<&str>) -> u8 {
    match affiliation {
        Some("owner") => 3,
        Some("admin") => 2,
        Some("member") => 1,
        _ => 0,
    }
}

impl Session {
    /// One `<item/>` of a muc#admin set (XEP-0045 §8.2 kick, §9.1 ban, §9.3–9.8 affiliation
    /// lists): by nick (an occupant) or by JID. Moderators (owner, admin) may act on members
    /// and non-members; only an owner acts on admins and owners.
    async fn muc_admin_item(
        &mut self,
        room: &str,
        mine: Option<&str>,
        item: &Element,
    ) -> Result<(), Failure> {
        let by_nick = item.attr("nick").and_then(|n| {
            self.hub
                .rooms
                .occupants(room)
                .into_iter()
                .find(|o| o.nick == n)
        });
        let target = match (item.attr("jid").and_then(Jid::parse), &by_nick) {
            (Some(j), _) => j.bare(),
            (None, Some(o)) => crate::util::bare_of(&o.full).to_owned(),
            (None, None) if item.attr("nick").is_some() => return Err(Failure::NotAcceptable),
            (None, None) => return Err(Failure::BadRequest),
        };
        let admin = matches!(mine, Some("owner" | "admin"));
        if item.attr("role").is_none() && !admin {
            return Err(Failure::Forbidden);
        }
        let current = self.hub.store.room_affiliation(room, &target).await?;
        let (theirs, ours) = (rank(current.as_deref()), rank(mine));
        // role changes (§8): not on a higher affiliation, nor by an admin on admins and owners;
        // affiliation changes (§9/§10): only on a lower affiliation, except by an owner
        let blocked = if item.attr("role").is_some() {
            theirs > ours || (theirs >= 2 && ours < 3)
        } else {
            theirs >= ours && ours < 3
        };
        if target == self.bare || blocked {
            return Err(Failure::NotAllowed);
        }
        let reason = item
            .get_child("reason", MUC_ADMIN)
            .map(Element::text)
            .unwrap_or_default();
        if let Some(role) = item.attr("role") {
            // §8.2 kick (role none), §8.3 grant voice (participant), §8.4 revoke voice
            // (visitor, moderated rooms only); moderators keep their role
            let occupant = by_nick.ok_or(Failure::NotAcceptable)?;
            match role {
                "none" => {
                    self.hub
                        .remove_occupants(room, &occupant.full, "307", &reason);
                }
                // §9.6: owners and admins make an occupant a moderator
                "moderator" => {
                    if !admin {
                        return Err(Failure::Forbidden);
                    }
                    if occupant.role != role {
                        if let Some(o) = self.hub.rooms.set_role(room, &occupant.full, role) {
                            self.hub.role_changed(room, &o, &reason);
                        }
                    }
                }
                "participant" | "visitor" => {
                    // §9.7: owners and admins revoke a granted moderator role; an admin's or
                    // owner's comes with the affiliation and stays
                    if occupant.role == "moderator"
                        && (!admin || matches!(occupant.affiliation.as_str(), "owner" | "admin"))
                    {
                        return Err(Failure::NotAllowed);
                    }
                    if role == "visitor"
                        && !self
                            .hub
                            .store
                            .room(room)
                            .await?
                            .is_some_and(|r| r.moderated)
                    {
                        return Err(Failure::NotAllowed);
                    }
                    if occupant.role != role {
                        if let Some(o) = self.hub.rooms.set_role(room, &occupant.full, role) {
                            self.hub.role_changed(room, &o, &reason);
                        }
                    }
                }
                _ => return Err(Failure::NotImplemented),
            }
            return Ok(());
        }
        let a = item.attr("affiliation").ok_or(Failure::BadRequest)?;
        let a = match a {
            "none" => None,
            "member" | "admin" | "outcast" => Some(a),
            "owner" if mine == Some("owner") => Some(a),
            _ => return Err(Failure::Forbidden),
        };
        self.hub
            .store
            .set_room_affiliation(room, &target, a)
            .await?;
        self.hub
            .room_affiliation_changed(room, &target, a, current.is_none(), &self.bare, &reason);
        Ok(())
    }
}

impl Hub {
    /// Runs until shutdown: reflects REST changes of bubbles (`iris_services::Bubbles`) to
    /// XMPP clients: invitations, affiliation changes of occupants, destruction.
    pub(crate) async fn bubble_changes(self: Arc<Self>) {
        let mut events = self.bubbles.subscribe();
        let mut stop = self.shutdown.clone();
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = stopped(&mut stop) => return,
            };
            match event {
                Ok(BubbleEvent::Affiliation {
                    room,
                    jid,
                    affiliation,
                    invited,
                    by,
                }) => {
                    self.room_affiliation_changed(
                        &room,
                        &jid,
                        affiliation.as_deref(),
                        invited,
                        &by,
                        "",
                    );
                }
                Ok(BubbleEvent::Destroyed { room, reason }) => {
                    self.room_destroyed(&room, reason.as_deref());
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "bubble changes lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// §8.3/§8.4: everyone in `room` learns the occupant's new role (they with status 110).
    pub(crate) fn role_changed(&self, room: &str, o: &Occupant, reason: &str) {
        for to in self.rooms.occupants(room) {
            let codes: &[&str] = if to.full == o.full { &["110"] } else { &[] };
            let mut p = occupant_presence(room, o, &to.full, None, codes);
            if !reason.is_empty() {
                if let Some(item) = p
                    .get_child_mut("x", MUC_USER)
                    .and_then(|x| x.get_child_mut("item", MUC_USER))
                {
                    item.append_child(text_el("reason", MUC_USER, reason));
                }
            }
            self.send_full(&to.full, p);
        }
    }

    /// XEP-0045 §7.8.2: a mediated invitation from `room` to `invitee` on behalf of `by`.
    /// An invitee with no available session gets it from offline storage when they next
    /// send initial presence.
    pub(crate) fn send_invitation(&self, room: &str, invitee: &str, by: &str, reason: &str) {
        let mut m = el(
            "message",
            ns::CLIENT,
            &[("from", room), ("to", invitee), ("id", &random_id())],
        );
        let mut x = el("x", MUC_USER, &[]);
        let mut inv = el("invite", MUC_USER, &[("from", by)]);
        if !reason.is_empty() {
            inv.append_child(text_el("reason", MUC_USER, reason));
        }
        x.append_child(inv);
        m.append_child(x);
        m.append_child(el("x", CONFERENCE, &[("jid", room)]));
        let Some(j) = Jid::parse(invitee) else {
            return;
        };
        if self.deliver_message(&m, &j) > 0 {
            return;
        }
        let now = now_ms();
        crate::handlers::add_delay(&mut m, &self.domain, now);
        let Some(stanza) = element_to_string(&m) else {
            return;
        };
        let row = OfflineRow {
            owner: invitee.to_owned(),
            created_at: now,
            stanza,
        };
        let archive = self.archive.clone();
        tokio::spawn(async move {
            let stored = archive.submit(Vec::new(), vec![row], Box::new(|| {})).await;
            if !matches!(stored.await, Ok(true)) {
                tracing::warn!("an offline MUC invitation was not stored");
            }
        });
    }

    /// After `bare`'s affiliation with `room` changed: invite a new member, remove occupants
    /// who lost membership (status 321, or 301 when banned), or announce their new
    /// affiliation to the room.
    pub(crate) fn room_affiliation_changed(
        &self,
        room: &str,
        bare: &str,
        affiliation: Option<&str>,
        invited: bool,
        by: &str,
        reason: &str,
    ) {
        let still_member = is_member(affiliation);
        if still_member && invited {
            self.send_invitation(room, bare, by, reason);
        }
        let occupants: Vec<Occupant> = self
            .rooms
            .occupants(room)
            .into_iter()
            .filter(|o| crate::util::bare_of(&o.full) == bare)
            .collect();
        if !still_member {
            let code = if affiliation == Some("outcast") {
                "301"
            } else {
                "321"
            };
            for o in occupants {
                self.rooms
                    .set_affiliation(room, bare, affiliation.unwrap_or("none"));
                self.remove_occupants(room, &o.full, code, reason);
            }
            return;
        }
        for o in self
            .rooms
            .set_affiliation(room, bare, affiliation.unwrap_or("none"))
        {
            for to in self.rooms.occupants(room) {
                let codes: &[&str] = if to.full == o.full { &["110"] } else { &[] };
                self.send_full(&to.full, occupant_presence(room, &o, &to.full, None, codes));
            }
        }
    }

    /// Removes the occupant `full` from `room` with status `code` (307 kicked, 301 banned,
    /// 321 no longer a member): they and everyone else get the unavailable presence.
    pub(crate) fn remove_occupants(&self, room: &str, full: &str, code: &str, reason: &str) {
        let Some(mut gone) = self.rooms.leave(room, full) else {
            return;
        };
        if code == "301" {
            gone.affiliation = "outcast".to_owned();
        }
        let with_reason = |mut p: Element| {
            if !reason.is_empty() {
                if let Some(x) = p.get_child_mut("x", MUC_USER) {
                    if let Some(item) = x.get_child_mut("item", MUC_USER) {
                        item.append_child(text_el("reason", MUC_USER, reason));
                    }
                }
            }
            p
        };
        self.send_full(
            full,
            with_reason(occupant_presence(
                room,
                &gone,
                full,
                Some("unavailable"),
                &["110", code],
            )),
        );
        for o in self.rooms.occupants(room) {
            self.send_full(
                &o.full,
                with_reason(occupant_presence(
                    room,
                    &gone,
                    &o.full,
                    Some("unavailable"),
                    &[code],
                )),
            );
        }
    }

    /// XEP-0045 §10.9: the room is gone; every occupant gets an unavailable presence with
    /// `<destroy/>`.
    pub(crate) fn room_destroyed(&self, room: &str, reason: Option<&str>) {
        for o in self.rooms.clear(room) {
            let from = format!("{room}/{}", o.nick);
            let mut p = el(
                "presence",
                ns::CLIENT,
                &[("from", &from), ("to", &o.full), ("type", "unavailable")],
            );
            let mut x = el("x", MUC_USER, &[]);
            x.append_child(el(
                "item",
                MUC_USER,
                &[("affiliation", "none"), ("role", "none")],
            ));
            let mut destroy = el("destroy", MUC_USER, &[]);
            if let Some(r) = reason.filter(|r| !r.is_empty()) {
                destroy.append_child(text_el("reason", MUC_USER, r));
            }
            x.append_child(destroy);
            x.append_child(el("status", MUC_USER, &[("code", "110")]));
            p.append_child(x);
            self.send_full(&o.full, p);
        }
    }
}
