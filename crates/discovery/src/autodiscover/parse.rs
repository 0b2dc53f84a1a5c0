//! The client's reading of an XML autodiscover document, the way SIPE reads it (namespaces
//! ignored; `Root/Link`, `User/Link`, `User/SipClient*Access`, `@AccessLocation`). Used by the
//! discovery walk and by tests that check herald's documents from the client side.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// What a client takes from a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientView {
    /// `AccessLocation` of the document element (`Internal` / `External`), when present.
    pub access_location: Option<String>,
    /// `Root/Link` as (token, href), in document order.
    pub root_links: Vec<(String, String)>,
    /// True when the document has a `User` element.
    pub has_user: bool,
    /// `User/Link` as (token, href).
    pub user_links: Vec<(String, String)>,
    /// `User/<element fqdn port>` as (element, fqdn, port), for every `Sip*Access` element.
    pub user_access: Vec<(String, String, u16)>,
}

/// Why a body is not an autodiscover document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Syntax(String),
    /// The document element is not `AutodiscoverResponse`.
    #[error("the document element is {0:?}, not AutodiscoverResponse")]
    NotAutodiscover(String),
    /// Nesting deeper than any autodiscover document.
    #[error("elements nested too deeply")]
    TooDeep,
}

impl ClientView {
    /// The `(fqdn, port)` of a `User/<element>`.
    pub fn access(&self, element: &str) -> Option<(&str, u16)> {
        self.user_access
            .iter()
            .find(|(e, _, _)| e.eq_ignore_ascii_case(element))
            .map(|(_, f, p)| (f.as_str(), *p))
    }

    /// The first `Root/Link` whose token is `Redirect` or `User`, which is the one SIPE follows.
    pub fn next_root_link(&self) -> Option<(&str, &str)> {
        self.root_links
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case("Redirect") || t.eq_ignore_ascii_case("User"))
            .map(|(t, h)| (t.as_str(), h.as_str()))
    }

    /// The `href` of `User/Link token="Redirect"`.
    pub fn user_redirect(&self) -> Option<&str> {
        self.user_links
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case("Redirect"))
            .map(|(_, h)| h.as_str())
    }
}

/// Reads `body` as SIPE does.
pub fn read_xml(body: &str) -> Result<ClientView, XmlError> {
    let mut reader = Reader::from_str(body);
    let mut view = ClientView::default();
    let mut path: Vec<String> = Vec::new();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Syntax(e.to_string()))?;
        match event {
            Event::Start(e) => {
                saw_root = true;
                visit(&mut view, &path, &e)?;
                if path.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                path.push(local(&e));
            }
            Event::Empty(e) => {
                saw_root = true;
                visit(&mut view, &path, &e)?;
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(XmlError::Syntax("no document element".to_owned()));
    }
    Ok(view)
}

fn visit(view: &mut ClientView, path: &[String], e: &BytesStart<'_>) -> Result<(), XmlError> {
    let name = local(e);
    match path {
        [] => {
            if !name.eq_ignore_ascii_case("AutodiscoverResponse") {
                return Err(XmlError::NotAutodiscover(name));
            }
            view.access_location = attr(e, "AccessLocation");
        }
        [_, parent] if parent.eq_ignore_ascii_case("Root") && name.eq_ignore_ascii_case("Link") => {
            if let (Some(t), Some(h)) = (attr(e, "token"), attr(e, "href")) {
                view.root_links.push((t, h));
            }
        }
        [_] if name.eq_ignore_ascii_case("User") => view.has_user = true,
        [_, parent] if parent.eq_ignore_ascii_case("User") => {
            if name.eq_ignore_ascii_case("Link") {
                if let (Some(t), Some(h)) = (attr(e, "token"), attr(e, "href")) {
                    view.user_links.push((t, h));
                }
            } else if let (Some(fqdn), Some(port)) = (attr(e, "fqdn"), attr(e, "port"))
                && let Ok(port) = port.trim().parse::<u16>()
                && port != 0
            {
                view.user_access.push((name, fqdn, port));
            }
        }
        _ => {}
    }
    Ok(())
}

fn local(e: &BytesStart<'_>) -> String {
    {
        let n = e.local_name();
        let s: &str = n.as_ref();
        s.to_owned()
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        let n = a.key.local_name();
        let key: &str = n.as_ref();
        if key.eq_ignore_ascii_case(name) {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        } else {
            None
        }
    })
}

/// Autodiscover documents are three levels deep.
const MAX_DEPTH: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sipe_minimal_answer() {
        let v = read_xml(
            r#"<AutodiscoverResponse xmlns="http://schemas.microsoft.com/rtc/2012/03/autodiscover" AccessLocation="Internal">
            <User><SipClientInternalAccess fqdn="127.0.0.1" port="5060"/><SipClientExternalAccess fqdn="127.0.0.1" port="5060"/></User>
            </AutodiscoverResponse>"#,
        )
        .unwrap();
        assert_eq!(v.access_location.as_deref(), Some("Internal"));
        assert!(v.has_user);
        assert_eq!(
            v.access("SipClientInternalAccess"),
            Some(("127.0.0.1", 5060))
        );
    }

    #[test]
    fn reads_root_links_in_order_and_ignores_namespaces() {
        let v = read_xml(
            r#"<a:AutodiscoverResponse xmlns:a="urn:x"><a:Root><a:Link token="Domain" href="d"/><a:Link token="User" href="u&amp;x"/></a:Root></a:AutodiscoverResponse>"#,
        )
        .unwrap();
        assert_eq!(v.next_root_link(), Some(("User", "u&x")));
    }

    #[test]
    fn rejects_other_documents() {
        assert!(matches!(
            read_xml("<html/>"),
            Err(XmlError::NotAutodiscover(_))
        ));
        assert!(matches!(
            read_xml("<AutodiscoverResponse><Root>"),
            Ok(_) | Err(XmlError::Syntax(_))
        ));
        assert!(read_xml("").is_err());
        let deep = "<AutodiscoverResponse>".to_owned() + &"<a>".repeat(40);
        assert_eq!(read_xml(&deep), Err(XmlError::TooDeep));
    }
}
