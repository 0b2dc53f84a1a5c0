//! Command-line interface: `herald [--config FILE] <command>`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// herald: a Lync Server 2013 Front End and Exchange 2013 Client Access look-alike.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about)]
pub(crate) struct Cli {
    /// The configuration file (TOML).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "HERALD_CONFIG",
        default_value = "herald.toml"
    )]
    pub(crate) config: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: SIP registrar over UDP, TCP and TLS, and the admin listener.
    Serve(ServeArgs),
    /// Manage users of the directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the SIP domains the server is authoritative for.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// The live presence of a user (asks the running server).
    #[command(subcommand)]
    Presence(crate::presence_cli::PresenceCommand),
    /// Users' contact lists (through the running server).
    #[command(subcommand)]
    Contact(crate::presence_cli::ContactCommand),
    /// Maintain the directory store itself.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// The DNS records of the deployment, for admins who host DNS elsewhere.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Certificates for the deployment.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Walk a Lync client's server lookup for USER@DOMAIN and print every step: the tool to run
    /// when a client cannot sign in. Needs no config file.
    Discover(DiscoverArgs),
    /// Mailbox servers of the anchoring directory (Exchange Client Access).
    #[command(subcommand)]
    Server(crate::anchor_cli::ServerCommand),
    /// Database availability groups.
    #[command(subcommand)]
    Dag(crate::anchor_cli::DagCommand),
    /// Mailbox databases, their copies, and switchovers.
    #[command(subcommand)]
    Database(crate::anchor_cli::DatabaseCommand),
    /// Mailboxes.
    #[command(subcommand)]
    Mailbox(crate::anchor_cli::MailboxCommand),
    /// Run a demo mailbox server (a backend for the anchoring proxy). Needs no config file.
    MailboxServer(crate::anchor_cli::MailboxServerArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum DnsCommand {
    /// Print the records herald serves.
    Records {
        /// Only one view (both by default).
        #[arg(long, value_enum)]
        view: Option<ViewArg>,
        /// A table, or RFC 1035 zone files.
        #[arg(long, value_enum, default_value = "table")]
        format: RecordFormat,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ViewArg {
    Internal,
    External,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RecordFormat {
    Table,
    Zone,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Print the subject and subject alternative names a CA-issued certificate must carry.
    Request {
        /// The pool (or member) FQDN; the first pool by default.
        #[arg(long)]
        pool: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DiscoverArgs {
    /// The sign-in address, `alice@example.test`.
    pub(crate) user: String,
    /// The DNS server to ask (`ADDR` or `ADDR:PORT`); the system's resolvers by default.
    #[arg(long)]
    pub(crate) dns: Option<String>,
    /// Follow a mobile client's rules: autodiscover only.
    #[arg(long)]
    pub(crate) mobile: bool,
    /// Print JSON: `{"steps": [...], "result": {...}}`.
    #[arg(long)]
    pub(crate) json: bool,
    /// A PEM file of certificates to trust (and pin) for HTTPS autodiscover.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// Port of plain-HTTP autodiscover.
    #[arg(long, default_value_t = 80)]
    pub(crate) http_port: u16,
    /// Port of HTTPS autodiscover.
    #[arg(long, default_value_t = 443)]
    pub(crate) https_port: u16,
    /// Seconds allowed for each step.
    #[arg(long, default_value_t = 5)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Create the demo users (alice, bob, carol) with fresh passwords, printed at start.
    #[arg(long)]
    pub(crate) demo: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user. Without --password-stdin a random password is generated and printed once.
    Add {
        /// The user's SIP address, `sip:alice@example.test` or `alice@example.test`.
        uri: String,
        /// The name other users see.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Create the account disabled: it cannot sign in until enabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Add many users in one transaction, all or none. Each line of FILE (`-` for standard
    /// input) is `user@domain,password[,Display Name]`; empty lines and `#` comments are skipped.
    Import {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
    },
    /// List users.
    List {
        /// Only users of this domain.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show one user.
    Show { uri: String },
    /// Change a user.
    Set {
        uri: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Read a new password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Allow the user to sign in.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Refuse the user's sign-ins (existing credentials are kept).
        #[arg(long)]
        disable: bool,
    },
    /// Home a user on another Front End server, of its pool or another; its clients are
    /// redirected there (301, and autodiscover's Redirect) at their next sign-in.
    Move {
        uri: String,
        /// A member's FQDN, or a pool's FQDN to let that pool's hash pick the member.
        #[arg(long)]
        to: String,
    },
    /// Remove a user and their credentials.
    Remove { uri: String },
    /// Permanently clear a user's previous-mailbox info (Set-User
    /// -PermanentlyClearPreviousMailboxInfo); refused without --confirm, audited.
    ClearPreviousMailbox {
        /// The user, `alice@example.test`.
        user: String,
        /// Confirm the permanent change.
        #[arg(long)]
        confirm: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
    /// Add a SIP domain.
    Add { domain: String },
    /// List SIP domains.
    List,
    /// Remove a SIP domain that has no users.
    Remove { domain: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCommand {
    /// Create or upgrade the directory schema (`serve` does this itself at start).
    Prepare,
}
