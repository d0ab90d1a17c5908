//! The legacy views kept in step with PEP: XEP-0084 avatar ↔ XEP-0054 vCard PHOTO
//! (XEP-0153 clients), XEP-0402 bookmarks ↔ XEP-0049 `storage:bookmarks` (XEP-0402 §5
//! compat). PEP is the source of truth; no other vCard field or private XML is touched.
use crate::error::Failure;
use crate::pep::{sha1_hex, sha1_hex_of, Options, PepError};
use crate::session::Session;
use crate::util::{el, random_id};
use iris_store::PepItemRow;
use iris_xmpp::wire::element_to_string;
use iris_xmpp::Element;
use xmpp_parsers::bookmarks::{Conference as LegacyConference, Storage};
use xmpp_parsers::bookmarks2::Conference;
use xmpp_parsers::ns;

/// The XEP-0049 key of legacy bookmarks (`<namespace> <element>`).
pub(crate) const BOOKMARKS_KEY: &str = "storage:bookmarks storage";

/// A stored item's payload as `T` (payloads were checked when published).
fn parsed<T: TryFrom<Element>>(row: &PepItemRow) -> Option<T> {
    T::try_from(row.payload.parse::<Element>().ok()?).ok()
}

impl Session {
    /// XEP-0084 → XEP-0054: the vCard PHOTO follows the published avatar (removed when the
    /// metadata is empty; left alone when the data is not in the data node, e.g. a URL).
    pub(crate) async fn avatar_to_vcard(
        &mut self,
        owner: &str,
        metadata: &PepItemRow,
    ) -> Result<(), Failure> {
        use xmpp_parsers::avatar::{Data, Metadata};
        let meta = parsed::<Metadata>(metadata).ok_or(Failure::BadRequest)?;
        let photo = match meta.infos.first() {
            None => None,
            Some(info) => {
                let id = sha1_hex_of(&info.id);
                let Some(row) = self
                    .hub
                    .store
                    .pep_items(owner, ns::AVATAR_DATA, &[id], None)
                    .await?
                    .pop()
                else {
                    return Ok(());
                };
                let data = parsed::<Data>(&row).ok_or(Failure::BadRequest)?;
                Some((info.type_.clone(), data.data))
            }
        };
        let mut card = match self.hub.store.private_xml(owner, ns::VCARD).await? {
            Some(xml) => xml
                .parse::<Element>()
                .unwrap_or_else(|_| el("vCard", ns::VCARD, &[])),
            None => el("vCard", ns::VCARD, &[]),
        };
        while card.remove_child("PHOTO", ns::VCARD).is_some() {}
        if let Some((mime, bytes)) = photo {
            use base64::Engine;
            let mut p = el("PHOTO", ns::VCARD, &[]);
            p.append_child(crate::util::text_el("TYPE", ns::VCARD, &mime));
            p.append_child(crate::util::text_el(
                "BINVAL",
                ns::VCARD,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            ));
            card.append_child(p);
        }
        let xml = element_to_string(&card).ok_or(Failure::BadRequest)?;
        self.hub
            .store
            .set_private_xml(owner, ns::VCARD, &xml)
            .await?;
        Ok(())
    }

    /// XEP-0054 → XEP-0084: a vCard PHOTO set by a client is published as the PEP avatar
    /// (data, then metadata); a removed PHOTO empties a non-empty metadata node.
    pub(crate) async fn vcard_to_avatar(&mut self, card: &Element) -> Result<(), Failure> {
        use xmpp_parsers::avatar::{Data, Info, Metadata};
        let owner = self.bare.clone();
        let photo = card
            .get_child("PHOTO", ns::VCARD)
            .and_then(|p| xmpp_parsers::vcard::Photo::try_from(p.clone()).ok());
        let current = self
            .hub
            .store
            .pep_items(&owner, ns::AVATAR_METADATA, &[], Some(1))
            .await?
            .pop()
            .and_then(|r| parsed::<Metadata>(&r));
        let current_id = current
            .as_ref()
            .and_then(|m| m.infos.first())
            .map(|i| sha1_hex_of(&i.id));
        let metadata = match photo {
            Some(photo) if !photo.binval.data.is_empty() => {
                let id = sha1_hex(&photo.binval.data);
                if current_id.as_deref() == Some(id.as_str()) {
                    return Ok(());
                }
                let bytes =
                    u32::try_from(photo.binval.data.len()).map_err(|_| PepError::PayloadTooBig)?;
                let data = Element::from(Data {
                    data: photo.binval.data,
                });
                self.pep_store(ns::AVATAR_DATA, &id, &data, Options::default())
                    .await?;
                let info_id = id.parse().map_err(|_| Failure::BadRequest)?;
                let meta = Metadata {
                    infos: vec![Info {
                        bytes,
                        width: None,
                        height: None,
                        id: info_id,
                        type_: photo.type_.data,
                        url: None,
                    }],
                };
                (Element::from(meta), id)
            }
            _ if current_id.is_some() => {
                (Element::from(Metadata { infos: Vec::new() }), random_id())
            }
            _ => return Ok(()),
        };
        self.pep_store(
            ns::AVATAR_METADATA,
            &metadata.1,
            &metadata.0,
            Options::default(),
        )
        .await?;
        Ok(())
    }

    /// XEP-0049 get of `storage:bookmarks`: built from the PEP bookmarks node; `None` when
    /// the account has none (the stored private XML answers then).
    pub(crate) async fn bookmarks_as_private(&mut self) -> Result<Option<Element>, Failure> {
        let owner = self.bare.clone();
        if self
            .hub
            .store
            .pep_node(&owner, ns::BOOKMARKS2)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let mut storage = Storage::new();
        for item in self
            .hub
            .store
            .pep_items(&owner, ns::BOOKMARKS2, &[], None)
            .await?
        {
            let Ok(jid) = xmpp_parsers::jid::BareJid::new(&item.item_id) else {
                continue;
            };
            let Some(c) = parsed::<Conference>(&item) else {
                continue;
            };
            storage.conferences.push(LegacyConference {
                autojoin: c.autojoin,
                jid,
                name: c.name,
                nick: c.nick,
                password: c.password,
            });
        }
        Ok(Some(Element::from(storage)))
    }

    /// XEP-0049 set of `storage:bookmarks`: each room is published to the PEP bookmarks node
    /// (created whitelisted, as XEP-0402 asks), rooms no longer listed are retracted.
    pub(crate) async fn private_to_bookmarks(&mut self, storage: &Element) -> Result<(), Failure> {
        let user = self.user.clone().ok_or(Failure::Forbidden)?;
        let storage = Storage::try_from(storage.clone()).map_err(|_| Failure::BadRequest)?;
        let owner = self.bare.clone();
        let existing = self.hub.store.pep_node(&owner, ns::BOOKMARKS2).await?;
        let before: Vec<String> = match &existing {
            Some(_) => self
                .hub
                .store
                .pep_items(&owner, ns::BOOKMARKS2, &[], None)
                .await?
                .into_iter()
                .map(|i| i.item_id)
                .collect(),
            None => Vec::new(),
        };
        let options = match existing {
            Some(_) => Options::default(),
            None => Options {
                access_model: Some("whitelist".to_owned()),
                persist_items: Some(true),
                max_items: Some(self.hub.config.pep_max_items_per_node.max(1)),
                send_last: Some("never".to_owned()),
            },
        };
        let mut kept = Vec::new();
        for conference in storage.conferences {
            let (jid, c) = conference.into_bookmarks2();
            let id = jid.to_string();
            self.pep_store(ns::BOOKMARKS2, &id, &Element::from(c), options.clone())
                .await?;
            kept.push(id);
        }
        if let Some(node) = self.hub.store.pep_node(&owner, ns::BOOKMARKS2).await? {
            for id in before.iter().filter(|id| !kept.contains(id)) {
                self.pep_remove(user.id, &node, id).await?;
            }
        }
        Ok(())
    }
}
