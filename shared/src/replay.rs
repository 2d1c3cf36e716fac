//! The replay nonce of a signed state-changing admin request, which the request's own write
//! stores in the same transaction so that each signature is accepted once.
//!
//! Its own module, low in the graph: the HTTP surfaces make it, the stores keep it, and neither
//! needs the other to do so.

use sha2::{Digest, Sha256};

use crate::limits::SIGNATURE_MAX_SKEW;
use crate::model::Timestamp;

/// How long past the end of its signature's validity a nonce is kept, against clock steps.
const MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The identity of one signed state-changing request: its signature, whatever its body. NCP's
/// string to sign does not cover the body, so a nonce that included the body would let a captured
/// request be sent again with another body.
///
/// `request` is made once per handled request and stored with the nonce: a store that finds the
/// nonce already there with its own `request` knows the write was applied by an earlier attempt
/// of this very request (an answer that came too late, then a retry), not by a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayNonce {
    pub id: String,
    /// Past this the signature's timestamp is outside the accepted window anyway.
    pub expires_at: Timestamp,
    pub request: String,
}

impl ReplayNonce {
    /// The nonce of a request presenting `signature` over the timestamp `signed_at`.
    pub fn new(signature: &str, signed_at: Timestamp) -> Self {
        Self {
            id: hex::encode(Sha256::digest(signature.as_bytes())),
            expires_at: signed_at + SIGNATURE_MAX_SKEW + MARGIN,
            request: hex::encode(rand::random::<[u8; 16]>()),
        }
    }
}

/// What a replay nonce finds where nonces are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// No live nonce with its id: the write may go ahead.
    New,
    /// Stored by this very handled request: its write is already applied.
    OurOwn,
    /// Stored by another handling of the request.
    Replayed,
}

impl ReplayNonce {
    /// The rule every store applies, given the request that stored the live nonce with this id.
    pub fn seen(&self, stored_by: Option<&str>) -> Seen {
        match stored_by {
            None => Seen::New,
            Some(request) if request == self.request => Seen::OurOwn,
            Some(_) => Seen::Replayed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNATURE: &str = "byO3d75uQpTVeSHznNIoSrUTOOeUu9/pAxSAraqAAic=";

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_timestamp_millis(millis).unwrap()
    }

    #[test]
    fn the_nonce_is_the_signature_alone_and_each_handled_request_is_told_apart() {
        let signed_at = at(1_764_000_000_000);
        let (first, replay) =
            (ReplayNonce::new(SIGNATURE, signed_at), ReplayNonce::new(SIGNATURE, signed_at));
        assert_eq!((&first.id, first.expires_at), (&replay.id, replay.expires_at));
        assert_ne!(first.request, replay.request);
        assert_ne!(ReplayNonce::new(SIGNATURE, signed_at).id, ReplayNonce::new("another", signed_at).id);
    }

    #[test]
    fn a_live_nonce_is_our_own_only_when_this_handling_stored_it() {
        let nonce = ReplayNonce::new(SIGNATURE, at(1_764_000_000_000));
        assert_eq!(nonce.seen(None), Seen::New);
        assert_eq!(nonce.seen(Some(&nonce.request)), Seen::OurOwn);
        assert_eq!(nonce.seen(Some("another handling")), Seen::Replayed);
    }

    #[test]
    fn a_nonce_outlives_every_instant_its_signature_is_accepted() {
        let signed_at = at(1_764_000_000_000);
        let nonce = ReplayNonce::new(SIGNATURE, signed_at);
        // The verifier accepts the signature until signed_at + skew, inclusive.
        assert!(nonce.expires_at > signed_at + SIGNATURE_MAX_SKEW);
    }
}
