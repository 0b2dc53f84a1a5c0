//! Registrations survive a restart (issue 2: "Nothing that was acknowledged is lost on
//! restart"): a REGISTER answered 200 is stored before the answer, so a server stopped right
//! after (SIGKILL or SIGTERM) and started again on the same data folder and the same ports
//! answers a query (RFC 3261 §10.3 step 8: REGISTER without Contact) with the binding and its
//! remaining expiry. What the client cannot use any more is not restored: a binding made over
//! a TCP connection (the connection died with the process), a removed one (RFC 3261 §10.2.2),
//! an expired one.
//!
//! Every test starts its own server on fixed ports (picked free at test time), since a restored
//! UDP binding is reached through the listener it registered at.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_sip::Response;

use crate::support::ports::{PORT_PATIENCE, start_on_fixed_ports, start_when_free};
use crate::support::server::Home;
use crate::support::sip::contact_expiries;
use crate::support::{Account, Server, SipClient, Ua, assert_status, show};

const DOMAIN: &str = "restart.test";
/// How long a restart may wait for its ports (the kernel, or another test's process).
/// The expiry of the bindings that must survive.
const LONG: u32 = 3600;
/// The expiry of the binding that runs out while the server is down.
const BRIEF: u32 = 3;

fn password(user: &str) -> String {
    format!("pw-{user}")
}

fn account(user: &str) -> Account {
    Account::new(user, &password(user), DOMAIN)
}

/// A server for `users` with SIP over UDP and TCP on one fixed port and the admin listener on
/// another (for `herald presence show`), `min_expires = 1` so a binding can expire during a
/// restart. Ports lost to another process before the first start are picked again.
fn start_fresh(users: &[&str]) -> Server {
    start_on_fixed_ports(DOMAIN, |setup| {
        users.iter().fold(setup.sip("min_expires", "1"), |s, u| {
            s.user(u, &password(u))
        })
    })
}

/// `serve` again in the stopped server's home: same store, same ports.
fn start_again(home: &Arc<Home>) -> Server {
    start_when_free(home, PORT_PATIENCE)
}

/// A query (REGISTER without Contact) by a new client of `user`, over UDP.
#[track_caller]
fn query(server: &Server, user: &str) -> Response {
    let mut ua = Ua::new(SipClient::udp(server.udp()), account(user));
    let r = ua.register(&[], None);
    assert_status(&r, 200);
    r
}

/// Registers `contacts` with `ua` for `expires` seconds; asserts the 200.
#[track_caller]
fn register(ua: &mut Ua, contacts: &[&str], expires: u32) -> Response {
    let r = ua.register(contacts, Some(expires));
    assert_status(&r, 200);
    r
}

/// The URI inside `<...>` of a Contact value.
fn uri_of(contact: &str) -> &str {
    contact.trim_start_matches('<').trim_end_matches('>')
}

/// `herald presence show sip:USER@DOMAIN` against the running server.
fn presence_show(home: &Home, user: &str) -> String {
    home.cli(&["presence", "show", &format!("sip:{user}@{DOMAIN}")])
        .success()
        .stdout
}

/// The whole story, stopped with SIGKILL (so only what was stored before each 200 can come
/// back): a UDP binding returns with its remaining expiry and can be refreshed in place by the
/// same Call-ID; the TCP binding of a user who also had a UDP one does not return, nor do
/// bindings removed by `expires=0` or `*`, nor one that expired while the server was down.
#[test]
fn rfc3261_10_3_acknowledged_udp_bindings_survive_sigkill() {
    let users = ["kept", "removed", "star", "mixed", "brief"];
    let s = start_fresh(&users);

    let mut kept = Ua::new(SipClient::udp(s.udp()), account("kept"));
    let kept_contact = kept.client.contact("kept");
    register(&mut kept, &[&kept_contact], LONG);
    let kept_at = Instant::now();

    let mut removed = Ua::new(SipClient::udp(s.udp()), account("removed"));
    let removed_contact = removed.client.contact("removed");
    register(&mut removed, &[&removed_contact], LONG);
    let r = register(
        &mut removed,
        &[&format!("{removed_contact};expires=0")],
        LONG,
    );
    assert!(contact_expiries(&r).is_empty(), "{}", show(&r));

    let mut star = Ua::new(SipClient::udp(s.udp()), account("star"));
    register(&mut star, &["<sip:star@192.0.2.1:5060>"], LONG);
    register(&mut star, &["<sip:star@192.0.2.2:5060>"], LONG);
    let r = register(&mut star, &["*"], 0);
    assert!(contact_expiries(&r).is_empty(), "{}", show(&r));

    let mut mixed_udp = Ua::new(SipClient::udp(s.udp()), account("mixed"));
    let mixed_udp_contact = mixed_udp.client.contact("mixed");
    register(&mut mixed_udp, &[&mixed_udp_contact], LONG);
    // Kept open until the kill: the binding is alive when the process dies.
    let mut mixed_tcp = Ua::new(SipClient::tcp(s.tcp()), account("mixed"));
    let mixed_tcp_contact = mixed_tcp.client.contact("mixed");
    let r = register(&mut mixed_tcp, &[&mixed_tcp_contact], LONG);
    assert_eq!(contact_expiries(&r).len(), 2, "{}", show(&r));

    let mut brief = Ua::new(SipClient::udp(s.udp()), account("brief"));
    let brief_contact = brief.client.contact("brief");
    let r = register(&mut brief, &[&brief_contact], BRIEF);
    let brief_at = Instant::now();
    assert_eq!(contact_expiries(&r)[0].1, Some(BRIEF), "{}", show(&r));

    let home = s.stop();
    drop(mixed_tcp);
    // The brief binding runs out while nothing runs.
    let until = brief_at + Duration::from_secs(u64::from(BRIEF) + 1);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let s = start_again(&home);

    let q = query(&s, "kept");
    let listed = contact_expiries(&q);
    assert_eq!(
        listed.len(),
        1,
        "kept was not restored:\n{}\n{}",
        show(&q),
        s.logs()
    );
    assert_eq!(listed[0].0, uri_of(&kept_contact), "{}", show(&q));
    let left = listed[0]
        .1
        .unwrap_or_else(|| panic!("no expires:\n{}", show(&q)));
    let elapsed = u32::try_from(kept_at.elapsed().as_secs()).unwrap_or(u32::MAX);
    assert!(
        left <= LONG - BRIEF,
        "expires={left}: not the time left ({elapsed} s went by)\n{}",
        show(&q)
    );
    assert!(
        left + elapsed + 2 >= LONG,
        "expires={left}: shorter than the time left ({elapsed} s went by)\n{}",
        show(&q)
    );

    let q = query(&s, "removed");
    assert!(
        contact_expiries(&q).is_empty(),
        "a removed binding came back:\n{}",
        show(&q)
    );
    let q = query(&s, "star");
    assert!(
        contact_expiries(&q).is_empty(),
        "bindings removed by * came back:\n{}",
        show(&q)
    );
    let q = query(&s, "brief");
    assert!(
        contact_expiries(&q).is_empty(),
        "an expired binding came back:\n{}",
        show(&q)
    );
    let q = query(&s, "mixed");
    let listed = contact_expiries(&q);
    assert_eq!(
        listed.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        [uri_of(&mixed_udp_contact)],
        "only the UDP binding of mixed may come back:\n{}",
        show(&q)
    );

    // The restored binding kept its Call-ID and CSeq: the same client refreshes it in place.
    let r = register(&mut kept, &[&kept_contact], LONG);
    let listed = contact_expiries(&r);
    assert_eq!(
        listed.len(),
        1,
        "the refresh added a binding:\n{}",
        show(&r)
    );
    assert_eq!(listed[0].1, Some(LONG), "{}", show(&r));
}

/// A clean stop (SIGTERM) keeps the bindings too, and `herald presence show` lists the
/// restored endpoint after the restart as it did before.
#[test]
fn rfc3261_10_3_udp_binding_survives_sigterm_and_presence_lists_it() {
    let mut s = start_fresh(&["alice"]);
    let mut ua = Ua::new(SipClient::udp(s.udp()), account("alice"));
    let contact = ua.client.contact("alice");
    register(&mut ua, &[&contact], LONG);
    let endpoint = ua.client.local.to_string();

    let before = presence_show(s.home(), "alice");
    assert!(
        before.contains("endpoints: 1") && before.contains(&endpoint),
        "presence show before the restart:\n{before}"
    );

    let status = s
        .terminate(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("serve did not exit within 20 s of SIGTERM\n{}", s.logs()));
    assert!(
        status.success(),
        "serve exited with {status} on SIGTERM\n{}",
        s.logs()
    );
    let home = s.stop();
    let s = start_again(&home);

    let q = query(&s, "alice");
    let listed = contact_expiries(&q);
    assert_eq!(
        listed.len(),
        1,
        "alice was not restored:\n{}\n{}",
        show(&q),
        s.logs()
    );
    assert_eq!(listed[0].0, uri_of(&contact), "{}", show(&q));
    let left = listed[0]
        .1
        .unwrap_or_else(|| panic!("no expires:\n{}", show(&q)));
    assert!(left > 0 && left <= LONG, "expires={left}\n{}", show(&q));

    let after = presence_show(&home, "alice");
    println!("herald presence show (after the restart):\n{after}");
    assert!(
        after.contains("endpoints: 1") && after.contains(&endpoint),
        "the restored endpoint is not listed:\n{after}\n{}",
        s.logs()
    );
}
