//! The discovery commands: `dns records`, `cert request`, `discover`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use herald_discovery::View;
use herald_discovery::certificate::CertificateNames;
use herald_discovery::walk::{DiscoverOptions, discover as walk};

use crate::cli::{CertCommand, DiscoverArgs, DnsCommand, RecordFormat, ViewArg};
use crate::config::Config;
use crate::discovery_runtime::{ListenerFacts, topology};

pub(crate) fn dns(config: &Config, command: DnsCommand) -> anyhow::Result<()> {
    let DnsCommand::Records { view, format } = command;
    let topology = topology(config, &ListenerFacts::configured(config))?;
    let view = view.map(|v| match v {
        ViewArg::Internal => View::Internal,
        ViewArg::External => View::External,
    });
    let records = topology.records();
    match format {
        RecordFormat::Table => print!("{}", records.render_table(view)),
        RecordFormat::Zone => {
            for v in view.map_or_else(|| vec![View::Internal, View::External], |v| vec![v]) {
                print!("{}", records.render_zone(v));
            }
        }
    }
    Ok(())
}

pub(crate) fn cert(config: &Config, command: CertCommand) -> anyhow::Result<()> {
    let CertCommand::Request { pool } = command;
    let topology = topology(config, &ListenerFacts::configured(config))?;
    let Some(names) = CertificateNames::for_pool(&topology, pool.as_deref()) else {
        bail!(
            "no pool or member named {:?} in the topology",
            pool.unwrap_or_default()
        );
    };
    print!("{}", names.render_text());
    Ok(())
}

pub(crate) fn discover(args: &DiscoverArgs) -> anyhow::Result<()> {
    let dns = args.dns.as_deref().map(parse_dns_server).transpose()?;
    let options = DiscoverOptions {
        user: args.user.clone(),
        dns,
        mobile: args.mobile,
        ca: args.ca.clone(),
        http_port: args.http_port,
        https_port: args.https_port,
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime
        .block_on(walk(&options))
        .context("discovery could not start")?;
    if args.json {
        println!("{}", report.render_json());
    } else {
        print!("{}", report.render_text());
    }
    // Scripts and monitoring see a failed walk in the exit status; the report says why.
    if report.result.is_none() {
        bail!("no registrar found for {}", args.user);
    }
    Ok(())
}

/// `ADDR`, `ADDR:PORT` or `[V6]:PORT`; port 53 when none is given.
fn parse_dns_server(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: IpAddr = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--dns {text:?} is not an address or address:port"))?;
    Ok(SocketAddr::new(ip, 53))
}
