//! One stored binding: an AOR's contact address, its expiry, and the flow that reaches it.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Names one binding for its whole life. A refresh keeps the id; a replacement by a new
/// registration (new Call-ID) gets a new one, so presence can tell the two apart and drop state
/// that belonged to the old endpoint session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingId(pub(crate) u64);

impl BindingId {
    /// The raw number, for logs and admin views.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for BindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

/// A registered endpoint of an AOR, as routing and admin views need it.
///
/// Strings that events also carry are reference-counted so an event costs no allocation; the
/// rest are boxed slices, since a binding is written once per REGISTER and read often.
#[derive(Debug, Clone)]
pub struct Binding<F> {
    pub(crate) id: BindingId,
    pub(crate) key: Key,
    pub(crate) uri: Arc<str>,
    pub(crate) params: Box<str>,
    pub(crate) epid: Option<Arc<str>>,
    pub(crate) q: Option<u16>,
    pub(crate) call_id: Box<str>,
    pub(crate) cseq: u32,
    pub(crate) expires_at: Instant,
    pub(crate) registered_at: Instant,
    pub(crate) flow: F,
    pub(crate) source: Box<str>,
    pub(crate) user_agent: Option<Box<str>>,
}

impl<F> Binding<F> {
    /// Stable id of this binding (see [`BindingId`]).
    pub fn id(&self) -> BindingId {
        self.id
    }

    /// The Contact URI as last registered: the Request-URI for requests sent to this endpoint.
    pub fn contact(&self) -> &str {
        &self.uri
    }

    /// Contact header parameters as last registered, without `expires`.
    pub fn contact_params(&self) -> &str {
        &self.params
    }

    /// The `+sip.instance` the binding is keyed by, if the client sent one.
    pub fn instance(&self) -> Option<&str> {
        match &self.key {
            Key::Instance { instance, .. } => Some(instance),
            Key::Contact(_) => None,
        }
    }

    /// The RFC 5626 `reg-id`, if the client sent one with its instance.
    pub fn reg_id(&self) -> Option<u32> {
        match &self.key {
            Key::Instance { reg_id, .. } => *reg_id,
            Key::Contact(_) => None,
        }
    }

    /// The Lync endpoint id from the From header's `epid`, echoed in requests to the endpoint.
    pub fn epid(&self) -> Option<&str> {
        self.epid.as_deref()
    }

    /// Routing preference in thousandths; `None` means the client gave none.
    pub fn q(&self) -> Option<u16> {
        self.q
    }

    /// The flow requests to this endpoint must be sent over.
    pub fn flow(&self) -> &F {
        &self.flow
    }

    /// When the binding lapses unless refreshed.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whole seconds left at `now`, rounded up so a fresh binding shows the granted value.
    pub fn remaining_secs(&self, now: Instant) -> u32 {
        remaining_secs(self.expires_at, now)
    }

    /// When this binding was created (a refresh does not change it), for admin views.
    pub fn registered_at(&self) -> Instant {
        self.registered_at
    }

    /// Call-ID of the registration that last wrote the binding.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// CSeq of the registration that last wrote the binding.
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// Printable source address of the last REGISTER, for admin views.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `User-Agent` of the last REGISTER, for admin views.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The Contact value for a 200 OK, without `expires` (the caller adds the remaining time).
    pub(crate) fn contact_value(&self) -> String {
        format!("<{}>{}", self.uri, self.params)
    }
}

/// The comparison form of a Contact URI used when the runtime supplies none: surrounding
/// whitespace and angle brackets removed, and everything lower-cased except the user part.
///
/// This is a simplification of RFC 3261 §19.1.4 (scheme, host and parameter names/values compare
/// case-insensitively; the user part does not). It does not reorder parameters or ignore ones
/// present on one side only; clients re-send their Contact byte for byte, so in practice that
/// does not split a binding, and clients that carry `+sip.instance` are keyed by that instead.
pub fn contact_key(uri: &str) -> String {
    let s = uri.trim();
    let s = s.strip_prefix('<').unwrap_or(s);
    let s = s.strip_suffix('>').unwrap_or(s);
    let Some((scheme, rest)) = s.split_once(':') else {
        return s.to_ascii_lowercase();
    };
    // The user part ends at the first '@'; a host never contains one.
    let user_end = rest
        .find('@')
        .filter(|&at| !rest[..at].contains('?'))
        .map_or(0, |at| at + 1);
    let mut key = String::with_capacity(s.len());
    key.push_str(&scheme.to_ascii_lowercase());
    key.push(':');
    key.push_str(&rest[..user_end]);
    key.push_str(&rest[user_end..].to_ascii_lowercase());
    key
}

/// What makes two contacts the same binding (RFC 5626 §6, else RFC 3261 §10.3 step 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// `+sip.instance` (compared case-insensitively, as URNs are) and `reg-id`.
    Instance {
        instance: Arc<str>,
        reg_id: Option<u32>,
    },
    /// The URI comparison form.
    Contact(Box<str>),
}

impl Key {
    /// Whether two keys name the same binding.
    pub(crate) fn same(&self, other: &Key) -> bool {
        match (self, other) {
            (
                Key::Instance {
                    instance: a,
                    reg_id: ra,
                },
                Key::Instance {
                    instance: b,
                    reg_id: rb,
                },
            ) => ra == rb && a.eq_ignore_ascii_case(b),
            (Key::Contact(a), Key::Contact(b)) => a == b,
            _ => false,
        }
    }
}

/// Whole seconds from `now` to `at`, rounded up, saturating at zero and `u32::MAX`.
pub(crate) fn remaining_secs(at: Instant, now: Instant) -> u32 {
    let d = at.saturating_duration_since(now);
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_19_1_4_contact_key_keeps_user_case_only() {
        assert_eq!(
            contact_key("<SIP:Alice@Host.Example;Transport=TCP>"),
            "sip:Alice@host.example;transport=tcp"
        );
        assert_eq!(
            contact_key(" sip:127.0.0.1:5060;transport=tcp "),
            "sip:127.0.0.1:5060;transport=tcp"
        );
        assert_eq!(contact_key("opaque"), "opaque");
    }

    #[test]
    fn rfc5626_6_instance_keys_compare_case_insensitively() {
        let a = Key::Instance {
            instance: Arc::from("<urn:uuid:ABC>"),
            reg_id: Some(1),
        };
        let b = Key::Instance {
            instance: Arc::from("<urn:uuid:abc>"),
            reg_id: Some(1),
        };
        let c = Key::Instance {
            instance: Arc::from("<urn:uuid:abc>"),
            reg_id: Some(2),
        };
        assert!(a.same(&b));
        assert!(!a.same(&c));
        assert!(!a.same(&Key::Contact("<urn:uuid:abc>".into())));
    }

    #[test]
    fn remaining_secs_rounds_up() {
        let now = Instant::now();
        let at = now + std::time::Duration::from_millis(1500);
        assert_eq!(remaining_secs(at, now), 2);
        assert_eq!(remaining_secs(now, at), 0);
    }
}
