//! Prints the generated records of a single-box topology, as `herald dns records` will:
//!
//! ```sh
//! cargo run -p herald-discovery --example dns_records -- herald.test 192.0.2.10 table
//! cargo run -p herald-discovery --example dns_records -- herald.test 192.0.2.10 zone internal
//! ```

use std::net::IpAddr;

use herald_discovery::{Topology, View};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let domain = args.next().unwrap_or_else(|| "herald.test".into());
    let address: IpAddr = args.next().unwrap_or_else(|| "127.0.0.1".into()).parse()?;
    let format = args.next().unwrap_or_else(|| "table".into());
    let view: Option<View> = args.next().map(|v| v.parse()).transpose()?;
    let topology = Topology::single_box(&domain, &[address], 5061, Some(5060))?;
    match format.as_str() {
        "zone" => print!(
            "{}",
            topology
                .records()
                .render_zone(view.unwrap_or(View::Internal))
        ),
        _ => print!("{}", topology.records().render_table(view)),
    }
    Ok(())
}
