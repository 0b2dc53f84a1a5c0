//! Lync availability + activity ↔ PIDF basic status + RPID activities.
//!
//! RPID has no Do Not Disturb, Be Right Back or Off Work, and PIDF has no availability
//! number, so each Lync band is written as the RPID activity a SIMPLE watcher understands
//! (`busy`, `away`) plus, where that loses information, an `<rpid:other>` carrying the Lync
//! name — which herald reads back, so a Lync state survives a trip through PIDF.
//!
//! Lync → PIDF ([`from_summary`]); PIDF → Lync ([`to_summary`]) reads every row back:
//!
//! | Lync band        | basic  | RPID activities                      | RPID user-input |
//! |------------------|--------|--------------------------------------|-----------------|
//! | Available        | open   | —                                    | active          |
//! | Available-Idle   | open   | —                                    | idle            |
//! | Busy             | open   | `busy`                               | active          |
//! | Busy-Idle        | open   | `busy`                               | idle            |
//! | Do Not Disturb   | open   | `busy`, `other`=`do-not-disturb`     | active          |
//! | Be Right Back    | open   | `away`, `other`=`be-right-back`      | active          |
//! | Away             | open   | `away`                               | active          |
//! | Offline, Unknown | closed | —                                    | —               |
//!
//! | Lync activity token                  | extra RPID activity                  |
//! |--------------------------------------|--------------------------------------|
//! | `on-the-phone`                       | `on-the-phone`                       |
//! | `in-a-meeting`                       | `meeting`                            |
//! | `in-presentation`                    | `presentation`                       |
//! | `in-a-conference`, `out-of-office`, `urgent-interruptions-only`, `off-work`, any other | `other`=the token |
//!
//! Reading PIDF that a SIMPLE client wrote, beyond the rows above:
//! - no tuple with basic `open` → Offline (the token is still read);
//! - the band is the first that matches, in this order: `presentation` or `other`
//!   `do-not-disturb` → Do Not Disturb; `other` `be-right-back` → Be Right Back; `away`,
//!   `vacation`, `holiday`, `sleeping`, `permanent-absence` or `other` `off-work` → Away; `busy`,
//!   `on-the-phone`, `meeting`, `appointment`, `performance` → Busy; else Available;
//! - `vacation` and `holiday` give the `out-of-office` token when nothing else gives one;
//! - idle: the person's `user-input` if it has one, else idle when every tuple and device that
//!   reports `user-input` reports idle; an idle Available or Busy becomes its idle band.
//! - the note is the first presence-level note, else the first person note, else the first
//!   tuple note.

use crate::Timestamp;
use crate::availability::{ActivityToken, Availability, Band};
use crate::pidf::{
    Activities, Basic, Contact, Note, Person, Presence, RpidActivity, Status, Tuple, UserInput,
};

/// A presence state in Lync terms: what one PIDF document says, or what is written into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The availability (canonical number of its band when read from PIDF).
    pub availability: Availability,
    /// The activity token.
    pub activity: Option<ActivityToken>,
    /// A free-text note.
    pub note: Option<String>,
}

/// Writes `summary` as a PIDF document for `entity`: one tuple (id `t`, with `contact` if
/// given, and `timestamp`), one person (id `p`) with the activities and user-input of the
/// table in the module documentation, and the note at presence level.
pub fn from_summary(
    entity: &str,
    summary: &Summary,
    contact: Option<&str>,
    timestamp: Option<Timestamp>,
) -> Presence {
    let band = summary.availability.band();
    let online = band.is_online();
    let mut items = Vec::new();
    match band.active() {
        Band::Busy => items.push(RpidActivity::Busy),
        Band::DoNotDisturb => {
            items.push(RpidActivity::Busy);
            items.push(RpidActivity::Other(DND.to_owned()));
        }
        Band::BeRightBack => {
            items.push(RpidActivity::Away);
            items.push(RpidActivity::Other(BRB.to_owned()));
        }
        Band::Away => items.push(RpidActivity::Away),
        _ => {}
    }
    if let Some(token) = &summary.activity {
        items.push(match token {
            ActivityToken::OnThePhone => RpidActivity::OnThePhone,
            ActivityToken::InAMeeting => RpidActivity::Meeting,
            ActivityToken::InPresentation => RpidActivity::Presentation,
            other => RpidActivity::Other(other.as_str().to_owned()),
        });
    }
    let person = Person {
        id: "p".to_owned(),
        activities: (!items.is_empty()).then(|| Activities {
            items,
            ..Activities::default()
        }),
        user_input: online.then_some(UserInput {
            idle: band.is_idle(),
            last_input: None,
            idle_threshold: None,
        }),
        timestamp,
        ..Person::default()
    };
    Presence {
        entity: entity.to_owned(),
        tuples: vec![Tuple {
            id: "t".to_owned(),
            status: Status {
                basic: Some(if online { Basic::Open } else { Basic::Closed }),
                extensions: Vec::new(),
            },
            contact: contact.map(|uri| Contact {
                uri: uri.to_owned(),
                priority: None,
            }),
            timestamp,
            ..Tuple::default()
        }],
        notes: summary
            .note
            .iter()
            .map(|n| Note {
                text: n.clone(),
                lang: None,
            })
            .collect(),
        persons: vec![person],
        devices: Vec::new(),
        extensions: Vec::new(),
    }
}

/// Reads a PIDF document (typically a SIMPLE client's PUBLISH) in Lync terms, by the rules in
/// the module documentation.
pub fn to_summary(p: &Presence) -> Summary {
    let open = p.tuples.iter().any(|t| t.status.basic == Some(Basic::Open));
    let items: Vec<&RpidActivity> = p
        .persons
        .iter()
        .filter_map(|person| person.activities.as_ref())
        .flat_map(|a| a.items.iter())
        .collect();
    let has = |want: &RpidActivity| items.contains(&want);
    let has_other = |text: &str| {
        items
            .iter()
            .any(|a| matches!(a, RpidActivity::Other(t) if t.trim().eq_ignore_ascii_case(text)))
    };
    let band = if !open {
        Band::Offline
    } else if has(&RpidActivity::Presentation) || has_other(DND) {
        Band::DoNotDisturb
    } else if has_other(BRB) {
        Band::BeRightBack
    } else if [
        RpidActivity::Away,
        RpidActivity::Vacation,
        RpidActivity::Holiday,
        RpidActivity::Sleeping,
        RpidActivity::PermanentAbsence,
    ]
    .iter()
    .any(has)
        || has_other(ActivityToken::OffWork.as_str())
    {
        Band::Away
    } else if [
        RpidActivity::Busy,
        RpidActivity::OnThePhone,
        RpidActivity::Meeting,
        RpidActivity::Appointment,
        RpidActivity::Performance,
    ]
    .iter()
    .any(has)
    {
        Band::Busy
    } else {
        Band::Available
    };
    let band = if open && is_idle(p) {
        band.idle()
    } else {
        band
    };

    let mut activity = None;
    for item in &items {
        activity = match item {
            RpidActivity::OnThePhone => Some(ActivityToken::OnThePhone),
            RpidActivity::Meeting => Some(ActivityToken::InAMeeting),
            RpidActivity::Presentation => Some(ActivityToken::InPresentation),
            RpidActivity::Other(text) => {
                let t = text.trim();
                if t.eq_ignore_ascii_case(DND) || t.eq_ignore_ascii_case(BRB) {
                    None
                } else {
                    ActivityToken::parse(t).ok()
                }
            }
            _ => None,
        };
        if activity.is_some() {
            break;
        }
    }
    if activity.is_none() && (has(&RpidActivity::Vacation) || has(&RpidActivity::Holiday)) {
        activity = Some(ActivityToken::OutOfOffice);
    }

    let note = p
        .notes
        .first()
        .or_else(|| p.persons.iter().find_map(|person| person.notes.first()))
        .or_else(|| p.tuples.iter().find_map(|t| t.notes.first()))
        .map(|n| n.text.clone());

    Summary {
        availability: band.canonical(),
        activity,
        note,
    }
}

fn is_idle(p: &Presence) -> bool {
    if let Some(u) = p.persons.iter().find_map(|person| person.user_input) {
        return u.idle;
    }
    let mut reports = p
        .tuples
        .iter()
        .filter_map(|t| t.user_input)
        .chain(p.devices.iter().filter_map(|d| d.user_input))
        .peekable();
    reports.peek().is_some() && reports.all(|u| u.idle)
}

const DND: &str = "do-not-disturb";
const BRB: &str = "be-right-back";
