//! Autodiscover documents checked from the client side: XML read the way SIPE reads it, JSON
//! parsed with serde_json.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::topology::{LocalServer, TopologyConfig};

const INSIDE: &str = "10.1.1.1";
const OUTSIDE: &str = "198.51.100.7";

fn topology() -> Arc<Topology> {
    #[derive(serde::Deserialize)]
    struct File {
        topology: TopologyConfig,
    }
    let file: File = toml::from_str(
        r#"[topology]
        reverse_proxy = ["203.0.113.20"]
        [topology.edge]
        access = ["203.0.113.10"]
        [[topology.pools]]
        fqdn = "pool01.contoso.com"
        members = [{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] }]
        [[topology.pools]]
        fqdn = "pool02.contoso.com"
        web_external = "lyncweb2.contoso.com"
        members = [{ fqdn = "fe21.contoso.com", addresses = ["10.0.0.21"] }]
        [[topology.remote_domains]]
        domain = "fabrikam.com"
        autodiscover = "https://lyncdiscover.fabrikam.com/Autodiscover/AutodiscoverService.svc/root"
        "#,
    )
    .unwrap();
    let local = LocalServer {
        domains: vec!["contoso.com".into(), "litware.com".into()],
        ..LocalServer::default()
    };
    Arc::new(Topology::from_config(&file.topology, &local).unwrap())
}

/// Homes users whose name starts with "p2" on pool02, "ghost" nowhere, the rest on pool01.
struct TwoPools;

impl HomeLookup for TwoPools {
    fn home_of(&self, uri: &SipUri) -> Home {
        if uri.user.starts_with("p2") {
            Home::Pool("fe21.contoso.com".into())
        } else if uri.user == "ghost" {
            Home::Unknown
        } else {
            Home::Pool("pool01.contoso.com".into())
        }
    }
}

fn service() -> Autodiscover {
    Autodiscover::new(topology()).with_homes(Arc::new(TwoPools))
}

fn get(
    svc: &Autodiscover,
    target: &str,
    accept: Option<&str>,
    from: &str,
    scheme: Scheme,
) -> AdResponse {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    svc.respond(&AdRequest {
        method: "GET",
        path,
        query,
        accept,
        host: Some("lyncdiscoverinternal.contoso.com"),
        source: Some(from.parse().unwrap()),
        scheme,
    })
}

fn xml(svc: &Autodiscover, target: &str, from: &str) -> ClientView {
    let r = get(svc, target, Some(XML_TYPE), from, Scheme::Http);
    assert_eq!(r.status, 200, "{target}: {r:?}");
    assert!(
        r.content_type
            .unwrap()
            .starts_with("application/vnd.microsoft.rtc.autodiscover+xml")
    );
    read_xml(&r.body).unwrap()
}

fn json(svc: &Autodiscover, target: &str, from: &str) -> Value {
    let r = get(svc, target, Some(JSON_TYPE), from, Scheme::Https);
    assert_eq!(r.status, 200, "{target}: {r:?}");
    assert_eq!(r.content_type, Some(JSON_TYPE));
    serde_json::from_str(&r.body).unwrap()
}

/// Strips `scheme://host` so a link can be fed back to `respond`.
fn path_of(href: &str) -> &str {
    let rest = href.split_once("://").unwrap().1;
    &rest[rest.find('/').unwrap()..]
}

#[test]
fn ms_ocdiscws_root_has_user_domain_and_self_links_in_xml() {
    let v = xml(&service(), "/?sipuri=alice@contoso.com", INSIDE);
    assert_eq!(v.access_location.as_deref(), Some("Internal"));
    let tokens: Vec<&str> = v.root_links.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tokens, ["User", "Domain", "Self"]);
    assert_eq!(
        v.next_root_link(),
        Some((
            "User",
            "http://lyncdiscoverinternal.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@contoso.com"
        ))
    );
}

#[test]
fn sipe_walk_root_then_user_yields_the_pool_on_5061() {
    // SIPE: GET {http}://LyncDiscoverInternal.<domain>/?sipuri=<user>, follow the first
    // Root/Link User or Redirect, then read User/SipClientInternalAccess.
    let svc = service();
    let root = xml(&svc, "/?sipuri=alice@contoso.com", INSIDE);
    let (token, href) = root.next_root_link().unwrap();
    assert_eq!(token, "User");
    let user = xml(&svc, path_of(href), INSIDE);
    assert!(user.has_user);
    assert_eq!(user.access_location.as_deref(), Some("Internal"));
    assert_eq!(
        user.access("SipClientInternalAccess"),
        Some(("pool01.contoso.com", 5061))
    );
    assert_eq!(
        user.access("SipServerInternalAccess"),
        Some(("pool01.contoso.com", 5061))
    );
    assert_eq!(
        user.access("SipClientExternalAccess"),
        Some(("sip.contoso.com", 443))
    );
    assert_eq!(
        user.access("SipServerExternalAccess"),
        Some(("sip.contoso.com", 5061))
    );
    let tokens: Vec<&str> = user.user_links.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tokens,
        ["Internal/Autodiscover", "External/Autodiscover", "Self"]
    );
    assert_eq!(
        user.user_links[0].1,
        "https://pool01.contoso.com/Autodiscover/AutodiscoverService.svc/root"
    );
    assert_eq!(
        user.user_links[1].1,
        "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root"
    );
}

#[test]
fn access_location_follows_the_source_network() {
    let v = xml(
        &service(),
        "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@contoso.com",
        OUTSIDE,
    );
    assert_eq!(v.access_location.as_deref(), Some("External"));
    let unknown = service().respond(&AdRequest {
        method: "GET",
        path: "/",
        query: None,
        accept: Some(XML_TYPE),
        host: None,
        source: None,
        scheme: Scheme::Https,
    });
    let v = read_xml(&unknown.body).unwrap();
    assert_eq!(v.access_location.as_deref(), Some("External"));
    // Without a Host header the links name the pool's external web services.
    assert!(
        v.root_links[0]
            .1
            .starts_with("https://lyncweb.contoso.com/"),
        "{:?}",
        v.root_links
    );
}

#[test]
fn json_root_and_user_documents() {
    let svc = service();
    let root = json(
        &svc,
        "/Autodiscover/AutodiscoverService.svc/root?originalDomain=contoso.com",
        OUTSIDE,
    );
    assert_eq!(root["AccessLocation"], "External");
    assert_eq!(root["Root"]["Links"][0]["token"], "User");
    let user_href = root["_links"]["user"]["href"].as_str().unwrap();
    assert_eq!(
        user_href,
        "https://lyncdiscoverinternal.contoso.com/Autodiscover/AutodiscoverService.svc/root/user?originalDomain=contoso.com"
    );
    assert!(root["_links"]["self"]["href"].is_string());

    let user = json(&svc, path_of(user_href), OUTSIDE);
    assert_eq!(user["AccessLocation"], "External");
    assert_eq!(
        user["User"]["SipClientExternalAccess"]["fqdn"],
        "sip.contoso.com"
    );
    assert_eq!(user["User"]["SipClientExternalAccess"]["port"], 443);
    assert_eq!(
        user["User"]["SipClientInternalAccess"]["fqdn"],
        "pool01.contoso.com"
    );
    assert_eq!(user["User"]["SipServerInternalAccess"]["port"], 5061);
    assert_eq!(user["User"]["SipServerExternalAccess"]["port"], 5061);
    assert_eq!(user["User"]["Links"][0]["token"], "Internal/Autodiscover");
    assert!(user["_links"]["self"]["href"].is_string());
}

#[test]
fn json_is_the_default_and_xml_needs_asking() {
    let svc = service();
    assert_eq!(
        get(&svc, "/", None, INSIDE, Scheme::Http).content_type,
        Some(JSON_TYPE)
    );
    assert_eq!(
        get(&svc, "/", Some("*/*"), INSIDE, Scheme::Http).content_type,
        Some(JSON_TYPE)
    );
    assert_eq!(
        get(&svc, "/", Some("text/xml"), INSIDE, Scheme::Http).content_type,
        Some(XML_TYPE)
    );
}

#[test]
fn ms_ocdiscws_redirect_for_a_user_homed_on_another_pool() {
    let svc = service();
    // At the root (what SIPE follows) ...
    let v = xml(&svc, "/?sipuri=p2bob@contoso.com", INSIDE);
    assert_eq!(v.root_links.len(), 1);
    assert_eq!(
        v.next_root_link(),
        Some((
            "Redirect",
            "http://pool02.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=p2bob@contoso.com"
        ))
    );
    // ... and at the user resource: exactly one Redirect link, no access elements.
    let v = xml(
        &svc,
        "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=p2bob@contoso.com",
        OUTSIDE,
    );
    assert!(v.has_user);
    assert!(v.user_access.is_empty());
    assert_eq!(v.user_links.len(), 1);
    assert_eq!(
        v.user_redirect(),
        Some(
            "http://lyncweb2.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=p2bob@contoso.com"
        )
    );
    let j = json(
        &svc,
        "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=p2bob@contoso.com",
        OUTSIDE,
    );
    assert_eq!(
        j["_links"]["redirect"]["href"],
        "https://lyncweb2.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=p2bob@contoso.com"
    );
    // The other pool's own service answers the user itself.
    let pool2 = Autodiscover::new(topology())
        .with_homes(Arc::new(TwoPools))
        .for_pool("pool02.contoso.com")
        .unwrap();
    let v = xml(
        &pool2,
        "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=p2bob@contoso.com",
        INSIDE,
    );
    assert_eq!(
        v.access("SipClientInternalAccess"),
        Some(("pool02.contoso.com", 5061))
    );
}

#[test]
fn ms_ocdiscws_redirect_for_a_domain_hosted_elsewhere() {
    let v = xml(&service(), "/?sipuri=carol@fabrikam.com", OUTSIDE);
    assert_eq!(
        v.next_root_link(),
        Some((
            "Redirect",
            "https://lyncdiscover.fabrikam.com/Autodiscover/AutodiscoverService.svc/root?sipuri=carol@fabrikam.com"
        ))
    );
}

#[test]
fn unknown_domain_and_unknown_home_are_404() {
    let svc = service();
    for target in [
        "/?sipuri=dave@example.org",
        "/Autodiscover/AutodiscoverService.svc/root?originalDomain=example.org",
        "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=ghost@contoso.com",
        "/nosuch",
    ] {
        let r = get(&svc, target, Some(XML_TYPE), INSIDE, Scheme::Http);
        assert_eq!(r.status, 404, "{target}");
        assert!(r.body.is_empty());
    }
}

#[test]
fn second_sip_domain_gets_its_own_access_edge_name() {
    let v = xml(
        &service(),
        "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=erin@litware.com",
        OUTSIDE,
    );
    assert_eq!(
        v.access("SipClientExternalAccess"),
        Some(("sip.litware.com", 443))
    );
}

#[test]
fn domain_taken_from_the_lyncdiscover_host_name() {
    let r = Autodiscover::new(topology()).respond(&AdRequest {
        method: "GET",
        path: "/",
        query: None,
        accept: Some(XML_TYPE),
        host: Some("lyncdiscover.example.org"),
        source: Some(OUTSIDE.parse().unwrap()),
        scheme: Scheme::Https,
    });
    assert_eq!(r.status, 404);
}

#[test]
fn bad_requests() {
    let svc = service();
    assert_eq!(
        get(
            &svc,
            "/?sipuri=nobody",
            Some(XML_TYPE),
            INSIDE,
            Scheme::Http
        )
        .status,
        400
    );
    let post = svc.respond(&AdRequest {
        method: "POST",
        path: "/",
        query: None,
        accept: None,
        host: None,
        source: None,
        scheme: Scheme::Http,
    });
    assert_eq!(post.status, 405);
    assert_eq!(post.headers, vec![("Allow", "GET, HEAD".to_owned())]);
}

#[test]
fn hostile_host_header_is_not_copied_into_links() {
    let r = service().respond(&AdRequest {
        method: "GET",
        path: "/",
        query: None,
        accept: Some(XML_TYPE),
        host: Some("x\"/><Link token=\"Redirect\" href=\"http://evil"),
        source: Some(INSIDE.parse().unwrap()),
        scheme: Scheme::Http,
    });
    let v = read_xml(&r.body).unwrap();
    assert_eq!(v.root_links[0].0, "User");
    assert!(
        v.root_links
            .iter()
            .all(|(_, h)| h.starts_with("http://pool01.contoso.com")),
        "{:?}",
        v.root_links
    );
}

#[test]
fn ms_ocdiscws_http_root_redirects_to_https_when_asked() {
    let svc = service().with_http_redirect(true);
    let v = xml(&svc, "/?sipuri=alice@contoso.com", INSIDE);
    assert_eq!(
        v.root_links,
        vec![(
            "Redirect".to_owned(),
            "https://lyncdiscoverinternal.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=alice@contoso.com".to_owned()
        )]
    );
    let https = get(
        &svc,
        "/?sipuri=alice@contoso.com",
        Some(XML_TYPE),
        INSIDE,
        Scheme::Https,
    );
    assert_eq!(
        read_xml(&https.body).unwrap().next_root_link().unwrap().0,
        "User"
    );
}

#[test]
fn domain_resource_lists_the_default_pool() {
    let v = xml(
        &service(),
        "/Autodiscover/AutodiscoverService.svc/root/domain?originalDomain=contoso.com",
        INSIDE,
    );
    assert!(!v.has_user);
    let r = get(
        &service(),
        "/Autodiscover/AutodiscoverService.svc/root/domain?originalDomain=contoso.com",
        Some(XML_TYPE),
        INSIDE,
        Scheme::Http,
    );
    assert!(
        r.body.contains(
            r#"<Domain><SipServerInternalAccess fqdn="pool01.contoso.com" port="5061"/>"#
        ),
        "{}",
        r.body
    );
}

#[test]
fn ms_ocdiscws_user_resource_of_a_domain_hosted_elsewhere_is_a_user_redirect() {
    let target = "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=carol@fabrikam.com";
    let v = xml(&service(), target, INSIDE);
    assert!(v.has_user);
    assert!(v.user_access.is_empty());
    assert_eq!(
        v.user_redirect(),
        Some(
            "https://lyncdiscover.fabrikam.com/Autodiscover/AutodiscoverService.svc/root?sipuri=carol@fabrikam.com"
        )
    );
    let j = json(&service(), target, OUTSIDE);
    assert_eq!(
        j["_links"]["redirect"]["href"],
        "https://lyncdiscover.fabrikam.com/Autodiscover/AutodiscoverService.svc/root?sipuri=carol@fabrikam.com"
    );
    assert_eq!(j["User"]["Links"].as_array().map(Vec::len), Some(1));
    assert!(j["User"].get("SipClientInternalAccess").is_none());
}

/// A server placed in the second pool serves as that pool without being told: its users get
/// their access there, the first pool's users a Redirect to the first pool's service, which
/// answers them itself (the chain a client follows ends in one hop).
#[test]
fn a_server_located_in_the_second_pool_serves_it_and_redirects_the_first_pools_users() {
    let located = Arc::new(
        (*topology())
            .clone()
            .locate(Some("fe21.contoso.com"), &[])
            .unwrap(),
    );
    let pool2 = Autodiscover::new(located).with_homes(Arc::new(TwoPools));
    let pool1 = Autodiscover::new(topology()).with_homes(Arc::new(TwoPools));
    let user = |name: &str| {
        format!("/Autodiscover/AutodiscoverService.svc/root/user?sipuri={name}@contoso.com")
    };

    let own = xml(&pool2, &user("p2bob"), INSIDE);
    assert_eq!(
        own.access("SipClientInternalAccess"),
        Some(("pool02.contoso.com", 5061))
    );
    let other = xml(&pool2, &user("alice"), INSIDE);
    let href = other.user_redirect().expect("a Redirect").to_owned();
    assert_eq!(
        href,
        "http://pool01.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=alice@contoso.com"
    );
    // The client restarts at the home pool's root: User link, then its access.
    let root = xml(&pool1, path_of(&href), INSIDE);
    let (token, user_href) = root.next_root_link().unwrap();
    assert_eq!(token, "User");
    let at_home = xml(&pool1, path_of(user_href), INSIDE);
    assert_eq!(
        at_home.access("SipClientInternalAccess"),
        Some(("pool01.contoso.com", 5061))
    );
    // Outside, the Redirect names the home pool's external web services.
    let j = json(&pool2, &user("alice"), OUTSIDE);
    assert_eq!(
        j["_links"]["redirect"]["href"],
        "https://lyncweb.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=alice@contoso.com"
    );
}
