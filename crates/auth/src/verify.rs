//! The Digest acceptor: issues challenges and verifies credentials (RFC 3261 §22.4, RFC 7616 §3.4,
//! RFC 8760), with nonce-count replay protection.

use std::time::{Duration, Instant};

use rand::CryptoRng;
use subtle::ConstantTimeEq;

use crate::algorithm::Algorithm;
use crate::challenge::{self, Challenge, ChallengeKind};
use crate::credentials::{DigestCredentials, Qop};
use crate::nonce::{NonceError, NonceKey};
use crate::replay::{Count, NonceCounts};

/// Policy for the Digest acceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestConfig {
    /// Algorithms to offer and accept. Challenges always list them most preferred first
    /// (SHA-512-256, SHA-256, MD5, each before its `-sess` form), whatever the order here.
    /// Dropping MD5 closes the downgrade RFC 8760 §3 warns of, at the cost of older clients.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is good for; older nonces with correct credentials get `stale=true`.
    pub nonce_lifetime: Duration,
    /// Accept responses without `qop` (RFC 2069 clients). They carry no nonce-count, so a
    /// captured request can be replayed for the nonce's lifetime: off unless a client needs it.
    pub allow_no_qop: bool,
    /// Most nonces whose nonce-count is tracked at once; beyond it the oldest are forgotten
    /// and their clients re-challenged.
    pub max_tracked_nonces: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            allow_no_qop: false,
            max_tracked_nonces: 100_000,
        }
    }
}

/// What the verifier concluded, and so how the caller answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Authenticated: process the request (after checking `uri` against the Request-URI).
    Ok,
    /// Right password, expired nonce: re-challenge with `stale=true` so the client retries
    /// without asking its user (RFC 7616 §3.3). Not a failed attempt.
    Stale,
    /// Wrong password, or a user that does not exist (indistinguishable by design):
    /// record a throttle failure and re-challenge.
    WrongPassword,
    /// Right password but a nonce-count already used: a replayed or duplicated request. Do
    /// not process it; re-challenge.
    Replay,
    /// The nonce or opaque is not one we issued (forged, altered, another realm, from before a
    /// restart, or empty before any challenge): re-challenge without `stale`.
    BadNonce,
    /// The credentials cannot be checked under this policy: answer with a fresh challenge
    /// (or 400 for a realm mismatch the client keeps repeating).
    Malformed(Malformed),
}

impl Outcome {
    /// Whether this outcome is a failed password guess for throttling purposes.
    pub fn is_failed_attempt(&self) -> bool {
        matches!(self, Outcome::WrongPassword)
    }
}

/// Why credentials could not be checked at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// `realm` is not the realm the request is authenticated in.
    RealmMismatch,
    /// The algorithm is one herald knows but this policy does not offer.
    AlgorithmNotOffered(Algorithm),
    /// No `qop`, and [`DigestConfig::allow_no_qop`] is off.
    QopRequired,
    /// A `qop` herald never offers (`auth-int`).
    QopNotOffered(Qop),
    /// `userhash=true`, which herald never offers.
    Userhash,
    /// `response` is not a hex digest of the algorithm's length.
    ResponseNotDigest,
}

/// The Digest acceptor: one per process (or per pool member sharing `secret`).
///
/// It keeps only the nonce-count table; everything else is derived from the secret, so challenges
/// cost no memory. Call [`DigestAuthenticator::handle_timeout`] when
/// [`DigestAuthenticator::poll_timeout`] passes, or rely on the pruning `verify` does itself.
#[derive(Debug)]
pub struct DigestAuthenticator {
    config: DigestConfig,
    key: NonceKey,
    counts: NonceCounts,
    dummy_md5: String,
    dummy_sha: String,
}

impl DigestAuthenticator {
    /// `secret` must be random (32 bytes from a CSPRNG) and private; pool members that must
    /// accept each other's nonces share it. `epoch` is any instant not after the first `now`;
    /// nonces encode their age relative to it.
    pub fn new(mut config: DigestConfig, secret: [u8; 32], epoch: Instant) -> Self {
        config
            .algorithms
            .sort_by_key(|alg| Algorithm::PREFERENCE.iter().position(|p| p == alg));
        config.algorithms.dedup();
        let key = NonceKey::new(secret, epoch);
        DigestAuthenticator {
            counts: NonceCounts::new(config.nonce_lifetime, config.max_tracked_nonces),
            dummy_md5: key.dummy_ha1(Algorithm::Md5.hex_len()),
            dummy_sha: key.dummy_ha1(Algorithm::Sha256.hex_len()),
            config,
            key,
        }
    }

    /// The policy in force, with algorithms in offer order.
    pub fn config(&self) -> &DigestConfig {
        &self.config
    }

    /// A challenge for `realm` with one fresh nonce, one value per configured algorithm, most
    /// preferred first (RFC 8760 §2.3). Pass `stale` after [`Outcome::Stale`].
    pub fn challenge<R: CryptoRng + ?Sized>(
        &self,
        now: Instant,
        rng: &mut R,
        kind: ChallengeKind,
        realm: &str,
        stale: bool,
    ) -> Challenge {
        let nonce = self.key.issue(now, rng, realm);
        let opaque = self.key.opaque(realm);
        let values = self
            .config
            .algorithms
            .iter()
            .map(|&alg| challenge::format_value(realm, &nonce, &opaque, alg, stale))
            .collect();
        Challenge { kind, values }
    }

    /// Verifies `credentials` sent with a request of `method` in `realm`.
    ///
    /// `stored_ha1` is the directory's HA1 for `credentials.username` under
    /// `credentials.algorithm().base()`, or `None` when there is no such user (or no HA1 for
    /// that algorithm). Pass `None` rather than answering early: the same work is then done
    /// against a dummy HA1 and the outcome is [`Outcome::WrongPassword`], so neither timing nor
    /// answer reveals which users exist. The caller must still compare `credentials.uri` with the
    /// Request-URI.
    pub fn verify(
        &mut self,
        now: Instant,
        credentials: &DigestCredentials,
        method: &str,
        realm: &str,
        stored_ha1: Option<&str>,
    ) -> Outcome {
        let algorithm = credentials.algorithm();
        if credentials.realm != realm {
            return Outcome::Malformed(Malformed::RealmMismatch);
        }
        if credentials.userhash == Some(true) {
            return Outcome::Malformed(Malformed::Userhash);
        }
        if !self.config.algorithms.contains(&algorithm) {
            return Outcome::Malformed(Malformed::AlgorithmNotOffered(algorithm));
        }
        match credentials.qop {
            Some(Qop::Auth) => {}
            Some(other) => return Outcome::Malformed(Malformed::QopNotOffered(other)),
            None if self.config.allow_no_qop => {}
            None => return Outcome::Malformed(Malformed::QopRequired),
        }
        let mut received = [0u8; 32];
        let received = &mut received[..algorithm.hex_len() / 2];
        if hex::decode_to_slice(&credentials.response, received).is_err() {
            return Outcome::Malformed(Malformed::ResponseNotDigest);
        }
        if credentials
            .opaque
            .as_ref()
            .is_some_and(|opaque| *opaque != self.key.opaque(realm))
        {
            return Outcome::BadNonce;
        }
        let opened = match self
            .key
            .open(now, &credentials.nonce, realm, self.config.nonce_lifetime)
        {
            Ok(opened) => Some(opened),
            Err(NonceError::Expired) => None,
            Err(NonceError::Forged) => return Outcome::BadNonce,
        };

        let dummy = if algorithm.hex_len() == self.dummy_md5.len() {
            &self.dummy_md5
        } else {
            &self.dummy_sha
        };
        let (ha1, known) = match stored_ha1 {
            Some(ha1) if ha1.len() == algorithm.hex_len() => (ha1, true),
            _ => (dummy.as_str(), false),
        };
        let expected = expected_response(algorithm, ha1, credentials, method);
        let mut expected_bytes = [0u8; 32];
        let expected_bytes = &mut expected_bytes[..algorithm.hex_len() / 2];
        // A stored HA1 that is not hex still yields a well-formed (and wrong) digest here.
        let _ = hex::decode_to_slice(&expected, expected_bytes);
        let matches = bool::from(expected_bytes.ct_eq(received)) & known;
        if !matches {
            return Outcome::WrongPassword;
        }

        let Some(opened) = opened else {
            return Outcome::Stale;
        };
        let Some(nc) = credentials.nc else {
            return Outcome::Ok; // RFC 2069 client, allowed by policy
        };
        match self.counts.check(now, opened.id, opened.issued, nc.0) {
            Count::Fresh => Outcome::Ok,
            Count::Replay => Outcome::Replay,
            Count::Forgotten => Outcome::Stale,
        }
    }

    /// When the oldest tracked nonce expires and its entry can be dropped.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.counts.poll_timeout()
    }

    /// Drops nonce-count entries of expired nonces.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.counts.handle_timeout(now);
    }

    /// How many nonces are tracked, for metrics.
    pub fn tracked_nonces(&self) -> usize {
        self.counts.len()
    }
}

/// The `request-digest` the client should have sent (RFC 7616 §3.4.1, §3.4.2, §3.4.3), with
/// HA2 = H(method ":" digest-uri) as RFC 3261 §22.4 uses for SIP.
pub(crate) fn expected_response(
    algorithm: Algorithm,
    stored_ha1: &str,
    credentials: &DigestCredentials,
    method: &str,
) -> String {
    let nonce = credentials.nonce.as_bytes();
    let cnonce = credentials.cnonce.as_deref().unwrap_or_default().as_bytes();
    let stored_ha1 = stored_ha1.to_ascii_lowercase();
    let ha1 = if algorithm.is_session() {
        algorithm.hex_digest(&[stored_ha1.as_bytes(), b":", nonce, b":", cnonce])
    } else {
        stored_ha1
    };
    let ha2 = algorithm.hex_digest(&[method.as_bytes(), b":", credentials.uri.as_bytes()]);
    match (credentials.qop, credentials.nc) {
        (Some(qop), Some(nc)) => {
            let nc = nc.to_string();
            algorithm.hex_digest(&[
                ha1.as_bytes(),
                b":",
                nonce,
                b":",
                nc.as_bytes(),
                b":",
                cnonce,
                b":",
                qop.as_str().as_bytes(),
                b":",
                ha2.as_bytes(),
            ])
        }
        _ => algorithm.hex_digest(&[ha1.as_bytes(), b":", nonce, b":", ha2.as_bytes()]),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::algorithm::ha1;
    use crate::credentials::{Credentials, NonceCount};

    const REALM: &str = "example.com";

    fn rfc7616_example(algorithm: Algorithm) -> DigestCredentials {
        DigestCredentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: Some(algorithm),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
            opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into()),
            qop: Some(Qop::Auth),
            nc: Some(NonceCount(1)),
            userhash: None,
        }
    }

    #[test]
    fn rfc7616_section_3_9_1_md5_response() {
        let c = rfc7616_example(Algorithm::Md5);
        let h = ha1(Algorithm::Md5, "Mufasa", &c.realm, "Circle of Life");
        assert_eq!(
            expected_response(Algorithm::Md5, &h, &c, "GET"),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_section_3_9_1_sha256_response() {
        let c = rfc7616_example(Algorithm::Sha256);
        let h = ha1(Algorithm::Sha256, "Mufasa", &c.realm, "Circle of Life");
        assert_eq!(
            expected_response(Algorithm::Sha256, &h, &c, "GET"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// The RFC 2617 §3.5 example, which RFC 3261 §22.4 SIP Digest computes the same way.
    #[test]
    fn rfc3261_section_22_4_md5_qop_auth_response() {
        let c: Credentials = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#
            .parse()
            .unwrap();
        let Credentials::Digest(c) = c else { panic!() };
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(h, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(expected_response(Algorithm::Md5, &h, &c, "GET"), c.response);
    }

    /// RFC 2069 / RFC 3261 §22.4 without qop: response = H(HA1:nonce:H(method:uri)).
    #[test]
    fn rfc3261_section_22_4_md5_without_qop() {
        let mut c = rfc7616_example(Algorithm::Md5);
        c.qop = None;
        c.nc = None;
        c.cnonce = None;
        c.nonce = "abc".into();
        c.uri = "sip:example.com".into();
        // md5("939e...:abc:" + md5("REGISTER:sip:example.com")), computed independently.
        assert_eq!(
            expected_response(
                Algorithm::Md5,
                "939e7578ed9e3c518a452acee763bce9",
                &c,
                "REGISTER"
            ),
            "aac29ac7b024c27dc58714e274fae2a0"
        );
    }

    struct Client {
        username: String,
        password: String,
        cnonce: String,
        nc: u32,
    }

    impl Client {
        fn new(username: &str, password: &str) -> Self {
            Client {
                username: username.into(),
                password: password.into(),
                cnonce: "0a4f113b".into(),
                nc: 0,
            }
        }

        /// Answers the topmost challenge, as RFC 8760 §2.4 says a client should.
        fn answer(&mut self, challenge: &Challenge, method: &str, uri: &str) -> DigestCredentials {
            self.nc += 1;
            crate::answer_challenge(
                &challenge.values[0],
                &self.username,
                &self.password,
                method,
                uri,
                &self.cnonce,
                NonceCount(self.nc),
            )
            .unwrap()
        }
    }

    struct Server {
        auth: DigestAuthenticator,
        rng: StdRng,
        t0: Instant,
        alice_sha: String,
        alice_md5: String,
    }

    impl Server {
        fn new(config: DigestConfig) -> Self {
            let t0 = Instant::now();
            Server {
                auth: DigestAuthenticator::new(config, [42; 32], t0),
                rng: StdRng::seed_from_u64(9),
                t0,
                alice_sha: ha1(Algorithm::Sha256, "alice", REALM, "secret"),
                alice_md5: ha1(Algorithm::Md5, "alice", REALM, "secret"),
            }
        }

        fn at(&self, secs: u64) -> Instant {
            self.t0 + Duration::from_secs(secs)
        }

        fn challenge(&mut self, now: Instant, stale: bool) -> Challenge {
            self.auth
                .challenge(now, &mut self.rng, ChallengeKind::Www, REALM, stale)
        }

        /// Looks HA1 up as the registrar does: by username and the algorithm's base.
        fn verify(&mut self, now: Instant, c: &DigestCredentials) -> Outcome {
            let stored = match (c.username.as_str(), c.algorithm().base()) {
                ("alice", Algorithm::Sha256) => Some(self.alice_sha.as_str()),
                ("alice", Algorithm::Md5) => Some(self.alice_md5.as_str()),
                _ => None,
            };
            let stored = stored.map(str::to_owned);
            self.auth
                .verify(now, c, "REGISTER", REALM, stored.as_deref())
        }
    }

    #[test]
    fn rfc8760_section_2_3_challenges_sha256_first_then_md5() {
        let mut s = Server::new(DigestConfig {
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256, Algorithm::Md5],
            ..DigestConfig::default()
        });
        let ch = s.challenge(s.t0, false);
        assert_eq!((ch.status(), ch.header_name()), (401, "WWW-Authenticate"));
        assert_eq!(ch.values.len(), 2);
        assert!(ch.values[0].contains("algorithm=SHA-256"));
        assert!(ch.values[1].contains("algorithm=MD5"));
        assert!(ch.values.iter().all(|v| v.contains("qop=\"auth\"")));
        assert!(ch.values.iter().all(|v| !v.contains("stale")));
        assert!(s.challenge(s.t0, true).values[0].ends_with(", stale=true"));
    }

    #[test]
    fn full_flow_accepts_sha256_and_md5() {
        let mut s = Server::new(DigestConfig::default());
        let ch = s.challenge(s.t0, false);
        let mut alice = Client::new("alice", "secret");
        let c = alice.answer(&ch, "REGISTER", "sip:example.com");
        // Round trip through the header text as the registrar receives it.
        let parsed: Credentials = c.to_string().parse().unwrap();
        let Credentials::Digest(parsed) = parsed else {
            panic!()
        };
        assert_eq!(s.verify(s.at(1), &parsed), Outcome::Ok);
        // Same nonce, next nc: accepted.
        let c = alice.answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(2), &c), Outcome::Ok);
        // MD5 when the client only supports that.
        let md5_only = Challenge {
            kind: ch.kind,
            values: vec![ch.values[1].clone()],
        };
        let c = alice.answer(&md5_only, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(3), &c), Outcome::Ok);
    }

    #[test]
    fn rfc7616_section_3_4_2_sess_variant_verifies() {
        let mut s = Server::new(DigestConfig {
            algorithms: vec![Algorithm::Sha256Sess],
            ..DigestConfig::default()
        });
        let ch = s.challenge(s.t0, false);
        let c = Client::new("alice", "secret").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(c.algorithm, Some(Algorithm::Sha256Sess));
        assert_eq!(s.verify(s.t0, &c), Outcome::Ok);
    }

    #[test]
    fn rfc7616_section_5_4_replayed_nc_is_rejected() {
        let mut s = Server::new(DigestConfig::default());
        let ch = s.challenge(s.t0, false);
        let mut alice = Client::new("alice", "secret");
        let first = alice.answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(1), &first), Outcome::Ok);
        assert_eq!(s.verify(s.at(2), &first), Outcome::Replay);
        // A wrong response with a high nc does not burn counts for the real client.
        let mut forged = alice.answer(&ch, "REGISTER", "sip:example.com");
        forged.nc = Some(NonceCount(1000));
        assert_eq!(s.verify(s.at(3), &forged), Outcome::WrongPassword);
        alice.nc = 1;
        let second = alice.answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(4), &second), Outcome::Ok);
    }

    #[test]
    fn rfc7616_section_3_3_expired_nonce_with_right_password_is_stale() {
        let mut s = Server::new(DigestConfig::default());
        let ch = s.challenge(s.t0, false);
        let c = Client::new("alice", "secret").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(300), &c), Outcome::Stale);
        let wrong = Client::new("alice", "guess").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(300), &wrong), Outcome::WrongPassword);
        // The stale re-challenge works.
        let ch = s.challenge(s.at(300), true);
        let c = Client::new("alice", "secret").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(301), &c), Outcome::Ok);
    }

    #[test]
    fn rfc7616_section_5_4_forged_nonce_is_bad() {
        let mut s = Server::new(DigestConfig::default());
        let ch = s.challenge(s.t0, false);
        let mut alice = Client::new("alice", "secret");
        let mut c = alice.answer(&ch, "REGISTER", "sip:example.com");
        // Alter the nonce and recompute the response correctly: still refused.
        c.nonce.replace_range(0..2, "ff");
        c.response = expected_response(Algorithm::Sha256, &s.alice_sha, &c, "REGISTER");
        assert_eq!(s.verify(s.at(1), &c), Outcome::BadNonce);
        // A nonce from another server secret.
        let mut other = Server::new(DigestConfig::default());
        other.auth = DigestAuthenticator::new(DigestConfig::default(), [1; 32], s.t0);
        let foreign = other.challenge(s.t0, false);
        let c = alice.answer(&foreign, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(1), &c), Outcome::BadNonce);
        // Empty nonce and response before any challenge (RFC 8760 §2.7).
        let mut c = alice.answer(&ch, "REGISTER", "sip:example.com");
        c.nonce.clear();
        c.opaque = None;
        c.response = "0".repeat(64);
        assert_eq!(s.verify(s.at(1), &c), Outcome::BadNonce);
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let mut s = Server::new(DigestConfig::default());
        let ch = s.challenge(s.t0, false);
        let wrong = Client::new("alice", "guess").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(1), &wrong), Outcome::WrongPassword);
        let nobody = Client::new("mallory", "secret").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(1), &nobody), Outcome::WrongPassword);
        // Even a client that guessed the dummy HA1 gets nowhere.
        let mut guessed = nobody.clone();
        guessed.response =
            expected_response(Algorithm::Sha256, &s.auth.dummy_sha, &nobody, "REGISTER");
        assert_eq!(s.verify(s.at(1), &guessed), Outcome::WrongPassword);
        assert!(Outcome::WrongPassword.is_failed_attempt());
    }

    #[test]
    fn policy_refusals_are_precise() {
        let mut s = Server::new(DigestConfig {
            algorithms: vec![Algorithm::Sha256],
            ..DigestConfig::default()
        });
        let ch = s.challenge(s.t0, false);
        let mut alice = Client::new("alice", "secret");
        let good = alice.answer(&ch, "REGISTER", "sip:example.com");

        let mut c = good.clone();
        c.realm = "other".into();
        assert_eq!(
            s.verify(s.t0, &c),
            Outcome::Malformed(Malformed::RealmMismatch)
        );
        let mut c = good.clone();
        c.algorithm = Some(Algorithm::Md5);
        assert_eq!(
            s.verify(s.t0, &c),
            Outcome::Malformed(Malformed::AlgorithmNotOffered(Algorithm::Md5))
        );
        let mut c = good.clone();
        c.qop = None;
        c.nc = None;
        c.cnonce = None;
        assert_eq!(
            s.verify(s.t0, &c),
            Outcome::Malformed(Malformed::QopRequired)
        );
        let mut c = good.clone();
        c.qop = Some(Qop::AuthInt);
        assert_eq!(
            s.verify(s.t0, &c),
            Outcome::Malformed(Malformed::QopNotOffered(Qop::AuthInt))
        );
        let mut c = good.clone();
        c.userhash = Some(true);
        assert_eq!(s.verify(s.t0, &c), Outcome::Malformed(Malformed::Userhash));
        let mut c = good.clone();
        c.response.truncate(32);
        assert_eq!(
            s.verify(s.t0, &c),
            Outcome::Malformed(Malformed::ResponseNotDigest)
        );
        let mut c = good.clone();
        c.opaque = Some("nope".into());
        assert_eq!(s.verify(s.t0, &c), Outcome::BadNonce);
        assert_eq!(s.verify(s.t0, &good), Outcome::Ok);
    }

    #[test]
    fn rfc2069_clients_only_when_allowed() {
        let mut s = Server::new(DigestConfig {
            allow_no_qop: true,
            ..DigestConfig::default()
        });
        let ch = s.challenge(s.t0, false);
        let mut c = Client::new("alice", "secret").answer(&ch, "REGISTER", "sip:example.com");
        c.qop = None;
        c.nc = None;
        c.cnonce = None;
        c.response = expected_response(Algorithm::Sha256, &s.alice_sha, &c, "REGISTER");
        assert_eq!(s.verify(s.at(1), &c), Outcome::Ok);
    }

    #[test]
    fn nonce_table_is_pruned_by_timeout() {
        let mut s = Server::new(DigestConfig::default());
        let ch = s.challenge(s.t0, false);
        let c = Client::new("alice", "secret").answer(&ch, "REGISTER", "sip:example.com");
        assert_eq!(s.verify(s.at(1), &c), Outcome::Ok);
        assert_eq!(s.auth.tracked_nonces(), 1);
        assert_eq!(s.auth.poll_timeout(), Some(s.at(300)));
        s.auth.handle_timeout(s.at(300));
        assert_eq!(s.auth.tracked_nonces(), 0);
        assert_eq!(s.auth.poll_timeout(), None);
    }
}
