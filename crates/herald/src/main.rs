//! The `herald` binary: configuration, command line, and the tokio runtime around the protocol
//! cores.

mod admin;
mod admin_cli;
mod anchor_cli;
mod anchor_runtime;
mod cli;
mod config;
mod discovery_cli;
mod discovery_runtime;
mod group_commit;
mod presence_cli;
mod presence_runtime;
mod registration_writer;
mod serve;
mod sip_runtime;
mod subscription_writer;
mod tls;
mod transport;
mod user_cache;

use std::process::ExitCode;

/// mimalloc: the request path allocates many small short-lived buffers, which glibc's
/// allocator serves markedly slower under two threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Discover(args) = &cli.command {
        return discovery_cli::discover(args);
    }
    if let Command::MailboxServer(args) = &cli.command {
        return anchor_cli::mailbox_server(args);
    }
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve(args) => {
            init_logging(&config.log.filter);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("herald")
                .build()?;
            runtime.block_on(serve::serve(config, args))
        }
        Command::User(c) => admin_cli::user(&config, c),
        Command::Domain(c) => admin_cli::domain(&config, c),
        Command::Directory(c) => admin_cli::directory(&config, c),
        Command::Dns(c) => discovery_cli::dns(&config, c),
        Command::Cert(c) => discovery_cli::cert(&config, c),
        Command::Server(c) => anchor_cli::server(&config, c),
        Command::Dag(c) => anchor_cli::dag(&config, c),
        Command::Database(c) => anchor_cli::database(&config, c),
        Command::Mailbox(c) => anchor_cli::mailbox(&config, c),
        Command::Presence(c) => presence_cli::presence(&config, c),
        Command::Contact(c) => presence_cli::contact(&config, c),
        Command::Discover(_) | Command::MailboxServer(_) => Ok(()),
    }
}

fn init_logging(filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}
