//! Aggregation of one person's states across endpoints into what watchers see.
//!
//! MS-PRES leaves the exact aggregation script unpublished; these rules follow the documented
//! facts and the derived algorithm of lync-exchange-facts §1.3:
//!
//! 1. **No endpoint signed in → Offline.** Machine states that say Offline (18500) do not count
//!    as signed in. A manual state kept for the next sign-in does not show meanwhile.
//! 2. **A manual user state wins over machine states.** A valid time-bound user state (instance
//!    0x24000000) wins over the static one (0x20000000). Appear Offline (18500) ends the
//!    computation: the person shows Offline and nothing else is applied.
//! 3. **Otherwise the most active machine wins**: the lowest effective availability number (the
//!    order Active < Inactive < Away < Off), ties to the most recent publication.
//! 4. **Idle → Away.** A machine idles `active_to_idle` after its last reported user input, or
//!    from the moment it publishes an idle number (4500–5999, 7500–8999); `idle_to_away` later
//!    it counts as Away (15500). Both intervals are configuration.
//! 5. **Phone and calendar states raise, never lower**: while valid, one whose availability is
//!    above the result replaces it (a call makes an Available person Busy); nothing lowers Do
//!    Not Disturb to Busy.
//! 6. **Idle qualifies the result**: if the most active machine is idle or away, Available
//!    becomes Available-Idle and Busy becomes Busy-Idle.
//! 7. **One activity** is shown: the first, in the order user state, phone, calendar, deciding
//!    machine, whose range contains the result.
//!
//! The function is pure and deterministic: `now` comes in, and [`Aggregate::next_change`] says
//! when the answer can next change without new input (an idle timer firing, a time-bound state
//! expiring, a meeting starting), so the engine arms one timer instead of polling.

use std::time::{Duration, Instant};

use crate::availability::{Activity, Availability, Band};

/// The idle timers. Lync clients run their own (5 min to Inactive, 15 more to Away); the
/// server applies these to endpoints that report idleness but not the later transitions
/// (a SIMPLE client's RPID `user-input`, a Lync client that stops publishing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdlePolicy {
    /// From last user input to Inactive.
    pub active_to_idle: Duration,
    /// From Inactive to Away.
    pub idle_to_away: Duration,
}

impl Default for IdlePolicy {
    /// 5 minutes and 15 minutes, the Communicator/Lync client defaults (OCS-R2 Machine States).
    fn default() -> Self {
        Self {
            active_to_idle: Duration::from_secs(5 * 60),
            idle_to_away: Duration::from_secs(15 * 60),
        }
    }
}

/// One endpoint's current machine state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineInput {
    /// The availability the endpoint published (0 "unset" counts as Available: the endpoint
    /// is signed in).
    pub availability: Availability,
    /// Its activity, if any.
    pub activity: Option<Activity>,
    /// When the server received this value (server stamp; clients' clocks are not trusted).
    pub published_at: Instant,
    /// The endpoint's last user input, when it reports one (RPID `user-input last-input`).
    pub last_input: Option<Instant>,
}

/// A manual user state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInput {
    /// The chosen availability.
    pub availability: Availability,
    /// Its activity (e.g. `off-work`).
    pub activity: Option<Activity>,
    /// End of a time-bound state; `None` for the static one.
    pub until: Option<Instant>,
    /// When it was published; the most recent of two states of one kind wins.
    pub published_at: Instant,
}

/// Where a phone or calendar state comes from; phone states are considered before calendar
/// states when both could supply the activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActivitySource {
    /// phoneState (a call in progress).
    Phone,
    /// calendarState (meeting, out of office).
    Calendar,
}

/// A phone or calendar state, valid in `[from, until)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityInput {
    /// Phone or calendar.
    pub source: ActivitySource,
    /// The availability it asks for (6500 for a call or meeting).
    pub availability: Availability,
    /// The activity it shows (`on-the-phone`, `in-a-meeting`, `out-of-office`).
    pub activity: Option<Activity>,
    /// Start (a meeting published ahead of time); `None` = already valid.
    pub from: Option<Instant>,
    /// End; `None` = until removed.
    pub until: Option<Instant>,
}

/// Everything aggregation looks at for one person.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inputs<'a> {
    /// One entry per signed-in endpoint that published a machine state.
    pub machines: &'a [MachineInput],
    /// Manual user states (static and time-bound).
    pub user: &'a [UserInput],
    /// Phone and calendar states.
    pub activities: &'a [ActivityInput],
}

/// Which input decided the availability; indexes point into the [`Inputs`] slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// No endpoint is signed in.
    NoEndpoint,
    /// A manual user state.
    User(usize),
    /// The most active machine.
    Machine(usize),
    /// A phone or calendar state that raised the result.
    Activity(usize),
}

/// The aggregated presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// What `aggregateState` carries.
    pub availability: Availability,
    /// The one activity shown.
    pub activity: Option<Activity>,
    /// Which input decided the availability.
    pub decided_by: DecidedBy,
    /// Index of the most active machine (`aggregateMachineState`'s endpoint), if any.
    pub most_active: Option<usize>,
    /// When the person was last active on any endpoint (for `lastActive`, which renderers
    /// show only in the Away and Offline bands).
    pub last_active: Option<Instant>,
    /// The next instant the result can change without new input.
    pub next_change: Option<Instant>,
}

/// Aggregates `inputs` at `now` (see the module documentation for the rules).
pub fn aggregate(inputs: &Inputs<'_>, policy: &IdlePolicy, now: Instant) -> Aggregate {
    let mut next = NextChange(None);
    let effective: Vec<Effective> = inputs
        .machines
        .iter()
        .map(|m| effective_machine(m, policy, now, &mut next))
        .collect();
    for u in inputs.user {
        if let Some(t) = u.until {
            next.at(t, now);
        }
    }
    for a in inputs.activities {
        if let Some(t) = a.from {
            next.at(t, now);
        }
        if let Some(t) = a.until {
            next.at(t, now);
        }
    }
    let last_active = effective.iter().filter_map(|e| e.last_active).max();

    // Rule 3: the most active signed-in machine.
    let most_active = effective
        .iter()
        .enumerate()
        .filter(|(_, e)| e.availability.band() != Band::Offline)
        .min_by(|(i, a), (j, b)| {
            a.availability
                .cmp(&b.availability)
                .then(
                    inputs.machines[*j]
                        .published_at
                        .cmp(&inputs.machines[*i].published_at),
                )
                .then(i.cmp(j))
        })
        .map(|(i, _)| i);
    // Rule 1.
    let Some(machine) = most_active else {
        return Aggregate {
            availability: Availability::OFFLINE,
            activity: None,
            decided_by: DecidedBy::NoEndpoint,
            most_active: None,
            last_active,
            next_change: next.0,
        };
    };
    let machine_idle = {
        let band = effective[machine].availability.band();
        band.is_idle() || band >= Band::Away
    };

    // Rule 2, else rule 3.
    let (mut availability, mut decided_by) = match current_user_state(inputs.user, now) {
        Some(i) => (inputs.user[i].availability, DecidedBy::User(i)),
        None => {
            let a = effective[machine].availability;
            // The idle qualifier is applied once, at the end (rule 6).
            let a = if a.band().is_idle() {
                a.band().active().canonical()
            } else {
                a
            };
            (a, DecidedBy::Machine(machine))
        }
    };
    if availability.band() == Band::Offline {
        return Aggregate {
            availability,
            activity: None,
            decided_by,
            most_active: Some(machine),
            last_active,
            next_change: next.0,
        };
    }
    if availability.is_unset() {
        availability = Availability::AVAILABLE;
    }

    // Rule 5.
    let active_now =
        |a: &ActivityInput| a.from.is_none_or(|t| t <= now) && a.until.is_none_or(|t| t > now);
    for (i, a) in inputs.activities.iter().enumerate() {
        if active_now(a) && a.availability.band().is_online() && a.availability > availability {
            availability = a.availability;
            decided_by = DecidedBy::Activity(i);
        }
    }

    // Rule 6.
    if machine_idle {
        let band = availability.band();
        if band.idle() != band {
            availability = band.idle().canonical();
        }
    }

    // Rule 7.
    let mut candidates: Vec<&Activity> = Vec::new();
    if let DecidedBy::User(i) = decided_by {
        candidates.extend(inputs.user[i].activity.as_ref());
    }
    for source in [ActivitySource::Phone, ActivitySource::Calendar] {
        if let DecidedBy::Activity(i) = decided_by
            && inputs.activities[i].source == source
        {
            candidates.extend(inputs.activities[i].activity.as_ref());
        }
        candidates.extend(
            inputs
                .activities
                .iter()
                .filter(|a| a.source == source && active_now(a))
                .filter_map(|a| a.activity.as_ref()),
        );
    }
    if decided_by == DecidedBy::Machine(machine) {
        candidates.extend(inputs.machines[machine].activity.as_ref());
    }
    let activity = candidates
        .into_iter()
        .find(|a| a.applies_at(availability))
        .cloned();

    Aggregate {
        availability,
        activity,
        decided_by,
        most_active: Some(machine),
        last_active,
        next_change: next.0,
    }
}

struct Effective {
    availability: Availability,
    last_active: Option<Instant>,
}

struct NextChange(Option<Instant>);

impl NextChange {
    fn at(&mut self, t: Instant, now: Instant) {
        if t > now && self.0.is_none_or(|n| t < n) {
            self.0 = Some(t);
        }
    }
}

fn effective_machine(
    m: &MachineInput,
    policy: &IdlePolicy,
    now: Instant,
    next: &mut NextChange,
) -> Effective {
    let published = if m.availability.is_unset() {
        Availability::AVAILABLE
    } else {
        m.availability
    };
    let band = published.band();
    if !matches!(
        band,
        Band::Unknown | Band::Available | Band::AvailableIdle | Band::Busy | Band::BusyIdle
    ) {
        // DND/BRB/Away/Offline machines already say more than idle timers could.
        return Effective {
            availability: published,
            last_active: m.last_input,
        };
    }
    let (idle_from, away_from) = match m.last_input {
        Some(li) => {
            let idle = li + policy.active_to_idle;
            (idle, idle + policy.idle_to_away)
        }
        None if band.is_idle() => (m.published_at, m.published_at + policy.idle_to_away),
        None => {
            return Effective {
                availability: published,
                last_active: Some(now),
            };
        }
    };
    next.at(idle_from, now);
    next.at(away_from, now);
    let last_active = m.last_input.or(Some(m.published_at));
    let availability = if now >= away_from {
        Availability::AWAY
    } else if band.is_idle() {
        published
    } else if now >= idle_from {
        band.idle().canonical()
    } else {
        return Effective {
            availability: published,
            last_active: Some(now),
        };
    };
    Effective {
        availability,
        last_active,
    }
}

/// The user state in force: a valid time-bound one (latest published) over the static one.
fn current_user_state(user: &[UserInput], now: Instant) -> Option<usize> {
    let latest = |timed: bool| {
        user.iter()
            .enumerate()
            .filter(|(_, u)| match u.until {
                Some(t) => timed && t > now,
                None => !timed,
            })
            .max_by(|(i, a), (j, b)| a.published_at.cmp(&b.published_at).then(j.cmp(i)))
            .map(|(i, _)| i)
    };
    latest(true).or_else(|| latest(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::ActivityToken;

    const MIN: Duration = Duration::from_secs(60);

    fn machine(t0: Instant, a: Availability) -> MachineInput {
        MachineInput {
            availability: a,
            activity: None,
            published_at: t0,
            last_input: None,
        }
    }

    fn user(t0: Instant, a: Availability) -> UserInput {
        UserInput {
            availability: a,
            activity: None,
            until: None,
            published_at: t0,
        }
    }

    fn run(
        machines: &[MachineInput],
        users: &[UserInput],
        acts: &[ActivityInput],
        now: Instant,
    ) -> Aggregate {
        aggregate(
            &Inputs {
                machines,
                user: users,
                activities: acts,
            },
            &IdlePolicy::default(),
            now,
        )
    }

    #[test]
    fn no_endpoint_is_offline() {
        let t0 = Instant::now();
        let a = run(&[], &[user(t0, Availability::BUSY)], &[], t0);
        assert_eq!(a.availability, Availability::OFFLINE);
        assert_eq!(a.decided_by, DecidedBy::NoEndpoint);
        assert_eq!(a.next_change, None);
    }

    #[test]
    fn machines_that_say_offline_do_not_count_as_signed_in() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::OFFLINE)],
            &[user(t0, Availability::BUSY)],
            &[],
            t0,
        );
        assert_eq!(a.availability, Availability::OFFLINE);
    }

    #[test]
    fn manual_user_state_wins_over_machine_states() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[user(t0, Availability::BUSY)],
            &[],
            t0,
        );
        assert_eq!(a.availability, Availability::BUSY);
        assert_eq!(a.decided_by, DecidedBy::User(0));
        let away = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[user(t0, Availability::AWAY)],
            &[],
            t0,
        );
        assert_eq!(away.availability, Availability::AWAY, "Appear Away");
    }

    #[test]
    fn appear_offline_shows_offline_while_signed_in() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[user(t0, Availability::OFFLINE)],
            &[],
            t0,
        );
        assert_eq!(a.availability, Availability::OFFLINE);
        assert_eq!(a.decided_by, DecidedBy::User(0));
    }

    #[test]
    fn time_bound_user_state_wins_over_static_until_it_expires() {
        let t0 = Instant::now();
        let users = [
            user(t0, Availability::BUSY),
            UserInput {
                until: Some(t0 + 30 * MIN),
                ..user(t0, Availability::DO_NOT_DISTURB)
            },
        ];
        let m = [machine(t0, Availability::AVAILABLE)];
        let during = run(&m, &users, &[], t0 + MIN);
        assert_eq!(during.availability, Availability::DO_NOT_DISTURB);
        assert_eq!(during.next_change, Some(t0 + 30 * MIN));
        let after = run(&m, &users, &[], t0 + 30 * MIN);
        assert_eq!(after.availability, Availability::BUSY);
    }

    #[test]
    fn most_active_machine_wins() {
        let t0 = Instant::now();
        let m = [
            machine(t0, Availability::AWAY),
            machine(t0, Availability::AVAILABLE),
            machine(t0, Availability::IDLE),
        ];
        let a = run(&m, &[], &[], t0);
        assert_eq!(a.availability, Availability::AVAILABLE);
        assert_eq!(a.most_active, Some(1));
        assert_eq!(a.decided_by, DecidedBy::Machine(1));
    }

    #[test]
    fn machine_ties_go_to_the_most_recent_publication() {
        let t0 = Instant::now();
        let m = [
            machine(t0, Availability::AVAILABLE),
            machine(t0 + MIN, Availability::AVAILABLE),
        ];
        assert_eq!(run(&m, &[], &[], t0 + MIN).most_active, Some(1));
    }

    #[test]
    fn idle_machine_becomes_away_after_the_configured_interval() {
        let t0 = Instant::now();
        let m = [machine(t0, Availability::IDLE)];
        let idle = run(&m, &[], &[], t0 + MIN);
        assert_eq!(idle.availability, Availability::IDLE);
        assert_eq!(idle.next_change, Some(t0 + 15 * MIN));
        let away = run(&m, &[], &[], t0 + 15 * MIN);
        assert_eq!(away.availability, Availability::AWAY);
        assert_eq!(away.next_change, None);
        assert_eq!(away.last_active, Some(t0));
    }

    #[test]
    fn reported_last_input_drives_idle_then_away() {
        let t0 = Instant::now();
        let m = [MachineInput {
            last_input: Some(t0),
            ..machine(t0, Availability::AVAILABLE)
        }];
        let policy = IdlePolicy::default();
        let active = run(&m, &[], &[], t0 + MIN);
        assert_eq!(active.availability, Availability::AVAILABLE);
        assert_eq!(active.next_change, Some(t0 + policy.active_to_idle));
        let idle = run(&m, &[], &[], t0 + 5 * MIN);
        assert_eq!(idle.availability, Availability::IDLE);
        assert_eq!(idle.next_change, Some(t0 + 20 * MIN));
        assert_eq!(
            run(&m, &[], &[], t0 + 20 * MIN).availability,
            Availability::AWAY
        );
    }

    #[test]
    fn idle_machine_turns_manual_busy_into_busy_idle() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::IDLE)],
            &[user(t0, Availability::BUSY)],
            &[],
            t0,
        );
        assert_eq!(a.availability, Availability::BUSY_IDLE);
        let dnd = run(
            &[machine(t0, Availability::IDLE)],
            &[user(t0, Availability::DO_NOT_DISTURB)],
            &[],
            t0,
        );
        assert_eq!(
            dnd.availability,
            Availability::DO_NOT_DISTURB,
            "idle does not qualify DND"
        );
    }

    fn phone(a: Availability, from: Option<Instant>, until: Option<Instant>) -> ActivityInput {
        ActivityInput {
            source: ActivitySource::Phone,
            availability: a,
            activity: Some(Activity::token(ActivityToken::OnThePhone)),
            from,
            until,
        }
    }

    #[test]
    fn phone_call_raises_available_to_busy_on_the_phone() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[],
            &[phone(Availability::BUSY, None, None)],
            t0,
        );
        assert_eq!(a.availability, Availability::BUSY);
        assert_eq!(a.decided_by, DecidedBy::Activity(0));
        assert_eq!(
            a.activity.and_then(|a| a.token),
            Some(ActivityToken::OnThePhone)
        );
    }

    #[test]
    fn phone_never_lowers_do_not_disturb() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[user(t0, Availability::DO_NOT_DISTURB)],
            &[phone(Availability::BUSY, None, None)],
            t0,
        );
        assert_eq!(a.availability, Availability::DO_NOT_DISTURB);
        assert_eq!(a.activity, None, "on-the-phone is outside DND's range");
    }

    #[test]
    fn manual_busy_on_the_phone_shows_the_call() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[user(t0, Availability::BUSY)],
            &[phone(Availability::BUSY, None, None)],
            t0,
        );
        assert_eq!(a.decided_by, DecidedBy::User(0));
        assert_eq!(
            a.activity.and_then(|a| a.token),
            Some(ActivityToken::OnThePhone)
        );
    }

    #[test]
    fn calendar_meeting_in_the_future_is_the_next_change() {
        let t0 = Instant::now();
        let meeting = ActivityInput {
            source: ActivitySource::Calendar,
            availability: Availability::BUSY,
            activity: Some(Activity::token(ActivityToken::InAMeeting)),
            from: Some(t0 + 10 * MIN),
            until: Some(t0 + 40 * MIN),
        };
        let m = [machine(t0, Availability::AVAILABLE)];
        let before = run(&m, &[], std::slice::from_ref(&meeting), t0);
        assert_eq!(before.availability, Availability::AVAILABLE);
        assert_eq!(before.next_change, Some(t0 + 10 * MIN));
        let during = run(&m, &[], std::slice::from_ref(&meeting), t0 + 10 * MIN);
        assert_eq!(during.availability, Availability::BUSY);
        assert_eq!(
            during.activity.and_then(|a| a.token),
            Some(ActivityToken::InAMeeting)
        );
        assert_eq!(during.next_change, Some(t0 + 40 * MIN));
    }

    #[test]
    fn off_work_token_survives_aggregation() {
        let t0 = Instant::now();
        let off = UserInput {
            activity: Some(Activity::token(ActivityToken::OffWork)),
            ..user(t0, Availability::AWAY)
        };
        let a = run(&[machine(t0, Availability::AVAILABLE)], &[off], &[], t0);
        assert_eq!(a.availability, Availability::AWAY);
        assert_eq!(
            a.activity.and_then(|a| a.token),
            Some(ActivityToken::OffWork)
        );
    }

    #[test]
    fn unset_machine_availability_counts_as_available() {
        let t0 = Instant::now();
        let a = run(&[machine(t0, Availability::new(0))], &[], &[], t0);
        assert_eq!(a.availability, Availability::AVAILABLE);
    }

    #[test]
    fn exact_numbers_inside_a_band_are_kept() {
        let t0 = Instant::now();
        let a = run(
            &[machine(t0, Availability::AVAILABLE)],
            &[user(t0, Availability::URGENT_INTERRUPTIONS_ONLY)],
            &[],
            t0,
        );
        assert_eq!(a.availability, Availability::URGENT_INTERRUPTIONS_ONLY);
    }
}
