//! Front End pools of `herald serve` processes (issue 4 point 6): `[[topology.pools]]` whose
//! members are processes on different loopback addresses, each listening with the SAME ports
//! as the others (as the servers of a Lync deployment do), all on ONE data folder, so they
//! share the directory and its users' homes.
//!
//! [`PoolSetup::new`] is one pool of two members; [`PoolSetup::two_pools`] is two pools of one
//! member each, the second with its own external web services name. The first member finds
//! itself from its listen addresses; the others are named by `[sip] member`, so both ways are
//! exercised. Every member also serves DNS and autodiscover (HTTP and HTTPS).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_sip::Response;

use super::ports::{free_ports, lost_a_port, start_when_free, try_start};
use super::server::{CliRun, Home, Server, Setup};
use super::sip::headers;
use super::{Account, SipClient, Ua, show};

/// How long a start may keep losing a port to other processes before the test gives up.
use super::ports::PORT_PATIENCE;
/// How long a running member may take to see a directory change (it polls every 250 ms).
pub(crate) const DIRECTORY_PATIENCE: Duration = Duration::from_secs(15);

/// One member of a pool.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) fqdn: String,
    pub(crate) ip: IpAddr,
    /// The FQDN of its pool.
    pub(crate) pool: String,
}

/// One `[[topology.pools]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct PoolSpec {
    pub(crate) fqdn: String,
    /// `web_external`; the first pool's default (`lyncweb.<domain>`) when `None`.
    pub(crate) web_external: Option<String>,
}

/// The ports every member listens on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolPorts {
    /// SIP over UDP and over TCP (one number, as 5060 is for both).
    pub(crate) sip: u16,
    pub(crate) tls: u16,
    /// DNS over UDP and TCP.
    pub(crate) dns: u16,
    pub(crate) admin: u16,
    /// Autodiscover over HTTP (`[http] web`).
    pub(crate) http: u16,
    /// Autodiscover over HTTPS (`[http] web_tls`).
    pub(crate) https: u16,
}

/// What the members' config files say.
#[derive(Debug, Clone)]
pub(crate) struct PoolSetup {
    pub(crate) domain: String,
    pub(crate) pools: Vec<PoolSpec>,
    /// Every member of every pool, each run as a process, in pool order.
    pub(crate) members: Vec<Member>,
    /// Extra `[sip]` keys for every member, values written as TOML.
    sip: Vec<(String, String)>,
    /// Extra `[topology]` keys for every member, values written as TOML.
    topology: Vec<(String, String)>,
    users: Vec<(String, String)>,
}

/// The pool's config files and shared data folder, with its users created; no process yet.
#[derive(Debug)]
pub(crate) struct PoolHomes {
    pub(crate) setup: PoolSetup,
    /// One home per member; the first one's data folder is every member's `data_dir`.
    pub(crate) homes: Vec<Arc<Home>>,
    pub(crate) ports: PoolPorts,
}

/// The running pool: one `herald serve` per member, in the order of [`PoolSetup::members`].
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) homes: PoolHomes,
    pub(crate) servers: Vec<Server>,
}

impl PoolSetup {
    /// `pool.<domain>` with `fe01.<domain>` on 127.0.0.1 and `fe02.<domain>` on 127.0.0.2.
    pub(crate) fn new(domain: &str) -> Self {
        let pool = format!("pool.{domain}");
        let member = |name: &str, last: u8| Member {
            fqdn: format!("{name}.{domain}"),
            ip: IpAddr::from([127, 0, 0, last]),
            pool: pool.clone(),
        };
        Self {
            domain: domain.to_owned(),
            members: vec![member("fe01", 1), member("fe02", 2)],
            pools: vec![PoolSpec {
                fqdn: pool,
                web_external: None,
            }],
            sip: Vec::new(),
            topology: Vec::new(),
            users: Vec::new(),
        }
    }

    /// Two pools of one server each: `pool01.<domain>` with `fe01.<domain>` on 127.0.0.1, and
    /// `pool02.<domain>` (external web services `lyncweb02.<domain>`) with `fe21.<domain>` on
    /// 127.0.0.2.
    pub(crate) fn two_pools(domain: &str) -> Self {
        let (first, second) = (format!("pool01.{domain}"), format!("pool02.{domain}"));
        Self {
            domain: domain.to_owned(),
            members: vec![
                Member {
                    fqdn: format!("fe01.{domain}"),
                    ip: IpAddr::from([127, 0, 0, 1]),
                    pool: first.clone(),
                },
                Member {
                    fqdn: format!("fe21.{domain}"),
                    ip: IpAddr::from([127, 0, 0, 2]),
                    pool: second.clone(),
                },
            ],
            pools: vec![
                PoolSpec {
                    fqdn: first,
                    web_external: None,
                },
                PoolSpec {
                    fqdn: second,
                    web_external: Some(format!("lyncweb02.{domain}")),
                },
            ],
            sip: Vec::new(),
            topology: Vec::new(),
            users: Vec::new(),
        }
    }

    /// One `[sip]` key for every member, the value written as TOML.
    pub(crate) fn sip(mut self, key: &str, toml_value: &str) -> Self {
        self.sip.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// One `[topology]` key for every member, the value written as TOML.
    pub(crate) fn topology(mut self, key: &str, toml_value: &str) -> Self {
        self.topology.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// A user of the domain (`name` without `@`), added with `herald user add` once the pool
    /// is configured, so it gets a stored home.
    pub(crate) fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Writes every member's config and creates the domain and users in the shared store.
    pub(crate) fn homes(&self) -> PoolHomes {
        // Each member gets a temporary folder for its config and log; only the first one's
        // data folder is used.
        let homes: Vec<Arc<Home>> = self
            .members
            .iter()
            .map(|_| Setup::new(&self.domain).home())
            .collect();
        let ips: Vec<IpAddr> = self.members.iter().map(|m| m.ip).collect();
        let homes = PoolHomes {
            setup: self.clone(),
            homes,
            ports: pick_ports(&ips),
        };
        homes.write_configs();
        for (name, password) in &self.users {
            homes
                .cli_stdin(
                    &[
                        "user",
                        "add",
                        &format!("sip:{name}@{}", self.domain),
                        "--password-stdin",
                    ],
                    &format!("{password}\n"),
                )
                .success();
        }
        homes
    }

    /// Prepares the homes and starts every member.
    pub(crate) fn start(&self) -> Pool {
        self.homes().start()
    }

    fn config_text(&self, index: usize, data_dir: &Path, ports: PoolPorts) -> String {
        let me = &self.members[index];
        let at = |port: u16| format!("[\"{}\"]", SocketAddr::new(me.ip, port));
        let mut t = String::new();
        t.push_str(&format!(
            "data_dir = {:?}\n\n[sip]\n",
            data_dir.display().to_string()
        ));
        t.push_str(&format!("domain = {:?}\n", self.domain));
        t.push_str(&format!("udp = {}\n", at(ports.sip)));
        t.push_str(&format!("tcp = {}\n", at(ports.sip)));
        t.push_str(&format!("tls = {}\n", at(ports.tls)));
        if index > 0 {
            // The first member finds itself by address; the others are named.
            t.push_str(&format!("member = {:?}\n", me.fqdn));
        }
        for (k, v) in &self.sip {
            t.push_str(&format!("{k} = {v}\n"));
        }
        t.push_str(&format!("\n[dns]\nlisten = {}\n", at(ports.dns)));
        t.push_str(&format!(
            "\n[http]\nadmin = \"{}\"\nweb = {}\nweb_tls = {}\n",
            SocketAddr::new(me.ip, ports.admin),
            at(ports.http),
            at(ports.https)
        ));
        t.push_str("\n[log]\nfilter = \"debug\"\n\n[topology]\n");
        for (k, v) in &self.topology {
            t.push_str(&format!("{k} = {v}\n"));
        }
        for pool in &self.pools {
            t.push_str(&format!("\n[[topology.pools]]\nfqdn = {:?}\n", pool.fqdn));
            if let Some(web) = &pool.web_external {
                t.push_str(&format!("web_external = {web:?}\n"));
            }
            t.push_str("members = [\n");
            for m in self.members.iter().filter(|m| m.pool == pool.fqdn) {
                t.push_str(&format!(
                    "  {{ fqdn = {:?}, addresses = [\"{}\"] }},\n",
                    m.fqdn, m.ip
                ));
            }
            t.push_str("]\n");
        }
        t
    }
}

fn pick_ports(ips: &[IpAddr]) -> PoolPorts {
    let p = free_ports(ips, 6);
    PoolPorts {
        sip: p[0],
        tls: p[1],
        dns: p[2],
        admin: p[3],
        http: p[4],
        https: p[5],
    }
}

impl PoolHomes {
    /// The shared data folder.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.homes[0].data_dir()
    }

    /// The certificate the first member generated (the others find it in the shared folder).
    pub(crate) fn cert_pem(&self) -> PathBuf {
        self.homes[0].cert_pem()
    }

    /// `herald --config <first member's config> ARGS` (every member's config names the same
    /// store and topology).
    pub(crate) fn cli(&self, args: &[&str]) -> CliRun {
        self.homes[0].cli(args)
    }

    /// The config file of member `index`.
    pub(crate) fn config(&self, index: usize) -> PathBuf {
        self.homes[index].config.clone()
    }

    pub(crate) fn cli_stdin(&self, args: &[&str], input: &str) -> CliRun {
        self.homes[0].cli_stdin(args, input)
    }

    /// The member FQDN `herald user show` prints as the user's `home:`.
    #[track_caller]
    pub(crate) fn home_of(&self, user: &str) -> String {
        self.shown(user, "home:")
    }

    /// The pool FQDN `herald user show` prints as the user's `pool:`.
    #[track_caller]
    pub(crate) fn pool_of(&self, user: &str) -> String {
        self.shown(user, "pool:")
    }

    #[track_caller]
    fn shown(&self, user: &str, key: &str) -> String {
        let uri = format!("sip:{user}@{}", self.setup.domain);
        let out = self.cli(&["user", "show", &uri]).success().stdout;
        let line = out
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` line in `herald user show {uri}`:\n{out}"));
        line.trim().to_owned()
    }

    /// The index of the member named `fqdn`.
    #[track_caller]
    pub(crate) fn index_of(&self, fqdn: &str) -> usize {
        self.setup
            .members
            .iter()
            .position(|m| m.fqdn == fqdn)
            .unwrap_or_else(|| panic!("{fqdn} is not a member of the pool"))
    }

    fn write_configs(&self) {
        let data_dir = self.data_dir();
        for (i, home) in self.homes.iter().enumerate() {
            std::fs::write(
                &home.config,
                self.setup.config_text(i, &data_dir, self.ports),
            )
            .expect("writing a member's herald.toml");
        }
    }

    /// Starts every member, one after the other (the first generates the shared TLS
    /// certificate). When a port was taken meanwhile by another process, everything is
    /// started again on new ports.
    pub(crate) fn start(mut self) -> Pool {
        let deadline = Instant::now() + PORT_PATIENCE;
        loop {
            let mut servers = Vec::new();
            let mut lost = None;
            for home in &self.homes {
                match try_start(home) {
                    Ok(s) => servers.push(s),
                    Err(e) => {
                        lost = Some(e);
                        break;
                    }
                }
            }
            match lost {
                None => {
                    return Pool {
                        homes: self,
                        servers,
                    };
                }
                Some(e) if lost_a_port(&e) && Instant::now() < deadline => {
                    drop(servers);
                    let ips: Vec<IpAddr> = self.setup.members.iter().map(|m| m.ip).collect();
                    self.ports = pick_ports(&ips);
                    self.write_configs();
                }
                Some(e) => panic!("{e}"),
            }
        }
    }
}

impl Pool {
    pub(crate) fn ports(&self) -> PoolPorts {
        self.homes.ports
    }

    /// The member named `fqdn`.
    #[track_caller]
    pub(crate) fn member(&self, fqdn: &str) -> (&Member, &Server) {
        let i = self.homes.index_of(fqdn);
        (&self.homes.setup.members[i], &self.servers[i])
    }

    /// The member that is not `fqdn` (the pool has two).
    #[track_caller]
    pub(crate) fn other_than(&self, fqdn: &str) -> (&Member, &Server) {
        let i = self.homes.index_of(fqdn);
        let j = (0..self.servers.len())
            .find(|j| *j != i)
            .expect("a second member");
        (&self.homes.setup.members[j], &self.servers[j])
    }

    /// Stops member `index` (SIGKILL) and starts it again on the same config, store and ports.
    pub(crate) fn restart(&mut self, index: usize) {
        let home = self.servers.remove(index).stop();
        let server = start_when_free(&home, PORT_PATIENCE);
        self.servers.insert(index, server);
    }

    /// A SIP client of `transport` connected to `server` (TLS trusting the shared certificate).
    pub(crate) fn client(&self, server: &Server, transport: &str) -> SipClient {
        match transport {
            "udp" => SipClient::udp(server.udp()),
            "tcp" => SipClient::tcp(server.tcp()),
            "tls" => SipClient::tls(server.tls(), &self.homes.cert_pem(), "localhost"),
            other => panic!("unknown transport {other}"),
        }
    }

    /// The Contact a 301 to `member` carries for `transport`: its address and the SIP port
    /// of that transport, which is the same on every member.
    pub(crate) fn home_contact(&self, member: &Member, transport: &str) -> String {
        let port = match transport {
            "tls" => self.ports().tls,
            _ => self.ports().sip,
        };
        format!("<sip:{}:{port};transport={transport}>", member.ip)
    }

    /// Asserts a `301 Redirect request to Home Server` whose only Contact is `contact`.
    #[track_caller]
    pub(crate) fn assert_redirect(&self, r: &Response, contact: &str) {
        assert_eq!(
            r.status(),
            301,
            "expected a redirect:\n{}\n{}",
            show(r),
            self.logs()
        );
        let text = show(r);
        assert!(
            text.starts_with("SIP/2.0 301 Redirect request to Home Server\r\n"),
            "{text}"
        );
        assert_eq!(headers(r, "Contact"), [contact], "{text}");
    }

    /// Registers as `account` at `server` over `transport` and asserts the answer: a 301 to
    /// `home` on that transport, after the Digest challenge (authentication comes first).
    #[track_caller]
    pub(crate) fn assert_sent_home(
        &self,
        server: &Server,
        transport: &str,
        account: &Account,
        home: &Member,
    ) {
        let user = account.user.clone();
        let mut ua = Ua::new(self.client(server, transport), account.clone());
        let contact = ua.client.contact(&user);
        let r = ua.register(&[&contact], Some(300));
        assert!(
            ua.last_challenge.is_some(),
            "the redirect must come after authentication"
        );
        self.assert_redirect(&r, &self.home_contact(home, transport));
    }

    /// Sends an authenticated REGISTER as `account` from a fresh UDP client to `server` until
    /// it is answered `status` (a running member sees `user move` within about 250 ms);
    /// returns that answer.
    #[track_caller]
    pub(crate) fn register_until(
        &self,
        server: &Server,
        account: &Account,
        status: u16,
    ) -> Response {
        let deadline = Instant::now() + DIRECTORY_PATIENCE;
        loop {
            let user = account.user.clone();
            let mut ua = Ua::new(SipClient::udp(server.udp()), account.clone());
            let contact = ua.client.contact(&user);
            let r = ua.register(&[&contact], Some(300));
            if r.status() == status {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "still {} after {DIRECTORY_PATIENCE:?}, expected {status}:\n{}\n{}",
                r.status(),
                show(&r),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every member's log, for assertion messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for (m, s) in self.homes.setup.members.iter().zip(&self.servers) {
            out.push_str(&format!("--- {} log ---\n{}\n", m.fqdn, s.logs()));
        }
        out
    }
}

/// Runs `tests/sipp/register_redirect.xml` as `user` of `domain` against `target`, expecting a
/// 301 to `expected`; returns SIPp's exit status and its output, error log and message trace.
pub(crate) fn run_sipp_redirect(
    domain: &str,
    target: SocketAddr,
    mode: &str,
    user: &str,
    password: &str,
    expected: &str,
) -> (i32, String) {
    let sipp = crate::support::sipp_binary();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp/register_redirect.xml");
    assert!(scenario.is_file(), "{} is missing", scenario.display());
    let work = tempfile::tempdir().expect("a temporary folder");
    let inf = work.path().join("domain.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{domain};\n")).expect("writing the -inf file");
    let mut child = Command::new(&sipp)
        .current_dir(work.path())
        .arg(target.to_string())
        .args(["-sf", &scenario.to_string_lossy()])
        .args(["-t", mode])
        .args(["-i", "127.0.0.1"])
        .args(["-s", user, "-au", user, "-ap", password])
        .args(["-auth_uri", domain])
        .args(["-inf", &inf.to_string_lossy()])
        .args(["-key", "home_contact", expected])
        .args(["-m", "1"])
        .args(["-nostdin", "-trace_err", "-trace_msg", "-trace_logs"])
        .args(["-timeout", "30s", "-timeout_error"])
        .args(["-recv_timeout", "10000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", sipp.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("waiting for sipp").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sipp did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("sipp output");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    for entry in std::fs::read_dir(work.path())
        .expect("sipp's folder")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("_errors.log")
            || name.ends_with("_messages.log")
            || name.ends_with("_logs.log")
        {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            text.push_str(&format!("\n--- {name} ---\n{log}"));
        }
    }
    (output.status.code().unwrap_or(-1), text)
}
