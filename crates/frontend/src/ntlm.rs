//! NTLM as Lync clients speak it ([MS-SIPAE]): the connectionless handshake on REGISTER, one
//! security association per client connection, every later request of the client verified and
//! every message herald sends it signed.
//!
//! The handshake (sipe-client §1.3): a REGISTER without credentials gets a 401 offering
//! `NTLM realm, targetname, version=4` beside the Digest challenges; the client asks for a
//! challenge (`gssapi-data=""`), gets a CHALLENGE_MESSAGE with a fresh `opaque`, and answers
//! with an AUTHENTICATE_MESSAGE, which is verified against the user's stored NT hash. The
//! association is then kept per flow, shared by every core of the process: a NOTIFY to the
//! client may leave through any core and must be signed all the same.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use herald_ntlm::{
    AuthenticateMessage, ChallengeMessage, HeaderValues, MessageFields, NtlmChallenge,
    NtlmCredentials, SecurityAssociation, ServerIdentity,
};
use herald_sip::{HeaderName, Limits, Message};
use parking_lot::Mutex;

/// The `realm` Lync servers send; SIPE only needs it non-empty.
pub const DEFAULT_REALM: &str = "SIP Communications Service";
/// The signature format SIPE supports best (long text, signed final REGISTER).
const VERSION: u32 = 4;
/// How long a CHALLENGE_MESSAGE waits for its AUTHENTICATE_MESSAGE.
const CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);
/// Outstanding challenges one core keeps at most; the oldest go first.
const MAX_CHALLENGES: usize = 65_536;

/// What NTLM needs to know about this server.
#[derive(Debug, Clone)]
pub struct NtlmConfig {
    /// `realm` of the challenges.
    pub realm: String,
    /// `targetname`: the server's FQDN.
    pub targetname: String,
    /// The names put in the CHALLENGE_MESSAGE's target info.
    pub identity: ServerIdentity,
}

impl NtlmConfig {
    /// The first challenge, offered on a 401 to REGISTER.
    pub(crate) fn offer(&self) -> String {
        NtlmChallenge {
            realm: self.realm.clone(),
            targetname: self.targetname.clone(),
            version: Some(VERSION),
            opaque: None,
            gssapi_data: None,
        }
        .to_string()
    }
}

/// The security associations of the process, by flow; cheap to clone, shared by every core.
pub struct SecurityAssociations<F>(Arc<Shared<F>>);

/// The map, and its size readable without the lock: every message herald sends asks whether
/// its flow has an association, and most servers have none or few, so the answer "none at
/// all" must not cost every core a shared lock.
struct Shared<F> {
    map: Mutex<HashMap<F, Association>>,
    len: AtomicUsize,
}

impl<F> Clone for SecurityAssociations<F> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<F> Default for SecurityAssociations<F> {
    fn default() -> Self {
        Self(Arc::new(Shared {
            map: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
        }))
    }
}

impl<F> std::fmt::Debug for SecurityAssociations<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityAssociations(..)")
    }
}

/// One client's association and who it authenticated.
pub(crate) struct Association {
    pub(crate) sa: SecurityAssociation,
    pub(crate) user: herald_directory::User,
}

impl<F: std::hash::Hash + Eq> SecurityAssociations<F> {
    pub(crate) fn insert(&self, flow: F, association: Association) {
        let mut map = self.0.map.lock();
        map.insert(flow, association);
        self.0.len.store(map.len(), Ordering::Release);
    }

    pub(crate) fn remove(&self, flow: &F) {
        let mut map = self.0.map.lock();
        if map.remove(flow).is_some() {
            self.0.len.store(map.len(), Ordering::Release);
        }
    }

    /// Verifies a request's signature with the flow's association; the user it belongs to.
    pub(crate) fn verify(
        &self,
        flow: &F,
        credentials: &NtlmCredentials,
        fields: &MessageFields<'_>,
    ) -> Option<herald_directory::User> {
        let mut map = self.0.map.lock();
        let a = map.get_mut(flow)?;
        if !a.sa.matches(credentials) {
            return None;
        }
        a.sa.verify(credentials, fields).ok()?;
        Some(a.user.clone())
    }

    /// `bytes` with an `Authentication-Info` header signed by the flow's association, when
    /// the flow has one and the message is one a client verifies (not a 1xx, not a 401).
    pub(crate) fn sign(&self, flow: &F, bytes: Bytes, limits: &Limits) -> Bytes {
        if self.0.len.load(Ordering::Acquire) == 0 {
            return bytes;
        }
        let mut map = self.0.map.lock();
        let Some(a) = map.get_mut(flow) else {
            return bytes;
        };
        let Ok(message) = Message::parse(bytes.clone(), limits) else {
            return bytes;
        };
        let status = message.as_response().map(herald_sip::Response::status);
        if matches!(status, Some(100..=199 | 401))
            || message.header("Authentication-Info").is_some()
        {
            return bytes;
        }
        let raw = |name: HeaderName| {
            message
                .header(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or("")
        };
        let fields = MessageFields::from_headers(&HeaderValues {
            call_id: raw(HeaderName::CallId),
            cseq: raw(HeaderName::CSeq),
            from: raw(HeaderName::From),
            to: raw(HeaderName::To),
            asserted_identity: message
                .header("P-Asserted-Identity")
                .and_then(|v| std::str::from_utf8(v).ok()),
            expires: message
                .header(HeaderName::Expires)
                .and_then(|v| std::str::from_utf8(v).ok()),
            status_code: status,
        });
        let info = a.sa.sign(rand::random(), &fields);
        with_header(&bytes, &format!("Authentication-Info: {info}"))
    }
}

/// The NTLM credentials of a request, if its Authorization header carries some.
pub(crate) fn credentials(request: &herald_sip::Request) -> Option<NtlmCredentials> {
    request
        .headers_named(HeaderName::Authorization)
        .chain(request.headers_named(HeaderName::ProxyAuthorization))
        .find(|v| v.len() >= 4 && v[..4].eq_ignore_ascii_case(b"NTLM"))
        .and_then(|v| NtlmCredentials::parse(v).ok())
}

/// The SIPE signature fields of a request.
pub(crate) fn request_fields(request: &herald_sip::Request) -> MessageFields<'_> {
    let raw = |name: HeaderName| request.header_str(name).unwrap_or("");
    MessageFields::from_headers(&HeaderValues {
        call_id: raw(HeaderName::CallId),
        cseq: raw(HeaderName::CSeq),
        from: raw(HeaderName::From),
        to: raw(HeaderName::To),
        asserted_identity: request.header_str("P-Asserted-Identity"),
        expires: request.header_str(HeaderName::Expires),
        status_code: None,
    })
}

/// The CHALLENGE_MESSAGEs a core has sent and not yet seen answered, by `opaque`.
#[derive(Default)]
pub(crate) struct Challenges {
    pending: HashMap<String, (ChallengeMessage, Instant)>,
}

impl Challenges {
    /// A fresh challenge and the `opaque` naming it.
    pub(crate) fn issue(
        &mut self,
        now: Instant,
        config: &NtlmConfig,
        rng: &mut impl rand::Rng,
    ) -> (String, ChallengeMessage) {
        if self.pending.len() >= MAX_CHALLENGES {
            self.pending
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < CHALLENGE_LIFETIME);
            if self.pending.len() >= MAX_CHALLENGES {
                self.pending.clear();
            }
        }
        let opaque = format!("{:08X}", rng.random::<u32>());
        let challenge = ChallengeMessage::new(&config.identity, rng.random(), None);
        self.pending
            .insert(opaque.clone(), (challenge.clone(), now));
        (opaque, challenge)
    }

    /// Takes the challenge `opaque` names, if it is still fresh (each is used once).
    pub(crate) fn take(&mut self, now: Instant, opaque: &str) -> Option<ChallengeMessage> {
        let (challenge, at) = self.pending.remove(opaque)?;
        (now.saturating_duration_since(at) < CHALLENGE_LIFETIME).then_some(challenge)
    }
}

/// The second 401 of the handshake: the CHALLENGE_MESSAGE.
pub(crate) fn challenge_header(
    config: &NtlmConfig,
    opaque: &str,
    challenge: &ChallengeMessage,
) -> String {
    NtlmChallenge {
        realm: config.realm.clone(),
        targetname: config.targetname.clone(),
        version: Some(VERSION),
        opaque: Some(opaque.to_owned()),
        gssapi_data: Some(challenge.as_bytes().to_vec()),
    }
    .to_string()
}

/// A handshake waiting for the user's NT hash.
#[derive(Debug)]
pub(crate) struct PendingNtlm {
    pub(crate) challenge: ChallengeMessage,
    pub(crate) message: AuthenticateMessage,
    pub(crate) credentials: NtlmCredentials,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Challenges({})", self.pending.len())
    }
}

/// `bytes` with `header` added as the last header field.
fn with_header(bytes: &[u8], header: &str) -> Bytes {
    let Some(end) = memchr::memmem::find(bytes, b"\r\n\r\n") else {
        return Bytes::copy_from_slice(bytes);
    };
    let mut out = BytesMut::with_capacity(bytes.len() + header.len() + 2);
    out.put_slice(&bytes[..end + 2]);
    out.put_slice(header.as_bytes());
    out.put_slice(b"\r\n");
    out.put_slice(&bytes[end + 2..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_added_after_the_last_one_and_the_body_is_untouched() {
        let msg = b"SIP/2.0 200 OK\r\nCSeq: 1 X\r\nContent-Length: 2\r\n\r\nab";
        let out = with_header(msg, "Authentication-Info: NTLM x");
        assert_eq!(
            &out[..],
            b"SIP/2.0 200 OK\r\nCSeq: 1 X\r\nContent-Length: 2\r\nAuthentication-Info: NTLM x\r\n\r\nab"
        );
    }
}
