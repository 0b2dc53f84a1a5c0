//! The parts of the REGISTER 200 OK the runtime writes, as plain strings.
//!
//! The constants are what SIPE (briefs/sipe-client.md §3.2, §3.3, §6, §8) needs to sign in and
//! start presence. SIPE splits `Allow-Events` on `,` without trimming, and compares each
//! `Supported` header value whole, so the shapes below are load-bearing:
//! write [`ALLOW_EVENTS`] as ONE header, and each [`SUPPORTED`] token as its OWN header.

use crate::registrar::RegisterOk;

/// Everything the runtime needs to write a REGISTER 200 OK besides the copied request headers
/// (Via, From, Call-ID, CSeq, To with a tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseParts {
    /// One `Contact` header per value, each with its `expires` parameter (RFC 3261 §10.3 step 8).
    pub contacts: Vec<String>,
    /// The `Expires` header value; SIPE refuses a 200 without one.
    pub expires: u32,
    /// The single `Allow-Events` header value.
    pub allow_events: &'static str,
    /// One `Supported` header per entry.
    pub supported: &'static [&'static str],
}

impl RegisterOk {
    /// The 200 OK's registrar-specific parts.
    pub fn response_parts(&self) -> ResponseParts {
        ResponseParts {
            contacts: self
                .bindings
                .iter()
                .map(|b| b.contact_header_value())
                .collect(),
            expires: self.expires,
            allow_events: ALLOW_EVENTS,
            supported: SUPPORTED,
        }
    }
}

/// The self events SIPE may subscribe to, in the order of the verified sign-in ladder
/// (briefs/sipe-client.md §6). SIPE subscribes to a self event only if it is listed here, so each
/// one is a promise that the presence server answers that SUBSCRIBE:
/// - `vnd-microsoft-roaming-contacts`: the buddy list; without it no buddy presence is ever asked.
/// - `vnd-microsoft-roaming-self`: own categories/containers; its first NOTIFY triggers SIPE's
///   initial presence publish.
/// - `presence`: listed in the verified ladder next to the batched presence SUBSCRIBE.
///
/// Left out on purpose: `vnd-microsoft-provisioning-v2` (optional; when answered with a body SIPE
/// also starts group chat with an INVITE to `ocschat@`, which herald does not serve), and the
/// 2005-mode events `presence.wpending`, `vnd-microsoft-roaming-ACL`,
/// `vnd-microsoft-provisioning` (SIPE runs in 2007 mode because of [`SUPPORTED`]).
pub const ALLOW_EVENT_LIST: &[&str] = &[
    "vnd-microsoft-roaming-contacts",
    "vnd-microsoft-roaming-self",
    "presence",
];

/// [`ALLOW_EVENT_LIST`] as the one `Allow-Events` header value: commas and no spaces, because
/// SIPE does not trim the pieces (`a, b` makes it see `" b"` and subscribe to nothing).
pub const ALLOW_EVENTS: &str = "vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-self,presence";

/// `Supported` tokens for the REGISTER 200, one header each (SIPE compares whole values):
/// - `msrtc-event-categories`: puts SIPE in OCS 2007+ mode (categories, containers, roaming-self).
/// - `adhoclist`: lets SIPE batch its buddy presence subscriptions into one SUBSCRIBE.
///
/// Not sent: `gruu-10` (herald issues no GRUU yet; advertising it would be a false promise),
/// `ms-benotify` and `com.microsoft.autoextend` (negotiated on SUBSCRIBE, not REGISTER).
pub const SUPPORTED: &[&str] = &["msrtc-event-categories", "adhoclist"];

/// Optional `ms-keep-alive` value for the REGISTER 200 (briefs/sipe-client.md §3.2): sets SIPE's
/// idle keep-alive to 300 s, so it sends bare CRLFCRLF on the stream, which the runtime must then
/// accept between messages.
pub const MS_KEEP_ALIVE: &str = "UAS; tcp=no; hop-hop=yes; end-pt=no; timeout=300";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BindingId, BindingView};

    #[test]
    fn sipe_allow_events_is_one_value_without_spaces() {
        assert_eq!(ALLOW_EVENTS, ALLOW_EVENT_LIST.join(","));
        assert!(!ALLOW_EVENTS.contains(' '));
        for needed in [
            "vnd-microsoft-roaming-contacts",
            "vnd-microsoft-roaming-self",
        ] {
            assert!(ALLOW_EVENTS.split(',').any(|e| e == needed));
        }
    }

    #[test]
    fn sipe_supported_tokens_are_separate_values() {
        assert_eq!(SUPPORTED, ["msrtc-event-categories", "adhoclist"]);
        assert!(SUPPORTED.iter().all(|t| !t.contains([',', ' '])));
    }

    #[test]
    fn rfc3261_10_3_step_8_response_parts_carry_expires_params() {
        let ok = RegisterOk {
            bindings: vec![BindingView {
                binding: BindingId(1),
                contact: "<sip:127.0.0.1:34404;transport=tcp>;proxy=replace".into(),
                expires: 600,
            }],
            expires: 600,
        };
        let parts = ok.response_parts();
        assert_eq!(
            parts.contacts,
            ["<sip:127.0.0.1:34404;transport=tcp>;proxy=replace;expires=600"]
        );
        assert_eq!(parts.expires, 600);
        assert_eq!(parts.allow_events, ALLOW_EVENTS);
        assert_eq!(parts.supported, SUPPORTED);
    }
}
