//! The Lync availability model: numbers, bands, activity tokens, state types.
//!
//! Lync (MS-PRES enhanced presence) describes a person by an *availability number* and an
//! optional *activity token*. Clients publish canonical numbers (3500, 6500, ...); a receiver
//! interprets any number by the band it falls in, so applications can define their own states
//! inside a band. Sources: lync-exchange-facts §1.1–§1.2; SIPE's own mapping (sipe-client §3.5)
//! uses the same band starts.

use std::fmt;
use std::ops::RangeInclusive;

use crate::BodyError;

/// An MS-PRES availability number.
///
/// Any `u32` is representable because receivers must interpret whatever arrives; use
/// [`Availability::band`] to decide what it means and the associated constants to publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Availability(u32);

impl Availability {
    /// Available (online, user active).
    pub const AVAILABLE: Self = Self(3500);
    /// Available but the machine is idle ("Inactive"); UCMA `EndpointIdle`.
    pub const IDLE: Self = Self(5000);
    /// Busy.
    pub const BUSY: Self = Self(6500);
    /// Busy with "urgent interruptions only" (how team members see a Do Not Disturb user).
    pub const URGENT_INTERRUPTIONS_ONLY: Self = Self(6900);
    /// Busy and the machine idle (first value of the 7500–8999 band; UCMA `IdleBusy`).
    pub const BUSY_IDLE: Self = Self(7500);
    /// Do Not Disturb.
    pub const DO_NOT_DISTURB: Self = Self(9500);
    /// Be Right Back.
    pub const BE_RIGHT_BACK: Self = Self(12500);
    /// Away (also Appear Away when published as a manual user state, and Off Work with the
    /// `off-work` token).
    pub const AWAY: Self = Self(15500);
    /// Offline (also Appear Offline; what Blocked watchers always see).
    pub const OFFLINE: Self = Self(18500);

    /// Wraps a number as received.
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// The number on the wire.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The band a receiver interprets this number as.
    pub const fn band(self) -> Band {
        match self.0 {
            0..=2999 => Band::Unknown,
            3000..=4499 => Band::Available,
            4500..=5999 => Band::AvailableIdle,
            6000..=7499 => Band::Busy,
            7500..=8999 => Band::BusyIdle,
            9000..=11999 => Band::DoNotDisturb,
            12000..=14999 => Band::BeRightBack,
            15000..=17999 => Band::Away,
            _ => Band::Offline,
        }
    }

    /// Whether a client may publish this number: MS-PRES gives 0–2999 no meaning on receive,
    /// so a server refuses them in a state publication (except 0, see
    /// [`Availability::is_unset`]).
    pub const fn is_publishable(self) -> bool {
        self.0 >= 3000
    }

    /// SIPE publishes 0 for "no availability set"; a state with it contributes nothing.
    pub const fn is_unset(self) -> bool {
        self.0 == 0
    }

    /// Parses the decimal text of an `<availability>` element.
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        let t = s.trim();
        if t.is_empty() || t.len() > 10 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BodyError::invalid("availability", s));
        }
        t.parse::<u32>()
            .map(Self)
            .map_err(|_| BodyError::invalid("availability", s))
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Band> for Availability {
    fn from(band: Band) -> Self {
        band.canonical()
    }
}

/// The range an availability number falls in, which is what it *means*.
///
/// Ordered from most to least available, which is the order aggregation uses ("most active
/// wins" = the smallest band).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Band {
    /// 0–2999: no meaning ("presence unknown"); never published by a conforming client.
    Unknown,
    /// 3000–4499.
    Available,
    /// 4500–5999: available, machine idle ("Inactive").
    AvailableIdle,
    /// 6000–7499.
    Busy,
    /// 7500–8999: busy, machine idle.
    BusyIdle,
    /// 9000–11999.
    DoNotDisturb,
    /// 12000–14999.
    BeRightBack,
    /// 15000–17999.
    Away,
    /// 18000 and above.
    Offline,
}

impl Band {
    /// Every band, most available first.
    pub const ALL: [Self; 9] = [
        Self::Unknown,
        Self::Available,
        Self::AvailableIdle,
        Self::Busy,
        Self::BusyIdle,
        Self::DoNotDisturb,
        Self::BeRightBack,
        Self::Away,
        Self::Offline,
    ];

    /// The numbers this band covers.
    pub const fn range(self) -> RangeInclusive<u32> {
        match self {
            Self::Unknown => 0..=2999,
            Self::Available => 3000..=4499,
            Self::AvailableIdle => 4500..=5999,
            Self::Busy => 6000..=7499,
            Self::BusyIdle => 7500..=8999,
            Self::DoNotDisturb => 9000..=11999,
            Self::BeRightBack => 12000..=14999,
            Self::Away => 15000..=17999,
            Self::Offline => 18000..=u32::MAX,
        }
    }

    /// The number clients publish for this band.
    pub const fn canonical(self) -> Availability {
        match self {
            Self::Unknown => Availability(0),
            Self::Available => Availability::AVAILABLE,
            Self::AvailableIdle => Availability::IDLE,
            Self::Busy => Availability::BUSY,
            Self::BusyIdle => Availability::BUSY_IDLE,
            Self::DoNotDisturb => Availability::DO_NOT_DISTURB,
            Self::BeRightBack => Availability::BE_RIGHT_BACK,
            Self::Away => Availability::AWAY,
            Self::Offline => Availability::OFFLINE,
        }
    }

    /// Whether the band says the machine is idle.
    pub const fn is_idle(self) -> bool {
        matches!(self, Self::AvailableIdle | Self::BusyIdle)
    }

    /// The band an idle machine turns this one into: Available → Available-Idle, Busy →
    /// Busy-Idle; every other band already says more than "idle" and stays.
    pub const fn idle(self) -> Self {
        match self {
            Self::Available => Self::AvailableIdle,
            Self::Busy => Self::BusyIdle,
            other => other,
        }
    }

    /// The inverse of [`Band::idle`].
    pub const fn active(self) -> Self {
        match self {
            Self::AvailableIdle => Self::Available,
            Self::BusyIdle => Self::Busy,
            other => other,
        }
    }

    /// Whether the person is signed in somewhere (neither Offline nor Unknown).
    pub const fn is_online(self) -> bool {
        !matches!(self, Self::Offline | Self::Unknown)
    }

    /// The default display string Lync shows for the band when no activity says more.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Unknown => "Presence unknown",
            Self::Available => "Available",
            Self::AvailableIdle => "Inactive",
            Self::Busy | Self::BusyIdle => "Busy",
            Self::DoNotDisturb => "Do not disturb",
            Self::BeRightBack => "Be right back",
            Self::Away => "Away",
            Self::Offline => "Offline",
        }
    }
}

/// An activity token Lync 2013 recognises (case-sensitive), or another token a client used.
///
/// The token refines the band: Busy + `on-the-phone` shows "In a call", Away + `off-work`
/// shows "Off Work".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActivityToken {
    /// `on-the-phone` (Busy band).
    OnThePhone,
    /// `in-a-conference` (Busy band).
    InAConference,
    /// `in-a-meeting` (Busy band, usually from the calendar).
    InAMeeting,
    /// `in-presentation` (Do Not Disturb band: presenting).
    InPresentation,
    /// `out-of-office` (from the calendar's OOF state).
    OutOfOffice,
    /// `urgent-interruptions-only` (Busy band: how team members see Do Not Disturb).
    UrgentInterruptionsOnly,
    /// `off-work` (Away band: "Off Work").
    OffWork,
    /// Any other token, kept verbatim (SIPE, for one, sends `busy`).
    Other(CustomToken),
}

/// A token that is not one of the known [`ActivityToken`]s; constructed only by
/// [`ActivityToken::parse`], so it never spells a known token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomToken(Box<str>);

impl CustomToken {
    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ActivityToken {
    /// The tokens Lync 2013 gives a meaning to.
    pub const KNOWN: [Self; 7] = [
        Self::OnThePhone,
        Self::InAConference,
        Self::InAMeeting,
        Self::InPresentation,
        Self::OutOfOffice,
        Self::UrgentInterruptionsOnly,
        Self::OffWork,
    ];

    /// Parses a token: non-empty, at most 64 bytes, no whitespace or control characters.
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        Ok(match s {
            "on-the-phone" => Self::OnThePhone,
            "in-a-conference" => Self::InAConference,
            "in-a-meeting" => Self::InAMeeting,
            "in-presentation" => Self::InPresentation,
            "out-of-office" => Self::OutOfOffice,
            "urgent-interruptions-only" => Self::UrgentInterruptionsOnly,
            "off-work" => Self::OffWork,
            _ => {
                if s.is_empty()
                    || s.len() > 64
                    || s.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(BodyError::invalid("activity token", s));
                }
                Self::Other(CustomToken(s.into()))
            }
        })
    }

    /// The token on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::OnThePhone => "on-the-phone",
            Self::InAConference => "in-a-conference",
            Self::InAMeeting => "in-a-meeting",
            Self::InPresentation => "in-presentation",
            Self::OutOfOffice => "out-of-office",
            Self::UrgentInterruptionsOnly => "urgent-interruptions-only",
            Self::OffWork => "off-work",
            Self::Other(t) => t.as_str(),
        }
    }

    /// The availability range Lync shows this token in when a publisher gives none
    /// (`minAvailability`/`maxAvailability` defaults): the token is displayed only while the
    /// aggregated availability lies inside it. `None` for custom tokens (no restriction).
    pub fn default_range(&self) -> Option<RangeInclusive<u32>> {
        Some(match self {
            Self::OnThePhone | Self::InAConference | Self::InAMeeting => 6000..=8999,
            Self::UrgentInterruptionsOnly => 6900..=8999,
            Self::InPresentation => 9000..=11999,
            Self::OutOfOffice => 3000..=17999,
            Self::OffWork => 15000..=17999,
            Self::Other(_) => return None,
        })
    }
}

impl fmt::Display for ActivityToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A localised activity string (`<custom LCID="1033">text</custom>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CustomText {
    /// Windows locale id; `None` when the publisher gave none.
    pub lcid: Option<u32>,
    /// The text shown instead of the band's label.
    pub text: String,
}

/// The `<activity>` of a state: a token and/or localised texts, with the availability range
/// inside which it is shown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Activity {
    /// The machine-readable token.
    pub token: Option<ActivityToken>,
    /// `minAvailability` (default 0).
    pub min_availability: Option<Availability>,
    /// `maxAvailability` (default unbounded).
    pub max_availability: Option<Availability>,
    /// Localised texts.
    pub custom: Vec<CustomText>,
}

impl Activity {
    /// An activity with just `token` and no range.
    pub fn token(token: ActivityToken) -> Self {
        Self {
            token: Some(token),
            ..Self::default()
        }
    }

    /// Whether the activity is shown at `availability`: inside the explicit range if one was
    /// published, else inside the token's default range.
    pub fn applies_at(&self, availability: Availability) -> bool {
        let v = availability.value();
        if self.min_availability.is_some() || self.max_availability.is_some() {
            let min = self.min_availability.map_or(0, Availability::value);
            let max = self.max_availability.map_or(u32::MAX, Availability::value);
            return (min..=max).contains(&v);
        }
        match self.token.as_ref().and_then(ActivityToken::default_range) {
            Some(r) => r.contains(&v),
            None => true,
        }
    }
}

/// The `xsi:type` of a `<state>` element: who produced it and what it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateType {
    /// Set by the person (`manual="true"`): Busy, Do Not Disturb, Appear Away, ...; wins over
    /// machine states.
    UserState,
    /// One endpoint's automatic state (active, inactive, away after idle timers).
    MachineState,
    /// From a phone (RCC, VoIP or PSTN call in progress).
    PhoneState,
    /// From the calendar (meeting, out-of-office).
    CalendarState,
    /// The server's aggregate, the only state remote watchers see.
    AggregateState,
    /// The server's choice of most active machine (self view only).
    AggregateMachineState,
}

impl StateType {
    /// Every type.
    pub const ALL: [Self; 6] = [
        Self::UserState,
        Self::MachineState,
        Self::PhoneState,
        Self::CalendarState,
        Self::AggregateState,
        Self::AggregateMachineState,
    ];

    /// The `xsi:type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserState => "userState",
            Self::MachineState => "machineState",
            Self::PhoneState => "phoneState",
            Self::CalendarState => "calendarState",
            Self::AggregateState => "aggregateState",
            Self::AggregateMachineState => "aggregateMachineState",
        }
    }

    /// Parses an `xsi:type` value (a `prefix:` in front is ignored, as MS-PRES schemas are
    /// sometimes referenced qualified).
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        let local = s.rsplit(':').next().unwrap_or(s);
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == local)
            .ok_or_else(|| BodyError::invalid("state type", s))
    }

    /// Whether clients publish it (input to aggregation) rather than the server computing it.
    pub const fn is_input(self) -> bool {
        matches!(
            self,
            Self::UserState | Self::MachineState | Self::PhoneState | Self::CalendarState
        )
    }
}

impl fmt::Display for StateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status a person picks in a client's menu, and the user state it is published as.
///
/// "Available" in Lync 2013 means "reset to automatic" (remove the user state), so it maps to
/// no manual availability: [`UserStatus::user_state`] returns `None` for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// Reset to automatic.
    Available,
    /// Busy.
    Busy,
    /// Do Not Disturb.
    DoNotDisturb,
    /// Be Right Back.
    BeRightBack,
    /// Appear Away (manual 15500).
    AppearAway,
    /// Off Work (manual 15500 + `off-work`).
    OffWork,
    /// Appear Offline (manual 18500).
    AppearOffline,
}

impl UserStatus {
    /// Every status.
    pub const ALL: [Self; 7] = [
        Self::Available,
        Self::Busy,
        Self::DoNotDisturb,
        Self::BeRightBack,
        Self::AppearAway,
        Self::OffWork,
        Self::AppearOffline,
    ];

    /// The manual availability and activity this status publishes; `None` for Available.
    pub fn user_state(self) -> Option<(Availability, Option<ActivityToken>)> {
        Some(match self {
            Self::Available => return None,
            Self::Busy => (Availability::BUSY, None),
            Self::DoNotDisturb => (Availability::DO_NOT_DISTURB, None),
            Self::BeRightBack => (Availability::BE_RIGHT_BACK, None),
            Self::AppearAway => (Availability::AWAY, None),
            Self::OffWork => (Availability::AWAY, Some(ActivityToken::OffWork)),
            Self::AppearOffline => (Availability::OFFLINE, None),
        })
    }

    /// The status a manual user state stands for (a user state 3500 reads as Available).
    pub fn from_user_state(
        availability: Availability,
        token: Option<&ActivityToken>,
    ) -> Option<Self> {
        Some(match availability.band().active() {
            Band::Available => Self::Available,
            Band::Busy => Self::Busy,
            Band::DoNotDisturb => Self::DoNotDisturb,
            Band::BeRightBack => Self::BeRightBack,
            Band::Away if token == Some(&ActivityToken::OffWork) => Self::OffWork,
            Band::Away => Self::AppearAway,
            Band::Offline => Self::AppearOffline,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_band_covers_its_documented_range() {
        let mut next = 0u32;
        for band in Band::ALL {
            let r = band.range();
            assert_eq!(*r.start(), next, "{band:?} starts where the previous ended");
            assert_eq!(Availability::new(*r.start()).band(), band);
            assert_eq!(Availability::new(*r.end()).band(), band);
            next = r.end().saturating_add(1);
        }
        assert_eq!(Band::Offline.range().end(), &u32::MAX);
    }

    #[test]
    fn canonical_numbers_fall_in_their_bands() {
        for band in Band::ALL {
            assert_eq!(band.canonical().band(), band);
        }
        assert_eq!(Availability::AVAILABLE.value(), 3500);
        assert_eq!(Availability::IDLE.band(), Band::AvailableIdle);
        assert_eq!(Availability::BUSY.value(), 6500);
        assert_eq!(Availability::URGENT_INTERRUPTIONS_ONLY.band(), Band::Busy);
        assert_eq!(Availability::DO_NOT_DISTURB.value(), 9500);
        assert_eq!(Availability::BE_RIGHT_BACK.value(), 12500);
        assert_eq!(Availability::AWAY.value(), 15500);
        assert_eq!(Availability::OFFLINE.value(), 18500);
    }

    #[test]
    fn idle_counterparts() {
        assert_eq!(Band::Available.idle(), Band::AvailableIdle);
        assert_eq!(Band::Busy.idle(), Band::BusyIdle);
        assert_eq!(Band::DoNotDisturb.idle(), Band::DoNotDisturb);
        for b in Band::ALL {
            assert_eq!(b.idle().active(), b.active());
        }
    }

    #[test]
    fn availability_parse_is_strict() {
        assert_eq!(
            Availability::parse(" 6500 ").expect("digits"),
            Availability::BUSY
        );
        for bad in ["", "-1", "65 00", "4294967296", "0x10", "+3"] {
            assert!(Availability::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_tokens_round_trip_and_custom_stay_custom() {
        for t in ActivityToken::KNOWN {
            assert_eq!(ActivityToken::parse(t.as_str()).expect("known"), t);
        }
        let busy = ActivityToken::parse("busy").expect("custom");
        assert!(matches!(busy, ActivityToken::Other(_)));
        assert_eq!(busy.as_str(), "busy");
        assert!(
            ActivityToken::parse("On-The-Phone")
                .is_ok_and(|t| matches!(t, ActivityToken::Other(_)))
        );
        assert!(ActivityToken::parse("").is_err());
        assert!(ActivityToken::parse("a b").is_err());
    }

    #[test]
    fn activity_ranges_default_by_token() {
        let phone = Activity::token(ActivityToken::OnThePhone);
        assert!(phone.applies_at(Availability::BUSY));
        assert!(!phone.applies_at(Availability::DO_NOT_DISTURB));
        let ranged = Activity {
            min_availability: Some(Availability::new(6900)),
            ..Activity::token(ActivityToken::UrgentInterruptionsOnly)
        };
        assert!(!ranged.applies_at(Availability::BUSY));
        assert!(ranged.applies_at(Availability::URGENT_INTERRUPTIONS_ONLY));
    }

    #[test]
    fn state_types_round_trip() {
        for t in StateType::ALL {
            assert_eq!(StateType::parse(t.as_str()).expect("known"), t);
        }
        assert_eq!(
            StateType::parse("st:userState").expect("prefixed"),
            StateType::UserState
        );
        assert!(StateType::parse("bogus").is_err());
    }

    #[test]
    fn user_statuses_round_trip() {
        for s in UserStatus::ALL {
            let back = match s.user_state() {
                Some((a, t)) => UserStatus::from_user_state(a, t.as_ref()),
                None => Some(UserStatus::Available),
            };
            assert_eq!(back, Some(s));
        }
        assert_eq!(
            UserStatus::OffWork.user_state().map(|s| s.0),
            Some(Availability::AWAY)
        );
    }
}
