//! The SIP of the presence scenario: the requests a watcher, a presentity's publisher and a
//! registering client send (SUBSCRIBE, PUBLISH, REGISTER), the 200 OK that answers a NOTIFY, the
//! PIDF body a PUBLISH carries, and a one-pass, in-place parse of whatever the server sends
//! (responses, and NOTIFY / BENOTIFY requests).
//!
//! Every identifier names its simulated entity, so nothing is looked up in a map: the Call-ID is
//! `<run hex>-<role><index>[.<generation>]@<ip>`, where the role letter says which table the
//! index is in (`s` subscription, `p` publisher, `f` one-time query, `r` registration), and the
//! generation tells one-time queries of the same client apart. A NOTIFY carries the Call-ID of
//! its subscription, so it finds its subscription the same way a response does.

use std::fmt::{self, Display};
use std::io::Write;
use std::net::SocketAddr;

use memchr::memmem;

use super::headers;
use super::response::{self, Challenge};

/// Which table of simulated entities an identifier points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A persistent subscription (one watcher × one presentity).
    Subscription,
    /// A presentity's publisher (one ETag chain).
    Publisher,
    /// A client making one-time queries (SUBSCRIBE Expires: 0).
    Fetcher,
    /// A user registering.
    Registration,
}

impl Role {
    fn letter(self) -> u8 {
        match self {
            Role::Subscription => b's',
            Role::Publisher => b'p',
            Role::Fetcher => b'f',
            Role::Registration => b'r',
        }
    }

    fn from_letter(letter: u8) -> Option<Role> {
        Some(match letter {
            b's' => Role::Subscription,
            b'p' => Role::Publisher,
            b'f' => Role::Fetcher,
            b'r' => Role::Registration,
            _ => return None,
        })
    }
}

/// What an identifier names: an entity and, for one-time queries, which of its queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The entity's table.
    pub role: Role,
    /// Its global index in that table.
    pub index: u32,
    /// The query number (one-time queries only; 0 otherwise).
    pub generation: u32,
}

/// The Call-ID text of `ident` in run `run`, with `ip` as host.
#[derive(Clone, Copy, Debug)]
pub struct CallId {
    /// The run number (random per process).
    pub run: u64,
    /// The entity.
    pub ident: Ident,
    /// The socket address whose IP names the host part.
    pub local: SocketAddr,
}

impl Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ident {
            role,
            index,
            generation,
        } = self.ident;
        write!(f, "{:x}-{}{index}", self.run, char::from(role.letter()))?;
        if role == Role::Fetcher {
            write!(f, ".{generation}")?;
        }
        write!(f, "@{}", self.local.ip())
    }
}

/// The entity a Call-ID written by [`CallId`] in run `run` names; `None` for another run's or
/// anything else.
pub fn parse_call_id(call_id: &[u8], run: u64) -> Option<Ident> {
    let dash = memchr::memchr(b'-', call_id)?;
    let run_hex = call_id.get(..dash)?;
    if run_hex.is_empty() || run_hex.len() > 16 || parse_hex(run_hex)? != run {
        return None;
    }
    let rest = call_id.get(dash + 1..)?;
    let role = Role::from_letter(*rest.first()?)?;
    let at = memchr::memchr(b'@', rest)?;
    let numbers = &rest[1..at];
    let (index, generation) = match memchr::memchr(b'.', numbers) {
        Some(dot) => (&numbers[..dot], Some(&numbers[dot + 1..])),
        None => (numbers, None),
    };
    let generation = match (role, generation) {
        (Role::Fetcher, Some(g)) => parse_u32(g)?,
        (Role::Fetcher, None) | (_, Some(_)) => return None,
        (_, None) => 0,
    };
    Some(Ident {
        role,
        index: parse_u32(index)?,
        generation,
    })
}

fn parse_hex(text: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

/// Decimal digits only, at most `u32::MAX`.
pub fn parse_u32(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok()
}

fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Credentials to put on a request, and in which header.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The Digest response (`Digest username=...`).
    pub value: &'a dyn Display,
    /// `Proxy-Authorization` (answering a 407) rather than `Authorization` (a 401).
    pub proxy: bool,
}

/// What kind of out-of-dialog request to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// REGISTER the From user's Contact.
    Register,
    /// SUBSCRIBE to the To user's presence (Expires 0: a one-time query).
    Subscribe,
    /// PUBLISH the From user's presence, PIDF body.
    Publish,
}

impl Method {
    /// The method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Publish => "PUBLISH",
        }
    }
}

/// One request, written straight into a reusable buffer.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// What it is.
    pub method: Method,
    /// The domain of every URI.
    pub domain: &'a str,
    /// The sender (From user; the Contact user).
    pub from: &'a str,
    /// The target (Request-URI and To user); the sender's own for PUBLISH and REGISTER.
    pub to: &'a str,
    /// The socket's own address: Via sent-by and Contact.
    pub local: SocketAddr,
    /// The run number.
    pub run: u64,
    /// The entity sending.
    pub ident: Ident,
    /// The CSeq number.
    pub cseq: u32,
    /// Expires (and Contact expires for REGISTER).
    pub expires: u32,
    /// `SIP-If-Match` (PUBLISH refreshing or modifying a publication).
    pub if_match: Option<&'a str>,
    /// Digest credentials answering a challenge.
    pub credentials: Option<Credentials<'a>>,
    /// The body: PIDF for PUBLISH, empty otherwise.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The Request-URI, `sip:<to>@<domain>` (`sip:<domain>` for REGISTER): also the Digest uri.
    pub fn write_uri(&self, out: &mut String) {
        use fmt::Write as _;
        out.clear();
        let _ = match self.method {
            Method::Register => write!(out, "sip:{}", self.domain),
            _ => write!(out, "sip:{}@{}", self.to, self.domain),
        };
    }

    /// Replaces `out`'s contents with the request; `out` keeps its capacity.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.clear();
        // Writing into a Vec only fails when allocation does, which aborts anyway.
        let _ = self.write_inner(out);
    }

    fn write_inner(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let Request {
            method,
            domain,
            from,
            to,
            local,
            run,
            ident,
            cseq,
            expires,
            if_match,
            credentials,
            body,
        } = *self;
        let name = method.name();
        let role = char::from(ident.role.letter());
        let index = ident.index;
        match method {
            Method::Register => write!(out, "REGISTER sip:{domain} SIP/2.0\r\n")?,
            _ => write!(out, "{name} sip:{to}@{domain} SIP/2.0\r\n")?,
        }
        write!(
            out,
            "Via: SIP/2.0/UDP {local};branch={BRANCH_COOKIE}{run:x}.{role}{index}.{}.{cseq};rport\r\n",
            ident.generation
        )?;
        out.extend_from_slice(b"Max-Forwards: 70\r\n");
        write!(
            out,
            "From: <sip:{from}@{domain}>;tag={run:x}.{role}{index}\r\n"
        )?;
        write!(out, "To: <sip:{to}@{domain}>\r\n")?;
        write!(out, "Call-ID: {}\r\n", CallId { run, ident, local })?;
        write!(out, "CSeq: {cseq} {name}\r\n")?;
        match method {
            Method::Register => write!(
                out,
                "Contact: <sip:{from}@{local};transport=udp>;expires={expires}\r\n"
            )?,
            Method::Subscribe => {
                write!(out, "Contact: <sip:{from}@{local};transport=udp>\r\n")?;
                out.extend_from_slice(b"Event: presence\r\nAccept: application/pidf+xml\r\n");
            }
            Method::Publish => out.extend_from_slice(b"Event: presence\r\n"),
        }
        write!(out, "Expires: {expires}\r\n")?;
        if let Some(etag) = if_match {
            write!(out, "SIP-If-Match: {etag}\r\n")?;
        }
        if let Some(c) = credentials {
            let header = if c.proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            write!(out, "{header}: {}\r\n", c.value)?;
        }
        out.extend_from_slice(b"User-Agent: sipload\r\n");
        if !body.is_empty() {
            out.extend_from_slice(b"Content-Type: application/pidf+xml\r\n");
        }
        write!(out, "Content-Length: {}\r\n\r\n", body.len())?;
        out.extend_from_slice(body);
        Ok(())
    }
}

/// A PIDF (RFC 3863) document with RPID (RFC 4480) activities, about 550 bytes like the
/// Kamailio baseline's. `busy` alternates between publications, so every PUBLISH is a real change
/// of state for any server (one that renders an aggregate would otherwise have nothing new to
/// notify); the presence-level `<note>` (which a server that keeps one note keeps first) carries
/// the [`Marker`] that lets a watcher tell which publication a NOTIFY reflects.
pub fn write_pidf(
    out: &mut Vec<u8>,
    user: &str,
    domain: &str,
    local: SocketAddr,
    busy: bool,
    marker: Marker,
) {
    out.clear();
    let activity = if busy {
        "<rpid:busy/><rpid:on-the-phone/>"
    } else {
        "<rpid:unknown/>"
    };
    let person_note = if busy {
        "Busy with benchmark traffic"
    } else {
        "Available for benchmark traffic"
    };
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:{user}@{domain}\">\r\n\
         <tuple id=\"t1\"><status><basic>open</basic></status>\
         <contact priority=\"0.8\">sip:{user}@{local}</contact></tuple>\r\n\
         <note>{marker}</note>\r\n\
         <dm:person id=\"p1\"><rpid:activities>{activity}</rpid:activities>\
         <dm:note>{person_note}</dm:note></dm:person>\r\n\
         </presence>\r\n"
    );
}

/// What a published document says about itself: the run, the presentity's publication number
/// and when it was sent (µs since the generator's epoch), as `sl-<run hex>-<seq>-<µs>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The run number.
    pub run: u64,
    /// The publication number of its presentity (1, 2, ...).
    pub seq: u32,
    /// When the PUBLISH was first sent, µs since the run's epoch.
    pub sent_us: u64,
}

impl Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sl-{:x}-{}-{}", self.run, self.seq, self.sent_us)
    }
}

/// Finds the marker of run `prefix` (`sl-<run hex>-`, from [`marker_prefix`]) in a body.
pub fn find_marker(body: &[u8], finder: &memmem::Finder<'_>, run: u64) -> Option<Marker> {
    let at = finder.find(body)?;
    let rest = &body[at + finder.needle().len()..];
    let dash = memchr::memchr(b'-', rest)?;
    let seq = parse_u32(&rest[..dash])?;
    let rest = &rest[dash + 1..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let sent_us = parse_u64(&rest[..digits])?;
    Some(Marker { run, seq, sent_us })
}

/// `sl-<run hex>-`: what [`find_marker`] searches for.
pub fn marker_prefix(run: u64) -> Vec<u8> {
    format!("sl-{run:x}-").into_bytes()
}

/// What the server sent, as far as the scenario acts on it, borrowing from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming<'a> {
    /// A response's status, or `None` for a request.
    pub status: Option<u16>,
    /// A request's method (`NOTIFY`, `BENOTIFY`, ...); empty for a response.
    pub method: &'a [u8],
    /// Call-ID.
    pub call_id: &'a [u8],
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub cseq_method: &'a [u8],
    /// The To tag (a response's: the dialog's remote tag).
    pub to_tag: Option<&'a [u8]>,
    /// SIP-ETag of a PUBLISH response.
    pub etag: Option<&'a [u8]>,
    /// The challenge of a 401/407 (SHA-256 preferred).
    pub challenge: Option<Challenge<'a>>,
    /// `Subscription-State: terminated` (any reason).
    pub terminated: bool,
    /// The body (up to Content-Length when it is given and fits).
    pub body: &'a [u8],
}

/// Why a datagram cannot be acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IncomingError {
    /// Neither a status line nor a request line.
    #[error("not a SIP message")]
    NotSip,
    /// No usable Call-ID or CSeq.
    #[error("no usable Call-ID or CSeq")]
    Incomplete,
}

/// Parses a response or request in one pass over its head.
pub fn parse_incoming(datagram: &[u8]) -> Result<Incoming<'_>, IncomingError> {
    let (start, fields) = headers::split(datagram);
    let (status, method) = if start.starts_with(b"SIP/2.0 ") || start.starts_with(b"sip/2.0 ") {
        let status = response::status_code(start).map_err(|_| IncomingError::NotSip)?;
        (Some(status), &b""[..])
    } else {
        let sp = memchr::memchr(b' ', start).ok_or(IncomingError::NotSip)?;
        if !start.ends_with(b"SIP/2.0") || sp == 0 {
            return Err(IncomingError::NotSip);
        }
        (None, &start[..sp])
    };
    let mut call_id: &[u8] = b"";
    let mut cseq = None;
    let mut to_tag = None;
    let mut etag = None;
    let mut preferred = None;
    let mut first = None;
    let mut terminated = false;
    let mut content_length = None;
    for field in fields {
        if field.is("Call-ID", Some(b'i')) {
            call_id = field.value;
        } else if field.is("CSeq", None) {
            cseq = response::parse_cseq(field.value).ok();
        } else if field.is("To", Some(b't')) {
            to_tag = tag_param(field.value);
        } else if field.is("SIP-ETag", None) {
            etag = Some(field.value);
        } else if field.is("Subscription-State", None) {
            terminated = field
                .value
                .get(..10)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"terminated"));
        } else if field.is("Content-Length", Some(b'l')) {
            content_length = std::str::from_utf8(field.value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok());
        } else if status.is_some() && preferred.is_none() && response::is_challenge_header(&field) {
            let Some(challenge) = response::digest_challenge(field.value) else {
                continue;
            };
            if response::algorithm_is(field.value, b"SHA-256") {
                preferred = Some(challenge);
            } else if first.is_none() {
                first = Some(challenge);
            }
        }
    }
    let (cseq, cseq_method) = cseq.ok_or(IncomingError::Incomplete)?;
    if call_id.is_empty() {
        return Err(IncomingError::Incomplete);
    }
    let body = match memmem::find(datagram, b"\r\n\r\n") {
        Some(end) => {
            let body = &datagram[end + 4..];
            match content_length {
                Some(n) if n <= body.len() => &body[..n],
                _ => body,
            }
        }
        None => &[],
    };
    Ok(Incoming {
        status,
        method,
        call_id,
        cseq,
        cseq_method,
        to_tag,
        etag,
        challenge: preferred.or(first),
        terminated,
        body,
    })
}

/// The `tag` parameter of a From / To value, outside the URI's angle brackets.
fn tag_param(value: &[u8]) -> Option<&[u8]> {
    let params = match memchr::memrchr(b'>', value) {
        Some(gt) => &value[gt + 1..],
        None => value,
    };
    let mut rest = params;
    while let Some(semi) = memchr::memchr(b';', rest) {
        rest = &rest[semi + 1..];
        let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
        let param = headers::trim(&rest[..end]);
        if param.len() > 4 && param[..4].eq_ignore_ascii_case(b"tag=") {
            return Some(&param[4..]);
        }
    }
    None
}

/// Writes the response `status reason` to `request` into `out`: its Via fields in order, From,
/// To (with `to_tag` added when it has none), Call-ID and CSeq, no body (RFC 3261 §8.2.6.2).
pub fn write_answer(request: &[u8], status: u16, reason: &str, to_tag: &str, out: &mut Vec<u8>) {
    out.clear();
    let _ = write!(out, "SIP/2.0 {status} {reason}\r\n");
    let (_, fields) = headers::split(request);
    for f in fields {
        let name: &[u8] = if f.is("Via", Some(b'v')) {
            b"Via"
        } else if f.is("From", Some(b'f')) {
            b"From"
        } else if f.is("To", Some(b't')) {
            out.extend_from_slice(b"To: ");
            out.extend_from_slice(f.value);
            if tag_param(f.value).is_none() {
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(to_tag.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            continue;
        } else if f.is("Call-ID", Some(b'i')) {
            b"Call-ID"
        } else if f.is("CSeq", None) {
            b"CSeq"
        } else {
            continue;
        };
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// RFC 3261 §8.1.1.7: every branch starts with this.
const BRANCH_COOKIE: &str = "z9hG4bK";

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use herald_sip::{Limits, Message};
    use proptest::prelude::*;

    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:16001".parse().unwrap()
    }

    fn ident(role: Role, index: u32, generation: u32) -> Ident {
        Ident {
            role,
            index,
            generation,
        }
    }

    #[test]
    fn call_ids_name_their_entity_in_their_own_run_only() {
        for id in [
            ident(Role::Subscription, 7, 0),
            ident(Role::Publisher, u32::MAX, 0),
            ident(Role::Fetcher, 3, 12),
            ident(Role::Registration, 0, 0),
        ] {
            let text = CallId {
                run: 0xabc,
                ident: id,
                local: local(),
            }
            .to_string();
            assert_eq!(parse_call_id(text.as_bytes(), 0xabc), Some(id), "{text}");
            assert_eq!(parse_call_id(text.as_bytes(), 0xabd), None, "{text}");
        }
        for odd in [
            "",
            "abc-",
            "abc-s@x",
            "abc-x1@x",
            "abc-s1",
            "abc-s1.2@x",
            "abc-f1@x",
            "-s1@x",
        ] {
            assert_eq!(parse_call_id(odd.as_bytes(), 0xabc), None, "{odd}");
        }
    }

    fn publish(credentials: Option<Credentials<'_>>, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Request {
            method: Method::Publish,
            domain: "example.com",
            from: "p1",
            to: "p1",
            local: local(),
            run: 0xabc,
            ident: ident(Role::Publisher, 1, 0),
            cseq: 4,
            expires: 3600,
            if_match: Some("a.1"),
            credentials,
            body,
        }
        .write_to(&mut out);
        out
    }

    /// herald's own parser accepts the PUBLISH, and its presence crate the PIDF body.
    #[test]
    fn rfc3903_publish_with_pidf_parses_with_herald() {
        let mut body = Vec::new();
        let marker = Marker {
            run: 0xabc,
            seq: 5,
            sent_us: 123_456,
        };
        write_pidf(&mut body, "p1", "example.com", local(), true, marker);
        let text = publish(None, &body);
        let Message::Request(req) = Message::parse(Bytes::from(text), &Limits::default()).unwrap()
        else {
            panic!("a request");
        };
        assert_eq!(req.header_str("SIP-If-Match"), Some("a.1"));
        assert_eq!(req.header_str("Event"), Some("presence"));
        assert_eq!(req.content_length(), u32::try_from(body.len()).ok());
        let doc =
            herald_presence::pidf::Presence::parse(&body, &herald_presence::Limits::default())
                .unwrap();
        let summary = herald_presence::pidf::to_summary(&doc);
        assert_eq!(summary.note.as_deref(), Some("sl-abc-5-123456"));
        assert_eq!(
            summary.availability.band(),
            herald_presence::availability::Availability::BUSY.band()
        );
        let finder = memmem::Finder::new(b"sl-abc-");
        assert_eq!(find_marker(&body, &finder, 0xabc), Some(marker));
        assert_eq!(find_marker(b"sl-abc-x", &finder, 0xabc), None);
    }

    #[test]
    fn rfc6665_subscribe_shape() {
        let mut out = Vec::new();
        let creds = "Digest username=\"w1\"";
        Request {
            method: Method::Subscribe,
            domain: "example.com",
            from: "w1",
            to: "p2",
            local: local(),
            run: 0xabc,
            ident: ident(Role::Fetcher, 9, 3),
            cseq: 3,
            expires: 0,
            if_match: None,
            credentials: Some(Credentials {
                value: &creds,
                proxy: true,
            }),
            body: b"",
        }
        .write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SUBSCRIBE sip:p2@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:16001;branch=z9hG4bKabc.f9.3.3;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:w1@example.com>;tag=abc.f9\r\n\
             To: <sip:p2@example.com>\r\n\
             Call-ID: abc-f9.3@127.0.0.1\r\n\
             CSeq: 3 SUBSCRIBE\r\n\
             Contact: <sip:w1@127.0.0.1:16001;transport=udp>\r\n\
             Event: presence\r\n\
             Accept: application/pidf+xml\r\n\
             Expires: 0\r\n\
             Proxy-Authorization: Digest username=\"w1\"\r\n\
             User-Agent: sipload\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    const NOTIFY: &[u8] = b"NOTIFY sip:w1@127.0.0.1:16001;transport=udp SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
        To: <sip:w1@example.com>;tag=abc.s1\r\n\
        From: <sip:p2@example.com>;tag=srv-7\r\n\
        Call-ID: abc-s1@127.0.0.1\r\n\
        CSeq: 4 NOTIFY\r\n\
        Subscription-State: terminated;reason=timeout\r\n\
        Event: presence\r\n\
        Content-Type: application/pidf+xml\r\n\
        Content-Length: 21\r\n\r\n\
        <note>sl-abc-2-9</note>";

    #[test]
    fn rfc6665_notify_is_parsed_and_answered() {
        let n = parse_incoming(NOTIFY).unwrap();
        assert_eq!((n.status, n.method, n.cseq), (None, &b"NOTIFY"[..], 4));
        assert_eq!(n.call_id, b"abc-s1@127.0.0.1");
        assert!(n.terminated);
        assert_eq!(n.body, b"<note>sl-abc-2-9</not");
        let mut out = Vec::new();
        write_answer(NOTIFY, 200, "OK", "x", &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
             To: <sip:w1@example.com>;tag=abc.s1\r\n\
             From: <sip:p2@example.com>;tag=srv-7\r\n\
             Call-ID: abc-s1@127.0.0.1\r\n\
             CSeq: 4 NOTIFY\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert!(matches!(
            Message::parse(Bytes::from(out), &Limits::default()),
            Ok(Message::Response(_))
        ));
    }

    #[test]
    fn rfc3903_publish_response_gives_etag_and_to_tag() {
        let r = parse_incoming(
            b"SIP/2.0 200 OK\r\nCall-ID: abc-p1@h\r\nCSeq: 4 PUBLISH\r\n\
              To: <sip:p1@example.com;x=y>;foo;tag=T1;bar\r\nSIP-ETag: e.5\r\n\
              Expires: 3600\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.cseq, r.cseq_method),
            (Some(200), 4, &b"PUBLISH"[..])
        );
        assert_eq!((r.etag, r.to_tag), (Some(&b"e.5"[..]), Some(&b"T1"[..])));
        assert!(!r.terminated && r.body.is_empty());
        let c = parse_incoming(
            b"SIP/2.0 407 Proxy Authentication Required\r\ni: x\r\nCSeq: 1 SUBSCRIBE\r\n\
              Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256\r\n\r\n",
        )
        .unwrap();
        assert!(c.challenge.is_some());
        assert_eq!(parse_incoming(b"hello"), Err(IncomingError::NotSip));
        assert_eq!(
            parse_incoming(b"SIP/2.0 200 OK\r\nCSeq: 1 X\r\n\r\n"),
            Err(IncomingError::Incomplete)
        );
    }

    proptest! {
        #[test]
        fn never_panics(cut in 0..NOTIFY.len(), flips in proptest::collection::vec((0..NOTIFY.len(), any::<u8>()), 0..8)) {
            let mut bytes = NOTIFY[..cut].to_vec();
            for (at, byte) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            let _ = parse_incoming(&bytes);
            let mut out = Vec::new();
            write_answer(&bytes, 200, "OK", "t", &mut out);
            let _ = parse_call_id(&bytes, 0xabc);
            let finder = memmem::Finder::new(b"sl-abc-");
            let _ = find_marker(&bytes, &finder, 0xabc);
        }
    }
}
