//! Discovery black-box helpers: a `herald serve` with the DNS and autodiscover listeners on
//! loopback port 0 and a `[topology]` of the test's choosing, `dig` with its answer parsed, and
//! external tools run with a deadline.
//!
//! [`Setup`] writes no `[dns]`, `[http] web`/`web_tls` or `[topology]`, so the config is
//! written here in full over the one `Setup::home` made (the home keeps its directory).

use std::io::Read;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::server::{HERALD, Home};
use super::{Server, Setup};

/// Starts tried by [`DiscoverySetup::start`] when the DNS port is taken.
const START_ATTEMPTS: usize = 3;
/// How long one external command (dig, curl, named-checkzone, a herald CLI command) may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// A discovery server to start: the SIP domain, whether SIP over TCP listens (it decides
/// `_sipinternal._tcp`), and the `[topology]` tables as TOML.
#[derive(Debug, Clone)]
pub(crate) struct DiscoverySetup {
    domain: String,
    sip_tcp: bool,
    topology: String,
    users: Vec<String>,
}

/// A running `herald serve` and the addresses of its discovery listeners.
#[derive(Debug)]
pub(crate) struct Discovery {
    pub(crate) server: Server,
    pub(crate) setup: DiscoverySetup,
    /// `[dns] listen`, UDP and TCP on one port.
    pub(crate) dns: SocketAddr,
    /// `[http] web`.
    pub(crate) http: SocketAddr,
    /// `[http] web_tls`.
    pub(crate) https: SocketAddr,
}

/// A parsed `dig` answer.
#[derive(Debug, Clone)]
pub(crate) struct Dig {
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`, ...
    pub(crate) status: String,
    /// Header flags (`qr`, `aa`, `rd`, ...).
    pub(crate) flags: Vec<String>,
    pub(crate) answers: Vec<Rr>,
    pub(crate) authority: Vec<Rr>,
    /// dig's whole output, for assertion messages.
    pub(crate) text: String,
}

/// One resource record as dig prints it (name lower-cased, with its trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rr {
    pub(crate) name: String,
    pub(crate) ttl: u32,
    pub(crate) rtype: String,
    pub(crate) data: String,
}

/// What a command printed.
#[derive(Debug)]
pub(crate) struct ToolRun {
    pub(crate) command: String,
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl DiscoverySetup {
    /// A server for `domain` with SIP over UDP, TCP and TLS, the `[topology]` tables in
    /// `topology` (empty: the single box), and the user `alice` in the directory.
    pub(crate) fn new(domain: &str, topology: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            sip_tcp: true,
            topology: topology.to_owned(),
            users: vec!["alice".to_owned()],
        }
    }

    /// Without a SIP TCP listener.
    pub(crate) fn without_sip_tcp(mut self) -> Self {
        self.sip_tcp = false;
        self
    }

    /// Writes the config into a fresh home and starts `herald serve`.
    ///
    /// A start that fails with "Address already in use" is tried again (at most
    /// [`START_ATTEMPTS`] times): serve binds the DNS TCP listener on the port the kernel gave
    /// the UDP one, which another socket may hold over TCP (the bug shown by
    /// `discovery::dns_listener_on_port_0_starts_when_its_udp_port_is_taken_over_tcp`).
    pub(crate) fn start(&self) -> Discovery {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.try_start() {
                Ok(d) => return d,
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}")
    }

    /// One start; `Err` with the reason (the server's log) when `serve` does not get ready.
    pub(crate) fn try_start(&self) -> Result<Discovery, String> {
        let mut setup = Setup::new(&self.domain);
        for user in &self.users {
            setup = setup.user(user, &format!("pw-{user}"));
        }
        let home = setup.home();
        std::fs::write(&home.config, self.config_text(None)).expect("writing herald.toml");
        let server = std::panic::catch_unwind(AssertUnwindSafe(|| Server::start(home, &[])))
            .map_err(|payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "herald serve did not start".to_owned())
            })?;
        let find = |kind: &str| {
            server
                .addrs
                .other
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, a)| *a)
                .unwrap_or_else(|| {
                    panic!(
                        "serve printed no `listening {kind} ADDR` line\nlog:\n{}",
                        server.logs()
                    )
                })
        };
        let (dns, http, https) = (find("dns"), find("http"), find("https"));
        Ok(Discovery {
            server,
            setup: self.clone(),
            dns,
            http,
            https,
        })
    }

    /// The config file. With `bound`, every listener names the address that server bound, so
    /// commands that build the topology without binding (`dns records`, `cert request`) see
    /// the ports `serve` publishes; otherwise every listener is loopback port 0.
    fn config_text(&self, bound: Option<&Discovery>) -> String {
        let list = |addrs: Vec<String>| {
            let quoted: Vec<String> = addrs.iter().map(|a| format!("{a:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let one = |pick: &dyn Fn(&Discovery) -> String| {
            bound.map_or_else(|| "127.0.0.1:0".to_owned(), pick)
        };
        let udp = one(&|d| d.server.udp().to_string());
        let tcp = if self.sip_tcp {
            vec![one(&|d| d.server.tcp().to_string())]
        } else {
            Vec::new()
        };
        let tls = one(&|d| d.server.tls().to_string());
        let dns = one(&|d| d.dns.to_string());
        let web = one(&|d| d.http.to_string());
        let web_tls = one(&|d| d.https.to_string());
        format!(
            "data_dir = \"data\"\n\n\
             [sip]\ndomain = {domain:?}\nudp = {udp}\ntcp = {tcp}\ntls = {tls}\n\n\
             [dns]\nlisten = {dns}\n\n\
             [http]\nadmin = \"127.0.0.1:0\"\nweb = {web}\nweb_tls = {web_tls}\n\n\
             [log]\nfilter = \"info\"\n\n{topology}\n",
            domain = self.domain,
            udp = list(vec![udp]),
            tcp = list(tcp),
            tls = list(vec![tls]),
            dns = list(vec![dns]),
            web = list(vec![web]),
            web_tls = list(vec![web_tls]),
            topology = self.topology,
        )
    }
}

impl Discovery {
    pub(crate) fn home(&self) -> &Arc<Home> {
        self.server.home()
    }

    /// The certificate `serve` generated at start (PEM).
    pub(crate) fn cert_pem(&self) -> PathBuf {
        self.home().cert_pem()
    }

    /// The SIP TLS port `serve` bound.
    pub(crate) fn tls_port(&self) -> u16 {
        self.server.tls().port()
    }

    /// The SIP TCP port `serve` bound.
    pub(crate) fn tcp_port(&self) -> u16 {
        self.server.tcp().port()
    }

    /// Writes a copy of the config whose listeners are the addresses this server bound (see
    /// [`DiscoverySetup::config_text`]) and returns its path.
    pub(crate) fn bound_config(&self) -> PathBuf {
        let path = self.home().path().join("bound.toml");
        std::fs::write(&path, self.setup.config_text(Some(self))).expect("writing bound.toml");
        path
    }

    /// `dig` against this server's DNS listener.
    #[track_caller]
    pub(crate) fn dig(&self, source: &str, tcp: bool, name: &str, rtype: &str) -> Dig {
        dig(self.dns, source, tcp, name, rtype)
    }

    /// `herald discover USER --dns <this server> --ca <its certificate> --http-port
    /// --https-port`, plus `extra` arguments.
    pub(crate) fn discover(&self, user: &str, extra: &[&str]) -> ToolRun {
        discover(
            self.dns,
            &self.cert_pem(),
            (self.http.port(), self.https.port()),
            user,
            extra,
        )
    }
}

/// A value shared by the tests of one module while any of them runs (see
/// [`super::server::shared`], which is the same for a bare [`Server`]).
pub(crate) fn shared<T>(slot: &'static Mutex<Weak<T>>, make: impl FnOnce() -> T) -> Arc<T> {
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(value) = guard.upgrade() {
        return value;
    }
    let value = Arc::new(make());
    *guard = Arc::downgrade(&value);
    value
}

/// `herald discover USER --dns DNS --ca CA --http-port --https-port` (`web` is the pair of
/// ports), with a 3 s timeout per step, plus `extra` arguments.
pub(crate) fn discover(
    dns: SocketAddr,
    ca: &Path,
    web: (u16, u16),
    user: &str,
    extra: &[&str],
) -> ToolRun {
    let dns = dns.to_string();
    let (http, https) = (web.0.to_string(), web.1.to_string());
    let mut args: Vec<&str> = vec![
        "discover",
        user,
        "--dns",
        &dns,
        "--ca",
        ca.to_str().expect("UTF-8 temporary path"),
        "--http-port",
        &http,
        "--https-port",
        &https,
        "--timeout",
        "3",
    ];
    args.extend_from_slice(extra);
    run(HERALD, &args)
}

/// `herald --config CONFIG ARGS`.
pub(crate) fn herald_cli(config: &Path, args: &[&str]) -> ToolRun {
    let mut all = vec!["--config", config.to_str().expect("UTF-8 temporary path")];
    all.extend_from_slice(args);
    run(HERALD, &all)
}

/// `dig @server -p PORT -b SOURCE NAME RTYPE` over UDP or TCP, one try of 2 s.
#[track_caller]
pub(crate) fn dig(server: SocketAddr, source: &str, tcp: bool, name: &str, rtype: &str) -> Dig {
    let server_arg = format!("@{}", server.ip());
    let port = server.port().to_string();
    let run = run(
        "dig",
        &[
            &server_arg,
            "-p",
            &port,
            "-b",
            source,
            "+noall",
            "+comments",
            "+answer",
            "+authority",
            "+tries=1",
            "+time=2",
            if tcp { "+tcp" } else { "+notcp" },
            name,
            rtype,
        ],
    );
    assert!(
        run.success,
        "{} failed:\n{}{}",
        run.command, run.stdout, run.stderr
    );
    parse_dig(&run.stdout)
}

/// Runs `program ARGS` with a deadline; panics (telling how to install it) when the program is
/// missing, so a machine without the tools fails instead of silently skipping.
pub(crate) fn run(program: &str, args: &[&str]) -> ToolRun {
    let command = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .env_remove("HERALD_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): scripts/test.sh installs the black-box test \
                 peers (dig: bind9-dnsutils, curl); named-checkzone is Debian bind9-utils"
            )
        });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{command}` did not finish in {TOOL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    ToolRun {
        command,
        success: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The DNS names of a PEM certificate's subjectAltName extension (RFC 5280 §4.2.1.6), read from
/// the DER with a minimal walker so the check does not trust herald's own certificate code.
pub(crate) fn san_dns_names(pem: &Path) -> Vec<String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::pem_file_iter(pem)
        .unwrap_or_else(|e| panic!("reading {}: {e}", pem.display()))
        .next()
        .unwrap_or_else(|| panic!("no certificate in {}", pem.display()))
        .unwrap_or_else(|e| panic!("bad PEM in {}: {e}", pem.display()));
    let der: &[u8] = der.as_ref();
    // id-ce-subjectAltName, 2.5.29.17.
    const OID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x11];
    let at = der
        .windows(OID.len())
        .position(|w| w == OID)
        .unwrap_or_else(|| panic!("no subjectAltName extension in {}", pem.display()));
    let mut rest = &der[at + OID.len()..];
    // Optional `critical BOOLEAN`, then `extnValue OCTET STRING`.
    if rest.first() == Some(&0x01) {
        let (_, after) = tlv(rest);
        rest = after;
    }
    assert_eq!(
        rest.first(),
        Some(&0x04),
        "extnValue is not an OCTET STRING"
    );
    let (value, _) = tlv(rest);
    assert_eq!(value.first(), Some(&0x30), "GeneralNames is not a SEQUENCE");
    let (mut names, _) = tlv(value);
    let mut out = Vec::new();
    while !names.is_empty() {
        let tag = names[0];
        let (content, after) = tlv(names);
        // dNSName is [2] IA5String, implicitly tagged.
        if tag == 0x82 {
            out.push(String::from_utf8_lossy(content).into_owned());
        }
        names = after;
    }
    out
}

/// Splits one DER TLV off `bytes`: (contents, rest).
fn tlv(bytes: &[u8]) -> (&[u8], &[u8]) {
    assert!(bytes.len() >= 2, "truncated DER");
    let (len, header) = match bytes[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(bytes[2]), 3),
        0x82 => ((usize::from(bytes[2]) << 8) | usize::from(bytes[3]), 4),
        n => panic!("DER length form {n:#x} not expected in a certificate extension"),
    };
    assert!(bytes.len() >= header + len, "truncated DER");
    (&bytes[header..header + len], &bytes[header + len..])
}

fn parse_dig(text: &str) -> Dig {
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{text}"))
        .to_owned();
    let flags = text
        .split("flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut answers = Vec::new();
    let mut authority = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
        } else if line.trim().is_empty() {
            section = "";
        } else if !line.starts_with(';') {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(f.len() >= 5, "unexpected dig line {line:?}");
            let rr = Rr {
                name: f[0].to_ascii_lowercase(),
                ttl: f[1].parse().unwrap_or_else(|_| panic!("TTL in {line:?}")),
                rtype: f[3].to_owned(),
                data: f[4..].join(" "),
            };
            match section {
                "answer" => answers.push(rr),
                "authority" => authority.push(rr),
                _ => {}
            }
        }
    }
    Dig {
        status,
        flags,
        answers,
        authority,
        text: text.to_owned(),
    }
}

impl Dig {
    /// Whether the AA bit is set.
    pub(crate) fn aa(&self) -> bool {
        self.flags.iter().any(|f| f == "aa")
    }

    /// The answer RDATA in the order received.
    pub(crate) fn data(&self) -> Vec<String> {
        self.answers.iter().map(|r| r.data.clone()).collect()
    }

    /// The answer RDATA sorted, for set comparisons.
    pub(crate) fn sorted_data(&self) -> Vec<String> {
        let mut d = self.data();
        d.sort();
        d
    }
}
