//! The admin commands of the mailbox-anchoring directory: `server`, `dag`, `database`,
//! `mailbox`, `user clear-previous-mailbox`, and the demo backend `mailbox-server`.
//!
//! Every change goes through the store (`herald_anchor::store::apply_change` checks it against
//! the directory's rules first), so it works beside a running `herald serve`, which notices it
//! through the store's change token (see `anchor_runtime`). `database move` records the
//! switchover in the store's event log and active-copy map; a running `serve` carries it out
//! within `[anchor] reload_interval_ms`, and a stopped one resumes there at its next start.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use herald_anchor::active_manager::{ActiveCopy, ActiveManager, ActiveManagerConfig};
use herald_anchor::build::{BuildNumber, ShellRouting};
use herald_anchor::model::{
    ClearConfirmation, Dag, DagName, Database, DatabaseCopy, DatabaseName, ExchangeGuid, Mailbox,
    MailboxType, ModelError, Server, ServerAddress, ServerName, SiteName, SmtpAddress, Topology,
    UserId,
};
use herald_anchor::store::{
    AdminError, AnchorStore, Change, EventRecord, apply_change, clear_previous_mailbox,
};
use herald_directory::SqliteDirectory;

use crate::admin_cli::open_directory;
use crate::config::Config;

/// `herald server ...`: mailbox servers.
#[derive(Debug, Subcommand)]
pub(crate) enum ServerCommand {
    /// Add a mailbox server.
    Add {
        /// Its name (NetBIOS name or FQDN), used in X-BEServer and by every other command.
        name: String,
        /// Where it answers HTTP, `HOST:PORT` (`[v6]:PORT` for IPv6).
        #[arg(long)]
        address: String,
        /// Its Exchange build, such as 15.0.1156.6 (2013 CU11) or 15.1.396.30 (2016 CU1).
        #[arg(long)]
        build: String,
        /// Its Active Directory site.
        #[arg(long)]
        site: Option<String>,
    },
    /// List mailbox servers.
    List,
    /// Remove a mailbox server that no DAG and no database copy uses.
    Remove {
        /// The server's name.
        name: String,
    },
}

/// `herald dag ...`: database availability groups.
#[derive(Debug, Subcommand)]
pub(crate) enum DagCommand {
    /// Add a DAG of 1 to 16 servers.
    Add {
        /// Its name.
        name: String,
        /// Its members, comma-separated (`S1,S2,S3`).
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
    /// List DAGs.
    List,
    /// Remove a DAG that holds no database.
    Remove {
        /// The DAG's name.
        name: String,
    },
}

/// `herald database ...`: mailbox databases, their copies and where they are active.
#[derive(Debug, Subcommand)]
pub(crate) enum DatabaseCommand {
    /// Add a database with its copies.
    Add {
        /// Its name.
        name: String,
        /// The DAG its copies live in; without it, a standalone database of one copy.
        #[arg(long)]
        dag: Option<String>,
        /// Copies as SERVER:PREFERENCE[:COPY_QUEUE_LENGTH], comma-separated
        /// (`S1:1,S2:2,S3:3`); preference 1 is activated first.
        #[arg(long, value_delimiter = ',', required = true)]
        copies: Vec<String>,
    },
    /// List databases: copies, the active copy, each copy's server health (probed now) and
    /// Active Manager's recent events.
    List {
        /// How many recent events to show.
        #[arg(long, default_value_t = 10)]
        events: usize,
        /// Do not probe the servers.
        #[arg(long)]
        no_probe: bool,
    },
    /// Remove a database that holds no mailbox.
    Remove {
        /// The database's name.
        name: String,
    },
    /// Planned switchover: activate the copy on SERVER. A running `herald serve` carries it out
    /// within `[anchor] reload_interval_ms`.
    Move {
        /// The database.
        name: String,
        /// The server whose copy becomes active.
        #[arg(long)]
        to: String,
        /// Move even if SERVER does not answer its health probe now.
        #[arg(long)]
        force: bool,
    },
}

/// `herald mailbox ...`: mailboxes.
#[derive(Debug, Subcommand)]
pub(crate) enum MailboxCommand {
    /// Add a mailbox. For a user mailbox USER is its owner, a directory user (`herald user
    /// add`); for shared and arbitration mailboxes USER is the mailbox's address.
    Add {
        /// The owner (user mailbox) or the mailbox's address (shared, arbitration).
        user: String,
        /// The database holding it.
        #[arg(long)]
        database: String,
        /// What it is for.
        #[arg(long = "type", value_enum, default_value = "user")]
        kind: KindArg,
        /// Its primary SMTP address; USER by default.
        #[arg(long)]
        smtp: Option<String>,
        /// Its ExchangeGuid; a random one by default.
        #[arg(long)]
        guid: Option<String>,
    },
    /// List mailboxes, and users who keep previous-mailbox info.
    List,
    /// Remove a mailbox, named by its owner, address or ExchangeGuid. A user mailbox leaves
    /// previous-mailbox info on its owner, as Exchange does.
    Remove {
        /// Owner, primary SMTP address or ExchangeGuid.
        mailbox: String,
    },
}

/// `--type` of `herald mailbox add`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KindArg {
    /// A person's mailbox.
    User,
    /// A system mailbox; the management shell falls back to it for admins without a mailbox.
    Arbitration,
    /// A mailbox several people open.
    Shared,
}

/// `herald mailbox-server`: a demo mailbox server for tests and demonstrations.
#[derive(Debug, Args)]
pub(crate) struct MailboxServerArgs {
    /// The server name it reports.
    #[arg(long)]
    pub(crate) name: String,
    /// The Exchange build it reports.
    #[arg(long)]
    pub(crate) build: String,
    /// Where to listen (port 0 picks one; the bound address is printed).
    #[arg(long)]
    pub(crate) listen: SocketAddr,
}

/// `herald server ...`.
pub(crate) fn server(config: &Config, command: ServerCommand) -> anyhow::Result<()> {
    let store = open_directory(config)?;
    match command {
        ServerCommand::Add {
            name,
            address,
            build,
            site,
        } => {
            let server = Server {
                name: parse(&name, "server name")?,
                address: parse::<ServerAddress>(&address, "--address")?,
                site: match site {
                    Some(s) => parse(&s, "--site")?,
                    None => SiteName::default_site(),
                },
                build: build
                    .parse::<BuildNumber>()
                    .with_context(|| format!("--build {build:?}"))?,
            };
            let summary = format!(
                "added server {} at {}, build {}, site {}",
                server.name,
                server.address,
                server.build.describe(),
                server.site
            );
            change(&store, Change::AddServer(server))?;
            println!("{summary}");
        }
        ServerCommand::List => {
            let t = load(&store)?;
            println!(
                "{:<16} {:<24} {:<36} {:<24} DAG",
                "NAME", "ADDRESS", "BUILD", "SITE"
            );
            for s in t.servers() {
                println!(
                    "{:<16} {:<24} {:<36} {:<24} {}",
                    s.name.as_str(),
                    s.address.to_string(),
                    s.build.describe(),
                    s.site.as_str(),
                    t.dag_of(&s.name).map_or("-", |d| d.name.as_str())
                );
            }
            let routing = ShellRouting::for_servers(t.servers().map(|s| &s.build));
            if t.servers().next().is_some() {
                println!("management shell: {}", shell_routing(routing));
            }
        }
        ServerCommand::Remove { name } => {
            let n: ServerName = parse(&name, "server name")?;
            change(&store, Change::RemoveServer(n.clone()))?;
            println!("removed server {n}");
        }
    }
    Ok(())
}

/// `herald dag ...`.
pub(crate) fn dag(config: &Config, command: DagCommand) -> anyhow::Result<()> {
    let store = open_directory(config)?;
    match command {
        DagCommand::Add { name, members } => {
            let dag = Dag {
                name: parse(&name, "DAG name")?,
                members: members
                    .iter()
                    .map(|m| parse(m.trim(), "--members"))
                    .collect::<anyhow::Result<_>>()?,
            };
            let summary = format!("added DAG {} with members {}", dag.name, join(&dag.members));
            change(&store, Change::AddDag(dag))?;
            println!("{summary}");
        }
        DagCommand::List => {
            let t = load(&store)?;
            println!("{:<16} MEMBERS", "NAME");
            for d in t.dags() {
                println!("{:<16} {}", d.name.as_str(), join(&d.members));
            }
        }
        DagCommand::Remove { name } => {
            let n: DagName = parse(&name, "DAG name")?;
            change(&store, Change::RemoveDag(n.clone()))?;
            println!("removed DAG {n}");
        }
    }
    Ok(())
}

/// `herald database ...`.
pub(crate) fn database(config: &Config, command: DatabaseCommand) -> anyhow::Result<()> {
    let store = open_directory(config)?;
    match command {
        DatabaseCommand::Add { name, dag, copies } => {
            let database = Database {
                name: parse(&name, "database name")?,
                dag: dag.map(|d| parse(&d, "--dag")).transpose()?,
                copies: copies
                    .iter()
                    .map(|c| parse_copy(c.trim()))
                    .collect::<anyhow::Result<_>>()?,
            };
            let n = database.name.clone();
            change(&store, Change::AddDatabase(database))?;
            let t = load(&store)?;
            let copies = t
                .database(&n)
                .map(|d| copy_list(&d.copies))
                .unwrap_or_default();
            println!("added database {n} with copies {copies}");
        }
        DatabaseCommand::List { events, no_probe } => {
            list_databases(config, &store, events, no_probe)?
        }
        DatabaseCommand::Remove { name } => {
            let n: DatabaseName = parse(&name, "database name")?;
            change(&store, Change::RemoveDatabase(n.clone()))?;
            println!("removed database {n}");
        }
        DatabaseCommand::Move { name, to, force } => {
            move_database(config, &store, &name, &to, force)?;
        }
    }
    Ok(())
}

/// `herald mailbox ...`.
pub(crate) fn mailbox(config: &Config, command: MailboxCommand) -> anyhow::Result<()> {
    let store = open_directory(config)?;
    match command {
        MailboxCommand::Add {
            user,
            database,
            kind,
            smtp,
            guid,
        } => {
            let kind = match kind {
                KindArg::User => MailboxType::User,
                KindArg::Arbitration => MailboxType::Arbitration,
                KindArg::Shared => MailboxType::Shared,
            };
            let owner = match kind {
                MailboxType::User => Some(parse::<UserId>(&user, "user")?),
                _ => None,
            };
            let primary_smtp: SmtpAddress = parse(smtp.as_deref().unwrap_or(&user), "address")?;
            let guid = match guid {
                Some(g) => parse(&g, "--guid")?,
                None => ExchangeGuid::from_random_bytes(rand::random()),
            };
            let mailbox = Mailbox {
                guid,
                primary_smtp,
                owner: owner.clone(),
                kind,
                database: parse(&database, "--database")?,
            };
            let summary = format!(
                "added {kind} mailbox {} (ExchangeGuid {guid}) in database {}{}",
                mailbox.primary_smtp,
                mailbox.database,
                owner
                    .as_ref()
                    .map(|o| format!(", owner {o}"))
                    .unwrap_or_default()
            );
            match apply_change(&store, Change::AddMailbox(mailbox)) {
                Err(AdminError::Model(ModelError::UnknownUser { user })) => bail!(
                    "no user named {user} in the directory; add it first with `herald user add {user}`"
                ),
                other => {
                    other?;
                }
            }
            println!("{summary}");
        }
        MailboxCommand::List => {
            let t = load(&store)?;
            println!(
                "{:<36} {:<40} {:<11} {:<28} DATABASE",
                "EXCHANGEGUID", "PRIMARY SMTP", "TYPE", "OWNER"
            );
            for m in t.mailboxes() {
                println!(
                    "{:<36} {:<40} {:<11} {:<28} {}",
                    m.guid.to_string(),
                    m.primary_smtp.as_str(),
                    m.kind.as_str(),
                    m.owner.as_ref().map_or("-", UserId::as_str),
                    m.database
                );
            }
            let previous: Vec<_> = t
                .users()
                .filter_map(|u| u.previous_mailbox.as_ref().map(|p| (&u.id, p)))
                .collect();
            if !previous.is_empty() {
                println!("previous-mailbox info:");
                for (user, p) in previous {
                    println!(
                        "  {user}: ExchangeGuid {}, database {}, {}",
                        p.exchange_guid, p.database, p.recipient_type
                    );
                }
            }
        }
        MailboxCommand::Remove { mailbox } => {
            let t = load(&store)?;
            let found = find_mailbox(&t, &mailbox).with_context(|| {
                format!("no mailbox {mailbox} (give an owner, address or ExchangeGuid)")
            })?;
            let (guid, address, owner) =
                (found.guid, found.primary_smtp.clone(), found.owner.clone());
            let kind = found.kind;
            change(&store, Change::RemoveMailbox(guid))?;
            println!("removed {kind} mailbox {address} (ExchangeGuid {guid})");
            if let (MailboxType::User, Some(owner)) = (kind, owner) {
                println!(
                    "{owner} keeps previous-mailbox info (clear it with `herald user clear-previous-mailbox {owner} --confirm`)"
                );
            }
        }
    }
    Ok(())
}

/// `herald user clear-previous-mailbox USER [--confirm]`.
pub(crate) fn clear_previous(config: &Config, user: &str, confirm: bool) -> anyhow::Result<()> {
    let store = open_directory(config)?;
    let id: UserId = parse(user, "user")?;
    let confirmation = confirm.then(|| ClearConfirmation::permanently_clear(&id));
    if !confirm
        && let Some(p) = load(&store)?
            .user(&id)
            .and_then(|u| u.previous_mailbox.clone())
    {
        eprintln!(
            "{id} has previous-mailbox info: ExchangeGuid {}, database {}, {}",
            p.exchange_guid, p.database, p.recipient_type
        );
    }
    let audit = clear_previous_mailbox(
        &store,
        &id,
        confirmation.as_ref(),
        &actor(),
        SystemTime::now(),
    )?;
    println!(
        "cleared the previous-mailbox info of {id} (ExchangeGuid {}, database {}, {})",
        audit.cleared.exchange_guid, audit.cleared.database, audit.cleared.recipient_type
    );
    println!("audit: {audit}");
    Ok(())
}

/// `herald mailbox-server`: serves the demo backend until SIGINT or SIGTERM. Needs no config.
pub(crate) fn mailbox_server(args: &MailboxServerArgs) -> anyhow::Result<()> {
    let name: ServerName = parse(&args.name, "--name")?;
    let build: BuildNumber = args
        .build
        .parse()
        .with_context(|| format!("--build {:?}", args.build))?;
    crate::init_logging("info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mailbox-server")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT")?;
        println!("listening mailbox-server {addr}");
        println!("mailbox server {name} (build {}) ready", build.describe());
        println!("ready");
        tokio::select! {
            result = herald_anchor::backend::run_backend(name, build, listener) => {
                result.context("mailbox server failed")?;
            }
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        Ok(())
    })
}

fn list_databases(
    config: &Config,
    store: &SqliteDirectory,
    events: usize,
    no_probe: bool,
) -> anyhow::Result<()> {
    let t = load(store)?;
    let active: std::collections::HashMap<DatabaseName, ActiveCopy> =
        store.load_active_copies()?.into_iter().collect();
    let health: std::collections::HashMap<ServerName, String> = if no_probe {
        Default::default()
    } else {
        probe_all(config, &t)
    };
    println!(
        "{:<16} {:<12} {:<16} {:<9} COPIES (server:preference health)",
        "NAME", "DAG", "ACTIVE", "MAILBOXES"
    );
    for d in t.databases() {
        let active = match active.get(&d.name) {
            Some(ActiveCopy::Mounted(s)) => s.to_string(),
            Some(ActiveCopy::Dismounted) => "dismounted".to_owned(),
            None => "(not placed)".to_owned(),
        };
        let mailboxes = t.mailboxes().filter(|m| m.database == d.name).count();
        let copies: Vec<String> = d
            .copies
            .iter()
            .map(|c| {
                let mut text = format!("{}:{}", c.server, c.activation_preference);
                if let Some(q) = c.copy_queue_length {
                    text.push_str(&format!(" queue={q}"));
                }
                if let Some(h) = health.get(&c.server) {
                    text.push_str(&format!(" [{h}]"));
                }
                text
            })
            .collect();
        println!(
            "{:<16} {:<12} {:<16} {:<9} {}",
            d.name.as_str(),
            d.dag.as_ref().map_or("-", DagName::as_str),
            active,
            mailboxes,
            copies.join(", ")
        );
    }
    if events > 0 {
        let log = store.recent_events(events)?;
        println!("recent Active Manager events (oldest first):");
        if log.is_empty() {
            println!("  none");
        }
        for e in log {
            println!("  {}  {}", utc(e.at), e.message);
        }
    }
    Ok(())
}

/// Records a planned switchover after the checks Active Manager would make.
fn move_database(
    config: &Config,
    store: &SqliteDirectory,
    name: &str,
    to: &str,
    force: bool,
) -> anyhow::Result<()> {
    let database: DatabaseName = parse(name, "database name")?;
    let target: ServerName = parse(to, "--to")?;
    let t = load(store)?;
    if !force
        && let Some(server) = t.server(&target)
        && let Err(why) = probe_once(config, &server.address)
    {
        bail!(
            "server {target} does not answer its health probe ({why}); not moving {database} \
             (--force moves it anyway)"
        );
    }
    let now = Instant::now();
    let mut am = ActiveManager::restore(
        std::sync::Arc::new(t),
        ActiveManagerConfig::default(),
        store.load_active_copies()?,
        now,
    );
    while am.poll_event().is_some() {}
    am.move_database(now, &database, &target)
        .with_context(|| format!("cannot move {database}"))?;
    let mut from = None;
    while let Some(event) = am.poll_event() {
        let mut record = EventRecord::from_event(&event, SystemTime::now());
        record.message = format!(
            "{} requested by {} (herald database move)",
            record.message,
            actor()
        );
        if from.is_none() {
            from = Some(record.message.clone());
        }
        store.record_event(&record)?;
    }
    println!("database {database}: switchover to {target} recorded");
    if let Some(message) = from {
        println!("  {message}");
    }
    println!(
        "a running herald serve carries it out within {} ms; a stopped one starts there",
        config.anchor.reload_interval_ms
    );
    Ok(())
}

/// Probes every server at once (one thread each), for `database list`.
fn probe_all(config: &Config, t: &Topology) -> std::collections::HashMap<ServerName, String> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = t
            .servers()
            .map(|s| {
                let address = s.address.clone();
                let name = s.name.clone();
                scope.spawn(move || {
                    let health = match probe_once(config, &address) {
                        Ok(()) => "up".to_owned(),
                        Err(why) => format!("down: {why}"),
                    };
                    (name, health)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// One blocking GET of the probe path; Ok for a 2xx status.
fn probe_once(config: &Config, address: &ServerAddress) -> Result<(), String> {
    let timeout = Duration::from_millis(config.anchor.probe_timeout_ms.min(CLI_PROBE_TIMEOUT_MS));
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(address.host(), address.port()))
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: herald-cli\r\nConnection: close\r\n\r\n",
        config.anchor.probe_path
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    let status = std::str::from_utf8(&head[..read])
        .ok()
        .and_then(|h| h.strip_prefix("HTTP/1."))
        .and_then(|h| h.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| "not an HTTP answer".to_owned())?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

fn find_mailbox<'t>(t: &'t Topology, text: &str) -> Option<&'t Mailbox> {
    if let Ok(guid) = text.parse::<ExchangeGuid>() {
        return t.mailbox(&guid);
    }
    let address: SmtpAddress = text.parse().ok()?;
    t.mailbox_by_smtp(&address)
        .or_else(|| t.own_mailbox(&UserId::from(&address)))
}

fn parse_copy(text: &str) -> anyhow::Result<DatabaseCopy> {
    let mut parts = text.split(':');
    let (Some(server), Some(preference)) = (parts.next(), parts.next()) else {
        bail!("--copies {text:?}: expected SERVER:PREFERENCE[:COPY_QUEUE_LENGTH]");
    };
    let copy_queue_length = parts
        .next()
        .map(|q| q.parse::<u64>())
        .transpose()
        .with_context(|| format!("--copies {text:?}: the copy queue length is not a number"))?;
    if parts.next().is_some() {
        bail!("--copies {text:?}: expected SERVER:PREFERENCE[:COPY_QUEUE_LENGTH]");
    }
    Ok(DatabaseCopy {
        server: parse(server, "--copies server")?,
        activation_preference: preference
            .parse()
            .with_context(|| format!("--copies {text:?}: the preference is not a number"))?,
        copy_queue_length,
    })
}

/// Applies one change, with the directory's own message on refusal.
fn change(store: &SqliteDirectory, change: Change) -> anyhow::Result<()> {
    apply_change(store, change)?;
    Ok(())
}

fn load(store: &SqliteDirectory) -> anyhow::Result<Topology> {
    store
        .load_topology()
        .context("cannot load the anchoring directory")
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse::<T>()
        .with_context(|| format!("{what} {text:?} is not valid"))
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn copy_list(copies: &[DatabaseCopy]) -> String {
    copies
        .iter()
        .map(|c| format!("{}:{}", c.server, c.activation_preference))
        .collect::<Vec<_>>()
        .join(",")
}

fn shell_routing(routing: ShellRouting) -> String {
    match routing {
        ShellRouting::Anchored => {
            "anchored to the admin's mailbox (every server is at or above 2013 CU11 / 2016 CU1)"
                .to_owned()
        }
        ShellRouting::VersionBased { oldest } => format!(
            "version-based (server build {} is older than 2013 CU11 / 2016 CU1)",
            oldest.describe()
        ),
    }
}

/// Who ran the command, for the audit log and the event log.
fn actor() -> String {
    match std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")) {
        Ok(u) if !u.is_empty() => format!("cli:{u}"),
        _ => "cli".to_owned(),
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmmZ` for a wall-clock time.
fn utc(at: SystemTime) -> String {
    let Ok(since) = at.duration_since(UNIX_EPOCH) else {
        return "before 1970".to_owned();
    };
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Longest a CLI health probe waits, whatever `probe_timeout_ms` says.
const CLI_PROBE_TIMEOUT_MS: u64 = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_parse_with_and_without_queue_length() {
        let c = parse_copy("EX1:2").expect("valid");
        assert_eq!((c.server.as_str(), c.activation_preference), ("ex1", 2));
        assert_eq!(c.copy_queue_length, None);
        assert_eq!(
            parse_copy("ex1:1:40").expect("valid").copy_queue_length,
            Some(40)
        );
        assert!(parse_copy("ex1").is_err());
        assert!(parse_copy("ex1:x").is_err());
        assert!(parse_copy("ex1:1:2:3").is_err());
    }

    #[test]
    fn utc_formats_civil_time() {
        let at = UNIX_EPOCH + Duration::from_millis(1_450_000_000_123);
        assert_eq!(utc(at), "2015-12-13 09:46:40.123Z");
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00.000Z");
    }
}
