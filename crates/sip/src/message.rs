//! The message model: requests and responses over one shared buffer, byte-exact until changed.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};

#[cfg(test)]
use crate::builder::RequestBuilder;
use crate::error::ParseError;
use crate::header_name::{AsHeaderName, HeaderName};
use crate::limits::Limits;
use crate::method::Method;
use crate::name_addr::{ContactList, NameAddr};
use crate::parse::{self, Mode};
use crate::scan::{self, Span};
use crate::typed::{self, AuthHeader, CSeq, Event, MediaType, SubscriptionState};
use crate::uri::Uri;
use crate::via::Via;

/// A SIP message: what the transport layer hands to the transaction layer.
#[derive(Clone, Debug)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// Parses a whole message with datagram rules (RFC 3261 §18.3): Content-Length is optional,
    /// bytes after the body are discarded, and a body shorter than Content-Length is an error.
    /// Leading CRLFs (keep-alives) are skipped.
    pub fn parse(bytes: Bytes, limits: &Limits) -> Result<Self, ParseError> {
        parse::parse(bytes, limits, Mode::Datagram)
    }

    /// Parses exactly one message cut from a stream (see [`crate::StreamDeframer`]):
    /// Content-Length is required and must match the bytes given.
    pub fn parse_stream_frame(bytes: Bytes, limits: &Limits) -> Result<Self, ParseError> {
        parse::parse(bytes, limits, Mode::Stream)
    }

    /// The message on the wire: exactly the parsed bytes if nothing was changed.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Self::Request(r) => r.to_bytes(),
            Self::Response(r) => r.to_bytes(),
        }
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Self::Request(r) => Some(r),
            Self::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Self::Response(r) => Some(r),
            Self::Request(_) => None,
        }
    }

    /// The first Via: where the transaction layer finds the branch.
    pub fn top_via(&self) -> &Via {
        self.parts().top_via()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        self.parts().call_id()
    }

    /// The CSeq.
    pub fn cseq(&self) -> &CSeq {
        &self.parts().core.cseq
    }

    /// The From header.
    pub fn from(&self) -> &NameAddr {
        &self.parts().core.from
    }

    /// The To header.
    pub fn to(&self) -> &NameAddr {
        &self.parts().core.to
    }

    /// The first value of a header.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&[u8]> {
        self.parts().header(name)
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.parts().body
    }

    fn parts(&self) -> &Parts {
        match self {
            Self::Request(r) => &r.parts,
            Self::Response(r) => &r.parts,
        }
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Self::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Self::Response(r)
    }
}

/// A SIP request.
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) parts: Parts,
}

impl Request {
    /// Parses a request with datagram rules (see [`Message::parse`]); a response is an error.
    pub fn parse(bytes: Bytes, limits: &Limits) -> Result<Self, ParseError> {
        match Message::parse(bytes, limits)? {
            Message::Request(r) => Ok(r),
            Message::Response(_) => Err(ParseError::BadStartLine),
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Request-URI. Any scheme parses; the server answers 416 for ones it does not serve.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Fills in the top Via from the address the request really came from: `received` when the
    /// sent-by host is not that IP (RFC 3261 §18.2.1), and `rport` plus `received` when the
    /// client asked for rport (RFC 3581 §4). Does nothing when neither applies.
    pub fn stamp_via_source(&mut self, source: SocketAddr) {
        let mut via = self.top_via().clone();
        if via.stamp_source(source) {
            // The new value was produced by Via's own setters, so it always decodes.
            let _ = self.set_top_via(via);
        }
    }

    fn refresh_method(&self) -> Option<&Method> {
        Some(&self.method)
    }
}

/// A SIP response.
#[derive(Clone, Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) reason: Span,
    pub(crate) parts: Parts,
}

impl Response {
    /// Parses a response with datagram rules (see [`Message::parse`]); a request is an error.
    pub fn parse(bytes: Bytes, limits: &Limits) -> Result<Self, ParseError> {
        match Message::parse(bytes, limits)? {
            Message::Response(r) => Ok(r),
            Message::Request(_) => Err(ParseError::BadStartLine),
        }
    }

    /// The status code (100..=699).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase, exactly as received (may be empty or non-ASCII UTF-8).
    pub fn reason(&self) -> &[u8] {
        self.reason.get(&self.parts.buf)
    }

    fn refresh_method(&self) -> Option<&Method> {
        None
    }
}

/// One header field as stored: its name and raw (LWS-trimmed, possibly folded) value.
#[derive(Clone, Copy, Debug)]
pub struct HeaderField<'a> {
    name: &'a HeaderName,
    raw_name: &'a [u8],
    value: &'a [u8],
}

impl<'a> HeaderField<'a> {
    /// The classified name.
    pub fn name(&self) -> &'a HeaderName {
        self.name
    }

    /// The name exactly as written (`v`, `VIA`, `Via`).
    pub fn raw_name(&self) -> &'a [u8] {
        self.raw_name
    }

    /// The value without surrounding LWS; folded lines keep their CRLF.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
}

macro_rules! common_api {
    ($t:ident) => {
        impl $t {
            /// The first header field with this name (compact forms and case are ignored).
            pub fn header(&self, name: impl AsHeaderName) -> Option<&[u8]> {
                self.parts.header(name)
            }

            /// The first header field with this name, if its value is UTF-8.
            pub fn header_str(&self, name: impl AsHeaderName) -> Option<&str> {
                self.header(name).and_then(|v| std::str::from_utf8(v).ok())
            }

            /// Every header field with this name, in order (one item per field, not per
            /// comma-separated value).
            pub fn headers_named(&self, name: impl AsHeaderName) -> impl Iterator<Item = &[u8]> {
                self.parts.headers_named(name)
            }

            /// Every comma-separated value of every field with this name, trimmed (for list
            /// headers such as Supported, Allow, Accept; quotes and `<>` are respected).
            pub fn header_values(&self, name: impl AsHeaderName) -> impl Iterator<Item = &[u8]> {
                self.parts.headers_named(name).flat_map(scan::split_commas)
            }

            /// All header fields in order.
            pub fn headers(&self) -> impl Iterator<Item = HeaderField<'_>> {
                self.parts.fields.iter().map(|f| {
                    let src = self.parts.src(f);
                    HeaderField {
                        name: &f.name,
                        raw_name: f.name_span.get(src),
                        value: f.value.get(src),
                    }
                })
            }

            /// Every Via value, top first (always at least one).
            pub fn vias(&self) -> &[Via] {
                &self.parts.core.vias
            }

            /// The top Via.
            pub fn top_via(&self) -> &Via {
                self.parts.top_via()
            }

            /// The From header.
            pub fn from(&self) -> &NameAddr {
                &self.parts.core.from
            }

            /// The To header.
            pub fn to(&self) -> &NameAddr {
                &self.parts.core.to
            }

            /// The Call-ID.
            pub fn call_id(&self) -> &str {
                self.parts.call_id()
            }

            /// The CSeq.
            pub fn cseq(&self) -> &CSeq {
                &self.parts.core.cseq
            }

            /// Max-Forwards (0..=255), if present.
            pub fn max_forwards(&self) -> Option<u8> {
                self.parts.core.max_forwards
            }

            /// Content-Length, if present (a datagram may omit it).
            pub fn content_length(&self) -> Option<u32> {
                self.parts.core.content_length
            }

            /// The body, byte-exact (NUL and bare CR/LF allowed).
            pub fn body(&self) -> &Bytes {
                &self.parts.body
            }

            /// All Contact values, or `*`; an empty list if there is no Contact.
            pub fn contacts(&self) -> Result<ContactList, ParseError> {
                let p = &self.parts;
                let mut list = Vec::new();
                let mut fields = 0;
                let mut star = false;
                for f in p
                    .fields
                    .iter()
                    .filter(|f| matches!(f.name, HeaderName::Contact))
                {
                    fields += 1;
                    let src = p.src(f);
                    match ContactList::parse(src, std::iter::once(f.value.get(src)))? {
                        ContactList::Wildcard => star = true,
                        ContactList::Contacts(c) => list.extend(c),
                    }
                }
                match (star, fields) {
                    (true, 1) => Ok(ContactList::Wildcard),
                    (true, _) => Err(ParseError::InvalidHeader { header: "Contact" }),
                    (false, _) => Ok(ContactList::Contacts(list)),
                }
            }

            /// The Expires header in seconds; overlarge values saturate at `u32::MAX`.
            pub fn expires(&self) -> Result<Option<u32>, ParseError> {
                self.header(HeaderName::Expires)
                    .map(|v| typed::parse_delta_seconds(v, "Expires"))
                    .transpose()
            }

            /// The Min-Expires header (RFC 3261 §20.23).
            pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
                self.header(HeaderName::MinExpires)
                    .map(|v| typed::parse_delta_seconds(v, "Min-Expires"))
                    .transpose()
            }

            /// The Content-Type header.
            pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
                self.header(HeaderName::ContentType)
                    .map(MediaType::parse)
                    .transpose()
            }

            /// The Event header (RFC 6665).
            pub fn event(&self) -> Result<Option<Event<'_>>, ParseError> {
                self.header(HeaderName::Event).map(Event::parse).transpose()
            }

            /// The Subscription-State header (RFC 6665).
            pub fn subscription_state(&self) -> Result<Option<SubscriptionState<'_>>, ParseError> {
                self.header(HeaderName::SubscriptionState)
                    .map(SubscriptionState::parse)
                    .transpose()
            }

            /// Option tags from every Supported header.
            pub fn supported(&self) -> impl Iterator<Item = &str> {
                typed::tokens(self.headers_named(HeaderName::Supported))
            }

            /// Option tags from every Require header.
            pub fn require(&self) -> impl Iterator<Item = &str> {
                typed::tokens(self.headers_named(HeaderName::Require))
            }

            /// Option tags from every Proxy-Require header.
            pub fn proxy_require(&self) -> impl Iterator<Item = &str> {
                typed::tokens(self.headers_named(HeaderName::ProxyRequire))
            }

            /// Event packages from every Allow-Events header.
            pub fn allow_events(&self) -> impl Iterator<Item = &str> {
                typed::tokens(self.headers_named(HeaderName::AllowEvents))
            }

            /// Methods from every Allow header.
            pub fn allow(&self) -> impl Iterator<Item = &str> {
                typed::tokens(self.headers_named(HeaderName::Allow))
            }

            /// Every Authorization header (a client may send several schemes).
            pub fn authorizations(
                &self,
            ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
                self.headers_named(HeaderName::Authorization)
                    .map(|v| AuthHeader::parse(v, "Authorization"))
            }

            /// Every Proxy-Authorization header.
            pub fn proxy_authorizations(
                &self,
            ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
                self.headers_named(HeaderName::ProxyAuthorization)
                    .map(|v| AuthHeader::parse(v, "Proxy-Authorization"))
            }

            /// Every WWW-Authenticate challenge.
            pub fn www_authenticates(
                &self,
            ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
                self.headers_named(HeaderName::WwwAuthenticate)
                    .map(|v| AuthHeader::parse(v, "WWW-Authenticate"))
            }

            /// Every Proxy-Authenticate challenge.
            pub fn proxy_authenticates(
                &self,
            ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> {
                self.headers_named(HeaderName::ProxyAuthenticate)
                    .map(|v| AuthHeader::parse(v, "Proxy-Authenticate"))
            }

            /// The User-Agent header, if UTF-8.
            pub fn user_agent(&self) -> Option<&str> {
                self.header_str(HeaderName::UserAgent)
            }

            /// The SIP-ETag header (RFC 3903).
            pub fn sip_etag(&self) -> Option<&str> {
                self.header_str(HeaderName::SipETag).map(|s| s.trim())
            }

            /// The SIP-If-Match header (RFC 3903).
            pub fn sip_if_match(&self) -> Option<&str> {
                self.header_str(HeaderName::SipIfMatch).map(|s| s.trim())
            }

            /// Every Route value in order.
            pub fn routes(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.parts.name_addr_list(HeaderName::Route, "Route")
            }

            /// Every Record-Route value in order.
            pub fn record_routes(&self) -> Result<Vec<NameAddr>, ParseError> {
                self.parts
                    .name_addr_list(HeaderName::RecordRoute, "Record-Route")
            }

            /// Appends a header field. Fails if the value has CR/LF, if the header is
            /// Content-Length (use `set_body`), or if it is a header this crate always decodes
            /// and the value does not parse.
            pub fn push_header(&mut self, name: HeaderName, value: &str) -> Result<(), ParseError> {
                let idx = self.parts.fields.len();
                self.insert_header(idx, name, value)
            }

            /// Inserts a header field before position `index` (clamped to the end) of
            /// [`Self::headers`]; `0` puts it first (e.g. a proxy's own Via).
            pub fn insert_header(
                &mut self,
                index: usize,
                name: HeaderName,
                value: &str,
            ) -> Result<(), ParseError> {
                let method = self.refresh_method().cloned();
                self.parts.edit(method.as_ref(), |p| {
                    let field = Field::new(name, value.as_bytes())?;
                    let idx = index.min(p.fields.len());
                    p.fields.insert(idx, field);
                    Ok(())
                })
            }

            /// Removes every field with this name; returns how many were removed. Removing a
            /// header every message needs (From, To, Call-ID, CSeq, the last Via) fails.
            pub fn remove_header(&mut self, name: impl AsHeaderName) -> Result<usize, ParseError> {
                let method = self.refresh_method().cloned();
                let mut n = 0;
                self.parts.edit(method.as_ref(), |p| {
                    let before = p.fields.len();
                    p.fields.retain(|f| !name.is_name(&f.name));
                    n = before - p.fields.len();
                    Ok(())
                })?;
                Ok(n)
            }

            /// Replaces the first field with this name in place (keeping its position) and
            /// removes the others, or appends one if there is none.
            pub fn set_header(&mut self, name: HeaderName, value: &str) -> Result<(), ParseError> {
                let method = self.refresh_method().cloned();
                self.parts.edit(method.as_ref(), |p| {
                    let field = Field::new(name.clone(), value.as_bytes())?;
                    match p.fields.iter().position(|f| f.name == name) {
                        Some(i) => {
                            p.fields[i] = field;
                            let mut k = 0;
                            p.fields.retain(|f| {
                                k += 1;
                                k - 1 <= i || f.name != name
                            });
                        }
                        None => p.fields.push(field),
                    }
                    Ok(())
                })
            }

            /// Replaces the top Via value (e.g. after [`Via::set_received`]), keeping the rest
            /// of its header field byte-exact.
            pub fn set_top_via(&mut self, via: Via) -> Result<(), ParseError> {
                self.parts.set_top_via(&via)
            }

            /// Replaces the body, rewriting Content-Length and (if given) Content-Type.
            pub fn set_body(
                &mut self,
                content_type: Option<&str>,
                body: Bytes,
            ) -> Result<(), ParseError> {
                let method = self.refresh_method().cloned();
                self.parts.edit(method.as_ref(), |p| {
                    if let Some(ct) = content_type {
                        p.set_field(Field::new(HeaderName::ContentType, ct.as_bytes())?);
                    }
                    let len = body.len().to_string();
                    p.set_field(Field::new_unchecked(
                        HeaderName::ContentLength,
                        len.as_bytes(),
                    ));
                    p.body = body;
                    Ok(())
                })
            }

            /// The message on the wire: exactly the parsed bytes if nothing was changed.
            pub fn to_bytes(&self) -> Bytes {
                self.parts.to_bytes()
            }

            /// The start line without its CRLF, exactly as received.
            pub fn start_line(&self) -> &[u8] {
                self.parts.start.get(&self.parts.buf)
            }
        }
    };
}

common_api!(Request);
common_api!(Response);

/// The storage behind a request or response.
#[derive(Clone, Debug)]
pub(crate) struct Parts {
    /// The received (or built) bytes of exactly one message.
    pub(crate) buf: Bytes,
    /// The start line, without CRLF, in `buf`.
    pub(crate) start: Span,
    pub(crate) fields: Vec<Field>,
    pub(crate) body: Bytes,
    /// Whether anything changed since parsing (then `buf` is no longer the wire form).
    pub(crate) dirty: bool,
    pub(crate) core: Box<Core>,
}

/// A header field: its bytes live in the message buffer or, once added or changed, in `own`.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) name: HeaderName,
    pub(crate) own: Option<Bytes>,
    /// The whole field including its final CRLF.
    pub(crate) line: Span,
    pub(crate) name_span: Span,
    pub(crate) value: Span,
}

/// The always-decoded headers.
#[derive(Clone, Debug)]
pub(crate) struct Core {
    pub(crate) vias: Vec<Via>,
    pub(crate) from: NameAddr,
    pub(crate) to: NameAddr,
    pub(crate) call_id: Bytes,
    pub(crate) cseq: CSeq,
    pub(crate) max_forwards: Option<u8>,
    pub(crate) content_length: Option<u32>,
}

impl Field {
    /// A new field `Name: value\r\n`, rejecting values that would break framing.
    pub(crate) fn new(name: HeaderName, value: &[u8]) -> Result<Self, ParseError> {
        if matches!(name, HeaderName::ContentLength)
            || value.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0))
        {
            return Err(ParseError::InvalidHeaderValue);
        }
        Ok(Self::new_unchecked(name, scan::trim_lws(value)))
    }

    pub(crate) fn new_unchecked(name: HeaderName, value: &[u8]) -> Self {
        let n = name.as_str();
        let n_len = n.len();
        let mut b = BytesMut::with_capacity(n_len + value.len() + 4);
        b.put_slice(n.as_bytes());
        b.put_slice(b": ");
        b.put_slice(value);
        b.put_slice(b"\r\n");
        let len = b.len();
        Self {
            name,
            own: Some(b.freeze()),
            line: Span::new(0, len),
            name_span: Span::new(0, n_len),
            value: Span::new(n_len + 2, len - 2),
        }
    }
}

impl Parts {
    pub(crate) fn src<'a>(&'a self, f: &'a Field) -> &'a Bytes {
        f.own.as_ref().unwrap_or(&self.buf)
    }

    pub(crate) fn header(&self, name: impl AsHeaderName) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| name.is_name(&f.name))
            .map(|f| f.value.get(self.src(f)))
    }

    pub(crate) fn headers_named(&self, name: impl AsHeaderName) -> impl Iterator<Item = &[u8]> {
        self.fields
            .iter()
            .filter(move |f| name.is_name(&f.name))
            .map(|f| f.value.get(self.src(f)))
    }

    fn top_via(&self) -> &Via {
        // Invariant: `decode_core` rejects messages without a Via, and edits that would remove
        // the last one are rolled back, so `vias` is never empty.
        &self.core.vias[0]
    }

    fn call_id(&self) -> &str {
        scan::ascii_str(&self.core.call_id)
    }

    fn name_addr_list(
        &self,
        name: HeaderName,
        header: &'static str,
    ) -> Result<Vec<NameAddr>, ParseError> {
        let mut out = Vec::new();
        for f in self.fields.iter().filter(|f| f.name == name) {
            let src = self.src(f);
            NameAddr::parse_list(src, f.value.get(src), header, &mut out)?;
        }
        Ok(out)
    }

    /// Applies `f`, then re-decodes the always-decoded headers; on any error the message is left
    /// exactly as it was.
    fn edit(
        &mut self,
        method: Option<&Method>,
        f: impl FnOnce(&mut Self) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let saved_fields = self.fields.clone();
        let saved_body = self.body.clone();
        let result = f(self).and_then(|()| {
            parse::decode_core(&self.buf, &self.fields, &Limits::unbounded(), method)
        });
        match result {
            Ok(core) => {
                *self.core = core;
                self.dirty = true;
                Ok(())
            }
            Err(e) => {
                self.fields = saved_fields;
                self.body = saved_body;
                Err(e)
            }
        }
    }

    /// Replaces the first field named like `field` in place, or appends it.
    fn set_field(&mut self, field: Field) {
        match self.fields.iter().position(|f| f.name == field.name) {
            Some(i) => self.fields[i] = field,
            None => self.fields.push(field),
        }
    }

    /// Replaces the top Via value, re-decoding only the Via field it sits in. Every request
    /// gets `received`/`rport` stamped on arrival, and re-decoding the whole core for that
    /// cost as much as a third of the parse; the other core headers cannot have changed.
    fn set_top_via(&mut self, via: &Via) -> Result<(), ParseError> {
        let idx = self
            .fields
            .iter()
            .position(|f| matches!(f.name, HeaderName::Via))
            .ok_or(ParseError::MissingHeader { header: "Via" })?;
        let before = self.fields[idx].clone();
        let mut old = Vec::new();
        let src = self.src(&before);
        Via::parse_list(src, before.value.get(src), &mut old, usize::MAX)?;
        self.replace_top_via(via)?;
        let f = &self.fields[idx];
        let src = self.src(f);
        let mut new = Vec::with_capacity(old.len());
        let parsed = Via::parse_list(src, f.value.get(src), &mut new, usize::MAX);
        match parsed {
            Ok(()) if new.len() == old.len() && new.len() <= self.core.vias.len() => {
                self.core.vias.splice(..new.len(), new);
                self.dirty = true;
                Ok(())
            }
            other => {
                self.fields[idx] = before;
                Err(other
                    .err()
                    .unwrap_or(ParseError::InvalidHeader { header: "Via" }))
            }
        }
    }

    fn replace_top_via(&mut self, via: &Via) -> Result<(), ParseError> {
        let idx = self
            .fields
            .iter()
            .position(|f| matches!(f.name, HeaderName::Via))
            .ok_or(ParseError::MissingHeader { header: "Via" })?;
        let old = &self.core.vias[0];
        let f = &self.fields[idx];
        let src = self.src(f);
        // The cached top Via is a slice of this field's bytes; find where.
        let off = (old.as_str().as_ptr() as usize).checked_sub(src.as_ptr() as usize);
        let Some(vs) = off else {
            return Err(ParseError::InvalidHeader { header: "Via" });
        };
        let ve = vs + old.as_str().len();
        let line = f.line.get(src);
        let (ls, le) = (f.line.start as usize, f.line.end as usize);
        if vs < ls || ve > le {
            return Err(ParseError::InvalidHeader { header: "Via" });
        }
        let mut b = BytesMut::with_capacity(line.len() + via.as_str().len());
        b.put_slice(&src[ls..vs]);
        b.put_slice(via.as_str().as_bytes());
        b.put_slice(&src[ve..le]);
        let delta = via.as_str().len() as isize - (ve - vs) as isize;
        let new_len = b.len();
        let value_start = f.value.start as usize - ls;
        let value_end = (f.value.end as usize - ls) as isize + delta;
        let name_span = Span::new(
            f.name_span.start as usize - ls,
            f.name_span.end as usize - ls,
        );
        let name = f.name.clone();
        self.fields[idx] = Field {
            name,
            own: Some(b.freeze()),
            line: Span::new(0, new_len),
            name_span,
            value: Span::new(value_start, value_end.max(value_start as isize) as usize),
        };
        Ok(())
    }

    pub(crate) fn to_bytes(&self) -> Bytes {
        if !self.dirty {
            return self.buf.clone();
        }
        let start = self.start.get(&self.buf);
        let len = start.len()
            + 4
            + self.fields.iter().map(|f| f.line.len()).sum::<usize>()
            + self.body.len();
        let mut out = BytesMut::with_capacity(len);
        out.put_slice(start);
        out.put_slice(b"\r\n");
        for f in &self.fields {
            out.put_slice(f.line.get(self.src(f)));
        }
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContactList, Disposition, Transport};

    const REGISTER: &[u8] = b"REGISTER sip:example.test SIP/2.0\r\n\
Via: SIP/2.0/tcp 127.0.0.1:34404;branch=z9hG4bK5e1;rport\r\n\
From: <sip:alice@example.test>;tag=6398738154;epid=b34afb6ebb23\r\n\
To: <sip:alice@example.test>\r\n\
CSeq: 1 REGISTER\r\n\
i: 1ab2@127.0.0.1\r\n\
User-Agent: Purple/2.14.12 Sipe/1.25.0 (linux-x86_64)\r\n\
m: <sip:127.0.0.1:34404;transport=tcp;ms-opaque=d3470f2e1d>;methods=\"INVITE, MESSAGE, BENOTIFY\";proxy=replace;+sip.instance=\"<urn:uuid:085e0bd8>\"\r\n\
Supported: gruu-10, adhoclist\r\n\
Supported: msrtc-event-categories\r\n\
Event: registration\r\n\
Allow-Events: presence\r\n\
ms-keep-alive: UAC;hop-hop=yes\r\n\
Content-Length: 0\r\n\r\n";

    fn register() -> Request {
        Request::parse(Bytes::from_static(REGISTER), &Limits::default()).unwrap()
    }

    #[test]
    fn rfc3261_section_7_untouched_message_serialises_byte_exact() {
        let r = register();
        assert_eq!(r.to_bytes(), REGISTER);
        assert_eq!(r.method(), &Method::Register);
        assert_eq!(r.call_id(), "1ab2@127.0.0.1");
        assert_eq!(r.header("Call-ID"), Some(&b"1ab2@127.0.0.1"[..]));
        assert_eq!(r.header(HeaderName::Contact).map(|v| v.len()), Some(142));
        assert_eq!(r.header("MS-KEEP-ALIVE"), Some(&b"UAC;hop-hop=yes"[..]));
        assert_eq!(
            r.supported().collect::<Vec<_>>(),
            ["gruu-10", "adhoclist", "msrtc-event-categories"]
        );
        assert_eq!(r.headers_named(HeaderName::Supported).count(), 2);
        assert_eq!(r.event().unwrap().unwrap().package(), "registration");
        assert_eq!(r.top_via().rport(), Some(None));
        assert_eq!(r.from().tag(), Some("6398738154"));
        let ContactList::Contacts(c) = r.contacts().unwrap() else {
            panic!()
        };
        assert_eq!(c[0].instance().unwrap(), "<urn:uuid:085e0bd8>");
        assert_eq!(c[0].uri().sip().unwrap().transport(), Some("tcp"));
        let names: Vec<_> = r.headers().map(|h| h.raw_name().to_vec()).collect();
        assert_eq!(names[4], b"i");
    }

    #[test]
    fn ms_methods_and_folding() {
        let raw = b"BENOTIFY sip:alice@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:bob@example.test>;tag=1\r\nTo: <sip:alice@example.test>;tag=2\r\nCall-ID: x\r\nCSeq: 3 BENOTIFY\r\nSubject: a\r\n  folded\r\n\tagain\r\nContent-Length: 3\r\n\r\nabc";
        let r = Request::parse(Bytes::from_static(raw), &Limits::default()).unwrap();
        assert_eq!(r.method(), &Method::Benotify);
        assert_eq!(
            r.header(HeaderName::Subject),
            Some(&b"a\r\n  folded\r\n\tagain"[..])
        );
        assert_eq!(r.body(), &b"abc"[..]);
        assert_eq!(r.to_bytes(), &raw[..]);
    }

    #[test]
    fn rfc3261_section_18_3_datagram_rules() {
        let base = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n";
        let with = |tail: &[u8]| {
            let mut v = base.to_vec();
            v.extend_from_slice(tail);
            Bytes::from(v)
        };
        let r = Request::parse(
            with(b"Content-Length: 2\r\n\r\nabSURPLUS"),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.body(), &b"ab"[..]);
        assert!(!r.to_bytes().ends_with(b"SURPLUS"));
        let r = Request::parse(with(b"\r\nwhole rest"), &Limits::default()).unwrap();
        assert_eq!(r.body(), &b"whole rest"[..]);
        let e =
            Request::parse(with(b"Content-Length: 20\r\n\r\nabc"), &Limits::default()).unwrap_err();
        assert_eq!(
            e,
            ParseError::BodyTruncated {
                expected: 20,
                actual: 3
            }
        );
        let e = Message::parse_stream_frame(with(b"\r\n"), &Limits::default()).unwrap_err();
        assert_eq!(e, ParseError::MissingContentLength);
        let mut lead = b"\r\n\r\n".to_vec();
        lead.extend_from_slice(&with(b"l: 0\r\n\r\n"));
        let r = Request::parse(Bytes::from(lead.clone()), &Limits::default()).unwrap();
        assert_eq!(r.to_bytes(), &lead[4..]);
        let e = Request::parse(with(b"Bare: lf\n\r\n"), &Limits::default()).unwrap_err();
        assert_eq!(e, ParseError::BadHeaderLine);
        assert_eq!(
            Message::parse(Bytes::from_static(b"\r\n\r\n"), &Limits::default()).unwrap_err(),
            ParseError::Empty
        );
    }

    #[test]
    fn limits_are_enforced_and_answered_with_513() {
        let mut raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n".to_vec();
        for i in 0..10 {
            raw.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(40)).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let raw = Bytes::from(raw);
        let strict = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            Message::parse(raw.clone(), &l).unwrap_err()
        };
        assert_eq!(
            strict(|l| l.max_headers = 8),
            ParseError::TooManyHeaders { limit: 8 }
        );
        assert_eq!(
            strict(|l| l.max_line = 30),
            ParseError::LineTooLong { limit: 30 }
        );
        assert_eq!(
            strict(|l| l.max_message = 100),
            ParseError::MessageTooLarge { limit: 100 }
        );
        assert_eq!(
            strict(|l| l.max_vias = 0),
            ParseError::TooManyVias { limit: 0 }
        );
        let Disposition::Reply(r) =
            strict(|l| l.max_headers = 8).disposition(&raw, Transport::Datagram)
        else {
            panic!()
        };
        assert_eq!(r.status(), 513);
    }

    #[test]
    fn rfc3261_section_8_2_6_response_from_request() {
        let r = register();
        let resp = Response::for_request(&r, 200, "OK")
            .to_tag("srv1")
            .header(HeaderName::Expires, "3600")
            .header(HeaderName::AllowEvents, "presence,registration")
            .build()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.reason(), b"OK");
        assert_eq!(resp.to().tag(), Some("srv1"));
        assert_eq!(resp.from().tag(), Some("6398738154"));
        assert_eq!(resp.call_id(), r.call_id());
        assert_eq!(resp.cseq(), r.cseq());
        assert_eq!(resp.top_via(), r.top_via());
        assert_eq!(resp.content_length(), Some(0));
        assert_eq!(resp.expires().unwrap(), Some(3600));
        // A To that already has a tag keeps it.
        let again = Response::for_request(&resp_as_request(&resp), 200, "OK")
            .to_tag("zzz")
            .build()
            .unwrap();
        assert_eq!(again.to().tag(), Some("srv1"));
        // With a body.
        let with_body = Response::for_request(&r, 200, "OK")
            .body("application/xml", &b"<a/>"[..])
            .build()
            .unwrap();
        assert_eq!(with_body.body(), &b"<a/>"[..]);
        assert_eq!(with_body.content_length(), Some(4));
        assert!(
            with_body
                .content_type()
                .unwrap()
                .unwrap()
                .is("application", "xml")
        );
        assert!(
            Response::for_request(&r, 200, "OK")
                .header(HeaderName::Warning, "a\r\nb")
                .build()
                .is_err()
        );
        assert!(Response::for_request(&r, 99, "Nope").build().is_err());
    }

    fn resp_as_request(resp: &Response) -> Request {
        let mut raw = b"REGISTER sip:example.test SIP/2.0\r\n".to_vec();
        for h in resp.headers() {
            raw.extend_from_slice(h.raw_name());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(h.value());
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        Request::parse(Bytes::from(raw), &Limits::default()).unwrap()
    }

    #[test]
    fn server_originated_request_builder() {
        let uri = Uri::parse_str("sip:alice@127.0.0.1:34404;transport=tcp").unwrap();
        let b = RequestBuilder::new(Method::Notify, &uri)
            .header(
                HeaderName::Via,
                "SIP/2.0/TCP fe.example.test:5061;branch=z9hG4bKn1",
            )
            .header(HeaderName::MaxForwards, "70")
            .header(HeaderName::From, "<sip:alice@example.test>;tag=s1")
            .header(HeaderName::To, "<sip:alice@example.test>;tag=c1")
            .header(HeaderName::CallId, "sub1")
            .header(HeaderName::CSeq, "2 NOTIFY")
            .header(HeaderName::Event, "vnd-microsoft-roaming-contacts")
            .header(HeaderName::SubscriptionState, "active;expires=3600")
            .body(
                "application/vnd-microsoft-roaming-contacts+xml",
                &b"<contactList/>"[..],
            );
        let req = b.build().unwrap();
        assert_eq!(req.content_length(), Some(14));
        assert_eq!(
            req.subscription_state().unwrap().unwrap().expires(),
            Some(3600)
        );
        assert_eq!(req.to_bytes(), b.to_bytes());
        let bad = RequestBuilder::new(Method::Benotify, &uri)
            .header(HeaderName::Via, "SIP/2.0/TCP h;branch=z9hG4bKn1")
            .header(HeaderName::From, "<sip:a@b>;tag=1")
            .header(HeaderName::To, "<sip:a@b>")
            .header(HeaderName::CallId, "x")
            .header(HeaderName::CSeq, "2 NOTIFY");
        assert_eq!(bad.build().unwrap_err(), ParseError::CSeqMethodMismatch);
    }

    #[test]
    fn header_mutations() {
        let mut r = register();
        r.push_header(
            HeaderName::parse("ms-diagnostics").unwrap(),
            "1;reason=\"x\"",
        )
        .unwrap();
        assert_eq!(r.headers().last().unwrap().value(), b"1;reason=\"x\"");
        r.insert_header(
            0,
            HeaderName::Via,
            "SIP/2.0/TLS fe.example.test;branch=z9hG4bKp",
        )
        .unwrap();
        assert_eq!(r.top_via().host_str(), "fe.example.test");
        assert_eq!(r.vias().len(), 2);
        assert_eq!(
            r.remove_header(HeaderName::Via).unwrap_err(),
            ParseError::MissingHeader { header: "Via" }
        );
        assert_eq!(
            r.vias().len(),
            2,
            "a failed edit leaves the message unchanged"
        );
        assert!(r.remove_header(HeaderName::From).is_err());
        assert!(r.set_header(HeaderName::CSeq, "1 INVITE").is_err());
        assert!(r.push_header(HeaderName::ContentLength, "5").is_err());
        assert!(
            r.push_header(HeaderName::Subject, "a\r\nInjected: yes")
                .is_err()
        );
        r.set_header(HeaderName::Supported, "gruu-10").unwrap();
        assert_eq!(r.supported().collect::<Vec<_>>(), ["gruu-10"]);
        assert_eq!(r.remove_header("ms-keep-alive").unwrap(), 1);
        r.set_body(Some("text/plain"), Bytes::from_static(b"hello"))
            .unwrap();
        let out = r.to_bytes();
        let back = Request::parse(out.clone(), &Limits::default()).unwrap();
        assert_eq!(back.body(), &b"hello"[..]);
        assert_eq!(back.content_length(), Some(5));
        assert_eq!(back.vias().len(), 2);
        assert!(back.header("ms-keep-alive").is_none());
        assert_eq!(back.to_bytes(), out);
        // Untouched headers keep their exact spelling.
        assert!(out.windows(18).any(|w| w == b"i: 1ab2@127.0.0.1\r"));
    }

    #[test]
    fn rfc3581_stamp_via_source() {
        let mut r = register();
        r.stamp_via_source("192.0.2.9:40000".parse().unwrap());
        assert_eq!(r.top_via().rport(), Some(Some(40000)));
        assert_eq!(r.top_via().received(), Some("192.0.2.9".parse().unwrap()));
        let out = r.to_bytes();
        assert!(out.starts_with(b"REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/tcp 127.0.0.1:34404;branch=z9hG4bK5e1;rport=40000;received=192.0.2.9\r\nFrom:"));
        // Same host, no rport: nothing to add.
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.1:5060 , SIP/2.0/UDP second\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let mut r = Request::parse(Bytes::from_static(raw), &Limits::default()).unwrap();
        r.stamp_via_source("192.0.2.1:5060".parse().unwrap());
        assert_eq!(r.to_bytes(), &raw[..]);
        r.stamp_via_source("192.0.2.2:5060".parse().unwrap());
        let out = r.to_bytes();
        assert!(
            out.windows(61)
                .any(|w| w
                    == &b"v: SIP/2.0/UDP 192.0.2.1:5060;received=192.0.2.2 , SIP/2.0/UDP"[..61])
        );
        assert_eq!(r.vias().len(), 2);
        assert_eq!(r.vias()[1].host_str(), "second");
        // A second stamp edits the already rewritten field; the decoded Vias follow the bytes.
        r.stamp_via_source("192.0.2.3:5060".parse().unwrap());
        assert_eq!(r.top_via().received(), Some("192.0.2.3".parse().unwrap()));
        let back = Request::parse(r.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(back.vias().len(), 2);
        assert_eq!(back.top_via().as_str(), r.top_via().as_str());
        assert_eq!(back.vias()[1].as_str(), r.vias()[1].as_str());
    }
}
