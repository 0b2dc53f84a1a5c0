//! SIP Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) as a sans-IO core.
//!
//! The registrar hands this crate header values as text and gets header values back; nothing here
//! reads a clock, a socket or the directory. The caller passes `now`, a CSPRNG, and the stored HA1
//! it looked up by username, and answers the peer according to the returned [`Outcome`].
//!
//! The pieces:
//! - [`Credentials`]: `Authorization` / `Proxy-Authorization` parsed, Digest or another scheme.
//! - [`DigestAuthenticator`]: stateless HMAC nonces, challenges, verification, nonce-count replay
//!   protection.
//! - [`ha1`]: what the directory stores instead of a password.
//! - [`Throttle`]: back-off for failed attempts per user and per source address.
//! - [`answer_challenge`]: the client side, for tests and as an executable description.
//!
//! ```
//! use std::net::IpAddr;
//! use std::time::Instant;
//!
//! use herald_auth::{
//!     Algorithm, ChallengeKind, Credentials, Decision, DigestAuthenticator, DigestConfig,
//!     NonceCount, Outcome, Throttle, ThrottleConfig, answer_challenge, ha1,
//! };
//!
//! let start = Instant::now();
//! let mut rng = rand::rng();
//! let secret: [u8; 32] = rand::random();
//! let mut auth = DigestAuthenticator::new(DigestConfig::default(), secret, start);
//! let mut throttle = Throttle::new(ThrottleConfig::default());
//! let realm = "example.com";
//! // The directory stores one HA1 per hash, never the password.
//! let stored_sha256 = ha1(Algorithm::Sha256, "alice", realm, "secret");
//!
//! // 1. A REGISTER without credentials: answer 401 with one WWW-Authenticate per algorithm.
//! let kind = ChallengeKind::for_method("REGISTER");
//! let challenge = auth.challenge(start, &mut rng, kind, realm, false);
//! assert_eq!((challenge.status(), challenge.header_name()), (401, "WWW-Authenticate"));
//!
//! // 2. The retry carries an Authorization header (here: what a client would send).
//! let header = answer_challenge(&challenge.values[0], "alice", "secret", "REGISTER",
//!     "sip:example.com", "0a4f113b", NonceCount(1)).unwrap().to_string();
//! let now = Instant::now();
//! let source: IpAddr = "192.0.2.1".parse().unwrap();
//! let Ok(Credentials::Digest(credentials)) = Credentials::parse(header.as_bytes()) else {
//!     panic!("answer 400, or route other schemes to their acceptor");
//! };
//! if let Decision::Refused { retry_after } = throttle.check(now, &credentials.username, source) {
//!     panic!("answer 403/503 with Retry-After {retry_after:?}");
//! }
//! // Look the HA1 up by username and base algorithm; `None` for an unknown user.
//! let stored = match credentials.algorithm().base() {
//!     Algorithm::Sha256 if credentials.username == "alice" => Some(stored_sha256.as_str()),
//!     _ => None,
//! };
//! let outcome = auth.verify(now, &credentials, "REGISTER", realm, stored);
//! assert!(credentials.uri == "sip:example.com"); // the caller checks digest-uri
//! match outcome {
//!     Outcome::Ok => throttle.record_success(now, &credentials.username, source),
//!     Outcome::Stale => { /* 401 with auth.challenge(now, .., stale: true) */ }
//!     other => {
//!         if other.is_failed_attempt() {
//!             throttle.record_failure(now, &credentials.username, source);
//!         }
//!         /* 401 with a fresh challenge (or 400 for some Malformed) */
//!     }
//! }
//! assert_eq!(outcome, Outcome::Ok);
//! ```

#![warn(missing_docs)]

mod algorithm;
mod challenge;
mod client;
mod credentials;
mod nonce;
mod params;
mod replay;
mod throttle;
mod verify;

pub use algorithm::{Algorithm, ha1};
pub use challenge::{Challenge, ChallengeKind};
pub use client::answer_challenge;
pub use credentials::{Credentials, CredentialsError, DigestCredentials, NonceCount, Qop};
pub use throttle::{Decision, Throttle, ThrottleConfig};
pub use verify::{DigestAuthenticator, DigestConfig, Malformed, Outcome};
