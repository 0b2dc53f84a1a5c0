//! The Lync Autodiscover web service ([MS-OCDISCWS]): which server a user signs in to.
//!
//! [`Autodiscover::respond`] is a pure function from the facts of one HTTP request (method,
//! path, query, `Accept`, `Host`, source address, scheme) to a status, content type and body;
//! [`router`] is the thin axum adapter the binary mounts on `[http] web` and `web_tls`.
//!
//! Resources (paths compare case-insensitively, as IIS does):
//! - `GET /` and `/Autodiscover/AutodiscoverService.svc/root` — the root: `User`, `Domain` and
//!   `Self` links, or a single `Redirect` link when the user's domain is hosted elsewhere or the
//!   user is homed on another pool;
//! - `…/root/user` (and `…/root/oauth/user`) — the user's home pool:
//!   `SipServerInternalAccess`, `SipClientInternalAccess`, `SipServerExternalAccess`,
//!   `SipClientExternalAccess` and the `Internal/Autodiscover` / `External/Autodiscover` links;
//!   for users homed on another pool, or of a domain hosted elsewhere, a `User` with one
//!   `Redirect` link to the root of that pool's (that domain's) service, as [MS-OCDISCWS]
//!   2.2.5.5 defines the token; 404 when the home is unknown;
//! - `…/root/domain` — the same access elements for the domain's default pool.
//!
//! Deviations, on purpose: the user resource is answered without a web ticket (herald issues
//! none; the document only repeats what DNS SRV already publishes), so SIPE and other clients
//! that follow the `User` link get their answer instead of a 401 they cannot satisfy; and the
//! `User`/`Self`/`Domain` links use the scheme and host the request came in on, so a client that
//! reached `lyncdiscoverinternal` over HTTP can follow them without new DNS names or trust.
//! Unknown domains get 404 with an empty body.
//!
//! Formats: XML (`application/vnd.microsoft.rtc.autodiscover+xml;v=1`, what SIPE asks for and
//! the only one it parses) or JSON (`…+json;v=1`, the default), chosen by `Accept`. The JSON
//! carries the same fields as the XML, plus the HAL `_links` object UCWA-style clients read.
//!
//! [MS-OCDISCWS]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-ocdiscws/

mod document;
mod parse;
mod request;
mod router;

use std::net::IpAddr;
use std::sync::Arc;

pub use parse::{ClientView, XmlError, read_xml};
pub use request::{Format, ParamError, SipUri};
pub use router::{Scheme, router};

use crate::name::Fqdn;
use crate::records::View;
use crate::topology::{Pool, Topology};
use document::{Access, Doc, Link};

/// Media type of the XML documents.
pub const XML_TYPE: &str = "application/vnd.microsoft.rtc.autodiscover+xml;v=1";
/// Media type of the JSON documents.
pub const JSON_TYPE: &str = "application/vnd.microsoft.rtc.autodiscover+json;v=1";

/// The autodiscover service of one pool.
#[derive(Clone)]
pub struct Autodiscover {
    topology: Arc<Topology>,
    pool: usize,
    homes: Arc<dyn HomeLookup>,
    http_redirect: bool,
}

/// Where users are homed. The directory knows; the default ([`DomainPool`]) homes every user of
/// a served domain on the first pool.
pub trait HomeLookup: Send + Sync {
    /// The pool (or pool member) FQDN `uri`'s user is homed on. Called on the request path, so
    /// implementations should answer from memory.
    fn home_of(&self, uri: &SipUri) -> Home;
}

/// A user's home as far as autodiscover cares.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Home {
    /// Homed on the pool with this FQDN, or on the pool that has a member with this FQDN.
    Pool(String),
    /// No such user, or no home assigned: the user resource answers 404.
    Unknown,
}

/// Homes every user of a served domain on the topology's first pool.
#[derive(Debug, Clone)]
pub struct DomainPool(pub Fqdn);

/// What one request asks, as plain facts (no HTTP types), so the logic is testable without a
/// server.
#[derive(Debug, Clone, Copy)]
pub struct AdRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The `Accept` header.
    pub accept: Option<&'a str>,
    /// The `Host` header (or the authority of an HTTP/2 request).
    pub host: Option<&'a str>,
    /// The client's address; `None` is treated as outside.
    pub source: Option<IpAddr>,
    /// Whether the request came over HTTPS.
    pub scheme: Scheme,
}

/// The response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// Extra headers (`Allow` on 405).
    pub headers: Vec<(&'static str, String)>,
    /// The document, or empty.
    pub body: String,
}

impl Autodiscover {
    /// The service of this server's pool ([`Topology::local_pool`]: the first pool when the
    /// server was not placed), with every user homed on the first pool until
    /// [`Autodiscover::with_homes`] says otherwise.
    pub fn new(topology: Arc<Topology>) -> Self {
        let first = topology.pools()[0].fqdn.clone();
        let local = topology.local_pool();
        let pool = topology
            .pools()
            .iter()
            .position(|p| p == local)
            .unwrap_or(0);
        Self {
            topology,
            pool,
            homes: Arc::new(DomainPool(first)),
            http_redirect: false,
        }
    }

    /// Serves as the pool `fqdn` (or the pool of member `fqdn`) instead of the first one; users
    /// homed elsewhere are redirected. `None` when no pool has that name.
    pub fn for_pool(mut self, fqdn: &str) -> Option<Self> {
        let pool = self.topology.pool_of(fqdn)?;
        self.pool = self.topology.pools().iter().position(|p| p == pool)?;
        Some(self)
    }

    /// Uses the directory's homing instead of "everyone on the first pool".
    pub fn with_homes(mut self, homes: Arc<dyn HomeLookup>) -> Self {
        self.homes = homes;
        self
    }

    /// [MS-OCDISCWS] 3.1.5.2 behaviour for plain HTTP: the root answers only a `Redirect` to
    /// the same URL over HTTPS. Off by default, because clients that cannot verify herald's
    /// certificate (SIPE with a self-signed one) would then lose autodiscover altogether.
    pub fn with_http_redirect(mut self, on: bool) -> Self {
        self.http_redirect = on;
        self
    }

    /// The topology served.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Answers one request.
    pub fn respond(&self, req: &AdRequest<'_>) -> AdResponse {
        if !req.method.eq_ignore_ascii_case("GET") && !req.method.eq_ignore_ascii_case("HEAD") {
            return AdResponse {
                status: 405,
                content_type: None,
                headers: vec![("Allow", "GET, HEAD".to_owned())],
                body: String::new(),
            };
        }
        let Some(resource) = request::Resource::from_path(req.path) else {
            return empty(404);
        };
        let Ok(params) = request::Params::parse(req.query.unwrap_or("")) else {
            return empty(400);
        };
        let format = Format::negotiate(req.accept);
        let location = match req.source {
            Some(ip) if self.topology.is_internal(ip) => View::Internal,
            _ => View::External,
        };
        let origin = self.origin(req, location);
        let ctx = Ctx { format, origin };

        let Some(domain) = self.domain_of(&params, req.host) else {
            return empty(404);
        };
        if !self.topology.serves_domain(domain.as_str()) {
            // [MS-OCDISCWS] 3.1.5.2: a sipuri this service cannot process gets a Redirect to
            // the next hop that can; only a configured remote domain names one.
            return match self
                .topology
                .remote_domains()
                .iter()
                .find(|r| r.domain == domain)
            {
                Some(remote) => {
                    let href = with_query(&remote.autodiscover, &params.forward_query());
                    ctx.render(match resource {
                        request::Resource::User => Doc::redirect_user(location, href),
                        _ => Doc::redirect_root(location, href),
                    })
                }
                None => empty(404),
            };
        }

        match resource {
            request::Resource::Root => {
                if self.http_redirect && req.scheme == Scheme::Http {
                    let href = format!(
                        "https://{}{}{}",
                        host_without_port(&ctx.origin),
                        ROOT_PATH,
                        params.query_suffix()
                    );
                    return ctx.render(Doc::redirect_root(location, href));
                }
                if let Some(uri) = &params.sipuri
                    && let Some(other) = self.homed_elsewhere(uri)
                {
                    let href = self.pool_root(other, location, req.scheme, &params);
                    return ctx.render(Doc::redirect_root(location, href));
                }
                let links = vec![
                    Link::new(
                        "User",
                        format!("{}{USER_PATH}{}", ctx.origin, params.query_suffix()),
                    ),
                    Link::new(
                        "Domain",
                        format!("{}{DOMAIN_PATH}?originalDomain={}", ctx.origin, domain),
                    ),
                    Link::new(
                        "Self",
                        format!("{}{ROOT_PATH}{}", ctx.origin, params.query_suffix()),
                    ),
                ];
                ctx.render(Doc::root(location, links))
            }
            request::Resource::User => {
                let home = match &params.sipuri {
                    Some(uri) => self.homes.home_of(uri),
                    None => Home::Pool(self.pool().fqdn.to_string()),
                };
                let Home::Pool(name) = home else {
                    return empty(404);
                };
                let Some(pool) = self.topology.pool_of(&name) else {
                    return empty(404);
                };
                if pool != self.pool() {
                    // [MS-OCDISCWS] 2.2.5.5: a Redirect names the Root entry point of the next
                    // hop, here the home pool's service, which answers the user itself.
                    let href = self.pool_root(pool, location, req.scheme, &params);
                    return ctx.render(Doc::redirect_user(location, href));
                }
                let self_href = format!("{}{}{}", ctx.origin, req.path, params.query_suffix());
                ctx.render(Doc::user(
                    location,
                    self.access(pool, &domain),
                    self.web_links(pool),
                    self_href,
                ))
            }
            request::Resource::Domain => {
                let pool = self.pool();
                let self_href = format!("{}{}{}", ctx.origin, DOMAIN_PATH, params.query_suffix());
                ctx.render(Doc::domain(
                    location,
                    self.access(pool, &domain),
                    self.web_links(pool),
                    self_href,
                ))
            }
        }
    }

    fn pool(&self) -> &Pool {
        &self.topology.pools()[self.pool]
    }

    fn homed_elsewhere(&self, uri: &SipUri) -> Option<&Pool> {
        match self.homes.home_of(uri) {
            Home::Pool(name) => self.topology.pool_of(&name).filter(|p| *p != self.pool()),
            Home::Unknown => None,
        }
    }

    /// The SIP domain the request is about: the user's, else `originalDomain`, else the one in
    /// the `Host` name (`lyncdiscover.<domain>`), else the primary domain.
    fn domain_of(&self, params: &request::Params, host: Option<&str>) -> Option<Fqdn> {
        if let Some(uri) = &params.sipuri {
            return Some(uri.domain.clone());
        }
        if let Some(d) = &params.original_domain {
            return Some(d.clone());
        }
        let from_host = host
            .map(host_without_port)
            .and_then(|h| Fqdn::parse(h).ok())
            .and_then(|h| {
                let label = h.first_label();
                (label == "lyncdiscover" || label == "lyncdiscoverinternal")
                    .then(|| h.parent())
                    .flatten()
            });
        Some(from_host.unwrap_or_else(|| self.topology.domains()[0].clone()))
    }

    /// `scheme://host[:port]` of this request, from a well-formed `Host` header, else this
    /// pool's web services name for the client's location.
    fn origin(&self, req: &AdRequest<'_>, location: View) -> String {
        let scheme = req.scheme.as_str();
        match req.host.filter(|h| request::valid_host(h)) {
            Some(host) => format!("{scheme}://{}", host.to_ascii_lowercase()),
            None => web_base(self.pool(), location, req.scheme, &self.topology),
        }
    }

    fn access(&self, pool: &Pool, domain: &Fqdn) -> [Access; 4] {
        let ports = self.topology.ports();
        let edge = self.topology.access_fqdn(domain);
        [
            Access::new(
                "SipServerInternalAccess",
                pool.fqdn.clone(),
                ports.internal_tls,
            ),
            Access::new(
                "SipClientInternalAccess",
                pool.fqdn.clone(),
                ports.internal_tls,
            ),
            Access::new("SipServerExternalAccess", edge.clone(), ports.federation),
            Access::new("SipClientExternalAccess", edge, ports.external_tls),
        ]
    }

    fn web_links(&self, pool: &Pool) -> Vec<Link> {
        let t = &self.topology;
        vec![
            Link::new(
                "Internal/Autodiscover",
                format!(
                    "{}{ROOT_PATH}",
                    web_base(pool, View::Internal, Scheme::Https, t)
                ),
            ),
            Link::new(
                "External/Autodiscover",
                format!(
                    "{}{ROOT_PATH}",
                    web_base(pool, View::External, Scheme::Https, t)
                ),
            ),
        ]
    }

    /// The Root entry point of `pool`'s service for a client at `location`, carrying the
    /// request's `sipuri` / `originalDomain`: where a Redirect sends the client.
    fn pool_root(
        &self,
        pool: &Pool,
        location: View,
        scheme: Scheme,
        params: &request::Params,
    ) -> String {
        format!(
            "{}{ROOT_PATH}{}",
            web_base(pool, location, scheme, &self.topology),
            params.query_suffix()
        )
    }
}

impl HomeLookup for DomainPool {
    fn home_of(&self, _uri: &SipUri) -> Home {
        Home::Pool(self.0.to_string())
    }
}

/// Everything a rendering needs besides the document.
struct Ctx {
    format: Format,
    origin: String,
}

impl Ctx {
    fn render(&self, doc: Doc) -> AdResponse {
        let (content_type, body) = match self.format {
            Format::Xml => (XML_TYPE, doc.to_xml()),
            Format::Json => (JSON_TYPE, doc.to_json()),
        };
        AdResponse {
            status: 200,
            content_type: Some(content_type),
            headers: Vec::new(),
            body,
        }
    }
}

/// `scheme://web-fqdn[:port]` of a pool's web services for clients at `location`.
fn web_base(pool: &Pool, location: View, scheme: Scheme, topology: &Topology) -> String {
    let ports = topology.web_ports();
    let (host, port) = match (location, scheme) {
        (View::Internal, Scheme::Https) => (&pool.web_internal, ports.internal_https),
        (View::Internal, Scheme::Http) => (&pool.web_internal, ports.internal_http),
        (View::External, Scheme::Https) => (&pool.web_external, ports.external_https),
        (View::External, Scheme::Http) => (&pool.web_external, ports.external_http),
    };
    let default = match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    };
    if port == default {
        format!("{}://{host}", scheme.as_str())
    } else {
        format!("{}://{host}:{port}", scheme.as_str())
    }
}

fn host_without_port(origin_or_host: &str) -> &str {
    let host = origin_or_host
        .split_once("://")
        .map_or(origin_or_host, |(_, h)| h);
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.split_once(':').map_or(host, |(h, _)| h)
}

fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&{query}")
    } else {
        format!("{url}?{query}")
    }
}

fn empty(status: u16) -> AdResponse {
    AdResponse {
        status,
        content_type: None,
        headers: Vec::new(),
        body: String::new(),
    }
}

/// The root resource's canonical path, in the casing Lync uses.
pub const ROOT_PATH: &str = "/Autodiscover/AutodiscoverService.svc/root";
const USER_PATH: &str = "/Autodiscover/AutodiscoverService.svc/root/user";
const DOMAIN_PATH: &str = "/Autodiscover/AutodiscoverService.svc/root/domain";

#[cfg(test)]
mod tests;
