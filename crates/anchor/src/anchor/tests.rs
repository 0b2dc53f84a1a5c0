//! Routing rules: precedence per protocol path, management-shell anchoring, cookies.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, Uri};

use super::*;
use crate::active_manager::{ActiveManagerConfig, ProbeError};
use crate::model::tests::{copy, server};
use crate::model::{Dag, Database, MailboxType, User};

const NOW: u64 = 1_700_000_000;
const ARBITRATION: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com";

struct Org {
    am: ActiveManager,
    key: CookieKey,
}

fn uid(s: &str) -> UserId {
    s.parse().expect("valid")
}

fn guid(n: u128) -> ExchangeGuid {
    ExchangeGuid::from_u128(n)
}

/// ex1..ex3 in dag1 at `builds`; db1 active on ex1, db2 on ex2. alice (db1, with SID), bob
/// (db2), admin (no mailbox), shared@ (db2), and optionally the arbitration mailbox (db2).
fn org(builds: [&str; 3], arbitration: bool) -> Org {
    let mut t = Topology::new();
    for (i, name) in ["ex1", "ex2", "ex3"].iter().enumerate() {
        t.add_server(server(name, 4441 + i as u16, builds[i]))
            .expect("adds");
    }
    t.add_dag(Dag {
        name: "dag1".parse().expect("valid"),
        members: ["ex1", "ex2", "ex3"]
            .iter()
            .map(|s| s.parse().expect("valid"))
            .collect(),
    })
    .expect("adds");
    for (db, order) in [
        ("db1", ["ex1", "ex2", "ex3"]),
        ("db2", ["ex2", "ex3", "ex1"]),
    ] {
        t.add_database(Database {
            name: db.parse().expect("valid"),
            dag: Some("dag1".parse().expect("valid")),
            copies: order.iter().zip(1..).map(|(s, p)| copy(s, p)).collect(),
        })
        .expect("adds");
    }
    for (name, sid) in [
        ("alice@contoso.com", Some("S-1-5-21-1-2-3-1001")),
        ("bob@contoso.com", None),
        ("admin@contoso.com", None),
    ] {
        t.add_user(User {
            id: uid(name),
            sid: sid.map(|s| s.parse().expect("valid")),
            previous_mailbox: None,
        })
        .expect("adds");
    }
    let mut mailboxes = vec![
        (
            1,
            "alice@contoso.com",
            Some("alice@contoso.com"),
            MailboxType::User,
            "db1",
        ),
        (
            2,
            "bob@contoso.com",
            Some("bob@contoso.com"),
            MailboxType::User,
            "db2",
        ),
        (3, "shared@contoso.com", None, MailboxType::Shared, "db2"),
    ];
    if arbitration {
        mailboxes.push((4, ARBITRATION, None, MailboxType::Arbitration, "db2"));
    }
    for (n, smtp, owner, kind, db) in mailboxes {
        t.add_mailbox(Mailbox {
            guid: guid(n),
            primary_smtp: smtp.parse().expect("valid"),
            owner: owner.map(uid),
            kind,
            database: db.parse().expect("valid"),
        })
        .expect("adds");
    }
    Org {
        am: ActiveManager::new(Arc::new(t), ActiveManagerConfig::default(), Instant::now()),
        key: CookieKey::new(&[9u8; 32]).expect("32 bytes"),
    }
}

fn new_org() -> Org {
    org(["15.0.1156.6", "15.1.396.30", "15.0.1178.4"], true)
}

impl Org {
    fn ctx(&self) -> RouteContext<'_> {
        RouteContext {
            active_manager: &self.am,
            cookie_key: &self.key,
            now_unix: NOW,
            spread: 0,
        }
    }

    fn route(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        user: Option<&str>,
    ) -> Result<Decision, RouteError> {
        let uri: Uri = uri.parse().expect("valid uri");
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        let req = AnchorRequest::parse(&uri, &map).expect("parses");
        let user = user.map(uid);
        route(&req, user.as_ref(), &self.ctx())
    }

    fn cookie_for(&self, user: &str, mailbox: u128, server: &str) -> String {
        let target = CookieTarget::Mailbox {
            guid: guid(mailbox),
            server: server.parse().expect("ok"),
        };
        format!(
            "X-BackEndCookie={}",
            self.key.issue(user, &target, NOW + 600)
        )
    }
}

fn backend(d: &Result<Decision, RouteError>) -> String {
    match d {
        Ok(d) => d.route.backend.name.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn reason(d: &Result<Decision, RouteError>) -> Option<RouteReason> {
    d.as_ref().ok().map(|d| d.route.reason.clone())
}

// ---- precedence per path ----

#[test]
fn owa_explicit_logon_beats_anchor_header_cookie_and_user() {
    let o = new_org();
    let cookie = o.cookie_for("alice@contoso.com", 1, "ex1");
    let d = o.route(
        "/owa/shared@contoso.com/",
        &[
            ("x-anchormailbox", "alice@contoso.com"),
            ("cookie", &cookie),
        ],
        Some("alice@contoso.com"),
    );
    assert_eq!(backend(&d), "ex2", "shared mailbox lives on db2");
    assert_eq!(reason(&d), Some(RouteReason::ExplicitLogon));
}

#[test]
fn owa_anchor_header_beats_cookie_and_user() {
    let o = new_org();
    let cookie = o.cookie_for("alice@contoso.com", 1, "ex1");
    let d = o.route(
        "/owa/",
        &[("x-anchormailbox", "bob@contoso.com"), ("cookie", &cookie)],
        Some("alice@contoso.com"),
    );
    assert_eq!(backend(&d), "ex2");
    assert_eq!(reason(&d), Some(RouteReason::AnchorMailboxHeader));
}

#[test]
fn ews_cookie_keeps_affinity_set_by_an_earlier_anchor_header() {
    let o = new_org();
    // alice impersonated bob earlier; the cookie remembers bob's mailbox for her.
    let cookie = o.cookie_for("alice@contoso.com", 2, "ex2");
    let d = o.route(
        "/ews/exchange.asmx",
        &[("cookie", &cookie)],
        Some("alice@contoso.com"),
    );
    assert_eq!(backend(&d), "ex2");
    assert_eq!(reason(&d), Some(RouteReason::BackEndCookie));
}

#[test]
fn ews_user_mailbox_when_no_hint() {
    let o = new_org();
    let d = o.route("/ews/exchange.asmx", &[], Some("alice@contoso.com"));
    assert_eq!(backend(&d), "ex1");
    assert_eq!(reason(&d), Some(RouteReason::AuthenticatedUser));
}

#[test]
fn ews_ignores_explicit_logon_style_paths() {
    let o = new_org();
    let d = o.route("/ews/bob@contoso.com/", &[], Some("alice@contoso.com"));
    assert_eq!(
        backend(&d),
        "ex1",
        "EWS anchors on the header or the user, not the path"
    );
}

#[test]
fn mapi_mailbox_id_beats_anchor_header() {
    let o = new_org();
    let d = o.route(
        "/mapi/emsmdb/?MailboxId=00000000-0000-0000-0000-000000000002@contoso.com",
        &[("x-anchormailbox", "alice@contoso.com")],
        Some("alice@contoso.com"),
    );
    assert_eq!(backend(&d), "ex2");
    assert_eq!(reason(&d), Some(RouteReason::MapiMailboxId));
}

#[test]
fn autodiscover_anchors_on_header_then_user_then_any_server() {
    let o = new_org();
    let d = o.route(
        "/autodiscover/autodiscover.xml",
        &[("x-anchormailbox", "SMTP:bob@contoso.com")],
        None,
    );
    assert_eq!(backend(&d), "ex2");
    let d = o.route(
        "/autodiscover/autodiscover.xml",
        &[],
        Some("alice@contoso.com"),
    );
    assert_eq!(backend(&d), "ex1");
    let d = o.route("/autodiscover/autodiscover.xml", &[], None);
    assert_eq!(
        reason(&d),
        Some(RouteReason::AnyServer(AnyServerWhy::NoAnchor))
    );
}

#[test]
fn anchor_header_by_sid_resolves_the_users_mailbox() {
    let o = new_org();
    let d = o.route(
        "/ews/",
        &[("x-anchormailbox", "SID:S-1-5-21-1-2-3-1001")],
        None,
    );
    assert_eq!(backend(&d), "ex1");
    let d = o.route(
        "/ews/",
        &[("x-anchormailbox", "SID:S-1-5-21-1-2-3-9999")],
        None,
    );
    assert!(matches!(d, Err(RouteError::UnknownAnchor { .. })));
}

#[test]
fn anonymous_request_without_hints_goes_to_any_available_server() {
    let mut o = new_org();
    o.am.on_probe(
        Instant::now(),
        &"ex1".parse().expect("ok"),
        Err(ProbeError::Timeout),
    );
    o.am.on_probe(
        Instant::now(),
        &"ex1".parse().expect("ok"),
        Err(ProbeError::Timeout),
    );
    o.am.on_probe(
        Instant::now(),
        &"ex1".parse().expect("ok"),
        Err(ProbeError::Timeout),
    );
    let d = o.route("/owa/auth/logon.aspx", &[], None);
    assert_eq!(backend(&d), "ex2", "the unhealthy ex1 is skipped");
}

// ---- errors ----

#[test]
fn unknown_user_is_404_with_a_clear_message() {
    let o = new_org();
    let d = o.route("/owa/", &[], Some("nobody@contoso.com"));
    let err = d.expect_err("unknown");
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        err.to_string(),
        "no user or mailbox nobody@contoso.com (from authenticated user)"
    );
    let err = o
        .route(
            "/ews/",
            &[("x-anchormailbox", "ghost@contoso.com")],
            Some("alice@contoso.com"),
        )
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "no user or mailbox ghost@contoso.com (from X-AnchorMailbox)"
    );
}

#[test]
fn user_without_mailbox_is_404_on_mailbox_paths() {
    let o = new_org();
    let err = o
        .route("/owa/", &[], Some("admin@contoso.com"))
        .expect_err("no mailbox");
    assert_eq!(
        err,
        RouteError::NoMailbox {
            user: "admin@contoso.com".into()
        }
    );
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
}

#[test]
fn dismounted_database_is_503_saying_why() {
    let mut o = new_org();
    for s in ["ex1", "ex2", "ex3"] {
        for _ in 0..3 {
            o.am.on_probe(
                Instant::now(),
                &s.parse().expect("ok"),
                Err(ProbeError::Timeout),
            );
        }
    }
    let err = o
        .route("/owa/", &[], Some("alice@contoso.com"))
        .expect_err("dismounted");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err.to_string()
            .starts_with("database db1 is unavailable: dismounted"),
        "{err}"
    );
}

// ---- management shell ----

#[test]
fn shell_anchors_to_the_admins_own_mailbox_when_all_servers_are_new() {
    let o = new_org();
    let d = o
        .route("/powershell", &[], Some("alice@contoso.com"))
        .expect("routes");
    assert_eq!(d.shell_routing, Some(ShellRouting::Anchored));
    assert_eq!(d.route.backend.name.as_str(), "ex1");
    assert_eq!(d.route.reason, RouteReason::AuthenticatedUser);
}

#[test]
fn shell_without_a_mailbox_anchors_to_the_arbitration_mailbox() {
    let o = new_org();
    let d = o
        .route("/powershell", &[], Some("admin@contoso.com"))
        .expect("routes");
    assert_eq!(
        d.route.backend.name.as_str(),
        "ex2",
        "arbitration mailbox is on db2"
    );
    assert_eq!(d.route.reason, RouteReason::ArbitrationMailbox);
    assert_eq!(d.route.mailbox, Some(guid(4)));
}

#[test]
fn shell_without_a_mailbox_or_arbitration_mailbox_is_503_saying_why() {
    let o = org(["15.0.1156.6", "15.1.396.30", "15.0.1178.4"], false);
    let err = o
        .route("/powershell", &[], Some("admin@contoso.com"))
        .expect_err("no anchor");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err.to_string()
            .contains("has no mailbox and the organisation has no arbitration")
    );
}

#[test]
fn shell_with_the_arbitration_database_down_is_503() {
    let mut o = new_org();
    for s in ["ex2", "ex3", "ex1"] {
        for _ in 0..3 {
            o.am.on_probe(
                Instant::now(),
                &s.parse().expect("ok"),
                Err(ProbeError::Timeout),
            );
        }
    }
    let err = o
        .route("/powershell", &[], Some("admin@contoso.com"))
        .expect_err("down");
    assert!(matches!(err, RouteError::DatabaseUnavailable(_)));
}

#[test]
fn shell_in_a_mixed_build_organisation_uses_any_available_server() {
    // ex3 runs 2013 CU10: the whole organisation keeps the older behaviour.
    let o = org(["15.0.1156.6", "15.1.396.30", "15.0.1130.7"], true);
    let d = o
        .route("/powershell", &[], Some("alice@contoso.com"))
        .expect("routes");
    let oldest = BuildNumber::new(15, 0, 1130, 7);
    assert_eq!(d.shell_routing, Some(ShellRouting::VersionBased { oldest }));
    assert_eq!(
        d.route.reason,
        RouteReason::AnyServer(AnyServerWhy::ShellVersionBased { oldest })
    );
    assert_eq!(d.route.mailbox, None, "not anchored to alice's mailbox");
    assert!(d.route.to_string_reason().contains("Exchange 2013 CU10"));
}

#[test]
fn shell_in_a_2016_rtm_organisation_is_not_anchored() {
    let o = org(["15.0.1156.6", "15.1.225.42", "15.0.1156.6"], true);
    let d = o
        .route("/powershell", &[], Some("admin@contoso.com"))
        .expect("routes");
    assert!(matches!(
        d.shell_routing,
        Some(ShellRouting::VersionBased { .. })
    ));
}

#[test]
fn shell_version_based_honours_exch_client_ver() {
    let o = org(["15.0.1130.7", "15.1.396.30", "15.0.1130.7"], true);
    for spread in 0..6 {
        let req = AnchorRequest::parse(
            &"/powershell?ExchClientVer=15.1.225.42"
                .parse()
                .expect("uri"),
            &HeaderMap::new(),
        )
        .expect("parses");
        let ctx = RouteContext { spread, ..o.ctx() };
        let d = route(&req, Some(&uid("admin@contoso.com")), &ctx).expect("routes");
        assert_eq!(d.route.backend.name.as_str(), "ex2", "only ex2 is 2016");
    }
}

#[test]
fn shell_version_based_session_stays_on_its_server_by_cookie() {
    let o = org(["15.0.1130.7", "15.1.396.30", "15.0.1130.7"], true);
    let pinned = CookieTarget::Server("ex3".parse().expect("ok"));
    let cookie = format!(
        "X-BackEndCookie={}",
        o.key.issue("admin@contoso.com", &pinned, NOW + 60)
    );
    let d = o.route(
        "/powershell",
        &[("cookie", &cookie)],
        Some("admin@contoso.com"),
    );
    assert_eq!(backend(&d), "ex3");
    assert_eq!(reason(&d), Some(RouteReason::ShellSession));
    let issued = d.expect("routes").route.cookie_target();
    assert_eq!(issued, Some(pinned));
}

// ---- cookies at routing level ----

#[test]
fn cookie_forged_falls_back_to_directory_lookup() {
    let o = new_org();
    let other = CookieKey::new(&[1u8; 32]).expect("32 bytes");
    let target = CookieTarget::Mailbox {
        guid: guid(2),
        server: "ex3".parse().expect("ok"),
    };
    let forged = format!(
        "X-BackEndCookie={}",
        other.issue("alice@contoso.com", &target, NOW + 60)
    );
    let d = o
        .route("/ews/", &[("cookie", &forged)], Some("alice@contoso.com"))
        .expect("routes");
    assert_eq!(
        d.route.backend.name.as_str(),
        "ex1",
        "alice's own mailbox, not the cookie's"
    );
    assert_eq!(d.refused_cookie, Some(CookieError::BadSignature));
}

#[test]
fn cookie_replayed_by_another_user_falls_back_to_their_own_mailbox() {
    let o = new_org();
    let alices = o.cookie_for("alice@contoso.com", 1, "ex1");
    let d = o
        .route("/ews/", &[("cookie", &alices)], Some("bob@contoso.com"))
        .expect("routes");
    assert_eq!(d.route.backend.name.as_str(), "ex2");
    assert_eq!(d.route.reason, RouteReason::AuthenticatedUser);
    assert_eq!(d.refused_cookie, Some(CookieError::OtherUser));
}

#[test]
fn cookie_is_never_used_for_anonymous_requests() {
    let o = new_org();
    let alices = o.cookie_for("alice@contoso.com", 1, "ex1");
    let d = o
        .route("/owa/", &[("cookie", &alices)], None)
        .expect("routes");
    assert_eq!(
        d.route.reason,
        RouteReason::AnyServer(AnyServerWhy::NoAnchor)
    );
    assert_eq!(d.refused_cookie, Some(CookieError::OtherUser));
}

#[test]
fn cookie_naming_an_old_server_still_routes_to_the_active_copy() {
    let mut o = new_org();
    let cookie = o.cookie_for("alice@contoso.com", 2, "ex2");
    o.am.move_database(
        Instant::now(),
        &"db2".parse().expect("ok"),
        &"ex3".parse().expect("ok"),
    )
    .expect("moves");
    let d = o
        .route("/ews/", &[("cookie", &cookie)], Some("alice@contoso.com"))
        .expect("routes");
    assert_eq!(
        d.route.backend.name.as_str(),
        "ex3",
        "the server in a cookie is only a cache"
    );
    assert_eq!(d.route.reason, RouteReason::BackEndCookie);
}

#[test]
fn cookie_for_a_removed_mailbox_is_stale() {
    let o = new_org();
    let cookie = o.cookie_for("alice@contoso.com", 99, "ex1");
    let d = o
        .route("/ews/", &[("cookie", &cookie)], Some("alice@contoso.com"))
        .expect("routes");
    assert_eq!(d.refused_cookie, Some(CookieError::Stale));
    assert_eq!(d.route.reason, RouteReason::AuthenticatedUser);
}

#[test]
fn server_pinning_cookie_is_ignored_outside_the_shell() {
    let o = new_org();
    let pinned = CookieTarget::Server("ex3".parse().expect("ok"));
    let cookie = format!(
        "X-BackEndCookie={}",
        o.key.issue("alice@contoso.com", &pinned, NOW + 60)
    );
    let d = o
        .route("/owa/", &[("cookie", &cookie)], Some("alice@contoso.com"))
        .expect("routes");
    assert_eq!(d.route.backend.name.as_str(), "ex1");
    assert_eq!(d.refused_cookie, Some(CookieError::Stale));
}

impl Route {
    fn to_string_reason(&self) -> String {
        self.reason.to_string()
    }
}
