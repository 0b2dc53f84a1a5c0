//! RFC 3858 watcher information (`application/watcherinfo+xml`): who watches a presentity,
//! for the presence.winfo subscription (RFC 3857) a user makes to manage its watchers.

use bytes::Bytes;

use crate::categories::parse_u32;
use crate::xml::{self, XmlWriter};
use crate::{BodyError, Limits};

/// `urn:ietf:params:xml:ns:watcherinfo`.
pub const NS_WATCHERINFO: &str = "urn:ietf:params:xml:ns:watcherinfo";
/// The media type.
pub const CONTENT_TYPE: &str = "application/watcherinfo+xml";

/// `<watcherinfo version state>` (RFC 3858 §3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatcherInfo {
    /// Starts at 0 and increases by one per notification of the winfo subscription (§4).
    pub version: u32,
    /// Full state (`full`) replaces the subscriber's tables; partial updates them.
    pub full: bool,
    /// One list per watched resource and package.
    pub lists: Vec<WatcherList>,
}

/// `<watcher-list resource package>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatcherList {
    /// The watched resource.
    pub resource: String,
    /// The event package (`presence`).
    pub package: String,
    /// The watchers.
    pub watchers: Vec<Watcher>,
}

/// `<watcher id status event ...>uri</watcher>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watcher {
    /// The watcher's (authenticated) URI.
    pub uri: String,
    /// Unique per subscription within the winfo subscription (a token).
    pub id: String,
    /// The subscription's status.
    pub status: WatcherStatus,
    /// What caused the status.
    pub event: WatcherEvent,
    /// `display-name`.
    pub display_name: Option<String>,
    /// `expiration`: seconds until the subscription expires.
    pub expiration: Option<u64>,
    /// `duration-subscribed`: seconds since it was created.
    pub duration_subscribed: Option<u64>,
}

/// `status` (RFC 3857 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // RFC 3857's state names
pub enum WatcherStatus {
    Pending,
    Active,
    Waiting,
    Terminated,
}

/// `event` (RFC 3857 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // RFC 3857's event names
pub enum WatcherEvent {
    Subscribe,
    Approved,
    Deactivated,
    Probation,
    Rejected,
    Timeout,
    Giveup,
    Noresource,
}

impl WatcherStatus {
    const ALL: [Self; 4] = [Self::Pending, Self::Active, Self::Waiting, Self::Terminated];

    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Waiting => "waiting",
            Self::Terminated => "terminated",
        }
    }
}

impl WatcherEvent {
    const ALL: [Self; 8] = [
        Self::Subscribe,
        Self::Approved,
        Self::Deactivated,
        Self::Probation,
        Self::Rejected,
        Self::Timeout,
        Self::Giveup,
        Self::Noresource,
    ];

    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Approved => "approved",
            Self::Deactivated => "deactivated",
            Self::Probation => "probation",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Giveup => "giveup",
            Self::Noresource => "noresource",
        }
    }
}

impl WatcherInfo {
    /// Renders the document.
    pub fn render(&self) -> Bytes {
        let mut w = XmlWriter::with_capacity(
            256 + 160 * self.lists.iter().map(|l| l.watchers.len()).sum::<usize>(),
        );
        w.decl();
        w.open("watcherinfo")
            .attr("xmlns", NS_WATCHERINFO)
            .attr_num("version", self.version)
            .attr("state", if self.full { "full" } else { "partial" })
            .gt();
        for l in &self.lists {
            w.open("watcher-list")
                .attr("resource", &l.resource)
                .attr("package", &l.package)
                .gt();
            for wt in &l.watchers {
                w.open("watcher")
                    .attr("status", wt.status.as_str())
                    .attr("id", &wt.id)
                    .attr("event", wt.event.as_str())
                    .attr_opt("display-name", wt.display_name.as_deref());
                if let Some(e) = wt.expiration {
                    w.attr_num("expiration", e);
                }
                if let Some(d) = wt.duration_subscribed {
                    w.attr_num("duration-subscribed", d);
                }
                w.gt();
                w.text(&wt.uri);
                w.close("watcher");
            }
            w.close("watcher-list");
        }
        w.close("watcherinfo");
        w.into_bytes()
    }

    /// Parses a document.
    pub fn parse(body: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let doc = xml::parse(body, limits)?;
        let root = doc.root(
            NS_WATCHERINFO,
            "watcherinfo",
            "{urn:ietf:params:xml:ns:watcherinfo}watcherinfo",
        )?;
        let full = match root.req_attr("watcherinfo", "state")?.trim() {
            "full" => true,
            "partial" => false,
            other => return Err(BodyError::invalid("watcherinfo state", other)),
        };
        let mut info = Self {
            version: parse_u32("version", root.req_attr("watcherinfo", "version")?)?,
            full,
            lists: Vec::new(),
        };
        for l in root
            .elements()
            .filter(|e| e.is(NS_WATCHERINFO, "watcher-list"))
        {
            let mut list = WatcherList {
                resource: l.req_attr("watcher-list", "resource")?.trim().to_owned(),
                package: l.req_attr("watcher-list", "package")?.trim().to_owned(),
                watchers: Vec::new(),
            };
            for wt in l.elements().filter(|e| e.is(NS_WATCHERINFO, "watcher")) {
                let status = wt.req_attr("watcher", "status")?.trim();
                let event = wt.req_attr("watcher", "event")?.trim();
                let num = |name: &'static str| {
                    wt.attr(name)
                        .map(|v| {
                            v.trim()
                                .parse::<u64>()
                                .map_err(|_| BodyError::invalid(name, v))
                        })
                        .transpose()
                };
                list.watchers.push(Watcher {
                    uri: wt.text().trim().to_owned(),
                    id: wt.req_attr("watcher", "id")?.to_owned(),
                    status: WatcherStatus::ALL
                        .into_iter()
                        .find(|s| s.as_str() == status)
                        .ok_or_else(|| BodyError::invalid("watcher status", status))?,
                    event: WatcherEvent::ALL
                        .into_iter()
                        .find(|e| e.as_str() == event)
                        .ok_or_else(|| BodyError::invalid("watcher event", event))?,
                    display_name: wt.attr("display-name").map(str::to_owned),
                    expiration: num("expiration")?,
                    duration_subscribed: num("duration-subscribed")?,
                });
            }
            info.lists.push(list);
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn rfc3858_section_5_example_parses_and_round_trips() {
        let w = WatcherInfo::parse(&fixture("rfc3858_5.xml"), &Limits::DEFAULT).expect("parses");
        assert_eq!((w.version, w.full), (0, true));
        let l = &w.lists[0];
        assert_eq!(
            (l.resource.as_str(), l.package.as_str()),
            ("sip:professor@example.net", "presence")
        );
        assert_eq!(
            l.watchers[0],
            Watcher {
                uri: "sip:userA@example.net".into(),
                id: "8ajksjda7s".into(),
                status: WatcherStatus::Active,
                event: WatcherEvent::Approved,
                display_name: None,
                expiration: None,
                duration_subscribed: Some(509),
            }
        );
        assert_eq!(
            l.watchers[1].display_name.as_deref(),
            Some("Mr. Subscriber")
        );
        assert_eq!(l.watchers[1].status, WatcherStatus::Pending);
        assert_eq!(
            WatcherInfo::parse(&w.render(), &Limits::DEFAULT).expect("round trip"),
            w
        );
    }

    #[test]
    fn every_status_and_event_round_trips() {
        let mut list = WatcherList {
            resource: "sip:a@x".into(),
            package: "presence".into(),
            watchers: vec![],
        };
        for (i, s) in WatcherStatus::ALL.into_iter().enumerate() {
            for (j, e) in WatcherEvent::ALL.into_iter().enumerate() {
                list.watchers.push(Watcher {
                    uri: format!("sip:w{i}{j}@x"),
                    id: format!("id{i}-{j}"),
                    status: s,
                    event: e,
                    display_name: Some("W & co".into()),
                    expiration: Some(60),
                    duration_subscribed: None,
                });
            }
        }
        let w = WatcherInfo {
            version: 4,
            full: false,
            lists: vec![list],
        };
        assert_eq!(
            WatcherInfo::parse(&w.render(), &Limits::DEFAULT).expect("round trip"),
            w
        );
        let bad = br#"<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full"><watcher-list resource="r" package="p"><watcher id="1" status="sleepy" event="subscribe">u</watcher></watcher-list></watcherinfo>"#;
        assert!(WatcherInfo::parse(bad, &Limits::DEFAULT).is_err());
    }
}
