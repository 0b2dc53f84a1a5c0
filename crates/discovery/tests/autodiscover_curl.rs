//! Black-box: the autodiscover router served by axum on 127.0.0.1:0 and asked with `curl`, in
//! both formats and from both sides of the network (`curl --interface` sets the source:
//! 127.0.0.2 is internal in this topology, 127.0.0.1 is not).

// Helpers outside #[test] functions count as tests too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use herald_discovery::autodiscover::{self, Autodiscover, Scheme, read_xml};
use herald_discovery::{LocalServer, Topology, TopologyConfig};

fn topology() -> Arc<Topology> {
    #[derive(serde::Deserialize)]
    struct File {
        topology: TopologyConfig,
    }
    let file: File = toml::from_str(
        r#"[topology]
        internal_networks = ["127.0.0.2/32"]
        [[topology.pools]]
        fqdn = "pool01.contoso.test"
        members = [{ fqdn = "fe01.contoso.test", addresses = ["127.0.0.1"] }]
        "#,
    )
    .expect("test topology parses");
    let local = LocalServer {
        domains: vec!["contoso.test".into()],
        ..LocalServer::default()
    };
    Arc::new(Topology::from_config(&file.topology, &local).expect("valid topology"))
}

async fn start() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let service = Arc::new(Autodiscover::new(topology()));
    let app = autodiscover::router(service, Scheme::Http);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (addr, task)
}

struct Curl {
    status: u16,
    content_type: String,
    body: String,
}

async fn curl(server: SocketAddr, source: &str, path_and_query: &str, accept: &str) -> Curl {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--interface", source, "-H", &format!("Accept: {accept}")])
        .args(["-H", "Host: lyncdiscoverinternal.contoso.test"])
        .args(["-w", "\n%{http_code} %{content_type}"])
        .arg(format!("http://{server}{path_and_query}"))
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run curl ({e}): install it with `apt-get install curl` (scripts/test.sh does this)")
        });
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, trailer) = text.rsplit_once('\n').expect("curl trailer");
    let (status, content_type) = trailer.split_once(' ').unwrap_or((trailer, ""));
    Curl {
        status: status.parse().expect("status code"),
        content_type: content_type.to_owned(),
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_xml_and_json_from_both_sides() {
    let (server, task) = start().await;
    for (source, location) in [("127.0.0.2", "Internal"), ("127.0.0.1", "External")] {
        // SIPE's request, then the User link it follows.
        let root = curl(
            server,
            source,
            "/?sipuri=alice@contoso.test",
            autodiscover::XML_TYPE,
        )
        .await;
        assert_eq!(root.status, 200);
        assert!(
            root.content_type
                .starts_with("application/vnd.microsoft.rtc.autodiscover+xml")
        );
        let doc = read_xml(&root.body).expect("XML root");
        assert_eq!(doc.access_location.as_deref(), Some(location));
        let (token, href) = doc.next_root_link().expect("a User link");
        assert_eq!(token, "User");
        let path = &href[href.find("/Autodiscover").expect("path in href")..];
        let user = curl(server, source, path, autodiscover::XML_TYPE).await;
        assert_eq!(user.status, 200);
        let doc = read_xml(&user.body).expect("XML user");
        assert_eq!(
            doc.access("SipClientInternalAccess"),
            Some(("pool01.contoso.test", 5061))
        );
        assert_eq!(
            doc.access("SipClientExternalAccess"),
            Some(("sip.contoso.test", 5061))
        );

        let json = curl(
            server,
            source,
            "/Autodiscover/AutodiscoverService.svc/root/user?sipuri=alice@contoso.test",
            autodiscover::JSON_TYPE,
        )
        .await;
        assert_eq!(json.status, 200);
        assert_eq!(json.content_type, autodiscover::JSON_TYPE);
        let v: serde_json::Value = serde_json::from_str(&json.body).expect("JSON user");
        assert_eq!(v["AccessLocation"], location);
        assert_eq!(
            v["User"]["SipClientInternalAccess"]["fqdn"],
            "pool01.contoso.test"
        );
        assert_eq!(v["User"]["SipClientInternalAccess"]["port"], 5061);
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_404_for_an_unknown_domain_and_lowercase_paths_work() {
    let (server, task) = start().await;
    let r = curl(
        server,
        "127.0.0.1",
        "/?sipuri=bob@example.org",
        autodiscover::XML_TYPE,
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    let r = curl(
        server,
        "127.0.0.2",
        "/autodiscover/autodiscoverservice.svc/root?originalDomain=contoso.test",
        autodiscover::JSON_TYPE,
    )
    .await;
    assert_eq!(r.status, 200);
    task.abort();
}
