//! Pool homing and the redirect to the home Front End (issue 4 point 6): a pool of two
//! `herald serve` processes on 127.0.0.1 and 127.0.0.2, same ports, one store (see
//! `support::pool`), answering a REGISTER for a user homed elsewhere as a Lync Front End does:
//! `301 Redirect request to Home Server`.
//!
//! `herald user add` stores a home chosen by the pool's hash; a REGISTER at the other member is
//! authenticated, then answered 301 with a Contact for the home member on the request's
//! transport; at the home it gets 200. `herald user move` re-homes a user while both run.
//!
//! The pool offers MD5 Digest only, for SIPp (see `sipp`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use crate::support::dns::shared;
use crate::support::pool::{Member, Pool, PoolSetup};
use crate::support::sip::{contact_expiries, headers};
use crate::support::{Account, Server, SipClient, Ua, assert_status, fresh_loopback, show};

const DOMAIN: &str = "pool.test";

/// Users of the shared pool: one per test that registers, so bindings never mix.
const USERS: &[&str] = &[
    "sippudp",
    "sipptcp",
    "sippwrong",
    "redirudp",
    "redirtcp",
    "redirtls",
    "follow",
    "mover",
    "nobind",
    "wrongpw",
];

/// Users only `user add` and `user show` look at, to see homes spread over the pool.
fn spread_users() -> Vec<String> {
    (1..=16).map(|i| format!("spread{i:02}")).collect()
}

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn setup() -> PoolSetup {
    let mut s = PoolSetup::new(DOMAIN).sip("digest_algorithms", "[\"MD5\"]");
    for u in USERS.iter().map(|u| (*u).to_owned()).chain(spread_users()) {
        s = s.user(&u, &password(&u));
    }
    s
}

fn pool() -> Arc<Pool> {
    static SLOT: Mutex<Weak<Pool>> = Mutex::new(Weak::new());
    shared(&SLOT, || setup().start())
}

fn account(user: &str) -> Account {
    Account::new(user, &password(user), DOMAIN)
}

/// The user's home member and the other one, with their servers.
fn home_and_other<'a>(
    p: &'a Pool,
    user: &str,
) -> ((&'a Member, &'a Server), (&'a Member, &'a Server)) {
    let home = p.homes.home_of(user);
    (p.member(&home), p.other_than(&home))
}

/// `user add` stores a home for every user, picked by the pool's hash: both members get users,
/// `user show` prints the stored member (not a `(by hash)` guess), and a second store given
/// the same users and pool picks the same homes (a hash, not a random draw).
#[test]
fn user_add_stores_a_home_picked_by_the_pool_hash() {
    let p = pool();
    let members: Vec<&str> = p
        .homes
        .setup
        .members
        .iter()
        .map(|m| m.fqdn.as_str())
        .collect();
    let homes: Vec<String> = spread_users().iter().map(|u| p.homes.home_of(u)).collect();
    for (u, h) in spread_users().iter().zip(&homes) {
        assert!(
            members.contains(&h.as_str()),
            "{u}: home {h:?} is not a member ({members:?})"
        );
    }
    for m in &members {
        assert!(
            homes.iter().any(|h| h == m),
            "no user of 16 homed on {m}: {homes:?}"
        );
    }

    // The same pool and users in a fresh store.
    let mut again = PoolSetup::new(DOMAIN);
    for u in spread_users() {
        again = again.user(&u, &password(&u));
    }
    let again = again.homes();
    let homes_again: Vec<String> = spread_users().iter().map(|u| again.home_of(u)).collect();
    assert_eq!(homes, homes_again, "homes differ between two stores");
}

/// `user move` names a member of the pool; anything else is refused with the members listed.
#[test]
fn user_move_refuses_a_host_outside_the_pool() {
    let p = pool();
    let before = p.homes.home_of("nobind");
    let run = p
        .homes
        .cli(&[
            "user",
            "move",
            &format!("sip:nobind@{DOMAIN}"),
            "--to",
            "fe09.pool.test",
        ])
        .failure();
    assert!(
        run.stderr.contains("fe01.pool.test") && run.stderr.contains("fe02.pool.test"),
        "the error should list the members:\n{}",
        run.stderr
    );
    assert_eq!(p.homes.home_of("nobind"), before);
}

/// [`support::pool::run_sipp_redirect`] for a user of this module's pool.
fn run_sipp_redirect(target: SocketAddr, mode: &str, user: &str, expected: &str) -> (i32, String) {
    crate::support::pool::run_sipp_redirect(DOMAIN, target, mode, user, &password(user), expected)
}

/// SIPp signs in at the member that is not the user's home: 401, Digest, then 301 whose
/// Contact is the home member on the same transport (the scenario checks it); then the user's
/// own client registers at the home with Digest and gets 200.
fn sipp_is_redirected_then_registers_at_home(user: &str, transport: &str) {
    let p = pool();
    let ((home, home_server), (_, other_server)) = home_and_other(&p, user);
    let expected = p.home_contact(home, transport);
    let (target, mode) = match transport {
        "udp" => (other_server.udp(), "u1"),
        "tcp" => (other_server.tcp(), "t1"),
        other => panic!("no SIPp mode for {other}"),
    };
    let (code, out) = run_sipp_redirect(target, mode, user, &expected);
    assert_eq!(
        code,
        0,
        "sipp was not redirected to {expected} over {transport}:\n{out}\n{}",
        p.logs()
    );
    assert!(
        out.contains(&format!("redirected to {expected}")),
        "sipp's log does not show the 301 Contact:\n{out}"
    );
    println!("sipp over {transport} at the other member:\n{out}");

    let mut ua = Ua::new(p.client(home_server, transport), account(user));
    let contact = ua.client.contact(user);
    let r = ua.register(&[&contact], Some(300));
    assert_status(&r, 200);
    assert_eq!(contact_expiries(&r).len(), 1, "{}", show(&r));
}

#[test]
fn ms_sip_sipp_register_at_other_member_is_redirected_home_over_udp() {
    sipp_is_redirected_then_registers_at_home("sippudp", "udp");
}

#[test]
fn ms_sip_sipp_register_at_other_member_is_redirected_home_over_tcp() {
    sipp_is_redirected_then_registers_at_home("sipptcp", "tcp");
}

/// The scenario's Contact check is live: told to expect another member, SIPp fails.
#[test]
fn sipp_redirect_scenario_fails_on_a_wrong_contact() {
    let p = pool();
    let ((home, _), (other, other_server)) = home_and_other(&p, "sippwrong");
    let wrong = p.home_contact(other, "udp");
    assert_ne!(wrong, p.home_contact(home, "udp"));
    let (code, out) = run_sipp_redirect(other_server.udp(), "u1", "sippwrong", &wrong);
    assert_ne!(code, 0, "sipp accepted a 301 to the wrong member:\n{out}");
    assert!(
        out.contains("is not the home member"),
        "sipp failed for another reason than the Contact:\n{out}"
    );
}

/// A REGISTER at the other member, on each transport, is authenticated and then answered 301
/// with the home member's address, the SIP port of that transport, and `transport=` of the
/// request; the 301 binds nothing (a query at the home lists no binding).
fn redirected_on(user: &str, transport: &str) {
    let p = pool();
    let ((home, home_server), (_, other_server)) = home_and_other(&p, user);
    p.assert_sent_home(other_server, transport, &account(user), home);

    let mut at_home = Ua::new(SipClient::udp(home_server.udp()), account(user));
    let q = at_home.register(&[], None);
    assert_status(&q, 200);
    assert!(
        contact_expiries(&q).is_empty(),
        "a redirected REGISTER left a binding:\n{}",
        show(&q)
    );
}

#[test]
fn ms_sip_register_at_other_member_is_redirected_over_udp() {
    redirected_on("redirudp", "udp");
}

#[test]
fn ms_sip_register_at_other_member_is_redirected_over_tcp() {
    redirected_on("redirtcp", "tcp");
}

#[test]
fn ms_sip_register_at_other_member_is_redirected_over_tls() {
    redirected_on("redirtls", "tls");
}

/// A client that follows the 301's Contact (a new flow to the address and port it names)
/// registers there: 200, and the binding is listed by the home.
#[test]
fn ms_sip_client_following_the_redirect_registers_at_home() {
    let p = pool();
    let ((home, _), (_, other_server)) = home_and_other(&p, "follow");
    let mut ua = Ua::new(SipClient::tcp(other_server.tcp()), account("follow"));
    let contact = ua.client.contact("follow");
    let r = ua.register(&[&contact], Some(300));
    let expected = p.home_contact(home, "tcp");
    p.assert_redirect(&r, &expected);

    let target: SocketAddr = expected
        .trim_start_matches("<sip:")
        .split(';')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("cannot follow {expected}"));
    let mut ua = Ua::new(SipClient::tcp(target), account("follow"));
    let contact = ua.client.contact("follow");
    let r = ua.register(&[&contact], Some(300));
    assert_status(&r, 200);
    let bound = contact_expiries(&r);
    assert_eq!(bound.len(), 1, "{}", show(&r));
    assert!(
        bound[0].0.contains(&ua.client.local.port().to_string()),
        "{}",
        show(&r)
    );
}

/// `herald user move` while both members run: the old home starts redirecting to the new one,
/// the new one accepts; moving back turns it round again. `user show` follows.
#[test]
fn user_move_redirects_at_the_old_home_and_registers_at_the_new() {
    let p = pool();
    let uri = format!("sip:mover@{DOMAIN}");
    let ((first, first_server), (second, second_server)) = home_and_other(&p, "mover");
    assert_status(&p.register_until(first_server, &account("mover"), 200), 200);
    p.assert_redirect(
        &p.register_until(second_server, &account("mover"), 301),
        &p.home_contact(first, "udp"),
    );

    let out = p
        .homes
        .cli(&["user", "move", &uri, "--to", &second.fqdn])
        .success()
        .stdout;
    assert!(out.contains(&second.fqdn), "{out}");
    assert_eq!(p.homes.home_of("mover"), second.fqdn);
    let r = p.register_until(first_server, &account("mover"), 301);
    p.assert_redirect(&r, &p.home_contact(second, "udp"));
    assert_status(
        &p.register_until(second_server, &account("mover"), 200),
        200,
    );

    p.homes
        .cli(&["user", "move", &uri, "--to", &first.fqdn])
        .success();
    assert_eq!(p.homes.home_of("mover"), first.fqdn);
    let r = p.register_until(second_server, &account("mover"), 301);
    p.assert_redirect(&r, &p.home_contact(first, "udp"));
    assert_status(&p.register_until(first_server, &account("mover"), 200), 200);
}

/// A member that restarts brings back the stored bindings of the users homed on it, and not
/// those of a user moved to the other member meanwhile (its clients are redirected there).
#[test]
fn restart_restores_only_the_users_homed_on_this_member() {
    let mut setup = PoolSetup::new(DOMAIN);
    for u in ["stay", "leave"] {
        setup = setup.user(u, &password(u));
    }
    let homes = setup.homes();
    let first = homes.setup.members[0].clone();
    let second = homes.setup.members[1].clone();
    for u in ["stay", "leave"] {
        homes
            .cli(&[
                "user",
                "move",
                &format!("sip:{u}@{DOMAIN}"),
                "--to",
                &first.fqdn,
            ])
            .success();
    }
    let mut p = homes.start();

    let mut endpoints = Vec::new();
    for u in ["stay", "leave"] {
        let mut ua = Ua::new(SipClient::udp(p.servers[0].udp()), account(u));
        let contact = ua.client.contact(u);
        assert_status(&ua.register(&[&contact], Some(3600)), 200);
        endpoints.push(ua.client.local.to_string());
    }
    p.homes
        .cli(&[
            "user",
            "move",
            &format!("sip:leave@{DOMAIN}"),
            "--to",
            &second.fqdn,
        ])
        .success();
    p.restart(0);

    let mut ua = Ua::new(SipClient::udp(p.servers[0].udp()), account("stay"));
    let q = ua.register(&[], None);
    assert_status(&q, 200);
    assert_eq!(
        contact_expiries(&q).len(),
        1,
        "stay was not restored:\n{}",
        show(&q)
    );

    // fe01's admin listener (the CLI uses the first member's config).
    let show_user = |u: &str| {
        p.homes
            .cli(&["presence", "show", &format!("sip:{u}@{DOMAIN}")])
            .stdout
    };
    let stay = show_user("stay");
    assert!(stay.contains(&endpoints[0]), "{stay}");
    let leave = show_user("leave");
    println!(
        "presence show at {} after its restart:\n{stay}{leave}",
        first.fqdn
    );
    assert!(
        !leave.contains(&endpoints[1]),
        "a user homed on {} was restored on {}:\n{leave}\n{}",
        second.fqdn,
        first.fqdn,
        p.logs()
    );
    let r = p.register_until(&p.servers[0], &account("leave"), 301);
    p.assert_redirect(&r, &p.home_contact(&second, "udp"));
}

/// Authentication comes before the redirect, so a 301 says nothing to whoever cannot sign in:
/// an unknown user and a wrong password get 403 at either member, never a 301 naming a home.
#[test]
fn no_redirect_without_authentication() {
    let p = pool();
    for (m, server) in p.homes.setup.members.iter().zip(&p.servers) {
        // Failures are throttled per source address: these come from addresses of their own.
        let mut ghost = Ua::new(
            SipClient::udp_from(fresh_loopback(), server.udp()),
            account("ghost"),
        );
        let r = ghost.register(&["<sip:ghost@192.0.2.1>"], Some(300));
        assert_status(&r, 403);
        assert!(
            headers(&r, "Contact").is_empty(),
            "at {}:\n{}",
            m.fqdn,
            show(&r)
        );

        let mut ua = Ua::new(
            SipClient::udp_from(fresh_loopback(), server.udp()),
            account("wrongpw"),
        );
        let r = ua.register_with_password(&["<sip:wrongpw@192.0.2.1>"], Some(300), "not-it");
        assert_status(&r, 403);
        assert!(
            headers(&r, "Contact").is_empty(),
            "at {}:\n{}",
            m.fqdn,
            show(&r)
        );
    }
}

/// A user created before the pool existed has no stored home: `user show` prints the member
/// the hash picks, marked `(by hash)`, and both members agree on it (200 there, 301 to it at
/// the other).
#[test]
fn user_without_stored_home_is_homed_by_the_hash() {
    let homes = PoolSetup::new(DOMAIN).homes();
    let config = homes.homes[0].config.clone();
    let pool_config = std::fs::read_to_string(&config).expect("reading herald.toml");
    let (single_box, _) = pool_config
        .split_once("\n[topology]")
        .expect("a [topology] table");
    std::fs::write(&config, single_box).expect("writing herald.toml");
    homes
        .cli_stdin(
            &[
                "user",
                "add",
                &format!("sip:legacy@{DOMAIN}"),
                "--password-stdin",
            ],
            &format!("{}\n", password("legacy")),
        )
        .success();
    std::fs::write(&config, &pool_config).expect("writing herald.toml");

    let shown = homes.home_of("legacy");
    let hashed = shown
        .strip_suffix("(by hash)")
        .unwrap_or_else(|| panic!("the home of a user without one is not marked: {shown:?}"))
        .trim()
        .to_owned();
    let p = homes.start();
    let ((home, home_server), (_, other_server)) = (p.member(&hashed), p.other_than(&hashed));
    let mut ua = Ua::new(SipClient::udp(other_server.udp()), account("legacy"));
    let r = ua.register(&["<sip:legacy@192.0.2.1>"], Some(300));
    p.assert_redirect(&r, &p.home_contact(home, "udp"));
    let mut ua = Ua::new(SipClient::udp(home_server.udp()), account("legacy"));
    assert_status(&ua.register(&["<sip:legacy@192.0.2.1>"], Some(300)), 200);
}
