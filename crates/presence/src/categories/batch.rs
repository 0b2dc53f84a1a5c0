//! The batched category SUBSCRIBE body, `application/msrtc-adrl-categorylist+xml`
//! (lync-exchange-facts §1.7, sipe-client §3.4).

use bytes::Bytes;

use super::{CategoryName, CategorySet};
use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits, XmlFragment};

/// `http://schemas.microsoft.com/2006/01/sip/batch-subscribe`.
pub const NS_BATCH_SUBSCRIBE: &str = "http://schemas.microsoft.com/2006/01/sip/batch-subscribe";
/// `http://schemas.microsoft.com/2006/09/sip/categorylist`.
pub const NS_CATEGORY_LIST: &str = "http://schemas.microsoft.com/2006/09/sip/categorylist";
/// The media type of the SUBSCRIBE body.
pub const CONTENT_TYPE: &str = "application/msrtc-adrl-categorylist+xml";

/// `<batchSub uri name>`: one dialog's worth of presentities and the categories wanted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchSubscribe {
    /// `uri`: the subscriber.
    pub uri: String,
    /// `name` (usually empty).
    pub name: String,
    /// The actions.
    pub actions: Vec<BatchAction>,
}

/// `<action name id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchAction {
    /// Subscribe or unsubscribe.
    pub kind: BatchActionKind,
    /// `id`.
    pub id: String,
    /// `adhocList/resource`s.
    pub resources: Vec<BatchResource>,
    /// `categoryList/category@name`s, in order.
    pub categories: Vec<CategoryName>,
}

impl BatchAction {
    /// The categories as a set (for the render-cache key).
    pub fn category_set(&self) -> CategorySet {
        self.categories.iter().cloned().collect()
    }
}

/// `name` of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchActionKind {
    /// `subscribe`.
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
}

/// `<resource uri>` with its optional `<context>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchResource {
    /// The presentity.
    pub uri: String,
    /// `<context>` (e.g. a subscription context saying the watcher has the resource on its
    /// contact list), kept verbatim.
    pub context: Option<XmlFragment>,
}

impl BatchSubscribe {
    /// Parses the body.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_BATCH_SUBSCRIBE,
            "batchSub",
            "{http://schemas.microsoft.com/2006/01/sip/batch-subscribe}batchSub",
        )?;
        let mut out = Self {
            uri: root.req_attr("batchSub", "uri")?.trim().to_owned(),
            name: root.attr("name").unwrap_or_default().to_owned(),
            actions: Vec::new(),
        };
        for a in root
            .elements()
            .filter(|e| e.is(NS_BATCH_SUBSCRIBE, "action"))
        {
            let kind = match a.req_attr("action", "name")? {
                "subscribe" => BatchActionKind::Subscribe,
                "unsubscribe" => BatchActionKind::Unsubscribe,
                other => return Err(BodyError::invalid("batch action", other)),
            };
            let mut action = BatchAction {
                kind,
                id: a.attr("id").unwrap_or_default().to_owned(),
                resources: Vec::new(),
                categories: Vec::new(),
            };
            for list in a.elements() {
                if list.is(NS_BATCH_SUBSCRIBE, "adhocList") {
                    for r in list
                        .elements()
                        .filter(|e| e.is(NS_BATCH_SUBSCRIBE, "resource"))
                    {
                        action.resources.push(BatchResource {
                            uri: r.req_attr("resource", "uri")?.trim().to_owned(),
                            context: r
                                .elements()
                                .find(|e| e.is(NS_BATCH_SUBSCRIBE, "context"))
                                .map(|c| doc.fragment(c)),
                        });
                    }
                } else if list.is(NS_CATEGORY_LIST, "categoryList") {
                    for c in list
                        .elements()
                        .filter(|e| e.is(NS_CATEGORY_LIST, "category"))
                    {
                        action
                            .categories
                            .push(CategoryName::parse(c.req_attr("category", "name")?)?);
                    }
                }
            }
            out.actions.push(action);
        }
        Ok(out)
    }

    /// Renders the body (what SIPE sends; for tests and the load generator).
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(
            256 + 48
                * self
                    .actions
                    .iter()
                    .map(|a| a.resources.len())
                    .sum::<usize>(),
        );
        w.open("batchSub")
            .attr("xmlns", NS_BATCH_SUBSCRIBE)
            .attr("uri", &self.uri)
            .attr("name", &self.name)
            .gt();
        for a in &self.actions {
            let name = match a.kind {
                BatchActionKind::Subscribe => "subscribe",
                BatchActionKind::Unsubscribe => "unsubscribe",
            };
            w.open("action").attr("name", name).attr("id", &a.id).gt();
            w.open("adhocList").gt();
            for r in &a.resources {
                w.open("resource").attr("uri", &r.uri);
                match &r.context {
                    Some(c) => {
                        w.gt();
                        w.raw(c.as_str());
                        w.close("resource");
                    }
                    None => w.slash_gt(),
                }
            }
            w.close("adhocList");
            w.open("categoryList").attr("xmlns", NS_CATEGORY_LIST).gt();
            for c in &a.categories {
                w.open("category").attr("name", c.as_str());
                w.slash_gt();
            }
            w.close("categoryList");
            w.close("action");
        }
        w.close("batchSub");
        w.into_bytes()
    }
}
