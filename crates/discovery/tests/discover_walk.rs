//! Black-box: `discover()` against herald's own DNS server and autodiscover service on loopback,
//! with records removed one at a time to prove each fallback step through real sockets
//! (hickory-resolver over UDP/TCP, HTTP and HTTPS with a pinned self-signed certificate).

// Helpers outside #[test] functions count as tests too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_discovery::autodiscover::{self, Autodiscover, Scheme};
use herald_discovery::walk::{DiscoverOptions, Location, Transport, discover};
use herald_discovery::{LocalServer, Topology, TopologyConfig, ZoneSet, serve_dns};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, UdpSocket};

fn topology(extra: &str) -> Arc<Topology> {
    #[derive(serde::Deserialize)]
    struct File {
        topology: TopologyConfig,
    }
    let text = format!(
        r#"[topology]
        tcp_enabled = true
        {extra}
        [[topology.pools]]
        fqdn = "pool01.contoso.test"
        members = [{{ fqdn = "fe01.contoso.test", addresses = ["127.0.0.1"] }}]
        "#
    );
    let file: File = toml::from_str(&text).expect("topology parses");
    let local = LocalServer {
        domains: vec!["contoso.test".into()],
        ..LocalServer::default()
    };
    Arc::new(Topology::from_config(&file.topology, &local).expect("valid topology"))
}

struct Servers {
    dns: SocketAddr,
    http_port: u16,
    https_port: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// DNS, HTTP and HTTPS autodiscover for `topology` on 127.0.0.1; `web` false leaves the web
/// ports closed (connection refused), as if autodiscover were not deployed.
async fn start(topology: Arc<Topology>, web: bool) -> Servers {
    // UDP and TCP on one port; the port UDP gets may be taken over TCP, so try another.
    let (udp, tcp, dns) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dns = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(dns).await {
            break (udp, tcp, dns);
        }
    };
    let mut tasks = vec![tokio::spawn(serve_dns(
        Arc::new(ZoneSet::new(&topology)),
        vec![udp],
        vec![tcp],
    ))];

    let dir = tempfile::tempdir().unwrap();
    let names = vec![
        "lyncdiscoverinternal.contoso.test".to_owned(),
        "pool01.contoso.test".to_owned(),
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let ca = dir.path().join("herald.pem");
    std::fs::write(&ca, cert.pem()).unwrap();

    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_port, https_port) = (
        http.local_addr().unwrap().port(),
        https.local_addr().unwrap().port(),
    );
    if web {
        let service = Arc::new(Autodiscover::new(topology));
        let plain = autodiscover::router(service.clone(), Scheme::Http);
        tasks.push(tokio::spawn(async move {
            axum::serve(
                http,
                plain.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve http");
        }));
        let secure = autodiscover::router(service, Scheme::Https);
        let der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = https.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let app = secure
                    .clone()
                    .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        }));
    } else {
        drop((http, https));
    }
    Servers {
        dns,
        http_port,
        https_port,
        ca,
        _dir: dir,
        tasks,
    }
}

fn options(s: &Servers, ca: bool, mobile: bool) -> DiscoverOptions {
    let mut o = DiscoverOptions::new("alice@contoso.test");
    o.dns = Some(s.dns);
    o.mobile = mobile;
    o.http_port = s.http_port;
    o.https_port = s.https_port;
    o.ca = ca.then(|| s.ca.clone());
    o.timeout = Duration::from_secs(2);
    o
}

fn asks(r: &herald_discovery::walk::Report) -> Vec<String> {
    r.steps.iter().map(|s| s.ask.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_over_https_with_a_pinned_certificate() {
    let s = start(topology(""), true).await;
    let report = discover(&options(&s, true, false)).await.unwrap();
    let text = report.render_text();
    println!("{text}\n{}", report.render_json());
    let result = report.result.clone().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(result.via, "autodiscover", "{text}");
    assert_eq!(
        (result.fqdn.as_str(), result.port),
        ("pool01.contoso.test", 5061)
    );
    assert_eq!(result.location, Location::Inside);
    assert_eq!(
        result.addresses,
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(report.steps[1].ask.starts_with("GET https://"), "{text}");
    assert!(report.steps[1].outcome.is_ok(), "{text}");
    assert!(report.steps.iter().all(|s| s.elapsed > Duration::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_https_fails_and_http_answers() {
    let s = start(topology(""), true).await;
    let report = discover(&options(&s, false, false)).await.unwrap();
    let text = report.render_text();
    assert!(
        report.steps[1]
            .outcome
            .as_ref()
            .is_err_and(|e| e.contains("TLS")),
        "{text}"
    );
    assert!(report.steps[2].ask.starts_with("GET http://"), "{text}");
    assert_eq!(report.result.unwrap().via, "autodiscover", "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dns_fallback_through_real_sockets() {
    let cases = [
        (
            "",
            "SRV _sipinternaltls._tcp.contoso.test",
            5061,
            Transport::Tls,
        ),
        (
            r#""_sipinternaltls._tcp""#,
            "SRV _sipinternal._tcp.contoso.test",
            5060,
            Transport::Tcp,
        ),
        (
            r#""_sipinternaltls._tcp", "_sipinternal._tcp""#,
            "A sipinternal.contoso.test",
            5061,
            Transport::Tls,
        ),
        (
            r#""_sipinternaltls._tcp", "_sipinternal._tcp", "sipinternal""#,
            "A sip.contoso.test",
            5061,
            Transport::Tls,
        ),
    ];
    for (omit, via, port, transport) in cases {
        let s = start(topology(&format!("omit_records = [{omit}]")), false).await;
        let report = discover(&options(&s, true, false)).await.unwrap();
        let text = report.render_text();
        let result = report.result.unwrap_or_else(|| panic!("{text}"));
        assert_eq!(result.via, via, "{text}");
        assert_eq!(result.port, port);
        assert_eq!(result.transport, transport);
        assert_eq!(result.location, Location::Inside);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_client_and_mobile_stop() {
    // 127.0.0.1 is outside here: lyncdiscoverinternal is NXDOMAIN, lyncdiscover answers.
    let s = start(topology(r#"internal_networks = ["10.0.0.0/8"]"#), false).await;
    let report = discover(&options(&s, true, false)).await.unwrap();
    let text = report.render_text();
    println!("{text}");
    assert!(
        report.steps[0]
            .outcome
            .as_ref()
            .is_err_and(|e| e.starts_with("NXDOMAIN")),
        "{text}"
    );
    let result = report.result.clone().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(result.via, "SRV _sip._tls.contoso.test", "{text}");
    assert_eq!(result.location, Location::Outside);

    let mobile = discover(&options(&s, true, true)).await.unwrap();
    assert!(mobile.result.is_none(), "{}", mobile.render_text());
    assert!(asks(&mobile).iter().all(|a| !a.starts_with("SRV")));
    let json: serde_json::Value = serde_json::from_str(&mobile.render_json()).unwrap();
    assert!(json["result"].is_null());
}
