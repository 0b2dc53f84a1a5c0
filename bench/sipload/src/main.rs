//! `sipload`: load generator for herald. See `bench/README.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use sipload::engine::LoadConfig;
use sipload::engine::Phase;
use sipload::engine::transaction::TimerConfig;
use sipload::fake::{FakeConfig, FakeRegistrar};
use sipload::ramp::{self, Criteria};
use sipload::report::{Stats, Table};
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
    }
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
            .run_phase(Phase {
                rate: args.rate,
                duration: args.duration,
            })
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
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
