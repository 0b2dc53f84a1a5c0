//! The server side of connectionless NTLMv2 ([MS-NLMP]) as SIP uses it ([MS-SIPAE]), as a
//! sans-IO core.
//!
//! Nothing here reads a socket, a clock or a random source: the caller passes the server
//! challenge, the salts and the timestamps, and stores the state between messages. This is
//! what Lync front ends speak and what SIPE (pidgin-sipe) verifies: once the handshake is
//! done, every message the server sends carries a signature, and SIPE drops unsigned messages
//! and disconnects on a wrong one.
//!
//! # The handshake, as a SIP front end drives it
//!
//! 1. `REGISTER` without credentials → `401` with
//!    `WWW-Authenticate: NTLM targetname="fe01.example.test", realm="SIP Communications
//!    Service", version=4` ([`NtlmChallenge`] without `opaque`/`gssapi-data`).
//! 2. `REGISTER` with `Authorization: NTLM ... gssapi-data=""` ([`NtlmCredentials`] with an
//!    empty `gssapi_data` and no `opaque`) → build a [`ChallengeMessage`] from a fresh random
//!    server challenge, keep it under a fresh `opaque`, and answer `401` with the
//!    [`NtlmChallenge`] carrying both.
//! 3. `REGISTER` with `gssapi-data` = AUTHENTICATE_MESSAGE and that `opaque` → take the stored
//!    challenge out (it is single-use), [`AuthenticateMessage::parse`], look the [`NtHash`] up
//!    by [`AuthenticateMessage::user`]/[`domain`](AuthenticateMessage::domain), [`accept`],
//!    and wrap the result in a [`SecurityAssociation`] with the same realm, targetname, opaque
//!    and version ([`SipaeParams`]). With `version` > 3 the same request is already signed
//!    (`crand`, `cnum`, `response`): check it with [`SecurityAssociation::verify`].
//! 4. From then on, per client connection:
//!    - every request from the client: [`NtlmCredentials::parse`] its Authorization header and
//!      [`SecurityAssociation::verify`] it over the request's [`MessageFields`]; refuse it (401
//!      with a new challenge) on failure;
//!    - every message herald sends to the client (final responses except 401, and requests
//!      such as NOTIFY/BENOTIFY): [`SecurityAssociation::sign`] over its fields and add the
//!      returned [`AuthenticationInfo`] as `Authentication-Info`. Provisional responses may
//!      stay unsigned; SIPE ignores them either way.
//!
//! Use `WWW-Authenticate`/`Authorization` (401) with SIPE: it looks for `rspauth` only in
//! `Authentication-Info`.
//!
//! ```
//! use herald_ntlm::{
//!     AuthenticateMessage, ChallengeMessage, NtHash, NtlmChallenge, NtlmCredentials,
//!     ServerIdentity, SipaeParams,
//! };
//!
//! // The directory stores this when a password is set.
//! let stored = NtHash::from_password("secret");
//! let stored_text = stored.to_string(); // 32 hex digits
//! assert_eq!(stored_text.parse::<NtHash>(), Ok(stored));
//!
//! let identity =
//!     ServerIdentity::new("EXAMPLE", "FE01", "example.test", "fe01.example.test").unwrap();
//! let params =
//!     SipaeParams::new("SIP Communications Service", "fe01.example.test", "4C40C5B3", Some(4))
//!         .unwrap();
//!
//! // Step 2: the client asks for a challenge.
//! let asked = NtlmCredentials::parse(
//!     br#"NTLM qop="auth", realm="SIP Communications Service", targetname="fe01.example.test", gssapi-data="", version=4"#,
//! )
//! .unwrap();
//! assert!(asked.gssapi_data.as_deref() == Some(&[][..]) && asked.opaque.is_none());
//! let server_challenge = [0x9a, 0x51, 0x59, 0xa9, 0x4c, 0x40, 0xc5, 0xb3]; // from a CSPRNG
//! let challenge = ChallengeMessage::new(&identity, server_challenge, None);
//! let www_authenticate = NtlmChallenge {
//!     realm: params.realm().to_owned(),
//!     targetname: params.targetname().to_owned(),
//!     version: params.version(),
//!     opaque: Some(params.opaque().to_owned()),
//!     gssapi_data: Some(challenge.as_bytes().to_vec()),
//! }
//! .to_string();
//! assert!(www_authenticate.starts_with(r#"NTLM opaque="4C40C5B3", gssapi-data="TlRMTVNTUAAC"#));
//!
//! // Step 3 (with the client's AUTHENTICATE_MESSAGE bytes):
//! // let message = AuthenticateMessage::parse(&credentials.gssapi_data.unwrap())?;
//! // let hash = directory.nt_hash(message.user(), message.domain());
//! // let sa = SecurityAssociation::new(herald_ntlm::accept(&challenge, &message, &hash)?, params);
//! # let _ = AuthenticateMessage::parse;
//! ```
//!
//! Feature `testing` adds the `testing` module: a client that builds AUTHENTICATE messages, signs
//! requests and checks `rspauth` exactly as SIPE does, for round-trip tests in other crates.

#![warn(missing_docs)]

mod accept;
mod authenticate;
mod av_pair;
mod challenge;
mod crypto;
mod flags;
mod header;
mod session;
mod sipae;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod wire;

pub use accept::{Authenticated, VerifyError, accept};
pub use authenticate::{
    AuthenticateMessage, Field, MAX_MESSAGE_LEN, NtResponse, NtlmV2Response, ParseError,
};
pub use av_pair::{AvId, AvPair, AvPairError, AvPairs};
pub use challenge::{ChallengeMessage, IdentityError, MAX_NAME_CHARS, ServerIdentity};
pub use crypto::{FileTime, InvalidNtHash, NtHash};
pub use flags::NegotiateFlags;
pub use header::{AuthenticationInfo, HeaderError, MAX_HEADER_LEN, NtlmChallenge, NtlmCredentials};
pub use session::{BadSignature, Direction, MessageSignature, SessionKeys};
pub use sipae::{
    AuthFields, HeaderValues, MessageFields, ParamsError, SIPAE_SEQ_NUM, SecurityAssociation,
    SignatureError, SipaeParams, signature_buffer,
};

#[cfg(test)]
mod conformance_tests;
