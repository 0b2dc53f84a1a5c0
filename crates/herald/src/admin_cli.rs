//! The admin commands that work on the directory: `user`, `domain`, `directory`.
//!
//! They open the same store `serve` uses, so they work while the server runs (SQLite in WAL mode
//! takes one writer at a time and the server sees the change at its next lookup).

use std::io::BufRead;

use anyhow::{Context, bail};
use herald_directory::{
    Aor, Credential, Directory, DisplayName, Domain, NewUser, SqliteDirectory, User, UserQuery,
};

use crate::cli::{DirectoryCommand, DomainCommand, UserCommand};
use crate::config::Config;

/// Opens the configured store, creating the data folder and applying migrations as `serve` does.
pub(crate) fn open_directory(config: &Config) -> anyhow::Result<SqliteDirectory> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    let path = config.directory_path();
    SqliteDirectory::open(&path).with_context(|| format!("cannot open {}", path.display()))
}

/// The credential rows stored for a password, in the realm the user's domain uses.
pub(crate) fn password_credentials(
    config: &Config,
    aor: &Aor,
    password: &str,
) -> anyhow::Result<Vec<Credential>> {
    let realm = config.realm_for(aor.domain().as_str());
    herald_frontend::password_credentials(aor, realm, password).context("building credentials")
}

/// A password a person can type: 16 characters from an unambiguous alphabet (≈ 90 bits).
pub(crate) fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

pub(crate) fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let dir = open_directory(config)?;
    match command {
        UserCommand::Add {
            uri,
            display_name,
            password_stdin,
            disabled,
        } => {
            let aor = parse_aor(&uri)?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (random_password(), true)
            };
            let mut new = NewUser::new(aor.clone());
            new.enabled = !disabled;
            if let Some(name) = display_name {
                new.display_name = DisplayName::parse(&name).context("--display-name")?;
            }
            new.credentials = password_credentials(config, &aor, &password)?;
            new.home = assigned_home(homing_topology(config)?.as_ref(), &aor);
            let user = dir
                .add_user(&new)
                .with_context(|| format!("cannot add {aor}"))?;
            println!("added {}", user.aor.to_sip_uri());
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin().lock())
                    .context("reading standard input")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let mut users = parse_import(config, &text)?;
            let topology = homing_topology(config)?;
            for u in &mut users {
                u.home = assigned_home(topology.as_ref(), &u.aor);
            }
            let added = dir
                .add_users(&users)
                .context("import refused; no user was added")?;
            println!("imported {added} users");
        }
        UserCommand::List { domain } => {
            let mut query = UserQuery::first(UserQuery::MAX_PAGE);
            if let Some(d) = domain {
                query = query.in_domain(Domain::parse(&d).context("--domain")?);
            }
            println!("{:<40} {:<8} DISPLAY NAME", "USER", "ENABLED");
            loop {
                let page = dir.list_users(&query).context("listing users")?;
                let Some(last) = page.last() else { break };
                query = query.clone().after(last.aor.clone());
                for u in &page {
                    println!(
                        "{:<40} {:<8} {}",
                        u.aor.to_sip_uri(),
                        if u.enabled { "yes" } else { "no" },
                        u.display_name.as_str()
                    );
                }
            }
        }
        UserCommand::Show { uri } => {
            let aor = parse_aor(&uri)?;
            let user = dir
                .get_user(&aor)?
                .with_context(|| format!("no user {aor}"))?;
            print_user(&user);
            if let Some(topology) = homing_topology(config)? {
                let (pool, member) = topology.home_of(&user.aor.to_string(), user.home.as_deref());
                match &user.home {
                    Some(h) if h.eq_ignore_ascii_case(member.fqdn.as_str()) => {
                        println!("home:         {h}");
                    }
                    Some(h) => println!(
                        "home:         {} (by hash; the stored {h} is no server of the topology)",
                        member.fqdn.as_str()
                    ),
                    None => println!("home:         {} (by hash)", member.fqdn.as_str()),
                }
                println!("pool:         {}", pool.fqdn.as_str());
            }
        }
        UserCommand::Set {
            uri,
            display_name,
            password_stdin,
            enable,
            disable,
        } => {
            let aor = parse_aor(&uri)?;
            if display_name.is_none() && !password_stdin && !enable && !disable {
                bail!(
                    "nothing to change: give --display-name, --password-stdin, --enable or --disable"
                );
            }
            if dir.get_user(&aor)?.is_none() {
                bail!("no user {aor}");
            }
            if let Some(name) = display_name {
                dir.set_display_name(&aor, &DisplayName::parse(&name).context("--display-name")?)?;
            }
            if password_stdin {
                let password = read_password_stdin()?;
                dir.set_credentials(&aor, &password_credentials(config, &aor, &password)?)?;
            }
            if enable || disable {
                dir.set_enabled(&aor, enable)?;
            }
            println!("updated {}", aor.to_sip_uri());
        }
        UserCommand::ClearPreviousMailbox { user, confirm } => {
            return crate::anchor_cli::clear_previous(config, &user, confirm);
        }
        UserCommand::Move { uri, to } => move_user(config, &dir, &uri, &to)?,
        UserCommand::Remove { uri } => {
            let aor = parse_aor(&uri)?;
            dir.remove_user(&aor)
                .with_context(|| format!("cannot remove {aor}"))?;
            println!("removed {}", aor.to_sip_uri());
        }
    }
    Ok(())
}

pub(crate) fn domain(config: &Config, command: DomainCommand) -> anyhow::Result<()> {
    let dir = open_directory(config)?;
    match command {
        DomainCommand::Add { domain } => {
            let d = Domain::parse(&domain).context("domain")?;
            dir.add_domain(&d)
                .with_context(|| format!("cannot add {domain}"))?;
            println!("added {}", d.as_str());
        }
        DomainCommand::List => {
            for d in dir.list_domains()? {
                println!("{}", d.as_str());
            }
        }
        DomainCommand::Remove { domain } => {
            let d = Domain::parse(&domain).context("domain")?;
            dir.remove_domain(&d)
                .with_context(|| format!("cannot remove {domain}"))?;
            println!("removed {}", d.as_str());
        }
    }
    Ok(())
}

pub(crate) fn directory(config: &Config, command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
        DirectoryCommand::Prepare => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("cannot create data folder {}", config.data_dir.display())
            })?;
            let path = config.directory_path();
            let prepared = SqliteDirectory::prepare(&path)
                .with_context(|| format!("cannot prepare {}", path.display()))?;
            if prepared.from == prepared.to {
                println!(
                    "{}: schema version {} is current",
                    path.display(),
                    prepared.to
                );
            } else {
                println!(
                    "{}: schema upgraded from version {} to {}",
                    path.display(),
                    prepared.from,
                    prepared.to
                );
            }
        }
    }
    Ok(())
}

/// Makes sure every configured domain exists and, for `--demo`, that the demo users exist with
/// fresh passwords; returns (user, password) pairs to print.
pub(crate) fn seed(
    config: &Config,
    dir: &dyn Directory,
    demo: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let existing = dir.list_domains()?;
    for name in config.domains() {
        let d = Domain::parse(name).context("[sip] domain")?;
        if !existing.contains(&d) {
            dir.add_domain(&d)
                .with_context(|| format!("cannot add domain {name}"))?;
            tracing::info!(
                domain = name,
                "added the configured domain to the directory"
            );
        }
    }
    let mut printed = Vec::new();
    if demo {
        for (user, name) in [
            ("alice", "Alice Demo"),
            ("bob", "Bob Demo"),
            ("carol", "Carol Demo"),
        ] {
            let aor = parse_aor(&format!("{user}@{}", config.sip.domain))?;
            let password = random_password();
            let credentials = password_credentials(config, &aor, &password)?;
            if dir.get_user(&aor)?.is_some() {
                dir.set_credentials(&aor, &credentials)?;
                dir.set_enabled(&aor, true)?;
            } else {
                let mut new = NewUser::new(aor.clone());
                new.display_name = DisplayName::parse(name)?;
                new.credentials = credentials;
                dir.add_user(&new)?;
            }
            printed.push((aor.to_sip_uri(), password));
        }
    }
    Ok(printed)
}

/// The topology users are homed in when it has several Front End servers, over one pool or
/// more (a single server homes everyone on itself and stores nothing).
fn homing_topology(config: &Config) -> anyhow::Result<Option<herald_discovery::Topology>> {
    let facts = crate::discovery_runtime::ListenerFacts::configured(config);
    let topology = crate::discovery_runtime::topology(config, &facts)?;
    Ok((topology.member_count() > 1).then_some(topology))
}

/// The home a new user is given: the member of the first pool its hash picks, stored so that
/// later changes of the pools do not move the user.
fn assigned_home(topology: Option<&herald_discovery::Topology>, aor: &Aor) -> Option<String> {
    topology.map(|t| t.home_of(&aor.to_string(), None).1.fqdn.as_str().to_owned())
}

/// `herald user move`: homes the user on a server of any pool (`--to` a member FQDN), or on
/// the server a pool's hash picks (`--to` a pool FQDN, Lync's `Move-CsUser -Target`).
fn move_user(config: &Config, dir: &SqliteDirectory, uri: &str, to: &str) -> anyhow::Result<()> {
    let aor = parse_aor(uri)?;
    let topology = homing_topology(config)?
        .context("the topology has a single Front End server: there is nowhere to move users")?;
    let to = to.trim().trim_end_matches('.');
    let target = topology.pools().iter().find_map(|p| {
        p.member(to).or_else(|| {
            p.fqdn
                .as_str()
                .eq_ignore_ascii_case(to)
                .then(|| p.default_home(&aor.to_string()))
        })
    });
    let member = target.with_context(|| {
        let pools: Vec<String> = topology
            .pools()
            .iter()
            .map(|p| {
                let names: Vec<&str> = p.members.iter().map(|m| m.fqdn.as_str()).collect();
                format!("pool {} ({})", p.fqdn.as_str(), names.join(", "))
            })
            .collect();
        format!(
            "{to} is neither a pool nor a member of one: {}",
            pools.join("; ")
        )
    })?;
    dir.set_home(&aor, Some(member.fqdn.as_str()))
        .with_context(|| format!("cannot move {aor}"))?;
    let (pool, _) = topology.home_of(&aor.to_string(), Some(member.fqdn.as_str()));
    println!(
        "moved {} to {} (pool {}); its clients are redirected there at their next REGISTER",
        aor.to_sip_uri(),
        member.fqdn.as_str(),
        pool.fqdn.as_str()
    );
    Ok(())
}

/// Parses an import file into users, naming the line of the first error.
fn parse_import(config: &Config, text: &str) -> anyhow::Result<Vec<NewUser>> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parse = || -> anyhow::Result<NewUser> {
            let mut fields = line.splitn(3, ',');
            let uri = fields.next().unwrap_or_default().trim();
            let password = fields.next().map(str::trim).unwrap_or_default();
            if password.is_empty() {
                bail!("expected `user@domain,password[,Display Name]`");
            }
            let aor = parse_aor(uri)?;
            let mut user = NewUser::new(aor.clone());
            if let Some(name) = fields.next() {
                user.display_name = DisplayName::parse(name.trim()).context("display name")?;
            }
            user.credentials = password_credentials(config, &aor, password)?;
            Ok(user)
        };
        users.push(parse().with_context(|| format!("line {}", n + 1))?);
    }
    Ok(users)
}

fn parse_aor(uri: &str) -> anyhow::Result<Aor> {
    Aor::parse(uri).with_context(|| format!("{uri:?} is not a user address (user@domain)"))
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("the password read from standard input is empty");
    }
    Ok(password)
}

fn print_user(user: &User) {
    println!("uri:          {}", user.aor.to_sip_uri());
    println!("display name: {}", user.display_name.as_str());
    println!("enabled:      {}", if user.enabled { "yes" } else { "no" });
    println!("created:      {}", humantime(user.created_at));
    println!("updated:      {}", humantime(user.updated_at));
    let creds: Vec<String> = user
        .credentials
        .iter()
        .map(|c| format!("{} (realm {})", c.algorithm().as_str(), c.realm()))
        .collect();
    println!(
        "credentials:  {}",
        if creds.is_empty() {
            "none".into()
        } else {
            creds.join(", ")
        }
    );
}

fn humantime(t: std::time::SystemTime) -> String {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => format!("{} (unix seconds)", d.as_secs()),
        Err(_) => "before 1970".to_owned(),
    }
}
