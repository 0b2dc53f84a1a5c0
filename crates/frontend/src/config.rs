//! What the pipeline needs to know about its deployment.

use herald_auth::{DigestConfig, ThrottleConfig};
use herald_registrar::RegistrarConfig;
use herald_sip::Limits;

/// The pipeline's configuration, built by the binary from the config file.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// The domain whose realm is used for requests that name no domain of ours.
    pub primary_domain: String,
    /// Every SIP domain served, lower-case, the primary one included.
    pub domains: Vec<String>,
    /// A realm that overrides the per-domain default (the domain itself).
    pub realm: Option<String>,
    /// The `Server` header of every response.
    pub server_header: String,
    /// Parser bounds for datagrams.
    pub limits: Limits,
    pub registrar: RegistrarConfig,
    pub transactions: herald_transaction::Config,
    pub digest: DigestConfig,
    pub throttle: ThrottleConfig,
    /// Hand PUBLISH, SUBSCRIBE and SERVICE to the presence service
    /// ([`crate::FrontendEvent::Service`]); without one they are answered 405.
    pub presence: bool,
    /// Peers whose requests are served without authentication (an SBC, a load generator):
    /// the user is the one the request names. Empty by default.
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// Hold each REGISTER's 200 OK until its bindings are stored
    /// ([`crate::FrontendEvent::Persist`]), so nothing acknowledged is lost on restart.
    pub persist_registrations: bool,
    /// Pool homing: REGISTERs of users homed on another member are redirected there (301).
    /// `None` for a single server.
    pub homing: Option<crate::Homing>,
    /// NTLM ([MS-SIPAE]) beside Digest, for Lync clients; `None` offers Digest only.
    pub ntlm: Option<crate::NtlmConfig>,
    /// Hosts that name this server itself rather than a domain: its own listen addresses
    /// (`127.0.0.1`, `[::1]`) and configured aliases (`[sip] domain_aliases`), lower-case.
    /// Clients that address the server by IP write `sip:alice@192.0.2.1`; as with Kamailio's
    /// `alias`, such a user is `primary_domain`'s user. Empty: only domain names count.
    pub domain_aliases: Vec<String>,
}

/// A configuration the pipeline cannot run with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The registrar's expiry or binding bounds are inconsistent.
    #[error("registrar: {0}")]
    Registrar(herald_registrar::ConfigError),
}

impl FrontendConfig {
    /// Whether `domain` (lower-case) is one of ours.
    pub fn serves(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d == domain)
    }

    /// The served domain `host` (a URI's host as written: any case, a trailing dot, an IPv6
    /// address in brackets or not) stands for: itself when it is one of [`Self::domains`],
    /// [`Self::primary_domain`] when it is one of [`Self::domain_aliases`], else `None`.
    pub fn domain_of(&self, host: &str) -> Option<&str> {
        let host = normalize_host(host);
        if let Some(d) = self.domains.iter().find(|d| **d == host) {
            return Some(d);
        }
        self.domain_aliases
            .iter()
            .any(|a| normalize_host(a) == host)
            .then_some(self.primary_domain.as_str())
    }

    /// Whether requests from `ip` skip authentication.
    pub fn is_trusted(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_networks.iter().any(|n| n.contains(&ip))
    }

    /// The Digest realm for users of `domain`.
    pub fn realm_for<'a>(&'a self, domain: &'a str) -> &'a str {
        self.realm.as_deref().unwrap_or(domain)
    }
}

/// A host as compared with domains and aliases: lower-case, without a trailing dot or the
/// brackets of an IPv6 reference.
pub(crate) fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.');
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.to_ascii_lowercase()
}
