//! herald's user directory: the SIP domains the server is authoritative for, its users, and the
//! password-derived hashes they authenticate with.
//!
//! The [`Directory`] trait is the only thing the rest of herald sees, so that a Front End pool
//! can swap the embedded [`SqliteDirectory`] for PostgreSQL without touching callers. Calls are
//! synchronous: the runtime makes them from `spawn_blocking`, which keeps the trait object-safe
//! and free of any async runtime.
//!
//! Values are parsed into [`Domain`], [`Aor`], [`DisplayName`] and [`Credential`] before they
//! reach a backend, so every backend stores the same canonical forms and none re-validates.
//!
//! The `testing` feature exposes [`testing`], the trait-level conformance suite every backend
//! runs.
//!
//! The same store holds the mailbox-anchoring directory: [`SqliteDirectory`] implements
//! [`herald_anchor::store::AnchorStore`] (mailbox servers, DAGs, databases and copies,
//! mailboxes owned by the directory's users, previous-mailbox info, Active Manager's
//! active-copy map and event log, the audit log; schema migration 3). A write through either
//! trait moves [`Directory::change_token`].
//!
//! It also holds the presence engine's persistent data (schema migration 4): each user's
//! contact list, privacy containers and static publications, through
//! [`SqliteDirectory::presence_store`] (a [`herald_presence::engine::PresenceStore`]) and the
//! contact-list commands [`SqliteDirectory::contact_list`], [`SqliteDirectory::add_contact`]
//! and [`SqliteDirectory::remove_contact`]. Removing a user removes them. The contact-list
//! commands move [`Directory::change_token`]; the engine's own writes (every status or note
//! change) do not, so they do not flush caches of directory data.

//! Registrations acknowledged with a 200 OK are kept there too ([`RegistrationStore`], schema
//! migration 5), so that a restart signs nobody out, and so are presence subscription dialogs
//! ([`SubscriptionStore`], schema migration 7), so that watchers keep watching.

#![warn(missing_docs)]

mod error;
mod model;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{EntityKind, Error};
pub use model::{
    Aor, Credential, CredentialAlgorithm, DisplayName, Domain, NewUser, User, UserQuery,
};
pub use sqlite::{
    OpenOptions, Prepared, RegistrationDurability, SchemaUpgrade, SqliteDirectory,
    SqlitePresenceStore,
};

/// Where acknowledged registrations are kept across restarts. Only bindings the server can
/// reach again after a restart are stored (datagram flows; a connection dies with the process).
pub trait RegistrationStore: Send + Sync {
    /// Replaces, for each user of `batch`, its stored bindings with the given set (empty:
    /// none), all in one transaction: durable when this returns `Ok`. Users that no longer
    /// exist are skipped.
    ///
    /// # Errors
    /// The store could not be written; nothing changed.
    fn save_registrations(&self, batch: &[(Aor, Vec<StoredBinding>)]) -> Result<(), Error>;

    /// Every stored binding of enabled users that is still valid at `now_ms` (Unix
    /// milliseconds), grouped by user in registration order, with the user's home member;
    /// expired ones are deleted.
    ///
    /// # Errors
    /// The store could not be read.
    fn load_registrations(&self, now_ms: i64) -> Result<Vec<StoredRegistrations>, Error>;
}

/// Where acknowledged presence subscription dialogs are kept across restarts (schema migration
/// 7), in the engine's own row shape ([`herald_presence::engine::StoredSubscription`] with the
/// runtime's flow description as text). Each server of a pool keeps and reads back only its
/// own rows (`server`: its member name, empty alone), since only it can reach those flows.
pub trait SubscriptionStore: Send + Sync {
    /// Applies `changes` (insert or replace by local tag; delete) in one transaction: durable
    /// when this returns `Ok`. Rows of subscribers that no longer exist are skipped.
    ///
    /// # Errors
    /// The store could not be written; nothing changed.
    fn save_subscriptions(
        &self,
        server: &str,
        changes: &[herald_presence::engine::SubscriptionChange<String>],
    ) -> Result<(), Error>;

    /// `server`'s stored dialogs of enabled users still valid at `now_ms` (Unix
    /// milliseconds); expired ones are deleted.
    ///
    /// # Errors
    /// The store could not be read.
    fn load_subscriptions(
        &self,
        server: &str,
        now_ms: i64,
    ) -> Result<Vec<herald_presence::engine::StoredSubscription<String>>, Error>;
}

/// One user's stored bindings, as [`RegistrationStore::load_registrations`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistrations {
    /// The user.
    pub aor: Aor,
    /// The pool member the user is homed on ([`User::home`]).
    pub home: Option<String>,
    /// The bindings, in registration order.
    pub bindings: Vec<StoredBinding>,
}

/// One registered contact as the store keeps it: what the registrar needs to rebuild the
/// binding and the path back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    /// The Contact URI.
    pub contact: String,
    /// Contact header parameters (without `expires`), echoed in 200 OKs.
    pub params: String,
    /// `+sip.instance`.
    pub instance: Option<String>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// `q` in thousandths.
    pub q: Option<u16>,
    /// Lync endpoint id.
    pub epid: Option<String>,
    /// The REGISTER's Call-ID.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// When the binding expires, Unix milliseconds.
    pub expires_at_ms: i64,
    /// The runtime's description of the flow back to the client.
    pub flow: String,
    /// The pool member whose socket that flow leaves from (empty for a single server): only
    /// that member can reach the client over it.
    pub server: String,
    /// Where the REGISTER came from, for admin views.
    pub source: String,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
}

/// The user directory as a storage interface.
///
/// Implementations are shared between tasks as `Arc<dyn Directory>` and may be backed by a
/// store other processes write to at the same time (pool members), so every method is one
/// atomic operation: a reader never sees half of a write.
pub trait Directory: Send + Sync {
    /// Makes the server authoritative for `domain`, so users can be created in it.
    ///
    /// Fails with [`Error::AlreadyExists`] if it already is.
    fn add_domain(&self, domain: &Domain) -> Result<(), Error>;

    /// All domains, in name order. The list is small (a handful per deployment).
    fn list_domains(&self) -> Result<Vec<Domain>, Error>;

    /// Stops serving `domain`.
    ///
    /// Fails with [`Error::DomainInUse`] while users remain in it, rather than silently deleting
    /// them, and with [`Error::NotFound`] if it is not there.
    fn remove_domain(&self, domain: &Domain) -> Result<(), Error>;

    /// Creates a user and returns it as stored (with its timestamps).
    ///
    /// Fails with [`Error::NotFound`] (kind [`EntityKind::Domain`]) if the AOR's domain is not
    /// served, [`Error::AlreadyExists`] if a user with the same AOR (ignoring the case of the
    /// user part) exists, and [`Error::InvalidInput`] if two credentials share an
    /// (algorithm, realm).
    fn add_user(&self, user: &NewUser) -> Result<User, Error>;

    /// Creates many users at once, all or none: an import of thousands of accounts is one
    /// transaction (one disk sync) rather than one per user. Returns how many were added.
    ///
    /// Fails as [`Directory::add_user`] does for the first offending user, adding none.
    fn add_users(&self, users: &[NewUser]) -> Result<usize, Error>;

    /// Looks a user up, ignoring the case of the user part; `Ok(None)` when there is none, since
    /// an unknown user is an ordinary answer for the registrar, not a failure.
    fn get_user(&self, aor: &Aor) -> Result<Option<User>, Error>;

    /// One page of users in (domain, case-folded user) order, with their credentials. An empty
    /// page means the listing is complete.
    fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, Error>;

    /// Changes the name other users see. Fails with [`Error::NotFound`] for an unknown user.
    fn set_display_name(&self, aor: &Aor, display_name: &DisplayName) -> Result<(), Error>;

    /// Enables or disables sign-in while keeping the user's data. Fails with
    /// [`Error::NotFound`] for an unknown user.
    fn set_enabled(&self, aor: &Aor, enabled: bool) -> Result<(), Error>;

    /// Homes the user on the pool member `home` (an FQDN), or on the one the pool's hash picks
    /// (`None`). Fails with [`Error::NotFound`] for an unknown user.
    fn set_home(&self, aor: &Aor, home: Option<&str>) -> Result<(), Error>;

    /// Replaces all of a user's credentials at once, so a password change never leaves a
    /// mixture of old and new hashes. An empty slice removes them all (the user can no longer
    /// authenticate). Fails with [`Error::NotFound`] for an unknown user and
    /// [`Error::InvalidInput`] if two credentials share an (algorithm, realm).
    fn set_credentials(&self, aor: &Aor, credentials: &[Credential]) -> Result<(), Error>;

    /// Deletes a user and its credentials. Fails with [`Error::NotFound`] for an unknown user.
    fn remove_user(&self, aor: &Aor) -> Result<(), Error>;

    /// How many users exist in all domains, for metrics and the control panel.
    fn user_count(&self) -> Result<u64, Error>;

    /// A token that differs whenever anything in the store changed since it was last taken,
    /// by this handle or another process (an admin command beside a running server). Caches
    /// of directory data compare tokens instead of expiring on a timer, so a disabled user is
    /// refused as soon as the cache next checks, and an unchanged store is never re-read.
    fn change_token(&self) -> Result<ChangeToken, Error>;
}

/// See [`Directory::change_token`]: equal tokens mean no change in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeToken(u64, u64);

impl ChangeToken {
    /// A token from a backend's two counters (another writer's and its own).
    pub fn new(shared: u64, local: u64) -> Self {
        Self(shared, local)
    }
}

/// Refuses credential sets that would violate the one-hash-per-(algorithm, realm) rule, before
/// a backend turns the duplicate into a constraint error. Returns the set sorted as [`User`]
/// holds it.
fn normalized_credentials(credentials: &[Credential]) -> Result<Vec<Credential>, Error> {
    let mut sorted = credentials.to_vec();
    sorted.sort_by(credential_order);
    if let Some(pair) = sorted
        .windows(2)
        .find(|w| w[0].algorithm() == w[1].algorithm() && w[0].realm() == w[1].realm())
    {
        return Err(Error::invalid(
            "credentials",
            format!(
                "two {} hashes for realm {:?}",
                pair[0].algorithm(),
                pair[0].realm()
            ),
        ));
    }
    Ok(sorted)
}

/// The order [`User::credentials`] is kept in, so equal sets compare equal in every backend.
fn credential_order(a: &Credential, b: &Credential) -> std::cmp::Ordering {
    (a.algorithm(), a.realm()).cmp(&(b.algorithm(), b.realm()))
}
