//! The version-conflict fault answered with 409 (lync-exchange-facts §1.6).

use bytes::Bytes;

use super::parse_u32;
use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits};

/// The media type of the fault body.
pub const CONTENT_TYPE: &str = "application/msrtc-fault+xml";
/// The fault code of a stale version.
pub const WRONG_DELTA: &str = "Client.BadCall.WrongDelta";

/// A `Client.BadCall.WrongDelta` fault: which operations of a publication (or container
/// update) carried a stale version, and the current ones, so the client can republish at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrongDelta {
    /// The failing operations.
    pub operations: Vec<FaultOperation>,
}

/// `<operation index version curVersion/>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultOperation {
    /// 1-based index of the operation in the request.
    pub index: u32,
    /// The version the client sent.
    pub version: Option<u32>,
    /// The server's current version.
    pub cur_version: u32,
}

impl WrongDelta {
    /// Renders `<Fault><Faultcode>Client.BadCall.WrongDelta</Faultcode><details>...`.
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(160);
        w.open("Fault").gt();
        w.text_elem("Faultcode", WRONG_DELTA);
        w.open("details").gt();
        for op in &self.operations {
            w.open("operation").attr_num("index", op.index);
            if let Some(v) = op.version {
                w.attr_num("version", v);
            }
            w.attr_num("curVersion", op.cur_version);
            w.slash_gt();
        }
        w.close("details");
        w.close("Fault");
        w.into_bytes()
    }

    /// Parses a fault body; a fault with another code is [`BodyError::Unsupported`].
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = &doc.root;
        if &*root.local != "Fault" {
            return Err(BodyError::UnexpectedRoot {
                expected: "Fault",
                found: root.expanded_name(),
            });
        }
        let named = |el: &'_ xml::Element, n: &str| &*el.local == n;
        let code = root
            .elements()
            .find(|e| named(e, "Faultcode"))
            .map(|e| e.text())
            .ok_or(BodyError::MissingElement {
                parent: "Fault",
                child: "Faultcode",
            })?;
        if code.trim() != WRONG_DELTA {
            return Err(BodyError::Unsupported {
                what: "fault code",
                value: code,
            });
        }
        let mut f = Self::default();
        for details in root.elements().filter(|e| named(e, "details")) {
            for op in details.elements().filter(|e| named(e, "operation")) {
                f.operations.push(FaultOperation {
                    index: parse_u32("index", op.req_attr("operation", "index")?)?,
                    version: op
                        .attr("version")
                        .map(|v| parse_u32("version", v))
                        .transpose()?,
                    cur_version: parse_u32("curVersion", op.req_attr("operation", "curVersion")?)?,
                });
            }
        }
        Ok(f)
    }
}
