//! How clients find this server: the topology built from the config and the bound listeners,
//! the authoritative DNS listeners, and the autodiscover web listeners (HTTP and HTTPS).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use herald_directory::{Aor, Directory};
use herald_discovery::autodiscover::{Autodiscover, Home, HomeLookup, Scheme, SipUri, router};
use herald_discovery::{LocalServer, Topology, ZoneSet, serve_dns};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::user_cache::UserCache;

/// The ports and addresses this server's listeners have, as the topology needs them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListenerFacts {
    pub(crate) sip: Vec<SocketAddr>,
    pub(crate) sip_tls_port: Option<u16>,
    pub(crate) sip_tcp_port: Option<u16>,
    pub(crate) web_http_port: Option<u16>,
    pub(crate) web_https_port: Option<u16>,
}

impl ListenerFacts {
    /// The facts as configured, for commands that build the topology without binding
    /// (`herald dns records`, `herald cert request`).
    pub(crate) fn configured(config: &Config) -> Self {
        Self {
            sip: [&config.sip.udp, &config.sip.tcp, &config.sip.tls]
                .into_iter()
                .flatten()
                .copied()
                .collect(),
            // Port 0 (a test's "any port") names no port a client could dial.
            sip_tls_port: dialable_port(&config.sip.tls),
            sip_tcp_port: dialable_port(&config.sip.tcp),
            web_http_port: dialable_port(&config.http.web),
            web_https_port: dialable_port(&config.http.web_tls),
        }
    }
}

fn dialable_port(listeners: &[SocketAddr]) -> Option<u16> {
    listeners.first().map(SocketAddr::port).filter(|&p| p != 0)
}

/// The deployment clients are told about. A config without `[topology]` is a single box at
/// this server's own addresses: the SIP listeners' addresses, or for wildcard listeners the
/// host's interface addresses. The server is placed among the pool members by `[sip] member`
/// or by those addresses, so a misnamed member stops every command, not only `serve`.
pub(crate) fn topology(config: &Config, facts: &ListenerFacts) -> anyhow::Result<Topology> {
    let addresses = own_addresses(&facts.sip);
    let local = LocalServer {
        domains: config.domains().map(str::to_owned).collect(),
        addresses: addresses.clone(),
        sip_tls_port: facts.sip_tls_port,
        sip_tcp_port: facts.sip_tcp_port,
        web_http_port: facts.web_http_port,
        web_https_port: facts.web_https_port,
    };
    Topology::from_config(&config.topology, &local)
        .and_then(|t| t.locate(config.sip.member.as_deref(), &addresses))
        .context("invalid [topology]")
}

/// The addresses other machines reach this server at.
fn own_addresses(listeners: &[SocketAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut wildcard = false;
    for addr in listeners {
        if addr.ip().is_unspecified() {
            wildcard = true;
        } else if !out.contains(&addr.ip()) {
            out.push(addr.ip());
        }
    }
    if wildcard {
        let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
        let usable = |ip: &IpAddr| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
            IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
        };
        for ip in interfaces
            .iter()
            .map(if_addrs::Interface::ip)
            .filter(usable)
        {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    if out.is_empty() {
        // A machine with only loopback still answers its own clients.
        out.push(IpAddr::from([127, 0, 0, 1]));
    }
    out
}

/// DNS and web listeners bound but not yet serving.
pub(crate) struct DiscoveryListeners {
    dns_udp: Vec<UdpSocket>,
    dns_tcp: Vec<TcpListener>,
    web: Vec<TcpListener>,
    web_tls: Vec<TcpListener>,
}

/// What the discovery listeners bound, for the log.
#[derive(Debug, Default)]
pub(crate) struct DiscoveryAddrs {
    pub(crate) dns: Vec<SocketAddr>,
    pub(crate) web: Vec<SocketAddr>,
    pub(crate) web_tls: Vec<SocketAddr>,
}

impl DiscoveryListeners {
    /// Binds `[dns] listen` (UDP and TCP on the same port) and `[http] web` / `web_tls`.
    pub(crate) async fn bind(config: &Config) -> anyhow::Result<(Self, DiscoveryAddrs)> {
        let mut me = Self {
            dns_udp: Vec::new(),
            dns_tcp: Vec::new(),
            web: Vec::new(),
            web_tls: Vec::new(),
        };
        let mut addrs = DiscoveryAddrs::default();
        for addr in &config.dns.listen {
            let Some((udp, tcp)) = bind_dns(*addr)? else {
                continue;
            };
            addrs.dns.push(udp.local_addr()?);
            me.dns_udp.push(udp);
            me.dns_tcp.push(tcp);
        }
        for (list, out, bound) in [
            (&config.http.web, &mut me.web, &mut addrs.web),
            (&config.http.web_tls, &mut me.web_tls, &mut addrs.web_tls),
        ] {
            for addr in list {
                if let Some(l) = crate::transport::bind_tcp_listener(*addr)? {
                    bound.push(l.local_addr()?);
                    out.push(l);
                }
            }
        }
        Ok((me, addrs))
    }

    /// Starts serving DNS from `topology` and autodiscover on the web listeners, as this
    /// server's pool, with users' homes read from `directory`.
    pub(crate) fn start(
        self,
        topology: Arc<Topology>,
        tls: Option<TlsAcceptor>,
        directory: Arc<dyn Directory>,
    ) {
        let zones = Arc::new(ZoneSet::new(&topology));
        if !self.dns_udp.is_empty() {
            tokio::spawn(serve_dns(zones, self.dns_udp, self.dns_tcp));
        }
        let service = Autodiscover::new(topology.clone());
        let service = if self.web.is_empty() && self.web_tls.is_empty() {
            service
        } else {
            service.with_homes(DirectoryHomes::start(topology, directory))
        };
        let service = Arc::new(service);
        for listener in self.web {
            let app = router(service.clone(), Scheme::Http)
                .into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "web listener failed");
                }
            });
        }
        match tls {
            Some(acceptor) => {
                for listener in self.web_tls {
                    let app = router(service.clone(), Scheme::Https);
                    tokio::spawn(serve_https(listener, acceptor.clone(), app));
                }
            }
            None if !self.web_tls.is_empty() => {
                tracing::warn!("[http] web_tls has listeners but no certificate; not serving them");
            }
            None => {}
        }
    }
}

/// UDP and TCP on one port. For port 0 the kernel picks the UDP port, and TCP may find it taken
/// by an unrelated socket: then another port is tried.
fn bind_dns(addr: SocketAddr) -> anyhow::Result<Option<(UdpSocket, TcpListener)>> {
    const ATTEMPTS: usize = 8;
    for attempt in 1..=ATTEMPTS {
        let Some(udp) = crate::transport::bind_udp_socket(addr)? else {
            return Ok(None);
        };
        let bound = udp.local_addr()?;
        match crate::transport::bind_tcp_listener(bound) {
            Ok(Some(tcp)) => return Ok(Some((udp, tcp))),
            Ok(None) => return Ok(None),
            Err(_) if addr.port() == 0 && attempt < ATTEMPTS => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {bound} (TCP)")),
        }
    }
    anyhow::bail!("cannot find a free port for DNS on {addr}")
}

/// HTTPS: a TLS accept loop feeding hyper, with the client's address put where the
/// autodiscover router reads it (it decides the internal or external answer).
async fn serve_https(listener: TcpListener, acceptor: TlsAcceptor, app: axum::Router) {
    loop {
        let (stream, peer) = crate::transport::accept(&listener).await;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(tls)) = handshake.await else { return };
            let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    app.oneshot(request.map(axum::body::Body::new)).await
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Autodiscover's view of where users are homed: the home the directory stores, resolved by
/// the same rule the registrar's 301 uses ([`Topology::home_of`]), so the Redirect and the 301
/// always name the same pool.
///
/// Records come from a [`UserCache`] kept in step with the store (another process's
/// `user move` is seen within its check interval); a miss reads the store on this worker
/// thread, which is a single indexed SQLite read. A name the directory does not have, or a
/// disabled user, is homed by the hash like a user without a stored home: the unauthenticated
/// service must not tell which sign-in names exist.
struct DirectoryHomes {
    topology: Arc<Topology>,
    directory: Arc<dyn Directory>,
    cache: Arc<UserCache>,
}

impl DirectoryHomes {
    /// The lookup, with its cache's watch task started.
    fn start(topology: Arc<Topology>, directory: Arc<dyn Directory>) -> Arc<Self> {
        let cache = UserCache::new();
        tokio::spawn(cache.clone().watch(directory.clone()));
        Arc::new(Self {
            topology,
            directory,
            cache,
        })
    }

    /// The home the directory stores for `aor`, if the user exists, is enabled and has one.
    fn stored_home(&self, aor: &Aor) -> Option<String> {
        let user = match self.cache.get(aor) {
            Some(cached) => cached,
            None => {
                let token = self.cache.token();
                let read = || self.directory.get_user(aor);
                let on_worker = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                    h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                });
                let found = if on_worker {
                    tokio::task::block_in_place(read)
                } else {
                    read()
                };
                match found {
                    Ok(user) => {
                        self.cache.put(aor.clone(), user.clone(), token);
                        user
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, user = %aor, "autodiscover: cannot read the user's home");
                        None
                    }
                }
            }
        };
        user.filter(|u| u.enabled).and_then(|u| u.home)
    }
}

impl HomeLookup for DirectoryHomes {
    fn home_of(&self, uri: &SipUri) -> Home {
        let text = uri.to_string();
        let stored = Aor::parse(&text)
            .ok()
            .and_then(|aor| self.stored_home(&aor));
        let (_, member) = self.topology.home_of(&text, stored.as_deref());
        Home::Pool(member.fqdn.to_string())
    }
}
