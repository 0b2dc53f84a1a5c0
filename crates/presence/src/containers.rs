//! Containers and access levels: who sees which publications.
//!
//! Lync publishes every category instance into a numbered *container*; a watcher sees the
//! instances of the one container it belongs to (lync-exchange-facts §1.5). The remote-access
//! containers are the privacy relationships a user manages: External 100, Company 200, Team
//! 300, Personal 400, Blocked 32000. A watcher that is a member of none sees container 0, which
//! carries only the directory identity.

use std::fmt;

use crate::BodyError;
use crate::categories::{CategoryName, CategorySet};

/// A container id (MS-PRES allows 0–32767; a server creates a container on first publish).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(u16);

impl ContainerId {
    /// 0: anyone not in another container; directory identity only.
    pub const DEFAULT: Self = Self(0);
    /// 1: the owner's own data (roaming, options, contact list).
    pub const SELF: Self = Self(1);
    /// 2: owner-only aggregation input; its outputs go to 100, 200 and 400.
    pub const AGGREGATION: Self = Self(2);
    /// 3: owner-only aggregation input; its outputs go to 300.
    pub const AGGREGATION_TEAM: Self = Self(3);
    /// 100: External Contacts (federated).
    pub const EXTERNAL: Self = Self(100);
    /// 200: Colleagues / Company (same enterprise).
    pub const COMPANY: Self = Self(200);
    /// 300: Workgroup / Team.
    pub const TEAM: Self = Self(300);
    /// 400: Friends and Family / Personal.
    pub const PERSONAL: Self = Self(400);
    /// 32000: Blocked Contacts (see Offline).
    pub const BLOCKED: Self = Self(32000);
    /// The largest id MS-PRES allows.
    pub const MAX: Self = Self(32767);

    /// A container id, if in range.
    pub const fn new(id: u16) -> Option<Self> {
        if id <= Self::MAX.0 {
            Some(Self(id))
        } else {
            None
        }
    }

    /// The number.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// Parses the decimal text of a `container`/`id` attribute.
    pub fn parse(s: &str) -> Result<Self, BodyError> {
        s.trim()
            .parse::<u16>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| BodyError::invalid("container id", s))
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The view a watcher gets of a presentity: the container it resolves to, or the owner's own
/// view. This is the "view" half of the render-cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    /// The presentity itself (self subscription): every container, with metadata.
    Owner,
    /// Personal (400).
    Personal,
    /// Team (300).
    Team,
    /// Company (200).
    Company,
    /// External (100).
    External,
    /// In no container (0): directory identity only.
    Default,
    /// Blocked (32000): sees Offline.
    Blocked,
}

impl AccessLevel {
    /// The levels a watcher can resolve to, most trusted first (`Owner` excluded).
    pub const REMOTE: [Self; 6] = [
        Self::Personal,
        Self::Team,
        Self::Company,
        Self::External,
        Self::Default,
        Self::Blocked,
    ];

    /// The container whose instances this level sees; `None` for the owner, who sees all.
    pub const fn container(self) -> Option<ContainerId> {
        Some(match self {
            Self::Owner => return None,
            Self::Personal => ContainerId::PERSONAL,
            Self::Team => ContainerId::TEAM,
            Self::Company => ContainerId::COMPANY,
            Self::External => ContainerId::EXTERNAL,
            Self::Default => ContainerId::DEFAULT,
            Self::Blocked => ContainerId::BLOCKED,
        })
    }

    /// The level whose container is `id`, if `id` is one of the remote-access containers.
    pub const fn from_container(id: ContainerId) -> Option<Self> {
        Some(match id.0 {
            400 => Self::Personal,
            300 => Self::Team,
            200 => Self::Company,
            100 => Self::External,
            0 => Self::Default,
            32000 => Self::Blocked,
            _ => return None,
        })
    }

    /// The categories herald's default publication grammar places in this level's container,
    /// which is also what it renders for a presentity that publishes without containers (a
    /// SIMPLE client): Blocked sees only the (Offline) state, container 0 only the contact
    /// card, External the state, card and services, Company and closer also the note and
    /// calendar free/busy. Lync's own grammar is the model (Lync 2013 privacy relationships).
    pub fn exposed_categories(self) -> CategorySet {
        use CategoryName as C;
        match self {
            Self::Owner => CategorySet::ALL,
            Self::Blocked => CategorySet::of(&[C::State]),
            Self::Default => CategorySet::of(&[C::ContactCard]),
            Self::External => CategorySet::of(&[C::State, C::ContactCard, C::Services]),
            Self::Company | Self::Team | Self::Personal => CategorySet::of(&[
                C::State,
                C::ContactCard,
                C::Services,
                C::Note,
                C::NoteHistory,
                C::CalendarData,
            ]),
        }
    }

    /// Whether a watcher at this level sees an instance published into `container`.
    pub fn sees(self, container: ContainerId) -> bool {
        match self.container() {
            None => true,
            Some(c) => c == container,
        }
    }

    /// Whether this level must see the person as Offline whatever they publish.
    pub const fn sees_offline(self) -> bool {
        matches!(self, Self::Blocked)
    }
}

/// A container's membership rule (`<member type=".." value=".."/>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    /// One user, by SIP address (stored without `sip:`, as clients send it).
    User(String),
    /// Every user of a domain.
    Domain(String),
    /// Every user of the owner's enterprise.
    SameEnterprise,
    /// Every user of a federated enterprise.
    Federated,
    /// Every user of a public IM cloud.
    PublicCloud,
    /// Anyone.
    Everyone,
}

impl Member {
    /// Builds a member from the `type` and `value` attributes.
    pub fn parse(kind: &str, value: Option<&str>) -> Result<Self, BodyError> {
        let need = |v: Option<&str>| match v.map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v.to_owned()),
            _ => Err(BodyError::MissingAttribute {
                element: "member",
                attribute: "value",
            }),
        };
        Ok(match kind {
            "user" => Self::User(strip_sip(&need(value)?).to_owned()),
            "domain" => Self::Domain(need(value)?),
            "sameEnterprise" => Self::SameEnterprise,
            "federated" => Self::Federated,
            "publicCloud" => Self::PublicCloud,
            "everyone" => Self::Everyone,
            other => return Err(BodyError::invalid("member type", other)),
        })
    }

    /// The `type` attribute.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Domain(_) => "domain",
            Self::SameEnterprise => "sameEnterprise",
            Self::Federated => "federated",
            Self::PublicCloud => "publicCloud",
            Self::Everyone => "everyone",
        }
    }

    /// The `value` attribute, for the kinds that have one.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::User(v) | Self::Domain(v) => Some(v),
            _ => None,
        }
    }

    fn matches(&self, watcher: &Watcher<'_>) -> bool {
        match self {
            Self::User(u) => strip_sip(watcher.uri).eq_ignore_ascii_case(strip_sip(u)),
            Self::Domain(d) => domain_of(watcher.uri).is_some_and(|w| w.eq_ignore_ascii_case(d)),
            Self::SameEnterprise => watcher.relation == Relation::SameEnterprise,
            Self::Federated => watcher.relation == Relation::Federated,
            Self::PublicCloud => watcher.relation == Relation::PublicCloud,
            Self::Everyone => true,
        }
    }

    /// The order membership types are tried in: an explicit user beats a domain, which beats
    /// the broad classes (SIPE's resolution order, lync-exchange-facts §1.5).
    fn rank(&self) -> u8 {
        match self {
            Self::User(_) => 0,
            Self::Domain(_) => 1,
            Self::SameEnterprise => 2,
            Self::Federated => 3,
            Self::PublicCloud => 4,
            Self::Everyone => 5,
        }
    }
}

/// One container and its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The id.
    pub id: ContainerId,
    /// Membership version (clients send the current one with `setContainerMembers`).
    pub version: u32,
    /// The members.
    pub members: Vec<Member>,
}

impl Container {
    /// The containers a new user starts with: colleagues in Company, federated users in
    /// External (what SIPE sets up at first sign-in, sipe-client §3.3).
    pub fn defaults() -> Vec<Self> {
        vec![
            Self {
                id: ContainerId::COMPANY,
                version: 0,
                members: vec![Member::SameEnterprise],
            },
            Self {
                id: ContainerId::EXTERNAL,
                version: 0,
                members: vec![Member::Federated],
            },
        ]
    }
}

/// How a watcher relates to the presentity's enterprise (decided by the engine from its
/// domain configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    /// A user of one of herald's own domains.
    SameEnterprise,
    /// A user of a federated domain.
    Federated,
    /// A public IM cloud user.
    PublicCloud,
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watcher<'a> {
    /// The watcher's address of record (`sip:` optional).
    pub uri: &'a str,
    /// Its relation to the presentity's enterprise.
    pub relation: Relation,
}

/// The access level `watcher` has to `owner`'s presence under `containers`: the owner itself
/// gets [`AccessLevel::Owner`]; otherwise membership types are tried from most to least
/// specific (user, domain, same enterprise, federated, public cloud, everyone), and for each,
/// containers from most restrictive to most open (Blocked, Personal, Team, Company, External).
/// A watcher matching nothing is in container 0 ([`AccessLevel::Default`]).
pub fn access_level(containers: &[Container], owner: &str, watcher: &Watcher<'_>) -> AccessLevel {
    if strip_sip(owner).eq_ignore_ascii_case(strip_sip(watcher.uri)) {
        return AccessLevel::Owner;
    }
    const ORDER: [AccessLevel; 5] = [
        AccessLevel::Blocked,
        AccessLevel::Personal,
        AccessLevel::Team,
        AccessLevel::Company,
        AccessLevel::External,
    ];
    for rank in 0..=5u8 {
        for level in ORDER {
            let Some(id) = level.container() else {
                continue;
            };
            let hit = containers
                .iter()
                .filter(|c| c.id == id)
                .flat_map(|c| c.members.iter())
                .any(|m| m.rank() == rank && m.matches(watcher));
            if hit {
                return level;
            }
        }
    }
    AccessLevel::Default
}

/// `bob@example.test` from `sip:bob@example.test`.
pub(crate) fn strip_sip(uri: &str) -> &str {
    let t = uri.trim();
    t.strip_prefix("sip:")
        .or_else(|| t.strip_prefix("SIP:"))
        .unwrap_or(t)
}

fn domain_of(uri: &str) -> Option<&str> {
    let rest = strip_sip(uri);
    let (_, host) = rest.rsplit_once('@')?;
    Some(host.split([';', ':', '>', '?']).next().unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(uri: &str, relation: Relation) -> Watcher<'_> {
        Watcher { uri, relation }
    }

    #[test]
    fn default_containers_give_colleagues_company_and_federated_external() {
        let c = Container::defaults();
        let owner = "sip:alice@example.test";
        assert_eq!(
            access_level(
                &c,
                owner,
                &w("sip:bob@example.test", Relation::SameEnterprise)
            ),
            AccessLevel::Company
        );
        assert_eq!(
            access_level(&c, owner, &w("sip:x@partner.test", Relation::Federated)),
            AccessLevel::External
        );
        assert_eq!(
            access_level(&c, owner, &w("sip:x@cloud.test", Relation::PublicCloud)),
            AccessLevel::Default
        );
        assert_eq!(
            access_level(
                &c,
                owner,
                &w("alice@EXAMPLE.test", Relation::SameEnterprise)
            ),
            AccessLevel::Owner
        );
    }

    #[test]
    fn explicit_user_membership_beats_broad_rules() {
        let mut c = Container::defaults();
        c.push(Container {
            id: ContainerId::TEAM,
            version: 1,
            members: vec![Member::User("bob@example.test".into())],
        });
        let owner = "sip:alice@example.test";
        assert_eq!(
            access_level(
                &c,
                owner,
                &w("sip:bob@example.test", Relation::SameEnterprise)
            ),
            AccessLevel::Team
        );
        assert_eq!(
            access_level(
                &c,
                owner,
                &w("sip:carol@example.test", Relation::SameEnterprise)
            ),
            AccessLevel::Company
        );
    }

    #[test]
    fn blocked_wins_at_equal_specificity() {
        let c = vec![
            Container {
                id: ContainerId::PERSONAL,
                version: 0,
                members: vec![Member::User("bob@example.test".into())],
            },
            Container {
                id: ContainerId::BLOCKED,
                version: 0,
                members: vec![Member::User("sip:bob@example.test".into())],
            },
        ];
        let level = access_level(
            &c,
            "sip:alice@example.test",
            &w("sip:bob@example.test", Relation::SameEnterprise),
        );
        assert_eq!(level, AccessLevel::Blocked);
        assert!(level.sees_offline());
        assert_eq!(
            level.exposed_categories(),
            CategorySet::of(&[CategoryName::State])
        );
    }

    #[test]
    fn domain_membership() {
        let c = vec![Container {
            id: ContainerId::PERSONAL,
            version: 0,
            members: vec![Member::Domain("partner.test".into())],
        }];
        let level = access_level(
            &c,
            "sip:alice@example.test",
            &w("sip:x@Partner.test;transport=tls", Relation::Federated),
        );
        assert_eq!(level, AccessLevel::Personal);
    }

    #[test]
    fn levels_and_containers_correspond() {
        for l in AccessLevel::REMOTE {
            let c = l.container().expect("remote levels have a container");
            assert_eq!(AccessLevel::from_container(c), Some(l));
            assert!(l.sees(c));
            assert!(!l.sees(ContainerId::AGGREGATION));
        }
        assert!(AccessLevel::Owner.sees(ContainerId::AGGREGATION));
        assert_eq!(ContainerId::parse("32000").ok(), Some(ContainerId::BLOCKED));
        assert!(ContainerId::parse("32768").is_err());
        assert!(ContainerId::parse("-1").is_err());
    }

    #[test]
    fn member_parse() {
        assert_eq!(
            Member::parse("user", Some("sip:bob@x")).ok(),
            Some(Member::User("bob@x".into()))
        );
        assert!(Member::parse("user", None).is_err());
        assert!(Member::parse("martian", None).is_err());
        for m in [
            Member::SameEnterprise,
            Member::Federated,
            Member::PublicCloud,
            Member::Everyone,
            Member::Domain("d".into()),
        ] {
            assert_eq!(Member::parse(m.kind(), m.value()).ok(), Some(m));
        }
    }
}
