//! Discovery through `herald serve`: the split-view DNS zone queried with `dig` (Debian
//! `bind9-dnsutils`) over UDP and TCP, the autodiscover service with `curl` over HTTP and HTTPS,
//! `herald discover` against herald's own DNS with records removed one at a time, and the admin
//! commands `dns records` and `cert request` with the certificate `serve` generates.
//!
//! The view is chosen by the client's source address. With `internal_networks =
//! ["127.0.0.2/32"]`, `dig -b 127.0.0.2` and `curl --interface 127.0.0.2` are inside and
//! 127.0.0.1 is outside. `herald discover` cannot choose its source (it is 127.0.0.1 towards a
//! loopback server), so its walks are put inside or outside by the `internal_networks` of the
//! server they ask.
//!
//! Expected answers are written out from the Lync Server 2013 tables (issue 4), not derived from
//! herald's own record generator; `dig_answers_exactly_what_dns_records_prints` then ties the
//! admin's `herald dns records` output to what the server answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};

use serde::Deserialize;

use crate::support::autodiscover::{
    self, AdAccess, AdJson, JSON, ROOT, Reply, XML, assert_xml, json, xml_attr, xml_links,
};
use crate::support::dns::{Discovery, DiscoverySetup, herald_cli, run, san_dns_names, shared};

const DOMAIN: &str = "herald.test";
/// A client address inside `internal_networks` of the deployment below.
const INSIDE: &str = "127.0.0.2";
/// A client address outside it.
const OUTSIDE: &str = "127.0.0.1";
/// The two Front End servers of the pool.
const FE01: &str = "127.0.0.1";
const FE02: &str = "127.0.0.3";
/// Edge and reverse proxy external addresses (loopback, so nothing leaves the machine).
const ACCESS: &str = "127.0.0.10";
const AV: &str = "127.0.0.11";
const WEBCONF: &str = "127.0.0.12";
const PROXY: &str = "127.0.0.20";
const USER: &str = "alice@herald.test";

/// A deployment like the demo's domain with every role at its own address: a two-server pool,
/// an Edge, a reverse proxy, and 127.0.0.2 as the only inside client network.
fn deployment_topology(extra: &str) -> String {
    format!(
        r#"[topology]
internal_networks = ["{INSIDE}/32"]
reverse_proxy = ["{PROXY}"]
{extra}

[topology.edge]
access = ["{ACCESS}"]
av = ["{AV}"]
webconf = ["{WEBCONF}"]

[[topology.pools]]
fqdn = "pool.{DOMAIN}"
members = [
  {{ fqdn = "fe01.{DOMAIN}", addresses = ["{FE01}"] }},
  {{ fqdn = "fe02.{DOMAIN}", addresses = ["{FE02}"] }},
]
"#
    )
}

/// The deployment's server, shared by the tests that only read from it.
fn deployment() -> Arc<Discovery> {
    static SLOT: Mutex<Weak<Discovery>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        DiscoverySetup::new(DOMAIN, &deployment_topology("")).start()
    })
}

fn fqdn(label: &str) -> String {
    format!("{label}.{DOMAIN}")
}

/// Sorted A RDATA.
fn addrs(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

fn srv(port: u16) -> Vec<String> {
    vec![format!("0 0 {port} sip.{DOMAIN}.")]
}

/// (view, label, type, sorted RDATA); `None` for a name the view must not have.
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    Option<Vec<String>>,
);

/// Every record of the issue's tables for the deployment, per view.
fn expected_tables(d: &Discovery) -> Vec<Expected> {
    let pool = addrs(&[FE01, FE02]);
    let proxy = addrs(&[PROXY]);
    let access = addrs(&[ACCESS]);
    vec![
        // Internal: everything at the Front End pool, SRV to sip.<domain> on the SIP ports.
        ("internal", "lyncdiscoverinternal", "A", Some(pool.clone())),
        ("internal", "sipinternal", "A", Some(pool.clone())),
        ("internal", "sip", "A", Some(pool.clone())),
        ("internal", "dialin", "A", Some(pool.clone())),
        ("internal", "meet", "A", Some(pool.clone())),
        ("internal", "admin", "A", Some(pool.clone())),
        ("internal", "pool", "A", Some(pool)),
        ("internal", "fe01", "A", Some(addrs(&[FE01]))),
        ("internal", "fe02", "A", Some(addrs(&[FE02]))),
        (
            "internal",
            "_sipinternaltls._tcp",
            "SRV",
            Some(srv(d.tls_port())),
        ),
        (
            "internal",
            "_sipinternal._tcp",
            "SRV",
            Some(srv(d.tcp_port())),
        ),
        ("internal", "lyncdiscover", "A", None),
        ("internal", "sipexternal", "A", None),
        ("internal", "access", "A", None),
        ("internal", "av", "A", None),
        ("internal", "webconf", "A", None),
        ("internal", "_sip._tls", "SRV", None),
        ("internal", "_sipfederationtls._tcp", "SRV", None),
        // External: web names at the reverse proxy, SIP at the Access Edge, Lync's Edge ports.
        ("external", "meet", "A", Some(proxy.clone())),
        ("external", "dialin", "A", Some(proxy.clone())),
        ("external", "lyncdiscover", "A", Some(proxy)),
        ("external", "sip", "A", Some(access.clone())),
        ("external", "sipexternal", "A", Some(access.clone())),
        ("external", "access", "A", Some(access)),
        ("external", "av", "A", Some(addrs(&[AV]))),
        ("external", "webconf", "A", Some(addrs(&[WEBCONF]))),
        ("external", "_sip._tls", "SRV", Some(srv(443))),
        ("external", "_sipfederationtls._tcp", "SRV", Some(srv(5061))),
        ("external", "lyncdiscoverinternal", "A", None),
        ("external", "sipinternal", "A", None),
        ("external", "admin", "A", None),
        ("external", "pool", "A", None),
        ("external", "fe01", "A", None),
        ("external", "_sipinternaltls._tcp", "SRV", None),
        ("external", "_sipinternal._tcp", "SRV", None),
    ]
}

fn source_of(view: &str) -> &'static str {
    match view {
        "internal" => INSIDE,
        _ => OUTSIDE,
    }
}

/// Every A and SRV record of the Lync tables, in both views, over UDP and TCP: the right data,
/// TTL 300, the AA bit; and the names of the other view are NXDOMAIN.
#[test]
fn dig_answers_every_record_of_both_views_over_udp_and_tcp() {
    let d = deployment();
    for (view, label, rtype, want) in expected_tables(&d) {
        let name = fqdn(label);
        for tcp in [false, true] {
            let got = d.dig(source_of(view), tcp, &name, rtype);
            let what = format!("{view} {name} {rtype} tcp={tcp}:\n{}", got.text);
            assert!(got.aa(), "AA bit missing: {what}");
            match &want {
                Some(data) => {
                    assert_eq!(got.status, "NOERROR", "{what}");
                    assert_eq!(&got.sorted_data(), data, "{what}");
                    for rr in &got.answers {
                        assert_eq!(rr.name, format!("{name}."), "{what}");
                        assert_eq!(rr.rtype, rtype, "{what}");
                        assert_eq!(rr.ttl, 300, "{what}");
                    }
                }
                None => {
                    assert_eq!(got.status, "NXDOMAIN", "{what}");
                    assert!(got.answers.is_empty(), "{what}");
                }
            }
        }
    }
}

/// What `herald dns records --format zone` prints for each view is exactly what the running
/// server answers in that view (SOA serial included), record set by record set.
#[test]
fn dig_answers_exactly_what_dns_records_prints() {
    dig_matches_dns_records(&deployment());
}

/// Every RRset `herald dns records --format zone` prints for each view, asked with dig in
/// that view over UDP and TCP, gets exactly those records.
fn dig_matches_dns_records(d: &Discovery) {
    let config = d.bound_config();
    for view in ["internal", "external"] {
        let out = herald_cli(
            &config,
            &["dns", "records", "--format", "zone", "--view", view],
        );
        assert!(out.success, "{}: {}", out.command, out.stderr);
        let zone = parse_zone(&out.stdout);
        assert!(
            zone.len() >= 10,
            "{view}: only {} RRsets:\n{}",
            zone.len(),
            out.stdout
        );
        for ((name, rtype), want) in &zone {
            for tcp in [false, true] {
                let got = d.dig(source_of(view), tcp, name, rtype);
                let mut have: Vec<(u32, String)> = got
                    .answers
                    .iter()
                    .map(|r| (r.ttl, r.data.clone()))
                    .collect();
                have.sort();
                assert_eq!(
                    &have, want,
                    "{view} {name} {rtype} tcp={tcp}: dig differs from `dns records`\n{}",
                    got.text
                );
            }
        }
    }
}

/// Two Front End pools of three servers each, and two SIP domains hosted elsewhere (one with
/// its autodiscover URL, one left to the default); this server is `fe01` (by its address).
fn two_pool_topology() -> String {
    format!(
        r#"[topology]
internal_networks = ["{INSIDE}/32"]

[[topology.pools]]
fqdn = "pool01.{DOMAIN}"
members = [
  {{ fqdn = "fe01.{DOMAIN}", addresses = ["{FE01}"] }},
  {{ fqdn = "fe02.{DOMAIN}", addresses = ["{FE02}"] }},
  {{ fqdn = "fe03.{DOMAIN}", addresses = ["127.0.0.4"] }},
]

[[topology.pools]]
fqdn = "pool02.{DOMAIN}"
web_internal = "web02.{DOMAIN}"
web_external = "lyncweb02.{DOMAIN}"
members = [
  {{ fqdn = "fe21.{DOMAIN}", addresses = ["127.0.1.21"] }},
  {{ fqdn = "fe22.{DOMAIN}", addresses = ["127.0.1.22"] }},
  {{ fqdn = "fe23.{DOMAIN}", addresses = ["127.0.1.23"] }},
]

[[topology.remote_domains]]
domain = "fabrikam.test"

[[topology.remote_domains]]
domain = "litware.test"
autodiscover = "https://webdir.litware.test/Autodiscover/AutodiscoverService.svc/root"
"#
    )
}

fn two_pools() -> Arc<Discovery> {
    static SLOT: Mutex<Weak<Discovery>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        DiscoverySetup::new(DOMAIN, &two_pool_topology()).start()
    })
}

/// Each pool name answers its own servers (DNS load balancing), in an order shuffled per
/// answer; its web services names too (inside the internal name, outside the external one,
/// published by the pool itself without a reverse proxy); the Lync names stay on the first
/// pool. UDP and TCP.
#[test]
fn dig_each_pool_name_answers_its_own_servers_shuffled() {
    let d = two_pools();
    let first = addrs(&[FE01, FE02, "127.0.0.4"]);
    let second = addrs(&["127.0.1.21", "127.0.1.22", "127.0.1.23"]);
    for (view, label, want) in [
        ("internal", "pool01", &first),
        ("internal", "pool02", &second),
        ("internal", "web02", &second),
        ("internal", "sip", &first),
        ("internal", "lyncdiscoverinternal", &first),
        ("external", "lyncweb02", &second),
        ("external", "lyncweb", &first),
    ] {
        for tcp in [false, true] {
            let got = d.dig(source_of(view), tcp, &fqdn(label), "A");
            assert_eq!(
                &got.sorted_data(),
                want,
                "{view} {label} tcp={tcp}:\n{}",
                got.text
            );
        }
    }
    for name in ["pool02", "fe22", "web02"] {
        let got = d.dig(OUTSIDE, false, &fqdn(name), "A");
        assert_eq!(got.status, "NXDOMAIN", "{name} outside:\n{}", got.text);
    }
    for (label, members) in [("pool01", &first), ("pool02", &second)] {
        let mut orders = BTreeSet::new();
        let mut firsts = BTreeSet::new();
        for _ in 0..40 {
            let got = d.dig(INSIDE, false, &fqdn(label), "A");
            firsts.insert(got.data()[0].clone());
            orders.insert(got.data());
        }
        assert!(orders.len() > 1, "{label}: always {orders:?}");
        assert_eq!(
            firsts.len(),
            members.len(),
            "{label}: not every server comes first: {firsts:?}"
        );
    }
}

/// `herald dns records` for two pools: dig answers exactly what it prints, and its table names
/// every server of both pools with its pool.
#[test]
fn dns_records_cover_every_pool() {
    let d = two_pools();
    dig_matches_dns_records(&d);
    let out = herald_cli(&d.bound_config(), &["dns", "records", "--view", "internal"]);
    assert!(out.success, "{}", out.stderr);
    for (server, pool) in [("fe03", "pool01"), ("fe21", "pool02"), ("fe23", "pool02")] {
        let row = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(fqdn(server).as_str()))
            .unwrap_or_else(|| panic!("no row for {server}:\n{}", out.stdout));
        assert!(
            row.contains(&format!("Front End server of {}", fqdn(pool))),
            "{row}"
        );
    }
}

/// [MS-OCDISCWS] 3.1.5.2 and 3.1.5.3 for a SIP domain hosted elsewhere: the root answers a
/// single Redirect to that domain's service, the user resource a User with that one Redirect,
/// in XML and JSON; the URL is the configured one, else the domain's own lyncdiscover name.
#[test]
fn autodiscover_redirects_a_remote_domain_to_its_service() {
    let d = two_pools();
    for (user, next) in [
        (
            "carol@fabrikam.test",
            "https://lyncdiscover.fabrikam.test/Autodiscover/AutodiscoverService.svc/root",
        ),
        (
            "dave@litware.test",
            "https://webdir.litware.test/Autodiscover/AutodiscoverService.svc/root",
        ),
    ] {
        let want = format!("{next}?sipuri={user}");
        for (source, label, location) in SIDES {
            let base = origin(&d, "https", label);
            let ctx = format!("{user} from {source}");
            let root = curl(&d, source, &format!("{base}/?sipuri={user}"), Some(XML));
            assert_xml(&root, location, &ctx);
            assert!(root.body.contains("<Root>"), "{ctx}: {}", root.body);
            assert_eq!(
                xml_links(&root.body),
                [("Redirect".to_owned(), want.clone())],
                "{ctx}"
            );
            let user_url = format!("{base}{ROOT}/user?sipuri={user}");
            let x = curl(&d, source, &user_url, Some(XML));
            assert_xml(&x, location, &ctx);
            assert!(x.body.contains("<User><Link "), "{ctx}: {}", x.body);
            assert_eq!(
                xml_links(&x.body),
                [("Redirect".to_owned(), want.clone())],
                "{ctx}"
            );
            let j = curl(&d, source, &user_url, Some(JSON));
            let doc: AdJson = json(&j.body);
            assert_eq!(doc.hal["redirect"].href, want, "{ctx}");
            let links = doc.user.expect("a User object").links;
            assert_eq!(links.len(), 1, "{ctx}: {}", j.body);
            assert_eq!(
                (links[0].token.as_str(), links[0].href.as_str()),
                ("Redirect", want.as_str())
            );
        }
    }
}

/// SOA and NS at the apex of both views; NXDOMAIN (with the SOA for negative caching) for an
/// unknown name in the zone; NODATA for a type a name lacks; REFUSED, without AA, outside it.
#[test]
fn dig_gets_soa_ns_nxdomain_nodata_and_refused() {
    let d = deployment();
    for (view, ns_addrs) in [
        ("internal", addrs(&[FE01, FE02])),
        ("external", addrs(&[ACCESS])),
    ] {
        let src = source_of(view);
        for tcp in [false, true] {
            let ctx = format!("{view} tcp={tcp}");
            let soa = d.dig(src, tcp, DOMAIN, "SOA");
            assert_eq!(soa.status, "NOERROR", "{ctx}\n{}", soa.text);
            assert!(soa.aa(), "{ctx}\n{}", soa.text);
            assert_eq!(soa.answers.len(), 1, "{ctx}\n{}", soa.text);
            let fields: Vec<&str> = soa.answers[0].data.split_whitespace().collect();
            assert_eq!(fields.len(), 7, "{ctx}\n{}", soa.text);
            assert_eq!(fields[0], format!("ns.{DOMAIN}."), "{ctx}");
            assert_eq!(fields[1], format!("hostmaster.{DOMAIN}."), "{ctx}");
            let minimum: u32 = fields[6].parse().expect("SOA minimum");

            let ns = d.dig(src, tcp, DOMAIN, "NS");
            assert_eq!(ns.status, "NOERROR", "{ctx}\n{}", ns.text);
            assert_eq!(ns.data(), [format!("ns.{DOMAIN}.")], "{ctx}\n{}", ns.text);
            let ns_a = d.dig(src, tcp, &fqdn("ns"), "A");
            assert_eq!(ns_a.sorted_data(), ns_addrs, "{ctx}\n{}", ns_a.text);

            let nx = d.dig(src, tcp, &fqdn("nosuch"), "A");
            assert_eq!(nx.status, "NXDOMAIN", "{ctx}\n{}", nx.text);
            assert!(nx.aa(), "{ctx}\n{}", nx.text);
            assert_eq!(nx.authority.len(), 1, "{ctx}\n{}", nx.text);
            assert_eq!(nx.authority[0].rtype, "SOA", "{ctx}\n{}", nx.text);
            assert_eq!(nx.authority[0].name, format!("{DOMAIN}."), "{ctx}");
            // RFC 2308 §5: the negative TTL is at most the SOA minimum.
            assert!(nx.authority[0].ttl <= minimum, "{ctx}\n{}", nx.text);

            let nodata = d.dig(src, tcp, &fqdn("sip"), "AAAA");
            assert_eq!(nodata.status, "NOERROR", "{ctx}\n{}", nodata.text);
            assert!(nodata.answers.is_empty(), "{ctx}\n{}", nodata.text);
            assert_eq!(nodata.authority.len(), 1, "{ctx}\n{}", nodata.text);
            assert_eq!(nodata.authority[0].rtype, "SOA", "{ctx}");

            for outside_zone in ["www.example.org", "test", "herald.example"] {
                let r = d.dig(src, tcp, outside_zone, "A");
                assert_eq!(r.status, "REFUSED", "{ctx} {outside_zone}\n{}", r.text);
                assert!(!r.aa(), "{ctx} {outside_zone}\n{}", r.text);
                assert!(r.answers.is_empty(), "{ctx}");
            }
        }
    }
}

/// DNS load balancing: a name of a two-server pool answers both addresses every time, in an
/// order that changes from answer to answer.
#[test]
fn pool_names_answer_every_member_in_a_varying_order() {
    let d = deployment();
    let want = addrs(&[FE01, FE02]);
    for label in ["pool", "sip", "lyncdiscoverinternal"] {
        let mut orders = BTreeSet::new();
        for i in 0..24 {
            let tcp = i % 4 == 3;
            let got = d.dig(INSIDE, tcp, &fqdn(label), "A");
            assert_eq!(got.sorted_data(), want, "{label} tcp={tcp}\n{}", got.text);
            orders.insert(got.data());
        }
        // Two orders of two addresses; 24 equal ones from a fair shuffle: p = 2^-23.
        assert_eq!(
            orders.len(),
            2,
            "{label}: the answer order never changed: {orders:?}"
        );
    }
}

/// `lyncdiscover_internal = true`: inside clients resolve lyncdiscover to the reverse proxy (the
/// forward lookup for mobile clients); lyncdiscoverinternal still points at the pool. Without
/// the switch (the shared deployment) lyncdiscover does not exist inside.
#[test]
fn lyncdiscover_internal_answers_the_reverse_proxy_inside() {
    let d =
        DiscoverySetup::new(DOMAIN, &deployment_topology("lyncdiscover_internal = true")).start();
    for tcp in [false, true] {
        let inside = d.dig(INSIDE, tcp, &fqdn("lyncdiscover"), "A");
        assert_eq!(inside.status, "NOERROR", "{}", inside.text);
        assert_eq!(inside.data(), [PROXY], "{}", inside.text);
        let outside = d.dig(OUTSIDE, tcp, &fqdn("lyncdiscover"), "A");
        assert_eq!(outside.data(), [PROXY], "{}", outside.text);
        let internal = d.dig(INSIDE, tcp, &fqdn("lyncdiscoverinternal"), "A");
        assert_eq!(
            internal.sorted_data(),
            addrs(&[FE01, FE02]),
            "{}",
            internal.text
        );
    }
    let without = deployment().dig(INSIDE, false, &fqdn("lyncdiscover"), "A");
    assert_eq!(without.status, "NXDOMAIN", "{}", without.text);
}

/// The demo's single box (`[sip] domain` and listeners, no roles configured): every name of both
/// views at the server's own address, the SRV records on its own SIP TLS port (no Edge, so
/// outside clients are sent to it too).
#[test]
fn single_box_answers_every_name_at_its_own_address() {
    let d = DiscoverySetup::new(
        DOMAIN,
        &format!("[topology]\ninternal_networks = [\"{INSIDE}/32\"]\n"),
    )
    .start();
    let me = vec!["127.0.0.1".to_owned()];
    for label in [
        "lyncdiscoverinternal",
        "sipinternal",
        "sip",
        "dialin",
        "meet",
        "admin",
        "pool",
    ] {
        let got = d.dig(INSIDE, false, &fqdn(label), "A");
        assert_eq!(got.data(), me, "internal {label}\n{}", got.text);
    }
    for label in [
        "lyncdiscover",
        "sip",
        "sipexternal",
        "access",
        "av",
        "webconf",
        "meet",
        "dialin",
    ] {
        let got = d.dig(OUTSIDE, true, &fqdn(label), "A");
        assert_eq!(got.data(), me, "external {label}\n{}", got.text);
    }
    let tls = d.tls_port();
    for (src, label, port) in [
        (INSIDE, "_sipinternaltls._tcp", tls),
        (INSIDE, "_sipinternal._tcp", d.tcp_port()),
        (OUTSIDE, "_sip._tls", tls),
        (OUTSIDE, "_sipfederationtls._tcp", tls),
    ] {
        let got = d.dig(src, false, &fqdn(label), "SRV");
        assert_eq!(got.data(), srv(port), "{label}\n{}", got.text);
    }
}

/// `_sipinternal._tcp` is published only when SIP over TCP is offered: a server without a TCP
/// listener answers NXDOMAIN for it and still publishes `_sipinternaltls._tcp`.
#[test]
fn sipinternal_tcp_srv_exists_only_with_a_tcp_listener() {
    let d = DiscoverySetup::new(DOMAIN, "").without_sip_tcp().start();
    // Default internal networks: loopback is inside.
    for tcp in [false, true] {
        let got = d.dig(OUTSIDE, tcp, &fqdn("_sipinternal._tcp"), "SRV");
        assert_eq!(got.status, "NXDOMAIN", "{}", got.text);
        let tls = d.dig(OUTSIDE, tcp, &fqdn("_sipinternaltls._tcp"), "SRV");
        assert_eq!(tls.data(), srv(d.tls_port()), "{}", tls.text);
    }
}

/// `omit_records` accepts `meet`, `dialin` and `admin` (they are in its list of labels), so the
/// server must stop answering them, as it does for every other label.
#[test]
fn omit_records_removes_the_simple_url_names() {
    let d = DiscoverySetup::new(
        DOMAIN,
        &deployment_topology(r#"omit_records = ["meet", "dialin", "admin"]"#),
    )
    .start();
    for (view, label) in [
        ("internal", "meet"),
        ("internal", "dialin"),
        ("internal", "admin"),
        ("external", "meet"),
        ("external", "dialin"),
    ] {
        let got = d.dig(source_of(view), false, &fqdn(label), "A");
        assert_eq!(
            got.status, "NXDOMAIN",
            "{view} {label} was omitted:\n{}",
            got.text
        );
    }
}

/// `[dns] listen = "127.0.0.1:0"` must start whatever ports other programs use. serve binds the
/// UDP socket on port 0, then the TCP listener on the port UDP got; when another socket holds
/// that port over TCP (a listener, or a client connection's local port), serve exits with
/// "cannot listen on 127.0.0.1:P: Address already in use". Here TCP listeners hold a third of the
/// ephemeral range, so 20 starts all succeed only if serve copes (by chance: 0.68^20 < 0.1 %).
/// In ordinary runs of this module it happened about once in ten runs; `DiscoverySetup::start`
/// retries such starts so the other tests do not inherit the flakiness.
#[test]
fn dns_listener_on_port_0_starts_when_its_udp_port_is_taken_over_tcp() {
    let held: Vec<std::net::TcpListener> = (0..9000)
        .filter_map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    assert!(
        held.len() > 8000,
        "could hold only {} TCP ports",
        held.len()
    );
    let setup = DiscoverySetup::new(DOMAIN, "");
    for attempt in 1..=20 {
        if let Err(e) = setup.try_start() {
            panic!("start {attempt} of 20 failed:\n{e}");
        }
    }
    drop(held);
}

// ---------------------------------------------------------------------------------------------
// Autodiscover with curl

/// GET `url` from `source` at the deployment's listeners (127.0.0.1), trusting only the
/// certificate `serve` generated. `accept` `None` sends no Accept header.
fn curl(d: &Discovery, source: &str, url: &str, accept: Option<&str>) -> Reply {
    autodiscover::curl(&d.cert_pem(), source, url, accept, "127.0.0.1")
}

/// `scheme://label.<domain>:port` of the deployment's HTTP or HTTPS listener.
fn origin(d: &Discovery, scheme: &str, label: &str) -> String {
    let port = match scheme {
        "https" => d.https.port(),
        _ => d.http.port(),
    };
    format!("{scheme}://{}:{port}", fqdn(label))
}

/// The inside client asks lyncdiscoverinternal, the outside one lyncdiscover; the answer's
/// location follows the source address, not the name asked.
const SIDES: [(&str, &str, &str); 3] = [
    (INSIDE, "lyncdiscoverinternal", "Internal"),
    (OUTSIDE, "lyncdiscover", "External"),
    (INSIDE, "lyncdiscover", "Internal"),
];

/// The root resource (`GET /?sipuri=` as SIPE sends it, and the canonical root path with
/// `originalDomain`) over HTTP and HTTPS: XML for the XML Accept, JSON for the JSON Accept or
/// none; `AccessLocation` by source; `User`, `Domain` and `Self` links on the host and port
/// asked.
#[test]
fn autodiscover_root_answers_xml_or_json_by_accept_and_location_by_source() {
    let d = deployment();
    for scheme in ["http", "https"] {
        for (source, label, location) in SIDES {
            let base = origin(&d, scheme, label);
            let ctx = format!("{scheme} {label} from {source}");

            let r = curl(&d, source, &format!("{base}/?sipuri={USER}"), Some(XML));
            assert_eq!(r.status, 200, "{ctx}: {r:?}");
            assert_eq!(r.content_type, XML, "{ctx}");
            assert!(
                r.body.contains("<AutodiscoverResponse"),
                "{ctx}: {}",
                r.body
            );
            assert_eq!(
                xml_attr(&r.body, "AutodiscoverResponse", "AccessLocation").as_deref(),
                Some(location),
                "{ctx}: {}",
                r.body
            );
            let links: BTreeMap<String, String> = xml_links(&r.body).into_iter().collect();
            let tokens: Vec<&str> = links.keys().map(String::as_str).collect();
            assert_eq!(tokens, ["Domain", "Self", "User"], "{ctx}: {}", r.body);
            let user = &links["User"];
            assert!(
                user.starts_with(&format!("{base}{ROOT}/user")) && user.contains(USER),
                "{ctx}: User link {user}"
            );
            assert!(links["Self"].starts_with(&format!("{base}{ROOT}")), "{ctx}");
            assert!(
                links["Domain"].starts_with(&format!("{base}{ROOT}/domain")),
                "{ctx}"
            );

            for accept in [Some(JSON), None] {
                let r = curl(&d, source, &format!("{base}/?sipuri={USER}"), accept);
                assert_eq!(r.status, 200, "{ctx} {accept:?}: {r:?}");
                assert_eq!(r.content_type, JSON, "{ctx} {accept:?}");
                let doc: AdJson = json(&r.body);
                assert_eq!(doc.access_location, location, "{ctx}");
                let root = doc.root.expect("a Root object");
                let json_links: BTreeMap<String, String> =
                    root.links.into_iter().map(|l| (l.token, l.href)).collect();
                assert_eq!(json_links, links, "{ctx}: JSON and XML links differ");
                assert_eq!(doc.hal["user"].href, links["User"], "{ctx}");
            }

            let r = curl(
                &d,
                source,
                &format!("{base}{ROOT}?originalDomain={DOMAIN}"),
                Some(XML),
            );
            assert_eq!(r.status, 200, "{ctx}: {r:?}");
            assert_eq!(
                xml_attr(&r.body, "AutodiscoverResponse", "AccessLocation").as_deref(),
                Some(location),
                "{ctx}"
            );
        }
    }
}

/// The user resource, reached through the root's `User` link as a client follows it: the pool
/// for SIP inside (on its TLS port), the Access Edge outside (Lync's 443 and 5061), the same in
/// XML and JSON, over HTTP and HTTPS.
#[test]
fn autodiscover_user_resource_names_the_pool_inside_and_the_edge_outside() {
    let d = deployment();
    let pool = AdAccess {
        fqdn: fqdn("pool"),
        port: d.tls_port(),
    };
    let edge = |port| AdAccess {
        fqdn: fqdn("sip"),
        port,
    };
    for scheme in ["http", "https"] {
        for (source, label, location) in SIDES {
            let ctx = format!("{scheme} {label} from {source}");
            let root = curl(
                &d,
                source,
                &format!("{}/?sipuri={USER}", origin(&d, scheme, label)),
                Some(XML),
            );
            let user_url = xml_links(&root.body)
                .into_iter()
                .find(|(t, _)| t == "User")
                .map(|(_, h)| h)
                .unwrap_or_else(|| panic!("{ctx}: no User link in {}", root.body));

            let x = curl(&d, source, &user_url, Some(XML));
            assert_xml(&x, location, &ctx);
            let access = |element: &str| AdAccess {
                fqdn: xml_attr(&x.body, element, "fqdn")
                    .unwrap_or_else(|| panic!("{ctx}: no {element} in {}", x.body)),
                port: xml_attr(&x.body, element, "port")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("{ctx}: no port in {element}")),
            };
            assert_eq!(access("SipServerInternalAccess"), pool, "{ctx}");
            assert_eq!(access("SipClientInternalAccess"), pool, "{ctx}");
            assert_eq!(access("SipServerExternalAccess"), edge(5061), "{ctx}");
            assert_eq!(access("SipClientExternalAccess"), edge(443), "{ctx}");

            let j = curl(&d, source, &user_url, Some(JSON));
            assert_eq!(j.status, 200, "{ctx}: {j:?}");
            assert_eq!(j.content_type, JSON, "{ctx}");
            let doc: AdJson = json(&j.body);
            assert_eq!(doc.access_location, location, "{ctx}");
            let user = doc.user.expect("a User object");
            assert_eq!(user.sip_server_internal_access, Some(pool.clone()), "{ctx}");
            assert_eq!(user.sip_client_internal_access, Some(pool.clone()), "{ctx}");
            assert_eq!(user.sip_server_external_access, Some(edge(5061)), "{ctx}");
            assert_eq!(user.sip_client_external_access, Some(edge(443)), "{ctx}");
            let tokens: BTreeSet<&str> = user.links.iter().map(|l| l.token.as_str()).collect();
            for t in ["Internal/Autodiscover", "External/Autodiscover", "Self"] {
                assert!(tokens.contains(t), "{ctx}: no {t} link in {}", j.body);
            }
        }
    }
}

/// A domain herald does not serve gets 404 with an empty body, whichever way it is named.
#[test]
fn autodiscover_answers_404_for_an_unknown_domain() {
    let d = deployment();
    for scheme in ["http", "https"] {
        for (source, label, _) in SIDES {
            let base = origin(&d, scheme, label);
            for path in [
                "/?sipuri=bob@example.org".to_owned(),
                format!("{ROOT}?originalDomain=example.org"),
                format!("{ROOT}/user?sipuri=bob@example.org"),
            ] {
                for accept in [XML, JSON] {
                    let r = curl(&d, source, &format!("{base}{path}"), Some(accept));
                    assert_eq!(r.status, 404, "{scheme} {label} {path} {accept}: {r:?}");
                    assert!(r.body.is_empty(), "{path}: {}", r.body);
                }
            }
        }
    }
}

/// Autodiscover is unauthenticated (herald issues no web ticket), so it must not tell which
/// sign-in names exist, as the registrar does not: a name the directory does not have gets the
/// same user document as a real user of the domain (the domain's pool), never a 404.
#[test]
fn autodiscover_user_resource_does_not_reveal_which_users_exist() {
    let d = deployment();
    for scheme in ["http", "https"] {
        let base = origin(&d, scheme, "lyncdiscover");
        let known = curl(
            &d,
            OUTSIDE,
            &format!("{base}{ROOT}/user?sipuri={USER}"),
            Some(XML),
        );
        assert_eq!(known.status, 200, "{known:?}");
        let r = curl(
            &d,
            OUTSIDE,
            &format!("{base}{ROOT}/user?sipuri=nobody@{DOMAIN}"),
            Some(XML),
        );
        assert_eq!(r.status, 200, "{scheme}: {r:?}");
        assert_eq!(
            r.body.replace("nobody", "USER"),
            known
                .body
                .replace(USER.split('@').next().unwrap_or_default(), "USER"),
            "{scheme}: the documents differ beyond the name"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// herald discover

/// `herald discover --json`.
#[derive(Debug, Deserialize)]
struct WalkJson {
    steps: Vec<WalkStep>,
    result: Option<WalkResult>,
    stopped: Option<String>,
    mobile: bool,
}

#[derive(Debug, Deserialize)]
struct WalkStep {
    kind: String,
    ask: String,
    ok: bool,
    ms: f64,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct WalkResult {
    fqdn: String,
    port: u16,
    transport: String,
    location: String,
    via: String,
}

/// Who asks: a client inside (loopback is in the default internal networks) or outside (only
/// 127.0.0.2 is inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Inside,
    Outside,
}

/// A port in an expected result: the server's own SIP listeners, or a fixed one.
#[derive(Debug, Clone, Copy)]
enum Port {
    SipTls,
    SipTcp,
    Fixed(u16),
}

/// One walk: the server's topology, the steps expected (ask, ok) with `{http}`/`{https}`
/// standing for the web ports, and the result.
struct Walk {
    what: &'static str,
    client: Client,
    lyncdiscover_internal: bool,
    omit: &'static [&'static str],
    mobile: bool,
    steps: &'static [(&'static str, bool)],
    /// (fqdn label, port, transport, location, via)
    result: Option<(&'static str, Port, &'static str, &'static str, &'static str)>,
}

const LDI: &str = "A/AAAA lyncdiscoverinternal.herald.test";
const LD: &str = "A/AAAA lyncdiscover.herald.test";
const SRV_SIT: &str = "SRV _sipinternaltls._tcp.herald.test";
const SRV_SI: &str = "SRV _sipinternal._tcp.herald.test";
const SRV_TLS: &str = "SRV _sip._tls.herald.test";
const A_SIPINTERNAL: &str = "A/AAAA sipinternal.herald.test";
const A_SIP: &str = "A/AAAA sip.herald.test";
const A_SIPEXTERNAL: &str = "A/AAAA sipexternal.herald.test";
const A_POOL: &str = "A/AAAA pool.herald.test";
const GET_LDI_ROOT: &str =
    "GET https://lyncdiscoverinternal.herald.test:{https}/?sipuri=alice@herald.test";
const GET_LDI_USER: &str = "GET https://lyncdiscoverinternal.herald.test:{https}/Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@herald.test";
const GET_LD_ROOT: &str = "GET https://lyncdiscover.herald.test:{https}/?sipuri=alice@herald.test";
const GET_LD_USER: &str = "GET https://lyncdiscover.herald.test:{https}/Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@herald.test";

impl Walk {
    fn topology(&self) -> String {
        let mut t = String::from("[topology]\n");
        if self.client == Client::Outside {
            t.push_str(&format!("internal_networks = [\"{INSIDE}/32\"]\n"));
        }
        if self.lyncdiscover_internal {
            t.push_str("lyncdiscover_internal = true\n");
        }
        let omit: Vec<String> = self.omit.iter().map(|o| format!("{o:?}")).collect();
        t.push_str(&format!("omit_records = [{}]\n", omit.join(", ")));
        t
    }

    /// Starts a fresh server, walks, and checks every step and the result.
    fn check(&self) {
        let d = DiscoverySetup::new(DOMAIN, &self.topology()).start();
        let mut extra = vec!["--json"];
        if self.mobile {
            extra.push("--mobile");
        }
        let out = d.discover(USER, &extra);
        let ctx = format!(
            "{}: `{}`\n{}{}",
            self.what, out.command, out.stdout, out.stderr
        );
        // A walk that finds no registrar exits non-zero (after printing its report).
        assert_eq!(out.success, self.result.is_some(), "{ctx}");
        let walk: WalkJson = json(out.stdout.trim());
        assert_eq!(walk.mobile, self.mobile, "{ctx}");
        let ports = |s: &str| {
            s.replace("{https}", &d.https.port().to_string())
                .replace("{http}", &d.http.port().to_string())
        };
        let got: Vec<(String, bool)> = walk.steps.iter().map(|s| (s.ask.clone(), s.ok)).collect();
        let want: Vec<(String, bool)> = self.steps.iter().map(|(a, ok)| (ports(a), *ok)).collect();
        assert_eq!(got, want, "{ctx}");
        for s in &walk.steps {
            let kind = if s.ask.starts_with("GET ") {
                "http"
            } else {
                "dns"
            };
            assert_eq!(s.kind, kind, "{ctx}");
            assert!(s.ms >= 0.0 && s.ms < 5000.0, "{ctx}");
        }
        match self.result {
            Some((label, port, transport, location, via)) => {
                let port = match port {
                    Port::SipTls => d.tls_port(),
                    Port::SipTcp => d.tcp_port(),
                    Port::Fixed(p) => p,
                };
                let want = WalkResult {
                    fqdn: fqdn(label),
                    port,
                    transport: transport.to_owned(),
                    location: location.to_owned(),
                    via: via.to_owned(),
                };
                assert_eq!(walk.result.as_ref(), Some(&want), "{ctx}");
                assert_eq!(walk.stopped, None, "{ctx}");
            }
            None => {
                assert!(walk.result.is_none(), "{ctx}");
                assert!(walk.stopped.is_some(), "{ctx}");
            }
        }
    }
}

/// The full walk of a desktop client inside: lyncdiscoverinternal resolves, the root over HTTPS
/// (the certificate `serve` generated, passed with `--ca`) links to the user resource, which
/// names the pool; the pool resolves. The text form shows every step and the result.
#[test]
fn discover_walks_autodiscover_through_lyncdiscoverinternal() {
    Walk {
        what: "full walk inside",
        client: Client::Inside,
        lyncdiscover_internal: false,
        omit: &[],
        mobile: false,
        steps: &[
            (LDI, true),
            (GET_LDI_ROOT, true),
            (GET_LDI_USER, true),
            (A_POOL, true),
        ],
        result: Some(("pool", Port::SipTls, "tls", "inside", "autodiscover")),
    }
    .check();

    let d = DiscoverySetup::new(DOMAIN, "").start();
    let out = d.discover(USER, &[]);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    let text = &out.stdout;
    let https = d.https.port();
    for line in [
        format!("Discovery for {USER} (desktop client)"),
        format!("1. DNS  {LDI}"),
        "note: lyncdiscoverinternal resolves: the client is inside".to_owned(),
        format!("2. HTTP GET https://lyncdiscoverinternal.herald.test:{https}/?sipuri={USER}"),
        format!("4. DNS  {A_POOL}"),
        format!(
            "Result: register at pool.herald.test:{} over TLS (127.0.0.1), found by \
             autodiscover; the client is inside",
            d.tls_port()
        ),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains(" ms)"), "no step times in:\n{text}");
}

/// Without lyncdiscoverinternal the walk asks lyncdiscover: inside through the forward lookup
/// (`lyncdiscover_internal`), and outside where lyncdiscoverinternal never resolves.
#[test]
fn discover_falls_back_to_lyncdiscover() {
    Walk {
        what: "inside, lyncdiscoverinternal omitted",
        client: Client::Inside,
        lyncdiscover_internal: true,
        omit: &["lyncdiscoverinternal"],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, true),
            (GET_LD_ROOT, true),
            (GET_LD_USER, true),
            (A_POOL, true),
        ],
        result: Some(("pool", Port::SipTls, "tls", "inside", "autodiscover")),
    }
    .check();
    Walk {
        what: "outside",
        client: Client::Outside,
        lyncdiscover_internal: false,
        omit: &[],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, true),
            (GET_LD_ROOT, true),
            (GET_LD_USER, true),
            (A_SIP, true),
        ],
        // No Edge configured: the Access Edge is this server, on its own TLS port.
        result: Some(("sip", Port::SipTls, "tls", "outside", "autodiscover")),
    }
    .check();
}

/// Without autodiscover: `_sipinternaltls._tcp`, then `_sipinternal._tcp` (TCP), then
/// `_sip._tls` (which only the external view has, so the client is outside).
#[test]
fn discover_falls_back_through_the_srv_records() {
    Walk {
        what: "no autodiscover inside",
        client: Client::Inside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscoverinternal"],
        mobile: false,
        steps: &[(LDI, false), (LD, false), (SRV_SIT, true), (A_SIP, true)],
        result: Some(("sip", Port::SipTls, "tls", "inside", SRV_SIT)),
    }
    .check();
    Walk {
        what: "no _sipinternaltls._tcp",
        client: Client::Inside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscoverinternal", "_sipinternaltls._tcp"],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, false),
            (SRV_SIT, false),
            (SRV_SI, true),
            (A_SIP, true),
        ],
        result: Some(("sip", Port::SipTcp, "tcp", "inside", SRV_SI)),
    }
    .check();
    Walk {
        what: "no autodiscover outside",
        client: Client::Outside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscover"],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, false),
            (SRV_SIT, false),
            (SRV_SI, false),
            (SRV_TLS, true),
            (A_SIP, true),
        ],
        result: Some(("sip", Port::SipTls, "tls", "outside", SRV_TLS)),
    }
    .check();
}

/// Without autodiscover and SRV: A `sipinternal` (inside), `sip`, then `sipexternal`; the
/// client's own ports (5061 inside, 443 outside); nothing left: no result and the reason.
#[test]
fn discover_falls_back_through_the_a_records() {
    Walk {
        what: "no SRV inside",
        client: Client::Inside,
        lyncdiscover_internal: false,
        omit: &[
            "lyncdiscoverinternal",
            "_sipinternaltls._tcp",
            "_sipinternal._tcp",
        ],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, false),
            (SRV_SIT, false),
            (SRV_SI, false),
            (SRV_TLS, false),
            (A_SIPINTERNAL, true),
        ],
        result: Some((
            "sipinternal",
            Port::Fixed(5061),
            "tls",
            "inside",
            A_SIPINTERNAL_VIA,
        )),
    }
    .check();
    Walk {
        what: "no SRV outside",
        client: Client::Outside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscover", "_sip._tls"],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, false),
            (SRV_SIT, false),
            (SRV_SI, false),
            (SRV_TLS, false),
            (A_SIPINTERNAL, false),
            (A_SIP, true),
        ],
        result: Some(("sip", Port::Fixed(443), "tls", "outside", A_SIP_VIA)),
    }
    .check();
    Walk {
        what: "no sip outside",
        client: Client::Outside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscover", "_sip._tls", "sip"],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, false),
            (SRV_SIT, false),
            (SRV_SI, false),
            (SRV_TLS, false),
            (A_SIPINTERNAL, false),
            (A_SIP, false),
            (A_SIPEXTERNAL, true),
        ],
        result: Some((
            "sipexternal",
            Port::Fixed(443),
            "tls",
            "outside",
            A_SIPEXTERNAL_VIA,
        )),
    }
    .check();
    Walk {
        what: "nothing left",
        client: Client::Outside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscover", "_sip._tls", "sip", "sipexternal"],
        mobile: false,
        steps: &[
            (LDI, false),
            (LD, false),
            (SRV_SIT, false),
            (SRV_SI, false),
            (SRV_TLS, false),
            (A_SIPINTERNAL, false),
            (A_SIP, false),
            (A_SIPEXTERNAL, false),
        ],
        result: None,
    }
    .check();
}

const A_SIPINTERNAL_VIA: &str = "A sipinternal.herald.test";
const A_SIP_VIA: &str = "A sip.herald.test";
const A_SIPEXTERNAL_VIA: &str = "A sipexternal.herald.test";

/// A mobile client uses autodiscover only: it succeeds like a desktop client when autodiscover
/// works, and stops after lyncdiscover fails although the SRV records are there.
#[test]
fn discover_mobile_stops_after_autodiscover_fails() {
    Walk {
        what: "mobile with autodiscover",
        client: Client::Inside,
        lyncdiscover_internal: false,
        omit: &[],
        mobile: true,
        steps: &[
            (LDI, true),
            (GET_LDI_ROOT, true),
            (GET_LDI_USER, true),
            (A_POOL, true),
        ],
        result: Some(("pool", Port::SipTls, "tls", "inside", "autodiscover")),
    }
    .check();
    Walk {
        what: "mobile without autodiscover",
        client: Client::Inside,
        lyncdiscover_internal: false,
        omit: &["lyncdiscoverinternal"],
        mobile: true,
        steps: &[(LDI, false), (LD, false)],
        result: None,
    }
    .check();
}

// ---------------------------------------------------------------------------------------------
// herald dns records, herald cert request, the generated certificate

/// The table lists both views with a header; `--view` keeps one; every Lync name of the issue's
/// tables is in the view it belongs to, with its data.
#[test]
fn dns_records_table_lists_each_view() {
    let d = deployment();
    let config = d.bound_config();
    let all = herald_cli(&config, &["dns", "records"]);
    assert!(all.success, "{}", all.stderr);
    let header: Vec<&str> = all
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["VIEW", "NAME", "TTL", "TYPE", "DATA", "PURPOSE"],
        "{}",
        all.stdout
    );
    let rows: Vec<Vec<String>> = all
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    for (view, label, rtype, want) in expected_tables(&d) {
        let data: Vec<String> = rows
            .iter()
            .filter(|r| r[0] == view && r[1] == fqdn(label) && r[3] == rtype)
            .map(|r| {
                if rtype == "SRV" {
                    r[4..8].join(" ")
                } else {
                    r[4].clone()
                }
            })
            .collect();
        let mut data = data;
        data.sort();
        assert_eq!(
            data,
            want.unwrap_or_default(),
            "{view} {label} {rtype}:\n{}",
            all.stdout
        );
    }
    for view in ["internal", "external"] {
        let one = herald_cli(&config, &["dns", "records", "--view", view]);
        assert!(one.success, "{}", one.stderr);
        let lines: Vec<&str> = one.stdout.lines().skip(1).collect();
        assert!(lines.len() > 5, "{}", one.stdout);
        assert!(
            lines.iter().all(|l| l.starts_with(view)),
            "--view {view}:\n{}",
            one.stdout
        );
    }
}

/// Zone format: one master file per view, which BIND's `named-checkzone` (Debian `bind9-utils`)
/// loads; without `--view` both views, each its own block.
#[test]
fn dns_records_zone_output_loads_in_named_checkzone() {
    let d = deployment();
    let config = d.bound_config();
    for view in ["internal", "external"] {
        let out = herald_cli(
            &config,
            &["dns", "records", "--format", "zone", "--view", view],
        );
        assert!(out.success, "{}", out.stderr);
        assert!(
            out.stdout.contains(&format!("$ORIGIN {DOMAIN}.")),
            "{}",
            out.stdout
        );
        let file = d.home().path().join(format!("{view}.zone"));
        std::fs::write(&file, &out.stdout).expect("writing the zone file");
        let check = run(
            "named-checkzone",
            &[
                "-k",
                "fail",
                "-i",
                "full",
                DOMAIN,
                file.to_str().expect("UTF-8 path"),
            ],
        );
        assert!(
            check.success && check.stdout.contains("OK"),
            "named-checkzone refused the {view} zone:\n{}{}\n{}",
            check.stdout,
            check.stderr,
            out.stdout
        );
    }
    let both = herald_cli(&config, &["dns", "records", "--format", "zone"]);
    assert!(both.success, "{}", both.stderr);
    let soas = both
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some("SOA"))
        .count();
    assert_eq!(soas, 2, "{}", both.stdout);
    assert!(both.stdout.contains("internal view"), "{}", both.stdout);
    assert!(both.stdout.contains("external view"), "{}", both.stdout);
}

/// `cert request` names the pool as subject and lists every name clients are sent to; the
/// certificate `serve` generated carries all of them, and a real TLS client (curl, trusting only
/// that certificate) accepts it under each name.
#[test]
fn cert_request_and_the_generated_certificate_cover_every_discovery_name() {
    let d = deployment();
    let config = d.bound_config();
    let out = herald_cli(&config, &["cert", "request"]);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("Subject: CN=pool.{DOMAIN}\n")),
        "{}",
        out.stdout
    );
    let requested: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("DNS:"))
        .map(str::to_owned)
        .collect();
    for label in [
        "sip",
        "sipinternal",
        "sipexternal",
        "lyncdiscover",
        "lyncdiscoverinternal",
        "pool",
        "fe01",
        "fe02",
        "meet",
        "dialin",
        "admin",
    ] {
        assert!(requested.contains(&fqdn(label)), "{label}:\n{}", out.stdout);
    }
    // Naming a member selects its pool.
    let member = herald_cli(&config, &["cert", "request", "--pool", &fqdn("fe02")]);
    assert!(member.success, "{}", member.stderr);
    assert_eq!(member.stdout, out.stdout);
    let unknown = herald_cli(
        &config,
        &["cert", "request", "--pool", "nosuch.herald.test"],
    );
    assert!(!unknown.success, "{}", unknown.stdout);

    let sans = san_dns_names(&d.cert_pem());
    for name in &requested {
        assert!(
            sans.contains(name),
            "the certificate lacks {name}: {sans:?}"
        );
    }
    for name in &requested {
        let r = curl(
            &d,
            OUTSIDE,
            &format!("https://{name}:{}/?sipuri={USER}", d.https.port()),
            Some(XML),
        );
        assert_eq!(r.status, 200, "https://{name}: {r:?}");
    }
}

/// `cert request` needs no port, yet fails on the config `serve` runs with when its listeners
/// use port 0 (`herald: invalid [topology]: topology.ports.internal_tls: port 0 cannot be
/// dialled`, a key the file does not have); `dns records` fails the same way.
#[test]
fn cert_request_works_on_a_config_with_ephemeral_ports() {
    let d = deployment();
    let out = herald_cli(&d.home().config, &["cert", "request"]);
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    let records = herald_cli(&d.home().config, &["dns", "records"]);
    assert!(records.success, "{}{}", records.stdout, records.stderr);
}

/// (name, type) → sorted (TTL, RDATA) of a master file as `dns records --format zone` prints it.
fn parse_zone(text: &str) -> BTreeMap<(String, String), Vec<(u32, String)>> {
    let mut out: BTreeMap<(String, String), Vec<(u32, String)>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('$') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(
            f.len() >= 5 && f[2] == "IN",
            "unexpected zone line {line:?}"
        );
        let ttl: u32 = f[1].parse().unwrap_or_else(|_| panic!("TTL in {line:?}"));
        out.entry((f[0].to_owned(), f[3].to_owned()))
            .or_default()
            .push((ttl, f[4..].join(" ")));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}
