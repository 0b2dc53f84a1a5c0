//! A user's previous-mailbox info and its permanent clearing
//! (`Set-User -PermanentlyClearPreviousMailboxInfo`).
//!
//! Exchange keeps the previous ExchangeGuid, home database and recipient type on a user whose
//! mailbox went away, so the mailbox can be reconnected. The same pointers make a later,
//! correctly synchronised mailbox look "unclean" (brief §4), so an administrator can drop them
//! for good. That is irreversible, hence the explicit [`ClearConfirmation`] naming the user and
//! the [`AuditRecord`] every clearing produces.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use super::{DatabaseName, ExchangeGuid, NameError, User, UserId};

/// What Exchange remembers about a user's former mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousMailbox {
    /// The former mailbox's ExchangeGuid ("Previous Mailbox GUID").
    pub exchange_guid: ExchangeGuid,
    /// The database it lived in ("Previous home MDB"); it may no longer exist.
    pub database: DatabaseName,
    /// `PreviousRecipientTypeDetails`.
    pub recipient_type: RecipientTypeDetails,
}

/// The recipient types previous-mailbox info can record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecipientTypeDetails {
    /// A user with a mailbox.
    UserMailbox,
    /// A shared mailbox.
    SharedMailbox,
    /// A system (arbitration) mailbox.
    ArbitrationMailbox,
    /// A mail-enabled user whose mailbox lives elsewhere.
    MailUser,
}

impl RecipientTypeDetails {
    /// The name Exchange shows (`UserMailbox`), also the stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UserMailbox => "UserMailbox",
            Self::SharedMailbox => "SharedMailbox",
            Self::ArbitrationMailbox => "ArbitrationMailbox",
            Self::MailUser => "MailUser",
        }
    }
}

impl fmt::Display for RecipientTypeDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecipientTypeDetails {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::UserMailbox,
            Self::SharedMailbox,
            Self::ArbitrationMailbox,
            Self::MailUser,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s))
        .ok_or(NameError::Shape {
            kind: "recipient type",
            expected: "UserMailbox, SharedMailbox, ArbitrationMailbox or MailUser",
        })
    }
}

/// The administrator's explicit consent to clear one user's previous-mailbox info.
///
/// It names the user so that a confirmation given for one account can never clear another
/// (a script looping over users with a stale value fails instead of destroying data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClearConfirmation {
    user: UserId,
}

impl ClearConfirmation {
    /// Consent to permanently clear `user`'s previous-mailbox info (the CLI's `--confirm`).
    pub fn permanently_clear(user: &UserId) -> Self {
        Self { user: user.clone() }
    }
}

/// The trace an irreversible clearing leaves: who, when, whom, and what was lost, so the old
/// GUID can still be found in the audit log after it is gone from the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Wall-clock time of the change, supplied by the caller.
    pub at: SystemTime,
    /// Who asked (the admin's name, or `cli` for a local command).
    pub actor: String,
    /// Whose info was cleared.
    pub user: UserId,
    /// What was done.
    pub action: AuditAction,
    /// The values removed.
    pub cleared: PreviousMailbox,
}

/// Actions the anchoring directory audits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditAction {
    /// `Set-User -PermanentlyClearPreviousMailboxInfo`.
    PermanentlyClearPreviousMailboxInfo,
}

impl AuditAction {
    /// The stored and shown name, after the Exchange parameter.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PermanentlyClearPreviousMailboxInfo => "PermanentlyClearPreviousMailboxInfo",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AuditRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self
            .at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        write!(
            f,
            "{secs} {} by {} on {}: cleared previous mailbox {} (database {}, {})",
            self.action,
            self.actor,
            self.user,
            self.cleared.exchange_guid,
            self.cleared.database,
            self.cleared.recipient_type
        )
    }
}

/// Why previous-mailbox info was not cleared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClearPreviousError {
    /// No confirmation was given; nothing was changed.
    #[error(
        "clearing the previous mailbox info of {user} is permanent and prevents reconnecting \
         that mailbox; confirm explicitly (--confirm) to proceed"
    )]
    ConfirmationRequired {
        /// The user it would have cleared.
        user: UserId,
    },
    /// The confirmation names a different user.
    #[error("the confirmation was given for {confirmed}, not for {user}; nothing was cleared")]
    ConfirmationMismatch {
        /// The user asked for.
        user: UserId,
        /// The user the confirmation names.
        confirmed: UserId,
    },
    /// The user has no previous-mailbox info, so there is nothing to clear (and nothing is
    /// audited).
    #[error("{user} has no previous mailbox info to clear")]
    NothingToClear {
        /// The user asked for.
        user: UserId,
    },
    /// No such user.
    #[error("no user named {user}")]
    UnknownUser {
        /// The user asked for.
        user: UserId,
    },
}

/// Clears `user`'s previous-mailbox info if `confirmation` names them, returning the audit
/// record to store with the change (the store writes both in one transaction).
pub fn clear_previous_mailbox(
    user: &mut User,
    confirmation: Option<&ClearConfirmation>,
    actor: &str,
    at: SystemTime,
) -> Result<AuditRecord, ClearPreviousError> {
    let confirmation = confirmation.ok_or_else(|| ClearPreviousError::ConfirmationRequired {
        user: user.id.clone(),
    })?;
    if confirmation.user != user.id {
        return Err(ClearPreviousError::ConfirmationMismatch {
            user: user.id.clone(),
            confirmed: confirmation.user.clone(),
        });
    }
    let cleared =
        user.previous_mailbox
            .take()
            .ok_or_else(|| ClearPreviousError::NothingToClear {
                user: user.id.clone(),
            })?;
    Ok(AuditRecord {
        at,
        actor: bounded_actor(actor),
        user: user.id.clone(),
        action: AuditAction::PermanentlyClearPreviousMailboxInfo,
        cleared,
    })
}

/// Keeps an audit entry readable whatever the caller passes as the actor.
fn bounded_actor(actor: &str) -> String {
    let cleaned: String = actor
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ACTOR_LEN)
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

/// Longest actor name kept in an audit record.
const MAX_ACTOR_LEN: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    fn user_with_previous() -> User {
        User {
            id: "alice@contoso.com".parse().expect("valid"),
            sid: None,
            previous_mailbox: Some(PreviousMailbox {
                exchange_guid: "bb558c35-97f1-4cb9-8ff7-d53741dc928c"
                    .parse()
                    .expect("valid"),
                database: "db-old".parse().expect("valid"),
                recipient_type: RecipientTypeDetails::UserMailbox,
            }),
        }
    }

    #[test]
    fn clear_previous_mailbox_refuses_without_confirmation() {
        let mut u = user_with_previous();
        let err = clear_previous_mailbox(&mut u, None, "admin", SystemTime::UNIX_EPOCH);
        assert!(matches!(
            err,
            Err(ClearPreviousError::ConfirmationRequired { .. })
        ));
        assert!(
            u.previous_mailbox.is_some(),
            "nothing changes without confirmation"
        );
    }

    #[test]
    fn clear_previous_mailbox_refuses_a_confirmation_for_another_user() {
        let mut u = user_with_previous();
        let other = ClearConfirmation::permanently_clear(&"bob@contoso.com".parse().expect("ok"));
        let err = clear_previous_mailbox(&mut u, Some(&other), "admin", SystemTime::UNIX_EPOCH);
        assert!(matches!(
            err,
            Err(ClearPreviousError::ConfirmationMismatch { .. })
        ));
        assert!(u.previous_mailbox.is_some());
    }

    #[test]
    fn clear_previous_mailbox_clears_and_audits_what_was_removed() {
        let mut u = user_with_previous();
        let before = u.previous_mailbox.clone();
        let ok = ClearConfirmation::permanently_clear(&u.id);
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_450_000_000);
        let audit = clear_previous_mailbox(&mut u, Some(&ok), "admin\n", at).expect("clears");
        assert_eq!(u.previous_mailbox, None);
        assert_eq!(Some(audit.cleared.clone()), before);
        assert_eq!(audit.actor, "admin");
        assert_eq!(
            audit.action,
            AuditAction::PermanentlyClearPreviousMailboxInfo
        );
        assert!(
            audit
                .to_string()
                .contains("bb558c35-97f1-4cb9-8ff7-d53741dc928c")
        );

        let again = clear_previous_mailbox(&mut u, Some(&ok), "admin", at);
        assert!(matches!(
            again,
            Err(ClearPreviousError::NothingToClear { .. })
        ));
    }

    #[test]
    fn recipient_types_round_trip() {
        for t in [
            "UserMailbox",
            "sharedmailbox",
            "ArbitrationMailbox",
            "MailUser",
        ] {
            let parsed: RecipientTypeDetails = t.parse().expect("known");
            assert!(parsed.as_str().eq_ignore_ascii_case(t));
        }
        assert!("Contact".parse::<RecipientTypeDetails>().is_err());
    }
}
