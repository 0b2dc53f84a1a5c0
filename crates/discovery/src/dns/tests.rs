//! Answerer tests. hickory-proto builds the queries and decodes the answers, so the wire format
//! is checked against an independent implementation.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::topology::{LocalServer, TopologyConfig};

const INSIDE: &str = "10.1.1.1";
const OUTSIDE: &str = "198.51.100.7";

fn contoso(extra: &str) -> Topology {
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
        fqdn = "pool01.contoso.com"
        members = [
          {{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11", "fd00::11"] }},
          {{ fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] }},
          {{ fqdn = "fe03.contoso.com", addresses = ["10.0.0.13"] }},
          {{ fqdn = "fe04.contoso.com", addresses = ["10.0.0.14"] }},
        ]
        "#
    );
    let file: File = toml::from_str(&text).unwrap();
    let local = LocalServer {
        domains: vec!["contoso.com".into(), "fabrikam.com".into()],
        ..LocalServer::default()
    };
    Topology::from_config(&file.topology, &local).unwrap()
}

fn query_bytes(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn ask_with(zones: &ZoneSet, bytes: &[u8], from: &str, transport: Transport, seed: u64) -> Message {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let outcome = zones.answer(bytes, from.parse().unwrap(), transport, &mut rng, &mut out);
    assert!(matches!(outcome, Outcome::Answered { .. }), "{outcome:?}");
    Message::from_vec(&out).unwrap()
}

fn ask(zones: &ZoneSet, name: &str, rtype: RecordType, from: &str) -> Message {
    ask_with(
        zones,
        &query_bytes(name, rtype, true),
        from,
        Transport::Udp,
        1,
    )
}

fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

#[test]
fn every_record_of_each_view_is_answered_from_that_view() {
    let t = contoso("");
    let zones = ZoneSet::new(&t);
    for view in View::ALL {
        let from = match view {
            View::Internal => INSIDE,
            View::External => OUTSIDE,
        };
        for r in t.records().view(view) {
            let rtype = RecordType::from(r.data.type_code());
            let m = ask(&zones, &format!("{}.", r.name), rtype, from);
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{view} {}",
                r.name
            );
            assert!(m.metadata.authoritative, "{view} {}", r.name);
            let expected: Vec<String> = t
                .records()
                .lookup(view, r.name.as_str())
                .filter(|o| o.data.type_code() == r.data.type_code())
                .map(|o| o.data.to_string())
                .collect();
            let mut expected = expected;
            expected.sort();
            assert_eq!(answers(&m), expected, "{view} {} {rtype}", r.name);
            for a in &m.answers {
                assert_eq!(a.ttl, r.ttl);
                assert_eq!(a.name, Name::from_ascii(format!("{}.", r.name)).unwrap());
            }
        }
    }
}

#[test]
fn view_is_chosen_by_source_address() {
    let t = contoso("");
    let zones = ZoneSet::new(&t);
    assert_eq!(zones.view_for("10.1.1.1".parse().unwrap()), View::Internal);
    assert_eq!(
        zones.view_for("::ffff:192.168.0.1".parse().unwrap()),
        View::Internal
    );
    assert_eq!(
        zones.view_for("198.51.100.7".parse().unwrap()),
        View::External
    );
    let inside = ask(&zones, "sip.contoso.com.", RecordType::A, INSIDE);
    let outside = ask(&zones, "sip.contoso.com.", RecordType::A, OUTSIDE);
    assert_eq!(
        answers(&inside),
        ["10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"]
    );
    assert_eq!(answers(&outside), ["203.0.113.10"]);
    // The internal-only record does not exist outside: that is how clients learn where they are.
    let m = ask(
        &zones,
        "lyncdiscoverinternal.contoso.com.",
        RecordType::A,
        OUTSIDE,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn rfc2308_section_2_1_nxdomain_carries_the_soa() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(&zones, "nosuch.contoso.com.", RecordType::A, INSIDE);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    let soa = &m.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name, Name::from_ascii("contoso.com.").unwrap());
    assert_eq!(soa.ttl, NEGATIVE_TTL);
    // The second domain is its own zone.
    let m = ask(&zones, "nosuch.fabrikam.com.", RecordType::A, OUTSIDE);
    assert_eq!(
        m.authorities[0].name,
        Name::from_ascii("fabrikam.com.").unwrap()
    );
}

#[test]
fn rfc2308_section_2_2_nodata_for_a_name_with_other_types() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(&zones, "fe02.contoso.com.", RecordType::AAAA, INSIDE);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    let m = ask(&zones, "sip.contoso.com.", RecordType::SRV, INSIDE);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[test]
fn rfc8020_empty_non_terminal_is_nodata_not_nxdomain() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(&zones, "_tcp.contoso.com.", RecordType::A, INSIDE);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

#[test]
fn names_outside_our_zones_are_refused_without_aa() {
    let zones = ZoneSet::new(&contoso(""));
    for name in ["www.example.org.", "com.", ".", "notcontoso.com."] {
        let m = ask(&zones, name, RecordType::A, INSIDE);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative);
        assert_eq!(m.queries.len(), 1);
    }
}

#[test]
fn zone_transfers_and_other_classes_are_refused() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask_with(
        &zones,
        &query_bytes("contoso.com.", RecordType::AXFR, false),
        INSIDE,
        Transport::Tcp,
        1,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let mut q = Message::query();
    let mut hq = HQuery::query(Name::from_ascii("version.bind.").unwrap(), RecordType::TXT);
    hq.query_class = DNSClass::CH;
    q.add_query(hq);
    let m = ask_with(&zones, &q.to_vec().unwrap(), INSIDE, Transport::Udp, 1);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn rfc2782_srv_answer_has_target_addresses_in_additional() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(
        &zones,
        "_sipinternaltls._tcp.contoso.com.",
        RecordType::SRV,
        INSIDE,
    );
    assert_eq!(answers(&m), ["0 0 5061 sip.contoso.com."]);
    let mut extra: Vec<String> = m
        .additionals
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect();
    extra.sort();
    assert_eq!(
        extra,
        [
            "sip.contoso.com. 10.0.0.11",
            "sip.contoso.com. 10.0.0.12",
            "sip.contoso.com. 10.0.0.13",
            "sip.contoso.com. 10.0.0.14",
            "sip.contoso.com. fd00::11",
        ]
    );
    let m = ask(&zones, "_sip._tls.contoso.com.", RecordType::SRV, OUTSIDE);
    assert_eq!(answers(&m), ["0 0 443 sip.contoso.com."]);
    assert_eq!(m.additionals.len(), 2);
}

#[test]
fn pool_answers_every_member_in_a_shuffled_order() {
    let zones = ZoneSet::new(&contoso(""));
    let bytes = query_bytes("pool01.contoso.com.", RecordType::A, false);
    let mut rng = StdRng::seed_from_u64(42);
    let mut orders = std::collections::HashSet::new();
    let mut out = Vec::new();
    for _ in 0..50 {
        zones.answer(
            &bytes,
            INSIDE.parse().unwrap(),
            Transport::Udp,
            &mut rng,
            &mut out,
        );
        let m = Message::from_vec(&out).unwrap();
        let order: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(order.len(), 4);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, ["10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"]);
        orders.insert(order);
    }
    // 24 permutations; 50 draws see many of them.
    assert!(orders.len() > 10, "{}", orders.len());
    // The same seed gives the same order: tests can rely on it.
    let first = |seed| {
        let m = ask_with(&zones, &bytes, INSIDE, Transport::Udp, seed);
        m.answers
            .iter()
            .map(|r| r.data.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(first(7), first(7));
}

#[test]
fn question_is_echoed_with_its_case_and_names_compress_against_it() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(&zones, "SIP.Contoso.COM.", RecordType::A, INSIDE);
    assert_eq!(m.queries[0].name().to_ascii(), "SIP.Contoso.COM.");
    assert_eq!(m.answers.len(), 4);
    let m = ask(&zones, "NoSuch.Contoso.COM.", RecordType::A, INSIDE);
    assert_eq!(
        m.authorities[0].name.to_lowercase(),
        Name::from_ascii("contoso.com.").unwrap()
    );
}

#[test]
fn rfc6891_opt_in_the_answer_and_badvers() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(&zones, "sip.contoso.com.", RecordType::A, INSIDE);
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    let plain = ask_with(
        &zones,
        &query_bytes("sip.contoso.com.", RecordType::A, false),
        INSIDE,
        Transport::Udp,
        1,
    );
    assert!(plain.edns.is_none());

    let mut q = Message::query();
    q.add_query(HQuery::query(
        Name::from_ascii("sip.contoso.com.").unwrap(),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_version(1);
    q.set_edns(e);
    let m = ask_with(&zones, &q.to_vec().unwrap(), INSIDE, Transport::Udp, 1);
    // 16 is both BADVERS (RFC 6891) and BADSIG (RFC 8945); hickory names it BADSIG.
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert!(m.queries.is_empty());
}

#[test]
fn rfc1035_section_4_2_1_large_answers_set_tc_over_udp_and_fit_over_tcp() {
    let members: Vec<String> = (0..32)
        .map(|i| {
            let addrs: Vec<String> = (0..8).map(|j| format!("\"10.{i}.{j}.1\"")).collect();
            format!(
                "{{ fqdn = \"fe{i}.contoso.com\", addresses = [{}] }}",
                addrs.join(",")
            )
        })
        .collect();
    #[derive(serde::Deserialize)]
    struct File {
        topology: TopologyConfig,
    }
    let text = format!(
        "[[topology.pools]]\nfqdn = \"pool01.contoso.com\"\nmembers = [{}]\n",
        members.join(",")
    );
    let file: File = toml::from_str(&text).unwrap();
    let local = LocalServer {
        domains: vec!["contoso.com".into()],
        ..LocalServer::default()
    };
    let zones = ZoneSet::new(&Topology::from_config(&file.topology, &local).unwrap());
    let bytes = query_bytes("pool01.contoso.com.", RecordType::A, false);
    let udp = ask_with(&zones, &bytes, INSIDE, Transport::Udp, 1);
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let tcp = ask_with(&zones, &bytes, INSIDE, Transport::Tcp, 1);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 256);
    // With EDNS the limit is 1232 bytes: still too small for 256 addresses.
    let edns = ask_with(
        &zones,
        &query_bytes("pool01.contoso.com.", RecordType::A, true),
        INSIDE,
        Transport::Udp,
        1,
    );
    assert!(edns.metadata.truncation);
    assert!(edns.edns.is_some());
}

#[test]
fn malformed_and_non_query_messages() {
    let zones = ZoneSet::new(&contoso(""));
    let mut out = Vec::new();
    let mut rng = StdRng::seed_from_u64(1);
    let src: IpAddr = INSIDE.parse().unwrap();
    assert_eq!(
        zones.answer(&[1, 2, 3], src, Transport::Udp, &mut rng, &mut out),
        Outcome::Dropped
    );

    let mut bad = query_bytes("sip.contoso.com.", RecordType::A, false);
    bad.truncate(bad.len() - 3);
    let outcome = zones.answer(&bad, src, Transport::Udp, &mut rng, &mut out);
    assert_eq!(
        outcome,
        Outcome::Answered {
            rcode: Rcode::FormErr,
            view: None
        }
    );
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );

    let mut notify = Message::query();
    notify.metadata.op_code = OpCode::Notify;
    notify.add_query(HQuery::query(
        Name::from_ascii("contoso.com.").unwrap(),
        RecordType::SOA,
    ));
    let outcome = zones.answer(
        &notify.to_vec().unwrap(),
        src,
        Transport::Udp,
        &mut rng,
        &mut out,
    );
    assert_eq!(
        outcome,
        Outcome::Answered {
            rcode: Rcode::NotImp,
            view: None
        }
    );
}

#[test]
fn any_query_returns_every_rrset_at_the_name() {
    let zones = ZoneSet::new(&contoso(""));
    let m = ask(&zones, "contoso.com.", RecordType::ANY, INSIDE);
    let types: std::collections::BTreeSet<RecordType> =
        m.answers.iter().map(|r| r.record_type()).collect();
    assert!(types.contains(&RecordType::SOA) && types.contains(&RecordType::NS));
}

#[test]
fn random_bytes_never_panic() {
    use rand::RngCore;
    let zones = ZoneSet::new(&contoso(""));
    let mut rng = StdRng::seed_from_u64(9);
    let mut out = Vec::new();
    let base = query_bytes("_sipinternaltls._tcp.contoso.com.", RecordType::SRV, true);
    for i in 0..20_000 {
        let mut msg = base.clone();
        let flips = 1 + (i % 4);
        for _ in 0..flips {
            let at = (rng.next_u32() as usize) % msg.len();
            msg[at] = rng.next_u32() as u8;
        }
        msg.truncate((rng.next_u32() as usize) % (msg.len() + 1));
        zones.answer(
            &msg,
            INSIDE.parse().unwrap(),
            Transport::Udp,
            &mut rng,
            &mut out,
        );
        assert!(out.len() <= 1232);
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn label() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_-]{1,20}"
    }

    proptest! {
        /// Whatever arrives, the answerer never panics and never exceeds the UDP limit.
        #[test]
        fn arbitrary_datagrams_are_answered_safely(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let zones = ZoneSet::new(&contoso(""));
            let mut rng = StdRng::seed_from_u64(3);
            let mut out = Vec::new();
            zones.answer(&bytes, INSIDE.parse().unwrap(), Transport::Udp, &mut rng, &mut out);
            prop_assert!(out.len() <= 1232);
        }

        /// Every well-formed query gets a well-formed response with its id and question.
        #[test]
        fn rfc1035_section_4_1_every_query_gets_a_matching_response(
            labels in proptest::collection::vec(label(), 0..4),
            in_zone in any::<bool>(),
            rtype in prop::sample::select(vec![
                RecordType::A, RecordType::AAAA, RecordType::SRV, RecordType::SOA,
                RecordType::NS, RecordType::TXT, RecordType::MX, RecordType::ANY,
            ]),
            edns in any::<bool>(),
            inside in any::<bool>(),
        ) {
            let zones = ZoneSet::new(&contoso(""));
            let mut all: Vec<String> = labels;
            if in_zone {
                all.push("contoso".into());
                all.push("com".into());
            }
            let qname = Name::from_labels(all.iter().map(|l| l.as_bytes())).unwrap();
            let name = qname.to_ascii();
            let mut q = Message::query();
            q.add_query(HQuery::query(qname, rtype));
            if edns {
                q.set_edns(Edns::new());
            }
            let bytes = q.to_vec().unwrap();
            let from = if inside { INSIDE } else { OUTSIDE };
            let m = ask_with(&zones, &bytes, from, Transport::Udp, 5);
            prop_assert_eq!(m.metadata.id, q.metadata.id);
            prop_assert_eq!(&m.queries, &q.queries);
            prop_assert_eq!(m.edns.is_some(), edns);
            let code = m.metadata.response_code;
            prop_assert!(matches!(code, ResponseCode::NoError | ResponseCode::NXDomain | ResponseCode::Refused));
            if !in_zone || name == "." {
                // Only names under contoso.com or fabrikam.com are ours.
                let ours = name.to_ascii_lowercase().ends_with("contoso.com.")
                    || name.to_ascii_lowercase().ends_with("fabrikam.com.");
                if !ours {
                    prop_assert_eq!(code, ResponseCode::Refused);
                }
            } else {
                prop_assert!(m.metadata.authoritative);
            }
        }
    }
}
