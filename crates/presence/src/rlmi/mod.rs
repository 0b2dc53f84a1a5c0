//! RFC 4662 resource-list notifications: the RLMI document and the `multipart/related` body
//! that carries it with one part per resource.
//!
//! Lync's batched presence subscription (one dialog for a whole contact list) is notified this
//! way, with `application/msrtc-event-categories+xml` parts; RFC 4662 list subscriptions use
//! PIDF parts. The resource parts are the shared, rendered-once [`Bytes`] of each presentity's
//! view; only the small RLMI document (list URI, per-subscription version, full or partial
//! state) is rendered per watcher.

use bytes::{BufMut, Bytes, BytesMut};

use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits};

/// `urn:ietf:params:xml:ns:rlmi`.
pub const NS_RLMI: &str = "urn:ietf:params:xml:ns:rlmi";
/// The media type of the RLMI document.
pub const CONTENT_TYPE: &str = "application/rlmi+xml";

/// `<list uri version fullState cid>` (RFC 4662 §5.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List {
    /// The list's URI (the SUBSCRIBE's; for Lync batches, the subscriber's own).
    pub uri: String,
    /// 0 in the first notification of a subscription, then +1 per notification (§5.2); the
    /// client orders notifications by it, not by CSeq.
    pub version: u32,
    /// Whether the document lists every resource (first notification, refresh) or only
    /// changed ones.
    pub full_state: bool,
    /// `cid`, when the list is itself a part of an enclosing list.
    pub cid: Option<String>,
    /// `<name>`s.
    pub names: Vec<Name>,
    /// The resources.
    pub resources: Vec<Resource>,
}

/// A per-subscription notification version: 0 for the first notification, then one more per
/// notification (RFC 4662 §5.2, RFC 3858 §4). The engine keeps one per list or winfo
/// subscription; after 2^32 − 1 it wraps, which a subscriber treats as a gap and answers with a
/// refresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VersionCounter(Option<u32>);

impl VersionCounter {
    /// A counter whose first [`VersionCounter::advance`] is 0.
    pub const fn new() -> Self {
        Self(None)
    }

    /// The version for the next notification.
    pub fn advance(&mut self) -> u32 {
        let v = self.0.map_or(0, |v| v.wrapping_add(1));
        self.0 = Some(v);
        v
    }

    /// The version last handed out, if any.
    pub const fn current(self) -> Option<u32> {
        self.0
    }
}

/// `<name xml:lang>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    /// The text.
    pub text: String,
    /// `xml:lang`.
    pub lang: Option<String>,
}

/// `<resource uri>` (§5.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// The presentity.
    pub uri: String,
    /// `<name>`s.
    pub names: Vec<Name>,
    /// Its instances; none while the server has no state for it yet.
    pub instances: Vec<Instance>,
}

/// `<instance id state reason cid>` (§5.4) with Lync's extra attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// `id`.
    pub id: String,
    /// `state`.
    pub state: InstanceState,
    /// `reason` (for terminated: `rejected`, `noresource`, Lync's `quotaExceeded`, ...).
    pub reason: Option<String>,
    /// `cid`: the Content-ID (without angle brackets) of the part with this resource's state.
    pub cid: Option<String>,
    /// Lync `statusCode` (413 when the watcher quota is exceeded).
    pub status_code: Option<u16>,
    /// Lync `msDiagCode` (2012 with quotaExceeded).
    pub ms_diag_code: Option<u32>,
    /// Lync `poolFqdn` (where to re-subscribe a cross-pool contact).
    pub pool_fqdn: Option<String>,
}

impl Instance {
    /// An active instance whose state is in the part `cid`.
    pub fn active(id: &str, cid: &str) -> Self {
        Self {
            id: id.to_owned(),
            state: InstanceState::Active,
            reason: None,
            cid: Some(cid.to_owned()),
            status_code: None,
            ms_diag_code: None,
            pool_fqdn: None,
        }
    }

    /// Lync's answer for a presentity with too many watchers (lync-exchange-facts §1.7):
    /// terminated, `quotaExceeded`, 413, msDiagCode 2012. The client shows "Maximum Followers
    /// Reached" for that contact while the rest of the batch proceeds.
    pub fn quota_exceeded(id: &str, cid: &str) -> Self {
        Self {
            id: id.to_owned(),
            state: InstanceState::Terminated,
            reason: Some("quotaExceeded".to_owned()),
            cid: Some(cid.to_owned()),
            status_code: Some(413),
            ms_diag_code: Some(2012),
            pool_fqdn: None,
        }
    }
}

/// The virtual subscription's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// `active`.
    Active,
    /// `pending` (awaiting authorisation).
    Pending,
    /// `terminated`.
    Terminated,
    /// `resubscribe`: Lync's "this contact lives on another pool, subscribe it there".
    Resubscribe,
}

impl InstanceState {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Terminated => "terminated",
            Self::Resubscribe => "resubscribe",
        }
    }
}

impl List {
    /// Renders the RLMI document.
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(128 + 128 * self.resources.len());
        self.write(&mut w);
        w.into_bytes()
    }

    fn write(&self, w: &mut XmlWriter) {
        w.decl();
        w.open("list")
            .attr("xmlns", NS_RLMI)
            .attr("uri", &self.uri)
            .attr_num("version", self.version)
            .attr("fullState", if self.full_state { "true" } else { "false" })
            .attr_opt("cid", self.cid.as_deref());
        if self.names.is_empty() && self.resources.is_empty() {
            w.slash_gt();
            return;
        }
        w.gt();
        write_names(w, &self.names);
        for r in &self.resources {
            w.open("resource").attr("uri", &r.uri);
            if r.names.is_empty() && r.instances.is_empty() {
                w.slash_gt();
                continue;
            }
            w.gt();
            write_names(w, &r.names);
            for i in &r.instances {
                w.open("instance")
                    .attr("id", &i.id)
                    .attr("state", i.state.as_str())
                    .attr_opt("reason", i.reason.as_deref());
                if let Some(c) = i.status_code {
                    w.attr_num("statusCode", c);
                }
                w.attr_opt("cid", i.cid.as_deref());
                if let Some(c) = i.ms_diag_code {
                    w.attr_num("msDiagCode", c);
                }
                w.attr_opt("poolFqdn", i.pool_fqdn.as_deref());
                w.slash_gt();
            }
            w.close("resource");
        }
        w.close("list");
    }

    /// Parses an RLMI document.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(NS_RLMI, "list", "{urn:ietf:params:xml:ns:rlmi}list")?;
        let mut list = Self {
            uri: root.req_attr("list", "uri")?.trim().to_owned(),
            version: crate::categories::parse_u32("version", root.req_attr("list", "version")?)?,
            full_state: crate::categories::parse_bool(root.req_attr("list", "fullState")?)?,
            cid: root.attr("cid").map(str::to_owned),
            names: Vec::new(),
            resources: Vec::new(),
        };
        for el in root.elements() {
            if el.is(NS_RLMI, "name") {
                list.names.push(parse_name(el));
            } else if el.is(NS_RLMI, "resource") {
                let mut r = Resource {
                    uri: el.req_attr("resource", "uri")?.trim().to_owned(),
                    ..Resource::default()
                };
                for c in el.elements() {
                    if c.is(NS_RLMI, "name") {
                        r.names.push(parse_name(c));
                    } else if c.is(NS_RLMI, "instance") {
                        r.instances.push(parse_instance(c)?);
                    }
                }
                list.resources.push(r);
            }
        }
        Ok(list)
    }
}

/// One body part of a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The Content-ID without angle brackets (what RLMI `cid` names).
    pub content_id: String,
    /// The part's media type (`application/msrtc-event-categories+xml`,
    /// `application/pidf+xml`, ...).
    pub content_type: String,
    /// The part's body: the presentity's shared, rendered-once bytes.
    pub body: Bytes,
}

/// A `multipart/related` resource-list body ready for a NOTIFY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartBody {
    /// The Content-Type header value, with `type`, `start` and `boundary`.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

/// A parsed resource-list notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The RLMI root document.
    pub list: List,
    /// The root part's Content-ID.
    pub root_id: String,
    /// The other parts, in order.
    pub parts: Vec<Part>,
}

/// Renders a resource-list notification: the RLMI document (Content-ID `root_id`) followed by
/// `parts`. `boundary` is a seed (e.g. derived from the subscription); if it occurs in any part
/// it is extended until it does not, so the caller need not check. No clock, no RNG.
pub fn render_notification(
    list: &List,
    root_id: &str,
    parts: &[Part],
    boundary: &str,
) -> MultipartBody {
    let rlmi = list.render();
    let mut boundary = if boundary.is_empty() {
        "herald-rlmi".to_owned()
    } else {
        boundary.to_owned()
    };
    let mut salt = 0u32;
    while std::iter::once(&rlmi)
        .chain(parts.iter().map(|p| &p.body))
        .any(|b| memchr::memmem::find(b, boundary.as_bytes()).is_some())
    {
        salt += 1;
        boundary.push_str(&format!(".{salt:x}"));
    }
    let size = rlmi.len()
        + parts
            .iter()
            .map(|p| p.body.len() + p.content_type.len() + p.content_id.len() + 96)
            .sum::<usize>()
        + 160;
    let mut out = BytesMut::with_capacity(size);
    let mut part = |cid: &str, ctype: &str, body: &[u8]| {
        out.put_slice(b"--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <");
        out.put_slice(cid.as_bytes());
        out.put_slice(b">\r\nContent-Type: ");
        out.put_slice(ctype.as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(body);
        // The part ends with a CRLF of its own before the delimiter's CRLF: libpurple 2.14's
        // MIME parser (SIPE's) cuts two bytes too many from every part, which would truncate
        // the XML; to an RFC 2046 parser the extra CRLF is trailing whitespace of the body.
        out.put_slice(b"\r\n\r\n");
    };
    part(root_id, "application/rlmi+xml;charset=\"UTF-8\"", &rlmi);
    for p in parts {
        part(&p.content_id, &p.content_type, &p.body);
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    MultipartBody {
        content_type: format!(
            "multipart/related;type=\"application/rlmi+xml\";start=\"<{root_id}>\";boundary=\"{boundary}\""
        ),
        body: out.freeze(),
    }
}

/// Parses a resource-list notification from its Content-Type header value and body. Parts
/// other than the root are returned as bytes (sharing `body`), whatever their type.
pub fn parse_notification(
    content_type: &str,
    body: Bytes,
    limits: &Limits,
) -> Result<Notification, BodyError> {
    if body.len() > limits.max_body {
        return Err(BodyError::TooLarge {
            limit: limits.max_body,
        });
    }
    let (media, params) = split_media_type(content_type)?;
    if !media.eq_ignore_ascii_case("multipart/related") {
        return Err(BodyError::Unsupported {
            what: "notification media type",
            value: media.to_owned(),
        });
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if let Some(t) = param("type")
        && !t.eq_ignore_ascii_case(CONTENT_TYPE)
    {
        return Err(BodyError::Unsupported {
            what: "multipart/related root type",
            value: t.to_owned(),
        });
    }
    let boundary = param("boundary").ok_or(BodyError::Multipart("no boundary parameter"))?;
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(BodyError::Multipart("boundary must be 1 to 70 characters"));
    }
    let start = param("start").map(|s| strip_angle(s).to_owned());
    let mut parts = split_parts(&body, boundary, limits)?;
    let root_index = match &start {
        Some(s) => parts
            .iter()
            .position(|p| p.content_id == *s)
            .ok_or(BodyError::Multipart("no part has the start Content-ID"))?,
        None if parts.is_empty() => return Err(BodyError::Multipart("no parts")),
        None => 0,
    };
    let root = parts.remove(root_index);
    let root_type = root
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if !root_type.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(BodyError::Multipart(
            "the root part is not application/rlmi+xml",
        ));
    }
    Ok(Notification {
        list: List::parse(&root.body, limits)?,
        root_id: root.content_id,
        parts,
    })
}

fn split_parts(body: &Bytes, boundary: &str, limits: &Limits) -> Result<Vec<Part>, BodyError> {
    // Delimiter lines: "--boundary" (a part follows) or "--boundary--" (the end), each at the
    // start of a line; the line break before a delimiter belongs to it (RFC 2046 §5.1.1).
    let mut parts = Vec::new();
    let mut cursor = 0usize;
    let mut open: Option<usize> = None;
    let bytes = &body[..];
    loop {
        let line_end = memchr::memchr(b'\n', &bytes[cursor..]).map_or(bytes.len(), |i| cursor + i);
        let line = trim_line(&bytes[cursor..line_end]);
        let next = (line_end + 1).min(bytes.len());
        if let Some(rest) = line
            .strip_prefix(b"--")
            .and_then(|l| l.strip_prefix(boundary.as_bytes()))
        {
            let rest = trim_ws(rest);
            let is_end = rest == b"--";
            if rest.is_empty() || is_end {
                if let Some(start) = open.take() {
                    let mut end = cursor;
                    if end > start && bytes[end - 1] == b'\n' {
                        end -= 1;
                        if end > start && bytes[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    if parts.len() >= limits.max_parts {
                        return Err(BodyError::TooMany {
                            what: "body parts",
                            limit: limits.max_parts,
                        });
                    }
                    parts.push(parse_part(body.slice(start..end))?);
                }
                if is_end {
                    return Ok(parts);
                }
                open = Some(next);
            }
        }
        if line_end >= bytes.len() {
            return Err(BodyError::Multipart("no closing delimiter"));
        }
        cursor = next;
    }
}

fn parse_part(raw: Bytes) -> Result<Part, BodyError> {
    let (head_end, body_start) = match memchr::memmem::find(&raw, b"\r\n\r\n") {
        Some(i) => (i, i + 4),
        None => match memchr::memmem::find(&raw, b"\n\n") {
            Some(i) => (i, i + 2),
            None if raw.starts_with(b"\r\n") => (0, 2),
            None => return Err(BodyError::Multipart("part headers are not terminated")),
        },
    };
    let head = std::str::from_utf8(&raw[..head_end])
        .map_err(|_| BodyError::Multipart("part headers are not UTF-8"))?;
    let mut content_id = String::new();
    let mut content_type = String::from("text/plain");
    let mut unfolded: Vec<String> = Vec::new();
    for line in head.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.starts_with([' ', '\t']) {
            match unfolded.last_mut() {
                Some(prev) => prev.push_str(line),
                None => return Err(BodyError::Multipart("continuation line without a header")),
            }
        } else if !line.is_empty() {
            unfolded.push(line.to_owned());
        }
    }
    for line in &unfolded {
        let (name, value) = line
            .split_once(':')
            .ok_or(BodyError::Multipart("part header without a colon"))?;
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("Content-ID") {
            content_id = strip_angle(value).to_owned();
        } else if name.trim().eq_ignore_ascii_case("Content-Type") {
            content_type = value.to_owned();
        }
    }
    Ok(Part {
        content_id,
        content_type,
        body: raw.slice(body_start..),
    })
}

/// `(name, value)` media-type parameters.
type Params = Vec<(String, String)>;

/// `type/subtype` and its `;name=value` parameters (quoted values unquoted).
fn split_media_type(s: &str) -> Result<(&str, Params), BodyError> {
    let (media, mut rest) = match s.find(';') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut params = Vec::new();
    while !rest.trim().is_empty() {
        let eq = rest
            .find('=')
            .ok_or(BodyError::Multipart("media type parameter without a value"))?;
        let name = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let close = q
                .find('"')
                .ok_or(BodyError::Multipart("unterminated quoted parameter"))?;
            let tail = q[close + 1..].trim_start();
            (
                q[..close].to_owned(),
                tail.strip_prefix(';').unwrap_or(tail),
            )
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (
                after[..end].trim().to_owned(),
                after.get(end + 1..).unwrap_or(""),
            )
        };
        params.push((name, value));
        rest = tail;
    }
    Ok((media.trim(), params))
}

fn strip_angle(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s)
}

fn trim_line(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &b[..end]
}

fn write_names(w: &mut XmlWriter, names: &[Name]) {
    for n in names {
        w.open("name").attr_opt("xml:lang", n.lang.as_deref()).gt();
        w.text(&n.text);
        w.close("name");
    }
}

fn parse_name(el: &xml::Element) -> Name {
    Name {
        text: el.text(),
        lang: el
            .attr_ns("http://www.w3.org/XML/1998/namespace", "lang")
            .map(str::to_owned),
    }
}

fn parse_instance(el: &xml::Element) -> Result<Instance, BodyError> {
    let state = match el.req_attr("instance", "state")?.trim() {
        "active" => InstanceState::Active,
        "pending" => InstanceState::Pending,
        "terminated" => InstanceState::Terminated,
        "resubscribe" => InstanceState::Resubscribe,
        other => return Err(BodyError::invalid("instance state", other)),
    };
    Ok(Instance {
        id: el.req_attr("instance", "id")?.to_owned(),
        state,
        reason: el.attr("reason").map(str::to_owned),
        cid: el.attr("cid").map(str::to_owned),
        status_code: el
            .attr("statusCode")
            .map(|v| {
                v.trim()
                    .parse::<u16>()
                    .map_err(|_| BodyError::invalid("statusCode", v))
            })
            .transpose()?,
        ms_diag_code: el
            .attr("msDiagCode")
            .map(|v| crate::categories::parse_u32("msDiagCode", v))
            .transpose()?,
        pool_fqdn: el.attr("poolFqdn").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests;
