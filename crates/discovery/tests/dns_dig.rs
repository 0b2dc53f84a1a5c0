//! Black-box: the DNS server on 127.0.0.1:0, queried with `dig` (Debian `bind9-dnsutils`) over
//! UDP and TCP for every record of both views. The view is chosen by the client's source
//! address, which `dig -b` sets: 127.0.0.2 is internal in this topology, 127.0.0.1 is not.

// Helpers outside #[test] functions count as tests too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use herald_discovery::{LocalServer, Topology, TopologyConfig, View, ZoneSet, serve_dns};
use tokio::net::{TcpListener, UdpSocket};

const INTERNAL_SOURCE: &str = "127.0.0.2";
const EXTERNAL_SOURCE: &str = "127.0.0.1";

fn topology(extra: &str) -> Topology {
    #[derive(serde::Deserialize)]
    struct File {
        topology: TopologyConfig,
    }
    let text = format!(
        r#"[topology]
        tcp_enabled = true
        reverse_proxy = ["203.0.113.20"]
        {extra}
        [topology.edge]
        access = ["203.0.113.10", "2001:db8::10"]
        av = ["203.0.113.11"]
        webconf = ["203.0.113.12"]
        [[topology.pools]]
        fqdn = "pool01.contoso.test"
        members = [
          {{ fqdn = "fe01.contoso.test", addresses = ["10.0.0.11", "fd00::11"] }},
          {{ fqdn = "fe02.contoso.test", addresses = ["10.0.0.12"] }},
        ]
        "#
    );
    let file: File = toml::from_str(&text).expect("test topology parses");
    let local = LocalServer {
        domains: vec!["contoso.test".into()],
        ..LocalServer::default()
    };
    Topology::from_config(&file.topology, &local).expect("test topology is valid")
}

async fn start(topology: &Topology) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    // UDP and TCP on one port: the port the kernel gives UDP may be taken over TCP by another
    // test, so try again with a new one.
    let (udp, tcp, addr) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            break (udp, tcp, addr);
        }
    };
    let zones = Arc::new(ZoneSet::new(topology));
    let task = tokio::spawn(serve_dns(zones, vec![udp], vec![tcp]));
    (addr, task)
}

/// What dig printed: the status, the header flags and the answer section as
/// `name ttl type rdata` lines.
struct Dig {
    status: String,
    flags: String,
    answers: Vec<String>,
    authority: Vec<String>,
}

async fn dig(server: SocketAddr, source: &str, tcp: bool, name: &str, rtype: &str) -> Dig {
    let mut cmd = tokio::process::Command::new("dig");
    cmd.arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-b", source])
        .args([
            "+noall",
            "+answer",
            "+authority",
            "+comments",
            "+tries=1",
            "+time=2",
        ])
        .arg(if tcp { "+tcp" } else { "+notcp" })
        .args([name, rtype]);
    let out = match cmd.output().await {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run dig ({e}): install it with `apt-get install bind9-dnsutils` \
             (scripts/test.sh does this)"
        ),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dig failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{text}"))
        .to_owned();
    let flags = text
        .split("flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .to_owned();
    let mut answers = Vec::new();
    let mut authority = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
        } else if line.is_empty() || line.starts_with(';') {
            if line.is_empty() {
                section = "";
            }
        } else {
            let f: Vec<&str> = line.split_whitespace().collect();
            let rr = format!("{} {} {} {}", f[0], f[1], f[3], f[4..].join(" "));
            match section {
                "answer" => answers.push(rr),
                "authority" => authority.push(rr),
                _ => {}
            }
        }
    }
    answers.sort();
    Dig {
        status,
        flags,
        answers,
        authority,
    }
}

/// Every (name, type) of a view with the answer lines dig should print.
fn expected(topology: &Topology, view: View) -> Vec<(String, String, Vec<String>)> {
    let mut keys: Vec<(String, &'static str)> = Vec::new();
    for r in topology.records().view(view) {
        let key = (r.name.to_string(), r.data.type_name());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(name, rtype)| {
            let mut lines: Vec<String> = topology
                .records()
                .lookup(view, &name)
                .filter(|r| r.data.type_name() == rtype)
                .map(|r| format!("{}. {} {} {}", r.name, r.ttl, rtype, r.data))
                .collect();
            lines.sort();
            (name, rtype.to_owned(), lines)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_gets_every_record_of_both_views_over_udp_and_tcp() {
    let t = topology(r#"internal_networks = ["127.0.0.2/32"]"#);
    let (server, task) = start(&t).await;
    let mut checked = 0;
    for (view, source) in [
        (View::Internal, INTERNAL_SOURCE),
        (View::External, EXTERNAL_SOURCE),
    ] {
        for (name, rtype, lines) in expected(&t, view) {
            for tcp in [false, true] {
                let got = dig(server, source, tcp, &name, &rtype).await;
                assert_eq!(got.status, "NOERROR", "{view} {name} {rtype} tcp={tcp}");
                assert!(
                    got.flags.split_whitespace().any(|f| f == "aa"),
                    "{name}: {}",
                    got.flags
                );
                // SOA rdata is printed identically by dig; compare everything.
                assert_eq!(got.answers, lines, "{view} {name} {rtype} tcp={tcp}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} queries");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_the_view_of_its_source_address() {
    let t = topology(r#"internal_networks = ["127.0.0.2/32"]"#);
    let (server, task) = start(&t).await;
    let inside = dig(server, INTERNAL_SOURCE, false, "sip.contoso.test", "A").await;
    assert_eq!(inside.answers.len(), 2);
    assert!(
        inside.answers.iter().all(|a| a.contains(" 10.0.0.1")),
        "{:?}",
        inside.answers
    );
    let outside = dig(server, EXTERNAL_SOURCE, false, "sip.contoso.test", "A").await;
    assert_eq!(outside.answers, ["sip.contoso.test. 300 A 203.0.113.10"]);
    // lyncdiscoverinternal exists only inside: this is how a Lync client learns it is outside.
    let hidden = dig(
        server,
        EXTERNAL_SOURCE,
        true,
        "lyncdiscoverinternal.contoso.test",
        "A",
    )
    .await;
    assert_eq!(hidden.status, "NXDOMAIN");
    task.abort();

    // The default internal networks include loopback: 127.0.0.1 is inside there.
    let (server, task) = start(&topology("")).await;
    let inside = dig(
        server,
        EXTERNAL_SOURCE,
        false,
        "lyncdiscoverinternal.contoso.test",
        "A",
    )
    .await;
    assert_eq!(inside.status, "NOERROR");
    assert_eq!(inside.answers.len(), 2);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_gets_nxdomain_nodata_and_refused() {
    let t = topology("");
    let (server, task) = start(&t).await;
    for tcp in [false, true] {
        let nx = dig(server, EXTERNAL_SOURCE, tcp, "nosuch.contoso.test", "A").await;
        assert_eq!(nx.status, "NXDOMAIN");
        assert!(nx.flags.contains("aa"));
        assert!(
            nx.authority[0]
                .starts_with("contoso.test. 60 SOA ns.contoso.test. hostmaster.contoso.test."),
            "{:?}",
            nx.authority
        );
        let nodata = dig(server, EXTERNAL_SOURCE, tcp, "fe02.contoso.test", "AAAA").await;
        assert_eq!(nodata.status, "NOERROR");
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authority.len(), 1);
        let refused = dig(server, EXTERNAL_SOURCE, tcp, "www.example.org", "A").await;
        assert_eq!(refused.status, "REFUSED");
        assert!(!refused.flags.contains("aa"));
    }
    task.abort();
}
