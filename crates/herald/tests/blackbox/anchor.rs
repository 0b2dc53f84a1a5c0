//! Mailbox anchoring end to end: three `herald mailbox-server` processes in one DAG with two
//! databases, the directory built with the admin CLI, and `herald serve` with `[anchor]`
//! proxying to them. Probes run every few hundred milliseconds so failovers are quick.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::server::{HERALD, Home};
use crate::support::{Server, Setup};

const ARBITRATION: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com";

/// Requests for users whose mailboxes are on different databases reach the server holding
/// each database's active copy, with Exchange's diagnostic headers and a signed cookie.
#[test]
fn requests_reach_the_backend_of_each_users_database() {
    let org = Org::start(Probes::default());
    let alice = org.get("/owa/", Some(("alice@contoso.com", "pw-alice")), &[]);
    assert_eq!(alice.status, 200, "{alice:?}");
    assert_eq!(alice.served_by(), "ex1");
    assert_eq!(alice.header("x-beserver"), "ex1");
    assert_eq!(
        alice.header("x-calculatedbetarget"),
        org.backend("ex1").to_string()
    );
    assert_eq!(alice.header("x-feserver"), "fe1");
    assert!(
        alice.body.contains("\"database\":\"db1\""),
        "{}",
        alice.body
    );
    assert!(alice.header("set-cookie").starts_with("X-BackEndCookie="));

    let bob = org.get(
        "/ews/exchange.asmx",
        Some(("bob@contoso.com", "pw-bob")),
        &[],
    );
    assert_eq!(
        (bob.status, bob.served_by().as_str()),
        (200, "ex2"),
        "{bob:?}"
    );

    // X-AnchorMailbox names the mailbox whatever the credentials; unknown names are a 404.
    let hinted = org.get(
        "/ews/exchange.asmx",
        Some(("alice@contoso.com", "pw-alice")),
        &[("X-AnchorMailbox", "bob@contoso.com")],
    );
    assert_eq!(hinted.served_by(), "ex2");
    let unknown = org.get(
        "/ews/exchange.asmx",
        None,
        &[("X-AnchorMailbox", "nobody@contoso.com")],
    );
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("nobody@contoso.com"),
        "{}",
        unknown.body
    );

    let wrong = org.get("/owa/", Some(("alice@contoso.com", "nope")), &[]);
    assert_eq!(wrong.status, 401);

    // Explicit logon in the URL.
    let explicit = org.get("/owa/bob@contoso.com/", None, &[]);
    assert_eq!(explicit.served_by(), "ex2");
}

/// A backend cookie nobody signed, or one issued to somebody else, is refused: the request
/// falls back to the directory, so no client can steer itself to a backend of its choosing.
#[test]
fn forged_and_replayed_backend_cookies_are_refused() {
    let org = Org::start(Probes::default());
    let alice = ("alice@contoso.com", "pw-alice");
    let first = org.get("/owa/", Some(alice), &[]);
    let cookie = first
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let value = cookie.trim_start_matches("X-BackEndCookie=").to_owned();
    assert!(value.contains("~ex1~"), "{value}");

    let honoured = org.get("/owa/", Some(alice), &[("Cookie", &cookie)]);
    assert_eq!(honoured.header("x-herald-anchor"), "X-BackEndCookie");
    assert_eq!(honoured.served_by(), "ex1");

    // The same cookie rewritten to point at ex3: the signature no longer matches.
    let forged = format!("X-BackEndCookie={}", value.replace("~ex1~", "~ex3~"));
    let steered = org.get("/owa/", Some(alice), &[("Cookie", &forged)]);
    assert_eq!(steered.status, 200);
    assert_eq!(
        steered.served_by(),
        "ex1",
        "the forged cookie must not steer"
    );
    assert!(
        !steered.header("x-herald-cookierefused").is_empty(),
        "{steered:?}"
    );

    // A cookie made up from scratch, sent without credentials: never used.
    let invented = "X-BackEndCookie=1~m~00000000-0000-4000-8000-000000000001~ex3~9999999999~00000000~\
                    0000000000000000000000000000000000000000000000000000000000000000";
    let anonymous = org.get("/owa/", None, &[("Cookie", invented)]);
    assert_ne!(anonymous.header("x-herald-anchor"), "X-BackEndCookie");

    // Alice's genuine cookie replayed by bob.
    let replayed = org.get(
        "/owa/",
        Some(("bob@contoso.com", "pw-bob")),
        &[("Cookie", &cookie)],
    );
    assert_eq!(replayed.served_by(), "ex2");
    assert!(
        !replayed.header("x-herald-cookierefused").is_empty(),
        "{replayed:?}"
    );
}

/// The active server goes unhealthy: Active Manager fails its database over and requests land
/// on the next copy within one probe interval; the failover is in `database list`'s log. A
/// stopped server is noticed by the very request that hits it, which is retried.
#[test]
fn failover_within_one_probe_interval() {
    let interval = Duration::from_millis(300);
    let org = Org::start(Probes {
        interval,
        failures: 1,
    });
    let alice = ("alice@contoso.com", "pw-alice");
    assert_eq!(org.get("/owa/", Some(alice), &[]).served_by(), "ex1");
    // Let every server be probed healthy once, so that only the failure is new.
    std::thread::sleep(interval);

    org.set_health("ex1", "down");
    let down_at = Instant::now();
    let switched = loop {
        let r = org.get("/owa/", Some(alice), &[]);
        if r.status == 200 && r.served_by() == "ex2" {
            break down_at.elapsed();
        }
        assert!(
            down_at.elapsed() < Duration::from_secs(5),
            "no failover: {r:?}\n{}",
            org.server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // One interval until the next probe of ex1, plus a debug build's scheduling slack on a
    // shared machine.
    assert!(
        switched <= interval + Duration::from_millis(900),
        "failover took {switched:?}"
    );
    // The event reaches the store from its own task, just after the switch itself.
    let recorded = Instant::now();
    let list = loop {
        let list = org.home.cli(&["database", "list"]).success();
        if list.stdout.contains("failover from ex1") {
            break list;
        }
        assert!(
            recorded.elapsed() < Duration::from_secs(3),
            "the failover was not recorded: {}",
            list.stdout
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("db1") && l.contains(" ex2 ")),
        "{}",
        list.stdout
    );

    // bob's database is active on ex2; kill that process outright.
    let bob = ("bob@contoso.com", "pw-bob");
    assert_eq!(org.get("/ews/x", Some(bob), &[]).served_by(), "ex2");
    org.kill_backend("ex2");
    let after = org.get("/ews/x", Some(bob), &[]);
    assert_eq!(after.status, 200, "{after:?}\n{}", org.server.logs());
    assert_eq!(after.served_by(), "ex3");
}

/// `herald database move` in another process is carried out by the running server, kept in
/// the store, and still in force after a restart; impossible moves are refused.
#[test]
fn switchover_from_the_cli_is_seen_by_serve_and_survives_a_restart() {
    let org = Org::start(Probes::default());
    let bob = ("bob@contoso.com", "pw-bob");
    assert_eq!(org.get("/ews/x", Some(bob), &[]).served_by(), "ex2");

    let moved = org
        .home
        .cli(&["database", "move", "db2", "--to", "ex3"])
        .success();
    assert!(
        moved.stdout.contains("switchover to ex3"),
        "{}",
        moved.stdout
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while org.get("/ews/x", Some(bob), &[]).served_by() != "ex3" {
        assert!(
            Instant::now() < deadline,
            "serve did not pick up the switchover\n{}",
            org.server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = org
        .home
        .cli(&["database", "move", "db2", "--to", "ex3"])
        .failure();
    assert!(
        again.stderr.contains("already active on ex3"),
        "{}",
        again.stderr
    );
    let outside = org
        .home
        .cli(&["database", "move", "db2", "--to", "ex9"])
        .failure();
    assert!(outside.stderr.contains("ex9"), "{}", outside.stderr);

    let list = org.home.cli(&["database", "list"]).success();
    assert!(list.stdout.contains("requested by"), "{}", list.stdout);
    assert!(
        list.stdout.contains("switchover from ex2"),
        "{}",
        list.stdout
    );

    let Org {
        server,
        home,
        backends,
        ..
    } = org;
    let server = server.restart();
    let org = Org {
        anchor: anchor_addr(&server),
        server,
        home,
        backends,
    };
    assert_eq!(org.get("/ews/x", Some(bob), &[]).served_by(), "ex3");
}

/// Management shell: an admin with a mailbox anchors to it; one without falls back to the
/// arbitration mailbox (503 with a reason while there is none); an organisation with a server
/// older than 2013 CU11 keeps version-based routing, and a header says why.
#[test]
fn management_shell_anchoring_with_and_without_a_mailbox() {
    let org = Org::start(Probes::default());
    let admin = ("admin@contoso.com", "pw-admin");

    let own = org.get("/powershell", Some(("alice@contoso.com", "pw-alice")), &[]);
    assert_eq!(own.served_by(), "ex1");
    assert_eq!(own.header("x-herald-shellrouting"), "anchored");
    assert!(
        own.header("x-herald-backendbuild").contains("2013 CU11"),
        "{own:?}"
    );

    let none = org.get("/powershell", Some(admin), &[]);
    assert_eq!(none.status, 503, "{none:?}");
    assert!(none.body.contains("arbitration mailbox"), "{}", none.body);

    org.home
        .cli(&[
            "mailbox",
            "add",
            ARBITRATION,
            "--type",
            "arbitration",
            "--database",
            "db2",
        ])
        .success();
    let fallback = org.eventually("/powershell", Some(admin), |r| r.status == 200);
    assert_eq!(fallback.served_by(), "ex2");
    assert!(
        fallback.header("x-herald-anchor").contains("arbitration"),
        "{fallback:?}"
    );

    // A 2013 CU10 server joins: the organisation is mixed, sessions are no longer anchored.
    let old = MailboxServer::start("ex4", "15.0.1130.7");
    org.home
        .cli(&[
            "server",
            "add",
            "ex4",
            "--address",
            &old.addr.to_string(),
            "--build",
            "15.0.1130.7",
        ])
        .success();
    let mixed = org.eventually("/powershell", Some(admin), |r| {
        r.header("x-herald-shellrouting")
            .starts_with("version-based")
    });
    assert_eq!(mixed.status, 200, "{mixed:?}");
    assert!(
        mixed
            .header("x-herald-shellrouting")
            .contains("15.0.1130.7"),
        "{mixed:?}"
    );
    let listed = org.home.cli(&["server", "list"]).success();
    assert!(listed.stdout.contains("version-based"), "{}", listed.stdout);
}

/// `herald user clear-previous-mailbox` refuses without `--confirm`, clears with it, prints
/// and stores its audit record, and the admin CLI refuses inconsistent changes clearly.
#[test]
fn clear_previous_mailbox_needs_confirm_and_is_audited() {
    let home = Setup::new("contoso.com")
        .tls(&[])
        .user("alice", "pw-alice")
        .home();
    let cli = |args: &[&str]| home.cli(args);
    cli(&[
        "server",
        "add",
        "ex1",
        "--address",
        "127.0.0.1:4441",
        "--build",
        "15.0.1156.6",
    ])
    .success();
    cli(&[
        "server",
        "add",
        "ex2",
        "--address",
        "127.0.0.1:4442",
        "--build",
        "15.0.1156.6",
    ])
    .success();
    let dup = cli(&[
        "server",
        "add",
        "ex3",
        "--address",
        "127.0.0.1:4441",
        "--build",
        "15.0.1156.6",
    ])
    .failure();
    assert!(
        dup.stderr.contains("already used by server ex1"),
        "{}",
        dup.stderr
    );
    cli(&["dag", "add", "dag1", "--members", "ex1,ex2"]).success();
    let prefs = cli(&[
        "database",
        "add",
        "db1",
        "--dag",
        "dag1",
        "--copies",
        "ex1:1,ex2:1",
    ])
    .failure();
    assert!(
        prefs.stderr.contains("preferences must be distinct"),
        "{}",
        prefs.stderr
    );
    cli(&[
        "database",
        "add",
        "db1",
        "--dag",
        "dag1",
        "--copies",
        "ex1:1,ex2:2",
    ])
    .success();
    let nobody = cli(&["mailbox", "add", "carol@contoso.com", "--database", "db1"]).failure();
    assert!(
        nobody.stderr.contains("herald user add"),
        "{}",
        nobody.stderr
    );
    let added = cli(&["mailbox", "add", "alice@contoso.com", "--database", "db1"]).success();
    let guid = added
        .stdout
        .split("ExchangeGuid ")
        .nth(1)
        .and_then(|s| s.get(..36))
        .expect("the new mailbox's GUID")
        .to_owned();
    let owner = cli(&["user", "remove", "alice@contoso.com"]).failure();
    assert!(
        owner.stderr.contains("still owns mailbox"),
        "{}",
        owner.stderr
    );
    let in_use = cli(&["database", "remove", "db1"]).failure();
    assert!(
        in_use.stderr.contains("still holds 1 mailbox"),
        "{}",
        in_use.stderr
    );

    cli(&["mailbox", "remove", "alice@contoso.com"]).success();
    let listed = cli(&["mailbox", "list"]).success();
    assert!(
        listed
            .stdout
            .contains(&format!("alice@contoso.com: ExchangeGuid {guid}")),
        "{}",
        listed.stdout
    );

    let refused = cli(&["user", "clear-previous-mailbox", "alice@contoso.com"]).failure();
    assert!(refused.stderr.contains("--confirm"), "{}", refused.stderr);
    assert!(
        cli(&["mailbox", "list"]).success().stdout.contains(&guid),
        "nothing was cleared"
    );

    let cleared = cli(&[
        "user",
        "clear-previous-mailbox",
        "alice@contoso.com",
        "--confirm",
    ])
    .success();
    assert!(cleared.stdout.contains("audit: "), "{}", cleared.stdout);
    assert!(
        cleared
            .stdout
            .contains("PermanentlyClearPreviousMailboxInfo"),
        "{}",
        cleared.stdout
    );
    assert!(cleared.stdout.contains(&guid), "{}", cleared.stdout);
    assert!(!cli(&["mailbox", "list"]).success().stdout.contains(&guid));
    let twice = cli(&[
        "user",
        "clear-previous-mailbox",
        "alice@contoso.com",
        "--confirm",
    ])
    .failure();
    assert!(
        twice.stderr.contains("no previous mailbox info"),
        "{}",
        twice.stderr
    );

    cli(&["database", "remove", "db1"]).success();
    cli(&["dag", "remove", "dag1"]).success();
    cli(&["server", "remove", "ex2"]).success();
    assert!(!cli(&["server", "list"]).success().stdout.contains("ex2"));
}

// ---- the deployment ----

/// Probe settings of a test deployment.
#[derive(Clone, Copy)]
struct Probes {
    interval: Duration,
    failures: u32,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(200),
            failures: 2,
        }
    }
}

/// ex1..ex3 in dag1; db1 (ex1, ex2, ex3) holds alice's mailbox, db2 (ex2, ex3, ex1) bob's;
/// admin has none. `herald serve` proxies on `anchor`.
struct Org {
    home: Arc<Home>,
    backends: Vec<MailboxServer>,
    server: Server,
    anchor: SocketAddr,
}

impl Org {
    fn start(probes: Probes) -> Self {
        let home = Setup::new("contoso.com")
            .tls(&[])
            .user("alice", "pw-alice")
            .user("bob", "pw-bob")
            .user("admin", "pw-admin")
            .home();
        let mut config = std::fs::read_to_string(&home.config).expect("reading herald.toml");
        // Keep the other services off fixed ports, whatever the shared setup writes.
        if !config.contains("web =") {
            config = config.replacen("[http]\n", "[http]\nweb = []\nweb_tls = []\n", 1);
        }
        if !config.contains("[dns]") {
            config.push_str("\n[dns]\nlisten = []\n");
        }
        let config = config
            + &format!(
                "\n[anchor]\nlisten = [\"127.0.0.1:0\"]\n\
                 frontend_name = \"fe1\"\nprobe_interval_ms = {}\nprobe_failures = {}\n\
                 probe_timeout_ms = 500\nconnect_timeout_ms = 500\nreload_interval_ms = 100\n",
                probes.interval.as_millis(),
                probes.failures
            );
        std::fs::write(&home.config, config).expect("writing herald.toml");

        let backends: Vec<MailboxServer> = ["ex1", "ex2", "ex3"]
            .iter()
            .map(|n| MailboxServer::start(n, "15.0.1156.6"))
            .collect();
        for b in &backends {
            home.cli(&[
                "server",
                "add",
                &b.name,
                "--address",
                &b.addr.to_string(),
                "--build",
                "15.0.1156.6",
            ])
            .success();
        }
        home.cli(&["dag", "add", "dag1", "--members", "ex1,ex2,ex3"])
            .success();
        home.cli(&[
            "database",
            "add",
            "db1",
            "--dag",
            "dag1",
            "--copies",
            "ex1:1,ex2:2,ex3:3",
        ])
        .success();
        home.cli(&[
            "database",
            "add",
            "db2",
            "--dag",
            "dag1",
            "--copies",
            "ex2:1,ex3:2,ex1:3",
        ])
        .success();
        home.cli(&["mailbox", "add", "alice@contoso.com", "--database", "db1"])
            .success();
        home.cli(&["mailbox", "add", "bob@contoso.com", "--database", "db2"])
            .success();

        let server = Server::start(home.clone(), &[]);
        Self {
            anchor: anchor_addr(&server),
            home,
            backends,
            server,
        }
    }

    fn backend(&self, name: &str) -> SocketAddr {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.addr)
            .unwrap_or_else(|| panic!("no backend {name}"))
    }

    fn get(&self, path: &str, basic: Option<(&str, &str)>, headers: &[(&str, &str)]) -> Reply {
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some((user, password)) = basic {
            all.push((
                "Authorization".to_owned(),
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            ));
        }
        request(self.anchor, "GET", path, &all, "")
    }

    /// Repeats a GET until `done` holds (the server reloads the directory every 100 ms).
    fn eventually(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        done: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let r = self.get(path, basic, &[]);
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "never got there: {r:?}\n{}",
                self.server.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn set_health(&self, name: &str, state: &str) {
        let r = request(self.backend(name), "POST", "/_herald/health", &[], state);
        assert_eq!(r.status, 200, "{r:?}");
    }

    fn kill_backend(&self, name: &str) {
        if let Some(b) = self.backends.iter().find(|b| b.name == name) {
            b.kill();
        }
    }
}

fn anchor_addr(server: &Server) -> SocketAddr {
    server
        .addrs
        .other
        .iter()
        .find(|(kind, _)| kind == "anchor")
        .map(|(_, a)| *a)
        .expect("a `listening anchor` line")
}

/// A `herald mailbox-server` child process, killed on drop.
struct MailboxServer {
    name: String,
    addr: SocketAddr,
    child: std::sync::Mutex<Child>,
}

impl MailboxServer {
    fn start(name: &str, build: &str) -> Self {
        let mut child = Command::new(HERALD)
            .args([
                "mailbox-server",
                "--name",
                name,
                "--build",
                build,
                "--listen",
                "127.0.0.1:0",
            ])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning herald mailbox-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("mailbox-server printed its address");
            if let Some(a) = line.strip_prefix("listening mailbox-server ") {
                break a.trim().parse().expect("an address");
            }
        };
        Self {
            name: name.to_owned(),
            addr,
            child: std::sync::Mutex::new(child),
        }
    }

    fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for MailboxServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- a small HTTP/1.1 client ----

/// One response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {:?} {:?}", self.status, self.headers, self.body)
    }
}

impl Reply {
    /// The first value of a header (names compared case-insensitively), or "".
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The demo backend's `"server"` field.
    fn served_by(&self) -> String {
        self.body
            .split("\"server\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: mail.contoso.com\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .expect("writing the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
