//! From what a user published to what watchers see: aggregation across endpoints and the
//! instances the server computes (lync-exchange-facts §1.3).
//!
//! Inputs are the `state` instances published into the aggregation containers (machine, user,
//! phone and calendar states; container 2 feeds the views 100/200/400, container 3 feeds 300,
//! falling back to container 2 when nothing was published there), every RFC 3903 publication
//! (read through the PIDF mapping: signed in with its idleness as a machine state, and a busy,
//! away, do-not-disturb or be-right-back as a manual user state, since a SIMPLE client only
//! publishes those when its user picks them), and every registered endpoint that has
//! published neither (counted as an Available machine: it is signed in). Outputs are an
//! `aggregateState` (instance 1) in 100, 200, 300 and 400, and in 2 for the owner's own view
//! while signed in (SIPE reads its own status from there); the directory identity as the
//! `contactCard` (instance 0) of 0, 100, 200, 300 and 400; and a PIDF note as the `note`
//! (instance 0) of 200, 300 and 400. A derived instance keeps its `publishTime` while its value
//! is unchanged, so recomputing without a change renders the same bytes and notifies nobody.

use std::time::Instant;

use super::Engine;
use super::state::{Published, UserId};
use super::store::Identity;
use crate::Timestamp;
use crate::XmlFragment;
use crate::aggregate::{
    ActivityInput, ActivitySource, Aggregate, DecidedBy, IdlePolicy, Inputs, MachineInput,
    UserInput, aggregate,
};
use crate::availability::{Availability, Band, StateType};
use crate::categories::{
    CategoryInstance, CategoryName, CategoryValue, State, instance, personal_note,
};
use crate::containers::ContainerId;
use crate::xml::XmlWriter;

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    /// Recomputes `uid`'s snapshot at `now`. Returns whether it changed (and then bumps the
    /// version and drops the render cache).
    pub(super) fn rebuild(&mut self, now: Instant, uid: UserId) -> bool {
        let wall = self.wall(now);
        let policy = self.config.idle;
        let user = self.user_mut(uid);
        user.published
            .retain(|p| p.expires_at.is_none_or(|t| t > now));
        user.pidf.retain(|p| p.expires_at > now);

        let was_online = user.availability.band().is_online();
        let main = compute(user, ContainerId::AGGREGATION, &policy, now);
        let has_team_inputs = user.published.iter().any(|p| {
            p.instance.container == Some(ContainerId::AGGREGATION_TEAM)
                && p.instance.name == CategoryName::State
        });
        let team = if has_team_inputs {
            compute(user, ContainerId::AGGREGATION_TEAM, &policy, now)
        } else {
            main.clone()
        };
        if was_online && main.decided_by == DecidedBy::NoEndpoint {
            user.last_seen = Some(wall);
        }

        let last_active = |agg: &Aggregate, last_seen: Option<Timestamp>| -> Option<Timestamp> {
            if agg.availability.band() < Band::Away {
                return None;
            }
            match agg.decided_by {
                DecidedBy::NoEndpoint => last_seen,
                DecidedBy::Machine(_) | DecidedBy::Activity(_) => {
                    agg.last_active.map(|t| to_wall(wall, now, t))
                }
                DecidedBy::User(_) => None,
            }
        };
        let mut derived = Vec::with_capacity(8);
        let main_state = aggregate_state(&main, last_active(&main, user.last_seen));
        let team_state = aggregate_state(&team, last_active(&team, user.last_seen));
        for c in [
            ContainerId::EXTERNAL,
            ContainerId::COMPANY,
            ContainerId::PERSONAL,
        ] {
            derived.push(derived_instance(
                CategoryName::State,
                instance::AGGREGATE,
                c,
                main_state.clone(),
            ));
        }
        derived.push(derived_instance(
            CategoryName::State,
            instance::AGGREGATE,
            ContainerId::TEAM,
            team_state,
        ));
        if main.decided_by != DecidedBy::NoEndpoint && main.availability.band() != Band::Offline {
            derived.push(derived_instance(
                CategoryName::State,
                instance::AGGREGATE,
                ContainerId::AGGREGATION,
                main_state,
            ));
        }
        if let Some(card) = &user.identity {
            for c in [
                ContainerId::DEFAULT,
                ContainerId::EXTERNAL,
                ContainerId::COMPANY,
                ContainerId::TEAM,
                ContainerId::PERSONAL,
            ] {
                if !published_in(&user.published, &CategoryName::ContactCard, c) {
                    derived.push(derived_instance(
                        CategoryName::ContactCard,
                        0,
                        c,
                        CategoryValue::Opaque(card.clone()),
                    ));
                }
            }
        }
        let pidf_note = user
            .pidf
            .iter()
            .max_by_key(|p| p.published_at)
            .and_then(|p| p.summary.note.as_deref())
            .filter(|n| !n.trim().is_empty())
            .map(personal_note);
        if let Some(note) = pidf_note {
            for c in [
                ContainerId::COMPANY,
                ContainerId::TEAM,
                ContainerId::PERSONAL,
            ] {
                if !published_in(&user.published, &CategoryName::Note, c) {
                    derived.push(derived_instance(
                        CategoryName::Note,
                        0,
                        c,
                        CategoryValue::Opaque(note.clone()),
                    ));
                }
            }
        }
        for d in &mut derived {
            d.publish_time = user
                .derived
                .iter()
                .find(|o| {
                    o.name == d.name
                        && o.instance == d.instance
                        && o.container == d.container
                        && o.value == d.value
                })
                .and_then(|o| o.publish_time)
                .or(Some(wall));
        }

        let mut snapshot: Vec<CategoryInstance> =
            Vec::with_capacity(user.published.len() + derived.len());
        snapshot.extend(user.published.iter().map(|p| p.instance.clone()));
        snapshot.extend(derived.iter().cloned());
        user.derived = derived;
        user.availability = main.availability;
        user.activity = main.activity.as_ref().and_then(|a| a.token.clone());
        let next_expiry = user
            .published
            .iter()
            .filter_map(|p| p.expires_at)
            .chain(user.pidf.iter().map(|p| p.expires_at))
            .min();
        user.next_change = [main.next_change, team.next_change, next_expiry]
            .into_iter()
            .flatten()
            .min();
        if snapshot == user.snapshot {
            return false;
        }
        user.snapshot = snapshot;
        user.snapshot_time = wall;
        user.version += 1;
        user.renders.clear();
        true
    }
}

/// The `contactCard` value for a directory identity (the elements SIPE reads, sipe-client
/// §3.5).
pub(crate) fn identity_card(id: &Identity) -> XmlFragment {
    let mut w = XmlWriter::with_capacity(256);
    w.open("contactCard")
        .attr(
            "xmlns",
            "http://schemas.microsoft.com/2006/09/sip/contactcard",
        )
        .gt();
    w.open("identity").gt();
    if let Some(name) = &id.display_name {
        w.open("name").gt();
        w.text_elem("displayName", name);
        w.close("name");
    }
    if let Some(email) = &id.email {
        w.text_elem("email", email);
    }
    w.close("identity");
    for (el, v) in [
        ("company", &id.company),
        ("department", &id.department),
        ("title", &id.title),
        ("office", &id.office),
    ] {
        if let Some(v) = v {
            w.text_elem(el, v);
        }
    }
    w.close("contactCard");
    XmlFragment::from_checked(String::from_utf8_lossy(&w.into_bytes()).into_owned())
}

fn published_in(published: &[Published], name: &CategoryName, c: ContainerId) -> bool {
    published
        .iter()
        .any(|p| p.instance.name == *name && p.instance.container == Some(c))
}

fn derived_instance(
    name: CategoryName,
    instance: u32,
    container: ContainerId,
    value: CategoryValue,
) -> CategoryInstance {
    CategoryInstance {
        name,
        instance,
        publish_time: None,
        container: Some(container),
        version: None,
        expire_type: None,
        value,
    }
}

fn aggregate_state(agg: &Aggregate, last_active: Option<Timestamp>) -> CategoryValue {
    let mut s = State::new(StateType::AggregateState, agg.availability);
    s.activity = agg.activity.clone();
    s.last_active = last_active;
    CategoryValue::State(s)
}

fn to_wall(wall_now: Timestamp, now: Instant, t: Instant) -> Timestamp {
    let back = i64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(i64::MAX);
    let ahead = i64::try_from(t.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX);
    Timestamp::from_unix_millis(
        wall_now
            .unix_millis()
            .saturating_sub(back)
            .saturating_add(ahead),
    )
}

/// Aggregates the inputs feeding one aggregation container.
fn compute<F>(
    user: &super::state::User<F>,
    container: ContainerId,
    policy: &IdlePolicy,
    now: Instant,
) -> Aggregate {
    let mut machines = Vec::new();
    let mut users = Vec::new();
    let mut activities = Vec::new();
    let mut covered: Vec<&super::EndpointKey> = Vec::new();
    let mut unkeyed = 0usize;
    for p in &user.published {
        if p.instance.container != Some(container) || p.instance.name != CategoryName::State {
            continue;
        }
        let CategoryValue::State(s) = &p.instance.value else {
            continue;
        };
        let availability = s.availability.unwrap_or(Availability::new(0));
        match s.kind {
            StateType::MachineState => {
                match &p.endpoint {
                    Some(k) => covered.push(k),
                    None => unkeyed += 1,
                }
                machines.push(MachineInput {
                    availability,
                    activity: s.activity.clone(),
                    published_at: p.published_at,
                    last_input: None,
                });
            }
            StateType::UserState if !availability.is_unset() => users.push(UserInput {
                availability,
                activity: s.activity.clone(),
                until: p.expires_at,
                published_at: p.published_at,
            }),
            StateType::PhoneState | StateType::CalendarState if !availability.is_unset() => {
                activities.push(ActivityInput {
                    source: if s.kind == StateType::PhoneState {
                        ActivitySource::Phone
                    } else {
                        ActivitySource::Calendar
                    },
                    availability,
                    activity: s.activity.clone(),
                    from: None,
                    until: p.expires_at,
                })
            }
            _ => {}
        }
    }
    for p in &user.pidf {
        let band = p.summary.availability.band();
        if (band == Band::Offline || band == Band::Unknown) && !p.closed {
            continue;
        }
        match &p.endpoint {
            Some(k) => covered.push(k),
            None => unkeyed += 1,
        }
        if p.closed {
            // A SIMPLE client that publishes `closed` while signed in (baresip's
            // `presence_offline`) asks to be shown offline: Lync's Appear Offline, a manual
            // Offline over a signed-in machine, so watchers of both dialects see it offline.
            machines.push(MachineInput {
                availability: Availability::AVAILABLE,
                activity: None,
                published_at: p.published_at,
                last_input: None,
            });
            users.push(UserInput {
                availability: Availability::OFFLINE,
                activity: None,
                until: None,
                published_at: p.published_at,
            });
            continue;
        }
        let idle = band.is_idle();
        machines.push(MachineInput {
            availability: if idle {
                Availability::IDLE
            } else {
                Availability::AVAILABLE
            },
            activity: None,
            published_at: p.published_at,
            last_input: None,
        });
        let activity = p
            .summary
            .activity
            .clone()
            .map(crate::availability::Activity::token);
        if band.active() != Band::Available {
            users.push(UserInput {
                availability: band.active().canonical(),
                activity,
                until: None,
                published_at: p.published_at,
            });
        } else if let Some(a) = activity
            && let Some(m) = machines.last_mut()
        {
            m.activity = Some(a);
        }
    }
    let uncovered = user
        .endpoints
        .iter()
        .filter(|e| !covered.contains(&&e.key))
        .count()
        .saturating_sub(unkeyed);
    for _ in 0..uncovered {
        machines.push(MachineInput {
            availability: Availability::AVAILABLE,
            activity: None,
            published_at: now,
            last_input: None,
        });
    }
    aggregate(
        &Inputs {
            machines: &machines,
            user: &users,
            activities: &activities,
        },
        policy,
        now,
    )
}
