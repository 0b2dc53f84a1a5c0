//! `herald serve`: binds every listener, wires the cores to the runtime, runs until a signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use herald_auth::{DigestConfig, ThrottleConfig};
use herald_directory::{Directory, RegistrationStore, SubscriptionStore};
use herald_frontend::{Frontend, FrontendConfig};
use herald_presence::engine::{Engine, EngineConfig, ExpiryBounds};
use herald_registrar::RegistrarConfig;
use herald_sip::Limits;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::admin_cli::{open_directory, seed};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::discovery_runtime::{self, DiscoveryListeners, ListenerFacts};
use crate::presence_runtime;
use crate::registration_writer;
use crate::sip_runtime::SipRuntime;
use crate::subscription_writer;
use crate::tls;
use crate::transport::{BoundAddrs, Listeners, TransportLimits};

pub(crate) async fn serve(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    // A topology that cannot work (a misnamed `[sip] member`, a server in two pools) stops the
    // server before it takes any port; it is built again below from the ports really bound.
    discovery_runtime::topology(&config, &ListenerFacts::configured(&config))?;
    let metrics = admin::install_metrics()?;
    let sqlite = Arc::new(open_directory(&config)?);
    sqlite.set_registration_durability(match config.sip.registration_durability {
        crate::config::RegistrationDurabilityConfig::Process => {
            herald_directory::RegistrationDurability::Process
        }
        crate::config::RegistrationDurabilityConfig::Disk => {
            herald_directory::RegistrationDurability::Disk
        }
    });
    let presence_store = sqlite.presence_store();
    let registration_store: Arc<dyn RegistrationStore> = sqlite.clone();
    let subscription_store: Arc<dyn SubscriptionStore> = sqlite.clone();
    let directory: Arc<dyn Directory> = sqlite;
    let demo_users = seed(&config, directory.as_ref(), args.demo)?;

    let (listeners, bound) =
        Listeners::bind(&config.sip.udp, &config.sip.tcp, &config.sip.tls).await?;
    let (discovery, discovery_addrs) = DiscoveryListeners::bind(&config).await?;
    let admin_listener = admin::bind(config.http.admin).await?;
    let admin_addr = admin_listener.local_addr()?;

    // The topology is built from what was really bound, so DNS and autodiscover hand out the
    // ports clients can reach (and tests can bind port 0).
    let facts = ListenerFacts {
        sip: bound
            .udp
            .iter()
            .chain(&bound.tcp)
            .chain(&bound.tls)
            .copied()
            .collect(),
        sip_tls_port: bound.tls.first().map(|a| a.port()),
        sip_tcp_port: bound.tcp.first().map(|a| a.port()),
        web_http_port: discovery_addrs.web.first().map(|a| a.port()),
        web_https_port: discovery_addrs.web_tls.first().map(|a| a.port()),
    };
    let topology = Arc::new(discovery_runtime::topology(&config, &facts)?);
    let tls_acceptor = if bound.tls.is_empty() && discovery_addrs.web_tls.is_empty() {
        None
    } else {
        Some(TlsAcceptor::from(tls::server_config(&config, &topology)?))
    };

    let limits = sip_limits(&config);
    // One core per worker thread, sharing the Digest secret and epoch (see sip_runtime).
    let (secret, epoch) = (rand::random(), Instant::now());
    let shards = std::thread::available_parallelism().map_or(1, usize::from);
    let homing = homing(&topology, &bound);
    let aliases = domain_aliases(&config, &bound);
    let ntlm = ntlm_config(&config, &advertised_host(&config))?;
    let security = herald_frontend::SecurityAssociations::default();
    let cores = (0..shards)
        .map(|_| {
            let mut c = frontend_config(&config, &limits, shards);
            c.domain_aliases.clone_from(&aliases);
            c.homing.clone_from(&homing);
            c.ntlm.clone_from(&ntlm);
            let mut core = Frontend::new(c, secret, epoch)?;
            core.share_security_associations(security.clone());
            Ok::<_, herald_frontend::ConfigError>(core)
        })
        .collect::<Result<Vec<_>, _>>()
        .context("invalid [sip] settings")?;
    let (now, unix_ms) = (Instant::now(), presence_runtime::wall_clock().unix_millis());
    let cores = cores
        .into_iter()
        .map(|mut core| {
            core.set_wall_clock(now, unix_ms);
            core
        })
        .collect();
    let runtime = SipRuntime::new(cores, limits.clone(), directory.clone());
    let host = advertised_host(&config);
    let engine = Engine::new(
        EngineConfig {
            domain_aliases: aliases,
            ..engine_config(&config, &bound, &host)
        },
        Box::new(presence_store),
        Instant::now(),
        presence_runtime::wall_clock(),
    )
    .context("invalid [presence] settings")?;
    let presence = presence_runtime::start(engine, Arc::downgrade(&runtime))
        .context("starting the presence thread")?;
    runtime.attach_presence(presence.clone());
    // Subscription dialogs are stored (before their 200) by a writer of their own, and the
    // stored ones come back once registrations have (below).
    let member = homing.as_ref().map_or_else(String::new, |h| h.this.clone());
    let subscription_writer = subscription_writer::start(
        subscription_store.clone(),
        member.clone(),
        Arc::downgrade(&runtime),
        presence.clone(),
    )
    .context("starting the subscription writer")?;
    presence.send(presence_runtime::Input::AttachWriter(subscription_writer));
    // Registrations acknowledged before the last stop come back before any traffic is taken.
    let stored = registration_store
        .load_registrations(unix_ms)
        .context("reading the stored registrations")?;
    let restored = runtime.restore(&stored);
    if restored > 0 {
        tracing::info!(users = restored, "restored stored registrations");
    }
    let writer = registration_writer::start(registration_store, Arc::downgrade(&runtime))
        .context("starting the registration writer")?;
    runtime.attach_registrations(writer);
    let transports = listeners.start(
        TransportLimits {
            idle_timeout: config.idle_timeout(),
            max_connections_per_ip: config.sip.max_connections_per_ip,
            sip: limits.clone(),
            host: host.clone(),
        },
        tls_acceptor.clone(),
        runtime.clone(),
    )?;
    runtime.attach(transports);
    // After the registrations (their events are queued ahead of this) and once NOTIFYs can be
    // sent: each restored dialog is told the current state at once.
    let subscriptions = subscription_store
        .load_subscriptions(&member, presence_runtime::wall_clock().unix_millis())
        .context("reading the stored subscriptions")?;
    if !subscriptions.is_empty() {
        presence.send(presence_runtime::Input::Restore(subscriptions));
    }
    runtime.spawn_tasks();
    tokio::spawn(admin::serve(admin_listener, metrics, presence));
    discovery.start(topology.clone(), tls_acceptor.clone(), directory.clone());
    let anchor = crate::anchor_runtime::start(&config, tls_acceptor, &topology).await?;

    // Signal handlers exist before `ready` is printed, so a supervisor that stops the server
    // right after it reports ready still gets a clean shutdown.
    let shutdown = shutdown_signal()?;

    // One line per listener on stdout, stable for scripts and tests that bind port 0.
    for (proto, addrs) in [
        ("udp", &bound.udp),
        ("tcp", &bound.tcp),
        ("tls", &bound.tls),
    ] {
        for addr in addrs {
            println!("listening sip+{proto} {addr}");
            tracing::info!(%addr, "SIP over {} ready", proto.to_uppercase());
        }
    }
    for (what, addrs) in [
        ("dns", &discovery_addrs.dns),
        ("http", &discovery_addrs.web),
        ("https", &discovery_addrs.web_tls),
    ] {
        for addr in addrs {
            println!("listening {what} {addr}");
            tracing::info!(%addr, "{what} ready");
        }
    }
    anchor.announce();
    println!("listening admin {admin_addr}");
    tracing::info!(addr = %admin_addr, "admin listener ready (/metrics, /health)");
    if !demo_users.is_empty() {
        println!(
            "demo users of {} (passwords are new at every start):",
            config.sip.domain
        );
        for (uri, password) in &demo_users {
            println!("  {uri}  password: {password}");
        }
    }
    println!("ready");

    shutdown.await;
    tracing::info!("shutting down");
    Ok(())
}

fn sip_limits(config: &Config) -> Limits {
    Limits {
        max_message: config.sip.max_message_size,
        ..Limits::default()
    }
}

/// One core's configuration; bounds that cover the whole server are divided among `shards`.
fn frontend_config(config: &Config, limits: &Limits, shards: usize) -> FrontendConfig {
    FrontendConfig {
        primary_domain: config.sip.domain.clone(),
        domains: config.domains().map(str::to_owned).collect(),
        realm: config.sip.realm.clone(),
        server_header: format!("herald/{}", env!("CARGO_PKG_VERSION")),
        limits: limits.clone(),
        registrar: RegistrarConfig {
            min_expires: config.sip.min_expires,
            max_expires: config.sip.max_expires,
            default_expires: config.sip.default_expires,
            max_bindings_per_aor: config.sip.max_bindings,
        },
        transactions: herald_transaction::Config {
            max_server_transactions: (config.sip.max_transactions / shards).max(1),
            // The NOTIFYs of presence: over UDP each lingers T4 (5 s) after its answer (without
            // its request bytes), so the bound is the NOTIFY rate × 5 s. The transaction layer's
            // own default (65,536) capped a shard near 13,000 NOTIFY/s.
            max_client_transactions: (config.sip.max_transactions / shards).max(1),
            ..herald_transaction::Config::default()
        },
        digest: DigestConfig {
            algorithms: config.digest_algorithms(),
            nonce_lifetime: Duration::from_secs(config.sip.nonce_lifetime_secs),
            ..DigestConfig::default()
        },
        throttle: ThrottleConfig {
            max_failures: config.sip.auth_failures_before_backoff,
            ..ThrottleConfig::default()
        },
        presence: true,
        trusted_networks: config.sip.trusted_networks.clone(),
        persist_registrations: true,
        homing: None,
        ntlm: None,
        domain_aliases: Vec::new(),
    }
}

/// The hosts that mean this server (`[sip] domain_aliases` and the addresses its SIP listeners
/// are bound to; for a wildcard listener every address of the machine's interfaces, loopback
/// included), so clients that address it by IP reach the primary domain's users.
fn domain_aliases(config: &Config, bound: &BoundAddrs) -> Vec<String> {
    let listeners: Vec<std::net::SocketAddr> = bound
        .udp
        .iter()
        .chain(&bound.tcp)
        .chain(&bound.tls)
        .copied()
        .collect();
    let mut ips: Vec<std::net::IpAddr> = listeners
        .iter()
        .map(std::net::SocketAddr::ip)
        .filter(|ip| !ip.is_unspecified())
        .collect();
    if listeners.iter().any(|a| a.ip().is_unspecified()) {
        let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
        ips.extend(interfaces.iter().map(if_addrs::Interface::ip));
    }
    let mut out = config.sip.domain_aliases.clone();
    for ip in ips {
        let ip = ip.to_string();
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// NTLM for Lync clients when `[sip] auth_schemes` lists it; unknown schemes are refused.
fn ntlm_config(config: &Config, host: &str) -> anyhow::Result<Option<herald_frontend::NtlmConfig>> {
    let mut ntlm = false;
    for scheme in &config.sip.auth_schemes {
        match scheme.to_ascii_lowercase().as_str() {
            "ntlm" => ntlm = true,
            "digest" => {}
            other => anyhow::bail!("[sip] auth_schemes: unknown scheme {other:?} (digest, ntlm)"),
        }
    }
    if !ntlm {
        return Ok(None);
    }
    let netbios = |name: &str| {
        name.split('.')
            .next()
            .unwrap_or(name)
            .chars()
            .take(15)
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let domain = &config.sip.domain;
    let identity = herald_ntlm::ServerIdentity::new(&netbios(domain), &netbios(host), domain, host)
        .map_err(|e| anyhow::anyhow!("NTLM server identity from {host}: {e}"))?;
    Ok(Some(herald_frontend::NtlmConfig {
        realm: herald_frontend::NTLM_REALM.to_owned(),
        targetname: host.to_owned(),
        identity,
    }))
}

/// Homing for this server: on when the topology placed it among the pool members (by
/// `[sip] member` or a listen address) and the pools have several servers between them; users
/// homed on any other server, of this pool or another, are redirected there. `None` otherwise.
fn homing(
    topology: &Arc<herald_discovery::Topology>,
    bound: &BoundAddrs,
) -> Option<herald_frontend::Homing> {
    let member = topology.local_member()?;
    if topology.member_count() < 2 {
        return None;
    }
    tracing::info!(
        member = %member.fqdn.as_str(),
        pool = %topology.local_pool().fqdn.as_str(),
        "homing users on {} servers in {} pools",
        topology.member_count(),
        topology.pools().len()
    );
    Some(herald_frontend::Homing {
        topology: topology.clone(),
        this: member.fqdn.as_str().to_owned(),
        ports: herald_frontend::MemberPorts {
            tls: bound.tls.first().map(|a| a.port()),
            tcp: bound.tcp.first().map(|a| a.port()),
            udp: bound.udp.first().map(|a| a.port()),
        },
    })
}

/// The name this server goes by where an address is not enough: in the Via of its own
/// requests when a listener is bound to a wildcard, and in its Contact.
fn advertised_host(config: &Config) -> String {
    config
        .topology
        .server_fqdn
        .clone()
        .unwrap_or_else(|| format!("sip.{}", config.sip.domain))
}

/// The presence engine's settings from `[presence]` and the listeners really bound.
fn engine_config(config: &Config, bound: &BoundAddrs, host: &str) -> EngineConfig {
    let p = &config.presence;
    let defaults = EngineConfig::default();
    // The Contact of our dialogs: where in-dialog requests (re-SUBSCRIBE) may be sent. UDP is
    // what SIMPLE clients use; Lync clients keep their one TLS connection whatever it says.
    let contact = [
        ("udp", &bound.udp),
        ("tcp", &bound.tcp),
        ("tls", &bound.tls),
    ]
    .into_iter()
    .find_map(|(proto, addrs)| addrs.first().map(|a| (proto, *a)))
    .map_or_else(
        || format!("<sip:{host};transport=tls>"),
        |(proto, addr)| {
            let at = if addr.ip().is_unspecified() {
                format!("{host}:{}", addr.port())
            } else {
                addr.to_string()
            };
            format!("<sip:{at};transport={proto}>")
        },
    );
    EngineConfig {
        subscription_expiry: ExpiryBounds {
            min: p.min_subscription_expires,
            default: p.default_subscription_expires,
            max: p.max_subscription_expires,
        },
        publication_expiry: ExpiryBounds {
            min: p.min_publication_expires,
            default: defaults.publication_expiry.default.clamp(
                p.min_publication_expires,
                p.max_publication_expires.max(p.min_publication_expires),
            ),
            max: p.max_publication_expires,
        },
        idle: herald_presence::aggregate::IdlePolicy {
            active_to_idle: Duration::from_secs(u64::from(p.idle_minutes) * 60),
            idle_to_away: Duration::from_secs(u64::from(p.away_minutes) * 60),
        },
        max_contacts: p.max_contacts,
        max_subscriptions_per_user: p.max_subscriptions_per_user,
        max_watchers_per_presentity: p.max_watchers_per_presentity,
        benotify: p.benotify,
        legacy_202: p.legacy_202,
        poll_burst: p.poll_burst,
        poll_refill: Duration::from_secs(u64::from(p.poll_refill_secs)),
        persist_subscriptions: true,
        local_domains: config.domains().map(str::to_owned).collect(),
        contact,
        seed: rand::random(),
        ..defaults
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the returned future completes on either.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
