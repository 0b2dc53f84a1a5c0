//! Two Front End pools (issue 4 points 3 and 6): `pool01.pools.test` with `fe01` on 127.0.0.1
//! and `pool02.pools.test` with `fe21` on 127.0.0.2, one `herald serve` each, one shared store
//! (see `support::pool`). Users are created in the first pool; `herald user move --to
//! pool02.pools.test` homes some on the second.
//!
//! A user homed on the other pool is sent home the way Lync does it: a REGISTER is answered
//! `301 Redirect request to Home Server` with the home server's Contact (MS-SIP §4.1; checked
//! with our client and with SIPp), and the autodiscover service answers its root and user
//! resources with a single `Redirect` link to the root of the home pool's service
//! ([MS-OCDISCWS] 3.1.5.2, 3.1.5.3, 2.2.5.5) in XML and JSON, inside and outside (curl). The
//! redirect's host resolves through herald's own DNS (dig) to the home pool, where the walk
//! ends with that pool's access; `herald discover` walks the same way by itself.
//!
//! `internal_networks` is 127.0.0.0/24: [`INSIDE`] and both servers are inside, [`OUTSIDE`]
//! is not.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::support::autodiscover::{
    AdJson, JSON, ROOT, Reply, XML, assert_xml, curl, json, xml_attr, xml_links,
};
use crate::support::dns::{Dig, dig, discover, herald_cli, shared};
use crate::support::pool::{DIRECTORY_PATIENCE, Member, Pool, PoolSetup, run_sipp_redirect};
use crate::support::sip::contact_expiries;
use crate::support::{Account, Server, Ua, assert_status, show};

const DOMAIN: &str = "pools.test";
/// A client address inside the deployment's `internal_networks`.
const INSIDE: &str = "127.0.0.9";
/// A client address outside it.
const OUTSIDE: &str = "127.0.9.1";

/// Users homed on the first pool (where `user add` puts everyone).
const FIRST_POOL_USERS: &[&str] = &["p1udp", "p1tcp", "p1tls", "p1ad", "p1sipp"];
/// Users moved to the second pool before the servers start.
const SECOND_POOL_USERS: &[&str] = &["p2udp", "p2tcp", "p2tls", "p2ad", "p2sipp", "p2walk"];
/// Users moved while the servers run, one per test.
const MOVERS: &[&str] = &["mover", "admover"];

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn account(user: &str) -> Account {
    Account::new(user, &password(user), DOMAIN)
}

fn fqdn(label: &str) -> String {
    format!("{label}.{DOMAIN}")
}

/// The two pools with their users, homes assigned, both servers running.
fn pools() -> Arc<Pool> {
    static SLOT: Mutex<Weak<Pool>> = Mutex::new(Weak::new());
    shared(&SLOT, || {
        let mut setup = PoolSetup::two_pools(DOMAIN)
            .sip("digest_algorithms", "[\"MD5\"]")
            .topology("internal_networks", "[\"127.0.0.0/24\"]");
        for u in FIRST_POOL_USERS
            .iter()
            .chain(SECOND_POOL_USERS)
            .chain(MOVERS)
        {
            setup = setup.user(u, &password(u));
        }
        let homes = setup.homes();
        for u in SECOND_POOL_USERS {
            homes
                .cli(&["user", "move", &uri(u), "--to", &fqdn("pool02")])
                .success();
        }
        homes.start()
    })
}

fn uri(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

/// The running server and member entry of the pool named `pool`.
fn server_of<'a>(p: &'a Pool, pool: &str) -> (&'a Member, &'a Server) {
    let i = p
        .homes
        .setup
        .members
        .iter()
        .position(|m| m.pool == pool)
        .unwrap_or_else(|| panic!("no member of {pool}"));
    (&p.homes.setup.members[i], &p.servers[i])
}

/// The user's home pool and the other one, each with its member and server.
fn home_and_other<'a>(
    p: &'a Pool,
    user: &str,
) -> ((&'a Member, &'a Server), (&'a Member, &'a Server)) {
    let home = p.homes.pool_of(user);
    let other = if home == fqdn("pool01") {
        fqdn("pool02")
    } else {
        fqdn("pool01")
    };
    (server_of(p, &home), server_of(p, &other))
}

/// `user add` homes new users on the first pool; `user move --to <pool>` homes them on a
/// server of that pool, and `user show` names both the server and the pool.
#[test]
fn users_are_created_in_the_first_pool_and_moved_to_another_by_pool_name() {
    let p = pools();
    for u in FIRST_POOL_USERS {
        assert_eq!(p.homes.home_of(u), fqdn("fe01"), "{u}");
        assert_eq!(p.homes.pool_of(u), fqdn("pool01"), "{u}");
    }
    for u in SECOND_POOL_USERS {
        assert_eq!(p.homes.home_of(u), fqdn("fe21"), "{u}");
        assert_eq!(p.homes.pool_of(u), fqdn("pool02"), "{u}");
    }
    // Anything else is refused, naming every pool and its members.
    let run = p
        .homes
        .cli(&["user", "move", &uri("p1udp"), "--to", &fqdn("pool03")])
        .failure();
    for name in ["pool01", "fe01", "pool02", "fe21"] {
        assert!(
            run.stderr.contains(&fqdn(name)),
            "{name} missing:\n{}",
            run.stderr
        );
    }
    assert_eq!(p.homes.home_of("p1udp"), fqdn("fe01"));
}

/// A REGISTER at the server of the pool the user is not homed in, on each transport and in
/// both directions, is authenticated and answered 301 with the home server's address in the
/// other pool, the same shape as inside one pool; at home the user registers (200).
fn redirected_across_pools(user: &str, transport: &str) {
    let p = pools();
    let ((home, home_server), (_, other_server)) = home_and_other(&p, user);
    p.assert_sent_home(other_server, transport, &account(user), home);

    let mut at_home = Ua::new(p.client(home_server, transport), account(user));
    let contact = at_home.client.contact(user);
    let r = at_home.register(&[&contact], Some(300));
    assert_status(&r, 200);
    assert_eq!(contact_expiries(&r).len(), 1, "{}", show(&r));
}

#[test]
fn ms_sip_register_at_the_other_pool_is_redirected_home_over_udp() {
    redirected_across_pools("p2udp", "udp");
    redirected_across_pools("p1udp", "udp");
}

#[test]
fn ms_sip_register_at_the_other_pool_is_redirected_home_over_tcp() {
    redirected_across_pools("p2tcp", "tcp");
    redirected_across_pools("p1tcp", "tcp");
}

#[test]
fn ms_sip_register_at_the_other_pool_is_redirected_home_over_tls() {
    redirected_across_pools("p2tls", "tls");
    redirected_across_pools("p1tls", "tls");
}

/// SIPp (`tests/sipp/register_redirect.xml`) signs in at the other pool's server and checks
/// the 301's Contact is the home server in its pool; told to expect the wrong server, it fails.
#[test]
fn ms_sip_sipp_register_at_the_other_pool_is_redirected_home() {
    let p = pools();
    for user in ["p2sipp", "p1sipp"] {
        let ((home, _), (other, other_server)) = home_and_other(&p, user);
        let sipp = |expected: &str| {
            run_sipp_redirect(
                DOMAIN,
                other_server.udp(),
                "u1",
                user,
                &password(user),
                expected,
            )
        };
        let expected = p.home_contact(home, "udp");
        let (code, out) = sipp(&expected);
        assert_eq!(
            code,
            0,
            "sipp was not redirected to {expected}:\n{out}\n{}",
            p.logs()
        );
        assert!(
            out.contains(&format!("redirected to {expected}")),
            "sipp's log does not show the 301 Contact:\n{out}"
        );
        println!("sipp as {user} at {}:\n{out}", other.fqdn);

        let (code, out) = sipp(&p.home_contact(other, "udp"));
        assert_ne!(code, 0, "sipp accepted a 301 to the wrong server:\n{out}");
        assert!(out.contains("is not the home member"), "{out}");
    }
}

/// `herald user move` to the other pool while both servers run: the old home starts
/// redirecting to the new pool's server, which accepts; moving back turns it round.
#[test]
fn user_move_to_another_pool_redirects_at_the_old_home() {
    let p = pools();
    let (fe01, first) = server_of(&p, &fqdn("pool01"));
    let (fe21, second) = server_of(&p, &fqdn("pool02"));
    assert_status(&p.register_until(first, &account("mover"), 200), 200);

    p.homes
        .cli(&["user", "move", &uri("mover"), "--to", &fqdn("pool02")])
        .success();
    assert_eq!(p.homes.home_of("mover"), fqdn("fe21"));
    let r = p.register_until(first, &account("mover"), 301);
    p.assert_redirect(&r, &p.home_contact(fe21, "udp"));
    assert_status(&p.register_until(second, &account("mover"), 200), 200);

    p.homes
        .cli(&["user", "move", &uri("mover"), "--to", &fqdn("fe01")])
        .success();
    let r = p.register_until(second, &account("mover"), 301);
    p.assert_redirect(&r, &p.home_contact(fe01, "udp"));
    assert_status(&p.register_until(first, &account("mover"), 200), 200);
}

// ---------------------------------------------------------------------------------------------
// Autodiscover

/// GET `url` from `source` at `member`'s web listener, whatever host the URL names.
fn ad_get(p: &Pool, member: &Member, source: &str, url: &str, accept: Option<&str>) -> Reply {
    curl(
        &p.homes.cert_pem(),
        source,
        url,
        accept,
        &member.ip.to_string(),
    )
}

/// `scheme://host:port` of the web listener for `scheme` (the same port on both servers).
fn origin(p: &Pool, scheme: &str, host: &str) -> String {
    let port = match scheme {
        "https" => p.ports().https,
        _ => p.ports().http,
    };
    format!("{scheme}://{host}:{port}")
}

/// The Redirect every document about `user` carries when asked at a server of the other pool:
/// the root of the home pool's service, on its internal web services name inside and on its
/// external one outside (without a reverse proxy, published by the pool itself).
fn expected_redirect(p: &Pool, scheme: &str, source: &str, user: &str) -> String {
    let home = p.homes.pool_of(user);
    let host = match (source, home.as_str()) {
        (INSIDE, h) => h.to_owned(),
        (_, h) if h == fqdn("pool01") => fqdn("lyncweb"),
        _ => fqdn("lyncweb02"),
    };
    format!("{}{ROOT}?sipuri={user}@{DOMAIN}", origin(p, scheme, &host))
}

/// (source, name the client asks, AccessLocation).
const SIDES: [(&str, &str, &str); 2] = [
    (INSIDE, "lyncdiscoverinternal", "Internal"),
    (OUTSIDE, "lyncdiscover", "External"),
];

/// At each server, for a user of the other pool, in XML and JSON, over HTTP and HTTPS, inside
/// and outside: the root answers a single `Redirect` link ([MS-OCDISCWS] 3.1.5.2), the user
/// resource a `User` with exactly one `Redirect` link and no access ([MS-OCDISCWS] 3.1.5.3),
/// both to the home pool's root ([MS-OCDISCWS] 2.2.5.5).
#[test]
fn ms_ocdiscws_user_of_the_other_pool_gets_a_redirect_to_its_pools_root() {
    let p = pools();
    for (user, at_pool) in [("p2ad", "pool01"), ("p1ad", "pool02")] {
        let (member, _) = server_of(&p, &fqdn(at_pool));
        let to = member.ip.to_string();
        for scheme in ["http", "https"] {
            for (source, label, location) in SIDES {
                let ctx = format!("{user} at {} {scheme} from {source}", member.fqdn);
                let want = expected_redirect(&p, scheme, source, user);
                let base = origin(&p, scheme, &fqdn(label));
                let cert = p.homes.cert_pem();
                let get =
                    |path: &str, accept| curl(&cert, source, &format!("{base}{path}"), accept, &to);

                let root = get(&format!("/?sipuri={user}@{DOMAIN}"), Some(XML));
                assert_xml(&root, location, &ctx);
                assert!(root.body.contains("<Root>"), "{ctx}: {}", root.body);
                assert_eq!(
                    xml_links(&root.body),
                    [("Redirect".to_owned(), want.clone())],
                    "{ctx}: {}",
                    root.body
                );

                let user_path = format!("{ROOT}/user?sipuri={user}@{DOMAIN}");
                let x = get(&user_path, Some(XML));
                assert_eq!(x.status, 200, "{ctx}: {x:?}");
                assert!(x.body.contains("<User><Link "), "{ctx}: {}", x.body);
                assert!(!x.body.contains("Access "), "{ctx}: {}", x.body);
                assert_eq!(
                    xml_links(&x.body),
                    [("Redirect".to_owned(), want.clone())],
                    "{ctx}: {}",
                    x.body
                );

                for accept in [Some(JSON), None] {
                    let j = get(&user_path, accept);
                    assert_eq!(j.status, 200, "{ctx}: {j:?}");
                    assert_eq!(j.content_type, JSON, "{ctx}");
                    let doc: AdJson = json(&j.body);
                    assert_eq!(doc.access_location, location, "{ctx}");
                    let u = doc.user.expect("a User object");
                    assert!(u.sip_client_internal_access.is_none(), "{ctx}: {}", j.body);
                    let links: Vec<(&str, &str)> = u
                        .links
                        .iter()
                        .map(|l| (l.token.as_str(), l.href.as_str()))
                        .collect();
                    assert_eq!(links, [("Redirect", want.as_str())], "{ctx}");
                    let hal: Vec<(&str, &str)> = doc
                        .hal
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.href.as_str()))
                        .collect();
                    assert_eq!(hal, [("redirect", want.as_str())], "{ctx}");

                    let j = get(&format!("/?sipuri={user}@{DOMAIN}"), accept);
                    let doc: AdJson = json(&j.body);
                    let links: Vec<String> = doc
                        .root
                        .expect("a Root object")
                        .links
                        .into_iter()
                        .map(|l| format!("{} {}", l.token, l.href))
                        .collect();
                    assert_eq!(links, [format!("Redirect {want}")], "{ctx}");
                }
            }
        }
    }
}

/// A user of this server's own pool gets its SIP access here, in both formats and views:
/// the pool FQDN on the SIP TLS port inside, the Access Edge name (this server without an Edge)
/// outside.
#[test]
fn ms_ocdiscws_user_of_this_pool_gets_its_access_here() {
    let p = pools();
    for (user, pool) in [("p1ad", "pool01"), ("p2ad", "pool02")] {
        let (member, _) = server_of(&p, &fqdn(pool));
        for scheme in ["http", "https"] {
            for (source, label, location) in SIDES {
                let ctx = format!("{user} at {} {scheme} from {source}", member.fqdn);
                let url = format!(
                    "{}{ROOT}/user?sipuri={user}@{DOMAIN}",
                    origin(&p, scheme, &fqdn(label))
                );
                let x = ad_get(&p, member, source, &url, Some(XML));
                assert_xml(&x, location, &ctx);
                let tokens: BTreeSet<String> =
                    xml_links(&x.body).into_iter().map(|(t, _)| t).collect();
                assert!(!tokens.contains("Redirect"), "{ctx}: {}", x.body);
                for (element, host) in [
                    ("SipClientInternalAccess", fqdn(pool)),
                    ("SipServerInternalAccess", fqdn(pool)),
                    ("SipClientExternalAccess", fqdn("sip")),
                ] {
                    assert_eq!(
                        xml_attr(&x.body, element, "fqdn"),
                        Some(host),
                        "{ctx} {element}: {}",
                        x.body
                    );
                    assert_eq!(
                        xml_attr(&x.body, element, "port"),
                        Some(p.ports().tls.to_string()),
                        "{ctx} {element}"
                    );
                }
                let j = ad_get(&p, member, source, &url, Some(JSON));
                let doc: AdJson = json(&j.body);
                let u = doc.user.expect("a User object");
                assert_eq!(
                    u.sip_client_internal_access.map(|a| (a.fqdn, a.port)),
                    Some((fqdn(pool), p.ports().tls)),
                    "{ctx}"
                );
            }
        }
    }
}

/// The A answer of `name` at `server`'s DNS, asked from `source`, over UDP then TCP (both must
/// agree); the addresses sorted.
#[track_caller]
fn resolve(server: SocketAddr, source: &str, name: &str) -> Vec<String> {
    let udp = dig(server, source, false, name, "A");
    let tcp = dig(server, source, true, name, "A");
    assert_eq!(udp.status, "NOERROR", "{name} from {source}:\n{}", udp.text);
    assert_eq!(
        udp.sorted_data(),
        tcp.sorted_data(),
        "{name}: UDP and TCP differ"
    );
    udp.sorted_data()
}

/// The chain a client follows: the first server's Redirect names a host that herald's DNS
/// (asked from the same source) resolves to the home pool's server, whose root links the user
/// resource, which gives the home pool's access. Inside and outside, XML over HTTPS and HTTP.
#[test]
fn ms_ocdiscws_redirect_resolves_through_herald_dns_to_the_home_pool() {
    let p = pools();
    let (_, first) = server_of(&p, &fqdn("pool01"));
    let dns = SocketAddr::new(first.udp().ip(), p.ports().dns);
    let (fe21, _) = server_of(&p, &fqdn("pool02"));
    let cert = p.homes.cert_pem();
    for scheme in ["https", "http"] {
        for (source, label, location) in SIDES {
            let ctx = format!("{scheme} from {source}");
            let start = format!("{}/?sipuri=p2ad@{DOMAIN}", origin(&p, scheme, &fqdn(label)));
            let first_ip = resolve(dns, source, &fqdn(label));
            assert_eq!(first_ip, ["127.0.0.1"], "{ctx}");
            let root = curl(&cert, source, &start, Some(XML), &first_ip[0]);
            let (token, href) = xml_links(&root.body)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("{ctx}: no link in {}", root.body));
            assert_eq!(token, "Redirect", "{ctx}");
            let host = href
                .split("://")
                .nth(1)
                .and_then(|r| r.split([':', '/']).next())
                .unwrap_or_default()
                .to_owned();
            let home_ip = resolve(dns, source, &host);
            assert_eq!(home_ip, [fe21.ip.to_string()], "{ctx}: {host}");

            let root = curl(&cert, source, &href, Some(XML), &home_ip[0]);
            assert_eq!(root.status, 200, "{ctx}: {root:?}");
            let user_href = xml_links(&root.body)
                .into_iter()
                .find(|(t, _)| t == "User")
                .map(|(_, h)| h)
                .unwrap_or_else(|| panic!("{ctx}: no User link at home: {}", root.body));
            let user = curl(&cert, source, &user_href, Some(XML), &home_ip[0]);
            assert_xml(&user, location, &ctx);
            assert_eq!(
                xml_attr(&user.body, "SipClientInternalAccess", "fqdn"),
                Some(fqdn("pool02")),
                "{ctx}: {}",
                user.body
            );
        }
    }
}

/// `herald user move` while both run: autodiscover at the first pool's server stops answering
/// the user itself and redirects to the second pool (and back), as the registrar does.
#[test]
fn user_move_to_another_pool_turns_autodiscover_into_a_redirect() {
    let p = pools();
    let (fe01, _) = server_of(&p, &fqdn("pool01"));
    let url = format!(
        "{}{ROOT}/user?sipuri=admover@{DOMAIN}",
        origin(&p, "http", &fqdn("lyncdiscoverinternal"))
    );
    let links = || {
        let r = ad_get(&p, fe01, INSIDE, &url, Some(XML));
        assert_eq!(r.status, 200, "{r:?}");
        xml_links(&r.body)
    };
    let until = |redirect: Option<String>| {
        let deadline = Instant::now() + DIRECTORY_PATIENCE;
        loop {
            let got = links();
            let now = got
                .iter()
                .find(|(t, _)| t == "Redirect")
                .map(|(_, h)| h.clone());
            if now == redirect {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still {got:?}, expected Redirect {redirect:?}\n{}",
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until(None);
    p.homes
        .cli(&["user", "move", &uri("admover"), "--to", &fqdn("fe21")])
        .success();
    until(Some(format!(
        "{}{ROOT}?sipuri=admover@{DOMAIN}",
        origin(&p, "http", &fqdn("pool02"))
    )));
    p.homes
        .cli(&["user", "move", &uri("admover"), "--to", &fqdn("pool01")])
        .success();
    until(None);
}

// ---------------------------------------------------------------------------------------------
// DNS, `herald discover`, start-up checks

/// Each server's DNS answers the deployment's zone, whichever pool it belongs to: each pool
/// name with its own server, the servers' names, the second pool's external web services at
/// that pool (no reverse proxy), the Lync names at the first pool; pool names are internal only.
#[test]
fn dig_each_pool_name_answers_its_own_members_at_either_server() {
    let p = pools();
    for server in &p.servers {
        let dns = SocketAddr::new(server.udp().ip(), p.ports().dns);
        for (source, name, want) in [
            (INSIDE, "pool01", Some("127.0.0.1")),
            (INSIDE, "pool02", Some("127.0.0.2")),
            (INSIDE, "fe01", Some("127.0.0.1")),
            (INSIDE, "fe21", Some("127.0.0.2")),
            (INSIDE, "sip", Some("127.0.0.1")),
            (INSIDE, "lyncdiscoverinternal", Some("127.0.0.1")),
            (OUTSIDE, "lyncweb02", Some("127.0.0.2")),
            (OUTSIDE, "lyncweb", Some("127.0.0.1")),
            (OUTSIDE, "lyncdiscover", Some("127.0.0.1")),
            (OUTSIDE, "pool02", None),
            (OUTSIDE, "fe21", None),
        ] {
            for tcp in [false, true] {
                let got: Dig = dig(dns, source, tcp, &fqdn(name), "A");
                let ctx = format!("{name} from {source} at {dns} tcp={tcp}:\n{}", got.text);
                assert!(got.aa(), "{ctx}");
                match want {
                    Some(ip) => {
                        assert_eq!(got.status, "NOERROR", "{ctx}");
                        assert_eq!(got.data(), [ip], "{ctx}");
                    }
                    None => assert_eq!(got.status, "NXDOMAIN", "{ctx}"),
                }
            }
        }
    }
}

/// `herald discover --json`, the parts checked here.
#[derive(Debug, Deserialize)]
struct WalkJson {
    steps: Vec<WalkStep>,
    result: Option<WalkResult>,
}

#[derive(Debug, Deserialize)]
struct WalkStep {
    ask: String,
    ok: bool,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct WalkResult {
    fqdn: String,
    port: u16,
    transport: String,
    location: String,
}

/// `herald discover` for a user of the second pool, against the first server's DNS (the client
/// is 127.0.0.1: inside): lyncdiscoverinternal at the first pool redirects to the second pool's
/// root, the walk resolves that name and ends at the second pool's registrar.
#[test]
fn discover_follows_the_autodiscover_redirect_to_the_home_pool() {
    let p = pools();
    let (_, first) = server_of(&p, &fqdn("pool01"));
    let dns = SocketAddr::new(first.udp().ip(), p.ports().dns);
    let https = p.ports().https;
    let user = format!("p2walk@{DOMAIN}");
    let out = discover(
        dns,
        &p.homes.cert_pem(),
        (p.ports().http, https),
        &user,
        &["--json"],
    );
    let ctx = format!("`{}`\n{}{}", out.command, out.stdout, out.stderr);
    assert!(out.success, "{ctx}");
    let walk: WalkJson = json(out.stdout.trim());
    let asks: Vec<(&str, bool)> = walk.steps.iter().map(|s| (s.ask.as_str(), s.ok)).collect();
    let redirect = format!("GET https://pool02.{DOMAIN}:{https}{ROOT}?sipuri={user}");
    assert_eq!(
        asks,
        [
            (
                format!("A/AAAA lyncdiscoverinternal.{DOMAIN}").as_str(),
                true
            ),
            (
                format!("GET https://lyncdiscoverinternal.{DOMAIN}:{https}/?sipuri={user}")
                    .as_str(),
                true
            ),
            (format!("A/AAAA pool02.{DOMAIN}").as_str(), true),
            (redirect.as_str(), true),
            (
                format!("GET https://pool02.{DOMAIN}:{https}{ROOT}/user?sipuri={user}").as_str(),
                true
            ),
            (format!("A/AAAA pool02.{DOMAIN}").as_str(), true),
        ],
        "{ctx}"
    );
    assert_eq!(
        walk.result,
        Some(WalkResult {
            fqdn: fqdn("pool02"),
            port: p.ports().tls,
            transport: "tls".to_owned(),
            location: "inside".to_owned(),
        }),
        "{ctx}"
    );
}

/// The topology is checked before anything listens: `[sip] member` naming no server, and a
/// server in two pools, stop `serve` (and every other command) with the key and the names.
#[test]
fn serve_refuses_an_unknown_member_and_a_server_in_two_pools() {
    let p = pools();
    let config = std::fs::read_to_string(p.homes.config(1)).expect("fe21's config");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("writing a config");
        path
    };
    let unknown = write(
        "unknown.toml",
        &config.replace(
            &format!("member = \"{}\"", fqdn("fe21")),
            &format!("member = \"{}\"", fqdn("fe29")),
        ),
    );
    let twice = write(
        "twice.toml",
        &config.replace(
            &format!("fqdn = \"{}\", addresses = [\"127.0.0.2\"]", fqdn("fe21")),
            &format!("fqdn = \"{}\", addresses = [\"127.0.0.2\"]", fqdn("fe01")),
        ),
    );
    for (path, wants) in [
        (
            &unknown,
            vec![
                format!(
                    "sip.member: {} is not a member of any [[topology.pools]]",
                    fqdn("fe29")
                ),
                fqdn("fe01"),
                fqdn("fe21"),
            ],
        ),
        (
            &twice,
            vec![format!(
                "topology.pools[1].members[0].fqdn: {} is already used by topology.pools[0].members[0].fqdn",
                fqdn("fe01")
            )],
        ),
    ] {
        for args in [vec!["serve"], vec!["dns", "records"]] {
            let out = herald_cli(path, &args);
            assert!(!out.success, "{} started:\n{}", out.command, out.stdout);
            for want in &wants {
                assert!(
                    out.stderr.contains(want.as_str()),
                    "{}: no {want:?} in:\n{}",
                    out.command,
                    out.stderr
                );
            }
        }
    }
    // The real config is fine, and names fe21's pool in `cert request`.
    let out = herald_cli(&p.homes.config(1), &["cert", "request"]);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("Subject: CN={}\n", fqdn("pool02"))),
        "{}",
        out.stdout
    );
}
