//! The autodiscover documents and their two renderings.
//!
//! XML, as Lync 2013 writes it and SIPE reads it (namespaces ignored by SIPE):
//!
//! ```xml
//! <AutodiscoverResponse xmlns="http://schemas.microsoft.com/rtc/2012/03/autodiscover"
//!     AccessLocation="Internal">
//!   <Root><Link token="User" href="…/root/user?sipuri=alice@contoso.com"/>…</Root>
//! </AutodiscoverResponse>
//! ```
//!
//! JSON mirrors the XML element for element (`AccessLocation`, `Root.Links[]` or `User` with its
//! four access objects and `Links[]`), and adds the HAL `_links` object (`self`, `user`,
//! `redirect`, …: each token lower-cased) that UCWA-style clients follow. Ports are numbers.

use serde_json::{Map, Value, json};

use crate::name::Fqdn;
use crate::records::View;

/// One document.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    location: View,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Root(Vec<Link>),
    User {
        element: &'static str,
        access: Vec<Access>,
        links: Vec<Link>,
    },
}

/// A `<Link token href>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    token: &'static str,
    href: String,
}

/// A `<SipServerInternalAccess fqdn port>`-style element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Access {
    element: &'static str,
    fqdn: Fqdn,
    port: u16,
}

impl Link {
    pub(crate) fn new(token: &'static str, href: String) -> Self {
        Self { token, href }
    }
}

impl Access {
    pub(crate) fn new(element: &'static str, fqdn: Fqdn, port: u16) -> Self {
        Self {
            element,
            fqdn,
            port,
        }
    }
}

impl Doc {
    /// The root resource with its links.
    pub(crate) fn root(location: View, links: Vec<Link>) -> Self {
        Self {
            location,
            body: Body::Root(links),
        }
    }

    /// A root that sends the client elsewhere: exactly one `Redirect` link.
    pub(crate) fn redirect_root(location: View, href: String) -> Self {
        Self::root(location, vec![Link::new("Redirect", href)])
    }

    /// A user resource that sends the client to the user's home pool.
    pub(crate) fn redirect_user(location: View, href: String) -> Self {
        Self {
            location,
            body: Body::User {
                element: "User",
                access: Vec::new(),
                links: vec![Link::new("Redirect", href)],
            },
        }
    }

    /// The user resource of a user homed on this pool.
    pub(crate) fn user(
        location: View,
        access: [Access; 4],
        mut links: Vec<Link>,
        self_href: String,
    ) -> Self {
        links.push(Link::new("Self", self_href));
        Self {
            location,
            body: Body::User {
                element: "User",
                access: access.to_vec(),
                links,
            },
        }
    }

    /// The domain resource: the same access elements for the domain's default pool.
    pub(crate) fn domain(
        location: View,
        access: [Access; 4],
        mut links: Vec<Link>,
        self_href: String,
    ) -> Self {
        links.push(Link::new("Self", self_href));
        Self {
            location,
            body: Body::User {
                element: "Domain",
                access: access.to_vec(),
                links,
            },
        }
    }

    fn location_text(&self) -> &'static str {
        match self.location {
            View::Internal => "Internal",
            View::External => "External",
        }
    }

    /// The XML rendering.
    pub(crate) fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
        out.push_str(r#"<AutodiscoverResponse xmlns=""#);
        out.push_str(NAMESPACE);
        out.push_str(r#"" AccessLocation=""#);
        out.push_str(self.location_text());
        out.push_str(r#"">"#);
        match &self.body {
            Body::Root(links) => {
                out.push_str("<Root>");
                xml_links(&mut out, links);
                out.push_str("</Root>");
            }
            Body::User {
                element,
                access,
                links,
            } => {
                out.push('<');
                out.push_str(element);
                out.push('>');
                for a in access {
                    out.push('<');
                    out.push_str(a.element);
                    out.push_str(r#" fqdn=""#);
                    escape_into(&mut out, a.fqdn.as_str());
                    out.push_str(r#"" port=""#);
                    out.push_str(&a.port.to_string());
                    out.push_str(r#""/>"#);
                }
                xml_links(&mut out, links);
                out.push_str("</");
                out.push_str(element);
                out.push('>');
            }
        }
        out.push_str("</AutodiscoverResponse>");
        out
    }

    /// The JSON rendering.
    pub(crate) fn to_json(&self) -> String {
        let mut doc = Map::new();
        doc.insert("AccessLocation".into(), json!(self.location_text()));
        let links = match &self.body {
            Body::Root(links) => {
                doc.insert("Root".into(), json!({ "Links": json_links(links) }));
                links
            }
            Body::User {
                element,
                access,
                links,
            } => {
                let mut user = Map::new();
                for a in access {
                    user.insert(
                        a.element.into(),
                        json!({ "fqdn": a.fqdn.as_str(), "port": a.port }),
                    );
                }
                user.insert("Links".into(), json_links(links));
                doc.insert((*element).into(), Value::Object(user));
                links
            }
        };
        let mut hal = Map::new();
        for l in links {
            hal.insert(l.token.to_ascii_lowercase(), json!({ "href": l.href }));
        }
        doc.insert("_links".into(), Value::Object(hal));
        Value::Object(doc).to_string()
    }
}

fn xml_links(out: &mut String, links: &[Link]) {
    for l in links {
        out.push_str(r#"<Link token=""#);
        escape_into(out, l.token);
        out.push_str(r#"" href=""#);
        escape_into(out, &l.href);
        out.push_str(r#""/>"#);
    }
}

fn json_links(links: &[Link]) -> Value {
    Value::Array(
        links
            .iter()
            .map(|l| json!({ "token": l.token, "href": l.href }))
            .collect(),
    )
}

/// XML attribute escaping (XML 1.0 §2.4, §3.3.3).
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

const NAMESPACE: &str = "http://schemas.microsoft.com/rtc/2012/03/autodiscover";
