//! End to end: three demo mailbox servers in one DAG with two databases, the probe task, and
//! the anchoring proxy in front, all on 127.0.0.1 with real sockets.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use herald_anchor::active_manager::{ActiveManager, ActiveManagerConfig, AmEventKind, MountCause};
use herald_anchor::anchor::cookie::{CookieKey, CookieTarget};
use herald_anchor::backend::run_backend;
use herald_anchor::build::BuildNumber;
use herald_anchor::model::{
    Dag, Database, DatabaseCopy, ExchangeGuid, Mailbox, MailboxType, Server, SiteName, User,
};
use herald_anchor::probe::{Monitor, ProbeConfig, run_probes};
use herald_anchor::proxy::{BasicAuthenticator, ProxyConfig, ProxyState, serve};
use herald_anchor::store::{AnchorStore, Change, EventRecord, MemoryStore, apply_change};

const PASSWORD: &str = "pw";
const ARBITRATION: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com";

struct Deployment {
    proxy: String,
    backends: Vec<(String, String, JoinHandle<std::io::Result<()>>)>,
    monitor: Monitor,
    store: Arc<MemoryStore>,
    events: Arc<Mutex<Vec<AmEventKind>>>,
    client: Client<HttpConnector, Full<Bytes>>,
    _tasks: Vec<JoinHandle<()>>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    fn served_by(&self) -> String {
        self.json()["server"].as_str().unwrap_or("").to_owned()
    }

    fn backend_cookie(&self) -> Option<String> {
        let set = self.header("set-cookie");
        set.split(';')
            .next()
            .filter(|c| c.starts_with("X-BackEndCookie="))
            .map(str::to_owned)
    }
}

/// ex1 (2013 CU11), ex2 (2016 CU1), ex3 (2013 CU12) in dag1; db1 prefers ex1, ex2, ex3 and
/// db2 prefers ex2, ex3, ex1. alice is on db1, bob on db2, admin has no mailbox, and the
/// arbitration mailbox is on db2.
async fn deploy(probe_interval: Duration, probe_failures: u32) -> Deployment {
    let builds = ["15.0.1156.6", "15.1.396.30", "15.0.1178.4"];
    let mut backends = Vec::new();
    for (i, name) in ["ex1", "ex2", "ex3"].iter().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let build: BuildNumber = builds[i].parse().expect("build");
        let task = tokio::spawn(run_backend(name.parse().expect("name"), build, listener));
        backends.push((name.to_string(), addr, task));
    }

    let store = Arc::new(MemoryStore::new());
    let add = |c: Change| {
        apply_change(store.as_ref(), c).expect("valid change");
    };
    for (i, (name, addr, _)) in backends.iter().enumerate() {
        add(Change::AddServer(Server {
            name: name.parse().expect("name"),
            address: addr.parse().expect("addr"),
            site: SiteName::default_site(),
            build: builds[i].parse().expect("build"),
        }));
    }
    add(Change::AddDag(Dag {
        name: "dag1".parse().expect("name"),
        members: ["ex1", "ex2", "ex3"]
            .iter()
            .map(|s| s.parse().expect("name"))
            .collect(),
    }));
    for (db, order) in [
        ("db1", ["ex1", "ex2", "ex3"]),
        ("db2", ["ex2", "ex3", "ex1"]),
    ] {
        add(Change::AddDatabase(Database {
            name: db.parse().expect("name"),
            dag: Some("dag1".parse().expect("name")),
            copies: order
                .iter()
                .zip(1..)
                .map(|(s, p)| DatabaseCopy {
                    server: s.parse().expect("name"),
                    activation_preference: p,
                    copy_queue_length: None,
                })
                .collect(),
        }));
    }
    for user in ["alice@contoso.com", "bob@contoso.com", "admin@contoso.com"] {
        add(Change::AddUser(User {
            id: user.parse().expect("id"),
            sid: None,
            previous_mailbox: None,
        }));
    }
    for (n, smtp, owner, kind, db) in [
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
        (3, ARBITRATION, None, MailboxType::Arbitration, "db2"),
    ] {
        add(Change::AddMailbox(Mailbox {
            guid: ExchangeGuid::from_u128(n),
            primary_smtp: smtp.parse().expect("smtp"),
            owner: owner.map(|o| o.parse().expect("id")),
            kind,
            database: db.parse().expect("name"),
        }));
    }

    let topology = Arc::new(store.load_topology().expect("loads"));
    let config = ActiveManagerConfig {
        probe_interval,
        probe_failures,
        ..Default::default()
    };
    let am = ActiveManager::restore(
        topology,
        config,
        store.load_active_copies().expect("loads"),
        Instant::now(),
    );
    let monitor = Monitor::new(am);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_store = store.clone();
    let sink_events = events.clone();
    let probes = tokio::spawn(run_probes(
        monitor.clone(),
        ProbeConfig {
            timeout: Duration::from_millis(300),
            ..Default::default()
        },
        move |event| {
            let record = EventRecord::from_event(&event, SystemTime::now());
            sink_store.record_event(&record).expect("records");
            sink_events.lock().push(event.kind);
        },
    ));

    let auth =
        BasicAuthenticator::new(|_user: &herald_anchor::model::UserId, pw: &str| pw == PASSWORD);
    let state = ProxyState::new(
        ProxyConfig {
            frontend_name: "fe1".into(),
            ..Default::default()
        },
        monitor.clone(),
        CookieKey::new(&[42u8; 32]).expect("key"),
        Arc::new(auth),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = listener.local_addr().expect("addr").to_string();
    let serving = tokio::spawn(async move {
        let _ = serve(listener, state).await;
    });

    Deployment {
        proxy,
        backends,
        monitor,
        store,
        events,
        client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        _tasks: vec![probes, serving],
    }
}

impl Deployment {
    async fn send(
        &self,
        method: &str,
        url: String,
        user: Option<&str>,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(user) = user {
            req = req.header(
                "authorization",
                format!("Basic {}", b64(&format!("{user}:{PASSWORD}"))),
            );
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .client
            .request(req.body(Full::new(body)).expect("request"))
            .await
            .expect("proxy answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, path: &str, user: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let url = format!("http://{}{path}", self.proxy);
        self.send("GET", url, user, headers, Bytes::new()).await
    }

    fn backend_addr(&self, name: &str) -> &str {
        &self
            .backends
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("backend")
            .1
    }

    async fn set_backend_health(&self, name: &str, state: &'static str) {
        let url = format!("http://{}/_herald/health", self.backend_addr(name));
        let req = Request::post(url)
            .body(Full::new(Bytes::from(state)))
            .expect("request");
        let resp = self.client.request(req).await.expect("backend answers");
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Polls until `alice`'s requests are served by `server` or the deadline passes.
    async fn wait_until_served_by(&self, user: &str, server: &str, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get("/owa/", Some(user), &[]).await;
            if r.status == StatusCode::OK && r.served_by() == server {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "not served by {server} in time: {} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn requests_for_users_on_different_databases_reach_the_right_backend() {
    let d = deploy(Duration::from_millis(50), 2).await;
    let alice = d.get("/owa/", Some("alice@contoso.com"), &[]).await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    assert_eq!(alice.served_by(), "ex1");
    assert_eq!(alice.json()["mailbox"], "alice@contoso.com");
    assert_eq!(alice.json()["database"], "db1");
    assert_eq!(alice.header("x-beserver"), "ex1");
    assert_eq!(alice.header("x-diaginfo"), "ex1");
    assert_eq!(alice.header("x-feserver"), "fe1");
    assert_eq!(alice.header("x-calculatedbetarget"), d.backend_addr("ex1"));
    assert_eq!(
        alice.header("x-herald-anchor"),
        "authenticated user's mailbox"
    );
    assert!(
        alice.header("set-cookie").contains("Path=/owa; Max-Age="),
        "{}",
        alice.header("set-cookie")
    );
    assert!(alice.header("set-cookie").contains("HttpOnly"));

    let bob = d
        .get("/ews/exchange.asmx", Some("bob@contoso.com"), &[])
        .await;
    assert_eq!(bob.served_by(), "ex2");
    assert_eq!(bob.json()["mailbox"], "bob@contoso.com");

    let by_header = d
        .get(
            "/ews/exchange.asmx",
            Some("alice@contoso.com"),
            &[("X-AnchorMailbox", "bob@contoso.com")],
        )
        .await;
    assert_eq!(by_header.served_by(), "ex2");
    assert_eq!(
        by_header.json()["anchor_mailbox"],
        "bob@contoso.com",
        "header passes through"
    );
}

#[tokio::test]
async fn unknown_user_is_404_bad_credentials_401_and_unknown_path_404() {
    let d = deploy(Duration::from_millis(50), 2).await;
    let r = d.get("/owa/", Some("nobody@contoso.com"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body.trim(),
        "no user or mailbox nobody@contoso.com (from authenticated user)"
    );
    assert_eq!(r.header("x-feserver"), "fe1");

    let url = format!("http://{}/owa/", d.proxy);
    let bad = Request::get(url)
        .header(
            "authorization",
            format!("Basic {}", b64("alice@contoso.com:wrong")),
        )
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = d.client.request(bad).await.expect("answers");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let r = d.get("/favicon.ico", None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = d.get("/ews/", None, &[("X-AnchorMailbox", "PUID:1")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unhealthy_active_backend_fails_over_after_the_probe_detects_it() {
    let interval = Duration::from_millis(40);
    let d = deploy(interval, 2).await;
    assert_eq!(
        d.get("/owa/", Some("alice@contoso.com"), &[])
            .await
            .served_by(),
        "ex1"
    );

    let marked = Instant::now();
    d.set_backend_health("ex1", "down").await;
    d.wait_until_served_by("alice@contoso.com", "ex2", Duration::from_secs(3))
        .await;
    let took = marked.elapsed();
    // 2 failures at 40 ms intervals: detection needs about 2 intervals, well under a second.
    assert!(took < Duration::from_secs(1), "failover took {took:?}");

    // From now on every request succeeds on the new server.
    for _ in 0..20 {
        let r = d.get("/owa/", Some("alice@contoso.com"), &[]).await;
        assert_eq!((r.status, r.served_by().as_str()), (StatusCode::OK, "ex2"));
    }
    // bob's database was never on ex1 and did not move.
    assert_eq!(
        d.get("/owa/", Some("bob@contoso.com"), &[])
            .await
            .served_by(),
        "ex2"
    );

    let events = d.events.lock().clone();
    assert!(events.iter().any(
        |e| matches!(e, AmEventKind::ServerUnhealthy { server, .. } if server.as_str() == "ex1")
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        AmEventKind::Mounted { server, cause: MountCause::Failover { .. }, .. } if server.as_str() == "ex2"
    )));
    let persisted = d.store.load_active_copies().expect("loads");
    assert!(persisted.iter().any(|(db, copy)| db.as_str() == "db1"
        && *copy
            == herald_anchor::active_manager::ActiveCopy::Mounted("ex2".parse().expect("name"))));

    // Recovery does not fail back on its own.
    d.set_backend_health("ex1", "up").await;
    tokio::time::sleep(interval * 4).await;
    assert_eq!(
        d.get("/owa/", Some("alice@contoso.com"), &[])
            .await
            .served_by(),
        "ex2"
    );
}

#[tokio::test]
async fn stopped_backend_is_failed_over_and_the_request_retried_transparently() {
    // A long interval so the probe cannot be what notices: the proxied request itself does.
    let d = deploy(Duration::from_secs(30), 1).await;
    // Let the initial probes finish so ex1 is known healthy, then stop it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !d.monitor.read(|am| {
        am.server_status(&"ex1".parse().expect("name"))
            .is_some_and(|s| s.health == herald_anchor::active_manager::Health::Healthy)
    }) {
        assert!(Instant::now() < deadline, "ex1 never probed healthy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    d.backends[0].2.abort();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let r = d.get("/owa/", Some("alice@contoso.com"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.served_by(),
        "ex2",
        "retried on the copy Active Manager activated"
    );
    assert_eq!(r.header("x-herald-retried"), "1");
}

#[tokio::test]
async fn switchover_moves_requests_and_old_cookies_follow_the_active_copy() {
    let d = deploy(Duration::from_millis(50), 2).await;
    let first = d
        .get(
            "/ews/exchange.asmx",
            Some("alice@contoso.com"),
            &[("X-AnchorMailbox", "bob@contoso.com")],
        )
        .await;
    assert_eq!(first.served_by(), "ex2");
    let cookie = first.backend_cookie().expect("cookie issued");

    d.monitor
        .move_database(&"db2".parse().expect("name"), &"ex3".parse().expect("name"))
        .expect("moves");
    let bob = d.get("/owa/", Some("bob@contoso.com"), &[]).await;
    assert_eq!(bob.served_by(), "ex3");

    // alice's cookie still anchors her EWS session to bob's mailbox, now on ex3.
    let again = d
        .get(
            "/ews/exchange.asmx",
            Some("alice@contoso.com"),
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(again.served_by(), "ex3");
    assert_eq!(again.header("x-herald-anchor"), "X-BackEndCookie");

    let refused = d.monitor.move_database(
        &"db2".parse().expect("name"),
        &"nope".parse().expect("name"),
    );
    assert!(refused.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = d.store.recent_events(50).expect("reads");
    assert!(
        log.iter()
            .any(|e| e.message == "database db2 mounted on ex3 (switchover from ex2)")
    );
}

#[tokio::test]
async fn forged_altered_or_replayed_cookie_cannot_steer_a_request() {
    let d = deploy(Duration::from_millis(50), 2).await;
    // A cookie signed with another key, naming bob's mailbox on ex3.
    let target = CookieTarget::Mailbox {
        guid: ExchangeGuid::from_u128(2),
        server: "ex3".parse().expect("name"),
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let forged =
        CookieKey::new(&[1u8; 32])
            .expect("key")
            .issue("alice@contoso.com", &target, now + 600);
    let r = d
        .get(
            "/ews/exchange.asmx",
            Some("alice@contoso.com"),
            &[("cookie", &format!("X-BackEndCookie={forged}"))],
        )
        .await;
    assert_eq!(
        r.served_by(),
        "ex1",
        "alice's own mailbox, not the forged one"
    );
    assert!(
        r.header("x-herald-cookierefused")
            .contains("forged or altered")
    );

    // A genuine cookie of bob's, altered to name ex3.
    let bobs = d
        .get("/ews/exchange.asmx", Some("bob@contoso.com"), &[])
        .await
        .backend_cookie()
        .expect("cookie");
    let altered = bobs.replace("~ex2~", "~ex3~");
    let r = d
        .get(
            "/ews/exchange.asmx",
            Some("bob@contoso.com"),
            &[("cookie", &altered)],
        )
        .await;
    assert_eq!(r.served_by(), "ex2");
    assert!(
        r.header("x-herald-cookierefused")
            .contains("forged or altered")
    );

    // bob's genuine cookie replayed by alice.
    let r = d
        .get(
            "/ews/exchange.asmx",
            Some("alice@contoso.com"),
            &[("cookie", &bobs)],
        )
        .await;
    assert_eq!(r.served_by(), "ex1");
    assert_eq!(
        r.header("x-herald-cookierefused"),
        "backend cookie was issued to another user"
    );
}

#[tokio::test]
async fn management_shell_anchors_to_mailbox_or_arbitration_and_names_the_build() {
    let d = deploy(Duration::from_millis(50), 2).await;
    let alice = d
        .get(
            "/powershell?serializationLevel=Full",
            Some("alice@contoso.com"),
            &[],
        )
        .await;
    assert_eq!(alice.served_by(), "ex1");
    assert_eq!(alice.header("x-herald-shellrouting"), "anchored");
    assert_eq!(
        alice.header("x-herald-backendbuild"),
        "15.0.1156.6 (Exchange 2013 CU11)"
    );

    let admin = d.get("/powershell", Some("admin@contoso.com"), &[]).await;
    assert_eq!(admin.served_by(), "ex2", "arbitration mailbox is on db2");
    assert_eq!(
        admin.header("x-herald-anchor"),
        "arbitration mailbox (the admin has no mailbox)"
    );
    assert_eq!(
        admin.header("x-herald-backendbuild"),
        "15.1.396.30 (Exchange 2016 CU1)"
    );
}

#[tokio::test]
async fn management_shell_in_a_mixed_build_organisation_uses_version_based_routing() {
    let d = deploy(Duration::from_millis(50), 2).await;
    // A fourth server running 2013 CU10 joins the organisation (outside the DAG).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let cu10: BuildNumber = "15.0.1130.7".parse().expect("build");
    let _ex4 = tokio::spawn(run_backend("ex4".parse().expect("name"), cu10, listener));
    let topology = apply_change(
        d.store.as_ref(),
        Change::AddServer(Server {
            name: "ex4".parse().expect("name"),
            address: addr.parse().expect("addr"),
            site: SiteName::default_site(),
            build: cu10,
        }),
    )
    .expect("adds");
    d.monitor.update_topology(Arc::new(topology));

    let first = d.get("/powershell", Some("alice@contoso.com"), &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        first.header("x-herald-shellrouting"),
        "version-based (oldest server 15.0.1130.7 (Exchange 2013 CU10))"
    );
    assert!(
        first
            .header("x-herald-anchor")
            .starts_with("any available server (version-based")
    );
    assert_eq!(
        first.json()["mailbox"],
        serde_json::Value::Null,
        "not anchored to a mailbox"
    );
    let build = first.header("x-herald-backendbuild").to_owned();
    assert!(
        build.starts_with(first.json()["build"].as_str().unwrap_or("?")),
        "{build}"
    );

    // The session cookie keeps the shell on the server that holds it.
    let cookie = first.backend_cookie().expect("session cookie");
    for _ in 0..5 {
        let next = d
            .get(
                "/powershell",
                Some("alice@contoso.com"),
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(next.served_by(), first.served_by());
        assert_eq!(next.header("x-herald-anchor"), "shell session cookie");
    }

    // ExchClientVer asks for a 2016 server: only ex2 qualifies.
    let v16 = d
        .get(
            "/powershell?ExchClientVer=15.1.225.42",
            Some("admin@contoso.com"),
            &[],
        )
        .await;
    assert_eq!(v16.served_by(), "ex2");
}

#[tokio::test]
async fn non_idempotent_request_is_not_retried_and_large_bodies_stream() {
    let d = deploy(Duration::from_secs(30), 3).await;
    let big = Bytes::from(vec![b'x'; 1024 * 1024]);
    let url = format!("http://{}/ews/exchange.asmx", d.proxy);
    let r = d
        .send("PUT", url.clone(), Some("alice@contoso.com"), &[], big)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["body_bytes"], 1024 * 1024);

    d.set_backend_health("ex1", "down").await;
    let r = d
        .send(
            "POST",
            url.clone(),
            Some("alice@contoso.com"),
            &[],
            Bytes::from_static(b"<soap/>"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.header("x-herald-retried"),
        "",
        "POST is not retried after a 503"
    );
    let r = d
        .send("GET", url, Some("alice@contoso.com"), &[], Bytes::new())
        .await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "ex1 still active: the retry hits it too"
    );
    assert_eq!(r.header("x-herald-retried"), "1", "GET is retried once");
}

fn b64(input: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
