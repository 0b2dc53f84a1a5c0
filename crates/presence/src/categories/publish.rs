//! The SERVICE publication body, `application/msrtc-category-publish+xml`
//! (lync-exchange-facts §1.6, sipe-client §3.6).

use bytes::Bytes;

use super::{CategoryName, CategoryValue, ExpireType, parse_u32, parse_value};
use crate::containers::ContainerId;
use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits};

/// `http://schemas.microsoft.com/2006/09/sip/rich-presence`.
pub const NS_RICH_PRESENCE: &str = "http://schemas.microsoft.com/2006/09/sip/rich-presence";
/// The media type of a publication SERVICE body.
pub const CONTENT_TYPE: &str = "application/msrtc-category-publish+xml";

/// A publication request: the publisher's URI and the operations, in order (a 409 names the
/// failing operation by its 1-based index).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// `publications/@uri`: must be the publisher's own address.
    pub uri: String,
    /// The operations.
    pub ops: Vec<PublishOp>,
}

/// One operation of a [`PublishRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishOp {
    /// `<publication>`: add or replace an instance (or delete it, see
    /// [`Publication::is_deletion`]).
    Publish(Publication),
    /// `<removePublication>`.
    Remove(Removal),
}

/// `<publication categoryName instance container version expireType expires>value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// `categoryName`.
    pub category: CategoryName,
    /// `instance`.
    pub instance: u32,
    /// `container`.
    pub container: ContainerId,
    /// `version`: the version the client believes current (409 WrongDelta if stale).
    pub version: u32,
    /// `expireType` (default `endpoint`).
    pub expire_type: ExpireType,
    /// `expires` seconds (for `time`).
    pub expires: Option<u32>,
    /// The value.
    pub value: CategoryValue,
}

impl Publication {
    /// Lync deletes an instance by publishing it with `expireType="time" expires="0"` and no
    /// value.
    pub fn is_deletion(&self) -> bool {
        self.expire_type == ExpireType::Time && self.expires == Some(0)
    }
}

/// `<removePublication categoryName instance container version expireType/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// `categoryName`.
    pub category: CategoryName,
    /// `instance`.
    pub instance: u32,
    /// `container`.
    pub container: ContainerId,
    /// `version`, if given.
    pub version: Option<u32>,
    /// `expireType`, if given.
    pub expire_type: Option<ExpireType>,
}

impl PublishRequest {
    /// Parses a publication body.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_RICH_PRESENCE,
            "publish",
            "{http://schemas.microsoft.com/2006/09/sip/rich-presence}publish",
        )?;
        let pubs = root
            .elements()
            .find(|e| e.is(NS_RICH_PRESENCE, "publications"))
            .ok_or(BodyError::MissingElement {
                parent: "publish",
                child: "publications",
            })?;
        let mut req = Self {
            uri: pubs.req_attr("publications", "uri")?.trim().to_owned(),
            ops: Vec::new(),
        };
        for el in pubs.elements() {
            let attr = |name| el.req_attr("publication", name);
            if el.is(NS_RICH_PRESENCE, "publication") {
                let category = CategoryName::parse(attr("categoryName")?)?;
                let value = parse_value(&doc, el, &category)?;
                req.ops.push(PublishOp::Publish(Publication {
                    instance: parse_u32("instance", attr("instance")?)?,
                    container: ContainerId::parse(attr("container")?)?,
                    version: el
                        .attr("version")
                        .map(|v| parse_u32("version", v))
                        .transpose()?
                        .unwrap_or(0),
                    expire_type: el
                        .attr("expireType")
                        .map(ExpireType::parse)
                        .transpose()?
                        .unwrap_or_default(),
                    expires: el
                        .attr("expires")
                        .map(|v| parse_u32("expires", v))
                        .transpose()?,
                    category,
                    value,
                }));
            } else if el.is(NS_RICH_PRESENCE, "removePublication") {
                let attr = |name| el.req_attr("removePublication", name);
                req.ops.push(PublishOp::Remove(Removal {
                    category: CategoryName::parse(attr("categoryName")?)?,
                    instance: parse_u32("instance", attr("instance")?)?,
                    container: ContainerId::parse(attr("container")?)?,
                    version: el
                        .attr("version")
                        .map(|v| parse_u32("version", v))
                        .transpose()?,
                    expire_type: el.attr("expireType").map(ExpireType::parse).transpose()?,
                }));
            }
        }
        Ok(req)
    }

    /// Renders the body (what a Lync client sends; for tests and the load generator).
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(512);
        w.open("publish").attr("xmlns", NS_RICH_PRESENCE).gt();
        w.open("publications").attr("uri", &self.uri).gt();
        for op in &self.ops {
            match op {
                PublishOp::Publish(p) => {
                    w.open("publication")
                        .attr("categoryName", p.category.as_str())
                        .attr_num("instance", p.instance)
                        .attr_num("container", p.container.value())
                        .attr_num("version", p.version)
                        .attr("expireType", p.expire_type.as_str());
                    if let Some(e) = p.expires {
                        w.attr_num("expires", e);
                    }
                    match &p.value {
                        CategoryValue::Empty => w.slash_gt(),
                        CategoryValue::State(s) => {
                            w.gt();
                            s.write(&mut w);
                            w.close("publication");
                        }
                        CategoryValue::Opaque(f) => {
                            w.gt();
                            w.raw(f.as_str());
                            w.close("publication");
                        }
                    }
                }
                PublishOp::Remove(r) => {
                    w.open("removePublication")
                        .attr("categoryName", r.category.as_str())
                        .attr_num("instance", r.instance)
                        .attr_num("container", r.container.value());
                    if let Some(v) = r.version {
                        w.attr_num("version", v);
                    }
                    if let Some(e) = r.expire_type {
                        w.attr("expireType", e.as_str());
                    }
                    w.slash_gt();
                }
            }
        }
        w.close("publications");
        w.close("publish");
        w.into_bytes()
    }
}
