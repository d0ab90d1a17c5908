//! RFC 6121 §2 roster reads and §2.6 roster versioning: the roster is the user's Iris
//! contacts, and its version is a digest of exactly what the client would receive (each
//! item's JID, name, subscription, ask and groups), so every change to the contacts — over XMPP or
//! REST, a contact's new display name, a deleted account — changes it, and it survives
//! restarts without a counter to keep in step. It does not change contacts (`services`).
use crate::error::Failure;
use crate::hub::roster_item;
use crate::session::Session;
use crate::util::{el, ns, set};
use iris_model::Contact;
use iris_xmpp::wire::{element_to_string, iq_result};
use iris_xmpp::Element;
use sha2::{Digest, Sha256};

/// The roster versioning stream feature (RFC 6121 §2.6.1), informative only.
pub(crate) const FEATURE_NS: &str = "urn:xmpp:features:rosterver";

/// The roster items of a contact list, in list order (by login).
pub(crate) fn items(contacts: &[Contact]) -> Vec<Element> {
    contacts
        .iter()
        .map(|c| roster_item(c.login.as_str(), Some(c)))
        .collect()
}

/// The opaque version of a roster (RFC 6121 §2.6: "a hash of the roster data"): SHA-256 over
/// the serialised items, 128 bits in hex. Never empty, so it never means "no cache".
pub(crate) fn version(items: &[Element]) -> String {
    let mut h = Sha256::new();
    for item in items {
        h.update(element_to_string(item).unwrap_or_default().as_bytes());
        h.update(b"\n");
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The answer to a roster get (RFC 6121 §2.1.3, §2.6.3): an empty result when the client's
/// `ver` is current, else the whole roster with the current `ver`.
pub(crate) fn answer(iq: &Element, client_ver: Option<&str>, contacts: &[Contact]) -> Element {
    let items = items(contacts);
    let ver = version(&items);
    if client_ver == Some(ver.as_str()) {
        return iq_result(iq, None);
    }
    let mut q = el("query", ns::ROSTER, &[]);
    set(&mut q, "ver", &ver);
    for item in items {
        q.append_child(item);
    }
    iq_result(iq, Some(q))
}

impl Session {
    pub(crate) async fn roster_get(
        &mut self,
        iq: &Element,
        query: &Element,
    ) -> Result<(), Failure> {
        let user = self.user.clone().ok_or(Failure::Forbidden)?;
        let contacts = self.hub.store.contacts(user.id).await?;
        let _ = self
            .stream
            .send_stanza(&answer(iq, query.attr("ver"), &contacts));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_model::{ContactState, Login, UserId};

    fn contact(login: &str, name: &str, state: ContactState) -> Contact {
        Contact {
            user_id: UserId(1),
            login: Login::parse(login).expect("login"),
            display_name: name.to_owned(),
            state,
            name: None,
            groups: Vec::new(),
            updated_at: 0,
        }
    }

    fn get(ver: Option<&str>) -> Element {
        let mut iq = el("iq", ns::CLIENT, &[("type", "get"), ("id", "r")]);
        let mut q = el("query", ns::ROSTER, &[]);
        if let Some(v) = ver {
            set(&mut q, "ver", v);
        }
        iq.append_child(q);
        iq
    }

    #[test]
    fn rfc6121_2_6_version_follows_every_visible_change() {
        let a = vec![contact("bob@x.org", "Bob", ContactState::Accepted)];
        let v = version(&items(&a));
        assert_eq!(v.len(), 32);
        assert_eq!(v, version(&items(&a.clone())), "deterministic");
        for changed in [
            vec![contact("bob@x.org", "Bobby", ContactState::Accepted)],
            vec![contact("bob@x.org", "Bob", ContactState::InvitationSent)],
            vec![contact(
                "bob@x.org",
                "Bob",
                ContactState::InvitationReceived,
            )],
            Vec::new(),
        ] {
            assert_ne!(v, version(&items(&changed)), "{changed:?}");
        }
        // the owner's own name and groups are part of the roster too
        for (name, groups) in [(Some("B."), vec![]), (None, vec!["Work".to_owned()])] {
            let mut labelled = a.clone();
            labelled[0].name = name.map(str::to_owned);
            labelled[0].groups = groups;
            assert_ne!(v, version(&items(&labelled)), "{labelled:?}");
        }
    }

    #[test]
    fn rfc6121_2_6_3_empty_result_when_current_else_full_roster_with_ver() {
        let list = vec![contact("bob@x.org", "Bob", ContactState::Accepted)];
        let ver = version(&items(&list));
        let current = answer(&get(Some(&ver)), Some(&ver), &list);
        assert_eq!(current.attr("type"), Some("result"));
        assert!(current.children().next().is_none(), "empty result");
        for stale in [None, Some(""), Some("old")] {
            let full = answer(&get(stale), stale, &list);
            let q = full.get_child("query", ns::ROSTER).expect("query");
            assert_eq!(q.attr("ver"), Some(ver.as_str()));
            assert_eq!(q.children().count(), 1);
        }
    }
}
