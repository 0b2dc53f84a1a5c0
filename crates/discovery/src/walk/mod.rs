//! The client's discovery walk (`herald discover`), as a state machine without I/O.
//!
//! The order is the Lync client's: autodiscover at `lyncdiscoverinternal.<domain>`, then at
//! `lyncdiscover.<domain>` (a mobile client stops there on failure); then DNS SRV
//! `_sipinternaltls._tcp`, `_sipinternal._tcp`, `_sip._tls`; then A records `sipinternal`, `sip`,
//! `sipexternal`. Any failure moves to the next step, even a present-but-wrong record, as real
//! clients do.
//!
//! [`Walk::next`] says what it needs (a DNS lookup or an HTTP GET); the caller performs it and
//! feeds the result back with [`Walk::on_lookup`] / [`Walk::on_fetch`], including the time it
//! took. [`discover`] is the async driver over hickory-resolver and a small HTTP(S) client; tests
//! drive the machine with a fake world instead.
//!
//! Where the client is: inside when `lyncdiscoverinternal` resolves (the original description's
//! rule), refined by the `AccessLocation` of an autodiscover answer; for DNS fallbacks, the
//! internal records (`_sipinternal*`, `sipinternal`) mean inside and the external ones
//! (`_sip._tls`, `sipexternal`) outside. Ports for A-record fallbacks are the client's own
//! knowledge: 5061 for `sipinternal` and for `sip` inside, 443 for `sip` outside and for
//! `sipexternal`.

mod driver;
mod http;
mod report;

use std::net::IpAddr;
use std::time::Duration;

pub use driver::{DiscoverError, DiscoverOptions, discover};
pub use http::{CaError, TlsTrust};
pub use report::{Location, Registrar, Report, Step, StepKind, Transport};

use crate::autodiscover::{ClientView, Scheme, SipUri, read_xml};

/// One discovery walk.
#[derive(Debug, Clone)]
pub struct Walk {
    user: SipUri,
    mobile: bool,
    http_port: u16,
    https_port: u16,
    state: State,
    steps: Vec<Step>,
    inside: bool,
    result: Option<Registrar>,
    stopped: Option<String>,
}

/// What the walk needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Resolve a name.
    Lookup(Lookup),
    /// GET a URL.
    Fetch(Fetch),
    /// Finished: take the [`Walk::report`].
    Done,
}

/// A DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The name, without the trailing dot.
    pub name: String,
    /// What to ask for.
    pub kind: LookupKind,
}

/// The record types the walk asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    /// A and AAAA together: the addresses of a host.
    Address,
    /// SRV.
    Srv,
}

/// An HTTP GET to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The URL as a client would show it.
    pub url: String,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// Host name for `Host` and TLS SNI.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path and query.
    pub path_and_query: String,
    /// Where `host` resolved to (try in order).
    pub addresses: Vec<IpAddr>,
}

/// A successful DNS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupAnswer {
    /// The host's addresses (may be empty: NODATA).
    Addresses(Vec<IpAddr>),
    /// SRV records.
    Srv(Vec<SrvRecord>),
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower first.
    pub priority: u16,
    /// Higher first among equal priorities.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host, without the trailing dot.
    pub target: String,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchAnswer {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body (bounded by the driver).
    pub body: String,
}

/// Why a walk cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The user is not `user@domain`.
    #[error("{0:?} is not a SIP address (user@domain)")]
    BadUser(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Resolving `lyncdiscover[internal].<domain>`.
    AdHost {
        host: usize,
    },
    /// Fetching from an autodiscover host; `fallback` is the plain-HTTP try that follows a
    /// failed HTTPS one.
    AdFetch {
        host: usize,
        fetch: Fetch,
        hops: u8,
        fallback: Option<Fetch>,
    },
    /// Resolving the host of a link to follow.
    AdLink {
        host: usize,
        url: Url,
        hops: u8,
    },
    /// Resolving the registrar named by autodiscover.
    AdRegistrar {
        host: usize,
        registrar: Registrar,
    },
    /// SRV fallback `index`.
    Srv {
        index: usize,
    },
    /// Resolving an SRV target.
    SrvTarget {
        index: usize,
        record: SrvRecord,
    },
    /// A-record fallback `index`.
    Address {
        index: usize,
    },
    Done,
}

/// A parsed `http(s)://host[:port]/path?query`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    path_and_query: String,
}

impl Walk {
    /// Starts a walk for `user` (`alice@contoso.com` or `sip:alice@contoso.com`). `http_port`
    /// and `https_port` are where autodiscover is asked (80 and 443 for real clients).
    pub fn new(
        user: &str,
        mobile: bool,
        http_port: u16,
        https_port: u16,
    ) -> Result<Self, WalkError> {
        let user = SipUri::parse(user).ok_or_else(|| WalkError::BadUser(user.to_owned()))?;
        Ok(Self {
            user,
            mobile,
            http_port,
            https_port,
            state: State::AdHost { host: 0 },
            steps: Vec::new(),
            inside: false,
            result: None,
            stopped: None,
        })
    }

    /// What to do next.
    pub fn next(&self) -> Action {
        match &self.state {
            State::AdHost { host } => Action::Lookup(Lookup {
                name: self.ad_host(*host),
                kind: LookupKind::Address,
            }),
            State::AdFetch { fetch, .. } => Action::Fetch(fetch.clone()),
            State::AdLink { url, .. } => Action::Lookup(Lookup {
                name: url.host.clone(),
                kind: LookupKind::Address,
            }),
            State::AdRegistrar { registrar, .. } => Action::Lookup(Lookup {
                name: registrar.fqdn.clone(),
                kind: LookupKind::Address,
            }),
            State::Srv { index } => Action::Lookup(Lookup {
                name: format!("{}.{}", SRV_STEPS[*index].0, self.user.domain),
                kind: LookupKind::Srv,
            }),
            State::SrvTarget { record, .. } => Action::Lookup(Lookup {
                name: record.target.clone(),
                kind: LookupKind::Address,
            }),
            State::Address { index } => Action::Lookup(Lookup {
                name: format!("{}.{}", ADDRESS_STEPS[*index].0, self.user.domain),
                kind: LookupKind::Address,
            }),
            State::Done => Action::Done,
        }
    }

    /// Feeds the answer to the pending [`Action::Lookup`]; `Err` carries the failure as text
    /// (NXDOMAIN, timeout, ...).
    pub fn on_lookup(&mut self, answer: Result<LookupAnswer, String>, elapsed: Duration) {
        let Action::Lookup(lookup) = self.next() else {
            return;
        };
        let ask = match lookup.kind {
            LookupKind::Address => format!("A/AAAA {}", lookup.name),
            LookupKind::Srv => format!("SRV {}", lookup.name),
        };
        // An empty answer is NODATA: as much a failure to the client as NXDOMAIN.
        let answer = match answer {
            Ok(LookupAnswer::Addresses(a)) if a.is_empty() => Err("no address records".to_owned()),
            Ok(LookupAnswer::Srv(s)) if s.is_empty() => Err("no SRV records".to_owned()),
            other => other,
        };
        let shown = match &answer {
            Ok(LookupAnswer::Addresses(a)) => Ok(join(a)),
            Ok(LookupAnswer::Srv(s)) => Ok(s
                .iter()
                .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
                .collect::<Vec<_>>()
                .join(", ")),
            Err(e) => Err(e.clone()),
        };
        self.record(StepKind::Dns, ask, shown, elapsed);

        match (self.state.clone(), answer) {
            (State::AdHost { host }, Ok(LookupAnswer::Addresses(addresses))) => {
                if host == 0 {
                    self.inside = true;
                    self.note("lyncdiscoverinternal resolves: the client is inside");
                }
                let https = self.ad_fetch(host, Scheme::Https, addresses.clone());
                let http = self.ad_fetch(host, Scheme::Http, addresses);
                self.state = State::AdFetch {
                    host,
                    fetch: https,
                    hops: 0,
                    fallback: Some(http),
                };
            }
            (State::AdHost { host }, _) => {
                if host == 0 {
                    self.note("lyncdiscoverinternal does not resolve: the client is outside");
                }
                self.next_ad_host(host);
            }
            (State::AdLink { host, url, hops }, Ok(LookupAnswer::Addresses(addresses))) => {
                self.state = State::AdFetch {
                    host,
                    fetch: url.into_fetch(addresses),
                    hops,
                    fallback: None,
                };
            }
            (State::AdLink { host, .. }, _) => self.next_ad_host(host),
            (State::AdRegistrar { mut registrar, .. }, Ok(LookupAnswer::Addresses(addresses))) => {
                registrar.addresses = addresses;
                self.finish(registrar);
            }
            (State::AdRegistrar { host, .. }, _) => self.next_ad_host(host),
            (State::Srv { index }, Ok(LookupAnswer::Srv(records))) => {
                let record = pick_srv(records);
                self.state = State::SrvTarget { index, record };
            }
            (State::Srv { index }, _) => self.next_srv(index),
            (State::SrvTarget { index, record }, Ok(LookupAnswer::Addresses(addresses))) => {
                let (label, transport, location) = SRV_STEPS[index];
                self.finish(Registrar {
                    fqdn: record.target,
                    port: record.port,
                    transport,
                    location,
                    via: format!("SRV {label}.{}", self.user.domain),
                    addresses,
                });
            }
            (State::SrvTarget { index, .. }, _) => self.next_srv(index),
            (State::Address { index }, Ok(LookupAnswer::Addresses(addresses))) => {
                let (label, location) = ADDRESS_STEPS[index];
                let location = location.unwrap_or(if self.inside {
                    Location::Inside
                } else {
                    Location::Outside
                });
                let port = match (label, location) {
                    ("sip", Location::Inside) | ("sipinternal", _) => CLIENT_INTERNAL_TLS,
                    _ => CLIENT_EXTERNAL_TLS,
                };
                let fqdn = format!("{label}.{}", self.user.domain);
                self.finish(Registrar {
                    via: format!("A {fqdn}"),
                    fqdn,
                    port,
                    transport: Transport::Tls,
                    location,
                    addresses,
                });
            }
            (State::Address { index }, _) => self.next_address(index),
            _ => {}
        }
    }

    /// Feeds the answer to the pending [`Action::Fetch`].
    pub fn on_fetch(&mut self, answer: Result<FetchAnswer, String>, elapsed: Duration) {
        let State::AdFetch {
            host,
            fetch,
            hops,
            fallback,
        } = self.state.clone()
        else {
            return;
        };
        let outcome = answer.and_then(|a| autodiscover_document(&a));
        let shown = match &outcome {
            Ok(doc) => Ok(describe(doc)),
            Err(e) => Err(e.clone()),
        };
        self.record(StepKind::Http, format!("GET {}", fetch.url), shown, elapsed);
        let Ok(doc) = outcome else {
            match fallback {
                Some(next) => {
                    self.state = State::AdFetch {
                        host,
                        fetch: next,
                        hops,
                        fallback: None,
                    }
                }
                None => self.next_ad_host(host),
            }
            return;
        };

        if doc.has_user {
            if let Some(href) = doc.user_redirect() {
                return self.follow(host, &fetch, href, hops);
            }
            match self.registrar_from(&doc) {
                Some(registrar) => {
                    self.state = State::AdRegistrar { host, registrar };
                }
                None => {
                    self.note("the User document names no SIP access for this location");
                    self.next_ad_host(host);
                }
            }
            return;
        }
        match doc.next_root_link() {
            Some((_, href)) => {
                let href = href.to_owned();
                self.follow(host, &fetch, &href, hops);
            }
            None => {
                self.note("the Root document has neither a User nor a Redirect link");
                self.next_ad_host(host);
            }
        }
    }

    /// True once the walk has finished.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The steps so far and the result.
    pub fn report(&self) -> Report {
        Report {
            user: self.user.to_string(),
            mobile: self.mobile,
            steps: self.steps.clone(),
            result: self.result.clone(),
            stopped: self.stopped.clone(),
        }
    }

    fn ad_host(&self, host: usize) -> String {
        format!("{}.{}", AD_HOSTS[host], self.user.domain)
    }

    fn ad_fetch(&self, host: usize, scheme: Scheme, addresses: Vec<IpAddr>) -> Fetch {
        let port = match scheme {
            Scheme::Http => self.http_port,
            Scheme::Https => self.https_port,
        };
        Url {
            scheme,
            host: self.ad_host(host),
            port,
            path_and_query: format!("/?sipuri={}", self.user),
        }
        .into_fetch(addresses)
    }

    fn follow(&mut self, host: usize, from: &Fetch, href: &str, hops: u8) {
        if hops >= MAX_HOPS {
            self.note("too many autodiscover redirects");
            return self.next_ad_host(host);
        }
        let Some(url) = Url::parse(href) else {
            self.note(&format!("cannot follow {href:?}: not an http(s) URL"));
            return self.next_ad_host(host);
        };
        if url.host.eq_ignore_ascii_case(&from.host) {
            self.state = State::AdFetch {
                host,
                fetch: url.into_fetch(from.addresses.clone()),
                hops: hops + 1,
                fallback: None,
            };
        } else if let Ok(ip) = url.host.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.state = State::AdFetch {
                host,
                fetch: url.into_fetch(vec![ip]),
                hops: hops + 1,
                fallback: None,
            };
        } else {
            self.state = State::AdLink {
                host,
                url,
                hops: hops + 1,
            };
        }
    }

    /// The registrar a User document gives for where the client is (SIPE's rule: with an
    /// `AccessLocation`, only that side; without, internal first).
    fn registrar_from(&self, doc: &ClientView) -> Option<Registrar> {
        let location = match doc.access_location.as_deref() {
            Some(l) if l.eq_ignore_ascii_case("internal") => Some(Location::Inside),
            Some(l) if l.eq_ignore_ascii_case("external") => Some(Location::Outside),
            _ => None,
        };
        let internal = doc.access("SipClientInternalAccess");
        let external = doc.access("SipClientExternalAccess");
        let (chosen, location) = match location {
            Some(Location::Inside) => (internal?, Location::Inside),
            Some(Location::Outside) => (external?, Location::Outside),
            None => match (internal, external) {
                (Some(i), _) => (i, Location::Inside),
                (None, Some(e)) => (e, Location::Outside),
                (None, None) => return None,
            },
        };
        Some(Registrar {
            fqdn: chosen.0.to_owned(),
            port: chosen.1,
            transport: Transport::Tls,
            location,
            via: "autodiscover".to_owned(),
            addresses: Vec::new(),
        })
    }

    fn next_ad_host(&mut self, host: usize) {
        if host + 1 < AD_HOSTS.len() {
            self.state = State::AdHost { host: host + 1 };
        } else if self.mobile {
            self.stopped = Some(
                "autodiscover failed; mobile and Windows Store clients use nothing else".to_owned(),
            );
            self.state = State::Done;
        } else {
            self.state = State::Srv { index: 0 };
        }
    }

    fn next_srv(&mut self, index: usize) {
        self.state = if index + 1 < SRV_STEPS.len() {
            State::Srv { index: index + 1 }
        } else {
            State::Address { index: 0 }
        };
    }

    fn next_address(&mut self, index: usize) {
        if index + 1 < ADDRESS_STEPS.len() {
            self.state = State::Address { index: index + 1 };
        } else {
            self.stopped = Some("every discovery method failed".to_owned());
            self.state = State::Done;
        }
    }

    fn finish(&mut self, registrar: Registrar) {
        self.result = Some(registrar);
        self.state = State::Done;
    }

    fn record(
        &mut self,
        kind: StepKind,
        ask: String,
        outcome: Result<String, String>,
        elapsed: Duration,
    ) {
        self.steps.push(Step {
            kind,
            ask,
            outcome,
            elapsed,
            notes: Vec::new(),
        });
    }

    fn note(&mut self, text: &str) {
        if let Some(step) = self.steps.last_mut() {
            step.notes.push(text.to_owned());
        }
    }
}

impl Url {
    fn parse(href: &str) -> Option<Url> {
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(href, "https://") {
            (Scheme::Https, r)
        } else {
            (Scheme::Http, strip_prefix_ci(href, "http://")?)
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, p.parse().ok()?),
            _ => (
                authority,
                match scheme {
                    Scheme::Http => 80,
                    Scheme::Https => 443,
                },
            ),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return None;
        }
        let path_and_query = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Some(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query,
        })
    }

    fn into_fetch(self, addresses: Vec<IpAddr>) -> Fetch {
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let url = if self.port == default {
            format!(
                "{}://{}{}",
                self.scheme.as_str(),
                self.host,
                self.path_and_query
            )
        } else {
            format!(
                "{}://{}:{}{}",
                self.scheme.as_str(),
                self.host,
                self.port,
                self.path_and_query
            )
        };
        Fetch {
            url,
            scheme: self.scheme,
            host: self.host,
            port: self.port,
            path_and_query: self.path_and_query,
            addresses,
        }
    }
}

/// RFC 2782 selection without randomness: the lowest priority, then the highest weight, then the
/// first listed (what Lync documents for Access Edge SRV records).
fn pick_srv(mut records: Vec<SrvRecord>) -> SrvRecord {
    records.sort_by_key(|r| (r.priority, std::cmp::Reverse(r.weight)));
    records.swap_remove(0)
}

/// A 200 with an autodiscover XML body, as SIPE accepts it.
fn autodiscover_document(answer: &FetchAnswer) -> Result<ClientView, String> {
    if answer.status != 200 {
        return Err(format!("HTTP {}", answer.status));
    }
    let ct = answer.content_type.as_deref().unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/vnd.microsoft.rtc.autodiscover+xml")
    {
        return Err(format!(
            "HTTP 200 but Content-Type {ct:?} is not autodiscover XML"
        ));
    }
    read_xml(&answer.body).map_err(|e| e.to_string())
}

fn describe(doc: &ClientView) -> String {
    let location = doc
        .access_location
        .as_deref()
        .unwrap_or("no AccessLocation");
    if let Some(href) = doc.user_redirect() {
        return format!("{location}; User Redirect → {href}");
    }
    if doc.has_user {
        let access: Vec<String> = doc
            .user_access
            .iter()
            .filter(|(e, _, _)| e.starts_with("SipClient"))
            .map(|(e, f, p)| format!("{e} {f}:{p}"))
            .collect();
        return format!("{location}; {}", access.join(", "));
    }
    match doc.next_root_link() {
        Some((token, href)) => format!("{location}; {token} → {href}"),
        None => format!("{location}; no User or Redirect link"),
    }
}

fn join(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Autodiscover hosts, in the client's order.
const AD_HOSTS: [&str; 2] = ["lyncdiscoverinternal", "lyncdiscover"];
/// SRV fallbacks: label, transport, where a client that finds it is.
const SRV_STEPS: [(&str, Transport, Location); 3] = [
    ("_sipinternaltls._tcp", Transport::Tls, Location::Inside),
    ("_sipinternal._tcp", Transport::Tcp, Location::Inside),
    ("_sip._tls", Transport::Tls, Location::Outside),
];
/// A-record fallbacks: label, where a client that finds it is (`None`: decided by whether
/// `lyncdiscoverinternal` resolved).
const ADDRESS_STEPS: [(&str, Option<Location>); 3] = [
    ("sipinternal", Some(Location::Inside)),
    ("sip", None),
    ("sipexternal", Some(Location::Outside)),
];
const CLIENT_INTERNAL_TLS: u16 = 5061;
const CLIENT_EXTERNAL_TLS: u16 = 443;
/// Redirect and User links followed before giving up on a host.
const MAX_HOPS: u8 = 5;

#[cfg(test)]
mod tests;
