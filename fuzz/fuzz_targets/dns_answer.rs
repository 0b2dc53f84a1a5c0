//! DNS queries from the network: the answerer never panics, and an answer fits the transport
//! (512 bytes on UDP without EDNS, 1232 with it, 65535 on TCP).
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use herald_discovery::dns::Transport;
use herald_discovery::{Topology, ZoneSet};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fn zones() -> &'static ZoneSet {
    static ZONES: OnceLock<ZoneSet> = OnceLock::new();
    ZONES.get_or_init(|| {
        let own: IpAddr = [192, 0, 2, 10].into();
        let topology = Topology::single_box("herald.test", &[own], 5061, Some(5060))
            .expect("a valid single-box topology");
        ZoneSet::new(&topology)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut out = Vec::new();
    for (source, transport, limit) in [
        (IpAddr::from([127, 0, 0, 1]), Transport::Udp, 1232),
        (IpAddr::from([203, 0, 113, 9]), Transport::Tcp, 65535),
    ] {
        let _ = zones().answer(data, source, transport, &mut rng, &mut out);
        assert!(out.len() <= limit, "{} bytes over {transport:?}", out.len());
    }
});
