//! Typed values the directory stores: every string from an admin or the network is parsed into
//! one of these before a backend sees it, so backends never validate and never store junk.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::time::SystemTime;

use crate::Error;

/// A SIP domain name the server may be authoritative for.
///
/// Always lower-case ASCII, so that `Contoso.COM` and `contoso.com` are one domain in every
/// backend without relying on a collation. Internationalised names must be given in their
/// A-label (`xn--`) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a hostname (RFC 1123 labels, at most 253 characters, no trailing dot), folding it
    /// to lower case. An all-numeric last label is refused so that IPv4 addresses are not
    /// mistaken for domains.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::invalid("domain", reason);
        if input.is_empty() {
            return Err(bad("empty".into()));
        }
        if input.len() > MAX_DOMAIN_LEN {
            return Err(bad(format!("longer than {MAX_DOMAIN_LEN} characters")));
        }
        let lower = input.to_ascii_lowercase();
        let mut last = "";
        for label in lower.split('.') {
            if label.is_empty() {
                return Err(bad(format!("{input:?} has an empty label")));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(bad(format!(
                    "a label is longer than {MAX_LABEL_LEN} characters"
                )));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad(format!(
                    "{input:?} may only hold letters, digits, '-' and '.'"
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad(format!("label {label:?} starts or ends with '-'")));
            }
            last = label;
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                "{input:?} looks like an IP address, not a domain name"
            )));
        }
        Ok(Self(lower))
    }

    /// The lower-case name, as stored and as it appears in AORs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A user's address of record in canonical `user@domain` form: the directory's user key.
///
/// The domain is lower-cased. The user part keeps the spelling it was created with (clients
/// show it back to people) but is compared ASCII-case-insensitively, as Lync does: `Alice@x`
/// and `alice@x` are the same user, and equality, hashing and ordering here follow that rule.
/// The user part is limited to RFC 3261 `unreserved` and the `user-unreserved` characters that
/// cannot be confused with URI syntax (`&=+$,`); escapes (`%41`) are refused so that one user
/// has exactly one spelling.
#[derive(Debug, Clone)]
pub struct Aor {
    user: String,
    domain: Domain,
}

impl Aor {
    /// Parses `user@domain`, optionally with a leading `sip:` (any case), as an admin or a
    /// Request-URI would give it. URI parameters, headers, ports and passwords are refused:
    /// an AOR names a user, not a way to reach one.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let rest = match input.get(..4) {
            Some(scheme) if scheme.eq_ignore_ascii_case("sip:") => &input[4..],
            _ => input,
        };
        let Some((user, domain)) = rest.rsplit_once('@') else {
            return Err(Error::invalid(
                "AOR",
                format!("{input:?} is not of the form user@domain"),
            ));
        };
        Self::new(user, Domain::parse(domain)?)
    }

    /// Builds an AOR from its parts, checking the user part.
    pub fn new(user: &str, domain: Domain) -> Result<Self, Error> {
        let bad = |reason: String| Error::invalid("AOR user part", reason);
        if user.is_empty() {
            return Err(bad("empty".into()));
        }
        if user.len() > MAX_USER_LEN {
            return Err(bad(format!("longer than {MAX_USER_LEN} characters")));
        }
        if let Some(c) = user
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || USER_MARKS.contains(c)))
        {
            return Err(bad(format!("{user:?} holds {c:?}, which is not allowed")));
        }
        Ok(Self {
            user: user.to_owned(),
            domain,
        })
    }

    /// The user part with the spelling it was created with.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user part folded to lower case: what uniqueness and look-ups compare.
    pub fn user_key(&self) -> String {
        self.user.to_ascii_lowercase()
    }

    /// The domain the user belongs to.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The AOR as a `sip:` URI, for headers.
    pub fn to_sip_uri(&self) -> String {
        format!("sip:{self}")
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

impl FromStr for Aor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for Aor {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Aor {}

impl Hash for Aor {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.domain.hash(state);
        for b in self.user.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl PartialOrd for Aor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders by domain, then case-folded user part: the order [`crate::Directory::list_users`]
/// pages in.
impl Ord for Aor {
    fn cmp(&self, other: &Self) -> Ordering {
        self.domain.cmp(&other.domain).then_with(|| {
            let a = self.user.bytes().map(|b| b.to_ascii_lowercase());
            let b = other.user.bytes().map(|b| b.to_ascii_lowercase());
            a.cmp(b)
        })
    }
}

/// The name shown for a user in other people's clients; empty when the user has none.
///
/// It ends up inside SIP headers and XML bodies, so control characters (CR/LF injection) are
/// refused here, once, rather than escaped everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks length (at most 256 characters) and refuses control characters.
    pub fn parse(input: &str) -> Result<Self, Error> {
        if input.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(Error::invalid(
                "display name",
                format!("longer than {MAX_DISPLAY_NAME_CHARS} characters"),
            ));
        }
        if input.chars().any(char::is_control) {
            return Err(Error::invalid("display name", "holds a control character"));
        }
        Ok(Self(input.to_owned()))
    }

    /// The name; empty when none was set.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which authentication scheme a stored hash serves. Adding one is a schema migration (the
/// store checks the names), so an older herald never meets a name it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CredentialAlgorithm {
    /// Digest HA1 = MD5(user:realm:password), RFC 2617 / RFC 7616.
    Md5,
    /// Digest HA1 = SHA-256(user:realm:password), RFC 7616 / RFC 8760.
    Sha256,
    /// Digest HA1 = MD5(user@domain:realm:password): the same password for clients that send
    /// the whole sign-in address as the Digest username (Lync-era clients such as SIPE do).
    /// HA1 depends on the username's spelling, so each form needs its own hash.
    Md5Aor,
    /// Digest HA1 = SHA-256(user@domain:realm:password); see [`Self::Md5Aor`].
    Sha256Aor,
    /// NT hash = MD4(UTF-16LE(password)), for NTLM (MS-SIPAE). Realm-independent; store it
    /// with an empty realm.
    Nt,
}

impl CredentialAlgorithm {
    /// Every algorithm this binary knows, in a stable order.
    pub const ALL: [Self; 5] = [
        Self::Md5,
        Self::Sha256,
        Self::Md5Aor,
        Self::Sha256Aor,
        Self::Nt,
    ];

    /// The name used in the store and in Digest's `algorithm=` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Md5Aor => "MD5-AOR",
            Self::Sha256Aor => "SHA-256-AOR",
            Self::Nt => "NT",
        }
    }

    /// Parses a stored name, case-insensitively as Digest compares algorithm tokens.
    pub fn parse(input: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| {
                Error::invalid(
                    "credential algorithm",
                    format!("{input:?} is not one of MD5, SHA-256, MD5-AOR, SHA-256-AOR, NT"),
                )
            })
    }

    /// Hex digits in a hash of this algorithm: a wrong length is a caller bug worth catching
    /// at the door.
    fn hex_len(self) -> usize {
        match self {
            Self::Md5 | Self::Md5Aor | Self::Nt => 32,
            Self::Sha256 | Self::Sha256Aor => 64,
        }
    }
}

impl fmt::Display for CredentialAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One stored secret derived from a user's password: never the password itself.
///
/// The auth crate computes the hash; the directory keeps it. A user has at most one credential
/// per (algorithm, realm).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credential {
    algorithm: CredentialAlgorithm,
    realm: String,
    hash: String,
}

impl Credential {
    /// Checks the realm (at most 255 characters, no control characters, no `"` or `\` since
    /// it is sent as a quoted string) and the hash (hex of the algorithm's length, stored in
    /// lower case).
    pub fn new(algorithm: CredentialAlgorithm, realm: &str, hash: &str) -> Result<Self, Error> {
        if realm.chars().count() > MAX_REALM_CHARS {
            return Err(Error::invalid(
                "credential realm",
                format!("longer than {MAX_REALM_CHARS} characters"),
            ));
        }
        if realm
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            return Err(Error::invalid(
                "credential realm",
                "holds a control character, '\"' or '\\'",
            ));
        }
        let len = algorithm.hex_len();
        if hash.len() != len || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "credential hash",
                format!("a {algorithm} hash is {len} hex digits"),
            ));
        }
        Ok(Self {
            algorithm,
            realm: realm.to_owned(),
            hash: hash.to_ascii_lowercase(),
        })
    }

    /// Which scheme this hash serves.
    pub fn algorithm(&self) -> CredentialAlgorithm {
        self.algorithm
    }

    /// The Digest realm the HA1 was computed for (empty for NT hashes).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The lower-case hex hash.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// A user as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// The key, with the user part spelled as it was created.
    pub aor: Aor,
    /// Shown to other users; empty when none.
    pub display_name: DisplayName,
    /// A disabled user keeps its data but may not register or sign in.
    pub enabled: bool,
    /// When the user was added (millisecond precision).
    pub created_at: SystemTime,
    /// When any field or credential last changed (millisecond precision).
    pub updated_at: SystemTime,
    /// Sorted by (algorithm, realm) so that equal sets compare equal.
    pub credentials: Vec<Credential>,
    /// The FQDN of the pool member the user is homed on; `None`: the one the pool's hash of
    /// the address picks.
    pub home: Option<String>,
}

/// What the caller supplies to create a user; the directory sets the timestamps.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The key of the new user.
    pub aor: Aor,
    /// Shown to other users; empty when none.
    pub display_name: DisplayName,
    /// Whether the user may sign in straight away.
    pub enabled: bool,
    /// At most one per (algorithm, realm).
    pub credentials: Vec<Credential>,
    /// The pool member the user is homed on (see [`User::home`]).
    pub home: Option<String>,
}

impl NewUser {
    /// An enabled user with no display name and no credentials yet.
    pub fn new(aor: Aor) -> Self {
        Self {
            aor,
            display_name: DisplayName::default(),
            enabled: true,
            credentials: Vec::new(),
            home: None,
        }
    }
}

/// Which page of users [`crate::Directory::list_users`] returns.
///
/// Paging is by key (`after` = the last AOR of the previous page), not by offset, so pages stay
/// correct while users are added or removed between calls and deep pages cost no more than the
/// first.
#[derive(Debug, Clone)]
pub struct UserQuery {
    domain: Option<Domain>,
    after: Option<Aor>,
    limit: usize,
}

impl UserQuery {
    /// The first `limit` users of all domains; `limit` is clamped to `1..=MAX_PAGE`.
    pub fn first(limit: usize) -> Self {
        Self {
            domain: None,
            after: None,
            limit: limit.clamp(1, Self::MAX_PAGE),
        }
    }

    /// Only users of `domain`.
    pub fn in_domain(mut self, domain: Domain) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Users strictly after `aor` in (domain, case-folded user) order.
    pub fn after(mut self, aor: Aor) -> Self {
        self.after = Some(aor);
        self
    }

    /// The domain filter, if any.
    pub fn domain(&self) -> Option<&Domain> {
        self.domain.as_ref()
    }

    /// The cursor, if any.
    pub fn cursor(&self) -> Option<&Aor> {
        self.after.as_ref()
    }

    /// The page size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The largest page a backend returns, so one admin request cannot load the whole store.
    pub const MAX_PAGE: usize = 1000;
}

/// Bounds from RFC 1035 / RFC 1123.
const MAX_DOMAIN_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;
/// As for the local part of an e-mail address: Lync users' SIP addresses mirror their mail.
const MAX_USER_LEN: usize = 64;
const MAX_DISPLAY_NAME_CHARS: usize = 256;
const MAX_REALM_CHARS: usize = 255;
/// RFC 3261 `mark` plus the `user-unreserved` characters that are not URI delimiters.
const USER_MARKS: &str = "-_.!~*'()&=+$,";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lower_cased_and_checked() {
        assert_eq!(
            Domain::parse("Contoso.COM").unwrap().as_str(),
            "contoso.com"
        );
        assert_eq!(Domain::parse("localhost").unwrap().as_str(), "localhost");
        assert_eq!(
            Domain::parse("xn--bcher-kva.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "a..b",
            "example.com.",
            ".example.com",
            "-a.com",
            "a-.com",
            "ex ample.com",
            "exämple.com",
            "a_b.com",
            "10.0.0.1",
            "user@example.com",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(126)),
        ] {
            assert!(
                matches!(
                    Domain::parse(bad),
                    Err(Error::InvalidInput {
                        field: "domain",
                        ..
                    })
                ),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn aor_keeps_user_case_and_folds_domain() {
        let aor = Aor::parse("sip:Alice.Smith@Contoso.com").unwrap();
        assert_eq!(aor.user(), "Alice.Smith");
        assert_eq!(aor.domain().as_str(), "contoso.com");
        assert_eq!(aor.to_string(), "Alice.Smith@contoso.com");
        assert_eq!(aor.to_sip_uri(), "sip:Alice.Smith@contoso.com");
        assert_eq!(aor.user_key(), "alice.smith");
        assert_eq!(aor, Aor::parse("SIP:alice.smith@contoso.com").unwrap());
    }

    #[test]
    fn aor_equality_hash_and_order_ignore_user_case() {
        use std::collections::HashSet;
        let a = Aor::parse("Bob@example.com").unwrap();
        let b = Aor::parse("bob@EXAMPLE.com").unwrap();
        let set: HashSet<_> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        let c = Aor::parse("carol@a.example").unwrap();
        assert!(c < a, "domain orders first");
    }

    #[test]
    fn aor_refuses_uri_syntax_and_bad_users() {
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "sips:alice@example.com",
            "alice@example.com;transport=tcp",
            "alice@example.com:5060",
            "alice:secret@example.com",
            "al%41ice@example.com",
            "al ice@example.com",
            "alice;x@example.com",
            "tel:+123",
            &format!("{}@example.com", "a".repeat(65)),
        ] {
            assert!(
                matches!(Aor::parse(bad), Err(Error::InvalidInput { .. })),
                "{bad:?} should be refused"
            );
        }
        assert!(Aor::parse("o'brien+lync@example.com").is_ok());
    }

    #[test]
    fn display_name_refuses_control_characters() {
        assert_eq!(
            DisplayName::parse("Zoë O'Brien").unwrap().as_str(),
            "Zoë O'Brien"
        );
        assert!(DisplayName::parse("").is_ok());
        assert!(DisplayName::parse("a\r\nVia: evil").is_err());
        assert!(DisplayName::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn credential_checks_hash_length_and_realm() {
        let md5 = "0123456789ABCDEF0123456789abcdef";
        let c = Credential::new(CredentialAlgorithm::Md5, "example.com", md5).unwrap();
        assert_eq!(c.hash(), md5.to_ascii_lowercase());
        assert!(Credential::new(CredentialAlgorithm::Sha256, "example.com", md5).is_err());
        assert!(Credential::new(CredentialAlgorithm::Md5, "example.com", "zz").is_err());
        assert!(Credential::new(CredentialAlgorithm::Md5, "a\"b", md5).is_err());
        assert!(Credential::new(CredentialAlgorithm::Nt, "", md5).is_ok());
        assert!(Credential::new(CredentialAlgorithm::Sha256, "r", &"a".repeat(64)).is_ok());
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in CredentialAlgorithm::ALL {
            assert_eq!(CredentialAlgorithm::parse(a.as_str()).unwrap(), a);
        }
        assert_eq!(
            CredentialAlgorithm::parse("sha-256").unwrap(),
            CredentialAlgorithm::Sha256
        );
        assert!(CredentialAlgorithm::parse("SHA-512-256").is_err());
    }

    #[test]
    fn user_query_clamps_limit() {
        assert_eq!(UserQuery::first(0).limit(), 1);
        assert_eq!(UserQuery::first(1_000_000).limit(), UserQuery::MAX_PAGE);
    }
}
