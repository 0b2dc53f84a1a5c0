//! What the runtime does with bytes that failed to parse (RFC 3261 §8.2, §18.3; RFC 4475 §3).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ParseError;
use crate::header_name::HeaderName;
use crate::name_addr::NameAddr;
use crate::scan;

/// The kind of transport the bytes came from: it decides whether a framing error can be
/// answered (datagram) or must close the connection (stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: every datagram is framed on its own.
    Datagram,
    /// TCP, TLS, WebSocket: messages are framed by Content-Length.
    Stream,
}

/// What to do with input that failed to parse.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Disposition {
    /// Send this error response (statelessly) back to the source.
    Reply(Rejection),
    /// Discard silently: a response, garbage, or a request without a Via to answer to.
    Drop,
    /// The stream can no longer be split into messages: close the connection.
    Close,
}

/// An error response for a request that could not be parsed, with the headers RFC 3261 §8.2.6
/// needs copied leniently from the raw bytes.
#[derive(Clone, Debug)]
pub struct Rejection {
    status: u16,
    reason: &'static str,
    vias: Vec<Bytes>,
    from: Option<Bytes>,
    to: Option<Bytes>,
    call_id: Option<Bytes>,
    cseq: Option<Bytes>,
    extra: Vec<(HeaderName, Bytes)>,
}

impl ParseError {
    /// Decides what to do with `raw`, the input that produced this error. Responses are never
    /// answered (RFC 3261 §18.1.2); requests get 505 for another SIP version, 513 for a size
    /// bound, 400 otherwise — unless no Via can be found to send the answer to, or the error
    /// broke framing on a stream (then the connection is closed, RFC 4475 §3.1.2.3, §3.3.9).
    pub fn disposition(&self, raw: &[u8], transport: Transport) -> Disposition {
        if matches!(self, Self::Empty) {
            return Disposition::Drop;
        }
        if transport == Transport::Stream && self.is_framing() {
            return Disposition::Close;
        }
        let echo = Echo::scan(raw);
        if echo.is_response {
            return Disposition::Drop;
        }
        let (status, reason) = match self {
            Self::UnsupportedVersion => (505, "Version Not Supported"),
            e if e.is_too_large() => (513, "Message Too Large"),
            _ => (400, "Bad Request"),
        };
        if echo.vias.is_empty() {
            return Disposition::Drop;
        }
        Disposition::Reply(Rejection {
            status,
            reason,
            vias: echo.vias,
            from: echo.from,
            to: echo.to,
            call_id: echo.call_id,
            cseq: repaired_cseq(echo.cseq, echo.method.as_deref()),
            extra: Vec::new(),
        })
    }
}

impl Rejection {
    /// The status code to send.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase to send.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The Via values found, in order.
    pub fn vias(&self) -> &[Bytes] {
        &self.vias
    }

    /// The From value, if one was found.
    pub fn from(&self) -> Option<&Bytes> {
        self.from.as_ref()
    }

    /// The To value, if one was found.
    pub fn to(&self) -> Option<&Bytes> {
        self.to.as_ref()
    }

    /// The Call-ID value, if one was found.
    pub fn call_id(&self) -> Option<&Bytes> {
        self.call_id.as_ref()
    }

    /// The CSeq value, if one was found.
    pub fn cseq(&self) -> Option<&Bytes> {
        self.cseq.as_ref()
    }

    /// Records the source address in the top Via (`received`, `rport`: RFC 3261 §18.2.1, RFC
    /// 3581 §4) when that Via parses; an unparseable one is echoed as it came.
    pub fn stamp_source(&mut self, source: std::net::SocketAddr) {
        let Some(top) = self.vias.first_mut() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(top) else {
            return;
        };
        let Ok(mut via) = crate::Via::parse_str(text) else {
            return;
        };
        if via.stamp_source(source) {
            *top = Bytes::copy_from_slice(via.as_str().as_bytes());
        }
    }

    /// Adds a header after the copied ones (a `Server`, say). Values with CR or LF are ignored.
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if !value.bytes().any(|c| matches!(c, b'\r' | b'\n' | 0)) {
            self.extra
                .push((name, Bytes::copy_from_slice(value.as_bytes())));
        }
        self
    }

    /// The complete error response. `to_tag` is added to To when it has none (RFC 3261
    /// §8.2.6.2).
    pub fn to_bytes(&self, to_tag: Option<&str>) -> Bytes {
        let mut out = BytesMut::with_capacity(256);
        out.put_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        let put = |out: &mut BytesMut, name: HeaderName, v: &[u8]| {
            out.put_slice(name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(v);
            out.put_slice(b"\r\n");
        };
        for v in &self.vias {
            put(&mut out, HeaderName::Via, v);
        }
        if let Some(v) = &self.from {
            put(&mut out, HeaderName::From, v);
        }
        if let Some(v) = &self.to {
            let mut to = BytesMut::from(&v[..]);
            if let Some(tag) = to_tag
                && !has_tag(v)
            {
                to.put_slice(b";tag=");
                to.put_slice(tag.as_bytes());
            }
            put(&mut out, HeaderName::To, &to);
        }
        if let Some(v) = &self.call_id {
            put(&mut out, HeaderName::CallId, v);
        }
        if let Some(v) = &self.cseq {
            put(&mut out, HeaderName::CSeq, v);
        }
        for (name, v) in &self.extra {
            put(&mut out, name.clone(), v);
        }
        out.put_slice(b"Content-Length: 0\r\n\r\n");
        out.freeze()
    }
}

/// The CSeq to echo. A CSeq that does not parse (the very thing a 400 may be about) would make
/// the answer unparseable too, so it is rebuilt from its leading number (0 if none fits) and
/// the request's method: the client matches the answer by its Via branch either way.
fn repaired_cseq(cseq: Option<Bytes>, method: Option<&[u8]>) -> Option<Bytes> {
    let value = cseq?;
    if crate::CSeq::parse(&value, &value).is_ok() {
        return Some(value);
    }
    let method = method?;
    let digits: Vec<u8> = value
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    let seq = scan::parse_u32(&digits).unwrap_or(0);
    let mut out = BytesMut::with_capacity(12 + method.len());
    out.put_slice(seq.to_string().as_bytes());
    out.put_u8(b' ');
    out.put_slice(method);
    Some(out.freeze())
}

fn has_tag(to: &Bytes) -> bool {
    match NameAddr::parse_single(to, to, "To") {
        Ok(n) => n.tag().is_some(),
        Err(_) => to.windows(4).any(|w| w.eq_ignore_ascii_case(b"tag=")),
    }
}

/// Headers copied leniently from raw bytes: no grammar beyond line splitting.
struct Echo {
    is_response: bool,
    vias: Vec<Bytes>,
    from: Option<Bytes>,
    to: Option<Bytes>,
    call_id: Option<Bytes>,
    cseq: Option<Bytes>,
    /// The request's method token, for a CSeq that has to be repaired.
    method: Option<Bytes>,
}

impl Echo {
    fn scan(raw: &[u8]) -> Self {
        let mut e = Self {
            is_response: false,
            vias: Vec::new(),
            from: None,
            to: None,
            call_id: None,
            cseq: None,
            method: None,
        };
        let mut b = &raw[..raw.len().min(MAX_SCAN)];
        while let Some(rest) = b.strip_prefix(b"\r\n") {
            b = rest;
        }
        e.is_response = b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/");
        let method = b
            .split(|&c| c == b' ' || c == b'\r' || c == b'\n')
            .next()
            .unwrap_or_default();
        if !e.is_response && !method.is_empty() && method.iter().all(|&c| scan::is(c, scan::TOKEN))
        {
            e.method = Some(Bytes::copy_from_slice(method));
        }
        let mut lines = b.split(|&c| c == b'\n').skip(1).peekable();
        while let Some(line) = lines.next() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            let mut value = Vec::new();
            let Some(colon) = memchr::memchr(b':', line) else {
                continue;
            };
            value.extend_from_slice(&line[colon + 1..]);
            while let Some(next) = lines.peek() {
                if matches!(next.first(), Some(b' ' | b'\t')) {
                    value.push(b' ');
                    let n = next.strip_suffix(b"\r").unwrap_or(next);
                    value.extend_from_slice(n);
                    lines.next();
                } else {
                    break;
                }
            }
            for c in &mut value {
                if matches!(*c, b'\r' | b'\n' | 0) {
                    *c = b' ';
                }
            }
            let value = Bytes::copy_from_slice(scan::trim_lws(&value));
            let name = scan::trim_lws(&line[..colon]);
            let Some(name) = HeaderName::known(name).filter(|n| {
                matches!(
                    n,
                    HeaderName::Via
                        | HeaderName::From
                        | HeaderName::To
                        | HeaderName::CallId
                        | HeaderName::CSeq
                )
            }) else {
                continue;
            };
            match name {
                HeaderName::Via if e.vias.len() < MAX_VIAS => e.vias.push(value),
                HeaderName::From if e.from.is_none() => e.from = Some(value),
                HeaderName::To if e.to.is_none() => e.to = Some(value),
                HeaderName::CallId if e.call_id.is_none() => e.call_id = Some(value),
                HeaderName::CSeq if e.cseq.is_none() => e.cseq = Some(value),
                _ => {}
            }
        }
        e
    }
}

/// How much of a failed message is scanned for headers to copy.
const MAX_SCAN: usize = 64 * 1024;
/// How many Via header fields are copied into an error response.
const MAX_VIAS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_505_and_echo() {
        let raw = b"OPTIONS sip:t.watson@example.org SIP/7.0\r\nVia:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\nMax-Forwards:     70\r\nFrom:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\nTo:      T. Watson <sip:t.watson@example.org>\r\nCall-ID: badvers.31417@c.example.com\r\nCSeq:    1 OPTIONS\r\nl: 0\r\n\r\n";
        let err = ParseError::UnsupportedVersion;
        let Disposition::Reply(r) = err.disposition(raw, Transport::Datagram) else {
            panic!("expected a reply")
        };
        assert_eq!(r.status(), 505);
        let resp = r.to_bytes(Some("abc"));
        let text = String::from_utf8(resp.to_vec()).unwrap();
        assert!(text.starts_with("SIP/2.0 505 Version Not Supported\r\n"));
        assert!(text.contains("To: T. Watson <sip:t.watson@example.org>;tag=abc\r\n"));
        assert!(text.contains("CSeq: 1 OPTIONS\r\n"));
    }

    #[test]
    fn responses_drop_and_stream_framing_closes() {
        let raw = b"SIP/2.0 4294967301 better not break the receiver\r\nVia: SIP/2.0/UDP x\r\n\r\n";
        assert!(matches!(
            ParseError::BadStatusCode.disposition(raw, Transport::Datagram),
            Disposition::Drop
        ));
        assert!(matches!(
            ParseError::MissingContentLength.disposition(b"", Transport::Stream),
            Disposition::Close
        ));
        assert!(matches!(
            ParseError::BadHeaderLine.disposition(b"garbage\r\n\r\n", Transport::Datagram),
            Disposition::Drop
        ));
    }
}
