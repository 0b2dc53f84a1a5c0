//! The configuration file: one TOML document that names every listener and limit.
//!
//! Every key has a default a non-root user can bind, so a file that names only `[sip] domain`
//! runs. Relative paths are resolved against the folder that holds the config file, so the same
//! file works whatever the working directory of the process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The whole configuration, as read from the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where the embedded store, the generated certificate and other state live.
    #[serde(default = "default_data_dir")]
    pub(crate) data_dir: PathBuf,
    pub(crate) sip: SipConfig,
    /// The deployment as clients see it through DNS and autodiscover; every key is optional
    /// and a missing table is a single box at this server's own addresses.
    #[serde(default)]
    pub(crate) topology: herald_discovery::TopologyConfig,
    #[serde(default)]
    pub(crate) dns: DnsConfig,
    #[serde(default)]
    pub(crate) http: HttpConfig,
    #[serde(default)]
    pub(crate) log: LogConfig,
    /// The mailbox-anchoring front door (Exchange Client Access); off while `listen` is empty.
    #[serde(default)]
    pub(crate) anchor: AnchorConfig,
    /// Presence: publications, subscriptions and contact lists.
    #[serde(default)]
    pub(crate) presence: PresenceConfig,
}

/// The presence service's limits and behaviour. Every key is optional; the defaults are
/// Lync's (see `herald_presence::engine::EngineConfig`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PresenceConfig {
    /// Shortest subscription accepted (seconds); shorter ones get 423.
    pub(crate) min_subscription_expires: u32,
    /// Subscription length when the client names none.
    pub(crate) default_subscription_expires: u32,
    /// Longest subscription granted.
    pub(crate) max_subscription_expires: u32,
    /// Shortest PUBLISH expiry accepted (seconds).
    pub(crate) min_publication_expires: u32,
    /// Longest PUBLISH expiry granted.
    pub(crate) max_publication_expires: u32,
    /// Contacts one user may keep (at most 1000).
    pub(crate) max_contacts: u32,
    /// Presentities one user may watch through persistent subscriptions.
    pub(crate) max_subscriptions_per_user: u32,
    /// Persistent watchers one presentity may have.
    pub(crate) max_watchers_per_presentity: u32,
    /// Notify with BENOTIFY the subscribers that offer `ms-benotify`.
    pub(crate) benotify: bool,
    /// Answer new subscriptions 202 as RFC 3265 did (old SIPp scenarios wait for it).
    pub(crate) legacy_202: bool,
    /// Minutes without input after which an endpoint that reports idleness shows Inactive.
    pub(crate) idle_minutes: u32,
    /// Further minutes until it shows Away.
    pub(crate) away_minutes: u32,
    /// One-time queries and polls (SUBSCRIBE with `Expires: 0`) one user may send in a burst;
    /// beyond it they get 503 with Retry-After, as Lync limits polling clients.
    pub(crate) poll_burst: u32,
    /// Seconds after which a user may send one more query beyond the burst.
    pub(crate) poll_refill_secs: u32,
}

/// `[sip] registration_durability`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RegistrationDurabilityConfig {
    #[default]
    Process,
    Disk,
}

fn default_auth_schemes() -> Vec<String> {
    vec!["digest".to_owned(), "ntlm".to_owned()]
}

impl Default for PresenceConfig {
    fn default() -> Self {
        let e = herald_presence::engine::EngineConfig::default();
        Self {
            min_subscription_expires: e.subscription_expiry.min,
            default_subscription_expires: e.subscription_expiry.default,
            max_subscription_expires: e.subscription_expiry.max,
            min_publication_expires: e.publication_expiry.min,
            max_publication_expires: e.publication_expiry.max,
            max_contacts: e.max_contacts,
            max_subscriptions_per_user: e.max_subscriptions_per_user,
            max_watchers_per_presentity: e.max_watchers_per_presentity,
            benotify: e.benotify,
            legacy_202: e.legacy_202,
            idle_minutes: u32::try_from(e.idle.active_to_idle.as_secs() / 60).unwrap_or(5),
            away_minutes: u32::try_from(e.idle.idle_to_away.as_secs() / 60).unwrap_or(15),
            poll_burst: e.poll_burst,
            poll_refill_secs: u32::try_from(e.poll_refill.as_secs()).unwrap_or(10),
        }
    }
}

/// The SIP service: listeners, the domain it is authoritative for and the registrar's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SipConfig {
    /// The SIP domain users sign in to (`alice@<domain>`); created in the directory at start.
    pub(crate) domain: String,
    /// Further SIP domains served by this server.
    #[serde(default)]
    pub(crate) extra_domains: Vec<String>,
    /// Further names (or IP addresses) that mean this server, so a user written at one of them
    /// (`sip:alice@pbx.example.net`) is a user of `domain`, as with Kamailio's `alias`. The
    /// server's own listen addresses always count (all interface addresses for a wildcard).
    #[serde(default)]
    pub(crate) domain_aliases: Vec<String>,
    #[serde(default = "default_udp")]
    pub(crate) udp: Vec<SocketAddr>,
    #[serde(default = "default_tcp")]
    pub(crate) tcp: Vec<SocketAddr>,
    #[serde(default = "default_tls")]
    pub(crate) tls: Vec<SocketAddr>,
    /// PEM certificate chain for the TLS listener; without it a self-signed certificate is
    /// generated into the data folder at first start.
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key matching `tls_cert`.
    pub(crate) tls_key: Option<PathBuf>,
    /// Host names the generated certificate covers beyond those derived from the domain.
    #[serde(default)]
    pub(crate) names: Vec<String>,
    /// The Digest realm; the SIP domain when absent.
    pub(crate) realm: Option<String>,
    /// Shortest registration interval accepted; shorter ones get 423 with Min-Expires.
    #[serde(default = "default_min_expires")]
    pub(crate) min_expires: u32,
    /// Longest registration interval granted; longer requests are shortened to it.
    #[serde(default = "default_max_expires")]
    pub(crate) max_expires: u32,
    /// Interval granted when the client names none.
    #[serde(default = "default_default_expires")]
    pub(crate) default_expires: u32,
    /// Registrations one user may hold at once (Lync allows 8 endpoints).
    #[serde(default = "default_max_bindings")]
    pub(crate) max_bindings: usize,
    /// Digest algorithms offered in challenges, in order of preference (RFC 8760 §2.4: SHA-256
    /// first). Some clients (SIPp among them) answer only the first challenge and know only
    /// MD5; list `["MD5"]` for them.
    #[serde(default = "default_digest_algorithms")]
    pub(crate) digest_algorithms: Vec<String>,
    /// How long a Digest nonce stays valid before the client is re-challenged with stale=true.
    #[serde(default = "default_nonce_lifetime")]
    pub(crate) nonce_lifetime_secs: u64,
    /// TCP/TLS connections that carry no traffic for this long are closed.
    #[serde(default = "default_idle_timeout")]
    pub(crate) idle_timeout_secs: u64,
    /// Simultaneous TCP/TLS connections accepted from one IP address.
    #[serde(default = "default_max_connections_per_ip")]
    pub(crate) max_connections_per_ip: usize,
    /// Largest SIP message accepted, in bytes; larger ones get 513 or a closed connection.
    #[serde(default = "default_max_message_size")]
    pub(crate) max_message_size: usize,
    /// Server transactions held at once; over it requests get 503. Over UDP a transaction keeps
    /// its final response for 32 s (RFC 3261 Timer J), about 0.7 KiB each: 1,048,576 of them
    /// carry a sustained 30,000 answered requests per second within about 700 MiB. The same
    /// bound applies apart to the client transactions herald starts (NOTIFY): each lingers 5 s
    /// after its answer (Timer K) without its request, so it carries 200,000 NOTIFY/s.
    #[serde(default = "default_max_transactions")]
    pub(crate) max_transactions: usize,
    /// Failed authentications tolerated per user or address before back-off starts.
    #[serde(default = "default_auth_failures")]
    pub(crate) auth_failures_before_backoff: u32,
    /// Networks (CIDR) whose requests are served without authentication, as the user the
    /// request names: trusted peers such as an SBC or a load generator. Empty by default.
    #[serde(default)]
    pub(crate) trusted_networks: Vec<ipnet::IpNet>,
    /// How durable a registration is before its 200 OK: `process` (survives any end of the
    /// process; default) or `disk` (also a power cut, at the cost of a disk sync per batch).
    #[serde(default)]
    pub(crate) registration_durability: RegistrationDurabilityConfig,
    /// Authentication schemes offered: `digest` (RFC 8760, for SIMPLE clients) and `ntlm`
    /// ([MS-SIPAE], for Lync clients such as SIPE). Both by default.
    #[serde(default = "default_auth_schemes")]
    pub(crate) auth_schemes: Vec<String>,
    /// This server's FQDN among the members of its `[[topology.pools]]`, for pool homing;
    /// found from the SIP listen addresses when absent.
    pub(crate) member: Option<String>,
}

/// The authoritative DNS service for the SIP domains (split view by client address).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsConfig {
    /// UDP and TCP listen addresses; port 53 needs root or CAP_NET_BIND_SERVICE.
    #[serde(default = "default_dns_listen")]
    pub(crate) listen: Vec<SocketAddr>,
}

/// HTTP listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpConfig {
    /// Admin API and Prometheus `/metrics`. Keep it on loopback or a management network.
    #[serde(default = "default_admin")]
    pub(crate) admin: SocketAddr,
    /// Web services over plain HTTP: the Lync autodiscover service (lyncdiscover...).
    #[serde(default = "default_web")]
    pub(crate) web: Vec<SocketAddr>,
    /// Web services over HTTPS, with the SIP listener's certificate.
    #[serde(default = "default_web_tls")]
    pub(crate) web_tls: Vec<SocketAddr>,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogConfig {
    /// A tracing filter such as `info` or `herald=debug,info`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_filter")]
    pub(crate) filter: String,
}

/// The mailbox-anchoring front door: the proxy's listeners, Active Manager's health probes and
/// the backend cookies. Every key is optional; without `listen` the service is off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AnchorConfig {
    /// Plain-HTTP listen addresses of the anchoring proxy; empty turns the service off.
    pub(crate) listen: Vec<SocketAddr>,
    /// HTTPS listen addresses, with the SIP listener's certificate.
    pub(crate) listen_tls: Vec<SocketAddr>,
    /// This front door's name in `X-FEServer`; the host name when absent.
    pub(crate) frontend_name: Option<String>,
    /// Time between two health probes of one mailbox server.
    pub(crate) probe_interval_ms: u64,
    /// Consecutive failed probes after which a server is unhealthy and its databases fail over.
    pub(crate) probe_failures: u32,
    /// The health endpoint on every mailbox server; a 2xx answer means healthy.
    pub(crate) probe_path: String,
    /// How long a probe may take before it counts as failed.
    pub(crate) probe_timeout_ms: u64,
    /// Hex secret (at least 32 bytes) signing `X-BackEndCookie`; every front door of one
    /// deployment must share it. Random at each start when absent (cookies then do not survive
    /// a restart, which costs one directory lookup, not an error).
    pub(crate) cookie_secret: Option<String>,
    /// How long an issued backend cookie is honoured.
    pub(crate) cookie_ttl_s: u64,
    /// Time allowed to connect to a mailbox server before it counts as a failure.
    pub(crate) connect_timeout_ms: u64,
    /// How often the directory is checked for changes by admin commands (switchovers, new
    /// servers, mailboxes); a check is one cheap read of SQLite's data version.
    pub(crate) reload_interval_ms: u64,
    /// Largest request body buffered so that the request can be retried after a failover.
    pub(crate) retry_body_limit: usize,
    /// Proxy worker threads for the plain-HTTP listeners, each with its own event loop and
    /// backend connection pool; one per core when absent.
    pub(crate) workers: Option<usize>,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            listen_tls: Vec::new(),
            frontend_name: None,
            probe_interval_ms: 5_000,
            probe_failures: 3,
            probe_path: "/_herald/health".to_owned(),
            probe_timeout_ms: 2_000,
            cookie_secret: None,
            cookie_ttl_s: 30 * 24 * 3600,
            connect_timeout_ms: 2_000,
            reload_interval_ms: 500,
            retry_body_limit: 64 * 1024,
            workers: None,
        }
    }
}

impl AnchorConfig {
    /// Whether `serve` runs the anchoring service.
    pub(crate) fn enabled(&self) -> bool {
        !self.listen.is_empty() || !self.listen_tls.is_empty()
    }

    /// The cookie secret's bytes, when one is configured.
    pub(crate) fn cookie_secret_bytes(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(text) = &self.cookie_secret else {
            return Ok(None);
        };
        let bytes =
            hex::decode(text.trim()).context("[anchor] cookie_secret must be hexadecimal")?;
        if bytes.len() < 32 {
            bail!(
                "[anchor] cookie_secret is {} bytes; it needs at least 32 (64 hex digits)",
                bytes.len()
            );
        }
        Ok(Some(bytes))
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.probe_interval_ms < 10 {
            bail!("[anchor] probe_interval_ms must be at least 10");
        }
        if self.probe_failures == 0 {
            bail!("[anchor] probe_failures must be at least 1");
        }
        if self.probe_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            bail!("[anchor] probe_timeout_ms and connect_timeout_ms must be at least 1");
        }
        if self.workers.is_some_and(|w| !(1..=256).contains(&w)) {
            bail!("[anchor] workers must be between 1 and 256");
        }
        if self.reload_interval_ms < 10 {
            bail!("[anchor] reload_interval_ms must be at least 10");
        }
        if !self.probe_path.starts_with('/') || self.probe_path.len() > 1024 {
            bail!("[anchor] probe_path must be a path starting with '/'");
        }
        if let Some(name) = &self.frontend_name
            && (name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()))
        {
            bail!("[anchor] frontend_name must be printable ASCII without spaces");
        }
        self.cookie_secret_bytes()?;
        Ok(())
    }
}

impl Config {
    /// Reads, resolves and validates the file, so that `serve` fails at start with a message that
    /// names the offending key rather than later at the first request.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: Self = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        if let Some(p) = self.sip.tls_cert.as_mut() {
            resolve(p);
        }
        if let Some(p) = self.sip.tls_key.as_mut() {
            resolve(p);
        }
    }

    fn validate(&mut self) -> anyhow::Result<()> {
        let sip = &mut self.sip;
        sip.domain = normalize_domain(&sip.domain).context("[sip] domain")?;
        for d in &mut sip.extra_domains {
            *d = normalize_domain(d).context("[sip] extra_domains")?;
        }
        for a in &mut sip.domain_aliases {
            *a = match a
                .trim()
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
            {
                Ok(ip) => ip.to_string(),
                Err(_) => normalize_domain(a).context("[sip] domain_aliases")?,
            };
        }
        if sip.min_expires == 0 {
            bail!("[sip] min_expires must be at least 1 second");
        }
        if sip.min_expires > sip.max_expires {
            bail!(
                "[sip] min_expires ({}) is greater than max_expires ({})",
                sip.min_expires,
                sip.max_expires
            );
        }
        if !(sip.min_expires..=sip.max_expires).contains(&sip.default_expires) {
            bail!("[sip] default_expires must lie between min_expires and max_expires");
        }
        if sip.max_bindings == 0 {
            bail!("[sip] max_bindings must be at least 1");
        }
        if sip.tls_cert.is_some() != sip.tls_key.is_some() {
            bail!("[sip] tls_cert and tls_key must be given together");
        }
        if sip.max_transactions == 0 || sip.max_transactions > herald_transaction::MAX_BOUND {
            bail!(
                "[sip] max_transactions must lie between 1 and {}",
                herald_transaction::MAX_BOUND
            );
        }
        if sip.max_message_size < 1024 {
            bail!("[sip] max_message_size must be at least 1024 bytes");
        }
        if sip.digest_algorithms.is_empty() {
            bail!("[sip] digest_algorithms must name at least one algorithm");
        }
        for a in &sip.digest_algorithms {
            if herald_auth::Algorithm::from_token(a).is_none() {
                bail!(
                    "[sip] digest_algorithms: unknown algorithm {a:?} (SHA-256, MD5, SHA-512-256, and their -sess forms)"
                );
            }
        }
        if sip.udp.is_empty() && sip.tcp.is_empty() && sip.tls.is_empty() {
            bail!("[sip] names no listener: set at least one of udp, tcp, tls");
        }
        self.anchor.validate()?;
        if self.presence.poll_burst == 0 || self.presence.poll_refill_secs == 0 {
            bail!("[presence] poll_burst and poll_refill_secs must be at least 1");
        }
        Ok(())
    }

    /// Every domain this server is authoritative for, the primary one first.
    pub(crate) fn domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.sip.domain.as_str())
            .chain(self.sip.extra_domains.iter().map(String::as_str))
    }

    /// The configured Digest algorithms, parsed (validated at load).
    pub(crate) fn digest_algorithms(&self) -> Vec<herald_auth::Algorithm> {
        self.sip
            .digest_algorithms
            .iter()
            .filter_map(|a| herald_auth::Algorithm::from_token(a))
            .collect()
    }

    /// The Digest realm for users of `domain`: the configured realm, else the domain itself.
    pub(crate) fn realm_for<'a>(&'a self, domain: &'a str) -> &'a str {
        self.sip.realm.as_deref().unwrap_or(domain)
    }

    pub(crate) fn directory_path(&self) -> PathBuf {
        self.data_dir.join("directory.db")
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.sip.idle_timeout_secs)
    }
}

/// Lower-cases a DNS name and checks it is a plausible host name, so a typo is caught at start.
pub(crate) fn normalize_domain(name: &str) -> anyhow::Result<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        bail!("{name:?} is not a valid domain name");
    }
    Ok(name)
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            admin: default_admin(),
            web: default_web(),
            web_tls: default_web_tls(),
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            listen: default_dns_listen(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: default_log_filter(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().filter_map(|a| a.parse().ok()).collect()
}
fn default_udp() -> Vec<SocketAddr> {
    addrs(&["0.0.0.0:5060", "[::]:5060"])
}
fn default_tcp() -> Vec<SocketAddr> {
    addrs(&["0.0.0.0:5060", "[::]:5060"])
}
fn default_tls() -> Vec<SocketAddr> {
    addrs(&["0.0.0.0:5061", "[::]:5061"])
}
fn default_dns_listen() -> Vec<SocketAddr> {
    addrs(&["0.0.0.0:8053", "[::]:8053"])
}
fn default_web() -> Vec<SocketAddr> {
    addrs(&["0.0.0.0:8080", "[::]:8080"])
}
fn default_web_tls() -> Vec<SocketAddr> {
    addrs(&["0.0.0.0:8443", "[::]:8443"])
}
fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9060))
}
fn default_log_filter() -> String {
    "info".to_owned()
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_default_expires() -> u32 {
    600
}
fn default_max_bindings() -> usize {
    8
}
fn default_digest_algorithms() -> Vec<String> {
    vec!["SHA-256".to_owned(), "MD5".to_owned()]
}
fn default_nonce_lifetime() -> u64 {
    300
}
fn default_idle_timeout() -> u64 {
    600
}
fn default_max_connections_per_ip() -> usize {
    64
}
fn default_max_message_size() -> usize {
    65_535
}
fn default_max_transactions() -> usize {
    1 << 20
}
fn default_auth_failures() -> u32 {
    5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        let mut c: Config = toml::from_str(text)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn domain_alone_is_enough() {
        let c = parse("[sip]\ndomain = \"Example.TEST.\"\n").unwrap();
        assert_eq!(c.sip.domain, "example.test");
        assert_eq!(c.realm_for("example.test"), "example.test");
        assert_eq!(c.sip.max_bindings, 8);
        assert!(!c.sip.udp.is_empty());
    }

    #[test]
    fn unknown_key_is_refused() {
        let e = parse("[sip]\ndomain = \"a.test\"\nudpp = []\n").unwrap_err();
        assert!(format!("{e:#}").contains("udpp"), "{e:#}");
    }

    #[test]
    fn inverted_expiry_bounds_are_refused() {
        let e =
            parse("[sip]\ndomain = \"a.test\"\nmin_expires = 100\nmax_expires = 50\n").unwrap_err();
        assert!(e.to_string().contains("min_expires"));
    }

    #[test]
    fn polling_limit_is_a_setting_and_never_zero() {
        let c = parse("[sip]\ndomain = \"a.test\"\n[presence]\npoll_burst = 500\n").unwrap();
        assert_eq!(c.presence.poll_burst, 500);
        assert_eq!(c.presence.poll_refill_secs, 10);
        let e =
            parse("[sip]\ndomain = \"a.test\"\n[presence]\npoll_refill_secs = 0\n").unwrap_err();
        assert!(e.to_string().contains("poll_refill_secs"), "{e}");
    }

    #[test]
    fn unknown_digest_algorithm_is_refused() {
        let e = parse("[sip]\ndomain = \"a.test\"\ndigest_algorithms = [\"SHA-1\"]\n").unwrap_err();
        assert!(e.to_string().contains("SHA-1"), "{e}");
    }

    #[test]
    fn domain_aliases_are_normalised_names_or_addresses() {
        let c = parse(
            "[sip]\ndomain = \"a.test\"\ndomain_aliases = [\"PBX.Example.NET.\", \"192.0.2.1\", \"[2001:DB8::1]\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.sip.domain_aliases,
            ["pbx.example.net", "192.0.2.1", "2001:db8::1"]
        );
        assert!(parse("[sip]\ndomain = \"a.test\"\ndomain_aliases = [\"bad name\"]\n").is_err());
    }

    #[test]
    fn bad_domain_is_refused() {
        assert!(parse("[sip]\ndomain = \"bad domain\"\n").is_err());
        assert!(parse("[sip]\ndomain = \"-a.test\"\n").is_err());
    }

    #[test]
    fn anchor_is_off_by_default_and_checked_when_set() {
        let c = parse("[sip]\ndomain = \"a.test\"\n").unwrap();
        assert!(!c.anchor.enabled());
        assert_eq!(c.anchor.probe_interval_ms, 5000);
        assert_eq!(c.anchor.probe_failures, 3);
        let c =
            parse("[sip]\ndomain = \"a.test\"\n[anchor]\nlisten = [\"127.0.0.1:0\"]\n").unwrap();
        assert!(c.anchor.enabled());
        let short = parse("[sip]\ndomain = \"a.test\"\n[anchor]\ncookie_secret = \"abcd\"\n");
        assert!(format!("{:#}", short.unwrap_err()).contains("32"));
        let zero = parse("[sip]\ndomain = \"a.test\"\n[anchor]\nprobe_failures = 0\n");
        assert!(zero.unwrap_err().to_string().contains("probe_failures"));
        assert!(parse("[sip]\ndomain = \"a.test\"\n[anchor]\nlisten_x = []\n").is_err());
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let mut c = parse("data_dir = \"d\"\n[sip]\ndomain = \"a.test\"\n").unwrap();
        c.resolve_paths(Path::new("/etc/herald"));
        assert_eq!(c.data_dir, PathBuf::from("/etc/herald/d"));
    }
}
