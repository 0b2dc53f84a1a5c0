//! `herald serve`'s mailbox-anchoring service (`[anchor]`): Active Manager with its health
//! probes, the anchoring proxy on every `[anchor] listen` address, and the link between both
//! and the directory store.
//!
//! The store is the meeting point with admin commands run by other processes:
//!
//! - At start, the topology and the persisted active-copy map are loaded, and Active Manager
//!   resumes where it was ([`ActiveManager::restore`]).
//! - Every Active Manager event is written to the store's event log, which updates the
//!   active-copy map in the same transaction (a dedicated task, off the probe loop, in order).
//! - A reload task polls the store's `change_token()` every `reload_interval_ms` (one read of
//!   SQLite's data version). When it moved, the topology is reloaded (`herald server|dag|
//!   database|mailbox add|remove` take effect) together with the directory's users for
//!   authentication, and the stored active-copy map is compared with what this process last
//!   wrote or read: a database whose stored copy differs was moved by someone else
//!   (`herald database move` records a switchover there), so the move is carried out here
//!   with [`Monitor::move_database`]. If Active Manager refuses it (the target became
//!   unhealthy, say), the refusal is logged and recorded with the real state, so the store
//!   never claims a placement the proxy does not use. A failover that races an admin's
//!   switchover wins when it is written last; both are in the event log.
//!
//! Proxy workers: each plain-HTTP address is bound once per worker (`[anchor] workers`, one
//! per core by default) with `SO_REUSEPORT`, and each worker is an OS thread with a
//! single-threaded tokio runtime and its own backend connection pool, as nginx runs its
//! workers: a request never hops between threads, which is what a proxy's throughput on few
//! cores depends on. Active Manager, the probes, the reload task and the HTTPS listeners run on
//! `serve`'s main runtime.
//!
//! Authentication: HTTP Basic against the directory's users. The password is checked by
//! recomputing the user's SHA-256 Digest HA1 (`SHA-256("user:realm:password")`, hex, the row
//! `herald user add` stores, realm = `[sip] realm` or the user's domain) against a cache of
//! enabled users' HA1 rows that the reload task refreshes, so checking never touches the
//! store. Other schemes (NTLM, Negotiate) pass through to the backend unjudged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use herald_anchor::active_manager::{
    ActiveCopy, ActiveManager, ActiveManagerConfig, CopySelection, Mount,
};
use herald_anchor::anchor::cookie::CookieKey;
use herald_anchor::model::{DatabaseName, UserId};
use herald_anchor::probe::{Monitor, ProbeConfig, run_probes};
use herald_anchor::proxy::{self, Authenticator, BasicAuthenticator, ProxyConfig, ProxyState};
use herald_anchor::store::{AnchorStore, EventRecord};
use herald_directory::{
    ChangeToken, CredentialAlgorithm, Directory, SqliteDirectory, User, UserQuery,
};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::admin_cli::open_directory;
use crate::config::{AnchorConfig, Config};

/// The running service's listeners, announced on stdout by `serve`.
#[derive(Debug, Default)]
pub(crate) struct AnchorService {
    http: Vec<SocketAddr>,
    https: Vec<SocketAddr>,
}

impl AnchorService {
    /// Prints `listening anchor ADDR` (and `anchor+tls`) for each listener, as `serve` does for
    /// its other listeners, so scripts and tests can bind port 0.
    pub(crate) fn announce(&self) {
        for addr in &self.http {
            println!("listening anchor {addr}");
            tracing::info!(%addr, "mailbox-anchoring proxy ready (HTTP)");
        }
        for addr in &self.https {
            println!("listening anchor+tls {addr}");
            tracing::info!(%addr, "mailbox-anchoring proxy ready (HTTPS)");
        }
    }
}

/// Starts the anchoring service when `[anchor] listen` or `listen_tls` names an address;
/// otherwise does nothing. `tls` is the acceptor the other HTTPS listeners use; without one,
/// `listen_tls` builds it from the SIP certificate.
pub(crate) async fn start(
    config: &Config,
    tls: Option<TlsAcceptor>,
    discovery: &herald_discovery::Topology,
) -> anyhow::Result<AnchorService> {
    let settings = &config.anchor;
    if !settings.enabled() {
        return Ok(AnchorService::default());
    }
    let mut service = AnchorService::default();
    let workers = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let http = bind_http(&settings.listen, workers, &mut service.http)?;
    let mut https = Vec::new();
    for addr in &settings.listen_tls {
        if let Some(l) = crate::transport::bind_tcp_listener(*addr)
            .with_context(|| format!("[anchor] cannot listen on {addr}"))?
        {
            service.https.push(l.local_addr()?);
            https.push(l);
        }
    }
    let tls = match (tls, https.is_empty()) {
        (_, true) => None,
        (Some(t), false) => Some(t),
        (None, false) => Some(TlsAcceptor::from(crate::tls::server_config(
            config, discovery,
        )?)),
    };

    let store = Arc::new(open_directory(config)?);
    let topology = store
        .load_topology()
        .context("cannot load the anchoring directory")?;
    let stored = store
        .load_active_copies()
        .context("cannot load the active-copy map")?;
    let token = store.change_token()?;
    let am = ActiveManager::restore(
        Arc::new(topology),
        ActiveManagerConfig {
            probe_interval: Duration::from_millis(settings.probe_interval_ms),
            probe_failures: settings.probe_failures,
            selection: CopySelection::PreferenceFirst,
        },
        stored.clone(),
        Instant::now(),
    );
    let monitor = Monitor::new(am);
    let persisted = Arc::new(Mutex::new(stored.into_iter().collect()));

    let (events_tx, events_rx) = mpsc::unbounded_channel::<EventRecord>();
    tokio::spawn(persist_events(store.clone(), persisted.clone(), events_rx));
    let probe_events = events_tx.clone();
    tokio::spawn(run_probes(
        monitor.clone(),
        ProbeConfig {
            path: settings.probe_path.clone(),
            timeout: Duration::from_millis(settings.probe_timeout_ms),
        },
        move |event| {
            // The receiver lives as long as the runtime; a send error means it is shutting down.
            let _ = probe_events.send(EventRecord::from_event(&event, SystemTime::now()));
        },
    ));

    let passwords = Arc::new(Passwords::default());
    passwords.reload(config, store.as_ref())?;
    let key = cookie_key(settings)?;
    let checker = passwords.clone();
    let authenticator: Arc<dyn Authenticator> = Arc::new(BasicAuthenticator::new(
        move |user: &UserId, password: &str| checker.verify(user, password),
    ));
    let proxy_config = ProxyConfig {
        frontend_name: frontend_name(settings),
        cookie_ttl: Duration::from_secs(settings.cookie_ttl_s),
        cookie_secure: false,
        connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
        retry_body_limit: settings.retry_body_limit,
        ..ProxyConfig::default()
    };
    for (index, listeners) in http.into_iter().enumerate() {
        let (config, monitor, key) = (proxy_config.clone(), monitor.clone(), key.clone());
        let authenticator = authenticator.clone();
        std::thread::Builder::new()
            .name(format!("anchor-proxy-{index}"))
            .spawn(move || proxy_worker(listeners, config, monitor, key, authenticator))
            .context("starting an anchoring proxy worker")?;
    }
    if let Some(acceptor) = tls {
        let secure = ProxyState::new(
            ProxyConfig {
                cookie_secure: true,
                ..proxy_config
            },
            monitor.clone(),
            key,
            authenticator,
        );
        for listener in https {
            tokio::spawn(serve_https(listener, acceptor.clone(), secure.clone()));
        }
    }

    tokio::spawn(
        Reloader {
            config: config.clone(),
            store,
            monitor,
            persisted,
            passwords,
            events: events_tx,
            token,
            last_error: None,
        }
        .run(),
    );
    Ok(service)
}

/// What this process last wrote to or read from the store's active-copy map; a stored value
/// that differs was written by someone else. Held while writing events and while reloading,
/// so the two never interleave.
type Persisted = Arc<Mutex<HashMap<DatabaseName, ActiveCopy>>>;

/// Writes events to the store in order, batching what queued up during a write.
async fn persist_events(
    store: Arc<SqliteDirectory>,
    persisted: Persisted,
    mut events: mpsc::UnboundedReceiver<EventRecord>,
) {
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = events.try_recv() {
            batch.push(more);
        }
        let store = store.clone();
        let persisted = persisted.clone();
        let written = tokio::task::spawn_blocking(move || {
            let mut map = persisted.lock();
            for event in &batch {
                store.record_event(event)?;
                if let (Some(d), Some(a)) = (&event.database, &event.active) {
                    map.insert(d.clone(), a.clone());
                }
            }
            Ok::<_, herald_anchor::store::StoreError>(())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not persist an Active Manager event"),
            Err(e) => tracing::error!(error = %e, "the event writer failed"),
        }
    }
}

/// The task that follows the store (see the module documentation).
struct Reloader {
    config: Config,
    store: Arc<SqliteDirectory>,
    monitor: Monitor,
    persisted: Persisted,
    passwords: Arc<Passwords>,
    events: mpsc::UnboundedSender<EventRecord>,
    token: ChangeToken,
    last_error: Option<String>,
}

impl Reloader {
    async fn run(mut self) {
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.config.anchor.reload_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload_if_changed().await {
                Ok(()) => self.last_error = None,
                Err(e) => {
                    let text = format!("{e:#}");
                    if self.last_error.as_ref() != Some(&text) {
                        tracing::error!(error = %text, "cannot reload the anchoring directory; keeping the previous one");
                    }
                    self.last_error = Some(text);
                }
            }
        }
    }

    async fn reload_if_changed(&mut self) -> anyhow::Result<()> {
        let store = self.store.clone();
        let token = tokio::task::spawn_blocking(move || store.change_token()).await??;
        if token == self.token {
            return Ok(());
        }
        let store = self.store.clone();
        let persisted = self.persisted.clone();
        let config = self.config.clone();
        let passwords = self.passwords.clone();
        let (topology, moved) = tokio::task::spawn_blocking(move || {
            let mut map = persisted.lock();
            let topology = store.load_topology()?;
            let stored = store.load_active_copies()?;
            let moved: Vec<(DatabaseName, ActiveCopy)> = stored
                .iter()
                .filter(|(d, c)| map.get(d) != Some(c))
                .cloned()
                .collect();
            *map = stored.into_iter().collect();
            drop(map);
            passwords.reload(&config, store.as_ref())?;
            Ok::<_, anyhow::Error>((topology, moved))
        })
        .await??;
        self.token = token;
        tracing::debug!(
            servers = topology.servers().count(),
            databases = topology.databases().count(),
            mailboxes = topology.mailboxes().count(),
            "anchoring directory reloaded"
        );
        self.monitor.update_topology(Arc::new(topology));
        for (database, copy) in moved {
            self.apply_stored_move(&database, &copy);
        }
        Ok(())
    }

    /// Carries out a placement someone else stored (a switchover by `herald database move`).
    fn apply_stored_move(&self, database: &DatabaseName, copy: &ActiveCopy) {
        let current = self.monitor.read(|am| am.mount(database).cloned());
        let refusal = match (copy, &current) {
            (ActiveCopy::Mounted(to), Some(Mount::Mounted { server })) if server == to => return,
            (ActiveCopy::Mounted(to), _) => match self.monitor.move_database(database, to) {
                Ok(()) => {
                    tracing::info!(%database, server = %to, "switchover from the directory carried out");
                    return;
                }
                Err(e) => format!("switchover of {database} to {to} refused: {e}"),
            },
            (ActiveCopy::Dismounted, _) => {
                format!("dismounting {database} on request is not supported")
            }
        };
        let actual = current.map(|m| match m {
            Mount::Mounted { server } => ActiveCopy::Mounted(server),
            Mount::Dismounted { .. } => ActiveCopy::Dismounted,
        });
        let stays = match &actual {
            Some(ActiveCopy::Mounted(s)) => format!("; {database} stays active on {s}"),
            Some(ActiveCopy::Dismounted) => format!("; {database} stays dismounted"),
            None => String::new(),
        };
        tracing::warn!(%database, reason = %refusal, "a stored placement was not applied");
        let _ = self.events.send(EventRecord {
            at: SystemTime::now(),
            database: actual.as_ref().map(|_| database.clone()),
            active: actual,
            message: format!("{refusal}{stays}"),
        });
    }
}

/// Binds each plain-HTTP address once per worker with `SO_REUSEPORT`, so the kernel spreads
/// connections over the workers; returns the listeners grouped by worker. Port 0 is bound
/// first and the others join the port it got. An IPv6 wildcard on a host without IPv6 is
/// skipped, as for the other listeners.
fn bind_http(
    addrs: &[SocketAddr],
    workers: usize,
    bound: &mut Vec<SocketAddr>,
) -> anyhow::Result<Vec<Vec<std::net::TcpListener>>> {
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers).map(|_| Vec::new()).collect();
    for addr in addrs {
        let first = match reuseport_listener(*addr) {
            Ok(l) => l,
            Err(e)
                if addr.is_ipv6()
                    && addr.ip().is_unspecified()
                    && matches!(e.raw_os_error(), Some(97 | 99)) =>
            {
                tracing::warn!(%addr, error = %e, "IPv6 is not available here; [anchor] listens on IPv4 only");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("[anchor] cannot listen on {addr}")),
        };
        let actual = first.local_addr()?;
        bound.push(actual);
        let mut group = vec![first];
        for _ in 1..workers {
            group.push(
                reuseport_listener(actual)
                    .with_context(|| format!("[anchor] cannot listen on {actual} again"))?,
            );
        }
        for (worker, listener) in per_worker.iter_mut().zip(group) {
            worker.push(listener);
        }
    }
    Ok(per_worker)
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// One proxy worker: a single-threaded runtime on its own OS thread with its own backend
/// connection pool, like an nginx worker. A request's server connection, its pooled backend
/// connection and its routing all run on one thread, without cross-thread wake-ups; routing
/// reads the one shared Active Manager.
fn proxy_worker(
    listeners: Vec<std::net::TcpListener>,
    config: ProxyConfig,
    monitor: Monitor,
    key: CookieKey,
    authenticator: Arc<dyn Authenticator>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start an anchoring proxy worker");
            return;
        }
    };
    runtime.block_on(async move {
        let state = ProxyState::new(config, monitor, key, authenticator);
        for listener in listeners {
            match TcpListener::from_std(listener) {
                Ok(l) => {
                    tokio::spawn(serve_http(l, state.clone()));
                }
                Err(e) => tracing::error!(error = %e, "anchoring proxy worker: listener failed"),
            }
        }
        std::future::pending::<()>().await;
    });
}

/// HTTP: like [`proxy::serve`], with Nagle off on accepted connections so a response never
/// waits for the client's ACK of the previous one.
async fn serve_http(listener: TcpListener, state: ProxyState) {
    loop {
        let (stream, peer) = crate::transport::accept(&listener).await;
        // Best effort: a socket that refuses it still works, only with Nagle's delays.
        let _ = stream.set_nodelay(true);
        let service = proxy::service(state.clone()).with_peer(peer);
        tokio::spawn(async move {
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "anchoring proxy: connection ended with an error");
            }
        });
    }
}

/// HTTPS: a TLS accept loop feeding the proxy over HTTP/1.1.
async fn serve_https(listener: TcpListener, acceptor: TlsAcceptor, state: ProxyState) {
    loop {
        let (stream, peer) = crate::transport::accept(&listener).await;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = proxy::service(state.clone()).with_peer(peer);
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let Ok(Ok(tls)) = handshake.await else { return };
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "anchoring proxy: HTTPS connection ended with an error");
            }
        });
    }
}

/// The enabled users' SHA-256 HA1 rows, by logon name: what Basic credentials are checked
/// against without a store round trip.
#[derive(Debug, Default)]
struct Passwords {
    by_user: RwLock<HashMap<UserId, Ha1>>,
}

/// One user's stored `SHA-256(user:realm:password)`.
#[derive(Debug)]
struct Ha1 {
    /// The user part as the account spells it (HA1 covers the spelling).
    username: String,
    realm: String,
    hash: String,
}

impl Passwords {
    /// Re-reads every user (a page at a time) and swaps the cache.
    fn reload(&self, config: &Config, dir: &dyn Directory) -> anyhow::Result<()> {
        let mut fresh = HashMap::new();
        let mut query = UserQuery::first(UserQuery::MAX_PAGE);
        loop {
            let page = dir
                .list_users(&query)
                .context("reading users for authentication")?;
            let Some(last) = page.last() else { break };
            query = query.clone().after(last.aor.clone());
            for user in page.iter().filter(|u| u.enabled) {
                if let Some((id, ha1)) = ha1_row(config, user) {
                    fresh.insert(id, ha1);
                }
            }
        }
        *self.by_user.write() = fresh;
        Ok(())
    }

    /// Whether `password` is `user`'s: recomputes HA1 and compares in constant time.
    fn verify(&self, user: &UserId, password: &str) -> bool {
        let users = self.by_user.read();
        let Some(row) = users.get(user) else {
            return false;
        };
        let computed = hex::encode(Sha256::digest(format!(
            "{}:{}:{password}",
            row.username, row.realm
        )));
        constant_time_eq(computed.as_bytes(), row.hash.as_bytes())
    }
}

/// A user's logon name and SHA-256 HA1 row in the realm their domain uses, if they have one.
fn ha1_row(config: &Config, user: &User) -> Option<(UserId, Ha1)> {
    let domain = user.aor.domain().as_str();
    let realm = config.realm_for(domain);
    let id: UserId = format!("{}@{domain}", user.aor.user_key()).parse().ok()?;
    let credential = user
        .credentials
        .iter()
        .find(|c| c.algorithm() == CredentialAlgorithm::Sha256 && c.realm() == realm)?;
    Some((
        id,
        Ha1 {
            username: user.aor.user().to_owned(),
            realm: realm.to_owned(),
            hash: credential.hash().to_ascii_lowercase(),
        },
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The configured cookie secret, or 32 random bytes (cookies then last until a restart).
fn cookie_key(settings: &AnchorConfig) -> anyhow::Result<CookieKey> {
    let secret = match settings.cookie_secret_bytes()? {
        Some(bytes) => bytes,
        None => {
            tracing::info!(
                "[anchor] cookie_secret is not set: backend cookies are signed with a random key and do not survive a restart"
            );
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    CookieKey::new(&secret).context("[anchor] cookie_secret")
}

/// `[anchor] frontend_name`, else the host name, else `herald`.
fn frontend_name(settings: &AnchorConfig) -> String {
    settings.frontend_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| "herald".to_owned())
    })
}

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn passwords_verify_against_the_stored_sha256_ha1() {
        let config: Config = toml::from_str("[sip]\ndomain = \"contoso.com\"\n").expect("config");
        let aor = herald_directory::Aor::parse("Alice@contoso.com").expect("valid");
        let dir = SqliteDirectory::open_in_memory().expect("store");
        dir.add_domain(aor.domain()).expect("domain");
        let mut new = herald_directory::NewUser::new(aor.clone());
        new.credentials =
            herald_frontend::password_credentials(&aor, "contoso.com", "s3cret").expect("hashes");
        dir.add_user(&new).expect("adds");
        let passwords = Passwords::default();
        passwords.reload(&config, &dir).expect("loads");
        let alice: UserId = "alice@contoso.com".parse().expect("valid");
        assert!(passwords.verify(&alice, "s3cret"));
        assert!(!passwords.verify(&alice, "wrong"));
        dir.set_enabled(&aor, false).expect("disables");
        passwords.reload(&config, &dir).expect("loads");
        assert!(
            !passwords.verify(&alice, "s3cret"),
            "disabled users are refused"
        );
    }
}
