//! The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 `rport`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::ParseError;
use crate::scan::{self, Cursor, HOST, ParamIter, Span};
use crate::uri::{Host, HostRepr, parse_port};

/// One Via value: the hop a request passed through and where its responses go back to.
///
/// Decoded for every message by [`crate::Message::parse`], so a malformed Via always gives a
/// deterministic 400. The value is kept byte-exact; [`Via::set_received`] and [`Via::set_rport`]
/// rewrite only the parameter they touch.
#[derive(Clone)]
pub struct Via {
    raw: Bytes,
    protocol: Span,
    version: Span,
    transport: ViaTransport,
    host: HostRepr,
    host_span: Span,
    port: Option<u16>,
    params: Span,
    branch: Option<Span>,
    received: Option<IpAddr>,
    rport: Option<Option<u16>>,
    maddr: Option<Span>,
    ttl: Option<u8>,
}

/// The transport named in a Via (`SIP/2.0/TCP`); matched case-insensitively because clients
/// such as SIPE send `tcp`/`tls` in lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViaTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// SCTP.
    Sctp,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket (RFC 7118).
    Wss,
    /// Any other transport token (RFC 4475 §3.1.1.10), as received.
    Other(String),
}

impl ViaTransport {
    fn from_token(t: &[u8]) -> Self {
        let eq = |s: &[u8]| t.eq_ignore_ascii_case(s);
        if eq(b"UDP") {
            Self::Udp
        } else if eq(b"TCP") {
            Self::Tcp
        } else if eq(b"TLS") {
            Self::Tls
        } else if eq(b"SCTP") {
            Self::Sctp
        } else if eq(b"WS") {
            Self::Ws
        } else if eq(b"WSS") {
            Self::Wss
        } else {
            Self::Other(scan::ascii_str(t).to_owned())
        }
    }

    /// The canonical upper-case token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Sctp => "SCTP",
            Self::Ws => "WS",
            Self::Wss => "WSS",
            Self::Other(s) => s,
        }
    }

    /// Whether the transport is reliable (no retransmission timers, RFC 3261 §17).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Self::Udp | Self::Other(_))
    }
}

impl fmt::Display for ViaTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Via {
    /// Parses a single Via value from text (e.g. one the server builds for itself).
    pub fn parse_str(s: &str) -> Result<Self, ParseError> {
        let b = Bytes::copy_from_slice(s.as_bytes());
        let mut cur = Cursor::new(&b);
        let via = Self::parse_one(&b, &mut cur).map_err(scan::invalid("Via"))?;
        cur.skip_lws();
        if !cur.at_end() {
            return Err(ParseError::InvalidHeader { header: "Via" });
        }
        Ok(via)
    }

    /// Parses every comma-separated value of one Via header field value `v` (a slice of `src`),
    /// appending to `out` and enforcing `max` values in total.
    pub(crate) fn parse_list(
        src: &Bytes,
        v: &[u8],
        out: &mut Vec<Via>,
        max: usize,
    ) -> Result<(), ParseError> {
        let mut cur = Cursor::new(v);
        loop {
            let via = Self::parse_one(src, &mut cur).map_err(scan::invalid("Via"))?;
            if out.len() >= max {
                return Err(ParseError::TooManyVias { limit: max });
            }
            out.push(via);
            if !cur.eat_sep(b',') {
                break;
            }
        }
        cur.skip_lws();
        if cur.at_end() {
            Ok(())
        } else {
            Err(ParseError::InvalidHeader { header: "Via" })
        }
    }

    /// Parses one via-parm at the cursor; `cur.b` must be a slice of `src`.
    fn parse_one(src: &Bytes, cur: &mut Cursor<'_>) -> Result<Self, ()> {
        cur.skip_lws();
        let start = cur.pos;
        let protocol = cur.token().ok_or(())?;
        if !cur.eat_sep(b'/') {
            return Err(());
        }
        let version = cur.token().ok_or(())?;
        if !cur.eat_sep(b'/') {
            return Err(());
        }
        let transport_span = cur.token().ok_or(())?;
        if !cur.skip_lws() {
            return Err(());
        }
        let host_start = cur.pos;
        if cur.peek() == Some(b'[') {
            let close = memchr::memchr(b']', &cur.b[cur.pos..]).ok_or(())?;
            cur.pos += close + 1;
        } else {
            cur.take_class(HOST);
        }
        let host_span = Span::new(host_start, cur.pos);
        let host = HostRepr::parse(host_span.get(cur.b))?;
        let mut end = cur.pos;
        let mut port = None;
        if cur.eat_sep(b':') {
            let p = cur.take_class(scan::TOKEN);
            port = Some(parse_port(p.get(cur.b)).ok_or(())?);
            end = cur.pos;
        }
        let b = cur.b;
        let (mut branch, mut received, mut rport, mut maddr, mut ttl) =
            (None, None, None, None, None);
        let params = cur.params(|name, value| {
            let n = name.get(b);
            let quoted = value.is_some_and(|v| v.get(b).first() == Some(&b'"'));
            if n.eq_ignore_ascii_case(b"branch") {
                if quoted {
                    return Err(());
                }
                branch = Some(value.ok_or(())?);
            } else if n.eq_ignore_ascii_case(b"received") {
                let v = value.ok_or(())?.get(b);
                let v = match v {
                    [b'[', inner @ .., b']'] => inner,
                    v => v,
                };
                received = Some(scan::ascii_str(v).parse::<IpAddr>().map_err(|_| ())?);
            } else if n.eq_ignore_ascii_case(b"rport") {
                rport = Some(match value {
                    Some(v) => Some(parse_port(v.get(b)).ok_or(())?),
                    None => None,
                });
            } else if n.eq_ignore_ascii_case(b"maddr") {
                let v = value.ok_or(())?;
                HostRepr::parse(v.get(b))?;
                maddr = Some(v);
            } else if n.eq_ignore_ascii_case(b"ttl") {
                let v = scan::parse_u32(value.ok_or(())?.get(b)).ok_or(())?;
                ttl = Some(u8::try_from(v).map_err(|_| ())?);
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
            protocol: rb(protocol),
            version: rb(version),
            transport: ViaTransport::from_token(transport_span.get(b)),
            host,
            host_span: rb(host_span),
            port,
            params: if params.is_empty() {
                Span::new(end - start, end - start)
            } else {
                rb(params)
            },
            branch: branch.map(rb),
            received,
            rport,
            maddr: maddr.map(rb),
            ttl,
        })
    }

    /// The protocol name (`SIP`).
    pub fn protocol(&self) -> &str {
        scan::ascii_str(self.protocol.get(&self.raw))
    }

    /// The protocol version (`2.0`).
    pub fn version(&self) -> &str {
        scan::ascii_str(self.version.get(&self.raw))
    }

    /// The transport the previous hop sent on.
    pub fn transport(&self) -> &ViaTransport {
        &self.transport
    }

    /// The sent-by host and optional port: where the previous hop says responses go.
    pub fn sent_by(&self) -> (Host, Option<u16>) {
        (
            self.host.to_host(&self.raw, self.host_span.get(&self.raw)),
            self.port,
        )
    }

    /// The sent-by host exactly as written.
    pub fn host_str(&self) -> &str {
        scan::ascii_str(self.host_span.get(&self.raw))
    }

    /// The `branch` parameter: the transaction id when it starts with `z9hG4bK` (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.branch.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<IpAddr> {
        self.received
    }

    /// The `rport` parameter: `Some(None)` when the client asks for it (RFC 3581 §3),
    /// `Some(Some(port))` once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.rport
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        self.maddr.map(|s| scan::ascii_str(s.get(&self.raw)))
    }

    /// The `ttl` parameter.
    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }

    /// All parameters in order, as written (values may be quoted strings).
    pub fn params(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        ParamIter::header(self.params.get(&self.raw))
            .map(|(n, v)| (scan::ascii_str(n), v.map(scan::ascii_str)))
    }

    /// A parameter by name (case-insensitive): `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value exactly as received (or as rewritten by a setter).
    pub fn as_str(&self) -> &str {
        scan::ascii_str(&self.raw)
    }

    /// Records where the message really came from: `received` when the sent-by host is not that
    /// IP (RFC 3261 §18.2.1) or when a `received` the sender wrote itself names another address,
    /// and `rport` plus `received` when the sender asked for rport (RFC 3581 §4). Returns
    /// whether anything changed.
    pub fn stamp_source(&mut self, source: SocketAddr) -> bool {
        if self.rport() == Some(None) {
            self.set_rport(source.port());
            self.set_received(source.ip());
            true
        } else if self.sent_by().0.ip() != Some(source.ip())
            || self.received().is_some_and(|r| r != source.ip())
        {
            self.set_received(source.ip());
            true
        } else {
            false
        }
    }

    /// Sets `received` (RFC 3261 §18.2.1), replacing an existing value in place or appending it.
    pub fn set_received(&mut self, ip: IpAddr) {
        self.set_param("received", Some(&ip.to_string()));
    }

    /// Sets `rport=port` (RFC 3581 §4), filling in a valueless `rport` in place or appending it.
    pub fn set_rport(&mut self, port: u16) {
        self.set_param("rport", Some(&port.to_string()));
    }

    /// Replaces or appends one parameter, keeping every other byte of the value.
    fn set_param(&mut self, name: &str, value: Option<&str>) {
        let raw = &self.raw[..];
        let mut text = String::with_capacity(name.len() + 2 + value.map_or(0, str::len));
        text.push(';');
        text.push_str(name);
        if let Some(v) = value {
            text.push('=');
            text.push_str(v);
        }
        let (cut_start, cut_end) = match find_param(raw, self.params, name) {
            Some(s) => (s.start as usize, s.end as usize),
            None => (self.params.end as usize, self.params.end as usize),
        };
        let mut out = BytesMut::with_capacity(raw.len() + text.len());
        out.put_slice(&raw[..cut_start]);
        out.put_slice(text.as_bytes());
        out.put_slice(&raw[cut_end..]);
        let new = out.freeze();
        let mut cur = Cursor::new(&new);
        // Re-parse so every span stays consistent; the edit only touched a well-formed param, so
        // failure is impossible in practice, and the old value is kept if it ever happened.
        if let Ok(v) = Self::parse_one(&new, &mut cur) {
            *self = v;
        }
    }
}

impl PartialEq for Via {
    /// Two Via values are equal when their text is byte-identical.
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl fmt::Debug for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Finds `;name[=value]` (name case-insensitive) in a validated header-param section; the span
/// starts at the `;` (or the LWS before it) and ends after the value.
pub(crate) fn find_param(raw: &[u8], params: Span, name: &str) -> Option<Span> {
    let mut cur = Cursor::new(&raw[..params.end as usize]);
    cur.pos = params.start as usize;
    loop {
        let start = cur.pos;
        if !cur.eat_sep(b';') {
            return None;
        }
        let n = cur.token()?;
        let mut end = cur.pos;
        if cur.eat_sep(b'=') {
            cur.gen_value().ok()?;
            end = cur.pos;
        }
        if n.get(raw).eq_ignore_ascii_case(name.as_bytes()) {
            return Some(Span::new(start, end));
        }
        cur.pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_lws_everywhere() {
        let v = Via::parse_str("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.protocol(), "SIP");
        assert_eq!(v.version(), "2.0");
        assert_eq!(v.transport(), &ViaTransport::Udp);
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert_eq!(v.host_str(), "192.0.2.2");
    }

    #[test]
    fn parses_list_and_params() {
        let src = Bytes::from_static(
            b"SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239",
        );
        let mut out = Vec::new();
        Via::parse_list(&src, &src, &mut out, 32).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(out[1].branch(), Some("z9hG4bK30239"));
        assert_eq!(out[1].transport(), &ViaTransport::Udp);
    }

    #[test]
    fn rejects_extraneous_separators() {
        assert!(Via::parse_str("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        let src = Bytes::from_static(b"SIP/2.0/UDP 192.0.2.15;;,;,,");
        assert!(Via::parse_list(&src, &src, &mut Vec::new(), 32).is_err());
        assert!(Via::parse_str("SIP/2.0/UDP").is_err());
        assert!(Via::parse_str("SIP/2.0/UDP host:99999").is_err());
    }

    #[test]
    fn too_many_vias() {
        let src = Bytes::from_static(b"SIP/2.0/UDP a, SIP/2.0/UDP b, SIP/2.0/UDP c");
        let err = Via::parse_list(&src, &src, &mut Vec::new(), 2).unwrap_err();
        assert_eq!(err, ParseError::TooManyVias { limit: 2 });
    }

    #[test]
    fn rfc3261_25_1_received_holds_a_bare_ipv6_address() {
        let mut v = Via::parse_str("SIP/2.0/UDP [::1]:40162;rport;branch=z9hG4bKx").unwrap();
        v.set_rport(40162);
        v.set_received("::1".parse().unwrap());
        assert_eq!(v.received(), Some("::1".parse().unwrap()));
        assert_eq!(
            v.as_str(),
            "SIP/2.0/UDP [::1]:40162;rport=40162;branch=z9hG4bKx;received=::1"
        );
        let parsed = Via::parse_str("SIP/2.0/UDP h;received=2001:db8::9;branch=z9hG4bKy").unwrap();
        assert_eq!(parsed.received(), Some("2001:db8::9".parse().unwrap()));
        assert_eq!(parsed.branch(), Some("z9hG4bKy"));
        assert!(Via::parse_str("SIP/2.0/UDP h;received=2001:db8::9x;branch=z9hG4bKy").is_err());
    }

    #[test]
    fn rfc3581_rport_and_received() {
        let mut v = Via::parse_str("SIP/2.0/UDP [2001:db8::9]:5060;rport;branch=z9hG4bKx").unwrap();
        assert!(matches!(v.sent_by().0, Host::Ipv6(_)));
        assert_eq!(v.rport(), Some(None));
        v.set_rport(1234);
        v.set_received("192.0.2.4".parse().unwrap());
        assert_eq!(
            v.as_str(),
            "SIP/2.0/UDP [2001:db8::9]:5060;rport=1234;branch=z9hG4bKx;received=192.0.2.4"
        );
        v.set_received("192.0.2.5".parse().unwrap());
        assert_eq!(v.received(), Some("192.0.2.5".parse().unwrap()));
        assert_eq!(v.rport(), Some(Some(1234)));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        let mut v = Via::parse_str("SIP/2.0/tcp 127.0.0.1:34404").unwrap();
        v.set_rport(34404);
        assert_eq!(v.as_str(), "SIP/2.0/tcp 127.0.0.1:34404;rport=34404");
        assert_eq!(v.transport(), &ViaTransport::Tcp);
    }
}
