//! Contact lists and static publications outlive the process (issue 3 points 5, 7 and 8):
//! `herald contact add|list|remove` through the running server's admin listener and, with the
//! server stopped, against the store; a static state and note published through SERVICE come
//! back after a restart; `herald presence show` prints state, publications and watchers.

use std::sync::Arc;

use super::{DOMAIN, password};
use crate::support::presence::{
    CATEGORIES, CATEGORY_PUBLISH, Peer, assert_answer, category_publish, note_publication,
    state_publication,
};
use crate::support::server::Home;
use crate::support::{Account, Server, Setup, SipClient};

const USERS: &[&str] = &["alice", "bob", "carol", "dave"];

/// The roaming-contacts document type.
const CONTACTS: &str = "application/vnd-microsoft-roaming-contacts+xml";

fn setup() -> Setup {
    let mut s = Setup::new(DOMAIN).tls(&[]);
    for u in USERS {
        s = s.user(u, &password(u));
    }
    s
}

/// Starts `serve` in `home` and points the config's admin address at the listener it bound,
/// so the CLI reaches this server.
fn start(home: &Arc<Home>) -> Server {
    home.set_admin("127.0.0.1:0");
    let s = Server::start(home.clone(), &[]);
    home.set_admin(&s.admin().to_string());
    s
}

fn peer(s: &Server, user: &str) -> Peer {
    Peer::new(
        SipClient::udp(s.udp()),
        Account::new(user, &password(user), DOMAIN),
    )
}

fn aor(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

/// `herald contact add|list|remove` while the server runs go through its admin listener; the
/// admin route `GET /contacts/{user}` agrees; with the server stopped `contact list` reads the
/// store and still shows the list.
#[test]
fn presence_contact_commands_online_then_offline() {
    let home = setup().home();
    let s = start(&home);
    // Alice's client watches her own contact list (sipe-client §3.3).
    let mut a = peer(&s, "alice");
    let me = format!("sip:{}", aor("alice"));
    let req = a
        .req("SUBSCRIBE", &me)
        .header("Contact", &a.contact())
        .header("Event", "vnd-microsoft-roaming-contacts")
        .header("Accept", CONTACTS)
        .header("Expires", "3600");
    assert_answer(&a.send(req), 200, "roaming-contacts SUBSCRIBE");
    let n = a.expect_notify();
    assert!(
        n.header("Content-Type").starts_with(CONTACTS),
        "{}",
        n.show()
    );
    assert!(!n.body().contains(&aor("bob")), "{}", n.show());

    let out = home
        .cli(&[
            "contact",
            "add",
            &format!("sip:{}", aor("alice")),
            &aor("bob"),
            "--name",
            "Bob Builder",
        ])
        .success();
    println!("contact add: {}", out.stdout.trim());
    let n = a.expect_notify();
    assert!(
        n.body().contains(&aor("bob")) && n.body().contains("Bob Builder"),
        "the running server told alice's client at once:\n{}",
        n.show()
    );
    home.cli(&["contact", "add", &aor("alice"), &aor("carol")])
        .success();
    assert!(a.expect_notify().body().contains(&aor("carol")));
    let list = home
        .cli(&["contact", "list", &aor("alice")])
        .success()
        .stdout;
    assert!(
        list.contains(&format!("sip:{}", aor("bob"))) || list.contains(&aor("bob")),
        "{list}"
    );
    assert!(list.contains("Bob Builder"), "{list}");
    assert!(list.contains(&aor("carol")), "{list}");
    let (status, body) =
        crate::support::http::get(s.admin(), &format!("/contacts/{}", aor("alice")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, list, "the admin route and the CLI print the same");

    home.cli(&["contact", "remove", &aor("alice"), &aor("carol")])
        .success();
    let list = home
        .cli(&["contact", "list", &aor("alice")])
        .success()
        .stdout;
    assert!(!list.contains(&aor("carol")), "{list}");
    home.cli(&["contact", "remove", &aor("alice"), &aor("carol")])
        .failure();
    // Something that is no address is refused; a federated contact is fine (Lync lists
    // external contacts too).
    home.cli(&["contact", "add", &aor("alice"), "not an address"])
        .failure();
    home.cli(&["contact", "add", &aor("alice"), "erin@partner.example"])
        .success();
    home.cli(&["contact", "remove", &aor("alice"), "erin@partner.example"])
        .success();

    let stopped = s.stop();
    let offline = stopped
        .cli(&["contact", "list", &aor("alice")])
        .success()
        .stdout;
    assert!(offline.contains(&aor("bob")), "{offline}");
    assert!(offline.contains("Bob Builder"), "{offline}");
    assert!(!offline.contains(&aor("carol")), "{offline}");
    // Offline edits land in the store and the next server sees them.
    stopped
        .cli(&["contact", "add", &aor("alice"), &aor("dave")])
        .success();
    let s = start(&stopped);
    let list = stopped
        .cli(&["contact", "list", &aor("alice")])
        .success()
        .stdout;
    assert!(
        list.contains(&aor("dave")) && list.contains(&aor("bob")),
        "{list}"
    );
    drop(s);
}

/// A Lync client's static userState (Busy) and note, published through SERVICE, survive a
/// restart (SIGKILL, so only what was stored before the 200 counts): `herald presence show`
/// reports them, and a new watcher's first NOTIFY carries them.
#[test]
fn presence_static_state_and_note_survive_a_restart() {
    let home = setup().home();
    let s = start(&home);
    let alice = format!("sip:{}", aor("alice"));
    let mut a = peer(&s, "alice");
    assert_answer(&a.register(3600, Some("feedface01")), 200, "REGISTER");
    let body = category_publish(
        &alice,
        &[
            state_publication("userState", 536_870_912, 2, 0, "static", 6500),
            state_publication("userState", 536_870_912, 3, 0, "static", 6500),
            note_publication(200, 0, "Back on Monday"),
            note_publication(400, 0, "Back on Monday"),
        ],
    );
    let r = a.service("feedface01", CATEGORY_PUBLISH, &body);
    assert_answer(&r, 200, "SERVICE");

    let mut b = peer(&s, "bob");
    let (r, _) = b.subscribe(&alice, 3600, &[("Accept", CATEGORIES)]);
    assert_answer(&r, 200, "SUBSCRIBE");
    let n = b.expect_notify();
    assert!(
        n.body().contains("<availability>6500</availability>"),
        "{}",
        n.show()
    );
    assert!(n.body().contains("Back on Monday"), "{}", n.show());

    let shown = home.cli(&["presence", "show", &alice]).success().stdout;
    println!("herald presence show (before the restart):\n{shown}");
    assert!(shown.contains("6500"), "{shown}");
    assert!(shown.contains("note/"), "{shown}");
    assert!(shown.contains("state/"), "{shown}");
    assert!(
        shown.contains(&aor("bob")),
        "the watcher is listed:\n{shown}"
    );
    assert!(shown.contains("static"), "{shown}");

    let s = {
        let home = s.stop();
        start(&home)
    };
    let shown = home.cli(&["presence", "show", &alice]).success().stdout;
    println!("herald presence show (after the restart):\n{shown}");
    assert!(shown.contains("note/"), "the note came back:\n{shown}");
    assert!(
        shown.contains("state/"),
        "the user state came back:\n{shown}"
    );

    let mut c = peer(&s, "carol");
    let (r, _) = c.subscribe(&alice, 3600, &[("Accept", CATEGORIES)]);
    assert_answer(&r, 200, "SUBSCRIBE after the restart");
    let n = c.expect_notify();
    assert!(n.body().contains("Back on Monday"), "{}", n.show());
    assert!(
        n.body().contains("<availability>6500</availability>"),
        "the stored Busy (alice's registration was restored too):\n{}",
        n.show()
    );
}
