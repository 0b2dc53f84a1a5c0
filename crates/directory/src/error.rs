//! The one failure type of the directory, shared by every backend.

use std::fmt;

/// Why a directory operation failed.
///
/// Backends map their own errors onto these variants so that callers (the admin API, the
/// registrar, the CLI) can answer precisely without knowing which store is behind the trait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The domain or user named by the caller is not in the directory. For `add_user` this is
    /// also the answer when the user's domain is not one the server is authoritative for.
    #[error("{kind} {key} not found")]
    NotFound {
        /// What was looked for.
        kind: EntityKind,
        /// The canonical key that was looked for (a domain name or an AOR).
        key: String,
    },

    /// An add would create a second domain or user with the same (case-insensitive) key.
    #[error("{kind} {key} already exists")]
    AlreadyExists {
        /// What the caller tried to add.
        kind: EntityKind,
        /// The canonical key of the existing entry.
        key: String,
    },

    /// A domain cannot be removed while users still live in it; removing it would orphan
    /// their credentials and registrations, so the admin must move or remove them first.
    #[error("domain {domain} still has {users} user(s); remove them first")]
    DomainInUse {
        /// The domain the caller tried to remove.
        domain: String,
        /// How many users still belong to it.
        users: u64,
    },

    /// A user cannot be removed while they own a mailbox in the anchoring directory: the
    /// mailbox would be left without its owner. Remove the mailbox first (which keeps the
    /// user's previous-mailbox info), then the user.
    #[error("user {user} still owns mailbox {mailbox}; remove it first (herald mailbox remove)")]
    UserOwnsMailbox {
        /// The user the caller tried to remove.
        user: String,
        /// The primary address of a mailbox they own.
        mailbox: String,
    },

    /// Adding a contact would make the user's contact list longer than the limit the caller
    /// gave (the presence engine's `max_contacts`).
    #[error("the contact list of {user} is full ({max} contacts)")]
    ContactListFull {
        /// Whose list.
        user: String,
        /// The limit.
        max: usize,
    },

    /// Input did not parse into the directory's typed values (a bad AOR, hostname, display
    /// name or credential). Raised before the store is touched.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which input was rejected.
        field: &'static str,
        /// What is wrong with it, for the admin.
        reason: String,
    },

    /// The store's schema is older than this binary needs and the caller asked not to upgrade
    /// it automatically.
    #[error(
        "directory schema version {found} is older than the {required} this herald needs; \
         run `herald directory prepare` to upgrade it"
    )]
    SchemaOutdated {
        /// The version found in the store.
        found: u32,
        /// The version this binary works with.
        required: u32,
    },

    /// The store was prepared by a newer herald. This binary does not know the newer tables'
    /// rules, so it neither reads nor writes the store.
    #[error(
        "directory schema version {found} is newer than the {supported} this herald knows; \
         upgrade herald (the store was left untouched)"
    )]
    SchemaTooNew {
        /// The version found in the store.
        found: u32,
        /// The newest version this binary knows.
        supported: u32,
    },

    /// A row in the store does not parse back into the directory's types. It means the store
    /// was edited by hand or by a buggy writer; the data is not served.
    #[error("directory store holds invalid data: {0}")]
    Corrupt(String),

    /// The backend failed (I/O, lock timeout, disk full, connection lost). Usually transient or
    /// operational; the source says which.
    #[error("directory storage failure while {context}")]
    Storage {
        /// What the directory was doing, for the log line.
        context: &'static str,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// The kind of entry an [`Error::NotFound`] or [`Error::AlreadyExists`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntityKind {
    /// A SIP domain the server is authoritative for.
    Domain,
    /// A user, keyed by AOR.
    User,
    /// A group of a user's contact list, keyed by its id and the user.
    ContactGroup,
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Domain => "domain",
            Self::User => "user",
            Self::ContactGroup => "contact group",
        })
    }
}

impl Error {
    /// Wraps a backend error with what the directory was doing when it happened.
    pub fn storage(
        context: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Storage {
            context,
            source: Box::new(source),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}
