//! `setContainerMembers`, the SERVICE body that edits container membership
//! (lync-exchange-facts §1.5, sipe-client §3.6).

use bytes::Bytes;

use super::parse_u32;
use crate::containers::{ContainerId, Member};
use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits};

/// `http://schemas.microsoft.com/2006/09/sip/container-management`.
pub const NS_CONTAINER_MANAGEMENT: &str =
    "http://schemas.microsoft.com/2006/09/sip/container-management";
/// The media type of the SERVICE body.
pub const CONTENT_TYPE: &str = "application/msrtc-setcontainermembers+xml";

/// A membership update of one or more containers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetContainerMembers {
    /// One entry per `<container>`.
    pub containers: Vec<ContainerUpdate>,
}

/// `<container id version>` with member changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUpdate {
    /// `id`.
    pub id: ContainerId,
    /// `version` the client believes current (409 WrongDelta if stale).
    pub version: u32,
    /// The changes, in order.
    pub changes: Vec<MemberChange>,
}

/// `<member action type value/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberChange {
    /// Add or remove.
    pub action: MemberAction,
    /// Who.
    pub member: Member,
}

/// `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberAction {
    /// `add`.
    Add,
    /// `remove`.
    Remove,
}

impl SetContainerMembers {
    /// Parses the body.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_CONTAINER_MANAGEMENT,
            "setContainerMembers",
            "{http://schemas.microsoft.com/2006/09/sip/container-management}setContainerMembers",
        )?;
        let mut out = Self::default();
        for c in root
            .elements()
            .filter(|e| e.is(NS_CONTAINER_MANAGEMENT, "container"))
        {
            let mut u = ContainerUpdate {
                id: ContainerId::parse(c.req_attr("container", "id")?)?,
                version: c
                    .attr("version")
                    .map(|v| parse_u32("version", v))
                    .transpose()?
                    .unwrap_or(0),
                changes: Vec::new(),
            };
            for m in c
                .elements()
                .filter(|e| e.is(NS_CONTAINER_MANAGEMENT, "member"))
            {
                let action = match m.req_attr("member", "action")? {
                    "add" => MemberAction::Add,
                    "remove" => MemberAction::Remove,
                    other => return Err(BodyError::invalid("member action", other)),
                };
                u.changes.push(MemberChange {
                    action,
                    member: Member::parse(m.req_attr("member", "type")?, m.attr("value"))?,
                });
            }
            out.containers.push(u);
        }
        Ok(out)
    }

    /// Renders the body (what SIPE sends; for tests and the load generator).
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(256);
        w.open("setContainerMembers")
            .attr("xmlns", NS_CONTAINER_MANAGEMENT)
            .gt();
        for c in &self.containers {
            w.open("container")
                .attr_num("id", c.id.value())
                .attr_num("version", c.version)
                .gt();
            for ch in &c.changes {
                w.open("member")
                    .attr(
                        "action",
                        match ch.action {
                            MemberAction::Add => "add",
                            MemberAction::Remove => "remove",
                        },
                    )
                    .attr("type", ch.member.kind())
                    .attr_opt("value", ch.member.value());
                w.slash_gt();
            }
            w.close("container");
        }
        w.close("setContainerMembers");
        w.into_bytes()
    }
}
