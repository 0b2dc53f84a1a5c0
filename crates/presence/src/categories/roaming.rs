//! Roaming self (`vnd-microsoft-roaming-self`) and roaming contacts
//! (`vnd-microsoft-roaming-contacts`) documents (sipe-client §3.3, lync-exchange-facts §1.9).

use bytes::Bytes;

use super::members::NS_CONTAINER_MANAGEMENT;
use super::{Categories, NS_CATEGORIES, parse_bool, parse_u32};
use crate::containers::{Container, ContainerId, Member};
use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits};

/// `http://schemas.microsoft.com/2006/09/sip/roaming-self`.
pub const NS_ROAMING_SELF: &str = "http://schemas.microsoft.com/2006/09/sip/roaming-self";
/// `http://schemas.microsoft.com/2006/09/sip/presence-subscribers`.
pub const NS_PRESENCE_SUBSCRIBERS: &str =
    "http://schemas.microsoft.com/2006/09/sip/presence-subscribers";
/// `http://schemas.microsoft.com/2006/09/sip/roaming-contacts`.
pub const NS_ROAMING_CONTACTS: &str = "http://schemas.microsoft.com/2006/09/sip/roaming-contacts";
/// The media type of roaming-self bodies (SUBSCRIBE, NOTIFY, and the publish 200 OK).
pub const SELF_CONTENT_TYPE: &str = "application/vnd-microsoft-roaming-self+xml";
/// The media type of roaming-contacts bodies.
pub const CONTACTS_CONTENT_TYPE: &str = "application/vnd-microsoft-roaming-contacts+xml";

/// What a roaming-self SUBSCRIBE asks for (`<roamingList><roaming type=..>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoamingList {
    /// `categories`: own publications.
    pub categories: bool,
    /// `containers`: container membership.
    pub containers: bool,
    /// `subscribers`: who watches.
    pub subscribers: bool,
}

impl RoamingList {
    /// Parses the SUBSCRIBE body; unknown types are ignored.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_ROAMING_SELF,
            "roamingList",
            "{http://schemas.microsoft.com/2006/09/sip/roaming-self}roamingList",
        )?;
        let mut out = Self::default();
        for r in root.elements().filter(|e| e.is(NS_ROAMING_SELF, "roaming")) {
            match r.req_attr("roaming", "type")? {
                "categories" => out.categories = true,
                "containers" => out.containers = true,
                "subscribers" => out.subscribers = true,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The roaming-self document: the owner's own categories (every container, with metadata),
/// container membership, and subscribers. Each part is present only if asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoamingSelf {
    /// Own category instances.
    pub categories: Option<Categories>,
    /// Containers and members. An empty list makes SIPE create the default containers.
    pub containers: Option<Vec<Container>>,
    /// Who watches the owner.
    pub subscribers: Option<Vec<Subscriber>>,
}

/// `<subscriber user displayName acknowledged/>`: one watcher of the owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    /// The watcher's address.
    pub user: String,
    /// Its display name.
    pub display_name: Option<String>,
    /// Whether the owner has seen this subscriber (else the client may prompt).
    pub acknowledged: bool,
}

impl RoamingSelf {
    /// Renders the `<roamingData>` body.
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(1024);
        w.open("roamingData").attr("xmlns", NS_ROAMING_SELF).gt();
        if let Some(c) = &self.categories {
            c.write(&mut w);
        }
        if let Some(list) = &self.containers {
            w.open("containers").attr("xmlns", NS_CONTAINER_MANAGEMENT);
            if list.is_empty() {
                w.slash_gt();
            } else {
                w.gt();
                for c in list {
                    w.open("container")
                        .attr_num("id", c.id.value())
                        .attr_num("version", c.version);
                    if c.members.is_empty() {
                        w.slash_gt();
                        continue;
                    }
                    w.gt();
                    for m in &c.members {
                        w.open("member")
                            .attr("type", m.kind())
                            .attr_opt("value", m.value());
                        w.slash_gt();
                    }
                    w.close("container");
                }
                w.close("containers");
            }
        }
        if let Some(list) = &self.subscribers {
            w.open("subscribers").attr("xmlns", NS_PRESENCE_SUBSCRIBERS);
            if list.is_empty() {
                w.slash_gt();
            } else {
                w.gt();
                for s in list {
                    w.open("subscriber")
                        .attr("user", &s.user)
                        .attr_opt("displayName", s.display_name.as_deref())
                        .attr(
                            "acknowledged",
                            if s.acknowledged { "true" } else { "false" },
                        );
                    w.slash_gt();
                }
                w.close("subscribers");
            }
        }
        w.close("roamingData");
        w.into_bytes()
    }

    /// Parses a `<roamingData>` body (for tests and the load generator).
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_ROAMING_SELF,
            "roamingData",
            "{http://schemas.microsoft.com/2006/09/sip/roaming-self}roamingData",
        )?;
        let mut out = Self::default();
        for el in root.elements() {
            if el.is(NS_CATEGORIES, "categories") {
                out.categories = Some(Categories::parse_element(&doc, el)?);
            } else if el.is(NS_CONTAINER_MANAGEMENT, "containers") {
                let mut list = Vec::new();
                for c in el
                    .elements()
                    .filter(|e| e.is(NS_CONTAINER_MANAGEMENT, "container"))
                {
                    let mut members = Vec::new();
                    for m in c
                        .elements()
                        .filter(|e| e.is(NS_CONTAINER_MANAGEMENT, "member"))
                    {
                        members.push(Member::parse(
                            m.req_attr("member", "type")?,
                            m.attr("value"),
                        )?);
                    }
                    list.push(Container {
                        id: ContainerId::parse(c.req_attr("container", "id")?)?,
                        version: c
                            .attr("version")
                            .map(|v| parse_u32("version", v))
                            .transpose()?
                            .unwrap_or(0),
                        members,
                    });
                }
                out.containers = Some(list);
            } else if el.is(NS_PRESENCE_SUBSCRIBERS, "subscribers") {
                let mut list = Vec::new();
                for s in el
                    .elements()
                    .filter(|e| e.is(NS_PRESENCE_SUBSCRIBERS, "subscriber"))
                {
                    list.push(Subscriber {
                        user: s.req_attr("subscriber", "user")?.to_owned(),
                        display_name: s.attr("displayName").map(str::to_owned),
                        acknowledged: s
                            .attr("acknowledged")
                            .map(parse_bool)
                            .transpose()?
                            .unwrap_or(false),
                    });
                }
                out.subscribers = Some(list);
            }
        }
        Ok(out)
    }
}

/// A contact-list group id: 1–63, 1 being the default group every user has (MS-SIP §3.7.4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(u8);

impl GroupId {
    /// The default group ("~", shown as "Other Contacts").
    pub const DEFAULT: Self = Self(1);
    /// The largest id.
    pub const MAX: Self = Self(63);

    /// A group id, if in 1..=63.
    pub const fn new(id: u8) -> Option<Self> {
        if id >= 1 && id <= 63 {
            Some(Self(id))
        } else {
            None
        }
    }

    /// The number.
    pub const fn value(self) -> u8 {
        self.0
    }

    fn parse(s: &str) -> Result<Self, BodyError> {
        s.parse::<u8>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| BodyError::invalid("group id", s))
    }
}

/// `<contactList deltaNum>`: the full contact list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactList {
    /// `deltaNum`: incremented by one per change; mutations must carry the current one.
    pub delta_num: u32,
    /// The groups.
    pub groups: Vec<Group>,
    /// The contacts.
    pub contacts: Vec<ContactEntry>,
}

/// `<group id name externalURI/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// `id`.
    pub id: GroupId,
    /// `name` (`~` for the default group).
    pub name: String,
    /// `externalURI` (opaque client data).
    pub external: String,
}

/// `<contact uri name groups subscribed externalURI/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactEntry {
    /// The contact's address with its scheme (`sip:bob@example.test`); written without
    /// `sip:` as SIPE requires (sipe-client §8 item 4).
    pub uri: String,
    /// `name`.
    pub name: String,
    /// `groups`: at least one.
    pub groups: Vec<GroupId>,
    /// `subscribed`.
    pub subscribed: bool,
    /// `externalURI` (opaque client data).
    pub external: String,
}

impl ContactList {
    /// Renders the `<contactList>` body. URIs lose their `sip:`; the extra-data attribute is
    /// written as MS-SIP's `externalURI` (SIPE reads neither it nor the `externals` of its
    /// own mock, so the spec's name is used).
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(128 + 96 * self.contacts.len());
        w.open("contactList")
            .attr("deltaNum", &self.delta_num.to_string())
            .attr("xmlns", NS_ROAMING_CONTACTS)
            .gt();
        for g in &self.groups {
            write_group(&mut w, "group", g);
        }
        for c in &self.contacts {
            write_contact(&mut w, "contact", c);
        }
        w.close("contactList");
        w.into_bytes()
    }

    /// Parses a `<contactList>` (with or without the roaming-contacts namespace: MS-SIP's
    /// examples have none). URIs without a scheme get `sip:`.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = &doc.root;
        if &*root.local != "contactList" || !contacts_ns(root) {
            return Err(BodyError::UnexpectedRoot {
                expected: "contactList",
                found: root.expanded_name(),
            });
        }
        let mut out = Self {
            delta_num: root
                .attr("deltaNum")
                .map(|v| parse_u32("deltaNum", v))
                .transpose()?
                .unwrap_or(0),
            ..Self::default()
        };
        for el in root.elements().filter(|e| contacts_ns(e)) {
            match &*el.local {
                "group" => out.groups.push(parse_group(el)?),
                "contact" => out.contacts.push(parse_contact(el)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The longest group or contact name a contact list keeps; longer names are cut to this many
/// characters (what the engine's roaming-contacts methods do).
const MAX_CONTACT_NAME_CHARS: usize = 256;

/// List editing shared by the engine and by tools that change a stored list without one (the
/// directory's `herald contact add|remove`), so both shape the list the same way.
impl ContactList {
    /// The list of a user who never had one: the default group (id 1, `~`) and `deltaNum` 1
    /// (MS-SIP requires a non-zero deltaNum).
    pub fn initial() -> Self {
        Self {
            delta_num: 1,
            groups: vec![Group {
                id: GroupId::DEFAULT,
                name: "~".to_owned(),
                external: String::new(),
            }],
            contacts: Vec::new(),
        }
    }

    /// Whether the list has group `id`.
    pub fn has_group(&self, id: GroupId) -> bool {
        self.groups.iter().any(|g| g.id == id)
    }

    /// Adds the default group (`~`) if the list lacks it; returns whether it did.
    pub fn ensure_default_group(&mut self) -> bool {
        if self.has_group(GroupId::DEFAULT) {
            return false;
        }
        self.groups.insert(
            0,
            Group {
                id: GroupId::DEFAULT,
                name: "~".to_owned(),
                external: String::new(),
            },
        );
        true
    }

    /// The contact whose URI is `uri` (ASCII case ignored), if any.
    pub fn contact(&self, uri: &str) -> Option<&ContactEntry> {
        self.contacts
            .iter()
            .find(|c| c.uri.eq_ignore_ascii_case(uri))
    }

    /// Adds a contact, or updates the one with the same URI (ASCII case ignored): its name (if
    /// `name` is given), groups and subscribed flag. Names are cut to 256
    /// characters, as the engine cuts them. Does not check that the groups exist.
    ///
    /// # Errors
    /// [`crate::engine::ContactError::Limit`] when adding would make the list longer than
    /// `max` contacts (updating never fails).
    pub fn upsert_contact(
        &mut self,
        uri: &str,
        name: Option<&str>,
        groups: Vec<GroupId>,
        subscribed: bool,
        max: usize,
    ) -> Result<(), crate::engine::ContactError> {
        if let Some(c) = self
            .contacts
            .iter_mut()
            .find(|c| c.uri.eq_ignore_ascii_case(uri))
        {
            if let Some(n) = name {
                c.name = cut_name(n);
            }
            c.groups = groups;
            c.subscribed = subscribed;
            return Ok(());
        }
        if self.contacts.len() >= max {
            return Err(crate::engine::ContactError::Limit);
        }
        self.contacts.push(ContactEntry {
            uri: uri.to_owned(),
            name: name.map(cut_name).unwrap_or_default(),
            groups,
            subscribed,
            external: String::new(),
        });
        Ok(())
    }

    /// What the admin's "add contact" does: [`Self::upsert_contact`] into `group` alone,
    /// subscribed.
    ///
    /// # Errors
    /// [`crate::engine::ContactError::Group`] if the list has no group `group` (nothing
    /// changed), [`crate::engine::ContactError::Limit`] if the list is full.
    pub fn add_contact(
        &mut self,
        uri: &str,
        name: Option<&str>,
        group: GroupId,
        max: usize,
    ) -> Result<(), crate::engine::ContactError> {
        if !self.has_group(group) {
            return Err(crate::engine::ContactError::Group(group.value()));
        }
        self.upsert_contact(uri, name, vec![group], true, max)
    }

    /// Removes the contact whose URI is `uri` (ASCII case ignored); returns whether it was
    /// there.
    pub fn remove_contact(&mut self, uri: &str) -> bool {
        let before = self.contacts.len();
        self.contacts.retain(|c| !c.uri.eq_ignore_ascii_case(uri));
        self.contacts.len() != before
    }

    /// Counts one change: `deltaNum` goes up by one, never to 0.
    pub fn bump_delta(&mut self) {
        self.delta_num = self.delta_num.wrapping_add(1).max(1);
    }
}

fn cut_name(s: &str) -> String {
    s.chars().take(MAX_CONTACT_NAME_CHARS).collect()
}

/// `<contactDelta deltaNum prevDeltaNum>`: the changes since `prev_delta_num`, sent instead of
/// the full list once a client has one (MS-SIP §2.2.4.1; SIPE applies it, sipe-client §3.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactDelta {
    /// `deltaNum` after the changes.
    pub delta_num: u32,
    /// `prevDeltaNum` the changes apply to.
    pub prev_delta_num: u32,
    /// The changes, in order.
    pub changes: Vec<ContactChange>,
}

/// One element of a [`ContactDelta`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactChange {
    /// `<addedGroup>`.
    AddedGroup(Group),
    /// `<modifiedGroup>`.
    ModifiedGroup(Group),
    /// `<deletedGroup id>`.
    DeletedGroup(GroupId),
    /// `<addedContact>`.
    AddedContact(ContactEntry),
    /// `<modifiedContact>`.
    ModifiedContact(ContactEntry),
    /// `<deletedContact uri>` (the URI with its scheme, like [`ContactEntry::uri`]).
    DeletedContact(String),
}

impl ContactDelta {
    /// Renders the body (same media type as the full list).
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(160 + 96 * self.changes.len());
        w.open("contactDelta")
            .attr_num("deltaNum", self.delta_num)
            .attr_num("prevDeltaNum", self.prev_delta_num)
            .attr("xmlns", NS_ROAMING_CONTACTS)
            .gt();
        for c in &self.changes {
            match c {
                ContactChange::AddedGroup(g) => write_group(&mut w, "addedGroup", g),
                ContactChange::ModifiedGroup(g) => write_group(&mut w, "modifiedGroup", g),
                ContactChange::DeletedGroup(id) => {
                    w.open("deletedGroup").attr_num("id", id.value());
                    w.slash_gt();
                }
                ContactChange::AddedContact(e) => write_contact(&mut w, "addedContact", e),
                ContactChange::ModifiedContact(e) => write_contact(&mut w, "modifiedContact", e),
                ContactChange::DeletedContact(uri) => {
                    w.open("deletedContact")
                        .attr("uri", crate::containers::strip_sip(uri));
                    w.slash_gt();
                }
            }
        }
        w.close("contactDelta");
        w.into_bytes()
    }

    /// Parses a `<contactDelta>` (with or without the roaming-contacts namespace).
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = &doc.root;
        if &*root.local != "contactDelta" || !contacts_ns(root) {
            return Err(BodyError::UnexpectedRoot {
                expected: "contactDelta",
                found: root.expanded_name(),
            });
        }
        let num = |name: &'static str| parse_u32(name, root.req_attr("contactDelta", name)?);
        let mut out = Self {
            delta_num: num("deltaNum")?,
            prev_delta_num: num("prevDeltaNum")?,
            changes: Vec::new(),
        };
        for el in root.elements().filter(|e| contacts_ns(e)) {
            out.changes.push(match &*el.local {
                "addedGroup" => ContactChange::AddedGroup(parse_group(el)?),
                "modifiedGroup" => ContactChange::ModifiedGroup(parse_group(el)?),
                "deletedGroup" => ContactChange::DeletedGroup(GroupId::parse(
                    el.req_attr("deletedGroup", "id")?.trim(),
                )?),
                "addedContact" => ContactChange::AddedContact(parse_contact(el)?),
                "modifiedContact" => ContactChange::ModifiedContact(parse_contact(el)?),
                "deletedContact" => ContactChange::DeletedContact(with_scheme(
                    el.req_attr("deletedContact", "uri")?.trim(),
                )),
                _ => continue,
            });
        }
        Ok(out)
    }
}

fn contacts_ns(e: &xml::Element) -> bool {
    e.ns.is_none() || e.in_ns(NS_ROAMING_CONTACTS)
}

fn write_group(w: &mut XmlWriter, name: &str, g: &Group) {
    w.open(name)
        .attr_num("id", g.id.value())
        .attr("name", &g.name)
        .attr("externalURI", &g.external);
    w.slash_gt();
}

fn write_contact(w: &mut XmlWriter, name: &str, c: &ContactEntry) {
    let mut ids = String::new();
    for (i, g) in c.groups.iter().enumerate() {
        if i > 0 {
            ids.push(' ');
        }
        ids.push_str(&g.value().to_string());
    }
    w.open(name)
        .attr("uri", crate::containers::strip_sip(&c.uri))
        .attr("name", &c.name)
        .attr("groups", &ids)
        .attr("subscribed", if c.subscribed { "true" } else { "false" })
        .attr("externalURI", &c.external);
    w.slash_gt();
}

fn parse_group(el: &xml::Element) -> Result<Group, BodyError> {
    Ok(Group {
        id: GroupId::parse(el.req_attr("group", "id")?.trim())?,
        name: el.attr("name").unwrap_or_default().to_owned(),
        external: external_of(el),
    })
}

fn parse_contact(el: &xml::Element) -> Result<ContactEntry, BodyError> {
    let groups = el
        .attr("groups")
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(GroupId::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ContactEntry {
        uri: with_scheme(el.req_attr("contact", "uri")?.trim()),
        name: el.attr("name").unwrap_or_default().to_owned(),
        groups,
        subscribed: el
            .attr("subscribed")
            .map(parse_bool)
            .transpose()?
            .unwrap_or(false),
        external: external_of(el),
    })
}

fn external_of(el: &xml::Element) -> String {
    el.attr("externalURI")
        .or_else(|| el.attr("externals"))
        .unwrap_or_default()
        .to_owned()
}

fn with_scheme(uri: &str) -> String {
    let has_scheme = uri.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && !scheme.contains('@')
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        uri.to_owned()
    } else {
        format!("sip:{uri}")
    }
}
