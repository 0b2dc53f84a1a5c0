//! The walk driven against a fake world: DNS answered from a generated [`RecordSet`] view, HTTP
//! answered by the real (pure) autodiscover service. Records are removed one at a time to prove
//! each fallback step.

use std::sync::Arc;

use super::*;
use crate::autodiscover::{AdRequest, Autodiscover, Home, HomeLookup, SipUri};
use crate::records::{RecordData, View};
use crate::topology::{LocalServer, Topology, TopologyConfig};

fn topology(extra: &str) -> Arc<Topology> {
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
        access = ["203.0.113.10"]
        [[topology.pools]]
        fqdn = "pool01.contoso.com"
        members = [{{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] }}]
        [[topology.pools]]
        fqdn = "pool02.contoso.com"
        web_external = "lyncweb2.contoso.com"
        members = [{{ fqdn = "fe21.contoso.com", addresses = ["10.0.0.21"] }}]
        "#
    );
    let file: File = toml::from_str(&text).unwrap();
    let local = LocalServer {
        domains: vec!["contoso.com".into()],
        ..LocalServer::default()
    };
    Arc::new(Topology::from_config(&file.topology, &local).unwrap())
}

/// Users named `p2…` live on pool02.
struct Homes;

impl HomeLookup for Homes {
    fn home_of(&self, uri: &SipUri) -> Home {
        let pool = if uri.user.starts_with("p2") {
            "pool02.contoso.com"
        } else {
            "pool01.contoso.com"
        };
        Home::Pool(pool.into())
    }
}

struct World {
    topology: Arc<Topology>,
    view: View,
    https_up: bool,
    http_up: bool,
}

impl World {
    fn new(extra: &str, view: View) -> Self {
        Self {
            topology: topology(extra),
            view,
            https_up: true,
            http_up: true,
        }
    }

    fn http_down(mut self) -> Self {
        self.https_up = false;
        self.http_up = false;
        self
    }

    fn lookup(&self, l: &Lookup) -> Result<LookupAnswer, String> {
        let records: Vec<_> = self.topology.records().lookup(self.view, &l.name).collect();
        if records.is_empty() {
            return Err("NXDOMAIN".into());
        }
        Ok(match l.kind {
            LookupKind::Address => LookupAnswer::Addresses(
                records
                    .iter()
                    .filter_map(|r| match r.data {
                        RecordData::A(a) => Some(IpAddr::V4(a)),
                        RecordData::Aaaa(a) => Some(IpAddr::V6(a)),
                        _ => None,
                    })
                    .collect(),
            ),
            LookupKind::Srv => LookupAnswer::Srv(
                records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RecordData::Srv {
                            priority,
                            weight,
                            port,
                            target,
                        } => Some(SrvRecord {
                            priority: *priority,
                            weight: *weight,
                            port: *port,
                            target: target.to_string(),
                        }),
                        _ => None,
                    })
                    .collect(),
            ),
        })
    }

    fn fetch(&self, f: &Fetch) -> Result<FetchAnswer, String> {
        let up = match f.scheme {
            Scheme::Https => self.https_up,
            Scheme::Http => self.http_up,
        };
        if !up {
            return Err("connection refused".into());
        }
        let pool = if f.host.contains("pool02") || f.host.contains("lyncweb2") {
            "pool02.contoso.com"
        } else {
            "pool01.contoso.com"
        };
        let svc = Autodiscover::new(self.topology.clone())
            .with_homes(Arc::new(Homes))
            .for_pool(pool)
            .unwrap();
        let (path, query) = match f.path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (f.path_and_query.as_str(), None),
        };
        let source = match self.view {
            View::Internal => "10.9.9.9",
            View::External => "198.51.100.9",
        };
        let host = format!("{}:{}", f.host, f.port);
        let r = svc.respond(&AdRequest {
            method: "GET",
            path,
            query,
            accept: Some(crate::autodiscover::XML_TYPE),
            host: Some(&host),
            source: Some(source.parse().unwrap()),
            scheme: f.scheme,
        });
        Ok(FetchAnswer {
            status: r.status,
            content_type: r.content_type.map(str::to_owned),
            body: r.body,
        })
    }

    fn walk(&self, user: &str, mobile: bool) -> Report {
        let mut walk = Walk::new(user, mobile, 80, 443).unwrap();
        for _ in 0..100 {
            match walk.next() {
                Action::Done => return walk.report(),
                Action::Lookup(l) => walk.on_lookup(self.lookup(&l), Duration::from_millis(1)),
                Action::Fetch(f) => walk.on_fetch(self.fetch(&f), Duration::from_millis(2)),
            }
        }
        panic!("the walk did not finish");
    }
}

fn asks(r: &Report) -> Vec<&str> {
    r.steps.iter().map(|s| s.ask.as_str()).collect()
}

#[test]
fn inside_client_finds_its_pool_through_lyncdiscoverinternal() {
    let r = World::new("", View::Internal).walk("alice@contoso.com", false);
    assert_eq!(
        asks(&r),
        [
            "A/AAAA lyncdiscoverinternal.contoso.com",
            "GET https://lyncdiscoverinternal.contoso.com/?sipuri=alice@contoso.com",
            "GET https://lyncdiscoverinternal.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@contoso.com",
            "A/AAAA pool01.contoso.com",
        ]
    );
    let result = r.result.unwrap();
    assert_eq!(
        (result.fqdn.as_str(), result.port),
        ("pool01.contoso.com", 5061)
    );
    assert_eq!(result.transport, Transport::Tls);
    assert_eq!(result.location, Location::Inside);
    assert_eq!(result.via, "autodiscover");
    assert_eq!(result.addresses, ["10.0.0.11".parse::<IpAddr>().unwrap()]);
}

#[test]
fn outside_client_falls_to_lyncdiscover_and_gets_the_access_edge() {
    let r = World::new("", View::External).walk("alice@contoso.com", false);
    assert_eq!(r.steps[0].outcome, Err("NXDOMAIN".into()));
    assert!(r.steps[0].notes[0].contains("outside"));
    assert_eq!(r.steps[1].ask, "A/AAAA lyncdiscover.contoso.com");
    let result = r.result.unwrap();
    assert_eq!(
        (result.fqdn.as_str(), result.port),
        ("sip.contoso.com", 443)
    );
    assert_eq!(result.location, Location::Outside);
}

#[test]
fn https_failure_falls_back_to_http_on_the_same_host() {
    let mut world = World::new("", View::Internal);
    world.https_up = false;
    let r = world.walk("alice@contoso.com", false);
    assert_eq!(
        r.steps[1].ask,
        "GET https://lyncdiscoverinternal.contoso.com/?sipuri=alice@contoso.com"
    );
    assert!(r.steps[1].outcome.is_err());
    assert_eq!(
        r.steps[2].ask,
        "GET http://lyncdiscoverinternal.contoso.com/?sipuri=alice@contoso.com"
    );
    assert_eq!(r.result.unwrap().via, "autodiscover");
}

#[test]
fn autodiscover_redirect_to_the_home_pool_is_followed() {
    let r = World::new("", View::Internal).walk("p2bob@contoso.com", false);
    assert!(
        asks(&r).contains(&"A/AAAA pool02.contoso.com"),
        "{:?}",
        asks(&r)
    );
    let result = r.result.unwrap();
    assert_eq!(result.fqdn, "pool02.contoso.com");
    assert_eq!(result.addresses, ["10.0.0.21".parse::<IpAddr>().unwrap()]);
}

#[test]
fn inside_fallbacks_removed_one_at_a_time() {
    // Autodiscover is down, so the DNS order decides; each omission proves the next step.
    let cases: [(&str, &str, u16, Transport); 4] = [
        (
            "",
            "SRV _sipinternaltls._tcp.contoso.com",
            5061,
            Transport::Tls,
        ),
        (
            r#""_sipinternaltls._tcp""#,
            "SRV _sipinternal._tcp.contoso.com",
            5060,
            Transport::Tcp,
        ),
        (
            r#""_sipinternaltls._tcp", "_sipinternal._tcp""#,
            "A sipinternal.contoso.com",
            5061,
            Transport::Tls,
        ),
        (
            r#""_sipinternaltls._tcp", "_sipinternal._tcp", "sipinternal""#,
            "A sip.contoso.com",
            5061,
            Transport::Tls,
        ),
    ];
    for (omit, via, port, transport) in cases {
        let world = World::new(&format!("omit_records = [{omit}]"), View::Internal).http_down();
        let r = world.walk("alice@contoso.com", false);
        let result = r.result.unwrap_or_else(|| panic!("no result with {omit}"));
        assert_eq!(result.via, via, "omit {omit}");
        assert_eq!(result.port, port, "omit {omit}");
        assert_eq!(result.transport, transport, "omit {omit}");
        assert_eq!(result.location, Location::Inside, "omit {omit}");
    }
}

#[test]
fn outside_fallbacks_removed_one_at_a_time() {
    let cases: [(&str, &str, u16); 3] = [
        ("", "SRV _sip._tls.contoso.com", 443),
        (r#""_sip._tls""#, "A sip.contoso.com", 443),
        (
            r#""_sip._tls", "external:sip""#,
            "A sipexternal.contoso.com",
            443,
        ),
    ];
    for (omit, via, port) in cases {
        let world = World::new(&format!("omit_records = [{omit}]"), View::External).http_down();
        let r = world.walk("alice@contoso.com", false);
        let result = r.result.unwrap_or_else(|| panic!("no result with {omit}"));
        assert_eq!(result.via, via, "omit {omit}");
        assert_eq!(result.port, port);
        assert_eq!(result.location, Location::Outside);
    }
}

#[test]
fn full_order_when_everything_fails() {
    let omit = r#""lyncdiscoverinternal", "lyncdiscover", "_sipinternaltls._tcp", "_sipinternal._tcp",
        "_sip._tls", "sipinternal", "sip", "sipexternal""#;
    let r = World::new(&format!("omit_records = [{omit}]"), View::Internal)
        .walk("alice@contoso.com", false);
    assert_eq!(
        asks(&r),
        [
            "A/AAAA lyncdiscoverinternal.contoso.com",
            "A/AAAA lyncdiscover.contoso.com",
            "SRV _sipinternaltls._tcp.contoso.com",
            "SRV _sipinternal._tcp.contoso.com",
            "SRV _sip._tls.contoso.com",
            "A/AAAA sipinternal.contoso.com",
            "A/AAAA sip.contoso.com",
            "A/AAAA sipexternal.contoso.com",
        ]
    );
    assert!(r.result.is_none());
    assert_eq!(r.stopped.as_deref(), Some("every discovery method failed"));
}

#[test]
fn srv_pointing_at_a_missing_name_falls_through() {
    // `sip` is gone inside, so both internal SRV records point nowhere: a present-but-wrong SRV.
    let world = World::new(r#"omit_records = ["internal:sip"]"#, View::Internal).http_down();
    let r = world.walk("alice@contoso.com", false);
    let a = asks(&r);
    assert!(a.contains(&"SRV _sipinternaltls._tcp.contoso.com"));
    assert!(a.contains(&"SRV _sipinternal._tcp.contoso.com"));
    assert_eq!(r.result.unwrap().via, "A sipinternal.contoso.com");
}

#[test]
fn mobile_client_stops_when_autodiscover_fails() {
    let r = World::new("", View::External)
        .http_down()
        .walk("alice@contoso.com", true);
    assert!(r.result.is_none());
    assert!(r.stopped.as_deref().unwrap().contains("mobile"));
    assert!(
        asks(&r).iter().all(|a| !a.starts_with("SRV")),
        "{:?}",
        asks(&r)
    );
    assert_eq!(
        asks(&r).last(),
        Some(&"GET http://lyncdiscover.contoso.com/?sipuri=alice@contoso.com")
    );
    // With autodiscover up the mobile client succeeds like any other.
    let r = World::new("", View::External).walk("alice@contoso.com", true);
    assert_eq!(r.result.unwrap().via, "autodiscover");
}

#[test]
fn bad_user_is_rejected() {
    assert!(matches!(
        Walk::new("nobody", false, 80, 443),
        Err(WalkError::BadUser(_))
    ));
}

#[test]
fn url_parsing_for_links() {
    let u = Url::parse("HTTPS://Pool.contoso.com:4443/Autodiscover/x?sipuri=a@b").unwrap();
    assert_eq!(
        (u.scheme, u.host.as_str(), u.port),
        (Scheme::Https, "pool.contoso.com", 4443)
    );
    assert_eq!(u.path_and_query, "/Autodiscover/x?sipuri=a@b");
    assert_eq!(Url::parse("http://h?x=1").unwrap().path_and_query, "/?x=1");
    assert_eq!(Url::parse("http://[::1]/").unwrap().port, 80);
    assert!(Url::parse("ftp://h/").is_none());
    assert!(Url::parse("http://user@h/").is_none());
}

#[test]
fn srv_selection_prefers_low_priority_then_high_weight() {
    let r = |p, w, t: &str| SrvRecord {
        priority: p,
        weight: w,
        port: 1,
        target: t.into(),
    };
    assert_eq!(
        pick_srv(vec![r(10, 0, "a"), r(0, 5, "b"), r(0, 50, "c")]).target,
        "c"
    );
}

#[test]
fn report_renders_text_and_json() {
    let r = World::new("", View::Internal).walk("alice@contoso.com", false);
    let text = r.render_text();
    assert!(text.starts_with("Discovery for alice@contoso.com (desktop client)\n"));
    assert!(text.contains("  1. DNS  A/AAAA lyncdiscoverinternal.contoso.com"));
    assert!(
        text.contains("Result: register at pool01.contoso.com:5061 over TLS"),
        "{text}"
    );
    assert!(text.contains("the client is inside"));
    let json: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(json["steps"].as_array().unwrap().len(), r.steps.len());
    assert_eq!(json["steps"][0]["kind"], "dns");
    assert!(json["steps"][0]["ms"].as_f64().unwrap() > 0.0);
    assert_eq!(json["result"]["fqdn"], "pool01.contoso.com");
    assert_eq!(json["result"]["port"], 5061);
    assert_eq!(json["result"]["transport"], "tls");
    assert_eq!(json["result"]["location"], "inside");

    let failed = World::new("", View::External)
        .http_down()
        .walk("alice@contoso.com", true);
    let json: serde_json::Value = serde_json::from_str(&failed.render_json()).unwrap();
    assert!(json["result"].is_null());
    assert!(failed.render_text().contains("Result: no registrar found"));
}

proptest::proptest! {
    #[test]
    fn arbitrary_links_never_panic(href in ".{0,200}") {
        if let Some(url) = Url::parse(&href) {
            let fetch = url.into_fetch(Vec::new());
            proptest::prop_assert!(fetch.path_and_query.starts_with('/'));
        }
    }
}
