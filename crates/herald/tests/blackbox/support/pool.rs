//! A Front End pool of two `herald serve` processes (issue 4 point 6): one `[[topology.pools]]`
//! with two members on different loopback addresses, each member a process listening on its own
//! address with the SAME ports as the other (as the servers of a Lync pool do), both on ONE data
//! folder, so they share the directory and its users' homes.
//!
//! The first member finds itself from its listen addresses; the second is named by
//! `[sip] member`, so both ways are exercised.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::ports::{free_ports, lost_a_port, start_when_free, try_start};
use super::server::{CliRun, Home, Server, Setup};

/// How long a start may keep losing a port to other processes before the test gives up.
const PORT_PATIENCE: Duration = Duration::from_secs(30);

/// One member of the pool.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) fqdn: String,
    pub(crate) ip: IpAddr,
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
}

/// What the pool's config files say.
#[derive(Debug, Clone)]
pub(crate) struct PoolSetup {
    pub(crate) domain: String,
    pub(crate) pool_fqdn: String,
    pub(crate) members: Vec<Member>,
    /// Extra `[sip]` keys for every member, values written as TOML.
    sip: Vec<(String, String)>,
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
        Self {
            domain: domain.to_owned(),
            pool_fqdn: format!("pool.{domain}"),
            members: vec![
                Member {
                    fqdn: format!("fe01.{domain}"),
                    ip: IpAddr::from([127, 0, 0, 1]),
                },
                Member {
                    fqdn: format!("fe02.{domain}"),
                    ip: IpAddr::from([127, 0, 0, 2]),
                },
            ],
            sip: Vec::new(),
            users: Vec::new(),
        }
    }

    /// One `[sip]` key for every member, the value written as TOML.
    pub(crate) fn sip(mut self, key: &str, toml_value: &str) -> Self {
        self.sip.push((key.to_owned(), toml_value.to_owned()));
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

    fn config_text(&self, index: usize, data_dir: &std::path::Path, ports: PoolPorts) -> String {
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
            "\n[http]\nadmin = \"{}\"\nweb = []\nweb_tls = []\n",
            SocketAddr::new(me.ip, ports.admin)
        ));
        t.push_str("\n[log]\nfilter = \"debug\"\n\n[topology]\n\n[[topology.pools]]\n");
        t.push_str(&format!("fqdn = {:?}\nmembers = [\n", self.pool_fqdn));
        for m in &self.members {
            t.push_str(&format!(
                "  {{ fqdn = {:?}, addresses = [\"{}\"] }},\n",
                m.fqdn, m.ip
            ));
        }
        t.push_str("]\n");
        t
    }
}

fn pick_ports(ips: &[IpAddr]) -> PoolPorts {
    let p = free_ports(ips, 4);
    PoolPorts {
        sip: p[0],
        tls: p[1],
        dns: p[2],
        admin: p[3],
    }
}

impl PoolHomes {
    /// The shared data folder.
    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self.homes[0].data_dir()
    }

    /// The certificate the first member generated (the others find it in the shared folder).
    pub(crate) fn cert_pem(&self) -> std::path::PathBuf {
        self.homes[0].cert_pem()
    }

    /// `herald --config <first member's config> ARGS` (every member's config names the same
    /// store and topology).
    pub(crate) fn cli(&self, args: &[&str]) -> CliRun {
        self.homes[0].cli(args)
    }

    pub(crate) fn cli_stdin(&self, args: &[&str], input: &str) -> CliRun {
        self.homes[0].cli_stdin(args, input)
    }

    /// The member FQDN `herald user show` prints as the user's `home:`.
    #[track_caller]
    pub(crate) fn home_of(&self, user: &str) -> String {
        let uri = format!("sip:{user}@{}", self.setup.domain);
        let out = self.cli(&["user", "show", &uri]).success().stdout;
        let line = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("home:"))
            .unwrap_or_else(|| panic!("no `home:` line in `herald user show {uri}`:\n{out}"));
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
        let deadline = std::time::Instant::now() + PORT_PATIENCE;
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
                Some(e) if lost_a_port(&e) && std::time::Instant::now() < deadline => {
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

    /// Every member's log, for assertion messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for (m, s) in self.homes.setup.members.iter().zip(&self.servers) {
            out.push_str(&format!("--- {} log ---\n{}\n", m.fqdn, s.logs()));
        }
        out
    }
}
