//! Building responses (RFC 3261 §8.2.6) and server-originated requests (NOTIFY, BENOTIFY, ...).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ParseError;
use crate::header_name::HeaderName;
use crate::limits::Limits;
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::uri::Uri;

/// Builds a response to a request. Starts from the headers RFC 3261 §8.2.6.2 says to copy —
/// every Via in order, From, To, Call-ID and CSeq — then the caller adds its own headers and an
/// optional body; Content-Length is always written.
#[derive(Clone, Debug)]
pub struct ResponseBuilder {
    status: u16,
    reason: String,
    copied: Vec<(HeaderName, Bytes)>,
    to: Bytes,
    to_has_tag: bool,
    to_tag: Option<String>,
    extra: Vec<(HeaderName, Bytes)>,
    body: Option<(String, Bytes)>,
    error: Option<ParseError>,
}

impl Response {
    /// Starts a response to `req` with `code` and `reason` (e.g. `200`, `"OK"`). The request's
    /// current Via values are copied, so stamp `received`/`rport` on the request first.
    pub fn for_request(req: &Request, code: u16, reason: &str) -> ResponseBuilder {
        let mut copied = Vec::with_capacity(req.vias().len() + 3);
        for v in req.headers_named(HeaderName::Via) {
            copied.push((HeaderName::Via, Bytes::copy_from_slice(v)));
        }
        let raw = |n: HeaderName| Bytes::copy_from_slice(req.header(n).unwrap_or_default());
        copied.push((HeaderName::From, raw(HeaderName::From)));
        let tail = vec![
            (HeaderName::CallId, raw(HeaderName::CallId)),
            (HeaderName::CSeq, raw(HeaderName::CSeq)),
        ];
        let mut b = ResponseBuilder {
            status: code,
            reason: reason.to_owned(),
            copied,
            to: raw(HeaderName::To),
            to_has_tag: req.to().tag().is_some(),
            to_tag: None,
            extra: tail,
            body: None,
            error: None,
        };
        if !(100..=699).contains(&code) || reason.bytes().any(|c| matches!(c, b'\r' | b'\n')) {
            b.error = Some(ParseError::BadStatusCode);
        }
        b
    }
}

impl ResponseBuilder {
    /// The status code the response will carry (the transaction layer needs it).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Adds `;tag=tag` to To unless the request's To already has a tag (RFC 3261 §8.2.6.2).
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_owned());
        self
    }

    /// Appends a header field (after the copied ones, in call order).
    pub fn header(mut self, name: HeaderName, value: impl AsRef<[u8]>) -> Self {
        let v = value.as_ref();
        if matches!(name, HeaderName::ContentLength) {
            return self;
        }
        if v.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0)) {
            self.error = Some(ParseError::InvalidHeaderValue);
        }
        self.extra.push((name, Bytes::copy_from_slice(v)));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// The response on the wire.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(512);
        out.put_slice(b"SIP/2.0 ");
        out.put_slice(self.status.to_string().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.reason.as_bytes());
        out.put_slice(b"\r\n");
        for (n, v) in &self.copied {
            put_header(&mut out, n, v);
        }
        let mut to = BytesMut::from(&self.to[..]);
        if let (false, Some(tag)) = (self.to_has_tag, &self.to_tag) {
            to.put_slice(b";tag=");
            to.put_slice(tag.as_bytes());
        }
        put_header(&mut out, &HeaderName::To, &to);
        for (n, v) in &self.extra {
            put_header(&mut out, n, v);
        }
        finish(&mut out, self.body.as_ref());
        out.freeze()
    }

    /// Builds the response, checking it parses (it fails only if an added header value is
    /// invalid, e.g. contains CR/LF, or the status code is outside 100..=699).
    pub fn build(&self) -> Result<Response, ParseError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match Message::parse_stream_frame(self.to_bytes(), &Limits::unbounded())? {
            Message::Response(r) => Ok(r),
            Message::Request(_) => Err(ParseError::BadStartLine),
        }
    }
}

/// Builds a request the server originates (NOTIFY, BENOTIFY, ...): method, Request-URI, headers
/// in the order given, body; Content-Length is computed. The caller supplies Via, From, To,
/// Call-ID, CSeq (and Max-Forwards) as for any request.
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    method: Method,
    uri: Bytes,
    headers: Vec<(HeaderName, Bytes)>,
    body: Option<(String, Bytes)>,
    error: Option<ParseError>,
}

impl RequestBuilder {
    /// Starts a request.
    pub fn new(method: Method, uri: &Uri) -> Self {
        Self {
            method,
            uri: Bytes::copy_from_slice(uri.as_bytes()),
            headers: Vec::with_capacity(8),
            body: None,
            error: None,
        }
    }

    /// Appends a header field.
    pub fn header(mut self, name: HeaderName, value: impl AsRef<[u8]>) -> Self {
        let v = value.as_ref();
        if matches!(name, HeaderName::ContentLength) {
            return self;
        }
        if v.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0)) {
            self.error = Some(ParseError::InvalidHeaderValue);
        }
        self.headers.push((name, Bytes::copy_from_slice(v)));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// The request on the wire.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(512 + self.body.as_ref().map_or(0, |b| b.1.len()));
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(&self.uri);
        out.put_slice(b" SIP/2.0\r\n");
        for (n, v) in &self.headers {
            put_header(&mut out, n, v);
        }
        finish(&mut out, self.body.as_ref());
        out.freeze()
    }

    /// Builds the request, checking it parses (so a missing Via/From/To/Call-ID/CSeq or a CSeq
    /// method that differs from the method is caught here, not by the peer).
    pub fn build(&self) -> Result<Request, ParseError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match Message::parse_stream_frame(self.to_bytes(), &Limits::unbounded())? {
            Message::Request(r) => Ok(r),
            Message::Response(_) => Err(ParseError::BadStartLine),
        }
    }
}

fn put_header(out: &mut BytesMut, name: &HeaderName, value: &[u8]) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn finish(out: &mut BytesMut, body: Option<&(String, Bytes)>) {
    match body {
        Some((ct, b)) => {
            put_header(out, &HeaderName::ContentType, ct.as_bytes());
            put_header(
                out,
                &HeaderName::ContentLength,
                b.len().to_string().as_bytes(),
            );
            out.put_slice(b"\r\n");
            out.put_slice(b);
        }
        None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
    }
}
