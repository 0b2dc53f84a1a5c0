//! MS-PRES enhanced presence: category XML (lync-exchange-facts §1.4–§1.7, sipe-client §3).
//!
//! Lync clients publish *category instances* (name, instance id, container, version, expiry
//! type, value) with SERVICE and receive them in `application/msrtc-event-categories+xml`
//! notifications. Only the `state` value is interpreted ([`State`]); every other value
//! (`contactCard`, `note`, `calendarData`, `device`, `userProperties`, ...) is kept as an
//! [`XmlFragment`] the server stores and forwards.
//!
//! - [`Categories`] — the notification body (and the `categories` part of roaming self).
//! - [`publish`] — the `msrtc-category-publish+xml` SERVICE body.
//! - [`roaming`] — roaming self (own categories, containers, subscribers) and roaming contacts.
//! - [`batch`] — the batched category SUBSCRIBE body.
//! - [`members`] — `setContainerMembers`.
//! - [`fault`] — the WrongDelta fault of a 409.

pub mod batch;
pub mod fault;
pub mod members;
pub mod publish;
pub mod roaming;

use std::fmt;

use bytes::Bytes;

use crate::availability::{Activity, ActivityToken, Availability, CustomText, StateType};
use crate::containers::ContainerId;
use crate::xml::{self, Element, XmlWriter};
use crate::{BodyError, Limits, Timestamp, XmlFragment};

/// `http://schemas.microsoft.com/2006/09/sip/categories`.
pub const NS_CATEGORIES: &str = "http://schemas.microsoft.com/2006/09/sip/categories";
/// `http://schemas.microsoft.com/2006/09/sip/state`.
pub const NS_STATE: &str = "http://schemas.microsoft.com/2006/09/sip/state";
/// `http://schemas.microsoft.com/2006/09/sip/note`.
pub const NS_NOTE: &str = "http://schemas.microsoft.com/2006/09/sip/note";
/// `http://www.w3.org/2001/XMLSchema-instance` (for `xsi:type`).
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The media type of a category notification.
pub const CONTENT_TYPE: &str = "application/msrtc-event-categories+xml";

/// A category name. The known ones are the categories Lync 2013 uses (§1.4); any other name a
/// client publishes is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // the variants are MS-PRES category names, spelled in as_str
pub enum CategoryName {
    State,
    Note,
    NoteHistory,
    ContactCard,
    CalendarData,
    Services,
    Device,
    UserProperties,
    UserInformation,
    LegacyInterop,
    DndState,
    Routing,
    Contacts,
    Groups,
    Alerts,
    WorkingHours,
    OtherOptions,
    /// A name herald does not know.
    Other(CustomCategory),
}

/// A category name that is not a known [`CategoryName`]; built only by
/// [`CategoryName::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomCategory(Box<str>);

impl CustomCategory {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl CategoryName {
    /// The known names.
    pub const KNOWN: [Self; 17] = [
        Self::State,
        Self::Note,
        Self::NoteHistory,
        Self::ContactCard,
        Self::CalendarData,
        Self::Services,
        Self::Device,
        Self::UserProperties,
        Self::UserInformation,
        Self::LegacyInterop,
        Self::DndState,
        Self::Routing,
        Self::Contacts,
        Self::Groups,
        Self::Alerts,
        Self::WorkingHours,
        Self::OtherOptions,
    ];

    /// Parses a `categoryName`/`name` attribute (non-empty, at most 64 bytes, no whitespace).
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        if let Some(k) = Self::KNOWN.iter().find(|k| k.as_str() == s) {
            return Ok(k.clone());
        }
        if s.is_empty() || s.len() > 64 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BodyError::invalid("category name", s));
        }
        Ok(Self::Other(CustomCategory(s.into())))
    }

    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::State => "state",
            Self::Note => "note",
            Self::NoteHistory => "noteHistory",
            Self::ContactCard => "contactCard",
            Self::CalendarData => "calendarData",
            Self::Services => "services",
            Self::Device => "device",
            Self::UserProperties => "userProperties",
            Self::UserInformation => "userInformation",
            Self::LegacyInterop => "legacyInterop",
            Self::DndState => "dndState",
            Self::Routing => "routing",
            Self::Contacts => "contacts",
            Self::Groups => "groups",
            Self::Alerts => "alerts",
            Self::WorkingHours => "workingHours",
            Self::OtherOptions => "otherOptions",
            Self::Other(c) => c.as_str(),
        }
    }

    fn bit(&self) -> u32 {
        match self {
            Self::Other(_) => 1 << 31,
            known => 1 << Self::KNOWN.iter().position(|k| k == known).unwrap_or(30),
        }
    }
}

impl fmt::Display for CategoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of category names as a bit mask: what a subscription asked for, what a view exposes.
/// Part of the render-cache key, so it is `Copy` and hashes in one word. All custom names
/// share one bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CategorySet(u32);

impl CategorySet {
    /// Every category.
    pub const ALL: Self = Self(u32::MAX);
    /// No category.
    pub const EMPTY: Self = Self(0);

    /// The set of `names`.
    pub fn of(names: &[CategoryName]) -> Self {
        Self(names.iter().fold(0, |m, n| m | n.bit()))
    }

    /// The set as bits, for storing it ([`CategorySet::from_bits`] reads it back).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// A set stored with [`CategorySet::bits`].
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// Whether `name` is in the set.
    pub fn contains(self, name: &CategoryName) -> bool {
        self.0 & name.bit() != 0
    }

    /// Adds `name`.
    pub fn insert(&mut self, name: &CategoryName) {
        self.0 |= name.bit();
    }

    /// The names in both sets.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The Lync 2013 default subscription set (UCMA): calendarData, contactCard, note,
    /// noteHistory, state, services.
    pub fn lync_default() -> Self {
        use CategoryName as C;
        Self::of(&[
            C::CalendarData,
            C::ContactCard,
            C::Note,
            C::NoteHistory,
            C::State,
            C::Services,
        ])
    }
}

impl FromIterator<CategoryName> for CategorySet {
    fn from_iter<I: IntoIterator<Item = CategoryName>>(iter: I) -> Self {
        let mut s = Self::EMPTY;
        for n in iter {
            s.insert(&n);
        }
        s
    }
}

/// `expireType` (lync-exchange-facts §1.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExpireType {
    /// Dies with the publishing endpoint (the default).
    #[default]
    Endpoint,
    /// Never expires (manual status, note): persisted.
    Static,
    /// Dies when the user has signed out everywhere.
    User,
    /// Dies after `expires` seconds; `expires="0"` deletes.
    Time,
    /// Application-defined.
    Custom,
}

impl ExpireType {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Static => "static",
            Self::User => "user",
            Self::Time => "time",
            Self::Custom => "custom",
        }
    }

    /// Parses the attribute value.
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        Ok(match s.trim() {
            "endpoint" => Self::Endpoint,
            "static" => Self::Static,
            "user" => Self::User,
            "time" => Self::Time,
            "custom" => Self::Custom,
            other => return Err(BodyError::invalid("expireType", other)),
        })
    }
}

/// Well-known instance ids of the `state` category (lync-exchange-facts §1.2).
pub mod instance {
    /// Static aggregate state (e.g. 18500 in the Blocked container).
    pub const AGGREGATE_STATIC: u32 = 0;
    /// User-bound aggregate state (what watchers see).
    pub const AGGREGATE: u32 = 1;
    /// `aggregateMachineState`.
    pub const AGGREGATE_MACHINE: u32 = 0x1000_0000;
    /// Static manual user state.
    pub const USER_STATIC: u32 = 0x2000_0000;
    /// Time-bound manual user state.
    pub const USER_TIMED: u32 = 0x2400_0000;

    /// What the top four bits of a state instance id say about its source.
    pub const fn kind(instance: u32) -> Option<crate::availability::StateType> {
        use crate::availability::StateType as T;
        Some(match instance >> 28 {
            0 => T::AggregateState,
            1 => T::AggregateMachineState,
            2 => T::UserState,
            3 => T::MachineState,
            4..=6 => T::CalendarState,
            7..=9 => T::PhoneState,
            _ => return None,
        })
    }
}

/// The value of a category instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CategoryValue {
    /// A `state` value, interpreted.
    State(State),
    /// Any other value, kept verbatim.
    Opaque(XmlFragment),
    /// No value: a deletion, or what Blocked watchers see of every category but state.
    Empty,
}

/// A `<state>` value (lync-exchange-facts §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// `xsi:type`.
    pub kind: StateType,
    /// `manual` (set by the person).
    pub manual: bool,
    /// `<availability>`.
    pub availability: Option<Availability>,
    /// `<activity>`.
    pub activity: Option<Activity>,
    /// `lastActive` (aggregateState, Away/Offline bands).
    pub last_active: Option<Timestamp>,
    /// `startTime`.
    pub start_time: Option<Timestamp>,
    /// `endpointId` (aggregateMachineState: the most active device).
    pub endpoint_id: Option<String>,
    /// Other children (`endpointLocation`, `timeZoneBias`, `device`, `meetingSubject`, ...),
    /// kept verbatim.
    pub extensions: Vec<XmlFragment>,
}

impl State {
    /// A state of `kind` with just an availability.
    pub fn new(kind: StateType, availability: Availability) -> Self {
        Self {
            kind,
            manual: false,
            availability: Some(availability),
            activity: None,
            last_active: None,
            start_time: None,
            endpoint_id: None,
            extensions: Vec::new(),
        }
    }

    pub(crate) fn parse_element(doc: &xml::Document<'_>, el: &Element) -> Result<Self, BodyError> {
        let kind = el
            .attr_ns(NS_XSI, "type")
            .or_else(|| el.attr("type"))
            .ok_or(BodyError::MissingAttribute {
                element: "state",
                attribute: "xsi:type",
            })?;
        let mut s = Self::new(StateType::parse(kind)?, Availability::new(0));
        s.availability = None;
        s.manual = el
            .attr("manual")
            .map(parse_bool)
            .transpose()?
            .unwrap_or(false);
        s.last_active = el.attr("lastActive").map(Timestamp::parse).transpose()?;
        s.start_time = el.attr("startTime").map(Timestamp::parse).transpose()?;
        s.endpoint_id = el.attr("endpointId").map(str::to_owned);
        for c in el.elements() {
            if c.is(NS_STATE, "availability") {
                s.availability = Some(Availability::parse(&c.text())?);
            } else if c.is(NS_STATE, "activity") {
                s.activity = Some(parse_activity(c)?);
            } else {
                s.extensions.push(doc.fragment(c));
            }
        }
        Ok(s)
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        w.open("state")
            .attr("xmlns", NS_STATE)
            .attr("xmlns:xsi", NS_XSI);
        if self.manual {
            w.attr("manual", "true");
        }
        w.attr("xsi:type", self.kind.as_str());
        if let Some(t) = self.last_active {
            w.attr_display("lastActive", t);
        }
        if let Some(t) = self.start_time {
            w.attr_display("startTime", t);
        }
        w.attr_opt("endpointId", self.endpoint_id.as_deref());
        w.gt();
        if let Some(a) = self.availability {
            w.text_elem("availability", &a.to_string());
        }
        if let Some(a) = &self.activity {
            w.open("activity");
            if let Some(t) = &a.token {
                w.attr("token", t.as_str());
            }
            if let Some(m) = a.min_availability {
                w.attr_num("minAvailability", m.value());
            }
            if let Some(m) = a.max_availability {
                w.attr_num("maxAvailability", m.value());
            }
            if a.custom.is_empty() {
                w.slash_gt();
            } else {
                w.gt();
                for c in &a.custom {
                    w.open("custom");
                    if let Some(l) = c.lcid {
                        w.attr_num("LCID", l);
                    }
                    w.gt();
                    w.text(&c.text);
                    w.close("custom");
                }
                w.close("activity");
            }
        }
        for f in &self.extensions {
            w.raw(f.as_str());
        }
        w.close("state");
    }
}

fn parse_activity(el: &Element) -> Result<Activity, BodyError> {
    let avail = |name| el.attr(name).map(Availability::parse).transpose();
    let mut a = Activity {
        token: el.attr("token").map(ActivityToken::parse).transpose()?,
        min_availability: avail("minAvailability")?,
        max_availability: avail("maxAvailability")?,
        custom: Vec::new(),
    };
    for c in el.elements() {
        if c.is(NS_STATE, "custom") {
            a.custom.push(CustomText {
                lcid: c.attr("LCID").map(|v| parse_u32("LCID", v)).transpose()?,
                text: c.text(),
            });
        }
    }
    Ok(a)
}

/// One category instance as notified (`<category name instance publishTime ...>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryInstance {
    /// `name`.
    pub name: CategoryName,
    /// `instance`.
    pub instance: u32,
    /// `publishTime` (server-stamped).
    pub publish_time: Option<Timestamp>,
    /// `container`: shown only in the owner's view, never to remote watchers.
    pub container: Option<ContainerId>,
    /// `version`: owner's view only.
    pub version: Option<u32>,
    /// `expireType`: owner's view only.
    pub expire_type: Option<ExpireType>,
    /// The value.
    pub value: CategoryValue,
}

impl CategoryInstance {
    /// The instance without the metadata remote watchers must not see (container, version,
    /// expiry type).
    pub fn for_remote(&self) -> Self {
        Self {
            container: None,
            version: None,
            expire_type: None,
            ..self.clone()
        }
    }

    fn write_as(&self, w: &mut XmlWriter, disclosure: Disclosure) {
        w.open("category").attr("name", self.name.as_str());
        w.attr_num("instance", self.instance);
        if let Some(t) = self.publish_time {
            w.attr_display("publishTime", t);
        }
        if disclosure == Disclosure::Remote {
            // Container ids, versions and expiry types are the owner's business (§1.7).
        } else if let Some(c) = self.container {
            w.attr_num("container", c.value());
        }
        if disclosure == Disclosure::AsStored {
            if let Some(v) = self.version {
                w.attr_num("version", v);
            }
            if let Some(e) = self.expire_type {
                w.attr("expireType", e.as_str());
            }
        }
        match &self.value {
            CategoryValue::Empty => w.slash_gt(),
            CategoryValue::State(s) => {
                w.gt();
                s.write(w);
                w.close("category");
            }
            CategoryValue::Opaque(f) => {
                w.gt();
                w.raw(f.as_str());
                w.close("category");
            }
        }
    }

    fn parse_element(doc: &xml::Document<'_>, el: &Element) -> Result<Self, BodyError> {
        let name = CategoryName::parse(el.req_attr("category", "name")?)?;
        let value = parse_value(doc, el, &name)?;
        Ok(Self {
            instance: parse_u32("instance", el.req_attr("category", "instance")?)?,
            publish_time: el.attr("publishTime").map(Timestamp::parse).transpose()?,
            container: el.attr("container").map(ContainerId::parse).transpose()?,
            version: el
                .attr("version")
                .map(|v| parse_u32("version", v))
                .transpose()?,
            expire_type: el.attr("expireType").map(ExpireType::parse).transpose()?,
            name,
            value,
        })
    }
}

/// A category notification: `<categories uri=".."><category .../>...</categories>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categories {
    /// The presentity, `sip:` and lower case (SIPE matches it against its buddy key exactly).
    pub uri: String,
    /// The instances.
    pub instances: Vec<CategoryInstance>,
}

impl Categories {
    /// Parses an `application/msrtc-event-categories+xml` body.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_CATEGORIES,
            "categories",
            "{http://schemas.microsoft.com/2006/09/sip/categories}categories",
        )?;
        Self::parse_element(&doc, root)
    }

    pub(crate) fn parse_element(
        doc: &xml::Document<'_>,
        root: &Element,
    ) -> Result<Self, BodyError> {
        let mut c = Self {
            uri: root.req_attr("categories", "uri")?.to_owned(),
            instances: Vec::new(),
        };
        for el in root.elements().filter(|e| e.is(NS_CATEGORIES, "category")) {
            c.instances.push(CategoryInstance::parse_element(doc, el)?);
        }
        Ok(c)
    }

    /// Renders the body.
    pub fn render(&self) -> Bytes {
        render_categories(&self.uri, self.instances.iter())
    }

    pub(crate) fn write(&self, w: &mut XmlWriter) {
        write_categories(w, &self.uri, self.instances.iter());
    }
}

/// Renders a category notification for `uri` from borrowed instances, so a view can be
/// rendered straight from the engine's store without building a [`Categories`] first. What
/// is written is what the instances carry (the owner's view); remote watchers get
/// [`render_categories_remote`].
pub fn render_categories<'a>(
    uri: &str,
    instances: impl IntoIterator<Item = &'a CategoryInstance>,
) -> Bytes {
    let mut w = XmlWriter::with_capacity(1024);
    write_categories_as(&mut w, uri, instances, Disclosure::AsStored);
    w.into_bytes()
}

/// [`render_categories`] without container, version and expiry type, as remote watchers must
/// see instances; the same bytes as rendering [`CategoryInstance::for_remote`] copies, without
/// the copies.
pub fn render_categories_remote<'a>(
    uri: &str,
    instances: impl IntoIterator<Item = &'a CategoryInstance>,
) -> Bytes {
    let mut w = XmlWriter::with_capacity(1024);
    write_categories_as(&mut w, uri, instances, Disclosure::Remote);
    w.into_bytes()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Disclosure {
    AsStored,
    Remote,
}

pub(crate) fn write_categories<'a>(
    w: &mut XmlWriter,
    uri: &str,
    instances: impl IntoIterator<Item = &'a CategoryInstance>,
) {
    write_categories_as(w, uri, instances, Disclosure::AsStored);
}

fn write_categories_as<'a>(
    w: &mut XmlWriter,
    uri: &str,
    instances: impl IntoIterator<Item = &'a CategoryInstance>,
    disclosure: Disclosure,
) {
    w.open("categories")
        .attr("xmlns", NS_CATEGORIES)
        .attr("uri", uri);
    let mut any = false;
    for i in instances {
        if !any {
            w.gt();
            any = true;
        }
        i.write_as(w, disclosure);
    }
    if any {
        w.close("categories");
    } else {
        w.slash_gt();
    }
}

/// The text of a `note` value's first `<body>`, and its `type` (`personal`, `OOF`, ...), for
/// showing a Lync note to a PIDF watcher.
pub fn note_body(note: &XmlFragment) -> Option<(String, Option<String>)> {
    let doc = xml::parse(note.as_str().as_bytes(), &Limits::DEFAULT).ok()?;
    let body = doc.root.elements().find(|e| e.is(NS_NOTE, "body"))?;
    Some((body.text(), body.attr("type").map(str::to_owned)))
}

/// A `note` value with one personal body, for a note that came from PIDF.
pub fn personal_note(text: &str) -> XmlFragment {
    let mut w = XmlWriter::with_capacity(96 + text.len());
    w.open("note").attr("xmlns", NS_NOTE).gt();
    w.open("body").attr("type", "personal").attr("uri", "").gt();
    w.text(text);
    w.close("body");
    w.close("note");
    XmlFragment::from_checked(w.buf)
}

fn parse_value(
    doc: &xml::Document<'_>,
    el: &Element,
    name: &CategoryName,
) -> Result<CategoryValue, BodyError> {
    let Some(child) = el.elements().next() else {
        return Ok(CategoryValue::Empty);
    };
    if *name == CategoryName::State && child.is(NS_STATE, "state") {
        Ok(CategoryValue::State(State::parse_element(doc, child)?))
    } else {
        Ok(CategoryValue::Opaque(doc.fragment(child)))
    }
}

pub(crate) fn parse_u32(field: &'static str, s: &str) -> Result<u32, BodyError> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BodyError::invalid(field, s));
    }
    t.parse().map_err(|_| BodyError::invalid(field, s))
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, BodyError> {
    match s.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(BodyError::invalid("boolean", other)),
    }
}

#[cfg(test)]
mod tests;
