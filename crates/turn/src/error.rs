//! Why a TURN request failed, by cause, and the one place that maps causes to STUN error codes.

use iris_stun::AttributeType;

/// Why a request was refused. [`RequestError::wire`] is the only mapping to STUN error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed request or missing/invalid attribute (what is wrong is given).
    BadRequest(&'static str),
    /// Comprehension-required attributes we do not understand.
    UnknownAttributes(Vec<AttributeType>),
    /// No MESSAGE-INTEGRITY: the client must authenticate (challenge with REALM and NONCE).
    Unauthenticated,
    /// The username is unknown or its REST credentials expired.
    UnknownUser,
    /// MESSAGE-INTEGRITY does not match the user's key.
    IntegrityMismatch,
    /// The nonce is too old (or not ours): retry with the fresh one.
    StaleNonce,
    /// The request uses other credentials than the allocation was created with.
    WrongCredentials,
    /// Allocate on a 5-tuple that has an allocation, or another request on one that has none.
    AllocationMismatch,
    /// REQUESTED-TRANSPORT is not UDP.
    UnsupportedTransport,
    /// The requested relay address family cannot be served.
    AddressFamilyNotSupported,
    /// The peer's address family differs from the relayed address family.
    PeerAddressFamilyMismatch,
    /// The user has as many allocations as allowed.
    UserQuotaReached,
    /// The server has as many allocations as allowed.
    TotalQuotaReached,
    /// No relay port could be opened, or the reservation token is unknown.
    InsufficientCapacity,
    /// The peer address is forbidden by the peer policy.
    ForbiddenPeer,
}

impl RequestError {
    /// The STUN error code and reason phrase sent for this cause (for 400, what was wrong).
    pub fn wire(&self) -> (u16, &'static str) {
        match self {
            RequestError::BadRequest(why) => (400, why),
            RequestError::UnknownAttributes(_) => (420, "Unknown Attribute"),
            RequestError::Unauthenticated
            | RequestError::UnknownUser
            | RequestError::IntegrityMismatch => (401, "Unauthorized"),
            RequestError::ForbiddenPeer => (403, "Forbidden"),
            RequestError::AllocationMismatch => (437, "Allocation Mismatch"),
            RequestError::StaleNonce => (438, "Stale Nonce"),
            RequestError::AddressFamilyNotSupported => (440, "Address Family not Supported"),
            RequestError::WrongCredentials => (441, "Wrong Credentials"),
            RequestError::UnsupportedTransport => (442, "Unsupported Transport Protocol"),
            RequestError::PeerAddressFamilyMismatch => (443, "Peer Address Family Mismatch"),
            RequestError::UserQuotaReached | RequestError::TotalQuotaReached => {
                (486, "Allocation Quota Reached")
            }
            RequestError::InsufficientCapacity => (508, "Insufficient Capacity"),
        }
    }

    /// True when the response must carry REALM and NONCE (401 and 438 challenges).
    pub fn is_challenge(&self) -> bool {
        matches!(
            self,
            RequestError::Unauthenticated
                | RequestError::UnknownUser
                | RequestError::IntegrityMismatch
                | RequestError::StaleNonce
        )
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (code, reason) = self.wire();
        write!(f, "{code} {reason}")
    }
}

impl std::error::Error for RequestError {}
