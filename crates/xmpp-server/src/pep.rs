//! XEP-0163 personal eventing on each account's bare JID (a XEP-0060 subset: publish with
//! auto-create and publish-options, retract, items, delete node), notifications filtered by
//! XEP-0115 caps (resolved by disco#info, verified, cached by verification string), the last
//! item on available presence, XEP-0084 avatars kept in step with the vCard PHOTO and
//! XEP-0402 bookmark payload checks. No explicit subscriptions, collections or node
//! configuration forms, no whitelist affiliations beyond the owner.
use crate::error::Failure;
use crate::hub::{lock, Hub};
use crate::session::Session;
use crate::util::{el, now_ms, random_id, Jid};
use iris_model::UserId;
use iris_store::{PepItemRow, PepNodeRow, PepPublish, PepPublished};
use iris_xmpp::wire::{element_to_string, iq_result};
use iris_xmpp::Element;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::{self, event, owner as pubsub_owner, ItemId, NodeName, PubSub};

/// Most caps verification strings remembered; past it the cache starts over.
const CAPS_CACHE_MAX: usize = 10_000;
/// Most disco#info queries for caps in flight at once.
const CAPS_PENDING_MAX: usize = 1_000;
/// After this long without an answer a caps query may be sent again.
const CAPS_RETRY: Duration = Duration::from_secs(30);

/// Why a PEP request failed; [`PepError::wire`] gives its XEP-0060 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PepError {
    /// publish-options do not match the existing node (XEP-0060 §7.1.5).
    #[error("precondition not met")]
    PreconditionNotMet,
    /// The item is larger than `pep_max_item_bytes`.
    #[error("payload too big")]
    PayloadTooBig,
    /// The payload is not what the node holds (e.g. an avatar whose id is not its SHA-1).
    #[error("invalid payload")]
    InvalidPayload,
    /// A publish or retract without an item.
    #[error("item required")]
    ItemRequired,
    /// An item without a payload.
    #[error("payload required")]
    PayloadRequired,
    /// No node name.
    #[error("node id required")]
    NodeIdRequired,
    /// The account has `pep_max_nodes_per_user` nodes.
    #[error("too many nodes")]
    MaxNodes,
    /// `pubsub#max_items` above `pep_max_items_per_node`.
    #[error("too many items")]
    MaxItems,
    /// `presence` access model and no presence subscription.
    #[error("presence subscription required")]
    PresenceRequired,
    /// `whitelist` access model and not on it.
    #[error("closed node")]
    ClosedNode,
    /// A publish-options value that cannot be honoured.
    #[error("invalid options")]
    InvalidOptions,
    /// A pubsub feature this service does not have (the XEP-0060 feature name).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl PepError {
    /// The stanza condition and the `pubsub#errors` element of this error.
    pub(crate) fn wire(self) -> (iris_xmpp::StanzaErrorCondition, Element) {
        use iris_xmpp::StanzaErrorCondition as C;
        let (c, name) = match self {
            PepError::PreconditionNotMet => (C::Conflict, "precondition-not-met"),
            PepError::PayloadTooBig => (C::NotAcceptable, "payload-too-big"),
            PepError::InvalidPayload => (C::BadRequest, "invalid-payload"),
            PepError::ItemRequired => (C::BadRequest, "item-required"),
            PepError::PayloadRequired => (C::BadRequest, "payload-required"),
            PepError::NodeIdRequired => (C::BadRequest, "nodeid-required"),
            PepError::MaxNodes => (C::PolicyViolation, "max-nodes-exceeded"),
            PepError::MaxItems => (C::PolicyViolation, "max-items-exceeded"),
            PepError::PresenceRequired => (C::NotAuthorized, "presence-subscription-required"),
            PepError::ClosedNode => (C::NotAllowed, "closed-node"),
            PepError::InvalidOptions => (C::BadRequest, "invalid-options"),
            PepError::Unsupported(_) => (C::FeatureNotImplemented, "unsupported"),
        };
        let mut app = el(name, ns::PUBSUB_ERRORS, &[]);
        if let PepError::Unsupported(feature) = self {
            crate::util::set(&mut app, "feature", feature);
        }
        (c, app)
    }
}

/// Features advertised on an account's bare JID (XEP-0163 §7, XEP-0060 §10, XEP-0402 §6).
const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    ns::BOOKMARKS2_COMPAT,
];

/// Adds the PEP identity and features to an account's disco#info answer.
pub(crate) fn advertise(query: &mut Element) {
    query.append_child(el(
        "identity",
        crate::util::ns::DISCO_INFO,
        &[("category", "pubsub"), ("type", "pep")],
    ));
    for f in FEATURES {
        query.append_child(el("feature", crate::util::ns::DISCO_INFO, &[("var", f)]));
    }
}

/// Node configuration asked for in publish-options; `None`: not asked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub access_model: Option<String>,
    pub persist_items: Option<bool>,
    pub max_items: Option<i64>,
    pub send_last: Option<String>,
}

fn parse_bool(v: &str) -> Result<bool, PepError> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(PepError::InvalidOptions),
    }
}

/// Reads a `pubsub#publish-options` form; fields this service does not know are ignored.
fn parse_options(form: &DataForm, max_cap: i64) -> Result<Options, PepError> {
    let mut o = Options::default();
    for f in &form.fields {
        let Some(value) = f.values.first() else {
            continue;
        };
        match f.var.as_deref() {
            Some("pubsub#access_model") => {
                o.access_model = Some(match value.as_str() {
                    m @ ("presence" | "open" | "whitelist") => m.to_owned(),
                    "roster" => return Err(PepError::Unsupported("access-roster")),
                    "authorize" => return Err(PepError::Unsupported("access-authorize")),
                    _ => return Err(PepError::InvalidOptions),
                })
            }
            Some("pubsub#persist_items") => o.persist_items = Some(parse_bool(value)?),
            Some("pubsub#max_items") => {
                let n = match value.as_str() {
                    "max" => max_cap,
                    v => v.parse::<i64>().map_err(|_| PepError::InvalidOptions)?,
                };
                if n < 1 {
                    return Err(PepError::InvalidOptions);
                }
                if n > max_cap {
                    return Err(PepError::MaxItems);
                }
                o.max_items = Some(n);
            }
            Some("pubsub#send_last_published_item") => {
                o.send_last = Some(match value.as_str() {
                    v @ ("never" | "on_sub" | "on_sub_and_presence") => v.to_owned(),
                    _ => return Err(PepError::InvalidOptions),
                })
            }
            _ => {}
        }
    }
    Ok(o)
}

/// Whether an existing node satisfies the asked options (XEP-0060 §7.1.5).
fn satisfies(node: &PepNodeRow, o: &Options) -> bool {
    o.access_model
        .as_ref()
        .is_none_or(|a| *a == node.access_model)
        && o.persist_items.is_none_or(|p| p == node.persist_items)
        && o.max_items.is_none_or(|m| m == node.max_items)
        && o.send_last.as_ref().is_none_or(|s| *s == node.send_last)
}

fn new_node(owner: &str, node: &str, o: Options) -> PepNodeRow {
    PepNodeRow {
        owner: owner.to_owned(),
        node: node.to_owned(),
        access_model: o.access_model.unwrap_or_else(|| "presence".to_owned()),
        persist_items: o.persist_items.unwrap_or(true),
        max_items: o.max_items.unwrap_or(1),
        send_last: o
            .send_last
            .unwrap_or_else(|| "on_sub_and_presence".to_owned()),
        created_at: now_ms(),
    }
}

pub(crate) fn sha1_hex(data: &[u8]) -> String {
    use xmpp_parsers::sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks the payloads of the nodes whose format this server relies on.
fn validate(node: &str, id: &str, payload: &Element) -> Result<(), PepError> {
    use xmpp_parsers::avatar::{Data, Metadata};
    use xmpp_parsers::bookmarks2::Conference;
    let bad = |_| PepError::InvalidPayload;
    match node {
        ns::AVATAR_DATA => {
            let d = Data::try_from(payload.clone()).map_err(bad)?;
            if sha1_hex(&d.data) != id {
                return Err(PepError::InvalidPayload);
            }
        }
        ns::AVATAR_METADATA => {
            // ids are SHA-1 hex; checked here because the parser slices them by bytes
            let hex_ids = payload.children().all(|c| {
                c.name() != "info"
                    || c.attr("id")
                        .is_some_and(|i| i.len() == 40 && i.bytes().all(|b| b.is_ascii_hexdigit()))
            });
            if !hex_ids {
                return Err(PepError::InvalidPayload);
            }
            Metadata::try_from(payload.clone()).map_err(bad)?;
        }
        ns::BOOKMARKS2 => {
            Conference::try_from(payload.clone()).map_err(bad)?;
            let room = Jid::parse(id).ok_or(PepError::InvalidPayload)?;
            if room.local.is_none() || room.resource.is_some() {
                return Err(PepError::InvalidPayload);
            }
        }
        _ => {}
    }
    Ok(())
}

fn jid_of(bare: &str) -> Option<xmpp_parsers::jid::Jid> {
    xmpp_parsers::jid::Jid::new(bare).ok()
}

/// An event notification `<message/>` from `owner` to `to`.
fn event_message(owner: &str, to: &str, payload: event::Payload) -> Element {
    let mut m = el(
        "message",
        crate::util::ns::CLIENT,
        &[
            ("from", owner),
            ("to", to),
            ("type", "headline"),
            ("id", &random_id()),
        ],
    );
    m.append_child(Element::from(event::Event { payload }));
    m
}

fn items_event(owner: &str, item: &PepItemRow) -> event::Payload {
    event::Payload::Items {
        node: NodeName(item.node.clone()),
        published: vec![event::Item {
            id: Some(ItemId(item.item_id.clone())),
            publisher: jid_of(&item.publisher).or_else(|| jid_of(owner)),
            payload: item.payload.parse::<Element>().ok(),
        }],
        retracted: Vec::new(),
    }
}

/// The features of an entity, from its caps.
type Features = Arc<HashSet<String>>;

/// What a pending caps query waits for.
struct PendingCaps {
    key: String,
    algo: xmpp_parsers::hashes::Algo,
    ver: Vec<u8>,
    sent: Instant,
    /// Full JIDs that announced this verification string meanwhile.
    waiting: Vec<String>,
}

/// Shared PEP state: the XEP-0115 caps cache and the disco#info queries in flight.
#[derive(Default)]
pub(crate) struct PepState {
    /// `hash ver` → features.
    caps: Mutex<HashMap<String, Arc<HashSet<String>>>>,
    /// iq id → query.
    pending: Mutex<HashMap<String, PendingCaps>>,
}

/// The XEP-0115 §5.1 verification string of a disco#info answer (before hashing).
/// Not `xmpp_parsers::caps::compute_disco`: 0.23 sorts items after appending `<`, which
/// misorders a feature that is a prefix of another (`x` and `x+notify`).
fn caps_input(info: &xmpp_parsers::disco::DiscoInfoResult) -> Vec<u8> {
    let mut out = String::new();
    let mut identities: Vec<_> = info
        .identities
        .iter()
        .map(|i| {
            (
                i.category.as_str(),
                i.type_.as_str(),
                i.lang.as_deref().unwrap_or_default(),
                i.name.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    identities.sort();
    for (category, kind, lang, name) in identities {
        out.push_str(&format!("{category}/{kind}/{lang}/{name}<"));
    }
    // a BTreeSet: already in octet order
    for f in &info.features {
        out.push_str(f);
        out.push('<');
    }
    let mut forms: Vec<_> = info
        .extensions
        .iter()
        .filter_map(|f| Some((f.form_type()?, f)))
        .collect();
    forms.sort_by(|a, b| a.0.cmp(b.0));
    for (form_type, form) in forms {
        out.push_str(form_type);
        out.push('<');
        let mut fields: Vec<_> = form
            .fields
            .iter()
            .filter_map(|f| Some((f.var.as_deref()?, f)))
            .filter(|(var, _)| *var != "FORM_TYPE")
            .collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        for (var, field) in fields {
            out.push_str(var);
            out.push('<');
            let mut values = field.values.clone();
            values.sort();
            for v in values {
                out.push_str(&v);
                out.push('<');
            }
        }
    }
    out.into_bytes()
}

/// The XEP-0115 `<c/>` of a presence: (`hash ver` key, node, hash, ver).
fn caps_of(presence: &Element) -> Option<(String, String, String, String)> {
    let c = presence.get_child("c", ns::CAPS)?;
    let (node, hash, ver) = (c.attr("node")?, c.attr("hash")?, c.attr("ver")?);
    Some((
        format!("{hash} {ver}"),
        node.to_owned(),
        hash.to_owned(),
        ver.to_owned(),
    ))
}

impl PepState {
    /// Features of the entity behind `presence`, when its caps are known; otherwise a
    /// disco#info query goes to `full` (answered in [`Session::pep_caps_answer`]).
    fn features(&self, hub: &Hub, full: &str, presence: &Element) -> Option<Arc<HashSet<String>>> {
        let (key, node, hash, ver) = caps_of(presence)?;
        if let Some(f) = lock(&self.caps).get(&key) {
            return Some(f.clone());
        }
        let algo: xmpp_parsers::hashes::Algo = hash.parse().ok()?;
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&ver)
            .ok()?;
        let id = {
            let mut pending = lock(&self.pending);
            pending.retain(|_, p| p.sent.elapsed() < CAPS_RETRY);
            if let Some(p) = pending.values_mut().find(|p| p.key == key) {
                if !p.waiting.iter().any(|w| w == full) {
                    p.waiting.push(full.to_owned());
                }
                return None;
            }
            if pending.len() >= CAPS_PENDING_MAX {
                return None;
            }
            let id = format!("pepcaps-{}", random_id());
            pending.insert(
                id.clone(),
                PendingCaps {
                    key,
                    algo,
                    ver: raw,
                    sent: Instant::now(),
                    waiting: vec![full.to_owned()],
                },
            );
            id
        };
        let mut iq = el(
            "iq",
            crate::util::ns::CLIENT,
            &[
                ("type", "get"),
                ("id", &id),
                ("to", full),
                ("from", &hub.domain),
            ],
        );
        iq.append_child(el(
            "query",
            crate::util::ns::DISCO_INFO,
            &[("node", &format!("{node}#{ver}"))],
        ));
        hub.send_full(full, iq);
        None
    }

    /// Takes the answer to a caps query: the full JIDs waiting for it and, when the answer
    /// matches the verification string (XEP-0115 §5.4), its features (then cached).
    fn answer(&self, iq: &Element) -> Option<(Vec<String>, Option<Features>)> {
        let id = iq.attr("id")?;
        let p = {
            let mut pending = lock(&self.pending);
            // only the queried resource may answer (`from` is stamped by the stream)
            let asked = pending.get(id)?.waiting.first().map(String::as_str);
            if asked != iq.attr("from") {
                return None;
            }
            pending.remove(id)?
        };
        let verified = (|| {
            if iq.attr("type") != Some("result") {
                return None;
            }
            let q = iq.get_child("query", crate::util::ns::DISCO_INFO)?;
            let info = xmpp_parsers::disco::DiscoInfoResult::try_from(q.clone()).ok()?;
            let data = caps_input(&info);
            let hash = xmpp_parsers::caps::hash_caps(&data, p.algo.clone()).ok()?;
            (hash.hash == p.ver)
                .then(|| Arc::new(info.features.into_iter().collect::<HashSet<_>>()))
        })();
        if let Some(f) = &verified {
            let mut caps = lock(&self.caps);
            if caps.len() >= CAPS_CACHE_MAX {
                caps.clear();
            }
            caps.insert(p.key.clone(), f.clone());
        } else {
            tracing::debug!(key = %p.key, "caps answer missing or not matching its hash");
        }
        Some((p.waiting, verified))
    }
}

/// May `who` (a bare JID) read `node` of `owner`?
async fn may_read(
    hub: &Hub,
    owner: &str,
    who: &str,
    who_id: Option<UserId>,
    node: &PepNodeRow,
) -> Result<(), PepError> {
    may_read_model(hub, owner, who, who_id, &node.access_model).await
}

/// May `who` read a node of `owner` with this access model?
async fn may_read_model(
    hub: &Hub,
    owner: &str,
    who: &str,
    who_id: Option<UserId>,
    access_model: &str,
) -> Result<(), PepError> {
    if who == owner {
        return Ok(());
    }
    if hub.blocked_either_way(owner, who).await {
        return Err(PepError::PresenceRequired);
    }
    match access_model {
        "open" => Ok(()),
        "presence" => {
            let subscribed = match who_id {
                Some(id) => hub.accepted_contacts(id).await.iter().any(|c| c == owner),
                None => false,
            };
            if subscribed {
                Ok(())
            } else {
                Err(PepError::PresenceRequired)
            }
        }
        _ => Err(PepError::ClosedNode),
    }
}

impl Hub {
    /// Full JIDs to notify about `node` of `owner`: the owner's and (unless whitelisted) its
    /// presence subscribers' available resources whose caps list `<node>+notify`.
    async fn pep_interested(
        &self,
        owner: &str,
        owner_id: UserId,
        node: &PepNodeRow,
    ) -> Vec<String> {
        let mut bares = vec![owner.to_owned()];
        if node.access_model != "whitelist" {
            for c in self.accepted_contacts(owner_id).await {
                if !self.blocked_either_way(owner, &c).await {
                    bares.push(c);
                }
            }
        }
        let want = format!("{}+notify", node.node);
        let mut out = Vec::new();
        for bare in bares {
            for r in self.router.resources(&bare) {
                let Some(p) = &r.presence else { continue };
                if self
                    .pep
                    .features(self, &r.full, p)
                    .is_some_and(|f| f.contains(&want))
                {
                    out.push(r.full);
                }
            }
        }
        out
    }

    /// Sends an event about `node` of `owner` to every interested resource.
    async fn pep_notify(
        &self,
        owner: &str,
        owner_id: UserId,
        node: &PepNodeRow,
        payload: event::Payload,
    ) {
        for full in self.pep_interested(owner, owner_id, node).await {
            self.send_full(&full, event_message(owner, &full, payload.clone()));
        }
    }

    /// XEP-0163 §4.3.1: the last item of every node `full` may read and wants, from its own
    /// account and its presence subscriptions (sent when it becomes available).
    async fn pep_send_last(&self, full: &str, features: &HashSet<String>) {
        let bare = crate::util::bare_of(full).to_owned();
        let Some(user) = self.user_by_bare(&bare).await else {
            return;
        };
        let mut owners = vec![bare.clone()];
        owners.extend(self.accepted_contacts(user.id).await);
        for owner in owners {
            let last = match self.store.pep_last_items(&owner).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "PEP last items unavailable");
                    continue;
                }
            };
            for (node, item) in last {
                if node.send_last != "on_sub_and_presence"
                    || !features.contains(&format!("{}+notify", node.node))
                    || may_read(self, &owner, &bare, Some(user.id), &node)
                        .await
                        .is_err()
                {
                    continue;
                }
                self.send_full(
                    full,
                    event_message(&owner, full, items_event(&owner, &item)),
                );
            }
        }
    }
}

impl Session {
    /// Disco#items on an account (XEP-0060 §5.2 on the bare JID): `owner`'s PEP nodes that the
    /// requester may read, as `<item jid='owner' node='…'/>`.
    pub(crate) async fn pep_disco_items(
        &mut self,
        iq: &Element,
        owner: &str,
    ) -> Result<(), Failure> {
        let me = self.user.as_ref().map(|u| u.id);
        let mut q = el("query", ns::DISCO_ITEMS, &[]);
        for node in self.hub.store.pep_nodes(owner).await? {
            if may_read(&self.hub, owner, &self.bare, me, &node)
                .await
                .is_ok()
            {
                q.append_child(el(
                    "item",
                    ns::DISCO_ITEMS,
                    &[("jid", owner), ("node", &node.node)],
                ));
            }
        }
        let _ = self.stream.send_stanza(&iq_result(iq, Some(q)));
        Ok(())
    }

    /// Pubsub IQs to `owner`'s PEP service (the sender's own when `owner` is its bare JID).
    pub(crate) async fn pep_iq(
        &mut self,
        iq: &Element,
        payload: &Element,
        owner: &str,
    ) -> Result<(), Failure> {
        let is_set = iq.attr("type") == Some("set");
        let mine = owner == self.bare;
        if payload.ns() == ns::PUBSUB_OWNER {
            if !mine {
                return Err(Failure::Forbidden);
            }
            let o =
                pubsub_owner::Owner::try_from(payload.clone()).map_err(|_| Failure::BadRequest)?;
            return match o.payload {
                pubsub_owner::Payload::Delete { node, .. } if is_set => {
                    self.pep_delete(iq, &node.0).await
                }
                _ => Err(PepError::Unsupported("config-node").into()),
            };
        }
        let request = PubSub::try_from(payload.clone()).map_err(|_| Failure::BadRequest)?;
        match request {
            PubSub::Items(items) if !is_set => self.pep_items(iq, owner, items).await,
            _ if !mine => Err(Failure::Forbidden),
            PubSub::Publish {
                publish,
                publish_options,
            } if is_set => {
                let form = publish_options.and_then(|o| o.form);
                self.pep_publish(iq, publish, form).await
            }
            PubSub::Retract(r) if is_set => self.pep_retract(iq, r).await,
            PubSub::Create { .. } => Err(PepError::Unsupported("create-nodes").into()),
            PubSub::Subscribe { .. } | PubSub::Unsubscribe(_) => {
                Err(PepError::Unsupported("subscribe").into())
            }
            _ => Err(Failure::BadRequest),
        }
    }

    async fn pep_publish(
        &mut self,
        iq: &Element,
        publish: pubsub::pubsub::Publish,
        form: Option<DataForm>,
    ) -> Result<(), Failure> {
        let node = publish.node.0;
        if node.is_empty() {
            return Err(PepError::NodeIdRequired.into());
        }
        let mut items = publish.items.into_iter();
        let item = items.next().ok_or(PepError::ItemRequired)?;
        if items.next().is_some() {
            return Err(PepError::InvalidPayload.into());
        }
        let payload = item.payload.ok_or(PepError::PayloadRequired)?;
        let id = item
            .id
            .map(|i| i.0)
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random_id);
        let cap = self.hub.config.pep_max_items_per_node.max(1);
        let options = match &form {
            Some(f) => parse_options(f, cap)?,
            None => Options::default(),
        };
        let owner = self.bare.clone();
        let row = self.pep_store(&node, &id, &payload, options).await?;
        let mut answer = el("pubsub", ns::PUBSUB, &[]);
        let mut p = el("publish", ns::PUBSUB, &[("node", &node)]);
        p.append_child(el("item", ns::PUBSUB, &[("id", &id)]));
        answer.append_child(p);
        let _ = self.stream.send_stanza(&iq_result(iq, Some(answer)));
        if node == ns::AVATAR_METADATA {
            if let Err(e) = self.avatar_to_vcard(&owner, &row).await {
                tracing::warn!(error = %e, "vCard not updated from the PEP avatar");
            }
        }
        Ok(())
    }

    /// Checks, stores and notifies one item published by this session's account.
    pub(crate) async fn pep_store(
        &mut self,
        node: &str,
        id: &str,
        payload: &Element,
        options: Options,
    ) -> Result<PepItemRow, Failure> {
        let user = self.user.clone().ok_or(Failure::Forbidden)?;
        let owner = self.bare.clone();
        let xml = element_to_string(payload).ok_or(Failure::BadRequest)?;
        if xml.len() > self.hub.config.pep_max_item_bytes {
            return Err(PepError::PayloadTooBig.into());
        }
        validate(node, id, payload)?;
        let config = match self.hub.store.pep_node(&owner, node).await? {
            Some(existing) if !satisfies(&existing, &options) => {
                return Err(PepError::PreconditionNotMet.into())
            }
            Some(existing) => existing,
            None => new_node(&owner, node, options),
        };
        let row = PepItemRow {
            node: node.to_owned(),
            item_id: id.to_owned(),
            publisher: owner.clone(),
            payload: xml,
            published_at: now_ms(),
        };
        let published = self
            .hub
            .store
            .pep_publish(&PepPublish {
                config: &config,
                item: &row,
                max_nodes: self.hub.config.pep_max_nodes_per_user,
            })
            .await?;
        if published == PepPublished::NodeLimit {
            return Err(PepError::MaxNodes.into());
        }
        self.hub
            .pep_notify(&owner, user.id, &config, items_event(&owner, &row))
            .await;
        Ok(row)
    }

    async fn pep_items(
        &mut self,
        iq: &Element,
        owner: &str,
        request: pubsub::pubsub::Items,
    ) -> Result<(), Failure> {
        let node = request.node.0;
        let me = self.user.as_ref().map(|u| u.id);
        let Some(config) = self.hub.store.pep_node(owner, &node).await? else {
            // A missing node is refused like a default (presence) node first, so someone
            // who may not read the owner's nodes cannot probe which ones exist.
            may_read_model(&self.hub, owner, &self.bare, me, "presence").await?;
            return Err(Failure::NotFound);
        };
        may_read(&self.hub, owner, &self.bare, me, &config).await?;
        let ids: Vec<String> = request
            .items
            .into_iter()
            .filter_map(|i| i.id.map(|i| i.0))
            .collect();
        let max = request.max_items.map(i64::from);
        let rows = self.hub.store.pep_items(owner, &node, &ids, max).await?;
        if !ids.is_empty() && rows.is_empty() {
            return Err(Failure::NotFound);
        }
        let answer = PubSub::Items(pubsub::pubsub::Items {
            max_items: None,
            node: NodeName(node),
            subid: None,
            items: rows
                .iter()
                .map(|r| pubsub::pubsub::Item {
                    id: Some(ItemId(r.item_id.clone())),
                    publisher: jid_of(&r.publisher),
                    payload: r.payload.parse::<Element>().ok(),
                })
                .collect(),
        });
        let _ = self
            .stream
            .send_stanza(&iq_result(iq, Some(Element::from(answer))));
        Ok(())
    }

    async fn pep_retract(
        &mut self,
        iq: &Element,
        r: pubsub::pubsub::Retract,
    ) -> Result<(), Failure> {
        let user = self.user.clone().ok_or(Failure::Forbidden)?;
        let owner = self.bare.clone();
        let node = r.node.0;
        let mut items = r.items.into_iter();
        let id = items
            .next()
            .and_then(|i| i.id)
            .map(|i| i.0)
            .ok_or(PepError::ItemRequired)?;
        if items.next().is_some() {
            return Err(Failure::BadRequest);
        }
        let config = self
            .hub
            .store
            .pep_node(&owner, &node)
            .await?
            .ok_or(Failure::NotFound)?;
        if !self.pep_remove(user.id, &config, &id).await? {
            return Err(Failure::NotFound);
        }
        self.reply_empty(iq);
        Ok(())
    }

    /// Retracts one item of this account's `node` and tells the interested resources;
    /// false when it was not there.
    pub(crate) async fn pep_remove(
        &mut self,
        owner_id: UserId,
        node: &PepNodeRow,
        id: &str,
    ) -> Result<bool, Failure> {
        if !self
            .hub
            .store
            .pep_retract(&node.owner, &node.node, id)
            .await?
        {
            return Ok(false);
        }
        let retract = event::Payload::Items {
            node: NodeName(node.node.clone()),
            published: Vec::new(),
            retracted: vec![ItemId(id.to_owned())],
        };
        self.hub
            .pep_notify(&node.owner, owner_id, node, retract)
            .await;
        Ok(true)
    }

    async fn pep_delete(&mut self, iq: &Element, node: &str) -> Result<(), Failure> {
        let user = self.user.clone().ok_or(Failure::Forbidden)?;
        let owner = self.bare.clone();
        let config = self
            .hub
            .store
            .pep_node(&owner, node)
            .await?
            .ok_or(Failure::NotFound)?;
        // the interested resources are computed before the node is gone
        let targets = self.hub.pep_interested(&owner, user.id, &config).await;
        if !self.hub.store.pep_delete_node(&owner, node).await? {
            return Err(Failure::NotFound);
        }
        self.reply_empty(iq);
        let delete = event::Payload::Delete {
            node: NodeName(node.to_owned()),
            redirect: None,
        };
        for full in targets {
            self.hub
                .send_full(&full, event_message(&owner, &full, delete.clone()));
        }
        Ok(())
    }

    fn reply_empty(&mut self, iq: &Element) {
        let _ = self.stream.send_stanza(&iq_result(iq, None));
    }

    /// On an available presence that is the first or announces new caps: the last items
    /// this resource wants (XEP-0163 §4.3.1), at once or once its caps are resolved.
    pub(crate) async fn pep_presence(&mut self, presence: &Element, before: Option<&Element>) {
        let caps = caps_of(presence).map(|c| c.0);
        if caps.is_none() || before.is_some_and(|b| caps_of(b).map(|c| c.0) == caps) {
            return;
        }
        let full = self.full.clone().unwrap_or_default();
        if let Some(features) = self.hub.pep.features(&self.hub, &full, presence) {
            self.hub.pep_send_last(&full, &features).await;
        }
    }

    /// Takes an IQ answer to one of our caps queries; false when it is not one.
    pub(crate) async fn pep_caps_answer(&mut self, iq: &Element) -> bool {
        let Some((waiting, features)) = self.hub.pep.answer(iq) else {
            return false;
        };
        let Some(features) = features else {
            return true;
        };
        for full in waiting {
            if self
                .hub
                .router
                .resource(&full)
                .is_some_and(|r| r.presence.is_some())
            {
                self.hub.pep_send_last(&full, &features).await;
            }
        }
        true
    }
}

/// The lower-case hex form of an XEP-0084 SHA-1 id.
pub(crate) fn sha1_hex_of(id: &xmpp_parsers::hashes::Sha1HexAttribute) -> String {
    id.to_hex()
}

/// Whether an IQ payload is a pubsub request for a PEP service.
pub(crate) fn is_pubsub(payload: &Element) -> bool {
    payload.ns() == ns::PUBSUB || payload.ns() == ns::PUBSUB_OWNER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep0115_answer_is_verified_against_the_hash() {
        let state = PepState::default();
        let raw = "vNkaoAPSNbm/YJ9KUkiM8PerQt4=";
        use base64::Engine;
        lock(&state.pending).insert(
            "q1".to_owned(),
            PendingCaps {
                key: format!("sha-1 {raw}"),
                algo: xmpp_parsers::hashes::Algo::Sha_1,
                ver: base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .expect("b64"),
                sent: Instant::now(),
                waiting: vec!["bob@x/r".to_owned()],
            },
        );
        // someone else answering is not taken
        let forged: Element = r#"<iq xmlns="jabber:client" id="q1" type="result" from="eve@x/r"/>"#
            .parse()
            .expect("xml");
        assert!(state.answer(&forged).is_none());
        // a slixmpp 1.17 answer, as sent over the wire
        let iq: Element = r#"<iq xmlns="jabber:client" id="q1" to="example.com" type="result" from="bob@x/r"><query xmlns="http://jabber.org/protocol/disco#info" node="http://slixmpp.com/ver/1.17.0#vNkaoAPSNbm/YJ9KUkiM8PerQt4="><identity category="client" type="bot" /><feature var="http://jabber.org/protocol/disco#info" /><feature var="urn:xmpp:ping" /><feature var="urn:xmpp:forward:0" /><feature var="urn:xmpp:carbons:2" /><feature var="jabber:x:data" /><feature var="http://jabber.org/protocol/rsm" /><feature var="http://jabber.org/protocol/commands" /><feature var="http://jabber.org/protocol/caps" /><feature var="http://jabber.org/protocol/shim" /><feature var="http://jabber.org/protocol/shim#SubID" /><feature var="http://jabber.org/protocol/nick+notify" /><feature var="http://jabber.org/protocol/nick" /><feature var="http://jabber.org/protocol/muc" /><feature var="urn:xmpp:avatar:metadata+notify" /><feature var="urn:xmpp:avatar:metadata" /></query></iq>"#
            .parse()
            .expect("xml");
        let (waiting, features) = state.answer(&iq).expect("pending");
        assert_eq!(waiting, vec!["bob@x/r".to_owned()]);
        let features = features.expect("verified");
        assert!(features.contains("urn:xmpp:avatar:metadata+notify"));
    }
}
