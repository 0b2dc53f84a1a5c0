//! Autodiscover as a client sees it: curl against a server's web listeners (the peer the
//! tests trust, not herald's own HTTP code) and the [MS-OCDISCWS] documents it returns, read
//! with minimal XML helpers and serde for JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::dns::run;

/// The XML media type SIPE asks for.
pub(crate) const XML: &str = "application/vnd.microsoft.rtc.autodiscover+xml;v=1";
/// The JSON media type.
pub(crate) const JSON: &str = "application/vnd.microsoft.rtc.autodiscover+json;v=1";
/// The root resource's path.
pub(crate) const ROOT: &str = "/Autodiscover/AutodiscoverService.svc/root";

/// What curl got.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

/// GET `url` with curl from the local address `source`, connecting to `to` whatever the URL's
/// host (`--resolve`), trusting only `cacert` for HTTPS. `accept` `None` sends no Accept header.
pub(crate) fn curl(
    cacert: &Path,
    source: &str,
    url: &str,
    accept: Option<&str>,
    to: &str,
) -> Reply {
    let (scheme, rest) = url.split_once("://").expect("absolute URL");
    let authority = rest.split('/').next().expect("authority");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.to_owned()),
        None => (
            authority,
            if scheme == "https" { "443" } else { "80" }.to_owned(),
        ),
    };
    let resolve = format!("{host}:{port}:{to}");
    let accept_header = match accept {
        Some(a) => format!("Accept: {a}"),
        // An empty value tells curl to send no Accept header at all.
        None => "Accept:".to_owned(),
    };
    let out = run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            "--interface",
            source,
            "--resolve",
            &resolve,
            "--cacert",
            cacert.to_str().expect("UTF-8 path"),
            "-H",
            &accept_header,
            "-w",
            "\n%{http_code} %{content_type}",
            url,
        ],
    );
    assert!(out.success, "{} failed: {}", out.command, out.stderr);
    let (body, trailer) = out.stdout.rsplit_once('\n').expect("curl's -w trailer");
    let (status, content_type) = trailer.split_once(' ').unwrap_or((trailer, ""));
    Reply {
        status: status.parse().expect("status code"),
        content_type: content_type.to_owned(),
        body: body.to_owned(),
    }
}

/// Asserts a 200 XML document with `AccessLocation` `location`.
#[track_caller]
pub(crate) fn assert_xml(r: &Reply, location: &str, ctx: &str) {
    assert_eq!(r.status, 200, "{ctx}: {r:?}");
    assert_eq!(r.content_type, XML, "{ctx}");
    assert_eq!(
        xml_attr(&r.body, "AutodiscoverResponse", "AccessLocation").as_deref(),
        Some(location),
        "{ctx}: {}",
        r.body
    );
}

/// The value of `attr` in the first `<element …>` of an XML text.
pub(crate) fn xml_attr(xml: &str, element: &str, attr: &str) -> Option<String> {
    let start = xml.find(&format!("<{element} "))?;
    let tag = &xml[start..start + xml[start..].find('>')?];
    let key = format!("{attr}=\"");
    let at = tag.find(&key)? + key.len();
    let end = tag[at..].find('"')?;
    Some(xml_unescape(&tag[at..at + end]))
}

/// Every `<Link token="…" href="…"/>` of an XML text.
pub(crate) fn xml_links(xml: &str) -> Vec<(String, String)> {
    xml.split("<Link ")
        .skip(1)
        .map(|part| {
            let end = part.find('>').map_or(part.len(), |i| i + 1);
            let tag = format!("<Link {}", &part[..end]);
            (
                xml_attr(&tag, "Link", "token").expect("Link token"),
                xml_attr(&tag, "Link", "href").expect("Link href"),
            )
        })
        .collect()
}

fn xml_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
}

/// The JSON autodiscover document ([MS-OCDISCWS] fields plus HAL `_links`).
#[derive(Debug, Deserialize)]
pub(crate) struct AdJson {
    #[serde(rename = "AccessLocation")]
    pub(crate) access_location: String,
    #[serde(rename = "Root")]
    pub(crate) root: Option<AdLinks>,
    #[serde(rename = "User")]
    pub(crate) user: Option<AdUser>,
    #[serde(rename = "_links", default)]
    pub(crate) hal: BTreeMap<String, AdHref>,
}

/// `Root`: its links.
#[derive(Debug, Deserialize)]
pub(crate) struct AdLinks {
    #[serde(rename = "Links")]
    pub(crate) links: Vec<AdLink>,
}

/// One `Links[]` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct AdLink {
    pub(crate) token: String,
    pub(crate) href: String,
}

/// One HAL `_links` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct AdHref {
    pub(crate) href: String,
}

/// `User`: access objects and links.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AdUser {
    /// The four access objects are absent from a User that only redirects.
    pub(crate) sip_server_internal_access: Option<AdAccess>,
    pub(crate) sip_client_internal_access: Option<AdAccess>,
    pub(crate) sip_server_external_access: Option<AdAccess>,
    pub(crate) sip_client_external_access: Option<AdAccess>,
    pub(crate) links: Vec<AdLink>,
}

/// A `SipClientInternalAccess`-style object.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub(crate) struct AdAccess {
    pub(crate) fqdn: String,
    pub(crate) port: u16,
}

/// `body` parsed as `T`, or a panic that shows it.
pub(crate) fn json<T: serde::de::DeserializeOwned>(body: &str) -> T {
    match axum::Json::<T>::from_bytes(body.as_bytes()) {
        Ok(axum::Json(v)) => v,
        Err(e) => panic!("not the expected JSON ({e}):\n{body}"),
    }
}
