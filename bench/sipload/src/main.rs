//! `sipload`: load generator for herald. See `bench/README.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use sipload::drive::{self, Criteria as PresenceCriteria, Plan};
use sipload::engine::LoadConfig;
use sipload::engine::Phase;
use sipload::engine::transaction::TimerConfig;
use sipload::fake::{FakeConfig, FakeRegistrar};
use sipload::fake_presence::FakePresence;
use sipload::ramp::{self, Criteria};
use sipload::report::{Stats, Table};
use sipload::scenario::presence::{PresenceConfig, UserFormat};
use sipload::scenario::register::RegisterConfig;

/// Load generator for herald: paced, authenticated SIP traffic from many simulated clients.
#[derive(Debug, Parser)]
#[command(name = "sipload", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Authenticated registrations: REGISTER → 401 → REGISTER with Digest → 200.
    Register(RegisterArgs),
    /// A stand-in registrar that answers 401 then 200 and checks Digest with herald-auth, to
    /// test and calibrate the generator without herald.
    FakeRegistrar(FakeArgs),
    /// Presence (SIP SIMPLE): register, hold subscriptions, step the PUBLISH rate (ETag chains,
    /// NOTIFY fan-out, publish → notify latency) and the one-time query rate up.
    Presence(Box<PresenceArgs>),
    /// A stand-in presence server (SUBSCRIBE/PUBLISH/NOTIFY, no authentication), to test and
    /// calibrate the presence scenario without herald or Kamailio.
    FakePresence(FakePresenceArgs),
}

#[derive(Debug, Args)]
struct PresenceArgs {
    /// The presence server's address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// The domain of every URI (`sip:p7@<domain>`).
    #[arg(long, default_value = "example.com")]
    domain: String,
    /// Presentities (users that publish), names from --presentity-format.
    #[arg(long, default_value_t = 1000)]
    presentities: u32,
    /// Watchers (users that subscribe), names from --watcher-format.
    #[arg(long, default_value_t = 20_000)]
    watchers: u32,
    /// Presentities each watcher subscribes to (its contacts): W × C subscriptions, spread so
    /// that every presentity has W × C / P watchers when W is a multiple of P.
    #[arg(long, default_value_t = 1)]
    contacts: u32,
    /// Presentity user name pattern; `{n}` is the number.
    #[arg(long, default_value = "p{n}")]
    presentity_format: String,
    /// Watcher user name pattern; the same as --presentity-format makes watchers and
    /// presentities the same users (scenario b: users watching each other).
    #[arg(long, default_value = "w{n}")]
    watcher_format: String,
    /// Every user's password, for servers that challenge (herald outside its trusted
    /// networks); without it a challenge is a failure.
    #[arg(long)]
    password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long, conflicts_with = "password")]
    password_file: Option<PathBuf>,
    /// Register every user (presentities and watchers) first, at this rate per second.
    #[arg(long)]
    register_rate: Option<f64>,
    /// Publish once per presentity at this rate before subscribing, so that every initial
    /// NOTIFY carries a published state (the sign-in storm).
    #[arg(long)]
    seed_rate: Option<f64>,
    /// SUBSCRIBEs per second while setting the subscriptions up.
    #[arg(long, default_value_t = 2000.0)]
    subscribe_rate: f64,
    /// Expires of subscriptions and publications, seconds.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// PUBLISH rates to step through, comma-separated (stops at the first not sustained);
    /// empty: no publish phase.
    #[arg(
        long,
        default_value = "500,1000,1400,1800,2000,2400,3000,4000,5000,6000,8000,10000"
    )]
    publish_rates: String,
    /// Length of each publish step.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    publish_duration: Duration,
    /// One-time query rates to step through, comma-separated; empty: none.
    #[arg(
        long,
        default_value = "4000,8000,12000,16000,18000,20000,25000,30000,40000,50000"
    )]
    fetch_rates: String,
    /// Length of each one-time query step.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fetch_duration: Duration,
    /// Clients making one-time queries (each has one query in flight at a time).
    #[arg(long, default_value_t = 4000)]
    fetchers: u32,
    /// Hold the subscriptions this long after setting them up, before the publish steps.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    hold: Duration,
    /// Wait this long after the subscriptions are up before reading memory again.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    settle: Duration,
    /// Shell command printing the server's memory in bytes (or kamcmd core.shmmem output),
    /// run before subscribing and after --settle: gives bytes per subscription.
    #[arg(long)]
    memory_command: Option<String>,
    /// The server's pid: its CPU (with its child processes) is reported per phase.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Pause between steps.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    gap: Duration,
    /// Pause after a failing publish step, for the server to recover before the queries.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    recover: Duration,
    /// A step is sustained below this fraction of failed or unstarted units.
    #[arg(long, default_value_t = 0.001)]
    max_failure_ratio: f64,
    /// ... with at least this fraction of the expected notifications received.
    #[arg(long, default_value_t = 0.999)]
    min_delivery: f64,
    /// ... and publish → notify p99 at most this.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    max_notify_p99: Duration,
    /// ... and (queries) SUBSCRIBE → NOTIFY p99 at most this.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    max_p99: Duration,
    /// A publish step ends once no NOTIFY came for this long (or --drain ran out).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    notify_grace: Duration,
    /// Worker threads (each with its own sockets, watchers and publishers).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// UDP sockets per thread.
    #[arg(long, default_value_t = 1)]
    sockets_per_thread: usize,
    /// First local UDP port (one per socket), or 0 for ephemeral ports.
    #[arg(long, default_value_t = 0)]
    local_port: u16,
    /// Socket send/receive buffer to ask the kernel for, bytes.
    #[arg(long, default_value_t = 8 << 20)]
    socket_buffer: usize,
    /// Timer T1: first retransmission interval (doubles up to T2 = 4 s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    t1: Duration,
    /// Timer F: a request without a final response (or a subscription without its NOTIFY) by
    /// then counts as a timeout.
    #[arg(long, default_value = "32s", value_parser = parse_duration)]
    timeout: Duration,
    /// Do not retransmit; only count a timeout after --timeout.
    #[arg(long)]
    no_retransmit: bool,
    /// After the last start of a phase, how long to wait for answers.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    drain: Duration,
}

#[derive(Debug, Args)]
struct FakePresenceArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:5060")]
    listen: SocketAddr,
    /// The domain.
    #[arg(long, default_value = "example.com")]
    domain: String,
    /// Stop after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Challenge every request (401 for REGISTER, 407 for the rest) and check the Digest
    /// response for this password.
    #[arg(long)]
    password: Option<String>,
}

#[derive(Debug, Args)]
struct RegisterArgs {
    /// The registrar's address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// The SIP domain users register in (also the Digest uri `sip:<domain>`).
    #[arg(long, default_value = "herald.test")]
    domain: String,
    /// Simulated clients, user names from --user-format with n = 0..users-1.
    #[arg(long, default_value_t = 1000)]
    users: u32,
    /// User name pattern; `{n}` is the client number.
    #[arg(long, default_value = "load{n}")]
    user_format: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// Registrations started per second (open loop), or the first step's rate with --step.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to start registrations (each step's length with --step): 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Worker threads; it shares the machine with the server, so 1 by default.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// UDP sockets per thread.
    #[arg(long, default_value_t = 1)]
    sockets_per_thread: usize,
    /// First local UDP port (one per socket), or 0 for ephemeral ports. Fixed ports keep each
    /// user's Contact the same across runs, so the registrar replaces its binding instead of
    /// adding one per run (herald allows 8 per user).
    #[arg(long, default_value_t = 0)]
    local_port: u16,
    /// Keep each client's nonce and send later REGISTERs with credentials at once, nc + 1.
    #[arg(long)]
    reuse_nonce: bool,
    /// Registration interval asked for (Contact expires and Expires).
    #[arg(long, default_value_t = 600)]
    expires: u32,
    /// Transport (UDP only for now).
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    transport: Transport,
    /// Timer T1: first retransmission interval (doubles up to T2 = 4 s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    t1: Duration,
    /// Timer F: a transaction without a final response by then counts as a timeout.
    #[arg(long, default_value = "32s", value_parser = parse_duration)]
    timeout: Duration,
    /// Do not retransmit; only count a timeout after --timeout (e.g. --no-retransmit
    /// --timeout 1s).
    #[arg(long)]
    no_retransmit: bool,
    /// After the last start, how long to wait for answers before counting units unfinished.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    drain: Duration,
    /// Most registrations in progress at once (default: --users, i.e. every client busy).
    #[arg(long)]
    max_outstanding: Option<usize>,
    /// Socket send/receive buffer to ask the kernel for, bytes.
    #[arg(long, default_value_t = 4 << 20)]
    socket_buffer: usize,
    /// Step mode: after each --duration, raise the rate by this much while the server keeps up.
    #[arg(long)]
    step: Option<f64>,
    /// Step mode: the last rate to try.
    #[arg(long, default_value_t = 100_000.0)]
    max_rate: f64,
    /// Step mode: a step is sustained below this fraction of failed or unstarted registrations.
    #[arg(long, default_value_t = 0.001)]
    max_failure_ratio: f64,
    /// Step mode: ... and with p99 of the authenticated REGISTER → 200 at most this.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    max_p99: Duration,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct PasswordArgs {
    /// Every user's password (`{n}` is replaced by the client number).
    #[arg(long)]
    password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FakeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:5060")]
    listen: SocketAddr,
    /// The realm (the domain clients register in).
    #[arg(long, default_value = "herald.test")]
    domain: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// Threads answering.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Nonce lifetime (short ones exercise stale re-challenges).
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    nonce_lifetime: Duration,
    /// Drop every k-th request (0: none), to exercise retransmission.
    #[arg(long, default_value_t = 0)]
    drop_every: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    Udp,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Register(args) => register(args),
        Command::FakeRegistrar(args) => fake_registrar(args),
        Command::Presence(args) => presence(*args),
        Command::FakePresence(args) => fake_presence(args),
    }
}

fn presence(args: PresenceArgs) -> anyhow::Result<()> {
    let Some(mut config) = PresenceConfig::new(
        &args.domain,
        args.presentities,
        args.watchers,
        args.contacts,
        rand::random(),
    ) else {
        bail!("need at least one presentity and no more --contacts than --presentities");
    };
    if args.watchers == 0 || args.contacts == 0 {
        bail!("--watchers and --contacts must be at least 1");
    }
    for (name, rate) in [
        ("--subscribe-rate", Some(args.subscribe_rate)),
        ("--register-rate", args.register_rate),
        ("--seed-rate", args.seed_rate),
    ] {
        if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            bail!("{name} must be a positive number");
        }
    }
    config.presentity_format = UserFormat::new(&args.presentity_format);
    config.watcher_format = UserFormat::new(&args.watcher_format);
    config.password = match (&args.password, &args.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => Some(password(&PasswordArgs {
            password: None,
            password_file: args.password_file.clone(),
        })?),
        (None, None) => None,
    };
    config.expires = args.expires;
    config.fetchers = args.fetchers.max(1);
    config.notify_grace = args.notify_grace;
    let threads = args.threads.max(1);
    let load = LoadConfig {
        server: args.server,
        clients: config.subscriptions(),
        threads,
        sockets_per_thread: args.sockets_per_thread.max(1),
        local_port: args.local_port,
        max_outstanding: usize::MAX / 2,
        socket_buffer: args.socket_buffer,
        timers: TimerConfig {
            t1: args.t1,
            t2: TimerConfig::default().t2.max(args.t1),
            timeout: args.timeout,
            retransmit: !args.no_retransmit,
        },
        drain: args.drain,
    };
    let plan = Plan {
        subscriptions: config.subscriptions(),
        users: config.users(),
        presentities: args.presentities,
        seed_rate: args.seed_rate,
        register_rate: args.register_rate,
        subscribe_rate: args.subscribe_rate,
        settle: args.settle,
        memory_command: args.memory_command.clone(),
        server_pid: args.server_pid,
        publish_rates: rates(&args.publish_rates)?,
        publish_duration: args.publish_duration,
        fetch_rates: rates(&args.fetch_rates)?,
        fetch_duration: args.fetch_duration,
        hold: args.hold,
        gap: args.gap,
        recover: args.recover,
        criteria: PresenceCriteria {
            max_failure_ratio: args.max_failure_ratio,
            min_rate_ratio: PresenceCriteria::default().min_rate_ratio,
            min_delivery: args.min_delivery,
            max_notify_p99: args.max_notify_p99,
            max_p99: args.max_p99,
        },
    };
    println!(
        "sipload presence → {}: {} presentities, {} watchers × {} contacts = {} subscriptions, \
         {} thread(s) × {} socket(s), {}",
        args.server,
        args.presentities,
        args.watchers,
        args.contacts,
        config.subscriptions(),
        threads,
        load.sockets_per_thread,
        if config.password.is_some() {
            "Digest when challenged"
        } else {
            "no credentials"
        },
    );
    let mut runner = sipload::presence_runner(&load, config)
        .with_context(|| format!("opening UDP sockets towards {}", args.server))?;
    let outcome = drive::run(&mut runner, &plan);
    runner.stop();
    Ok(outcome?)
}

/// `1000,2000 3000` → [1000, 2000, 3000].
fn rates(text: &str) -> anyhow::Result<Vec<f64>> {
    text.split([',', ' '])
        .filter(|t| !t.is_empty())
        .map(|t| match t.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
            _ => bail!("`{t}` is not a positive rate"),
        })
        .collect()
}

fn fake_presence(args: FakePresenceArgs) -> anyhow::Result<()> {
    let fake = FakePresence::start(args.listen, &args.domain, args.password.as_deref())
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "fake presence server on {} for {:?}",
        fake.local_addr(),
        args.duration
    );
    std::thread::sleep(args.duration);
    let s = fake.stop();
    println!("fake presence: {s:?}");
    Ok(())
}

fn register(args: RegisterArgs) -> anyhow::Result<()> {
    if args.users == 0 {
        bail!("--users must be at least 1");
    }
    if args.users > 1 && !args.user_format.contains("{n}") {
        bail!("--user-format must contain {{n}} when there is more than one user");
    }
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number");
    }
    let threads = args.threads.clamp(1, args.users as usize);
    let load = LoadConfig {
        server: args.server,
        clients: args.users,
        threads,
        sockets_per_thread: args.sockets_per_thread.max(1),
        local_port: args.local_port,
        max_outstanding: args.max_outstanding.unwrap_or(args.users as usize),
        socket_buffer: args.socket_buffer,
        timers: TimerConfig {
            t1: args.t1,
            t2: TimerConfig::default().t2.max(args.t1),
            timeout: args.timeout,
            retransmit: !args.no_retransmit,
        },
        drain: args.drain,
    };
    let config = RegisterConfig {
        domain: args.domain.clone(),
        user_format: args.user_format.clone(),
        password: password(&args.password)?,
        expires: args.expires,
        reuse_nonce: args.reuse_nonce,
        run: rand::random(),
    };
    let title = format!(
        "sipload register → {} ({:?}): {} users, {} thread(s) × {} socket(s), reuse-nonce {}, {}",
        args.server,
        args.transport,
        args.users,
        threads,
        load.sockets_per_thread,
        if args.reuse_nonce { "on" } else { "off" },
        if args.no_retransmit {
            format!("no retransmission, timeout {:?}", args.timeout)
        } else {
            format!("T1 {:?}, timeout {:?}", args.t1, args.timeout)
        },
    );
    let mut runner = sipload::register_runner(&load, config)
        .with_context(|| format!("opening UDP sockets towards {}", args.server))?;
    let outcome = match args.step {
        None => runner
            .run_phase(Phase::new(args.rate, args.duration))
            .map(|stats| {
                print!(
                    "{}",
                    Table {
                        title: &title,
                        stats: &stats
                    }
                );
                println!("{}", stats.result_line("register"));
            }),
        Some(step) => step_mode(&mut runner, &args, step, &title),
    };
    runner.stop();
    Ok(outcome?)
}

fn step_mode(
    runner: &mut sipload::engine::Runner,
    args: &RegisterArgs,
    step: f64,
    title: &str,
) -> std::io::Result<()> {
    let criteria = Criteria {
        max_failure_ratio: args.max_failure_ratio,
        max_p99: args.max_p99,
    };
    println!("{title}");
    println!(
        "  step: {:?} each, sustained = failures + not started < {:.3} % and p99 ≤ {:?}",
        args.duration,
        100.0 * criteria.max_failure_ratio,
        criteria.max_p99
    );
    println!(
        "  {:>9} {:>11} {:>9} {:>9} {:>9} {:>10} {:>9} {:>11}  sustained",
        "offered/s",
        "completed/s",
        "p50 µs",
        "p99 µs",
        "max µs",
        "failures",
        "timeouts",
        "not started"
    );
    let mut last: Option<Stats> = None;
    let best = ramp::ramp(
        runner,
        ramp::steps(args.rate, step, args.max_rate),
        args.duration,
        criteria,
        |s, ok| {
            println!(
                "  {:>9.0} {:>11.1} {:>9} {:>9} {:>9} {:>10} {:>9} {:>11}  {}",
                s.offered_rate,
                s.completed_rate(),
                s.auth_latency.quantile(0.5),
                s.auth_latency.quantile(0.99),
                s.auth_latency.max(),
                s.failures(),
                s.timeouts,
                s.not_started,
                if ok { "yes" } else { "no" }
            );
            if ok {
                last = Some(s.clone());
            }
        },
    )?;
    match (best, last) {
        (Some(rate), Some(stats)) => {
            println!("  highest sustained step: {rate:.0}/s");
            println!("{}", stats.result_line("register"));
            println!("RESULT ramp sustained={rate:.0}");
        }
        _ => {
            println!("  no step sustained");
            println!("RESULT ramp sustained=0");
        }
    }
    Ok(())
}

fn fake_registrar(args: FakeArgs) -> anyhow::Result<()> {
    let config = FakeConfig {
        threads: args.threads,
        nonce_lifetime: args.nonce_lifetime,
        drop_every: args.drop_every,
        ..FakeConfig::new(args.listen, &args.domain, &password(&args.password)?)
    };
    let fake =
        FakeRegistrar::start(config).with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "fake registrar on {} for {:?}",
        fake.local_addr(),
        args.duration
    );
    std::thread::sleep(args.duration);
    let s = fake.stop();
    println!(
        "fake registrar: {} requests, {} challenged, {} accepted, {} stale, {} refused, {} malformed, {} dropped",
        s.requests, s.challenged, s.accepted, s.stale, s.refused, s.malformed, s.dropped
    );
    Ok(())
}

fn password(args: &PasswordArgs) -> anyhow::Result<String> {
    match (&args.password, &args.password_file) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(text.lines().next().unwrap_or_default().to_owned())
        }
        (None, None) => bail!("give --password or --password-file"),
    }
}

/// `10s`, `500ms`, `1.5s`, `2m`, `250us`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s or 500ms"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit `{other}` (use us, ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn rate_lists() {
        assert_eq!(rates("1000,2000 3000").unwrap(), [1000.0, 2000.0, 3000.0]);
        assert!(rates("").unwrap().is_empty());
        assert!(rates("1,x").is_err());
        assert!(rates("0").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
