//! `herald serve` as a child process: a config in a temporary folder, loopback listeners on port
//! 0, the bound addresses read back from stdout, and the process killed when the guard drops.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The `herald` binary Cargo built for this test run.
pub(crate) const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// How long `serve` may take to print `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one CLI command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// What to write into the config file and the directory before `serve` starts.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    domain: String,
    udp: Vec<String>,
    tcp: Vec<String>,
    tls: Vec<String>,
    sip: Vec<(String, String)>,
    presence: Vec<(String, String)>,
    users: Vec<(String, String)>,
}

impl Setup {
    /// Loopback UDP, TCP and TLS listeners and an admin listener, all on port 0.
    pub(crate) fn new(domain: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            udp: vec!["127.0.0.1:0".into()],
            tcp: vec!["127.0.0.1:0".into()],
            tls: vec!["127.0.0.1:0".into()],
            sip: Vec::new(),
            presence: Vec::new(),
            users: Vec::new(),
        }
    }

    pub(crate) fn udp(mut self, addrs: &[&str]) -> Self {
        self.udp = addrs.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    pub(crate) fn tcp(mut self, addrs: &[&str]) -> Self {
        self.tcp = addrs.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    pub(crate) fn tls(mut self, addrs: &[&str]) -> Self {
        self.tls = addrs.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// One `[sip]` key, the value written as TOML (`"3"`, `"[\"MD5\"]"`).
    pub(crate) fn sip(mut self, key: &str, toml_value: &str) -> Self {
        self.sip.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// One `[presence]` key, the value written as TOML (`"true"`, `"60"`).
    pub(crate) fn presence(mut self, key: &str, toml_value: &str) -> Self {
        self.presence.push((key.to_owned(), toml_value.to_owned()));
        self
    }

    /// A user of the primary domain (`name` without `@`) or of any served domain, created with
    /// `herald user add --password-stdin` before the server starts.
    pub(crate) fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Writes the config, creates the domains and users through the CLI.
    pub(crate) fn home(&self) -> Arc<Home> {
        let dir = tempfile::Builder::new()
            .prefix("herald-blackbox-")
            .tempdir()
            .expect("creating a temporary folder");
        let config = dir.path().join("herald.toml");
        std::fs::write(&config, self.config_text()).expect("writing herald.toml");
        let home = Home { dir, config };
        home.cli(&["domain", "add", &self.domain]).success();
        for (name, password) in &self.users {
            let uri = if name.contains('@') {
                format!("sip:{name}")
            } else {
                format!("sip:{name}@{}", self.domain)
            };
            home.cli_stdin(
                &["user", "add", &uri, "--password-stdin"],
                &format!("{password}\n"),
            )
            .success();
        }
        Arc::new(home)
    }

    /// Prepares a home and starts `herald serve` in it.
    pub(crate) fn start(&self) -> Server {
        Server::start(self.home(), &[])
    }

    fn config_text(&self) -> String {
        let list = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|a| format!("{a:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut t = String::new();
        t.push_str("data_dir = \"data\"\n\n[sip]\n");
        t.push_str(&format!("domain = {:?}\n", self.domain));
        t.push_str(&format!("udp = {}\n", list(&self.udp)));
        t.push_str(&format!("tcp = {}\n", list(&self.tcp)));
        t.push_str(&format!("tls = {}\n", list(&self.tls)));
        for (k, v) in &self.sip {
            t.push_str(&format!("{k} = {v}\n"));
        }
        t.push_str("\n[dns]\nlisten = [\"127.0.0.1:0\"]\n");
        t.push_str("\n[http]\nadmin = \"127.0.0.1:0\"\n");
        t.push_str("web = [\"127.0.0.1:0\"]\nweb_tls = [\"127.0.0.1:0\"]\n");
        if !self.presence.is_empty() {
            t.push_str("\n[presence]\n");
            for (k, v) in &self.presence {
                t.push_str(&format!("{k} = {v}\n"));
            }
        }
        t.push_str("\n[log]\nfilter = \"debug\"\n");
        t
    }
}

/// A config file and its data folder, in a temporary folder removed on drop.
#[derive(Debug)]
pub(crate) struct Home {
    dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
}

impl Home {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The self-signed certificate `serve` generates at first start.
    pub(crate) fn cert_pem(&self) -> PathBuf {
        self.data_dir().join("tls").join("cert.pem")
    }

    /// Points `[http] admin` in the config at `addr`, so CLI commands that ask the running
    /// server (`herald presence`, `herald contact`) find the listener `serve` bound on port 0.
    /// Put it back to `127.0.0.1:0` before starting `serve` again in this home.
    pub(crate) fn set_admin(&self, addr: &str) {
        let text = std::fs::read_to_string(&self.config).expect("reading herald.toml");
        let mut out = String::with_capacity(text.len());
        let mut replaced = false;
        for line in text.lines() {
            if line.starts_with("admin = ") {
                out.push_str(&format!("admin = {addr:?}"));
                replaced = true;
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        assert!(replaced, "no `admin = ` line in:\n{text}");
        std::fs::write(&self.config, out).expect("writing herald.toml");
    }

    /// Runs `herald --config <this config> ARGS` with an empty standard input.
    pub(crate) fn cli(&self, args: &[&str]) -> CliRun {
        self.run_cli(args, None)
    }

    /// Runs a CLI command with `input` on its standard input.
    pub(crate) fn cli_stdin(&self, args: &[&str], input: &str) -> CliRun {
        self.run_cli(args, Some(input))
    }

    fn run_cli(&self, args: &[&str], input: Option<&str>) -> CliRun {
        let mut cmd = Command::new(HERALD);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("HERALD_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning herald");
        let mut stdin = child.stdin.take().expect("piped stdin");
        if let Some(input) = input {
            stdin
                .write_all(input.as_bytes())
                .expect("writing to herald's stdin");
        }
        drop(stdin);
        let output = wait_output(child, CLI_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "`herald {}` did not finish in {CLI_TIMEOUT:?}",
                args.join(" ")
            )
        });
        CliRun {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The result of one CLI command.
#[derive(Debug)]
pub(crate) struct CliRun {
    pub(crate) args: Vec<String>,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl CliRun {
    /// Asserts exit status 0 and returns the run.
    #[track_caller]
    pub(crate) fn success(self) -> Self {
        assert!(
            self.status.success(),
            "`herald {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a non-zero exit status and returns the run.
    #[track_caller]
    pub(crate) fn failure(self) -> Self {
        assert!(
            !self.status.success(),
            "`herald {}` should have failed\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The addresses `serve` reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct Addrs {
    pub(crate) udp: Vec<SocketAddr>,
    pub(crate) tcp: Vec<SocketAddr>,
    pub(crate) tls: Vec<SocketAddr>,
    pub(crate) admin: Option<SocketAddr>,
    /// Any other `listening KIND ADDR` line.
    pub(crate) other: Vec<(String, SocketAddr)>,
}

/// A running `herald serve`; killed (SIGKILL) on drop.
#[derive(Debug)]
pub(crate) struct Server {
    home: Arc<Home>,
    child: Child,
    pub(crate) addrs: Addrs,
    /// `(sip:user@domain, password)` printed by `--demo`.
    pub(crate) demo_users: Vec<(String, String)>,
    log: PathBuf,
}

impl Server {
    /// Starts `herald serve ARGS` in `home` and waits for `ready`.
    pub(crate) fn start(home: Arc<Home>, args: &[&str]) -> Self {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = home.path().join(format!("serve-{n}.log"));
        let log_file = std::fs::File::create(&log).expect("creating the server log");
        let mut child = Command::new(HERALD)
            .arg("--config")
            .arg(&home.config)
            .arg("serve")
            .args(args)
            .env_remove("HERALD_CONFIG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("spawning herald serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keeps draining after `ready` so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep reading to EOF.
                }
            }
        });
        let mut server = Self {
            home,
            child,
            addrs: Addrs::default(),
            demo_users: Vec::new(),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let status = server.child.try_wait().ok().flatten();
                    panic!(
                        "herald serve did not print `ready` ({e:?}, exit status {status:?})\nstdout so far:\n{}\nlog:\n{}",
                        seen.join("\n"),
                        server.logs()
                    );
                }
            };
            seen.push(line.clone());
            if line == "ready" {
                break;
            }
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut words = rest.split_whitespace();
                let what = words.next().unwrap_or_default();
                let addr: Option<SocketAddr> = words.next().and_then(|a| a.parse().ok());
                let known = ["sip+udp", "sip+tcp", "sip+tls", "admin"];
                let Some(addr) = addr else {
                    assert!(!known.contains(&what), "no address in {line:?}");
                    continue;
                };
                match what {
                    "sip+udp" => server.addrs.udp.push(addr),
                    "sip+tcp" => server.addrs.tcp.push(addr),
                    "sip+tls" => server.addrs.tls.push(addr),
                    "admin" => server.addrs.admin = Some(addr),
                    // Listeners added after these tests were written.
                    other => server.addrs.other.push((other.to_owned(), addr)),
                }
            } else if let Some((uri, password)) = line.trim().split_once("  password: ") {
                server
                    .demo_users
                    .push((uri.trim().to_owned(), password.trim().to_owned()));
            }
        }
        server
    }

    pub(crate) fn home(&self) -> &Arc<Home> {
        &self.home
    }

    /// The first IPv4 UDP listener.
    pub(crate) fn udp(&self) -> SocketAddr {
        *self
            .addrs
            .udp
            .iter()
            .find(|a| a.is_ipv4())
            .expect("an IPv4 UDP listener")
    }

    pub(crate) fn tcp(&self) -> SocketAddr {
        *self.addrs.tcp.first().expect("a TCP listener")
    }

    pub(crate) fn tls(&self) -> SocketAddr {
        *self.addrs.tls.first().expect("a TLS listener")
    }

    pub(crate) fn admin(&self) -> SocketAddr {
        self.addrs.admin.expect("an admin listener")
    }

    /// What the server logged to stderr so far.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether the process catches SIGTERM yet (Linux `/proc/PID/status`, `SigCgt` bit 15).
    pub(crate) fn catches_sigterm(&self) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status (`None` if it did not exit).
    pub(crate) fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops this process (SIGKILL) and gives back its home, for CLI commands against the
    /// stopped server's store and a later [`Server::start`].
    pub(crate) fn stop(mut self) -> Arc<Home> {
        self.kill();
        self.home.clone()
    }

    /// Stops this process (SIGKILL) and starts `serve` again in the same home.
    pub(crate) fn restart(mut self) -> Self {
        self.kill();
        Self::start(self.home.clone(), &[])
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server shared by the tests of one module while any of them runs: the first test to ask
/// starts it, the last one to finish drops it (so no process outlives the test binary).
pub(crate) fn shared(
    slot: &'static Mutex<Weak<Server>>,
    make: impl FnOnce() -> Server,
) -> Arc<Server> {
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = guard.upgrade() {
        return server;
    }
    let server = Arc::new(make());
    *guard = Arc::downgrade(&server);
    server
}

fn wait_output(mut child: Child, timeout: Duration) -> Option<std::process::Output> {
    use std::io::Read;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(std::process::Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    })
}
