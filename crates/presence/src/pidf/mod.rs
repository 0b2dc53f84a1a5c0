//! PIDF (RFC 3863) with the RFC 4479 data model and RPID (RFC 4480) extensions.
//!
//! The standard dialect: SIMPLE clients PUBLISH these documents and SUBSCRIBE to receive them.
//! [`Presence::parse`] reads what herald understands into types and keeps every other element
//! as an [`XmlFragment`], so nothing a client published is lost when it is forwarded;
//! [`Presence::render`] writes the document back. [`mapping`] translates between a Lync
//! availability + activity and the PIDF basic status + RPID activities.

pub mod mapping;

use bytes::Bytes;

use crate::xml::{self, Element, XmlWriter};
use crate::{BodyError, Limits, Timestamp, XmlFragment};

pub use mapping::{Summary, from_summary, to_summary};

/// `urn:ietf:params:xml:ns:pidf`.
pub const NS_PIDF: &str = "urn:ietf:params:xml:ns:pidf";
/// `urn:ietf:params:xml:ns:pidf:data-model` (RFC 4479: `person`, `device`, `deviceID`).
pub const NS_DATA_MODEL: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// `urn:ietf:params:xml:ns:pidf:rpid` (RFC 4480).
pub const NS_RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The media type of a PIDF body.
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// A presence document (RFC 3863 §4.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// The presentity's URI. RFC 3863 requires `entity`, but RFC 4479 §5 asks receivers to
    /// take what they can from invalid documents (its own §7.1 example has none), and a server
    /// sets the entity from the PUBLISH Request-URI anyway, so a missing one reads as empty.
    pub entity: String,
    /// Services, in document order.
    pub tuples: Vec<Tuple>,
    /// Notes about the presentity.
    pub notes: Vec<Note>,
    /// RFC 4479 persons (where RPID activities live).
    pub persons: Vec<Person>,
    /// RFC 4479 devices.
    pub devices: Vec<Device>,
    /// Other top-level elements, kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

/// A presence tuple (RFC 3863 §4.1.2): one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuple {
    /// Unique within the presentity; lets watchers correlate tuples across notifications.
    pub id: String,
    /// The tuple's status.
    pub status: Status,
    /// RPID `user-input` for this service.
    pub user_input: Option<UserInput>,
    /// The service's address.
    pub contact: Option<Contact>,
    /// Notes about the service.
    pub notes: Vec<Note>,
    /// When the status last changed.
    pub timestamp: Option<Timestamp>,
    /// Other elements of the tuple, kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

/// A tuple's `<status>` (RFC 3863 §4.1.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `<basic>`, if present.
    pub basic: Option<Basic>,
    /// Other status values (`<im:im>`, location, ...), kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

/// `<basic>` (RFC 3863 §4.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Basic {
    /// Ready to receive communication.
    Open,
    /// Not ready.
    Closed,
}

impl Basic {
    /// The element text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

/// `<contact>` (RFC 3863 §4.1.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    /// The contact URI.
    pub uri: String,
    /// Priority in thousandths (0..=1000); an out-of-range or malformed priority is ignored as
    /// §4.1.5 says.
    pub priority: Option<u16>,
}

/// A `<note>` (PIDF, data-model or RPID), with its language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Note {
    /// The text.
    pub text: String,
    /// `xml:lang`.
    pub lang: Option<String>,
}

/// An RFC 4479 `<dm:person>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    /// `id` (required).
    pub id: String,
    /// RPID `<activities>`.
    pub activities: Option<Activities>,
    /// RPID `<user-input>` summarising all devices.
    pub user_input: Option<UserInput>,
    /// `<dm:note>`s.
    pub notes: Vec<Note>,
    /// `<dm:timestamp>`.
    pub timestamp: Option<Timestamp>,
    /// Other elements (mood, place-type, ...), kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

/// An RFC 4479 `<dm:device>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// `id` (required).
    pub id: String,
    /// `<dm:deviceID>`.
    pub device_id: Option<String>,
    /// RPID `<user-input>` of this device.
    pub user_input: Option<UserInput>,
    /// `<dm:note>`s.
    pub notes: Vec<Note>,
    /// `<dm:timestamp>`.
    pub timestamp: Option<Timestamp>,
    /// Other elements, kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

/// RPID `<activities>` (RFC 4480 §3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activities {
    /// `from`.
    pub from: Option<Timestamp>,
    /// `until`.
    pub until: Option<Timestamp>,
    /// `<rpid:note>`s.
    pub notes: Vec<Note>,
    /// The activities, in document order.
    pub items: Vec<RpidActivity>,
    /// Activities from other namespaces, kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

/// One RPID activity (RFC 4480 §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // the variants are RFC 4480's activity names, defined there
pub enum RpidActivity {
    Appointment,
    Away,
    Breakfast,
    Busy,
    Dinner,
    Holiday,
    InTransit,
    LookingForWork,
    Lunch,
    Meal,
    Meeting,
    OnThePhone,
    Performance,
    PermanentAbsence,
    Playing,
    Presentation,
    Shopping,
    Sleeping,
    Spectator,
    Steering,
    Travel,
    Tv,
    Unknown,
    Vacation,
    Working,
    Worship,
    /// `<other>text</other>`: an activity without a defined element.
    Other(String),
}

impl RpidActivity {
    /// Every activity with its own element, in RFC 4480 order.
    pub const NAMED: [Self; 26] = [
        Self::Appointment,
        Self::Away,
        Self::Breakfast,
        Self::Busy,
        Self::Dinner,
        Self::Holiday,
        Self::InTransit,
        Self::LookingForWork,
        Self::Lunch,
        Self::Meal,
        Self::Meeting,
        Self::OnThePhone,
        Self::Performance,
        Self::PermanentAbsence,
        Self::Playing,
        Self::Presentation,
        Self::Shopping,
        Self::Sleeping,
        Self::Spectator,
        Self::Steering,
        Self::Travel,
        Self::Tv,
        Self::Unknown,
        Self::Vacation,
        Self::Working,
        Self::Worship,
    ];

    /// The element's local name (`other` for [`RpidActivity::Other`]).
    pub fn element_name(&self) -> &'static str {
        match self {
            Self::Appointment => "appointment",
            Self::Away => "away",
            Self::Breakfast => "breakfast",
            Self::Busy => "busy",
            Self::Dinner => "dinner",
            Self::Holiday => "holiday",
            Self::InTransit => "in-transit",
            Self::LookingForWork => "looking-for-work",
            Self::Lunch => "lunch",
            Self::Meal => "meal",
            Self::Meeting => "meeting",
            Self::OnThePhone => "on-the-phone",
            Self::Performance => "performance",
            Self::PermanentAbsence => "permanent-absence",
            Self::Playing => "playing",
            Self::Presentation => "presentation",
            Self::Shopping => "shopping",
            Self::Sleeping => "sleeping",
            Self::Spectator => "spectator",
            Self::Steering => "steering",
            Self::Travel => "travel",
            Self::Tv => "tv",
            Self::Unknown => "unknown",
            Self::Vacation => "vacation",
            Self::Working => "working",
            Self::Worship => "worship",
            Self::Other(_) => "other",
        }
    }

    fn from_element_name(name: &str) -> Option<Self> {
        Self::NAMED.into_iter().find(|a| a.element_name() == name)
    }
}

/// RPID `<user-input>` (RFC 4480 §3.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserInput {
    /// `idle` (true) or `active`.
    pub idle: bool,
    /// `last-input`.
    pub last_input: Option<Timestamp>,
    /// `idle-threshold` in seconds.
    pub idle_threshold: Option<u32>,
}

impl Presence {
    /// Parses an `application/pidf+xml` body.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(NS_PIDF, "presence", "{urn:ietf:params:xml:ns:pidf}presence")?;
        let mut p = Self {
            entity: root.attr("entity").unwrap_or_default().trim().to_owned(),
            ..Self::default()
        };
        for el in root.elements() {
            if el.is(NS_PIDF, "tuple") {
                p.tuples.push(parse_tuple(&doc, el)?);
            } else if el.is(NS_PIDF, "note") {
                p.notes.push(parse_note(el));
            } else if el.is(NS_DATA_MODEL, "person") {
                p.persons.push(parse_person(&doc, el)?);
            } else if el.is(NS_DATA_MODEL, "device") {
                p.devices.push(parse_device(&doc, el)?);
            } else {
                p.extensions.push(doc.fragment(el));
            }
        }
        Ok(p)
    }

    /// Renders the document (UTF-8, with an XML declaration).
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(512);
        self.write(&mut w);
        w.into_bytes()
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        w.decl();
        w.open("presence")
            .attr("xmlns", NS_PIDF)
            .attr("xmlns:dm", NS_DATA_MODEL)
            .attr("xmlns:rpid", NS_RPID)
            .attr("entity", &self.entity)
            .gt();
        for t in &self.tuples {
            write_tuple(w, t);
        }
        for n in &self.notes {
            write_note(w, "note", n);
        }
        for p in &self.persons {
            w.open("dm:person").attr("id", &p.id).gt();
            if let Some(a) = &p.activities {
                write_activities(w, a);
            }
            if let Some(u) = &p.user_input {
                write_user_input(w, u);
            }
            for f in &p.extensions {
                w.raw(f.as_str());
            }
            for n in &p.notes {
                write_note(w, "dm:note", n);
            }
            if let Some(ts) = p.timestamp {
                w.text_elem("dm:timestamp", &ts.to_string());
            }
            w.close("dm:person");
        }
        for d in &self.devices {
            w.open("dm:device").attr("id", &d.id).gt();
            if let Some(u) = &d.user_input {
                write_user_input(w, u);
            }
            for f in &d.extensions {
                w.raw(f.as_str());
            }
            if let Some(id) = &d.device_id {
                w.text_elem("dm:deviceID", id);
            }
            for n in &d.notes {
                write_note(w, "dm:note", n);
            }
            if let Some(ts) = d.timestamp {
                w.text_elem("dm:timestamp", &ts.to_string());
            }
            w.close("dm:device");
        }
        for f in &self.extensions {
            w.raw(f.as_str());
        }
        w.close("presence");
    }
}

fn parse_tuple(doc: &xml::Document<'_>, el: &Element) -> Result<Tuple, BodyError> {
    let mut t = Tuple {
        id: el.req_attr("tuple", "id")?.to_owned(),
        ..Tuple::default()
    };
    let mut have_status = false;
    for c in el.elements() {
        if c.is(NS_PIDF, "status") {
            have_status = true;
            for s in c.elements() {
                if s.is(NS_PIDF, "basic") {
                    t.status.basic = Some(match s.text().trim() {
                        "open" => Basic::Open,
                        "closed" => Basic::Closed,
                        other => return Err(BodyError::invalid("basic", other)),
                    });
                } else {
                    t.status.extensions.push(doc.fragment(s));
                }
            }
        } else if c.is(NS_PIDF, "contact") {
            t.contact = Some(Contact {
                uri: c.text().trim().to_owned(),
                priority: c.attr("priority").and_then(parse_priority),
            });
        } else if c.is(NS_PIDF, "note") {
            t.notes.push(parse_note(c));
        } else if c.is(NS_PIDF, "timestamp") {
            t.timestamp = Some(Timestamp::parse(&c.text())?);
        } else if c.is(NS_RPID, "user-input") {
            t.user_input = Some(parse_user_input(c)?);
        } else {
            t.extensions.push(doc.fragment(c));
        }
    }
    if !have_status {
        return Err(BodyError::MissingElement {
            parent: "tuple",
            child: "status",
        });
    }
    Ok(t)
}

fn parse_person(doc: &xml::Document<'_>, el: &Element) -> Result<Person, BodyError> {
    let mut p = Person {
        id: el.req_attr("person", "id")?.to_owned(),
        ..Person::default()
    };
    for c in el.elements() {
        if c.is(NS_RPID, "activities") {
            p.activities = Some(parse_activities(doc, c)?);
        } else if c.is(NS_RPID, "user-input") {
            p.user_input = Some(parse_user_input(c)?);
        } else if c.is(NS_DATA_MODEL, "note") {
            p.notes.push(parse_note(c));
        } else if c.is(NS_DATA_MODEL, "timestamp") {
            p.timestamp = Some(Timestamp::parse(&c.text())?);
        } else {
            p.extensions.push(doc.fragment(c));
        }
    }
    Ok(p)
}

fn parse_device(doc: &xml::Document<'_>, el: &Element) -> Result<Device, BodyError> {
    let mut d = Device {
        id: el.req_attr("device", "id")?.to_owned(),
        ..Device::default()
    };
    for c in el.elements() {
        if c.is(NS_DATA_MODEL, "deviceID") {
            d.device_id = Some(c.text().trim().to_owned());
        } else if c.is(NS_RPID, "user-input") {
            d.user_input = Some(parse_user_input(c)?);
        } else if c.is(NS_DATA_MODEL, "note") {
            d.notes.push(parse_note(c));
        } else if c.is(NS_DATA_MODEL, "timestamp") {
            d.timestamp = Some(Timestamp::parse(&c.text())?);
        } else {
            d.extensions.push(doc.fragment(c));
        }
    }
    Ok(d)
}

fn parse_activities(doc: &xml::Document<'_>, el: &Element) -> Result<Activities, BodyError> {
    let mut a = Activities {
        from: el.attr("from").map(Timestamp::parse).transpose()?,
        until: el.attr("until").map(Timestamp::parse).transpose()?,
        ..Activities::default()
    };
    for c in el.elements() {
        if !c.in_ns(NS_RPID) {
            a.extensions.push(doc.fragment(c));
        } else if &*c.local == "note" {
            a.notes.push(parse_note(c));
        } else if &*c.local == "other" {
            a.items.push(RpidActivity::Other(c.text()));
        } else if let Some(act) = RpidActivity::from_element_name(&c.local) {
            a.items.push(act);
        } else {
            a.extensions.push(doc.fragment(c));
        }
    }
    Ok(a)
}

fn parse_user_input(el: &Element) -> Result<UserInput, BodyError> {
    let idle = match el.text().trim() {
        "idle" => true,
        "active" => false,
        other => return Err(BodyError::invalid("user-input", other)),
    };
    Ok(UserInput {
        idle,
        last_input: el.attr("last-input").map(Timestamp::parse).transpose()?,
        idle_threshold: el
            .attr("idle-threshold")
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| BodyError::invalid("idle-threshold", v))
            })
            .transpose()?,
    })
}

fn parse_note(el: &Element) -> Note {
    Note {
        text: el.text(),
        lang: el.attr_ns(XML_NS, "lang").map(str::to_owned),
    }
}

/// RFC 3863 §4.1.5: a decimal in [0, 1] with at most three decimals; anything else is
/// ignored.
fn parse_priority(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || int.len() > 1
        || frac.len() > 3
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let v = whole + thousandths;
    (v <= 1000).then_some(v)
}

fn format_priority(v: u16) -> String {
    let v = v.min(1000);
    if v == 1000 {
        return "1.0".to_owned();
    }
    let mut s = format!("0.{v:03}");
    while s.ends_with('0') && s.len() > 3 {
        s.pop();
    }
    s
}

fn write_tuple(w: &mut XmlWriter, t: &Tuple) {
    w.open("tuple").attr("id", &t.id).gt();
    w.open("status").gt();
    if let Some(b) = t.status.basic {
        w.text_elem("basic", b.as_str());
    }
    for f in &t.status.extensions {
        w.raw(f.as_str());
    }
    w.close("status");
    if let Some(u) = &t.user_input {
        write_user_input(w, u);
    }
    for f in &t.extensions {
        w.raw(f.as_str());
    }
    if let Some(c) = &t.contact {
        w.open("contact");
        if let Some(p) = c.priority {
            w.attr("priority", &format_priority(p));
        }
        w.gt();
        w.text(&c.uri);
        w.close("contact");
    }
    for n in &t.notes {
        write_note(w, "note", n);
    }
    if let Some(ts) = t.timestamp {
        w.text_elem("timestamp", &ts.to_string());
    }
    w.close("tuple");
}

fn write_activities(w: &mut XmlWriter, a: &Activities) {
    w.open("rpid:activities");
    if let Some(f) = a.from {
        w.attr("from", &f.to_string());
    }
    if let Some(u) = a.until {
        w.attr("until", &u.to_string());
    }
    w.gt();
    for n in &a.notes {
        write_note(w, "rpid:note", n);
    }
    for item in &a.items {
        match item {
            RpidActivity::Other(text) => w.text_elem("rpid:other", text),
            named => {
                w.open("rpid:").raw(named.element_name());
                w.slash_gt();
            }
        }
    }
    for f in &a.extensions {
        w.raw(f.as_str());
    }
    w.close("rpid:activities");
}

fn write_user_input(w: &mut XmlWriter, u: &UserInput) {
    w.open("rpid:user-input");
    if let Some(t) = u.idle_threshold {
        w.attr_num("idle-threshold", t);
    }
    if let Some(t) = u.last_input {
        w.attr("last-input", &t.to_string());
    }
    w.gt();
    w.text(if u.idle { "idle" } else { "active" });
    w.close("rpid:user-input");
}

fn write_note(w: &mut XmlWriter, name: &str, n: &Note) {
    w.open(name).attr_opt("xml:lang", n.lang.as_deref()).gt();
    w.text(&n.text);
    w.close(name);
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[cfg(test)]
mod tests;
