//! A small namespace-aware element tree over quick-xml's `NsReader`, and an infallible writer.
//!
//! Presence bodies are small (a few KiB) and every format here is easier to read as a tree than
//! as an event stream, so parsing builds one: names resolved to namespace URIs, attribute values
//! and text unescaped, and each element's byte span kept so that parts the server only stores
//! and forwards can be lifted out verbatim as an [`XmlFragment`]. The limits are checked while
//! the tree grows, before anything is allocated for an element that breaks them.

use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, ResolveResult};
use quick_xml::reader::NsReader;

use crate::fragment::XmlFragment;
use crate::{BodyError, Limits};

/// A parsed document: the source text and the root element.
pub(crate) struct Document<'a> {
    src: &'a str,
    pub(crate) root: Element,
}

/// One element with resolved names.
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) ns: Option<Rc<str>>,
    pub(crate) prefix: Option<Box<str>>,
    pub(crate) local: Box<str>,
    pub(crate) attrs: Vec<Attr>,
    /// Namespace declarations made on this element: prefix (None = default) → URI.
    decls: Vec<(Option<Box<str>>, Rc<str>)>,
    pub(crate) children: Vec<Node>,
    /// Byte range of the whole element in the source.
    span: (usize, usize),
    /// Source offset just past the start tag's qualified name.
    qname_end: usize,
}

/// One attribute with a resolved name (unprefixed attributes have no namespace).
#[derive(Debug)]
pub(crate) struct Attr {
    pub(crate) ns: Option<Rc<str>>,
    prefix: Option<Box<str>>,
    pub(crate) local: Box<str>,
    pub(crate) value: String,
}

/// A child: element or (unescaped, merged) character data.
#[derive(Debug)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

/// Parses `input` into a tree, enforcing `limits`.
pub(crate) fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Document<'a>, BodyError> {
    if input.len() > limits.max_body {
        return Err(BodyError::TooLarge {
            limit: limits.max_body,
        });
    }
    let src = std::str::from_utf8(input).map_err(|_| BodyError::NotUtf8)?;
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut reader = NsReader::from_str(src);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = false;
    reader
        .resolver_mut()
        .set_max_namespace_bindings(limits.max_attributes.max(16));
    let mut interned: Vec<Rc<str>> = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| xml_error(&reader, e))?;
        match event {
            Event::Start(start) => {
                let el = open_element(
                    &reader,
                    &start,
                    before,
                    limits,
                    &mut interned,
                    &mut elements,
                    stack.len(),
                    root.is_some(),
                )?;
                stack.push(el);
            }
            Event::Empty(start) => {
                let mut el = open_element(
                    &reader,
                    &start,
                    before,
                    limits,
                    &mut interned,
                    &mut elements,
                    stack.len(),
                    root.is_some(),
                )?;
                el.span.1 = reader.buffer_position() as usize;
                attach(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(malformed(before, "unmatched end tag"));
                };
                el.span.1 = reader.buffer_position() as usize;
                attach(&mut stack, &mut root, el);
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                push_text(&mut stack, &content, before)?;
            }
            Event::CData(data) => {
                let content = data.into_inner();
                push_text(&mut stack, &content, before)?;
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let ch = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => match &*name {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(BodyError::UnknownEntity(cut(other))),
                    },
                    Err(_) => return Err(BodyError::UnknownEntity(cut(&name))),
                };
                let mut tmp = [0u8; 4];
                push_text(&mut stack, ch.encode_utf8(&mut tmp), before)?;
            }
            Event::Decl(decl) => {
                if let Some(enc) = decl.encoding() {
                    let enc = enc.map_err(|e| malformed(before, &e.to_string()))?;
                    let enc = enc.into_owned();
                    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
                        return Err(BodyError::UnsupportedEncoding(cut(&enc)));
                    }
                }
            }
            Event::DocType(_) => return Err(BodyError::Doctype),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed(src.len(), "unclosed element"));
    }
    let root = root.ok_or(BodyError::NoRoot)?;
    Ok(Document { src, root })
}

impl Document<'_> {
    /// Checks that the root is `{ns}local` and returns it.
    pub(crate) fn root(
        &self,
        ns: &str,
        local: &str,
        expected: &'static str,
    ) -> Result<&Element, BodyError> {
        if self.root.is(ns, local) {
            Ok(&self.root)
        } else {
            Err(BodyError::UnexpectedRoot {
                expected,
                found: self.root.expanded_name(),
            })
        }
    }

    /// Lifts `el` out as a self-contained fragment: its source bytes, with declarations added
    /// to its start tag for every namespace it uses but inherits from an ancestor.
    pub(crate) fn fragment(&self, el: &Element) -> XmlFragment {
        let mut needed: Vec<(Option<&str>, &str)> = Vec::new();
        let mut scope: Vec<&Option<Box<str>>> = Vec::new();
        collect_inherited(el, &mut scope, &mut needed);
        let raw = &self.src[el.span.0..el.span.1];
        if needed.is_empty() {
            return XmlFragment::from_checked(raw.to_owned());
        }
        let split = el.qname_end.saturating_sub(el.span.0);
        if split > raw.len() || !raw.is_char_boundary(split) {
            // Cannot happen for a start tag the reader accepted; keep the text as it is rather
            // than guess where the name ends.
            return XmlFragment::from_checked(raw.to_owned());
        }
        let mut out = String::with_capacity(raw.len() + 64);
        out.push_str(&raw[..split]);
        for (prefix, uri) in needed {
            out.push_str(" xmlns");
            if let Some(p) = prefix {
                out.push(':');
                out.push_str(p);
            }
            out.push_str("=\"");
            escape_into(&mut out, uri, true);
            out.push('"');
        }
        out.push_str(&raw[split..]);
        XmlFragment::from_checked(out)
    }
}

impl Element {
    /// Whether this element is `{ns}local`.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        &*self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// Whether this element is in namespace `ns`.
    pub(crate) fn in_ns(&self, ns: &str) -> bool {
        self.ns.as_deref() == Some(ns)
    }

    /// `{namespace}local`, for error messages.
    pub(crate) fn expanded_name(&self) -> String {
        let mut s = String::new();
        if let Some(ns) = &self.ns {
            s.push('{');
            s.push_str(&cut(ns));
            s.push('}');
        }
        s.push_str(&cut(&self.local));
        s
    }

    /// The unprefixed attribute `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && &*a.local == name)
            .map(|a| a.value.as_str())
    }

    /// The attribute `{ns}name`.
    pub(crate) fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.as_deref() == Some(ns) && &*a.local == name)
            .map(|a| a.value.as_str())
    }

    /// The unprefixed attribute `name`, which must be present.
    pub(crate) fn req_attr(
        &self,
        element: &'static str,
        name: &'static str,
    ) -> Result<&str, BodyError> {
        self.attr(name).ok_or(BodyError::MissingAttribute {
            element,
            attribute: name,
        })
    }

    /// Child elements in document order.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The concatenated character data directly inside this element.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }
}

fn collect_inherited<'e>(
    el: &'e Element,
    scope: &mut Vec<&'e Option<Box<str>>>,
    needed: &mut Vec<(Option<&'e str>, &'e str)>,
) {
    let mark = scope.len();
    for (p, _) in &el.decls {
        scope.push(p);
    }
    let mut need = |prefix: &'e Option<Box<str>>, ns: Option<&'e Rc<str>>| {
        if scope.contains(&prefix) {
            return;
        }
        let uri: &str = ns.map_or("", |n| n);
        let key = prefix.as_deref();
        if !needed.iter().any(|(p, _)| *p == key) {
            needed.push((key, uri));
        }
    };
    need(&el.prefix, el.ns.as_ref());
    for a in &el.attrs {
        if a.prefix.is_some() && a.prefix.as_deref() != Some("xml") {
            need(&a.prefix, a.ns.as_ref());
        }
    }
    for c in el.elements() {
        collect_inherited(c, scope, needed);
    }
    scope.truncate(mark);
}

#[allow(clippy::too_many_arguments)]
fn open_element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    before: usize,
    limits: &Limits,
    interned: &mut Vec<Rc<str>>,
    elements: &mut usize,
    depth: usize,
    have_root: bool,
) -> Result<Element, BodyError> {
    if have_root && depth == 0 {
        return Err(malformed(before, "content after the root element"));
    }
    if depth >= limits.max_depth {
        return Err(BodyError::TooDeep {
            limit: limits.max_depth,
        });
    }
    *elements += 1;
    if *elements > limits.max_elements {
        return Err(BodyError::TooManyElements {
            limit: limits.max_elements,
        });
    }
    let qname = start.name();
    let (resolved, local) = reader.resolver().resolve_element(qname);
    let ns = resolve(resolved, interned)?;
    let prefix = qname.prefix().map(|p| p.into_inner().into());
    let local: Box<str> = local.into_inner().into();
    let mut attrs = Vec::new();
    let mut decls = Vec::new();
    let mut count = 0usize;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| malformed(before, &e.to_string()))?;
        count += 1;
        if count > limits.max_attributes {
            return Err(BodyError::TooManyAttributes {
                limit: limits.max_attributes,
            });
        }
        let value =
            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => BodyError::UnknownEntity(cut(&name)),
                    other => malformed(before, &other.to_string()),
                })?
                .into_owned();
        if let Some(decl) = attr.key.as_namespace_binding() {
            let p = match decl {
                PrefixDeclaration::Default => None,
                PrefixDeclaration::Named(p) => Some(p.into()),
            };
            decls.push((p, intern(interned, &value)));
            continue;
        }
        let (resolved, alocal) = reader.resolver().resolve_attribute(attr.key);
        let ans = resolve(resolved, interned)?;
        attrs.push(Attr {
            ns: ans,
            prefix: attr.key.prefix().map(|p| p.into_inner().into()),
            local: alocal.into_inner().into(),
            value,
        });
    }
    Ok(Element {
        ns,
        prefix,
        local,
        attrs,
        decls,
        children: Vec::new(),
        span: (before, before),
        qname_end: before + 1 + qname.as_ref().len(),
    })
}

fn resolve(
    r: ResolveResult<'_>,
    interned: &mut Vec<Rc<str>>,
) -> Result<Option<Rc<str>>, BodyError> {
    match r {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => {
            let s = ns.into_inner();
            if s.is_empty() {
                Ok(None)
            } else {
                Ok(Some(intern(interned, s)))
            }
        }
        ResolveResult::Unknown(p) => Err(BodyError::UnboundPrefix(cut(&p))),
    }
}

fn intern(interned: &mut Vec<Rc<str>>, s: &str) -> Rc<str> {
    if let Some(rc) = interned.iter().find(|r| &***r == s) {
        return rc.clone();
    }
    let rc: Rc<str> = s.into();
    interned.push(rc.clone());
    rc
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], content: &str, pos: usize) -> Result<(), BodyError> {
    let Some(parent) = stack.last_mut() else {
        if content
            .chars()
            .all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        {
            return Ok(());
        }
        return Err(malformed(pos, "text outside the root element"));
    };
    if let Some(Node::Text(t)) = parent.children.last_mut() {
        t.push_str(content);
    } else {
        parent.children.push(Node::Text(content.to_owned()));
    }
    Ok(())
}

fn xml_error(reader: &NsReader<&[u8]>, e: quick_xml::Error) -> BodyError {
    BodyError::Xml {
        position: reader.error_position(),
        message: cut(&e.to_string()),
    }
}

fn malformed(pos: usize, message: &str) -> BodyError {
    BodyError::Xml {
        position: pos as u64,
        message: cut(message),
    }
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(96);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Builds XML text into a buffer. Writing to memory cannot fail, so unlike quick-xml's
/// `Writer` there is no `io::Result` to thread through every renderer; escaping covers the
/// characters XML 1.0 cannot carry by replacing them with U+FFFD.
pub(crate) struct XmlWriter {
    pub(crate) buf: String,
}

impl XmlWriter {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            buf: String::with_capacity(cap),
        }
    }

    pub(crate) fn decl(&mut self) {
        self.buf
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }

    /// `<name` — follow with attributes, then [`Self::gt`] or [`Self::slash_gt`].
    pub(crate) fn open(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self
    }

    pub(crate) fn attr(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push_str("=\"");
        escape_into(&mut self.buf, value, true);
        self.buf.push('"');
        self
    }

    pub(crate) fn attr_opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.attr(name, v);
        }
        self
    }

    pub(crate) fn attr_num(&mut self, name: &str, value: impl Into<u64>) -> &mut Self {
        use std::fmt::Write;
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push_str("=\"");
        let _ = write!(self.buf, "{}", value.into());
        self.buf.push('"');
        self
    }

    pub(crate) fn attr_display(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = write!(s, "{value}");
        self.attr(name, &s)
    }

    pub(crate) fn gt(&mut self) {
        self.buf.push('>');
    }

    pub(crate) fn slash_gt(&mut self) {
        self.buf.push_str("/>");
    }

    pub(crate) fn close(&mut self, name: &str) {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }

    pub(crate) fn text(&mut self, text: &str) {
        escape_into(&mut self.buf, text, false);
    }

    pub(crate) fn raw(&mut self, xml: &str) {
        self.buf.push_str(xml);
    }

    /// `<name>text</name>`.
    pub(crate) fn text_elem(&mut self, name: &str, text: &str) {
        self.open(name).gt();
        self.text(text);
        self.close(name);
    }

    pub(crate) fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(self.buf.into_bytes())
    }
}

/// Escapes `s` for XML text (or an attribute value when `attr`), keeping every character that
/// survives a parse → render → parse cycle unchanged.
pub(crate) fn escape_into(out: &mut String, s: &str, attr: bool) {
    let needs = |c: char| {
        matches!(c, '&' | '<' | '>' | '\r')
            || (attr && matches!(c, '"' | '\n' | '\t'))
            || !is_xml_char(c)
    };
    if !s.chars().any(needs) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if !is_xml_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// XML 1.0 `Char` production.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag_of(doc: &str, path: &[usize]) -> String {
        let d = parse(doc.as_bytes(), &Limits::DEFAULT).expect("well formed");
        let mut el = &d.root;
        for &i in path {
            el = el.elements().nth(i).expect("child exists");
        }
        d.fragment(el).as_str().to_owned()
    }

    #[test]
    fn fragments_declare_what_they_inherit() {
        let doc = r#"<a xmlns="urn:a" xmlns:p="urn:p" xmlns:q="urn:q"><b p:x="1"><q:c/></b></a>"#;
        assert_eq!(
            frag_of(doc, &[0]),
            r#"<b xmlns="urn:a" xmlns:p="urn:p" xmlns:q="urn:q" p:x="1"><q:c/></b>"#
        );
        // Declared inside: nothing added.
        let own = r#"<a xmlns="urn:a"><b xmlns="urn:b"><c/></b></a>"#;
        assert_eq!(frag_of(own, &[0]), r#"<b xmlns="urn:b"><c/></b>"#);
        // No namespace under a parent that has none: pinned with xmlns="" so pasting it under a
        // default namespace does not change its meaning.
        assert_eq!(frag_of("<a><b/></a>", &[0]), r#"<b xmlns=""/>"#);
        // xml: needs no declaration.
        assert_eq!(
            frag_of(r#"<a xmlns="urn:a"><n xml:lang="en"/></a>"#, &[0]),
            r#"<n xmlns="urn:a" xml:lang="en"/>"#
        );
    }

    #[test]
    fn lifted_fragments_reparse_to_the_same_names() {
        let doc = r#"<a xmlns="urn:a" xmlns:p="urn:p"><b><p:c p:y="2">t &amp; u</p:c></b></a>"#;
        let f = XmlFragment::parse(&frag_of(doc, &[0])).expect("self-contained");
        let d = parse(f.as_str().as_bytes(), &Limits::DEFAULT).expect("well formed");
        assert!(d.root.is("urn:a", "b"));
        let c = d.root.elements().next().expect("child");
        assert!(c.is("urn:p", "c"));
        assert_eq!(c.attr_ns("urn:p", "y"), Some("2"));
        assert_eq!(c.text(), "t & u");
    }

    #[test]
    fn fragment_parse_checks_well_formedness() {
        assert!(XmlFragment::parse("<a/><b/>").is_err());
        assert!(XmlFragment::parse("text").is_err());
        assert!(XmlFragment::parse("<p:a/>").is_err());
        assert!(XmlFragment::parse("<a>").is_err());
        assert_eq!(
            XmlFragment::parse("<?xml version='1.0'?>\n<a/>\n")
                .map(|f| f.to_string())
                .ok()
                .as_deref(),
            Some("<a xmlns=\"\"/>")
        );
    }

    #[test]
    fn writer_escapes_what_the_parser_would_alter() {
        let mut w = XmlWriter::with_capacity(64);
        w.open("a").attr("v", "x\"\n\t\r<&>\u{1}").gt();
        w.text("<&>\r\n]]>\u{0}");
        w.close("a");
        let d = parse(w.buf.as_bytes(), &Limits::DEFAULT).expect("escaped output parses");
        assert_eq!(d.root.attr("v"), Some("x\"\n\t\r<&>\u{fffd}"));
        assert_eq!(d.root.text(), "<&>\r\n]]>\u{fffd}");
    }

    #[test]
    fn character_references_and_cdata() {
        let d =
            parse(b"<a>&#65;&#x42;<![CDATA[<c>]]>&lt;</a>", &Limits::DEFAULT).expect("well formed");
        assert_eq!(d.root.text(), "AB<c><");
        assert!(matches!(
            parse(b"<a>&#0;</a>", &Limits::DEFAULT),
            Err(BodyError::UnknownEntity(_) | BodyError::Xml { .. })
        ));
    }

    #[test]
    fn attribute_count_is_bounded() {
        let attrs: String = (0..70).map(|i| format!(" a{i}=\"1\"")).collect();
        let doc = format!("<a{attrs}/>");
        assert!(matches!(
            parse(doc.as_bytes(), &Limits::DEFAULT),
            Err(BodyError::TooManyAttributes { .. })
        ));
    }
}
