//! Contact lists: the roaming-contacts SOAP methods SIPE and OCS-era clients send in SERVICE
//! (MS-SIP §2.2.4.2: `setContact`, `deleteContact`, `addGroup`, `modifyGroup`, `deleteGroup`),
//! and the same operations for the admin CLI (`herald contact add|list|remove`).
//!
//! Every change increments `deltaNum`, is saved before the 200 OK, and reaches the user's
//! roaming-contacts subscriptions as the full `contactList` (SIPE applies full lists and
//! deltas alike, and a full list avoids the URI-form differences of deltas).
//!
//! Two deliberate leniencies: the `deltaNum` a request carries is not compared with the
//! current one (SIPE increments its own copy per request and resets it from each
//! notification, so a strict check fails whenever a notification crosses a request); and
//! deleting a group that still holds contacts moves those contacts to the default group
//! instead of failing.

use std::time::Instant;

use bytes::Bytes;
use herald_registrar::Aor;
use herald_sip::Response;

use super::Engine;
use super::api::{AuthenticatedRequest, Reply};
use super::reply::{self, plain};
use super::state::{SubKind, UserId};
use super::store::StoreError;
use crate::categories::roaming::{ContactList, Group, GroupId};
use crate::containers::strip_sip;
use crate::xml::{self, Element, XmlWriter};

/// Why a contact-list change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContactError {
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The list is full ([`super::EngineConfig::max_contacts`], or 63 groups).
    #[error("contact list limit reached")]
    Limit,
    /// The contact is not a `user@domain` address.
    #[error("invalid contact address {0:?}")]
    InvalidUri(String),
    /// The group does not exist, or is the default group that cannot be deleted.
    #[error("no such group {0}")]
    Group(u8),
    /// A required element of the request is missing.
    #[error("missing {0}")]
    Missing(&'static str),
}

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    /// The user's contact list, loaded from the store on first use; a user without one gets
    /// the default group (id 1, `~`) and `deltaNum` 1 (MS-SIP requires a non-zero deltaNum).
    pub(super) fn contacts_of(&mut self, uid: UserId) -> Result<&ContactList, StoreError> {
        if self.user(uid).contacts.is_none() {
            let aor = self.user(uid).aor.clone();
            let list = self
                .store
                .contact_list(&aor)?
                .unwrap_or_else(ContactList::initial);
            self.user_mut(uid).contacts = Some(list);
        }
        Ok(self
            .user(uid)
            .contacts
            .as_ref()
            .expect("the contact list was loaded just above"))
    }

    /// Adds `contact` to `user`'s list (or updates its name and group), for the admin CLI.
    ///
    /// # Errors
    /// See [`ContactError`].
    pub fn add_contact(
        &mut self,
        now: Instant,
        user: &Aor,
        contact: &Aor,
        name: Option<&str>,
        group: Option<GroupId>,
    ) -> Result<(), ContactError> {
        let uid = self.ensure_user(now, user)?;
        let max = self.config.max_contacts as usize;
        let uri = format!("sip:{}", contact.as_str());
        let result = self.change_contacts(now, uid, |list| {
            list.add_contact(&uri, name, group.unwrap_or(GroupId::DEFAULT), max)?;
            Ok(None)
        });
        self.release_idle();
        result.map(|_| ())
    }

    /// Removes `contact` from `user`'s list, for the admin CLI. Returns whether it was there.
    ///
    /// # Errors
    /// See [`ContactError`].
    pub fn remove_contact(
        &mut self,
        now: Instant,
        user: &Aor,
        contact: &Aor,
    ) -> Result<bool, ContactError> {
        let uid = self.ensure_user(now, user)?;
        let uri = format!("sip:{}", contact.as_str());
        let mut found = false;
        let result = self.change_contacts(now, uid, |list| {
            found = list.remove_contact(&uri);
            Ok(None)
        });
        self.release_idle();
        result.map(|_| found)
    }

    /// A SOAP SERVICE (`application/SOAP+xml`).
    pub(super) fn soap(&mut self, now: Instant, req: &AuthenticatedRequest<F>) -> Reply {
        let r = &req.request;
        let doc = match xml::parse(r.body(), &self.config.limits) {
            Ok(d) => d,
            Err(e) => return reply::body_error(r, &e, "application/SOAP+xml"),
        };
        let Some(method) = doc
            .root
            .elements()
            .find(|e| &*e.local == "Body")
            .and_then(|b| b.elements().next())
        else {
            return reply::warn(r, 400, "Bad Request", "SOAP envelope without a method");
        };
        let uid = match self.ensure_user(now, &req.user) {
            Ok(u) => u,
            Err(e) => return reply::store_failed(r, &e),
        };
        let max = self.config.max_contacts as usize;
        let name = method.local.to_string();
        let result = match name.as_str() {
            "setContact" => {
                let uri = field(method, "URI");
                let display = field(method, "displayName");
                let groups = field(method, "groups").unwrap_or_default();
                let subscribed = field(method, "subscribed").is_none_or(|s| s.trim() != "false");
                match uri {
                    None => Err(ContactError::Missing("URI")),
                    Some(uri) => match contact_uri(&uri) {
                        None => Err(ContactError::InvalidUri(uri)),
                        Some(uri) => self.change_contacts(now, uid, |list| {
                            let ids = group_ids(list, &groups);
                            list.upsert_contact(&uri, display.as_deref(), ids, subscribed, max)?;
                            Ok(None)
                        }),
                    },
                }
            }
            "deleteContact" => match field(method, "URI").and_then(|u| contact_uri(&u)) {
                None => Err(ContactError::Missing("URI")),
                Some(uri) => self.change_contacts(now, uid, |list| {
                    list.remove_contact(&uri);
                    Ok(None)
                }),
            },
            "addGroup" => {
                let gname = field(method, "name").unwrap_or_default();
                self.change_contacts(now, uid, |list| {
                    let id = (2..=GroupId::MAX.value())
                        .filter_map(GroupId::new)
                        .find(|id| !list.groups.iter().any(|g| g.id == *id))
                        .ok_or(ContactError::Limit)?;
                    list.groups.push(Group {
                        id,
                        name: cut(&gname),
                        external: String::new(),
                    });
                    Ok(Some(add_group_response(id)))
                })
            }
            "modifyGroup" => {
                let id = field(method, "groupID").and_then(|g| parse_group(&g));
                let gname = field(method, "name").unwrap_or_default();
                match id {
                    None => Err(ContactError::Missing("groupID")),
                    Some(id) => self.change_contacts(now, uid, |list| {
                        let g = list
                            .groups
                            .iter_mut()
                            .find(|g| g.id == id)
                            .ok_or(ContactError::Group(id.value()))?;
                        g.name = cut(&gname);
                        Ok(None)
                    }),
                }
            }
            "deleteGroup" => match field(method, "groupID").and_then(|g| parse_group(&g)) {
                None => Err(ContactError::Missing("groupID")),
                Some(id) if id == GroupId::DEFAULT => Err(ContactError::Group(id.value())),
                Some(id) => self.change_contacts(now, uid, |list| {
                    if !list.groups.iter().any(|g| g.id == id) {
                        return Err(ContactError::Group(id.value()));
                    }
                    list.groups.retain(|g| g.id != id);
                    for c in &mut list.contacts {
                        c.groups.retain(|g| *g != id);
                        if c.groups.is_empty() {
                            c.groups.push(GroupId::DEFAULT);
                        }
                    }
                    Ok(None)
                }),
            },
            // OCS 2005 presence and ACL methods: accepted so legacy clients proceed; herald
            // takes presence from category publications and PIDF only.
            "setPresence" | "setACE" => Ok(None),
            _ => return reply::warn(r, 501, "Not Implemented", "unknown SOAP method"),
        };
        match result {
            Ok(None) => reply::simple(r, 200, "OK"),
            Ok(Some(body)) => {
                plain(Response::for_request(r, 200, "OK").body("application/SOAP+xml", body))
            }
            Err(ContactError::Store(e)) => reply::store_failed(r, &e),
            Err(ContactError::Limit) => reply::quota_exceeded(r, "contact list full"),
            Err(e) => reply::warn(r, 400, "Bad Request", &e.to_string()),
        }
    }

    /// Applies `f` to a copy of the list, bumps `deltaNum`, saves, then installs the copy and
    /// notifies the roaming-contacts subscriptions. On any error nothing changes.
    fn change_contacts(
        &mut self,
        now: Instant,
        uid: UserId,
        f: impl FnOnce(&mut ContactList) -> Result<Option<Bytes>, ContactError>,
    ) -> Result<Option<Bytes>, ContactError> {
        let mut list = self.contacts_of(uid)?.clone();
        let out = f(&mut list)?;
        list.bump_delta();
        let aor = self.user(uid).aor.clone();
        self.store.save_contact_list(&aor, &list)?;
        let body = list.render();
        self.user_mut(uid).contacts = Some(list);
        self.notify_own(now, uid, SubKind::RoamingContacts, 0, |_, _| {
            (
                crate::categories::roaming::CONTACTS_CONTENT_TYPE.to_owned(),
                body,
            )
        });
        Ok(out)
    }
}

/// The text of the child element `name` (any namespace, as SIPE writes `m:` prefixes).
fn field(method: &Element, name: &str) -> Option<String> {
    method
        .elements()
        .find(|e| &*e.local == name)
        .map(|e| e.text().trim().to_owned())
}

/// `sip:user@domain` in lower case, if `uri` is an address.
fn contact_uri(uri: &str) -> Option<String> {
    let aor = Aor::parse(&strip_sip(uri).to_ascii_lowercase()).ok()?;
    Some(format!("sip:{}", aor.as_str()))
}

fn parse_group(s: &str) -> Option<GroupId> {
    s.trim().parse::<u8>().ok().and_then(GroupId::new)
}

/// The existing groups named in a space-separated list; the default group if none is.
fn group_ids(list: &ContactList, text: &str) -> Vec<GroupId> {
    let mut ids: Vec<GroupId> = text
        .split_ascii_whitespace()
        .filter_map(parse_group)
        .filter(|id| list.groups.iter().any(|g| g.id == *id))
        .collect();
    ids.dedup();
    if ids.is_empty() {
        ids.push(GroupId::DEFAULT);
    }
    ids
}

fn cut(s: &str) -> String {
    s.chars().take(256).collect()
}

/// The 200 body SIPE reads the new group's id from (`Body/addGroup/groupID`).
fn add_group_response(id: GroupId) -> Bytes {
    let mut w = XmlWriter::with_capacity(256);
    w.open("SOAP-ENV:Envelope")
        .attr(
            "xmlns:SOAP-ENV",
            "http://schemas.xmlsoap.org/soap/envelope/",
        )
        .gt();
    w.open("SOAP-ENV:Body").gt();
    w.open("m:addGroup")
        .attr("xmlns:m", "http://schemas.microsoft.com/winrtc/2002/11/sip")
        .gt();
    w.text_elem("m:groupID", &id.value().to_string());
    w.close("m:addGroup");
    w.close("SOAP-ENV:Body");
    w.close("SOAP-ENV:Envelope");
    w.into_bytes()
}
