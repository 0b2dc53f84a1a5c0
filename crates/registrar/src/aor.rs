//! The address-of-record: the index under which a user's bindings are kept.

use std::fmt;
use std::sync::Arc;

use crate::error::InvalidAor;

/// A canonical address-of-record, `user@domain`, as RFC 3261 §10.3 step 5 asks for.
///
/// It is reference-counted because the same AOR is carried by every event, timer entry and flow
/// index entry of its bindings; cloning it must not allocate.
///
/// The whole value is lower-cased. RFC 3261 keeps the user part case-sensitive, but Lync treats
/// SIP addresses case-insensitively and SIPE lower-cases the URIs it sends, so `Alice@` and
/// `alice@` must land on the same bindings here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(Arc<str>);

impl Aor {
    /// Builds an AOR from `user@domain` (no scheme, no parameters, already unescaped: the runtime
    /// strips those in step 5). Rejects anything that could not be a canonical AOR, so a malformed
    /// To header can never become a registrar key.
    ///
    /// # Errors
    /// [`InvalidAor`] says what is wrong; the runtime answers such a REGISTER 400 or 404.
    pub fn parse(s: &str) -> Result<Self, InvalidAor> {
        if s.is_empty() {
            return Err(InvalidAor::Empty);
        }
        if s.len() > MAX_AOR_LEN {
            return Err(InvalidAor::TooLong { max: MAX_AOR_LEN });
        }
        if let Some(c) = s
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c))
        {
            return Err(InvalidAor::ForbiddenChar(c));
        }
        match s.split_once('@') {
            Some((user, domain))
                if !user.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(Arc::from(s.to_ascii_lowercase())))
            }
            _ => Err(InvalidAor::NotUserAtDomain),
        }
    }

    /// The canonical text, e.g. for logs, admin views and building `sip:` URIs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aor({:?})", &*self.0)
    }
}

/// Longest AOR accepted; real addresses are far shorter, and keys are bounded where they are read.
const MAX_AOR_LEN: usize = 256;
/// Characters that mean the runtime handed over a URI or header value instead of a canonical AOR.
const FORBIDDEN: &[char] = &['<', '>', ';', '?', '"', ',', ':'];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_10_3_step_5_aor_is_canonical_lowercase() {
        let a = Aor::parse("Alice@Example.TEST").unwrap();
        assert_eq!(a.as_str(), "alice@example.test");
        assert_eq!(a, Aor::parse("alice@example.test").unwrap());
    }

    #[test]
    fn malformed_aors_are_rejected() {
        assert_eq!(Aor::parse(""), Err(InvalidAor::Empty));
        assert_eq!(Aor::parse("alice"), Err(InvalidAor::NotUserAtDomain));
        assert_eq!(
            Aor::parse("@example.test"),
            Err(InvalidAor::NotUserAtDomain)
        );
        assert_eq!(Aor::parse("alice@"), Err(InvalidAor::NotUserAtDomain));
        assert_eq!(Aor::parse("a@b@c"), Err(InvalidAor::NotUserAtDomain));
        assert_eq!(
            Aor::parse("sip:alice@example.test"),
            Err(InvalidAor::ForbiddenChar(':'))
        );
        assert_eq!(
            Aor::parse("alice@example.test;user=phone"),
            Err(InvalidAor::ForbiddenChar(';'))
        );
        assert!(matches!(
            Aor::parse(&"a".repeat(300)),
            Err(InvalidAor::TooLong { .. })
        ));
    }
}
