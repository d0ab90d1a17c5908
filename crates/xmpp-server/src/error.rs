//! Errors by cause, and their one mapping to stanza error conditions on the wire.
use iris_xmpp::StanzaErrorCondition;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    /// The stream core rejected the derived configuration (domain, limits).
    #[error("invalid XMPP configuration: {0}")]
    Config(#[from] iris_xmpp::ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why handling one stanza failed; [`Failure::condition`] is the only place these become
/// stanza errors.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A service refused or failed (contacts, accounts).
    #[error("service: {0}")]
    Service(#[from] iris_services::Error),
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] iris_store::StoreError),
    /// The request is malformed.
    #[error("bad request")]
    BadRequest,
    /// The addressee does not exist or is not reachable.
    #[error("recipient unavailable")]
    Unavailable,
    /// The requested item does not exist.
    #[error("item not found")]
    NotFound,
    /// The requester may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Members-only room and the requester is not a member.
    #[error("not a member")]
    NotMember,
    /// Not allowed on this target (kicking a moderator, banning an owner).
    #[error("not allowed")]
    NotAllowed,
    /// The name (room nick) is taken.
    #[error("conflict")]
    Conflict,
    /// The requester is not in the state to do this (not a room occupant).
    #[error("not acceptable")]
    NotAcceptable,
    /// Not implemented here.
    #[error("not implemented")]
    NotImplemented,
    /// A personal eventing (XEP-0163/XEP-0060) request failed.
    #[error("pep: {0}")]
    Pep(#[from] crate::pep::PepError),
}

impl Failure {
    /// The stanza error condition sent to the client for this failure.
    pub(crate) fn condition(&self) -> StanzaErrorCondition {
        use iris_services::Error as E;
        match self {
            Failure::Service(E::Invalid { .. }) | Failure::BadRequest => {
                StanzaErrorCondition::BadRequest
            }
            Failure::Service(E::NotFound(_)) | Failure::NotFound => {
                StanzaErrorCondition::ItemNotFound
            }
            Failure::Service(E::Conflict(_)) => StanzaErrorCondition::Conflict,
            Failure::Service(E::Forbidden) | Failure::Forbidden => StanzaErrorCondition::Forbidden,
            Failure::Service(E::Unauthenticated | E::InvalidCredentials) => {
                StanzaErrorCondition::NotAuthorized
            }
            Failure::Service(E::Locked { .. }) => StanzaErrorCondition::PolicyViolation,
            Failure::Unavailable | Failure::Service(E::Busy) => {
                StanzaErrorCondition::ServiceUnavailable
            }
            Failure::NotImplemented => StanzaErrorCondition::FeatureNotImplemented,
            Failure::NotMember => StanzaErrorCondition::RegistrationRequired,
            Failure::Conflict => StanzaErrorCondition::Conflict,
            Failure::NotAllowed => StanzaErrorCondition::NotAllowed,
            Failure::NotAcceptable => StanzaErrorCondition::NotAcceptable,
            Failure::Pep(e) => e.wire().0,
            Failure::Service(E::Unavailable(_) | E::Internal(_)) | Failure::Store(_) => {
                StanzaErrorCondition::InternalServerError
            }
        }
    }

    /// The application-specific condition element (XEP-0060 `pubsub#errors`), if any.
    pub(crate) fn app_condition(&self) -> Option<iris_xmpp::Element> {
        match self {
            Failure::Pep(e) => Some(e.wire().1),
            _ => None,
        }
    }
}

impl crate::session::Session {
    /// Answers `stanza` with the stanza error of `f` (and its application condition).
    pub(crate) fn send_failure(&mut self, stanza: &iris_xmpp::Element, f: &Failure) {
        let condition = f.condition();
        let Some(app) = f.app_condition() else {
            let _ = self.stream.send_error_reply(stanza, condition);
            return;
        };
        if stanza.attr("type") == Some("error") {
            return;
        }
        let mut reply =
            iris_xmpp::wire::stanza_error(stanza, condition.default_type(), condition, None);
        if let Some(e) = reply.get_child_mut("error", stanza.ns().as_str()) {
            e.append_child(app);
        }
        if reply.attr("to").is_none() {
            if let Some(full) = self.full.clone() {
                iris_xmpp::wire::set_attr(&mut reply, "to", &full);
            }
        }
        let _ = self.stream.send_stanza(&reply);
    }
}
