//! The deployment model: which SIP domains exist, which servers play which Lync role and at which
//! addresses, and which client networks count as "inside".
//!
//! Everything the DNS zone, the autodiscover documents, the certificate SAN list and the
//! discovery walk say is derived from one [`Topology`], so the answers cannot contradict each
//! other. The binary reads a [`TopologyConfig`] from the `[topology]` table of its TOML file and
//! completes it with what it knows about itself ([`LocalServer`]); a file that names only
//! `[sip] domain` gets a single-box topology where every role is this server.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::name::{Fqdn, NameError};
use crate::records::{RecordSet, View};

/// The `[topology]` table as written by an admin. Every key is optional: without the table the
/// server is a single box (every role at its own addresses, pool and server named
/// `pool.<domain>`). A single box may still set `addresses` (needed when the SIP listeners are
/// bound to wildcard addresses) and `server_fqdn`; a deployment lists its pools instead, as in
/// [`EXAMPLE_TOML`], which shows every key with its meaning.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyConfig {
    /// Client networks that get the internal DNS view and `AccessLocation="Internal"`.
    pub internal_networks: Option<Vec<String>>,
    /// Whether clients may use SIP over TCP (publishes `_sipinternal._tcp`).
    pub tcp_enabled: Option<bool>,
    /// The original description's forward lookup: internal clients resolve `lyncdiscover` to the
    /// reverse proxy, so mobile clients inside use its public certificate.
    #[serde(default)]
    pub lyncdiscover_internal: bool,
    /// TTL of A, AAAA and SRV records.
    pub ttl: Option<u32>,
    /// Single box: this server's addresses when the listeners are bound to wildcard addresses.
    pub addresses: Option<Vec<IpAddr>>,
    /// Single box: the name of the pool and its one server.
    pub server_fqdn: Option<String>,
    /// Records left out, as `label` (both views) or `internal:label` / `external:label`, where
    /// `label` is a Lync record name relative to each SIP domain (`sip`, `_sip._tls`, ...).
    #[serde(default)]
    pub omit_records: Vec<String>,
    /// Ports clients are told to use.
    #[serde(default)]
    pub ports: PortsConfig,
    /// Web service ports used in autodiscover links.
    #[serde(default)]
    pub web: WebConfig,
    /// Front End pools; empty means the single box.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// An optional Director pool.
    pub director: Option<DirectorConfig>,
    /// Edge Server external addresses.
    pub edge: Option<EdgeConfig>,
    /// The reverse proxy's external addresses.
    pub reverse_proxy: Option<Vec<IpAddr>>,
    /// Addresses for the `ns.<zone>` records.
    #[serde(default)]
    pub name_servers: NameServersConfig,
    /// The meeting, dial-in and Control Panel URLs.
    #[serde(default)]
    pub simple_urls: SimpleUrlsConfig,
    /// SIP domains that live in another deployment.
    #[serde(default)]
    pub remote_domains: Vec<RemoteDomainConfig>,
}

/// `[topology.ports]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortsConfig {
    /// Front End / Director SIP over TLS (Lync: 5061).
    pub internal_tls: Option<u16>,
    /// Front End / Director SIP over TCP (Lync: 5060).
    pub internal_tcp: Option<u16>,
    /// Access Edge client port (Lync: 443).
    pub external_tls: Option<u16>,
    /// Access Edge federation port (Lync: 5061).
    pub federation: Option<u16>,
}

/// `[topology.web]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Internal web services over HTTP.
    pub internal_http: Option<u16>,
    /// Internal web services over HTTPS.
    pub internal_https: Option<u16>,
    /// External web services (through the reverse proxy) over HTTP.
    pub external_http: Option<u16>,
    /// External web services (through the reverse proxy) over HTTPS.
    pub external_https: Option<u16>,
}

/// One `[[topology.pools]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// The pool FQDN; DNS load balancing answers it with every member's address.
    pub fqdn: String,
    /// Internal web services FQDN; default the pool FQDN.
    pub web_internal: Option<String>,
    /// External web services FQDN (published by the reverse proxy).
    pub web_external: Option<String>,
    /// The Front End servers.
    pub members: Vec<MemberConfig>,
}

/// One server of a pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The server's own FQDN.
    pub fqdn: String,
    /// Its IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
}

/// `[topology.director]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorConfig {
    /// The Director pool FQDN.
    pub fqdn: String,
    /// The Director servers.
    pub members: Vec<MemberConfig>,
}

/// `[topology.edge]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Access Edge external addresses.
    pub access: Option<Vec<IpAddr>>,
    /// A/V Edge external addresses.
    pub av: Option<Vec<IpAddr>>,
    /// Web Conferencing Edge external addresses.
    pub webconf: Option<Vec<IpAddr>>,
    /// The Access Edge's external FQDN, when one name serves every domain.
    pub access_fqdn: Option<String>,
}

/// `[topology.name_servers]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameServersConfig {
    /// `ns.<zone>` in the internal view; default the first pool's addresses.
    pub internal: Option<Vec<IpAddr>>,
    /// `ns.<zone>` in the external view; default the Access Edge addresses.
    pub external: Option<Vec<IpAddr>>,
}

/// `[topology.simple_urls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleUrlsConfig {
    /// Meeting URL; default `https://meet.<primary domain>`.
    pub meet: Option<String>,
    /// Dial-in URL; default `https://dialin.<primary domain>`.
    pub dialin: Option<String>,
    /// Control Panel URL; default `https://admin.<primary domain>`.
    pub admin: Option<String>,
}

/// One `[[topology.remote_domains]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteDomainConfig {
    /// The SIP domain hosted elsewhere.
    pub domain: String,
    /// Its autodiscover root URL (`https://…/Autodiscover/AutodiscoverService.svc/root`);
    /// default the domain's own external autodiscover name,
    /// `https://lyncdiscover.<domain>/Autodiscover/AutodiscoverService.svc/root`, where a client
    /// of that domain would look first from outside.
    pub autodiscover: Option<String>,
}

/// What the binary knows about the server it runs, used where `[topology]` is silent.
#[derive(Debug, Clone, Default)]
pub struct LocalServer {
    /// `[sip] domain` first, then `[sip] extra_domains`.
    pub domains: Vec<String>,
    /// Addresses of this server (from its listeners; wildcard listeners give none).
    pub addresses: Vec<IpAddr>,
    /// Port of the SIP TLS listener, if any.
    pub sip_tls_port: Option<u16>,
    /// Port of the SIP TCP listener, if any.
    pub sip_tcp_port: Option<u16>,
    /// Port of the `[http] web` listener, if any.
    pub web_http_port: Option<u16>,
    /// Port of the `[http] web_tls` listener, if any.
    pub web_https_port: Option<u16>,
}

/// A checked deployment model. Built only by [`Topology::from_config`] or
/// [`Topology::single_box`], so every name is valid and the DNS records are consistent.
#[derive(Debug, Clone)]
pub struct Topology {
    pub(crate) domains: Vec<Fqdn>,
    pub(crate) pools: Vec<Pool>,
    pub(crate) director: Option<Director>,
    pub(crate) edge: Edge,
    pub(crate) reverse_proxy: Vec<IpAddr>,
    pub(crate) simple_urls: SimpleUrls,
    pub(crate) internal_networks: Vec<IpNet>,
    pub(crate) tcp_enabled: bool,
    pub(crate) lyncdiscover_internal: bool,
    pub(crate) ports: SipPorts,
    pub(crate) web_ports: WebPorts,
    pub(crate) name_servers_internal: Vec<IpAddr>,
    pub(crate) name_servers_external: Vec<IpAddr>,
    pub(crate) remote_domains: Vec<RemoteDomain>,
    pub(crate) ttl: u32,
    pub(crate) omit: Vec<Omission>,
    pub(crate) records: RecordSet,
    /// Whether `reverse_proxy` was configured: without one, each pool publishes its own
    /// external web services (its `web_external` name answers the pool's members).
    pub(crate) reverse_proxy_configured: bool,
    /// This server's place, as (pool index, member index), once [`Topology::locate`] found it.
    pub(crate) local: Option<(usize, usize)>,
}

/// A Front End pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool FQDN.
    pub fqdn: Fqdn,
    /// Internal web services FQDN (autodiscover links for inside clients).
    pub web_internal: Fqdn,
    /// External web services FQDN (autodiscover links for outside clients).
    pub web_external: Fqdn,
    /// The servers; never empty.
    pub members: Vec<Member>,
}

/// A Director pool: the first hop for sign-in, which redirects to the home pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Director {
    /// The Director pool FQDN.
    pub fqdn: Fqdn,
    /// The servers; never empty.
    pub members: Vec<Member>,
}

/// One server of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The server's FQDN.
    pub fqdn: Fqdn,
    /// Its addresses; never empty.
    pub addresses: Vec<IpAddr>,
}

/// The Edge Server's external side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Access Edge (SIP from outside and federation).
    pub access: Vec<IpAddr>,
    /// A/V Edge.
    pub av: Vec<IpAddr>,
    /// Web Conferencing Edge.
    pub webconf: Vec<IpAddr>,
    /// One external Access Edge name for every domain, when configured.
    pub access_fqdn: Option<Fqdn>,
}

/// The simple URLs, as host names (the paths do not matter to DNS or certificates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleUrls {
    /// Meeting URL.
    pub meet: String,
    /// Dial-in URL.
    pub dialin: String,
    /// Control Panel URL.
    pub admin: String,
    /// The hosts of the three URLs, in that order.
    pub hosts: [Fqdn; 3],
}

/// The SIP ports clients are told about, in SRV records and autodiscover documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipPorts {
    /// Front End / Director TLS.
    pub internal_tls: u16,
    /// Front End / Director TCP.
    pub internal_tcp: u16,
    /// Access Edge client TLS.
    pub external_tls: u16,
    /// Access Edge federation TLS.
    pub federation: u16,
}

/// Ports of the web services as clients reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebPorts {
    /// Internal HTTP.
    pub internal_http: u16,
    /// Internal HTTPS.
    pub internal_https: u16,
    /// External HTTP (reverse proxy).
    pub external_http: u16,
    /// External HTTPS (reverse proxy).
    pub external_https: u16,
}

/// A SIP domain hosted by another deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDomain {
    /// The domain.
    pub domain: Fqdn,
    /// Its autodiscover root URL.
    pub autodiscover: String,
}

/// A record the admin asked to leave out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Omission {
    pub(crate) view: Option<View>,
    pub(crate) label: String,
}

/// Why a `[topology]` cannot be used. Each variant names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// No SIP domain at all (`[sip] domain` is required).
    #[error("no SIP domain: set [sip] domain")]
    NoDomain,
    /// A host or domain name is malformed.
    #[error("{key}: {value:?} is not a valid name: {reason}")]
    InvalidName {
        /// The offending key, e.g. `topology.pools[0].members[1].fqdn`.
        key: String,
        /// What was written.
        value: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// A role has no address to point clients at.
    #[error("{key}: no address; {hint}")]
    NoAddresses {
        /// The key that needs an address.
        key: String,
        /// How to give one.
        hint: &'static str,
    },
    /// A pool or Director has no servers.
    #[error("{key}: a pool needs at least one member")]
    NoMembers {
        /// The pool's `members` key.
        key: String,
    },
    /// More servers or addresses than one DNS answer should carry.
    #[error("{key}: {count} entries, at most {max} are allowed")]
    TooMany {
        /// The list at fault.
        key: String,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same name given twice where names must be unique.
    #[error("{key}: {name} is already used by {first}")]
    Duplicate {
        /// The second occurrence.
        key: String,
        /// The repeated name.
        name: String,
        /// Where it was first used.
        first: String,
    },
    /// A CIDR that does not parse.
    #[error("{key}: {value:?} is not a network in CIDR form (e.g. 10.0.0.0/8)")]
    InvalidNetwork {
        /// The offending key.
        key: String,
        /// What was written.
        value: String,
    },
    /// A URL that is not `http(s)://host[:port][/path]`.
    #[error("{key}: {value:?} is not an http or https URL with a host name")]
    InvalidUrl {
        /// The offending key.
        key: String,
        /// What was written.
        value: String,
    },
    /// A port of 0.
    #[error("{key}: port 0 cannot be dialled")]
    PortZero {
        /// The offending key.
        key: String,
    },
    /// A TTL outside 1..=2147483647 (RFC 2181 §8).
    #[error("topology.ttl: {0} is outside 1..=2147483647 seconds (RFC 2181 section 8)")]
    InvalidTtl(u32),
    /// An `omit_records` entry that names no generated record.
    #[error(
        "{key}: {value:?} is not `label`, `internal:label` or `external:label` with a Lync record label ({labels})"
    )]
    InvalidOmission {
        /// The offending key.
        key: String,
        /// What was written.
        value: String,
        /// The labels that may be omitted.
        labels: &'static str,
    },
    /// A remote domain that is also served here.
    #[error("{key}: {domain} is one of this deployment's SIP domains")]
    RemoteIsLocal {
        /// The offending key.
        key: String,
        /// The domain.
        domain: String,
    },
    /// A single-box key next to `[[topology.pools]]`, where it would be ignored.
    #[error("{key}: only for a single box; with [[topology.pools]] list the members' addresses")]
    SingleBoxOnly {
        /// The offending key.
        key: &'static str,
    },
    /// `[sip] member` names no server of any pool.
    #[error("sip.member: {name} is not a member of any [[topology.pools]] (members: {members})")]
    UnknownMember {
        /// What `[sip] member` says.
        name: String,
        /// Every member FQDN, comma-separated.
        members: String,
    },
    /// The server's addresses belong to more than one member, so it cannot tell which it is.
    #[error(
        "this server's addresses belong to {first} and to {second}; name the one it is with \
         [sip] member"
    )]
    AmbiguousMember {
        /// The first member matched.
        first: String,
        /// Another member matched.
        second: String,
    },
    /// Two roles claim the same DNS name with different addresses.
    #[error(
        "DNS name {name} ({view} view) is claimed by {first} and by {second} with different addresses"
    )]
    Conflict {
        /// The name.
        name: String,
        /// The view in which the clash happens.
        view: View,
        /// The first role.
        first: String,
        /// The second role.
        second: String,
    },
}

impl Pool {
    /// The member a user is homed on when the directory names none: rendezvous hashing of the
    /// address (lower case) over the member FQDNs. Every server of the pool, and every version
    /// of herald, computes the same member, and adding a member moves only the users it wins.
    pub fn default_home(&self, aor: &str) -> &Member {
        let aor = aor.to_ascii_lowercase();
        let mut best = &self.members[0];
        let mut best_score = 0u64;
        for (i, m) in self.members.iter().enumerate() {
            let score = rendezvous_score(m.fqdn.as_str(), &aor);
            if i == 0 || score > best_score {
                best = m;
                best_score = score;
            }
        }
        best
    }

    /// The member named `fqdn` (case ignored).
    pub fn member(&self, fqdn: &str) -> Option<&Member> {
        let fqdn = fqdn.trim_end_matches('.');
        self.members
            .iter()
            .find(|m| m.fqdn.as_str().eq_ignore_ascii_case(fqdn))
    }
}

/// FNV-1a over `member \n aor`, then the SplitMix64 finalizer: fixed by this code, not by the
/// standard library's hasher, so the choice never changes between builds.
fn rendezvous_score(member: &str, aor: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in member
        .bytes()
        .map(|b| b.to_ascii_lowercase())
        .chain(std::iter::once(b'\n'))
        .chain(aor.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Topology {
    /// Builds the single-box topology of a config that names only its SIP domain: one pool of one
    /// server, which is also Director-less Edge, reverse proxy and name server.
    pub fn single_box(
        domain: &str,
        addresses: &[IpAddr],
        sip_tls_port: u16,
        sip_tcp_port: Option<u16>,
    ) -> Result<Self, TopologyError> {
        let local = LocalServer {
            domains: vec![domain.to_owned()],
            addresses: addresses.to_vec(),
            sip_tls_port: Some(sip_tls_port),
            sip_tcp_port,
            web_http_port: None,
            web_https_port: None,
        };
        Self::from_config(&TopologyConfig::default(), &local)
    }

    /// Checks `config`, fills its gaps from `local`, and builds the DNS records (which also checks
    /// that no two roles claim one name), so that a bad topology stops the server at start.
    pub fn from_config(
        config: &TopologyConfig,
        local: &LocalServer,
    ) -> Result<Self, TopologyError> {
        let domains = parse_domains(&local.domains)?;
        let primary = domains[0].clone();

        let internal_networks = match &config.internal_networks {
            Some(list) => parse_networks(list)?,
            None => default_internal_networks(),
        };
        let ttl = config.ttl.unwrap_or(DEFAULT_TTL);
        if ttl == 0 || ttl > MAX_TTL {
            return Err(TopologyError::InvalidTtl(ttl));
        }

        let own_addresses = config
            .addresses
            .clone()
            .unwrap_or_else(|| local.addresses.clone());
        let pools = if config.pools.is_empty() {
            vec![single_pool(config, &primary, &own_addresses)?]
        } else {
            for (key, set) in [
                ("topology.addresses", config.addresses.is_some()),
                ("topology.server_fqdn", config.server_fqdn.is_some()),
            ] {
                if set {
                    return Err(TopologyError::SingleBoxOnly { key });
                }
            }
            parse_pools(&config.pools, &primary)?
        };
        let first_pool_addresses = pool_addresses(&pools[0].members);

        let director = config
            .director
            .as_ref()
            .map(|d| {
                Ok::<_, TopologyError>(Director {
                    fqdn: parse_name("topology.director.fqdn", &d.fqdn)?,
                    members: parse_members("topology.director.members", &d.members)?,
                })
            })
            .transpose()?;

        let edge_config = config.edge.clone().unwrap_or_default();
        let edge = Edge {
            access: role_addresses(
                "topology.edge.access",
                &edge_config.access,
                &first_pool_addresses,
            )?,
            av: role_addresses("topology.edge.av", &edge_config.av, &first_pool_addresses)?,
            webconf: role_addresses(
                "topology.edge.webconf",
                &edge_config.webconf,
                &first_pool_addresses,
            )?,
            access_fqdn: edge_config
                .access_fqdn
                .as_deref()
                .map(|n| parse_name("topology.edge.access_fqdn", n))
                .transpose()?,
        };
        let reverse_proxy = role_addresses(
            "topology.reverse_proxy",
            &config.reverse_proxy,
            &first_pool_addresses,
        )?;

        let has_edge = config.edge.is_some();
        let has_proxy = config.reverse_proxy.is_some();
        let ports = parse_ports(&config.ports, local, has_edge)?;
        let web_ports = parse_web_ports(&config.web, local, has_proxy)?;
        let tcp_enabled = config.tcp_enabled.unwrap_or(local.sip_tcp_port.is_some());

        let name_servers_internal = role_addresses(
            "topology.name_servers.internal",
            &config.name_servers.internal,
            &first_pool_addresses,
        )?;
        let name_servers_external = role_addresses(
            "topology.name_servers.external",
            &config.name_servers.external,
            &edge.access,
        )?;

        let simple_urls = parse_simple_urls(&config.simple_urls, &primary)?;
        let remote_domains = parse_remote_domains(&config.remote_domains, &domains)?;
        let omit = parse_omissions(&config.omit_records)?;

        let mut topology = Topology {
            domains,
            pools,
            director,
            edge,
            reverse_proxy,
            simple_urls,
            internal_networks,
            tcp_enabled,
            lyncdiscover_internal: config.lyncdiscover_internal,
            ports,
            web_ports,
            name_servers_internal,
            name_servers_external,
            remote_domains,
            ttl,
            omit,
            records: RecordSet::default(),
            reverse_proxy_configured: has_proxy,
            local: None,
        };
        topology.records = RecordSet::build(&topology)?;
        Ok(topology)
    }

    /// The SIP domains, the primary one (`[sip] domain`) first.
    pub fn domains(&self) -> &[Fqdn] {
        &self.domains
    }

    /// True when `domain` is one of this deployment's SIP domains.
    pub fn serves_domain(&self, domain: &str) -> bool {
        self.domains
            .iter()
            .any(|d| d.as_str().eq_ignore_ascii_case(domain))
    }

    /// The Front End pools; the first is the one the DNS names point at.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The pool with this FQDN, or the pool that has a member with this FQDN.
    pub fn pool_of(&self, fqdn: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| {
            p.fqdn.as_str().eq_ignore_ascii_case(fqdn)
                || p.members
                    .iter()
                    .any(|m| m.fqdn.as_str().eq_ignore_ascii_case(fqdn))
        })
    }

    /// Finds this server among the pool members, so that it serves as its own pool (autodiscover
    /// answers, the certificate) and knows which users are homed elsewhere: the member named
    /// `member` (`[sip] member`), else the one that has one of `addresses` (the SIP listeners').
    ///
    /// A name that is no member is an error, as are addresses that match two members (two
    /// members on one address need `[sip] member`). Addresses that match no member leave the
    /// server unplaced: it then serves as the first pool and redirects nobody (a single box,
    /// or a topology that only describes DNS).
    pub fn locate(
        mut self,
        member: Option<&str>,
        addresses: &[IpAddr],
    ) -> Result<Self, TopologyError> {
        let places = self
            .pools
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.members.iter().enumerate().map(move |(j, m)| ((i, j), m)));
        self.local = match member {
            Some(name) => {
                let name = name.trim().trim_end_matches('.');
                let found = places
                    .clone()
                    .find(|(_, m)| m.fqdn.as_str().eq_ignore_ascii_case(name));
                match found {
                    Some((at, _)) => Some(at),
                    None => {
                        let members: Vec<&str> = places.map(|(_, m)| m.fqdn.as_str()).collect();
                        return Err(TopologyError::UnknownMember {
                            name: name.to_owned(),
                            members: members.join(", "),
                        });
                    }
                }
            }
            None => {
                let mut matching =
                    places.filter(|(_, m)| m.addresses.iter().any(|a| addresses.contains(a)));
                let first = matching.next();
                if let (Some((_, a)), Some((_, b))) = (first, matching.next()) {
                    return Err(TopologyError::AmbiguousMember {
                        first: a.fqdn.to_string(),
                        second: b.fqdn.to_string(),
                    });
                }
                first.map(|(at, _)| at)
            }
        };
        Ok(self)
    }

    /// The pool this server is a member of ([`Topology::locate`]), else the first pool.
    pub fn local_pool(&self) -> &Pool {
        &self.pools[self.local.map_or(0, |(i, _)| i)]
    }

    /// This server's member entry, when [`Topology::locate`] placed it.
    pub fn local_member(&self) -> Option<&Member> {
        self.local.map(|(i, j)| &self.pools[i].members[j])
    }

    /// How many Front End servers the pools have together; with more than one, users are homed
    /// on one of them and redirected there.
    pub fn member_count(&self) -> usize {
        self.pools.iter().map(|p| p.members.len()).sum()
    }

    /// The pool and member `aor` is homed on, given the home the directory stores: that member
    /// when some pool has it; a pool FQDN (a user moved to a pool, not a server) picks the
    /// member by that pool's hash; no home, or one the topology no longer has, picks by the
    /// first pool's hash, the default pool users are created in. Every server of every pool
    /// computes the same answer, so two servers never both claim, or both refuse, a user.
    pub fn home_of(&self, aor: &str, stored: Option<&str>) -> (&Pool, &Member) {
        if let Some(name) = stored.map(|s| s.trim_end_matches('.')) {
            for pool in &self.pools {
                if let Some(m) = pool.member(name) {
                    return (pool, m);
                }
                if pool.fqdn.as_str().eq_ignore_ascii_case(name) {
                    return (pool, pool.default_home(aor));
                }
            }
        }
        let first = &self.pools[0];
        (first, first.default_home(aor))
    }

    /// The Director, when one is configured.
    pub fn director(&self) -> Option<&Director> {
        self.director.as_ref()
    }

    /// The Edge Server's external addresses.
    pub fn edge(&self) -> &Edge {
        &self.edge
    }

    /// The reverse proxy's external addresses.
    pub fn reverse_proxy(&self) -> &[IpAddr] {
        &self.reverse_proxy
    }

    /// The simple URLs.
    pub fn simple_urls(&self) -> &SimpleUrls {
        &self.simple_urls
    }

    /// The client networks that get the internal view.
    pub fn internal_networks(&self) -> &[IpNet] {
        &self.internal_networks
    }

    /// True when a client at `source` is inside the corporate network.
    pub fn is_internal(&self, source: IpAddr) -> bool {
        is_internal(&self.internal_networks, source)
    }

    /// Whether SIP over TCP is offered to clients.
    pub fn tcp_enabled(&self) -> bool {
        self.tcp_enabled
    }

    /// Whether the internal view answers `lyncdiscover` with the reverse proxy.
    pub fn lyncdiscover_internal(&self) -> bool {
        self.lyncdiscover_internal
    }

    /// The SIP ports clients are told about.
    pub fn ports(&self) -> SipPorts {
        self.ports
    }

    /// The web service ports clients are told about.
    pub fn web_ports(&self) -> WebPorts {
        self.web_ports
    }

    /// SIP domains hosted elsewhere.
    pub fn remote_domains(&self) -> &[RemoteDomain] {
        &self.remote_domains
    }

    /// The TTL of A, AAAA and SRV records.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The DNS records of both views, generated from this topology.
    pub fn records(&self) -> &RecordSet {
        &self.records
    }

    /// The Access Edge external FQDN that users of `domain` are given.
    pub fn access_fqdn(&self, domain: &Fqdn) -> Fqdn {
        self.edge
            .access_fqdn
            .clone()
            .unwrap_or_else(|| domain.prefixed("sip"))
    }

    /// The servers inside clients register with first: the Director, else the first pool.
    pub(crate) fn registrar_members(&self) -> &[Member] {
        match &self.director {
            Some(d) => &d.members,
            None => &self.pools[0].members,
        }
    }
}

/// True when `source` falls in one of `networks`; IPv4-mapped IPv6 sources (from dual-stack
/// sockets) are compared as the IPv4 address they carry.
pub(crate) fn is_internal(networks: &[IpNet], source: IpAddr) -> bool {
    let source = match source {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    networks.iter().any(|n| n.contains(&source))
}

/// Loopback, RFC 1918, unique-local (RFC 4193) and link-local networks: what "inside" means for
/// a server that was told nothing.
pub fn default_internal_networks() -> Vec<IpNet> {
    DEFAULT_INTERNAL_NETWORKS
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Every address of a pool's members, in member order, without repeats.
pub(crate) fn pool_addresses(members: &[Member]) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    members
        .iter()
        .flat_map(|m| m.addresses.iter().copied())
        .filter(|a| seen.insert(*a))
        .collect()
}

fn parse_name(key: &str, value: &str) -> Result<Fqdn, TopologyError> {
    Fqdn::parse(value).map_err(|reason| TopologyError::InvalidName {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    })
}

fn parse_domains(domains: &[String]) -> Result<Vec<Fqdn>, TopologyError> {
    if domains.is_empty() {
        return Err(TopologyError::NoDomain);
    }
    let mut out: Vec<Fqdn> = Vec::with_capacity(domains.len());
    for (i, d) in domains.iter().enumerate() {
        let key = if i == 0 {
            "sip.domain".to_owned()
        } else {
            format!("sip.extra_domains[{}]", i - 1)
        };
        let name = parse_name(&key, d)?;
        if out.contains(&name) {
            return Err(TopologyError::Duplicate {
                key,
                name: name.to_string(),
                first: "another SIP domain".to_owned(),
            });
        }
        out.push(name);
    }
    Ok(out)
}

fn parse_networks(list: &[String]) -> Result<Vec<IpNet>, TopologyError> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            let trimmed = text.trim();
            trimmed
                .parse::<IpNet>()
                .or_else(|_| trimmed.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| TopologyError::InvalidNetwork {
                    key: format!("topology.internal_networks[{i}]"),
                    value: text.clone(),
                })
        })
        .collect()
}

fn single_pool(
    config: &TopologyConfig,
    primary: &Fqdn,
    addresses: &[IpAddr],
) -> Result<Pool, TopologyError> {
    if addresses.is_empty() {
        return Err(TopologyError::NoAddresses {
            key: "topology.addresses".to_owned(),
            hint: "the SIP listeners are bound to wildcard addresses, so name this server's \
                   addresses in [topology] addresses",
        });
    }
    check_count("topology.addresses", addresses.len(), MAX_ADDRESSES)?;
    let fqdn = match &config.server_fqdn {
        Some(n) => parse_name("topology.server_fqdn", n)?,
        None => primary.prefixed("pool"),
    };
    Ok(Pool {
        web_internal: fqdn.clone(),
        web_external: primary.prefixed("lyncweb"),
        members: vec![Member {
            fqdn: fqdn.clone(),
            addresses: addresses.to_vec(),
        }],
        fqdn,
    })
}

fn parse_pools(pools: &[PoolConfig], primary: &Fqdn) -> Result<Vec<Pool>, TopologyError> {
    check_count("topology.pools", pools.len(), MAX_POOLS)?;
    let mut out: Vec<Pool> = Vec::with_capacity(pools.len());
    let mut names: Vec<(Fqdn, String)> = Vec::new();
    for (i, p) in pools.iter().enumerate() {
        let key = format!("topology.pools[{i}]");
        let fqdn = parse_name(&format!("{key}.fqdn"), &p.fqdn)?;
        claim_unique(&mut names, &fqdn, &format!("{key}.fqdn"))?;
        let members = parse_members(&format!("{key}.members"), &p.members)?;
        for (j, m) in members.iter().enumerate() {
            claim_unique(&mut names, &m.fqdn, &format!("{key}.members[{j}].fqdn"))?;
        }
        let web_internal = match &p.web_internal {
            Some(n) => parse_name(&format!("{key}.web_internal"), n)?,
            None => fqdn.clone(),
        };
        let web_external = match (&p.web_external, i) {
            (Some(n), _) => parse_name(&format!("{key}.web_external"), n)?,
            (None, 0) => primary.prefixed("lyncweb"),
            (None, _) => {
                return Err(TopologyError::NoAddresses {
                    key: format!("{key}.web_external"),
                    hint: "every pool after the first needs its own external web services FQDN",
                });
            }
        };
        out.push(Pool {
            fqdn,
            web_internal,
            web_external,
            members,
        });
    }
    Ok(out)
}

fn claim_unique(
    names: &mut Vec<(Fqdn, String)>,
    name: &Fqdn,
    key: &str,
) -> Result<(), TopologyError> {
    if let Some((_, first)) = names.iter().find(|(n, _)| n == name) {
        return Err(TopologyError::Duplicate {
            key: key.to_owned(),
            name: name.to_string(),
            first: first.clone(),
        });
    }
    names.push((name.clone(), key.to_owned()));
    Ok(())
}

fn parse_members(key: &str, members: &[MemberConfig]) -> Result<Vec<Member>, TopologyError> {
    if members.is_empty() {
        return Err(TopologyError::NoMembers {
            key: key.to_owned(),
        });
    }
    check_count(key, members.len(), MAX_MEMBERS)?;
    let mut out: Vec<Member> = Vec::with_capacity(members.len());
    for (j, m) in members.iter().enumerate() {
        let mkey = format!("{key}[{j}]");
        let fqdn = parse_name(&format!("{mkey}.fqdn"), &m.fqdn)?;
        if out.iter().any(|o| o.fqdn == fqdn) {
            return Err(TopologyError::Duplicate {
                key: format!("{mkey}.fqdn"),
                name: fqdn.to_string(),
                first: format!("another member of {key}"),
            });
        }
        if m.addresses.is_empty() {
            return Err(TopologyError::NoAddresses {
                key: format!("{mkey}.addresses"),
                hint: "list the server's IPv4 and/or IPv6 addresses",
            });
        }
        check_count(
            &format!("{mkey}.addresses"),
            m.addresses.len(),
            MAX_ADDRESSES,
        )?;
        out.push(Member {
            fqdn,
            addresses: dedup(&m.addresses),
        });
    }
    Ok(out)
}

fn role_addresses(
    key: &str,
    configured: &Option<Vec<IpAddr>>,
    fallback: &[IpAddr],
) -> Result<Vec<IpAddr>, TopologyError> {
    match configured {
        Some(list) if list.is_empty() => Err(TopologyError::NoAddresses {
            key: key.to_owned(),
            hint: "give at least one address or leave the key out",
        }),
        Some(list) => {
            check_count(key, list.len(), MAX_ADDRESSES)?;
            Ok(dedup(list))
        }
        None => Ok(fallback.to_vec()),
    }
}

fn dedup(list: &[IpAddr]) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    list.iter().copied().filter(|a| seen.insert(*a)).collect()
}

fn check_count(key: &str, count: usize, max: usize) -> Result<(), TopologyError> {
    if count > max {
        return Err(TopologyError::TooMany {
            key: key.to_owned(),
            count,
            max,
        });
    }
    Ok(())
}

fn port(key: &str, configured: Option<u16>, default: u16) -> Result<u16, TopologyError> {
    match configured.unwrap_or(default) {
        0 => Err(TopologyError::PortZero {
            key: key.to_owned(),
        }),
        p => Ok(p),
    }
}

fn parse_ports(
    config: &PortsConfig,
    local: &LocalServer,
    has_edge: bool,
) -> Result<SipPorts, TopologyError> {
    let internal_tls = port(
        "topology.ports.internal_tls",
        config.internal_tls,
        local.sip_tls_port.unwrap_or(LYNC_INTERNAL_TLS),
    )?;
    let internal_tcp = port(
        "topology.ports.internal_tcp",
        config.internal_tcp,
        local.sip_tcp_port.unwrap_or(LYNC_INTERNAL_TCP),
    )?;
    // Without an Edge, outside clients reach this very server, so its own TLS port is the one
    // to publish in `_sip._tls` and `_sipfederationtls._tcp`.
    let (ext_default, fed_default) = if has_edge {
        (LYNC_EXTERNAL_TLS, LYNC_FEDERATION)
    } else {
        (internal_tls, internal_tls)
    };
    Ok(SipPorts {
        internal_tls,
        internal_tcp,
        external_tls: port(
            "topology.ports.external_tls",
            config.external_tls,
            ext_default,
        )?,
        federation: port("topology.ports.federation", config.federation, fed_default)?,
    })
}

fn parse_web_ports(
    config: &WebConfig,
    local: &LocalServer,
    has_proxy: bool,
) -> Result<WebPorts, TopologyError> {
    let internal_http = port(
        "topology.web.internal_http",
        config.internal_http,
        local.web_http_port.unwrap_or(80),
    )?;
    let internal_https = port(
        "topology.web.internal_https",
        config.internal_https,
        local.web_https_port.unwrap_or(443),
    )?;
    let (ext_http, ext_https) = if has_proxy {
        (80, 443)
    } else {
        (internal_http, internal_https)
    };
    Ok(WebPorts {
        internal_http,
        internal_https,
        external_http: port("topology.web.external_http", config.external_http, ext_http)?,
        external_https: port(
            "topology.web.external_https",
            config.external_https,
            ext_https,
        )?,
    })
}

fn parse_simple_urls(
    config: &SimpleUrlsConfig,
    primary: &Fqdn,
) -> Result<SimpleUrls, TopologyError> {
    let one = |key: &str, configured: &Option<String>, label: &str| {
        let url = configured
            .clone()
            .unwrap_or_else(|| format!("https://{label}.{primary}"));
        let host = url_host(&url).ok_or_else(|| TopologyError::InvalidUrl {
            key: key.to_owned(),
            value: url.clone(),
        })?;
        Ok::<_, TopologyError>((url, host))
    };
    let (meet, meet_host) = one("topology.simple_urls.meet", &config.meet, "meet")?;
    let (dialin, dialin_host) = one("topology.simple_urls.dialin", &config.dialin, "dialin")?;
    let (admin, admin_host) = one("topology.simple_urls.admin", &config.admin, "admin")?;
    Ok(SimpleUrls {
        meet,
        dialin,
        admin,
        hosts: [meet_host, dialin_host, admin_host],
    })
}

/// The host of an `http(s)://host[:port][/...]` URL, when it is a valid name.
pub(crate) fn url_host(url: &str) -> Option<Fqdn> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => authority,
    };
    Fqdn::parse(host).ok()
}

fn parse_remote_domains(
    list: &[RemoteDomainConfig],
    local: &[Fqdn],
) -> Result<Vec<RemoteDomain>, TopologyError> {
    let mut out: Vec<RemoteDomain> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let key = format!("topology.remote_domains[{i}]");
        let domain = parse_name(&format!("{key}.domain"), &r.domain)?;
        if local.contains(&domain) {
            return Err(TopologyError::RemoteIsLocal {
                key: format!("{key}.domain"),
                domain: domain.to_string(),
            });
        }
        if out.iter().any(|o| o.domain == domain) {
            return Err(TopologyError::Duplicate {
                key: format!("{key}.domain"),
                name: domain.to_string(),
                first: "another remote domain".to_owned(),
            });
        }
        let autodiscover = match &r.autodiscover {
            Some(url) => url.clone(),
            None => format!(
                "https://{}/Autodiscover/AutodiscoverService.svc/root",
                domain.prefixed("lyncdiscover")
            ),
        };
        if url_host(&autodiscover).is_none() {
            return Err(TopologyError::InvalidUrl {
                key: format!("{key}.autodiscover"),
                value: autodiscover,
            });
        }
        out.push(RemoteDomain {
            domain,
            autodiscover,
        });
    }
    Ok(out)
}

fn parse_omissions(list: &[String]) -> Result<Vec<Omission>, TopologyError> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            let invalid = || TopologyError::InvalidOmission {
                key: format!("topology.omit_records[{i}]"),
                value: text.clone(),
                labels: OMITTABLE_TEXT,
            };
            let lower = text.trim().to_ascii_lowercase();
            let (view, label) = match lower.split_once(':') {
                Some(("internal", l)) => (Some(View::Internal), l),
                Some(("external", l)) => (Some(View::External), l),
                Some(_) => return Err(invalid()),
                None => (None, lower.as_str()),
            };
            let label = label.trim_end_matches('.');
            if !OMITTABLE.contains(&label) {
                return Err(invalid());
            }
            Ok(Omission {
                view,
                label: label.to_owned(),
            })
        })
        .collect()
}

/// A complete `[topology]`: a pool of two servers and a second pool, a Director, an Edge and a
/// reverse proxy, every key commented. Printed by the binary as a starting point; parsed by a test, so it stays
/// valid.
pub const EXAMPLE_TOML: &str = r#"[topology]
internal_networks = ["10.0.0.0/8", "192.168.0.0/16"]  # default: loopback, RFC 1918, fc00::/7,
                                                      # link-local
tcp_enabled = true             # default: true when the server has a SIP TCP listener
lyncdiscover_internal = false  # internal view also answers lyncdiscover (reverse proxy)
ttl = 300                      # A/AAAA/SRV TTL in seconds
omit_records = []              # "[internal:|external:]label" left out, e.g. "_sipinternal._tcp"
reverse_proxy = ["203.0.113.20"]  # default: the first pool's addresses
# Single box only (no [[topology.pools]]):
# addresses = ["192.0.2.10"]   # this server's addresses when listeners use wildcard addresses
# server_fqdn = "pool.contoso.com"

[topology.ports]       # what clients are told; in a single box the listeners' ports
internal_tls = 5061
internal_tcp = 5060
external_tls = 443     # Access Edge; without [topology.edge] the internal TLS port
federation = 5061

[topology.web]         # ports in autodiscover links
internal_http = 80
internal_https = 443
external_http = 80     # reverse proxy; without reverse_proxy the internal ports
external_https = 443

# Front End pools. The first is the one the domains' DNS names point at and the pool new users
# are homed in; a user homed on a member of another pool is redirected there (SIP 301 and the
# autodiscover Redirect). Each server finds itself by its SIP listen addresses, or by
# [sip] member = "fe21.contoso.com"; a member name may appear in one pool only.
[[topology.pools]]
fqdn = "pool01.contoso.com"
web_internal = "pool01.contoso.com"   # default: the pool FQDN
web_external = "lyncweb.contoso.com"  # default for the first pool: lyncweb.<primary domain>
members = [
  { fqdn = "fe01.contoso.com", addresses = ["10.0.0.11", "fd00::11"] },
  { fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] },
]

[[topology.pools]]
fqdn = "pool02.contoso.com"
web_external = "lyncweb02.contoso.com"  # required after the first pool; published by the
                                        # reverse proxy, or without one at the pool's members
members = [{ fqdn = "fe21.contoso.com", addresses = ["10.0.1.21"] }]

[topology.director]    # optional: sip, sipinternal, lyncdiscoverinternal point here
fqdn = "dir.contoso.com"
members = [{ fqdn = "dir01.contoso.com", addresses = ["10.0.0.21"] }]

[topology.edge]        # external addresses; each defaults to the first pool's addresses
access = ["203.0.113.10"]
av = ["203.0.113.11"]
webconf = ["203.0.113.12"]
# access_fqdn = "sip.contoso.com"     # default: sip.<user's domain>

[topology.name_servers]  # what ns.<zone> resolves to in each view
internal = ["10.0.0.11", "10.0.0.12"]  # default: the first pool's addresses
external = ["203.0.113.10"]            # default: the Access Edge addresses

[topology.simple_urls]   # defaults: https://meet.<primary domain> and so on
meet = "https://meet.contoso.com"
dialin = "https://dialin.contoso.com"
admin = "https://admin.contoso.com"

[[topology.remote_domains]]  # SIP domains hosted elsewhere: autodiscover redirects there
domain = "fabrikam.com"
# default: https://lyncdiscover.<domain>/Autodiscover/AutodiscoverService.svc/root
autodiscover = "https://lyncdiscover.fabrikam.com/Autodiscover/AutodiscoverService.svc/root"
"#;

/// TTL of A, AAAA and SRV records: five minutes, so a changed pool member is picked up soon
/// while clients still cache across a sign-in storm.
const DEFAULT_TTL: u32 = 300;
/// RFC 2181 §8.
const MAX_TTL: u32 = 2_147_483_647;
/// Lync 2013 has at most 12 Front Ends per pool; 32 leaves room while keeping answers small.
const MAX_MEMBERS: usize = 32;
/// Addresses per server or role, which bounds the size of one DNS answer.
const MAX_ADDRESSES: usize = 8;
/// Pools per deployment.
const MAX_POOLS: usize = 64;
const LYNC_INTERNAL_TLS: u16 = 5061;
const LYNC_INTERNAL_TCP: u16 = 5060;
const LYNC_EXTERNAL_TLS: u16 = 443;
const LYNC_FEDERATION: u16 = 5061;
const DEFAULT_INTERNAL_NETWORKS: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "169.254.0.0/16",
    "fe80::/10",
];
/// The Lync record labels `omit_records` may name.
pub(crate) const OMITTABLE: &[&str] = &[
    "lyncdiscoverinternal",
    "lyncdiscover",
    "sipinternal",
    "sip",
    "sipexternal",
    "dialin",
    "meet",
    "admin",
    "access",
    "av",
    "webconf",
    "_sipinternaltls._tcp",
    "_sipinternal._tcp",
    "_sip._tls",
    "_sipfederationtls._tcp",
];
const OMITTABLE_TEXT: &str = "lyncdiscoverinternal, lyncdiscover, sipinternal, sip, sipexternal, \
     dialin, meet, admin, access, av, webconf, _sipinternaltls._tcp, _sipinternal._tcp, _sip._tls, \
     _sipfederationtls._tcp";

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalServer {
        LocalServer {
            domains: vec!["contoso.com".into()],
            addresses: vec!["192.0.2.10".parse().unwrap()],
            sip_tls_port: Some(5061),
            sip_tcp_port: Some(5060),
            web_http_port: Some(8080),
            web_https_port: Some(8443),
        }
    }

    fn from_toml(text: &str) -> Result<Topology, TopologyError> {
        #[derive(Deserialize)]
        struct File {
            topology: TopologyConfig,
        }
        let file: File = toml::from_str(text).unwrap();
        Topology::from_config(&file.topology, &local())
    }

    #[test]
    fn single_box_puts_every_role_at_the_own_addresses() {
        let t = Topology::single_box("Contoso.com", &["192.0.2.10".parse().unwrap()], 5061, None)
            .unwrap();
        let me: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap()];
        assert_eq!(t.domains()[0].as_str(), "contoso.com");
        assert_eq!(t.pools()[0].fqdn.as_str(), "pool.contoso.com");
        assert_eq!(t.pools()[0].members[0].addresses, me);
        assert_eq!(t.edge().access, me);
        assert_eq!(t.edge().av, me);
        assert_eq!(t.reverse_proxy(), me.as_slice());
        assert!(!t.tcp_enabled());
        // No Edge: outside clients are sent to this server's own TLS port.
        assert_eq!(t.ports().external_tls, 5061);
        assert_eq!(t.ports().federation, 5061);
    }

    #[test]
    fn single_box_without_addresses_names_the_key() {
        let err = Topology::single_box("contoso.com", &[], 5061, None).unwrap_err();
        assert!(err.to_string().starts_with("topology.addresses:"), "{err}");
    }

    #[test]
    fn default_internal_networks_cover_loopback_private_and_link_local() {
        let nets = default_internal_networks();
        for inside in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "fd00::1",
            "169.254.1.1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(&nets, inside.parse().unwrap()), "{inside}");
        }
        for outside in ["192.0.2.1", "172.32.0.1", "2001:db8::1", "8.8.8.8"] {
            assert!(!is_internal(&nets, outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn full_config_is_read_from_toml() {
        let t = from_toml(
            r#"
            [topology]
            internal_networks = ["10.0.0.0/8"]
            tcp_enabled = true
            reverse_proxy = ["203.0.113.20"]
            [topology.edge]
            access = ["203.0.113.10"]
            av = ["203.0.113.11"]
            webconf = ["203.0.113.12"]
            [[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [
              { fqdn = "fe01.contoso.com", addresses = ["10.0.0.11", "fd00::11"] },
              { fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] },
            ]
            [topology.director]
            fqdn = "dir.contoso.com"
            members = [{ fqdn = "dir01.contoso.com", addresses = ["10.0.0.21"] }]
            "#,
        )
        .unwrap();
        assert_eq!(t.pools()[0].members.len(), 2);
        assert_eq!(t.pools()[0].web_external.as_str(), "lyncweb.contoso.com");
        assert_eq!(t.ports().external_tls, 443);
        assert_eq!(t.ports().federation, 5061);
        assert_eq!(t.web_ports().external_https, 443);
        assert!(t.is_internal("10.9.9.9".parse().unwrap()));
        assert!(!t.is_internal("192.168.1.1".parse().unwrap()));
        assert_eq!(
            t.director().unwrap().members[0].fqdn.as_str(),
            "dir01.contoso.com"
        );
        assert_eq!(
            t.pool_of("FE02.contoso.com").unwrap().fqdn.as_str(),
            "pool01.contoso.com"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                r#"[topology]
                internal_networks = ["10.0.0.0/33"]"#,
                "topology.internal_networks[0]:",
            ),
            (
                r#"[[topology.pools]]
                fqdn = "pool01.contoso.com"
                members = [{ fqdn = "fe_01.contoso.com", addresses = ["10.0.0.1"] }]"#,
                "topology.pools[0].members[0].fqdn:",
            ),
            (
                r#"[[topology.pools]]
                fqdn = "pool01.contoso.com"
                members = [{ fqdn = "fe01.contoso.com", addresses = [] }]"#,
                "topology.pools[0].members[0].addresses:",
            ),
            (
                r#"[[topology.pools]]
                fqdn = "pool01.contoso.com"
                members = []"#,
                "topology.pools[0].members:",
            ),
            (
                r#"[[topology.pools]]
                fqdn = "pool01.contoso.com"
                members = [{ fqdn = "pool01.contoso.com", addresses = ["10.0.0.1"] }]"#,
                "topology.pools[0].members[0].fqdn:",
            ),
            (
                r#"[topology.ports]
                internal_tls = 0"#,
                "topology.ports.internal_tls:",
            ),
            (
                r#"[topology]
                omit_records = ["internal:www"]"#,
                "topology.omit_records[0]:",
            ),
            (
                r#"[topology.simple_urls]
                meet = "ftp://meet.contoso.com""#,
                "topology.simple_urls.meet:",
            ),
            (
                r#"[[topology.remote_domains]]
                domain = "contoso.com"
                autodiscover = "https://lyncdiscover.contoso.com""#,
                "topology.remote_domains[0].domain:",
            ),
            (
                r#"[topology.edge]
                access = []"#,
                "topology.edge.access:",
            ),
        ];
        for (text, prefix) in cases {
            let err = from_toml(text).unwrap_err().to_string();
            assert!(err.starts_with(prefix), "expected {prefix} in {err}");
        }
    }

    #[test]
    fn two_roles_claiming_one_name_is_a_conflict() {
        // The pool is named like the Access Edge name; inside that is fine (sip → pool), but the
        // member's name collides with `meet` pointing at the pool with other addresses.
        let err = from_toml(
            r#"[[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [
              { fqdn = "meet.contoso.com", addresses = ["10.0.0.1"] },
              { fqdn = "fe02.contoso.com", addresses = ["10.0.0.2"] },
            ]"#,
        )
        .unwrap_err();
        assert!(matches!(err, TopologyError::Conflict { .. }), "{err}");
    }

    #[test]
    fn example_toml_is_valid_and_complete() {
        let t = from_toml(EXAMPLE_TOML).unwrap();
        assert_eq!(t.pools()[0].members.len(), 2);
        assert_eq!(t.pools()[1].web_external.as_str(), "lyncweb02.contoso.com");
        assert!(t.director().is_some());
        assert_eq!(t.remote_domains()[0].domain.as_str(), "fabrikam.com");
        assert_eq!(
            t.reverse_proxy(),
            ["203.0.113.20".parse::<IpAddr>().unwrap()]
        );
    }

    const TWO_POOLS: &str = r#"
        [[topology.pools]]
        fqdn = "pool01.contoso.com"
        members = [
          { fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] },
          { fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] },
        ]
        [[topology.pools]]
        fqdn = "pool02.contoso.com"
        web_external = "lyncweb02.contoso.com"
        members = [{ fqdn = "fe21.contoso.com", addresses = ["10.0.1.21"] }]
        "#;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn locate_finds_the_server_by_name_or_by_address() {
        let t = from_toml(TWO_POOLS).unwrap();
        assert!(t.local_member().is_none());
        assert_eq!(t.local_pool().fqdn.as_str(), "pool01.contoso.com");
        assert_eq!(t.member_count(), 3);

        let named = t.clone().locate(Some("FE21.contoso.com."), &[]).unwrap();
        assert_eq!(
            named.local_member().unwrap().fqdn.as_str(),
            "fe21.contoso.com"
        );
        assert_eq!(named.local_pool().fqdn.as_str(), "pool02.contoso.com");

        let by_address = t.clone().locate(None, &[ip("10.0.0.12")]).unwrap();
        assert_eq!(
            by_address.local_member().unwrap().fqdn.as_str(),
            "fe02.contoso.com"
        );
        assert_eq!(by_address.local_pool().fqdn.as_str(), "pool01.contoso.com");

        // A name wins over the addresses (two members may share a host in a lab).
        let both = t
            .clone()
            .locate(Some("fe01.contoso.com"), &[ip("10.0.1.21")])
            .unwrap();
        assert_eq!(
            both.local_member().unwrap().fqdn.as_str(),
            "fe01.contoso.com"
        );

        // No match: not a member, serves as the first pool.
        let stranger = t.locate(None, &[ip("192.0.2.1")]).unwrap();
        assert!(stranger.local_member().is_none());
    }

    #[test]
    fn locate_refuses_an_unknown_member_and_an_ambiguous_address() {
        let t = from_toml(TWO_POOLS).unwrap();
        let err = t.clone().locate(Some("fe09.contoso.com"), &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("sip.member: fe09.contoso.com"), "{text}");
        for m in ["fe01.contoso.com", "fe02.contoso.com", "fe21.contoso.com"] {
            assert!(text.contains(m), "the members are listed: {text}");
        }
        let err = t
            .locate(None, &[ip("10.0.0.11"), ip("10.0.1.21")])
            .unwrap_err();
        assert!(
            matches!(&err, TopologyError::AmbiguousMember { first, second }
                if first == "fe01.contoso.com" && second == "fe21.contoso.com"),
            "{err}"
        );
        assert!(err.to_string().contains("[sip] member"), "{err}");
    }

    #[test]
    fn a_member_name_in_two_pools_is_refused() {
        let err = from_toml(
            r#"[[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] }]
            [[topology.pools]]
            fqdn = "pool02.contoso.com"
            web_external = "lyncweb02.contoso.com"
            members = [{ fqdn = "FE01.contoso.com", addresses = ["10.0.1.21"] }]"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "topology.pools[1].members[0].fqdn: fe01.contoso.com is already used by \
             topology.pools[0].members[0].fqdn"
        );
        // A later pool without its own external web services name is refused too.
        let err = from_toml(
            r#"[[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] }]
            [[topology.pools]]
            fqdn = "pool02.contoso.com"
            members = [{ fqdn = "fe21.contoso.com", addresses = ["10.0.1.21"] }]"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("topology.pools[1].web_external:"),
            "{err}"
        );
    }

    #[test]
    fn home_of_follows_the_stored_member_in_any_pool_else_the_first_pools_hash() {
        let t = from_toml(TWO_POOLS).unwrap();
        let (pool, member) = t.home_of("bob@contoso.com", Some("FE21.contoso.com"));
        assert_eq!(
            (pool.fqdn.as_str(), member.fqdn.as_str()),
            ("pool02.contoso.com", "fe21.contoso.com")
        );
        // A pool named instead of a server: that pool's hash picks the member.
        let (pool, member) = t.home_of("bob@contoso.com", Some("pool02.contoso.com"));
        assert_eq!(
            (pool.fqdn.as_str(), member.fqdn.as_str()),
            ("pool02.contoso.com", "fe21.contoso.com")
        );
        let first = &t.pools()[0];
        for stored in [None, Some("gone.contoso.com")] {
            for user in ["a@contoso.com", "b@contoso.com", "c@contoso.com"] {
                let (pool, member) = t.home_of(user, stored);
                assert_eq!(pool, first, "{user} {stored:?}");
                assert_eq!(member, first.default_home(user), "{user} {stored:?}");
            }
        }
    }

    #[test]
    fn remote_domain_autodiscover_defaults_to_its_lyncdiscover_name() {
        let t = from_toml(
            r#"[[topology.remote_domains]]
            domain = "fabrikam.com""#,
        )
        .unwrap();
        assert_eq!(
            t.remote_domains()[0].autodiscover,
            "https://lyncdiscover.fabrikam.com/Autodiscover/AutodiscoverService.svc/root"
        );
    }

    #[test]
    fn single_box_keys_next_to_pools_are_rejected() {
        let err = from_toml(
            r#"[topology]
            server_fqdn = "x.contoso.com"
            [[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.1"] }]"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("topology.server_fqdn:"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct File {
            topology: TopologyConfig,
        }
        let err = toml::from_str::<File>("[topology]\nttls = 3").unwrap_err();
        assert!(err.to_string().contains("ttls"), "{err}");
    }

    #[test]
    fn url_host_takes_the_authority_without_port() {
        assert_eq!(
            url_host("https://Meet.contoso.com:4443/x")
                .unwrap()
                .as_str(),
            "meet.contoso.com"
        );
        assert!(url_host("meet.contoso.com").is_none());
    }

    #[test]
    fn default_home_is_stable_spread_and_moves_few_users_when_a_member_is_added() {
        let member = |n: &str| Member {
            fqdn: Fqdn::parse(n).expect("fqdn"),
            addresses: vec!["192.0.2.1".parse().expect("ip")],
        };
        let pool = |names: &[&str]| Pool {
            fqdn: Fqdn::parse("pool.example.test").expect("fqdn"),
            web_internal: Fqdn::parse("pool.example.test").expect("fqdn"),
            web_external: Fqdn::parse("pool.example.test").expect("fqdn"),
            members: names.iter().map(|n| member(n)).collect(),
        };
        let two = pool(&["fe01.example.test", "fe02.example.test"]);
        let three = pool(&[
            "fe01.example.test",
            "fe02.example.test",
            "fe03.example.test",
        ]);
        let users: Vec<String> = (0..3000).map(|i| format!("user{i}@example.test")).collect();
        let on_first = users
            .iter()
            .filter(|u| two.default_home(u).fqdn.as_str() == "fe01.example.test")
            .count();
        assert!(
            (1300..1700).contains(&on_first),
            "{on_first} of 3000 on fe01"
        );
        // Case does not matter, and the answer is the same every time.
        assert_eq!(
            two.default_home("User7@Example.Test").fqdn,
            two.default_home("user7@example.test").fqdn
        );
        let moved = users
            .iter()
            .filter(|u| two.default_home(u).fqdn != three.default_home(u).fqdn)
            .count();
        // Only the users the new member wins move (about a third), all of them to it.
        assert!((800..1200).contains(&moved), "{moved} moved");
        assert!(users.iter().all(|u| {
            let (a, b) = (two.default_home(u), three.default_home(u));
            a.fqdn == b.fqdn || b.fqdn.as_str() == "fe03.example.test"
        }));
    }
}
