//! Serves the single-box zone of a domain, for load tests with dnsperf:
//!
//! ```sh
//! cargo run --release -p herald-discovery --example dns_server -- 127.0.0.1:5300 herald.test
//! dnsperf -s 127.0.0.1 -p 5300 -d queries.txt -l 20 -c 8 -Q 500000
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use herald_discovery::{Topology, ZoneSet, serve_dns};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5300".into())
        .parse()?;
    let domain = args.next().unwrap_or_else(|| "herald.test".into());
    let own: IpAddr = if addr.ip().is_unspecified() {
        "127.0.0.1".parse()?
    } else {
        addr.ip()
    };
    let topology = Topology::single_box(&domain, &[own], 5061, Some(5060))?;
    let udp = tokio::net::UdpSocket::bind(addr).await?;
    let tcp = tokio::net::TcpListener::bind(udp.local_addr()?).await?;
    println!("serving {domain} on {} (UDP and TCP)", udp.local_addr()?);
    serve_dns(Arc::new(ZoneSet::new(&topology)), vec![udp], vec![tcp]).await;
    Ok(())
}
