//! The async driver of the walk: DNS through hickory-resolver (against `--dns ADDR`, or the
//! system's resolvers), HTTP through [`super::http`]. It measures each step and feeds the result
//! back to the state machine; it decides nothing itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::http::{self, CaError, TlsTrust};
use super::{Action, LookupAnswer, LookupKind, Report, SrvRecord, Walk, WalkError};

/// What `herald discover` was asked.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// `user@domain`.
    pub user: String,
    /// The DNS server to ask (`--dns ADDR`); the system's resolvers when `None`.
    pub dns: Option<SocketAddr>,
    /// Follow a mobile client's rules (autodiscover only).
    pub mobile: bool,
    /// Extra trusted (and pinned) certificates, PEM (`--ca FILE`).
    pub ca: Option<PathBuf>,
    /// Port of plain-HTTP autodiscover (80 for real clients).
    pub http_port: u16,
    /// Port of HTTPS autodiscover (443 for real clients).
    pub https_port: u16,
    /// Time allowed for each step.
    pub timeout: Duration,
}

/// Why the walk could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The user is not `user@domain`.
    #[error(transparent)]
    User(#[from] WalkError),
    /// The `--ca` file cannot be used.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The system resolver configuration cannot be read.
    #[error("DNS resolver: {0}")]
    Resolver(String),
}

impl DiscoverOptions {
    /// Options for `user` with a real client's ports and a 3-second step timeout.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            dns: None,
            mobile: false,
            ca: None,
            http_port: 80,
            https_port: 443,
            timeout: Duration::from_secs(3),
        }
    }
}

/// Walks the discovery order for `opts.user` and reports every step.
pub async fn discover(opts: &DiscoverOptions) -> Result<Report, DiscoverError> {
    let mut walk = Walk::new(&opts.user, opts.mobile, opts.http_port, opts.https_port)?;
    let trust = TlsTrust::new(opts.ca.as_deref())?;
    let resolver = resolver(opts)?;
    loop {
        match walk.next() {
            Action::Done => return Ok(walk.report()),
            Action::Lookup(lookup) => {
                let started = Instant::now();
                let answer = match lookup.kind {
                    LookupKind::Address => addresses(&resolver, &lookup.name).await,
                    LookupKind::Srv => srv(&resolver, &lookup.name).await,
                };
                walk.on_lookup(answer, started.elapsed());
            }
            Action::Fetch(fetch) => {
                let started = Instant::now();
                let answer = http::get(&fetch, &trust, opts.timeout).await;
                walk.on_fetch(answer, started.elapsed());
            }
        }
    }
}

fn resolver(opts: &DiscoverOptions) -> Result<TokioResolver, DiscoverError> {
    let mut options = ResolverOpts::default();
    options.timeout = opts.timeout;
    options.attempts = 1;
    options.ndots = 0;
    // Every lookup is a fresh question: a cached answer would hide what the server says now.
    options.cache_size = 0;
    let builder = match opts.dns {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            server.connections = vec![udp, tcp];
            let config = ResolverConfig::from_parts(None, Vec::new(), vec![server]);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => {
            TokioResolver::builder_tokio().map_err(|e| DiscoverError::Resolver(e.to_string()))?
        }
    };
    builder
        .with_options(options)
        .build()
        .map_err(|e| DiscoverError::Resolver(e.to_string()))
}

/// A and AAAA; the host resolves when either answers.
async fn addresses(resolver: &TokioResolver, name: &str) -> Result<LookupAnswer, String> {
    let fqdn = format!("{name}.");
    let (v4, v6) = tokio::join!(
        resolver.lookup(fqdn.as_str(), RecordType::A),
        resolver.lookup(fqdn.as_str(), RecordType::AAAA)
    );
    let mut found: Vec<IpAddr> = Vec::new();
    let mut first_error = None;
    for result in [v4, v6] {
        match result {
            Ok(lookup) => found.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })),
            Err(e) => {
                first_error.get_or_insert(describe(&e));
            }
        }
    }
    match (found.is_empty(), first_error) {
        (false, _) => Ok(LookupAnswer::Addresses(found)),
        (true, Some(e)) => Err(e),
        (true, None) => Ok(LookupAnswer::Addresses(found)),
    }
}

async fn srv(resolver: &TokioResolver, name: &str) -> Result<LookupAnswer, String> {
    let lookup = resolver
        .lookup(format!("{name}.").as_str(), RecordType::SRV)
        .await
        .map_err(|e| describe(&e))?;
    Ok(LookupAnswer::Srv(
        lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii().trim_end_matches('.').to_owned(),
                }),
                _ => None,
            })
            .collect(),
    ))
}

/// DNS failures as an admin reads them: NXDOMAIN, NODATA, REFUSED, timeouts.
fn describe(error: &NetError) -> String {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(none)) => match none.response_code {
            ResponseCode::NXDomain => "NXDOMAIN (no such name)".to_owned(),
            ResponseCode::NoError => format!(
                "NODATA (the name exists but has no {} record)",
                none.query.query_type()
            ),
            other => other.to_string(),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => format!("server answered {code}"),
        other => other.to_string(),
    }
}
