//! XEP-0045 §7.13 voice requests: a visitor of a moderated room submits the `muc#request` form,
//! every moderator present receives it as a form, and a moderator who submits it back with
//! `muc#request_allow` true gives the visitor voice (the participant role, announced to the
//! room). Requests are not stored: moderators who are not in the room do not get them. One
//! request per visitor is pending at a time (until a moderator answers it, or the visitor
//! rejoins); further ones are dropped, so a visitor cannot flood the moderators.
use crate::error::Failure;
use crate::handlers::field_value;
use crate::muc::Occupant;
use crate::session::Session;
use crate::util::{el, ns, random_id, text_el};
use iris_xmpp::Element;

/// `FORM_TYPE` of voice requests and their approval.
pub(crate) const REQUEST: &str = "http://jabber.org/protocol/muc#request";

/// The `muc#request` data form of a message, if it carries one.
pub(crate) fn request_form(msg: &Element) -> Option<&Element> {
    msg.children().find(|x| {
        x.is("x", ns::DATA) && field_value(x, "FORM_TYPE").is_some_and(|v| v.trim() == REQUEST)
    })
}

fn field(var: &str, kind: &str, label: &str, value: &str) -> Element {
    let mut f = el(
        "field",
        ns::DATA,
        &[("var", var), ("type", kind), ("label", label)],
    );
    f.append_child(text_el("value", ns::DATA, value));
    f
}

/// §7.13 example 96: the approval form a moderator receives.
fn approval_form(room: &str, to: &str, requester: &Occupant) -> Element {
    let mut x = el("x", ns::DATA, &[("type", "form")]);
    x.append_child(text_el("title", ns::DATA, "Voice request"));
    x.append_child(text_el(
        "instructions",
        ns::DATA,
        "To approve this request for voice, select the \"Grant voice to this person?\" \
         checkbox and submit the form. To skip this request, cancel it.",
    ));
    x.append_child(field("FORM_TYPE", "hidden", "", REQUEST));
    x.append_child(field(
        "muc#role",
        "list-single",
        "Requested role",
        "participant",
    ));
    x.append_child(field("muc#jid", "jid-single", "User ID", &requester.full));
    x.append_child(field(
        "muc#roomnick",
        "text-single",
        "Room Nickname",
        &requester.nick,
    ));
    x.append_child(field(
        "muc#request_allow",
        "boolean",
        "Grant voice to this person?",
        "false",
    ));
    let mut m = el(
        "message",
        ns::CLIENT,
        &[("from", room), ("to", to), ("id", &random_id())],
    );
    m.append_child(x);
    m
}

impl Session {
    /// A `muc#request` form sent to `room` by its occupant `me`: a visitor's request, or a
    /// moderator's answer to one.
    pub(crate) fn muc_voice_form(
        &mut self,
        room: &str,
        me: &Occupant,
        form: &Element,
    ) -> Result<(), Failure> {
        let allow = field_value(form, "muc#request_allow");
        if me.role == "moderator" && form.attr("type") == Some("submit") && allow.is_some() {
            let nick = field_value(form, "muc#roomnick");
            let jid = field_value(form, "muc#jid");
            let target = self
                .hub
                .rooms
                .occupants(room)
                .into_iter()
                .find(|o| Some(&o.nick) == nick.as_ref() || Some(&o.full) == jid.as_ref())
                .ok_or(Failure::NotFound)?;
            if !allow.is_some_and(|a| matches!(a.trim(), "1" | "true")) {
                self.hub.rooms.set_voice_request(room, &target.full, false);
                return Ok(());
            }
            if target.role == "visitor" {
                if let Some(o) = self.hub.rooms.set_role(room, &target.full, "participant") {
                    self.hub.role_changed(room, &o, "");
                }
            }
            return Ok(());
        }
        if me.role != "visitor" {
            // it already has voice (or is not a moderator answering a request)
            return Err(Failure::NotAcceptable);
        }
        let role = field_value(form, "muc#role");
        if role.as_deref().is_some_and(|r| r.trim() != "participant") {
            return Err(Failure::NotAcceptable);
        }
        if self.hub.rooms.set_voice_request(room, &me.full, true) {
            return Ok(());
        }
        for m in self
            .hub
            .rooms
            .occupants(room)
            .into_iter()
            .filter(|o| o.role == "moderator")
        {
            self.hub
                .send_full(&m.full, approval_form(room, &m.full, me));
        }
        Ok(())
    }
}
