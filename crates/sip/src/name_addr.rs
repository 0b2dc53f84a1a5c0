//! `name-addr / addr-spec` values with header parameters: From, To, Contact, Route,
//! Record-Route (RFC 3261 §20.10, §20.20, §20.39).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::error::ParseError;
use crate::scan::{self, Cursor, ParamIter, Span};
use crate::uri::Uri;

/// An address with optional display name and header parameters (From, To, one Contact, one
/// Route entry). Kept byte-exact; accessors decode on demand.
#[derive(Clone)]
pub struct NameAddr {
    raw: Bytes,
    display: Option<Span>,
    uri: Uri,
    angle: bool,
    params: Span,
    tag: Option<Span>,
}

impl NameAddr {
    /// Parses a single name-addr or addr-spec with parameters from text.
    pub fn parse_str(s: &str) -> Result<Self, ParseError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        Self::parse_single(&b, &b, "name-addr")
    }

    /// Parses a header value that must hold exactly one address (From, To); `v` is a slice of
    /// `src`.
    pub(crate) fn parse_single(
        src: &Bytes,
        v: &[u8],
        header: &'static str,
    ) -> Result<Self, ParseError> {
        let mut cur = Cursor::new(v);
        let na = Self::parse_one(src, &mut cur).map_err(scan::invalid(header))?;
        cur.skip_lws();
        if cur.at_end() {
            Ok(na)
        } else {
            Err(ParseError::InvalidHeader { header })
        }
    }

    /// Parses a comma-separated list of addresses (Contact, Route, Record-Route, Path).
    pub(crate) fn parse_list(
        src: &Bytes,
        v: &[u8],
        header: &'static str,
        out: &mut Vec<Self>,
    ) -> Result<(), ParseError> {
        let mut cur = Cursor::new(v);
        loop {
            out.push(Self::parse_one(src, &mut cur).map_err(scan::invalid(header))?);
            if !cur.eat_sep(b',') {
                break;
            }
        }
        cur.skip_lws();
        if cur.at_end() {
            Ok(())
        } else {
            Err(ParseError::InvalidHeader { header })
        }
    }

    fn parse_one(src: &Bytes, cur: &mut Cursor<'_>) -> Result<Self, ()> {
        cur.skip_lws();
        let start = cur.pos;
        let b = cur.b;
        let mut display = None;
        let mut angle = false;
        match cur.peek() {
            Some(b'"') => {
                display = Some(cur.quoted()?);
                cur.skip_lws();
                if cur.peek() != Some(b'<') {
                    return Err(());
                }
                angle = true;
            }
            Some(b'<') => angle = true,
            _ => {
                // Either `token *(LWS token) [LWS] "<"` (display name; RFC 4475 §3.1.1.6 allows
                // no LWS before `<`) or an addr-spec.
                let save = cur.pos;
                let mut last_end = None;
                while let Some(t) = cur.token() {
                    last_end = Some(t.end as usize);
                    cur.skip_lws();
                    if cur.peek() == Some(b'<') {
                        angle = true;
                        break;
                    }
                }
                match (angle, last_end) {
                    (true, Some(end)) => display = Some(Span::new(save, end)),
                    _ => {
                        angle = false;
                        cur.pos = save;
                    }
                }
            }
        }
        let uri = if angle {
            cur.bump(); // '<'
            let close = memchr::memchr(b'>', &b[cur.pos..]).ok_or(())?;
            let u = &b[cur.pos..cur.pos + close];
            cur.pos += close + 1;
            Uri::parse(scan::share(src, u)).map_err(|_| ())?
        } else {
            // addr-spec: the URI ends at the first `;`, `,` or LWS; a SIP URI with `?` headers
            // must be enclosed in `<>` (RFC 3261 §20.10, RFC 4475 §3.1.2.13).
            let s = cur.pos;
            while let Some(c) = cur.peek() {
                if matches!(c, b';' | b',' | b' ' | b'\t' | b'\r' | b'\n') {
                    break;
                }
                cur.bump();
            }
            let u = &b[s..cur.pos];
            if u.is_empty() {
                return Err(());
            }
            let uri = Uri::parse(scan::share(src, u)).map_err(|_| ())?;
            if uri.sip().is_some_and(|s| s.headers().is_some()) {
                return Err(());
            }
            uri
        };
        let mut end = cur.pos;
        let mut tag = None;
        let params = cur.params(|name, value| {
            if name.get(b).eq_ignore_ascii_case(b"tag") {
                let v = value.ok_or(())?;
                if v.get(b).first() == Some(&b'"') {
                    return Err(());
                }
                tag = Some(v);
            }
            Ok(())
        })?;
        if !params.is_empty() {
            end = params.end as usize;
        }
        let raw_b = &b[start..end];
        if !raw_b.is_ascii() {
            std::str::from_utf8(raw_b).map_err(|_| ())?;
        }
        let rb = |s: Span| Span::new(s.start as usize - start, s.end as usize - start);
        Ok(Self {
            raw: scan::share(src, raw_b),
            display: display.map(rb),
            uri,
            angle,
            params: if params.is_empty() {
                Span::new(end - start, end - start)
            } else {
                rb(params)
            },
            tag: tag.map(rb),
        })
    }

    /// The display name as written (quotes and escapes included), if any.
    pub fn display_name_raw(&self) -> Option<&str> {
        self.display.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// The display name with quotes removed and quoted-pairs decoded (may contain NUL etc.).
    pub fn display_name(&self) -> Option<Cow<'_, str>> {
        self.display_name_raw()
            .map(|d| match scan::unquote(d.as_bytes()) {
                Cow::Borrowed(b) => Cow::Borrowed(scan::ascii_str(b)),
                Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
            })
    }

    /// The URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether the URI was enclosed in `<>` (name-addr form).
    pub fn is_name_addr(&self) -> bool {
        self.angle
    }

    /// The `tag` parameter (dialog identification, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.tag.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// Header parameters in order, as written (values may be quoted strings).
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        ParamIter::header(self.params.get(&self.raw))
            .map(|(n, v)| (scan::ascii_str(n), v.map(scan::ascii_str)))
    }

    /// A header parameter by name (case-insensitive): `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value exactly as received.
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.raw)
    }

    /// The value as a shared buffer.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }
}

impl fmt::Debug for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Contact value: a [`NameAddr`] with the registrar's parameters decoded on demand.
#[derive(Clone, Debug)]
pub struct Contact(NameAddr);

impl Contact {
    /// The address.
    pub fn addr(&self) -> &NameAddr {
        &self.0
    }

    /// The contact URI (the binding's target).
    pub fn uri(&self) -> &Uri {
        self.0.uri()
    }

    /// The `expires` parameter in seconds. Values over `u32::MAX` saturate (RFC 4475 §3.1.2.4
    /// lets an element treat overlarge expiries as a large value); a non-numeric value is `None`,
    /// which the registrar treats as absent.
    pub fn expires(&self) -> Option<u32> {
        self.0.param("expires").flatten().and_then(saturating_u32)
    }

    /// The `q` value in thousandths (`q=0.5` is 500); `None` if absent or malformed.
    pub fn q(&self) -> Option<u16> {
        parse_qvalue(self.0.param("q").flatten()?)
    }

    /// The `+sip.instance` value without its quotes (RFC 5626 §4.1), e.g.
    /// `<urn:uuid:...>`.
    pub fn instance(&self) -> Option<Cow<'_, str>> {
        let v = self.0.param("+sip.instance").flatten()?;
        Some(match scan::unquote(v.as_bytes()) {
            Cow::Borrowed(b) => Cow::Borrowed(scan::ascii_str(b)),
            Cow::Owned(o) => Cow::Owned(String::from_utf8_lossy(&o).into_owned()),
        })
    }

    /// The `reg-id` parameter (RFC 5626 §4.2).
    pub fn reg_id(&self) -> Option<u32> {
        scan::parse_u32(self.0.param("reg-id").flatten()?.as_bytes())
    }

    /// Any parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.0.param(name)
    }
}

/// The Contact header fields of a message: `*` (REGISTER removal of all bindings) or a list
/// (possibly empty when the message has no Contact).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ContactList {
    /// `Contact: *`.
    Wildcard,
    /// Every Contact value, in order, across all Contact header fields.
    Contacts(Vec<Contact>),
}

impl ContactList {
    /// Decodes all Contact field values (each a slice of `src`).
    pub(crate) fn parse<'a>(
        src: &Bytes,
        values: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Self, ParseError> {
        let mut list = Vec::new();
        let mut star = false;
        let mut fields = 0;
        for v in values {
            fields += 1;
            if scan::trim_lws(v) == b"*" {
                star = true;
                continue;
            }
            let mut out = Vec::new();
            NameAddr::parse_list(src, v, "Contact", &mut out)?;
            list.extend(out.into_iter().map(Contact));
        }
        match (star, fields) {
            (true, 1) => Ok(Self::Wildcard),
            (true, _) => Err(ParseError::InvalidHeader { header: "Contact" }),
            (false, _) => Ok(Self::Contacts(list)),
        }
    }

    /// The contacts (empty for `*`).
    pub fn contacts(&self) -> &[Contact] {
        match self {
            Self::Wildcard => &[],
            Self::Contacts(c) => c,
        }
    }
}

fn saturating_u32(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(scan::parse_u32(v.as_bytes()).unwrap_or(u32::MAX))
}

pub(crate) fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, c) in frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .enumerate()
    {
        let _ = i;
        thousandths = thousandths * 10 + u16::from(c - b'0');
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse_str(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.display_name().unwrap(), "J Rosenberg \\\"");
        let n = NameAddr::parse_str("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
            .unwrap();
        assert!(!n.is_name_addr());
        assert_eq!(n.tag(), Some("1918181833n"));
        let n = NameAddr::parse_str("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display_name_raw(), Some("caller"));
        let n = NameAddr::parse_str("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>")
            .unwrap();
        assert_eq!(n.display_name_raw(), Some("token1~` token2'+_ token3*%!.-"));
        let n = NameAddr::parse_str("isbn:2983792873").unwrap();
        assert_eq!(n.uri().scheme(), "isbn");
    }

    #[test]
    fn name_addr_rejects() {
        assert!(NameAddr::parse_str("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse_str("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse_str("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(
            NameAddr::parse_str("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err()
        );
        assert!(NameAddr::parse_str("\"Joe\" <sip:joe@example.org>;;;;").is_err());
        assert!(NameAddr::parse_str("").is_err());
    }

    #[test]
    fn contact_params() {
        let src = Bytes::from_static(b"<sip:a@b;transport=tcp>;expires=280297596632815;q=0.33;+sip.instance=\"<urn:uuid:1>\";reg-id=2, sip:c@d");
        let list = ContactList::parse(&src, std::iter::once(&src[..])).unwrap();
        let c = list.contacts();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].expires(), Some(u32::MAX));
        assert_eq!(c[0].q(), Some(330));
        assert_eq!(c[0].instance().unwrap(), "<urn:uuid:1>");
        assert_eq!(c[0].reg_id(), Some(2));
        assert_eq!(c[1].uri().as_bytes(), b"sip:c@d");
        let star = Bytes::from_static(b" * ");
        assert!(matches!(
            ContactList::parse(&star, std::iter::once(&star[..])).unwrap(),
            ContactList::Wildcard
        ));
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.7"), Some(700));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("2"), None);
    }
}
