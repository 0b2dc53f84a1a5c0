//! Transaction keys: how a message finds its transaction (RFC 3261 §17.1.3, §17.2.3).
//!
//! The keys are built by the caller from the parsed message (this crate does not depend on the
//! codec), so they hold owned copies of the few header values that matter. Both key types are a
//! pointer to one shared allocation, so the layer keeps one copy per transaction even though it
//! indexes the key and remembers it in the transaction.

use std::sync::Arc;

use thiserror::Error;

/// The method of a request, reduced to what the transaction layer distinguishes.
///
/// INVITE, ACK and CANCEL each have their own rules in §17; every other method follows the
/// non-INVITE state machines, but its name still takes part in matching (§17.2.3 rule 3), so it
/// is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MethodKind {
    /// Runs the INVITE state machines (Timers A, B, D, G, H, I, L, M).
    Invite,
    /// Never creates a transaction: it either completes an INVITE server transaction that sent a
    /// non-2xx final response, or it belongs to the TU (ACK for 2xx, §13.2.2.4).
    Ack,
    /// Its own non-INVITE transaction (§9.2); `ServerKey::cancel_target` finds the INVITE.
    Cancel,
    /// Any other method (REGISTER, SUBSCRIBE, NOTIFY, SERVICE, BENOTIFY, ...), by its exact,
    /// case-sensitive name (RFC 3261 §7.1).
    Other(Box<str>),
}

impl MethodKind {
    /// Classifies a method name as it appears on the wire; method names are case-sensitive, so
    /// `invite` is an extension method, not INVITE.
    pub fn from_name(name: &str) -> Self {
        match name {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "CANCEL" => Self::Cancel,
            other => Self::Other(other.into()),
        }
    }

    /// Whether this method runs the INVITE state machines rather than the non-INVITE ones.
    pub fn is_invite(&self) -> bool {
        matches!(self, Self::Invite)
    }
}

/// Identifies a server transaction: what a retransmitted request or an ACK must share with the
/// request that created the transaction.
///
/// Two forms exist. [`ServerKey::new`] is the RFC 3261 key (top Via branch with the magic cookie
/// `z9hG4bK`, sent-by and method). [`ServerKey::legacy`] is the RFC 2543 fallback for requests
/// whose branch lacks the cookie. A caller that prefers not to track such requests at all can
/// skip the layer for them: they then get no retransmission absorption and the TU sees every
/// retransmission.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerKey(Arc<ServerKeyRepr>);

impl ServerKey {
    /// Builds the RFC 3261 §17.2.3 key. Fails when the branch does not begin with the magic
    /// cookie, because such a branch is not promised to be unique and must not be trusted to
    /// tell transactions apart; use [`ServerKey::legacy`] for those requests.
    ///
    /// `sent_by` is the top Via's sent-by (`host[:port]`) as the codec decoded it; the host's
    /// case is folded here so that retransmissions match however the peer spells it.
    pub fn new(branch: &str, sent_by: &str, method: MethodKind) -> Result<Self, KeyError> {
        if !branch.starts_with(MAGIC_COOKIE) {
            return Err(KeyError::NoMagicCookie);
        }
        Ok(Self(Arc::new(ServerKeyRepr::Rfc3261 {
            branch: branch.into(),
            sent_by: sent_by.to_ascii_lowercase().into_boxed_str(),
            method,
        })))
    }

    /// Builds the RFC 2543 backwards-compatibility key (§17.2.3, second half) for a request
    /// whose top Via branch is absent or lacks the magic cookie.
    ///
    /// The caller normalises each field by that header's own comparison rules (URI comparison
    /// for the Request-URI, case-insensitive tags, ...) before building the key; the key only
    /// compares the strings it is given. The ACK rule ("the To tag of the ACK matches the To tag
    /// of the response sent") is approximated: an ACK matches an INVITE transaction created with
    /// the same To tag, or one created without a To tag (the tag in the ACK is then the one the
    /// server's response added, which this layer never sees).
    pub fn legacy(parts: LegacyKeyParts<'_>) -> Self {
        Self(Arc::new(ServerKeyRepr::Legacy {
            request_uri: parts.request_uri.into(),
            to_tag: parts.to_tag.map(Into::into),
            from_tag: parts.from_tag.map(Into::into),
            call_id: parts.call_id.into(),
            cseq: parts.cseq,
            top_via: parts.top_via.into(),
            method: parts.method.clone(),
        }))
    }

    /// The method of the request this key was built from.
    pub fn method(&self) -> &MethodKind {
        match &*self.0 {
            ServerKeyRepr::Rfc3261 { method, .. } | ServerKeyRepr::Legacy { method, .. } => method,
        }
    }

    /// For a CANCEL, the key of the INVITE it cancels (§9.2: the CANCEL matches the INVITE by
    /// the §17.2.3 rules with the method ignored). `None` for any other method.
    ///
    /// The TU looks the result up with `TransactionLayer::server_id` to decide between a 481
    /// (no such INVITE) and answering the INVITE with 487.
    pub fn cancel_target(&self) -> Option<ServerKey> {
        match self.method() {
            MethodKind::Cancel => Some(self.with_method(MethodKind::Invite)),
            _ => None,
        }
    }

    /// The same key with another method; how an ACK or CANCEL finds its INVITE.
    pub(crate) fn with_method(&self, method: MethodKind) -> ServerKey {
        let repr = match &*self.0 {
            ServerKeyRepr::Rfc3261 {
                branch, sent_by, ..
            } => ServerKeyRepr::Rfc3261 {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method,
            },
            ServerKeyRepr::Legacy {
                request_uri,
                to_tag,
                from_tag,
                call_id,
                cseq,
                top_via,
                ..
            } => ServerKeyRepr::Legacy {
                request_uri: request_uri.clone(),
                to_tag: to_tag.clone(),
                from_tag: from_tag.clone(),
                call_id: call_id.clone(),
                cseq: *cseq,
                top_via: top_via.clone(),
                method,
            },
        };
        ServerKey(Arc::new(repr))
    }

    /// The keys an ACK may match, most specific first (see [`ServerKey::legacy`] for why a
    /// legacy ACK has two candidates).
    pub(crate) fn ack_candidates(&self) -> impl Iterator<Item = ServerKey> {
        let first = self.with_method(MethodKind::Invite);
        let second = match &*first.0 {
            ServerKeyRepr::Legacy {
                request_uri,
                to_tag: Some(_),
                from_tag,
                call_id,
                cseq,
                top_via,
                ..
            } => Some(ServerKey(Arc::new(ServerKeyRepr::Legacy {
                request_uri: request_uri.clone(),
                to_tag: None,
                from_tag: from_tag.clone(),
                call_id: call_id.clone(),
                cseq: *cseq,
                top_via: top_via.clone(),
                method: MethodKind::Invite,
            }))),
            _ => None,
        };
        std::iter::once(first).chain(second)
    }
}

/// The header values that identify a request from an RFC 2543 client, for
/// [`ServerKey::legacy`].
#[derive(Clone, Copy, Debug)]
pub struct LegacyKeyParts<'a> {
    /// The Request-URI, normalised by the caller for comparison.
    pub request_uri: &'a str,
    /// The To tag, if the request has one.
    pub to_tag: Option<&'a str>,
    /// The From tag; RFC 2543 did not require one.
    pub from_tag: Option<&'a str>,
    /// The Call-ID.
    pub call_id: &'a str,
    /// The CSeq number; the CSeq method is `method`.
    pub cseq: u32,
    /// The whole top Via value.
    pub top_via: &'a str,
    /// The request method (the CSeq method).
    pub method: &'a MethodKind,
}

/// Identifies a client transaction: what a response must share with the request we sent
/// (§17.1.3: the top Via branch and the CSeq method).
///
/// The branch is one this server generated (with the magic cookie and enough randomness to be
/// unique), so no sent-by is needed. The CSeq method keeps a CANCEL's responses apart from the
/// INVITE's, which carry the same branch (§9.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(Arc<ClientKeyRepr>);

impl ClientKey {
    /// Builds the key from the branch we put in the top Via and the CSeq method (of our request
    /// when starting the transaction, of the response when matching one).
    pub fn new(branch: &str, method: MethodKind) -> Self {
        Self(Arc::new(ClientKeyRepr {
            branch: branch.into(),
            method,
        }))
    }

    /// The branch this transaction was sent with.
    pub fn branch(&self) -> &str {
        &self.0.branch
    }

    /// The method of the request this transaction sends.
    pub fn method(&self) -> &MethodKind {
        &self.0.method
    }
}

/// Why a server key could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The top Via branch is missing the `z9hG4bK` prefix, so the request comes from an RFC 2543
    /// client: key it with `ServerKey::legacy` (or pass it to the TU without a transaction).
    #[error("top Via branch lacks the z9hG4bK magic cookie; use a legacy key")]
    NoMagicCookie,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum ServerKeyRepr {
    Rfc3261 {
        branch: Box<str>,
        sent_by: Box<str>,
        method: MethodKind,
    },
    Legacy {
        request_uri: Box<str>,
        to_tag: Option<Box<str>>,
        from_tag: Option<Box<str>>,
        call_id: Box<str>,
        cseq: u32,
        top_via: Box<str>,
        method: MethodKind,
    },
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ClientKeyRepr {
    branch: Box<str>,
    method: MethodKind,
}

/// The prefix that marks an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_17_2_3_branch_without_magic_cookie_is_rejected() {
        assert_eq!(
            ServerKey::new("abc", "host", MethodKind::Invite),
            Err(KeyError::NoMagicCookie)
        );
    }

    #[test]
    fn rfc3261_17_2_3_sent_by_host_case_is_folded() {
        let a = ServerKey::new("z9hG4bK1", "Example.COM:5060", MethodKind::Invite);
        let b = ServerKey::new("z9hG4bK1", "example.com:5060", MethodKind::Invite);
        assert_eq!(a, b);
    }

    #[test]
    fn rfc3261_17_2_3_method_takes_part_in_matching() {
        let a = ServerKey::new("z9hG4bK1", "h", MethodKind::from_name("SUBSCRIBE"));
        let b = ServerKey::new("z9hG4bK1", "h", MethodKind::from_name("NOTIFY"));
        assert_ne!(a, b);
    }

    #[test]
    fn rfc3261_9_2_cancel_target_is_the_invite_key() {
        let cancel = ServerKey::new("z9hG4bK1", "h", MethodKind::Cancel).expect("cookie");
        let invite = ServerKey::new("z9hG4bK1", "h", MethodKind::Invite).expect("cookie");
        assert_eq!(cancel.cancel_target(), Some(invite.clone()));
        assert_eq!(invite.cancel_target(), None);
    }

    #[test]
    fn rfc3261_17_2_3_legacy_ack_matches_invite_without_to_tag() {
        let parts = LegacyKeyParts {
            request_uri: "sip:bob@example.com",
            to_tag: None,
            from_tag: Some("f"),
            call_id: "c",
            cseq: 1,
            top_via: "SIP/2.0/UDP host;branch=old",
            method: &MethodKind::Invite,
        };
        let invite = ServerKey::legacy(parts);
        let ack = ServerKey::legacy(LegacyKeyParts {
            to_tag: Some("server-tag"),
            method: &MethodKind::Ack,
            ..parts
        });
        assert!(ack.ack_candidates().any(|k| k == invite));
    }

    #[test]
    fn method_names_are_case_sensitive() {
        assert_eq!(MethodKind::from_name("INVITE"), MethodKind::Invite);
        assert_eq!(
            MethodKind::from_name("invite"),
            MethodKind::Other("invite".into())
        );
    }
}
