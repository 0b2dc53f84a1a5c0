//! Render once, send many (DESIGN §4): body formats, the render-cache key, and rendering one
//! presentity's view from the engine's store.
//!
//! A change of a person's presence is rendered once per (access level, format) and the same
//! [`Bytes`] go into every watcher's NOTIFY (or RLMI part). The engine keeps a cache keyed by
//! [`RenderKey`]; the `version` in the key is the presentity's publication version, so a new
//! publication makes old entries unreachable without any invalidation walk.

use std::sync::Arc;

use bytes::Bytes;

use crate::availability::{Availability, StateType};
use crate::categories::{
    CategoryInstance, CategoryName, CategorySet, CategoryValue, State, instance, note_body,
    render_categories, render_categories_remote,
};
use crate::containers::{AccessLevel, ContainerId};
use crate::pidf::{self, Summary};
use crate::{BodyError, Limits, Timestamp};

/// The body format a watcher asked for (from its Accept header and subscription body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyFormat {
    /// `application/msrtc-event-categories+xml` with the subscribed categories.
    Categories(CategorySet),
    /// `application/pidf+xml`.
    Pidf,
}

impl BodyFormat {
    /// The Content-Type of a body in this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Categories(_) => crate::categories::CONTENT_TYPE,
            Self::Pidf => pidf::CONTENT_TYPE,
        }
    }
}

/// The render-cache key: one rendered body per distinct key, shared by every watcher with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RenderKey {
    /// The presentity (interned by the engine, so cloning is a reference-count bump).
    pub presentity: Arc<str>,
    /// The watcher's view.
    pub view: AccessLevel,
    /// The body format.
    pub format: BodyFormat,
    /// The presentity's publication version the body was rendered from.
    pub version: u64,
}

/// What one presentity looks like at one version, borrowed from the engine's store.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// The presentity's URI (`sip:`, lower case).
    pub uri: &'a str,
    /// Every current category instance, each with its container (instances without one are
    /// shown to the owner only).
    pub instances: &'a [CategoryInstance],
    /// The contact address PIDF tuples carry, if the server discloses one.
    pub contact: Option<&'a str>,
    /// When this version was produced; stamps what the renderer synthesises (the Blocked
    /// view's Offline state, the PIDF timestamp).
    pub time: Timestamp,
}

/// Renders `snapshot` as `view` sees it, in `format`:
///
/// - **Owner**: every instance of the subscribed categories, with container, version and
///   expiry type (roaming self, self subscription).
/// - **Blocked**: `aggregateState` 18500 (instance 0) and an empty instance for every other
///   subscribed category the person has published, so a client drops what it knew.
/// - **Others**: the instances in the view's container whose category is both subscribed and
///   exposed at that level ([`AccessLevel::exposed_categories`]), without container ids.
/// - **PIDF**: [`view_summary`] written by [`pidf::from_summary`].
pub fn render_view(snapshot: &Snapshot<'_>, view: AccessLevel, format: BodyFormat) -> Bytes {
    match format {
        BodyFormat::Pidf => {
            let summary = view_summary(snapshot, view);
            pidf::from_summary(
                snapshot.uri,
                &summary,
                snapshot.contact,
                Some(snapshot.time),
            )
            .render()
        }
        BodyFormat::Categories(subscribed) => {
            let wanted = subscribed.intersection(view.exposed_categories());
            match view {
                AccessLevel::Owner => render_categories(
                    snapshot.uri,
                    snapshot
                        .instances
                        .iter()
                        .filter(|i| wanted.contains(&i.name)),
                ),
                AccessLevel::Blocked => {
                    let mut out = vec![CategoryInstance {
                        name: CategoryName::State,
                        instance: instance::AGGREGATE_STATIC,
                        publish_time: Some(snapshot.time),
                        container: None,
                        version: None,
                        expire_type: None,
                        value: CategoryValue::State(State::new(
                            StateType::AggregateState,
                            Availability::OFFLINE,
                        )),
                    }];
                    for i in snapshot.instances {
                        let seen = out
                            .iter()
                            .any(|o| o.name == i.name && o.instance == i.instance);
                        if subscribed.contains(&i.name) && i.name != CategoryName::State && !seen {
                            out.push(CategoryInstance {
                                name: i.name.clone(),
                                instance: i.instance,
                                publish_time: Some(snapshot.time),
                                container: None,
                                version: None,
                                expire_type: None,
                                value: CategoryValue::Empty,
                            });
                        }
                    }
                    render_categories(snapshot.uri, &out)
                }
                level => render_categories_remote(
                    snapshot.uri,
                    snapshot.instances.iter().filter(|i| {
                        i.container.is_some_and(|c| level.sees(c)) && wanted.contains(&i.name)
                    }),
                ),
            }
        }
    }
}

/// The person's state as `view` sees it, in the terms PIDF is written from: the aggregate
/// state in the view's container (instance 1 preferred; the owner reads the Company
/// container, what colleagues see) and the personal note there. Blocked watchers and watchers
/// in no container get Offline and no note.
pub fn view_summary(snapshot: &Snapshot<'_>, view: AccessLevel) -> Summary {
    let offline = Summary {
        availability: Availability::OFFLINE,
        activity: None,
        note: None,
    };
    let container = match view {
        AccessLevel::Blocked | AccessLevel::Default => return offline,
        AccessLevel::Owner => ContainerId::COMPANY,
        level => level.container().unwrap_or(ContainerId::COMPANY),
    };
    let visible = |i: &&CategoryInstance| i.container == Some(container);
    let state = snapshot
        .instances
        .iter()
        .filter(visible)
        .filter_map(|i| match &i.value {
            CategoryValue::State(s)
                if s.kind == StateType::AggregateState && s.availability.is_some() =>
            {
                Some((i.instance != instance::AGGREGATE, s))
            }
            _ => None,
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, s)| s);
    let Some(state) = state else { return offline };
    let note = snapshot
        .instances
        .iter()
        .filter(visible)
        .filter(|i| i.name == CategoryName::Note)
        .filter_map(|i| match &i.value {
            CategoryValue::Opaque(f) => note_body(f).map(|(text, _)| text),
            _ => None,
        })
        .find(|t| !t.trim().is_empty());
    Summary {
        availability: state.availability.unwrap_or(Availability::OFFLINE),
        activity: state
            .activity
            .as_ref()
            .filter(|a| a.applies_at(state.availability.unwrap_or(Availability::OFFLINE)))
            .and_then(|a| a.token.clone()),
        note,
    }
}

/// A body parsed by its Content-Type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// `application/pidf+xml`.
    Pidf(pidf::Presence),
    /// `application/msrtc-category-publish+xml`.
    CategoryPublish(crate::categories::publish::PublishRequest),
    /// `application/msrtc-event-categories+xml`.
    Categories(crate::categories::Categories),
    /// `application/msrtc-adrl-categorylist+xml`.
    BatchSubscribe(crate::categories::batch::BatchSubscribe),
    /// `application/msrtc-setcontainermembers+xml`.
    SetContainerMembers(crate::categories::members::SetContainerMembers),
    /// `application/vnd-microsoft-roaming-self+xml` with a `roamingList` (SUBSCRIBE).
    RoamingList(crate::categories::roaming::RoamingList),
    /// `application/vnd-microsoft-roaming-self+xml` with `roamingData` (NOTIFY, publish 200).
    RoamingSelf(crate::categories::roaming::RoamingSelf),
    /// `application/vnd-microsoft-roaming-contacts+xml` with a full `contactList`.
    ContactList(crate::categories::roaming::ContactList),
    /// `application/vnd-microsoft-roaming-contacts+xml` with a `contactDelta`.
    ContactDelta(crate::categories::roaming::ContactDelta),
    /// `application/rlmi+xml`.
    Rlmi(crate::rlmi::List),
    /// `multipart/related` with an RLMI root.
    ResourceList(crate::rlmi::Notification),
    /// `application/watcherinfo+xml`.
    WatcherInfo(crate::watcherinfo::WatcherInfo),
    /// `application/msrtc-fault+xml` (WrongDelta).
    Fault(crate::categories::fault::WrongDelta),
}

/// Parses `body` by its Content-Type header value: one entry point for the engine's 400/415
/// decision and for fuzzing every parser. Unknown types are [`BodyError::Unsupported`] (415).
pub fn parse_body(content_type: &str, body: Bytes, limits: &Limits) -> Result<Body, BodyError> {
    use crate::categories::{batch, fault, members, publish, roaming};
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Ok(match media.as_str() {
        pidf::CONTENT_TYPE => Body::Pidf(pidf::Presence::parse(&body, limits)?),
        publish::CONTENT_TYPE => {
            Body::CategoryPublish(publish::PublishRequest::parse(&body, limits)?)
        }
        crate::categories::CONTENT_TYPE => {
            Body::Categories(crate::categories::Categories::parse(&body, limits)?)
        }
        batch::CONTENT_TYPE => Body::BatchSubscribe(batch::BatchSubscribe::parse(&body, limits)?),
        members::CONTENT_TYPE => {
            Body::SetContainerMembers(members::SetContainerMembers::parse(&body, limits)?)
        }
        // One media type, two documents each: the root element decides.
        roaming::SELF_CONTENT_TYPE => match roaming::RoamingList::parse(&body, limits) {
            Err(BodyError::UnexpectedRoot { .. }) => {
                Body::RoamingSelf(roaming::RoamingSelf::parse(&body, limits)?)
            }
            other => Body::RoamingList(other?),
        },
        roaming::CONTACTS_CONTENT_TYPE => match roaming::ContactList::parse(&body, limits) {
            Err(BodyError::UnexpectedRoot { .. }) => {
                Body::ContactDelta(roaming::ContactDelta::parse(&body, limits)?)
            }
            other => Body::ContactList(other?),
        },
        crate::rlmi::CONTENT_TYPE => Body::Rlmi(crate::rlmi::List::parse(&body, limits)?),
        "multipart/related" => {
            Body::ResourceList(crate::rlmi::parse_notification(content_type, body, limits)?)
        }
        crate::watcherinfo::CONTENT_TYPE => {
            Body::WatcherInfo(crate::watcherinfo::WatcherInfo::parse(&body, limits)?)
        }
        fault::CONTENT_TYPE => Body::Fault(fault::WrongDelta::parse(&body, limits)?),
        _ => {
            return Err(BodyError::Unsupported {
                what: "content type",
                value: media,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::{Activity, ActivityToken};
    use crate::categories::{ExpireType, personal_note};

    fn inst(
        name: CategoryName,
        instance: u32,
        container: ContainerId,
        value: CategoryValue,
    ) -> CategoryInstance {
        CategoryInstance {
            name,
            instance,
            publish_time: Some(Timestamp::from_unix_millis(1_700_000_000_000)),
            container: Some(container),
            version: Some(1),
            expire_type: Some(ExpireType::User),
            value,
        }
    }

    fn aggregate(a: Availability, token: Option<ActivityToken>) -> CategoryValue {
        let mut s = State::new(StateType::AggregateState, a);
        s.activity = token.map(Activity::token);
        CategoryValue::State(s)
    }

    /// A user in Do Not Disturb: colleagues see DND, the team sees urgent-interruptions-only
    /// (lync-exchange-facts §1.3 "DND handling").
    fn dnd_store() -> Vec<CategoryInstance> {
        let mut v = Vec::new();
        for c in [
            ContainerId::EXTERNAL,
            ContainerId::COMPANY,
            ContainerId::PERSONAL,
        ] {
            v.push(inst(
                CategoryName::State,
                instance::AGGREGATE,
                c,
                aggregate(Availability::DO_NOT_DISTURB, None),
            ));
        }
        v.push(inst(
            CategoryName::State,
            instance::AGGREGATE,
            ContainerId::TEAM,
            aggregate(
                Availability::URGENT_INTERRUPTIONS_ONLY,
                Some(ActivityToken::UrgentInterruptionsOnly),
            ),
        ));
        v.push(inst(
            CategoryName::State,
            instance::AGGREGATE_STATIC,
            ContainerId::BLOCKED,
            aggregate(Availability::OFFLINE, None),
        ));
        v.push(inst(
            CategoryName::Note,
            0,
            ContainerId::COMPANY,
            CategoryValue::Opaque(personal_note("Heads down")),
        ));
        v.push(inst(
            CategoryName::Note,
            0,
            ContainerId::EXTERNAL,
            CategoryValue::Opaque(personal_note("Heads down")),
        ));
        v.push(inst(
            CategoryName::State,
            instance::USER_STATIC,
            ContainerId::AGGREGATION,
            CategoryValue::State(State {
                manual: true,
                ..State::new(StateType::UserState, Availability::DO_NOT_DISTURB)
            }),
        ));
        v
    }

    fn snap(store: &[CategoryInstance]) -> Snapshot<'_> {
        Snapshot {
            uri: "sip:dana@example.test",
            instances: store,
            contact: None,
            time: Timestamp::from_unix_millis(1_700_000_001_000),
        }
    }

    fn text(b: &Bytes) -> String {
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    #[test]
    fn each_level_sees_only_its_container() {
        let store = dnd_store();
        let s = snap(&store);
        let all = BodyFormat::Categories(CategorySet::lync_default());
        let company = text(&render_view(&s, AccessLevel::Company, all));
        assert!(company.contains("<availability>9500</availability>"));
        assert!(company.contains("Heads down"));
        assert!(!company.contains("container="));
        assert!(!company.contains("userState"), "inputs stay in container 2");
        let team = text(&render_view(&s, AccessLevel::Team, all));
        assert!(team.contains(
            "<availability>6900</availability><activity token=\"urgent-interruptions-only\"/>"
        ));
        assert!(
            !team.contains("Heads down"),
            "no note was published into 300"
        );
        let external = text(&render_view(&s, AccessLevel::External, all));
        assert!(
            !external.contains("Heads down"),
            "External does not see notes by default"
        );
        let owner = text(&render_view(
            &s,
            AccessLevel::Owner,
            BodyFormat::Categories(CategorySet::ALL),
        ));
        assert!(owner.contains("container=\"2\"") && owner.contains("userState"));
        let nobody = text(&render_view(&s, AccessLevel::Default, all));
        assert!(!nobody.contains("<category"));
    }

    #[test]
    fn blocked_sees_offline_and_empty_instances() {
        let store = dnd_store();
        let blocked = text(&render_view(
            &snap(&store),
            AccessLevel::Blocked,
            BodyFormat::Categories(CategorySet::lync_default()),
        ));
        assert!(blocked.contains("<availability>18500</availability>"));
        assert!(!blocked.contains("9500"));
        assert!(blocked.contains(
            "<category name=\"note\" instance=\"0\" publishTime=\"2023-11-14T22:13:21Z\"/>"
        ));
        assert!(!blocked.contains("Heads down"));
        let pidf = text(&render_view(
            &snap(&store),
            AccessLevel::Blocked,
            BodyFormat::Pidf,
        ));
        assert!(pidf.contains("<basic>closed</basic>"));
    }

    #[test]
    fn subscription_categories_filter_the_view() {
        let store = dnd_store();
        let only_state = BodyFormat::Categories(CategorySet::of(&[CategoryName::State]));
        let t = text(&render_view(
            &snap(&store),
            AccessLevel::Company,
            only_state,
        ));
        assert!(t.contains("9500") && !t.contains("note"));
    }

    #[test]
    fn pidf_view_maps_the_aggregate() {
        let store = dnd_store();
        let s = snap(&store);
        let company = view_summary(&s, AccessLevel::Company);
        assert_eq!(company.availability, Availability::DO_NOT_DISTURB);
        assert_eq!(company.note.as_deref(), Some("Heads down"));
        let team = view_summary(&s, AccessLevel::Team);
        assert_eq!(team.activity, Some(ActivityToken::UrgentInterruptionsOnly));
        let body = render_view(&s, AccessLevel::Company, BodyFormat::Pidf);
        let back =
            pidf::to_summary(&pidf::Presence::parse(&body, &Limits::DEFAULT).expect("valid"));
        assert_eq!(back.availability, Availability::DO_NOT_DISTURB);
        assert_eq!(back.note.as_deref(), Some("Heads down"));
        assert_eq!(
            view_summary(&snap(&[]), AccessLevel::Company).availability,
            Availability::OFFLINE
        );
    }

    #[test]
    fn parse_body_dispatches_and_refuses_unknown_types() {
        let e =
            parse_body("text/plain", Bytes::from_static(b"hi"), &Limits::DEFAULT).expect_err("415");
        assert_eq!(e.status_code(), 415);
        let p = parse_body(
            "Application/PIDF+XML; charset=UTF-8",
            Bytes::from_static(b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:a@b'/>"),
            &Limits::DEFAULT,
        );
        assert!(matches!(p, Ok(Body::Pidf(_))));
        let ct = crate::categories::roaming::CONTACTS_CONTENT_TYPE;
        let delta = Bytes::from_static(b"<contactDelta deltaNum='2' prevDeltaNum='1'/>");
        assert!(matches!(
            parse_body(ct, delta, &Limits::DEFAULT),
            Ok(Body::ContactDelta(_))
        ));
        let full = Bytes::from_static(b"<contactList deltaNum='2'/>");
        assert!(matches!(
            parse_body(ct, full, &Limits::DEFAULT),
            Ok(Body::ContactList(_))
        ));
        let ct = crate::categories::roaming::SELF_CONTENT_TYPE;
        let data = Bytes::from_static(
            b"<roamingData xmlns='http://schemas.microsoft.com/2006/09/sip/roaming-self'/>",
        );
        assert!(matches!(
            parse_body(ct, data, &Limits::DEFAULT),
            Ok(Body::RoamingSelf(_))
        ));
        let key = RenderKey {
            presentity: Arc::from("sip:a@b"),
            view: AccessLevel::Company,
            format: BodyFormat::Pidf,
            version: 3,
        };
        assert_eq!(key.format.content_type(), "application/pidf+xml");
    }
}
