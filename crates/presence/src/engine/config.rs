//! The engine's settings and their checks.

use std::time::Duration;

use crate::Limits;
use crate::aggregate::IdlePolicy;

/// The largest contact list any configuration may allow (Lync client policy
/// `MaximumNumberOfContacts` tops out at 1000, lync-exchange-facts §1.10).
pub const MAX_CONTACTS_CEILING: u32 = 1000;

/// Shortest, default and longest expiry, in seconds, for one kind of soft state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiryBounds {
    /// Requests asking for less (but more than 0) are answered 423 with this as `Min-Expires`
    /// (RFC 6665 §4.2.1.1, RFC 3903 §6 step 4).
    pub min: u32,
    /// Used when the request names no expiry.
    pub default: u32,
    /// Longer requests are granted this much (both RFCs let the server choose less).
    pub max: u32,
}

impl ExpiryBounds {
    /// The expiry granted for `requested` (`None` = header absent): the default, or the request
    /// clamped to `max`. `Err(min)` when a non-zero request is shorter than `min`; `Ok(0)` for 0.
    pub fn grant(&self, requested: Option<u32>) -> Result<u32, u32> {
        match requested {
            None => Ok(self.default),
            Some(0) => Ok(0),
            Some(r) if r < self.min => Err(self.min),
            Some(r) => Ok(r.min(self.max)),
        }
    }
}

/// Everything the engine can be told. `Default` gives Lync-like values suitable for a small
/// deployment; every field says where its default comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Subscription expiry: 60 s minimum (low enough for SIMPLE test tools), 3600 s default
    /// (RFC 3856 §6.4 suggests an hour; SIPE re-subscribes 120 s before expiry, so a short
    /// default costs Lync clients nothing), 43200 s maximum (Lync `MaxSubscriptionExpiration`).
    pub subscription_expiry: ExpiryBounds,
    /// PUBLISH expiry (RFC 3903): 60 s minimum, 3600 s default, 86400 s maximum.
    pub publication_expiry: ExpiryBounds,
    /// The idle timers applied to endpoints that report idleness (5 min to Inactive, 15 min more
    /// to Away: the Communicator/Lync client defaults).
    pub idle: IdlePolicy,
    /// Contacts one user may keep (Lync `MaxContacts` default 250; at most
    /// [`MAX_CONTACTS_CEILING`]).
    pub max_contacts: u32,
    /// Presentities one user may watch through persistent subscriptions, counting each resource
    /// of a batched subscription (Lync `CategorySubscriptions` default policy: 1000). Queries and
    /// polls do not count.
    pub max_subscriptions_per_user: u32,
    /// Persistent watchers one presentity may have (Lync: 1000 category subscriptions / 5
    /// categories = 200); the one over it gets `quotaExceeded` ("Maximum Followers Reached").
    pub max_watchers_per_presentity: u32,
    /// Live RFC 3903 publications (entity tags) per user.
    pub max_pidf_publications_per_user: u32,
    /// Category instances one user may have published at once.
    pub max_instances_per_user: u32,
    /// Polls (SUBSCRIBE with `Expires: 0` outside a dialog) one user may send in a burst.
    pub poll_burst: u32,
    /// One more poll becomes available this often (UCMA polls every 5 minutes; 10 s leaves room
    /// for clients that poll a whole list one contact at a time).
    pub poll_refill: Duration,
    /// Answer `Supported: ms-benotify` and notify with BENOTIFY when a subscriber offers it
    /// (MS-SIP §3.5). Off: every notification is a NOTIFY.
    pub benotify: bool,
    /// Put the first notification into the SUBSCRIBE's 200 OK when the subscriber offers
    /// `ms-piggyback-first-notify` (MS-SIP §3.4). SIPE needs this for batched presence
    /// re-subscriptions to keep their resource list (sipe-client §3.4).
    pub piggyback: bool,
    /// Honour `com.microsoft.autoextend` (MS-SIP §3.6): every notification re-arms the expiry.
    pub autoextend: bool,
    /// Answer a new subscription with 202 Accepted, as RFC 3265 did, instead of 200. RFC 6665
    /// §8.3.1 forbids 202 and clients treat both alike; this exists only for old test
    /// scenarios that wait for a 202 (two of the Kamailio SIPp scenarios). Off by default.
    pub legacy_202: bool,
    /// Queue [`super::SubscriptionChange`]s for the runtime to store (see the `persist`
    /// module). Off by default, so an engine without a subscription store (tests, benches)
    /// keeps no queue that nobody drains.
    pub persist_subscriptions: bool,
    /// The domains this server is authoritative for (lower case). Watchers in them are
    /// "same enterprise", others "federated"; presentities outside them are `noresource` (404).
    /// Empty means every domain is local (tests, single-domain labs).
    pub local_domains: Vec<String>,
    /// Hosts that mean this server itself rather than a domain: its listen addresses and
    /// configured aliases (lower case; IPv6 with or without brackets). A user written at one
    /// of them (`sip:alice@192.0.2.1`, as clients that address the server by IP write it) is
    /// the user of the first of [`Self::local_domains`], as with Kamailio's `alias`. Ignored
    /// when `local_domains` is empty.
    pub domain_aliases: Vec<String>,
    /// The Contact this server puts in dialog-creating responses and in notifications
    /// (RFC 6665 §4.2.1.1, §4.2.2), e.g. `<sip:pool.example.test:5061;transport=tls>`.
    pub contact: String,
    /// Bounds on the bodies the engine parses.
    pub limits: Limits,
    /// How long a NOTIFY may wait for the pipeline to report its outcome before the engine
    /// forgets it and treats it as timed out (a little over 64*T1 = 32 s).
    pub notify_timeout: Duration,
    /// Mixed into dialog tags and entity tags so they are not guessable from a counter; give
    /// each process a random value.
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            subscription_expiry: ExpiryBounds {
                min: 60,
                default: 3600,
                max: 43_200,
            },
            publication_expiry: ExpiryBounds {
                min: 60,
                default: 3600,
                max: 86_400,
            },
            idle: IdlePolicy::default(),
            max_contacts: 250,
            max_subscriptions_per_user: 1000,
            max_watchers_per_presentity: 200,
            max_pidf_publications_per_user: 16,
            max_instances_per_user: 256,
            poll_burst: 20,
            poll_refill: Duration::from_secs(10),
            benotify: true,
            piggyback: true,
            autoextend: true,
            legacy_202: false,
            persist_subscriptions: false,
            local_domains: Vec::new(),
            domain_aliases: Vec::new(),
            contact: "<sip:presence.invalid;transport=tcp>".to_owned(),
            limits: Limits::DEFAULT,
            notify_timeout: Duration::from_secs(40),
            seed: 0x5eed_0f4e_7a1d_0042,
        }
    }
}

impl EngineConfig {
    /// Checks the settings can work together.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, b) in [
            ("subscription_expiry", self.subscription_expiry),
            ("publication_expiry", self.publication_expiry),
        ] {
            if b.min == 0 || b.min > b.default || b.default > b.max {
                return Err(ConfigError::Expiry(what));
            }
        }
        if self.max_contacts == 0 || self.max_contacts > MAX_CONTACTS_CEILING {
            return Err(ConfigError::MaxContacts(self.max_contacts));
        }
        if self.poll_burst == 0 || self.poll_refill.is_zero() {
            return Err(ConfigError::PollRate);
        }
        if herald_sip::NameAddr::parse_str(&self.contact).is_err() {
            return Err(ConfigError::Contact(self.contact.clone()));
        }
        Ok(())
    }

    /// The primary domain when `host` is one of [`Self::domain_aliases`].
    pub(crate) fn alias_target(&self, host: &str) -> Option<&str> {
        let bare = |h: &str| {
            let h = h.trim_end_matches('.');
            h.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(h)
                .to_ascii_lowercase()
        };
        let host = bare(host);
        let primary = self.local_domains.first()?;
        self.domain_aliases
            .iter()
            .any(|a| bare(a) == host)
            .then_some(primary.as_str())
    }

    /// Whether `domain` is one of ours.
    pub(crate) fn is_local(&self, domain: &str) -> bool {
        self.local_domains.is_empty()
            || self
                .local_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// A configuration the engine cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An expiry range is empty, starts at 0 or its default lies outside it.
    #[error("{0}: need 0 < min <= default <= max")]
    Expiry(&'static str),
    /// `max_contacts` is 0 or above [`MAX_CONTACTS_CEILING`].
    #[error("max_contacts {0} outside 1..=1000")]
    MaxContacts(u32),
    /// `poll_burst` or `poll_refill` is zero.
    #[error("poll_burst and poll_refill must be non-zero")]
    PollRate,
    /// `contact` is not a name-addr.
    #[error("contact {0:?} is not a SIP name-addr")]
    Contact(String),
}
