//! The anchoring directory's model: mailbox servers, DAGs, databases and their copies,
//! mailboxes and the users that own them, with the rules that keep them consistent.
//!
//! [`Topology`] is the validated whole. Every change goes through one of its methods, which
//! refuses anything that would leave the directory inconsistent (a DAG of 17, a copy on a
//! server outside the database's DAG, two copies with the same activation preference, ...)
//! with a precise [`ModelError`]. A store keeps rows; the rules live here so every store
//! enforces the same ones.

mod names;
mod previous;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

pub use names::{
    DagName, DatabaseName, ExchangeGuid, NameError, ServerAddress, ServerName, Sid, SiteName,
    SmtpAddress, UserId,
};
pub use previous::{
    AuditAction, AuditRecord, ClearConfirmation, ClearPreviousError, PreviousMailbox,
    RecipientTypeDetails, clear_previous_mailbox,
};

use crate::build::BuildNumber;

/// A mailbox server: where a database copy can be active and where requests are proxied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Its name, shown in `X-BEServer` and used as the key everywhere.
    pub name: ServerName,
    /// Where it answers HTTP.
    pub address: ServerAddress,
    /// Its Active Directory site.
    pub site: SiteName,
    /// Its Exchange build, which decides the organisation's management-shell routing.
    pub build: BuildNumber,
}

/// A database availability group: the servers among which a database's copies may move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dag {
    /// Its name.
    pub name: DagName,
    /// Its members, at most [`MAX_DAG_MEMBERS`].
    pub members: Vec<ServerName>,
}

/// A mailbox database and where its copies are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    /// Its name.
    pub name: DatabaseName,
    /// The DAG its copies live in; `None` for a database on a standalone server (one copy).
    pub dag: Option<DagName>,
    /// Its copies; [`Topology::add_database`] keeps them sorted by activation preference.
    pub copies: Vec<DatabaseCopy>,
}

/// One copy of a database on one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseCopy {
    /// The server holding it.
    pub server: ServerName,
    /// 1 is most preferred; unique within a database.
    pub activation_preference: u32,
    /// Log files not yet copied to this copy, when known: a copy far behind loses data if
    /// activated, so Active Manager can weigh it.
    pub copy_queue_length: Option<u64>,
}

/// What a mailbox is for, which decides whether it has an owner and whether it can anchor
/// a management-shell session for admins without a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailboxType {
    /// A person's mailbox, owned by one user.
    User,
    /// A system mailbox; the management shell falls back to it.
    Arbitration,
    /// A mailbox several people open (usually by explicit logon).
    Shared,
}

impl MailboxType {
    /// The CLI and store spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Arbitration => "arbitration",
            Self::Shared => "shared",
        }
    }

    /// The recipient type a mailbox of this kind leaves in previous-mailbox info.
    pub fn recipient_type(&self) -> RecipientTypeDetails {
        match self {
            Self::User => RecipientTypeDetails::UserMailbox,
            Self::Arbitration => RecipientTypeDetails::ArbitrationMailbox,
            Self::Shared => RecipientTypeDetails::SharedMailbox,
        }
    }
}

impl fmt::Display for MailboxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MailboxType {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::User, Self::Arbitration, Self::Shared]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or(NameError::Shape {
                kind: "mailbox type",
                expected: "user, arbitration or shared",
            })
    }
}

/// A mailbox: what every request is anchored to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// Its identity.
    pub guid: ExchangeGuid,
    /// Its primary SMTP address, unique in the directory.
    pub primary_smtp: SmtpAddress,
    /// The user whose mailbox it is: required for [`MailboxType::User`], optional for shared,
    /// absent for arbitration mailboxes.
    pub owner: Option<UserId>,
    /// What it is for.
    pub kind: MailboxType,
    /// The database holding it.
    pub database: DatabaseName,
}

/// A user as the anchoring directory sees them: a logon name, an optional SID, and
/// previous-mailbox info. The user's own mailbox is the [`MailboxType::User`] mailbox they own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Logon name.
    pub id: UserId,
    /// Security identifier, so `X-AnchorMailbox: SID:...` can name the user.
    pub sid: Option<Sid>,
    /// What remains of a former mailbox, if anything.
    pub previous_mailbox: Option<PreviousMailbox>,
}

/// The validated directory: every server, DAG, database, mailbox and user, with the indexes
/// anchoring needs (address → mailbox, SID → user, user → own mailbox).
#[derive(Clone, Debug, Default)]
pub struct Topology {
    servers: BTreeMap<ServerName, Server>,
    dags: BTreeMap<DagName, Dag>,
    databases: BTreeMap<DatabaseName, Database>,
    mailboxes: BTreeMap<ExchangeGuid, Mailbox>,
    users: BTreeMap<UserId, User>,
    by_smtp: HashMap<SmtpAddress, ExchangeGuid>,
    by_sid: HashMap<Sid, UserId>,
    own_mailbox: HashMap<UserId, ExchangeGuid>,
}

impl Topology {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a directory from stored rows, checking every rule as if each had been added
    /// in dependency order; a store that was edited by hand is caught here, not at request
    /// time.
    pub fn from_parts(
        servers: impl IntoIterator<Item = Server>,
        dags: impl IntoIterator<Item = Dag>,
        databases: impl IntoIterator<Item = Database>,
        users: impl IntoIterator<Item = User>,
        mailboxes: impl IntoIterator<Item = Mailbox>,
    ) -> Result<Self, ModelError> {
        let mut t = Self::new();
        for s in servers {
            t.add_server(s)?;
        }
        for d in dags {
            t.add_dag(d)?;
        }
        for d in databases {
            t.add_database(d)?;
        }
        for u in users {
            t.add_user(u)?;
        }
        for m in mailboxes {
            t.add_mailbox(m)?;
        }
        Ok(t)
    }

    // ---- servers ----

    /// Adds a mailbox server. Names and addresses are unique: two names for one address would
    /// make health and failover decisions disagree about the same machine.
    pub fn add_server(&mut self, server: Server) -> Result<(), ModelError> {
        if self.servers.contains_key(&server.name) {
            return Err(ModelError::ServerExists {
                server: server.name,
            });
        }
        if let Some(other) = self.servers.values().find(|s| s.address == server.address) {
            return Err(ModelError::AddressInUse {
                address: server.address,
                server: other.name.clone(),
            });
        }
        self.servers.insert(server.name.clone(), server);
        Ok(())
    }

    /// Removes a server that no DAG and no database copy refers to.
    pub fn remove_server(&mut self, name: &ServerName) -> Result<Server, ModelError> {
        if !self.servers.contains_key(name) {
            return Err(ModelError::UnknownServer {
                server: name.clone(),
            });
        }
        if let Some(dag) = self.dags.values().find(|d| d.members.contains(name)) {
            return Err(ModelError::ServerInUse {
                server: name.clone(),
                by: format!("DAG {}", dag.name),
            });
        }
        if let Some(db) = self
            .databases
            .values()
            .find(|d| d.copies.iter().any(|c| &c.server == name))
        {
            return Err(ModelError::ServerInUse {
                server: name.clone(),
                by: format!("a copy of database {}", db.name),
            });
        }
        self.servers
            .remove(name)
            .ok_or_else(|| ModelError::UnknownServer {
                server: name.clone(),
            })
    }

    /// A server by name.
    pub fn server(&self, name: &ServerName) -> Option<&Server> {
        self.servers.get(name)
    }

    /// All servers, by name.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    // ---- DAGs ----

    /// Adds a DAG of 1 to 16 existing servers, none of which is already in another DAG.
    pub fn add_dag(&mut self, dag: Dag) -> Result<(), ModelError> {
        if self.dags.contains_key(&dag.name) {
            return Err(ModelError::DagExists { dag: dag.name });
        }
        if dag.members.is_empty() {
            return Err(ModelError::EmptyDag { dag: dag.name });
        }
        if dag.members.len() > MAX_DAG_MEMBERS {
            return Err(ModelError::DagTooLarge {
                dag: dag.name,
                members: dag.members.len(),
            });
        }
        for (i, m) in dag.members.iter().enumerate() {
            if !self.servers.contains_key(m) {
                return Err(ModelError::UnknownServer { server: m.clone() });
            }
            if dag.members[..i].contains(m) {
                return Err(ModelError::DuplicateDagMember {
                    dag: dag.name.clone(),
                    server: m.clone(),
                });
            }
            if let Some(other) = self.dag_of(m) {
                return Err(ModelError::ServerInAnotherDag {
                    server: m.clone(),
                    dag: other.name.clone(),
                });
            }
        }
        self.dags.insert(dag.name.clone(), dag);
        Ok(())
    }

    /// Removes a DAG that no database lives in.
    pub fn remove_dag(&mut self, name: &DagName) -> Result<Dag, ModelError> {
        if !self.dags.contains_key(name) {
            return Err(ModelError::UnknownDag { dag: name.clone() });
        }
        if let Some(db) = self
            .databases
            .values()
            .find(|d| d.dag.as_ref() == Some(name))
        {
            return Err(ModelError::DagInUse {
                dag: name.clone(),
                database: db.name.clone(),
            });
        }
        self.dags
            .remove(name)
            .ok_or_else(|| ModelError::UnknownDag { dag: name.clone() })
    }

    /// A DAG by name.
    pub fn dag(&self, name: &DagName) -> Option<&Dag> {
        self.dags.get(name)
    }

    /// All DAGs, by name.
    pub fn dags(&self) -> impl Iterator<Item = &Dag> {
        self.dags.values()
    }

    /// The DAG a server belongs to, if any.
    pub fn dag_of(&self, server: &ServerName) -> Option<&Dag> {
        self.dags.values().find(|d| d.members.contains(server))
    }

    // ---- databases ----

    /// Adds a database. In a DAG: 1 to 16 copies, each on a member, one per server, with
    /// distinct activation preferences of at least 1. Standalone: exactly one copy, on a
    /// server outside any DAG. Copies are stored sorted by preference.
    pub fn add_database(&mut self, mut database: Database) -> Result<(), ModelError> {
        let name = database.name.clone();
        if self.databases.contains_key(&name) {
            return Err(ModelError::DatabaseExists { database: name });
        }
        if database.copies.is_empty() {
            return Err(ModelError::NoCopies { database: name });
        }
        if database.copies.len() > MAX_DAG_MEMBERS {
            return Err(ModelError::TooManyCopies {
                database: name,
                copies: database.copies.len(),
            });
        }
        let dag = match &database.dag {
            Some(d) => Some(
                self.dags
                    .get(d)
                    .ok_or_else(|| ModelError::UnknownDag { dag: d.clone() })?,
            ),
            None => None,
        };
        if dag.is_none() && database.copies.len() > 1 {
            return Err(ModelError::StandaloneWithCopies {
                database: name,
                copies: database.copies.len(),
            });
        }
        for (i, copy) in database.copies.iter().enumerate() {
            if !self.servers.contains_key(&copy.server) {
                return Err(ModelError::UnknownServer {
                    server: copy.server.clone(),
                });
            }
            match dag {
                Some(dag) if !dag.members.contains(&copy.server) => {
                    return Err(ModelError::CopyOutsideDag {
                        database: name,
                        server: copy.server.clone(),
                        dag: dag.name.clone(),
                    });
                }
                None => {
                    if let Some(other) = self.dag_of(&copy.server) {
                        return Err(ModelError::StandaloneOnDagMember {
                            database: name,
                            server: copy.server.clone(),
                            dag: other.name.clone(),
                        });
                    }
                }
                _ => {}
            }
            if copy.activation_preference == 0 {
                return Err(ModelError::InvalidPreference {
                    database: name,
                    server: copy.server.clone(),
                });
            }
            let earlier = &database.copies[..i];
            if earlier.iter().any(|c| c.server == copy.server) {
                return Err(ModelError::DuplicateCopy {
                    database: name,
                    server: copy.server.clone(),
                });
            }
            if let Some(first) = earlier
                .iter()
                .find(|c| c.activation_preference == copy.activation_preference)
            {
                return Err(ModelError::DuplicatePreference {
                    database: name,
                    preference: copy.activation_preference,
                    first: first.server.clone(),
                    second: copy.server.clone(),
                });
            }
        }
        database.copies.sort_by_key(|c| c.activation_preference);
        self.databases.insert(name, database);
        Ok(())
    }

    /// Removes a database that holds no mailboxes.
    pub fn remove_database(&mut self, name: &DatabaseName) -> Result<Database, ModelError> {
        if !self.databases.contains_key(name) {
            return Err(ModelError::UnknownDatabase {
                database: name.clone(),
            });
        }
        let held = self
            .mailboxes
            .values()
            .filter(|m| &m.database == name)
            .count();
        if held > 0 {
            return Err(ModelError::DatabaseInUse {
                database: name.clone(),
                mailboxes: held,
            });
        }
        self.databases
            .remove(name)
            .ok_or_else(|| ModelError::UnknownDatabase {
                database: name.clone(),
            })
    }

    /// A database by name.
    pub fn database(&self, name: &DatabaseName) -> Option<&Database> {
        self.databases.get(name)
    }

    /// All databases, by name.
    pub fn databases(&self) -> impl Iterator<Item = &Database> {
        self.databases.values()
    }

    // ---- users ----

    /// Adds a user; logon names and SIDs are unique.
    pub fn add_user(&mut self, user: User) -> Result<(), ModelError> {
        if self.users.contains_key(&user.id) {
            return Err(ModelError::UserExists { user: user.id });
        }
        if let Some(sid) = &user.sid
            && let Some(other) = self.by_sid.get(sid)
        {
            return Err(ModelError::SidInUse {
                sid: sid.clone(),
                user: other.clone(),
            });
        }
        if let Some(sid) = &user.sid {
            self.by_sid.insert(sid.clone(), user.id.clone());
        }
        self.users.insert(user.id.clone(), user);
        Ok(())
    }

    /// Removes a user who owns no mailbox.
    pub fn remove_user(&mut self, id: &UserId) -> Result<User, ModelError> {
        if !self.users.contains_key(id) {
            return Err(ModelError::UnknownUser { user: id.clone() });
        }
        if let Some(m) = self
            .mailboxes
            .values()
            .find(|m| m.owner.as_ref() == Some(id))
        {
            return Err(ModelError::UserInUse {
                user: id.clone(),
                mailbox: m.primary_smtp.clone(),
            });
        }
        let user = self
            .users
            .remove(id)
            .ok_or_else(|| ModelError::UnknownUser { user: id.clone() })?;
        if let Some(sid) = &user.sid {
            self.by_sid.remove(sid);
        }
        Ok(user)
    }

    /// A user by logon name.
    pub fn user(&self, id: &UserId) -> Option<&User> {
        self.users.get(id)
    }

    /// A user by SID.
    pub fn user_by_sid(&self, sid: &Sid) -> Option<&User> {
        self.by_sid.get(sid).and_then(|id| self.users.get(id))
    }

    /// All users, by logon name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Records previous-mailbox info on a user (an import from another directory); removing
    /// a user mailbox records it automatically.
    pub fn set_previous_mailbox(
        &mut self,
        id: &UserId,
        previous: Option<PreviousMailbox>,
    ) -> Result<(), ModelError> {
        let user = self
            .users
            .get_mut(id)
            .ok_or_else(|| ModelError::UnknownUser { user: id.clone() })?;
        user.previous_mailbox = previous;
        Ok(())
    }

    /// Permanently clears a user's previous-mailbox info (see [`clear_previous_mailbox`]) and
    /// returns the audit record the store must keep with the change.
    pub fn clear_previous_mailbox(
        &mut self,
        id: &UserId,
        confirmation: Option<&ClearConfirmation>,
        actor: &str,
        at: SystemTime,
    ) -> Result<AuditRecord, ClearPreviousError> {
        let user = self
            .users
            .get_mut(id)
            .ok_or_else(|| ClearPreviousError::UnknownUser { user: id.clone() })?;
        clear_previous_mailbox(user, confirmation, actor, at)
    }

    // ---- mailboxes ----

    /// Adds a mailbox in an existing database. GUIDs and primary addresses are unique; a user
    /// mailbox needs an existing owner who has no other user mailbox; an arbitration mailbox
    /// has no owner.
    pub fn add_mailbox(&mut self, mailbox: Mailbox) -> Result<(), ModelError> {
        if self.mailboxes.contains_key(&mailbox.guid) {
            return Err(ModelError::MailboxExists { guid: mailbox.guid });
        }
        if let Some(other) = self.by_smtp.get(&mailbox.primary_smtp) {
            return Err(ModelError::AddressInUseByMailbox {
                address: mailbox.primary_smtp,
                guid: *other,
            });
        }
        if !self.databases.contains_key(&mailbox.database) {
            return Err(ModelError::UnknownDatabase {
                database: mailbox.database,
            });
        }
        match (&mailbox.kind, &mailbox.owner) {
            (MailboxType::User, None) => {
                return Err(ModelError::OwnerRequired {
                    address: mailbox.primary_smtp,
                });
            }
            (MailboxType::Arbitration, Some(_)) => {
                return Err(ModelError::OwnerNotAllowed {
                    address: mailbox.primary_smtp,
                });
            }
            _ => {}
        }
        if let Some(owner) = &mailbox.owner {
            if !self.users.contains_key(owner) {
                return Err(ModelError::UnknownUser {
                    user: owner.clone(),
                });
            }
            if mailbox.kind == MailboxType::User
                && let Some(existing) = self.own_mailbox(owner)
            {
                return Err(ModelError::UserHasMailbox {
                    user: owner.clone(),
                    mailbox: existing.primary_smtp.clone(),
                });
            }
        }
        if mailbox.kind == MailboxType::User
            && let Some(owner) = &mailbox.owner
        {
            self.own_mailbox.insert(owner.clone(), mailbox.guid);
        }
        self.by_smtp
            .insert(mailbox.primary_smtp.clone(), mailbox.guid);
        self.mailboxes.insert(mailbox.guid, mailbox);
        Ok(())
    }

    /// Removes a mailbox. A user mailbox leaves previous-mailbox info on its owner, as
    /// Exchange does when a mailbox is disabled.
    pub fn remove_mailbox(&mut self, guid: &ExchangeGuid) -> Result<Mailbox, ModelError> {
        let mailbox = self
            .mailboxes
            .remove(guid)
            .ok_or(ModelError::UnknownMailbox { guid: *guid })?;
        self.by_smtp.remove(&mailbox.primary_smtp);
        if let Some(owner) = &mailbox.owner
            && mailbox.kind == MailboxType::User
        {
            self.own_mailbox.remove(owner);
            if let Some(user) = self.users.get_mut(owner) {
                user.previous_mailbox = Some(PreviousMailbox {
                    exchange_guid: mailbox.guid,
                    database: mailbox.database.clone(),
                    recipient_type: mailbox.kind.recipient_type(),
                });
            }
        }
        Ok(mailbox)
    }

    /// A mailbox by GUID.
    pub fn mailbox(&self, guid: &ExchangeGuid) -> Option<&Mailbox> {
        self.mailboxes.get(guid)
    }

    /// A mailbox by primary SMTP address.
    pub fn mailbox_by_smtp(&self, address: &SmtpAddress) -> Option<&Mailbox> {
        self.by_smtp
            .get(address)
            .and_then(|g| self.mailboxes.get(g))
    }

    /// The user mailbox a user owns, if any.
    pub fn own_mailbox(&self, user: &UserId) -> Option<&Mailbox> {
        self.own_mailbox
            .get(user)
            .and_then(|g| self.mailboxes.get(g))
    }

    /// All mailboxes, by GUID.
    pub fn mailboxes(&self) -> impl Iterator<Item = &Mailbox> {
        self.mailboxes.values()
    }

    /// Inserts a database without any check, to build states the rules forbid (a store edited
    /// by hand) in tests.
    #[cfg(test)]
    pub(crate) fn insert_unchecked_database(&mut self, database: Database) {
        self.databases.insert(database.name.clone(), database);
    }

    /// Arbitration mailboxes, the well-known management one
    /// (`SystemMailbox{bb558c35-...}`) first: the management shell falls back to it.
    pub fn arbitration_mailboxes(&self) -> Vec<&Mailbox> {
        let mut found: Vec<&Mailbox> = self
            .mailboxes
            .values()
            .filter(|m| m.kind == MailboxType::Arbitration)
            .collect();
        found.sort_by_key(|m| !m.primary_smtp.as_str().starts_with(MANAGEMENT_ARBITRATION));
        found
    }
}

/// Why a directory change was refused. Each variant names the objects involved so the CLI
/// message tells the admin exactly what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A server with this name exists.
    #[error("server {server} already exists")]
    ServerExists {
        /// The name.
        server: ServerName,
    },
    /// Another server already has this address.
    #[error("address {address} is already used by server {server}")]
    AddressInUse {
        /// The address.
        address: ServerAddress,
        /// The server that has it.
        server: ServerName,
    },
    /// No server with this name.
    #[error("no server named {server}")]
    UnknownServer {
        /// The name.
        server: ServerName,
    },
    /// The server is still referred to.
    #[error("server {server} is still used by {by}; remove that first")]
    ServerInUse {
        /// The server.
        server: ServerName,
        /// What refers to it.
        by: String,
    },
    /// A DAG with this name exists.
    #[error("DAG {dag} already exists")]
    DagExists {
        /// The name.
        dag: DagName,
    },
    /// No DAG with this name.
    #[error("no DAG named {dag}")]
    UnknownDag {
        /// The name.
        dag: DagName,
    },
    /// A DAG needs at least one member.
    #[error("DAG {dag} needs at least one member")]
    EmptyDag {
        /// The name.
        dag: DagName,
    },
    /// More members than a DAG can hold.
    #[error("DAG {dag} would have {members} members; a DAG holds at most {MAX_DAG_MEMBERS}")]
    DagTooLarge {
        /// The name.
        dag: DagName,
        /// How many were given.
        members: usize,
    },
    /// A member listed twice.
    #[error("server {server} is listed twice in DAG {dag}")]
    DuplicateDagMember {
        /// The DAG.
        dag: DagName,
        /// The repeated server.
        server: ServerName,
    },
    /// A server can be in one DAG only.
    #[error("server {server} is already a member of DAG {dag}")]
    ServerInAnotherDag {
        /// The server.
        server: ServerName,
        /// The DAG it is in.
        dag: DagName,
    },
    /// Databases still live in the DAG.
    #[error("DAG {dag} still holds database {database}; remove that first")]
    DagInUse {
        /// The DAG.
        dag: DagName,
        /// One database in it.
        database: DatabaseName,
    },
    /// A database with this name exists.
    #[error("database {database} already exists")]
    DatabaseExists {
        /// The name.
        database: DatabaseName,
    },
    /// No database with this name.
    #[error("no database named {database}")]
    UnknownDatabase {
        /// The name.
        database: DatabaseName,
    },
    /// A database needs at least one copy.
    #[error("database {database} needs at least one copy")]
    NoCopies {
        /// The name.
        database: DatabaseName,
    },
    /// More copies than a DAG has members.
    #[error("database {database} would have {copies} copies; at most {MAX_DAG_MEMBERS}")]
    TooManyCopies {
        /// The name.
        database: DatabaseName,
        /// How many were given.
        copies: usize,
    },
    /// Several copies without a DAG to replicate between them.
    #[error(
        "database {database} has {copies} copies but no DAG; a standalone database has one copy"
    )]
    StandaloneWithCopies {
        /// The name.
        database: DatabaseName,
        /// How many were given.
        copies: usize,
    },
    /// A standalone database on a DAG member would escape the DAG's failover.
    #[error(
        "database {database} has no DAG but its copy is on {server}, a member of DAG {dag}; \
         give it --dag {dag}"
    )]
    StandaloneOnDagMember {
        /// The database.
        database: DatabaseName,
        /// The server.
        server: ServerName,
        /// The server's DAG.
        dag: DagName,
    },
    /// A copy on a server outside the database's DAG could never be activated.
    #[error("database {database} cannot have a copy on {server}: it is not a member of DAG {dag}")]
    CopyOutsideDag {
        /// The database.
        database: DatabaseName,
        /// The server.
        server: ServerName,
        /// The database's DAG.
        dag: DagName,
    },
    /// Two copies on one server.
    #[error("database {database} lists server {server} twice")]
    DuplicateCopy {
        /// The database.
        database: DatabaseName,
        /// The server.
        server: ServerName,
    },
    /// Two copies with one preference would make failover order ambiguous.
    #[error(
        "database {database} gives activation preference {preference} to both {first} and \
         {second}; preferences must be distinct"
    )]
    DuplicatePreference {
        /// The database.
        database: DatabaseName,
        /// The repeated preference.
        preference: u32,
        /// The first copy with it.
        first: ServerName,
        /// The second copy with it.
        second: ServerName,
    },
    /// Activation preferences start at 1.
    #[error(
        "database {database}: the copy on {server} needs an activation preference of 1 or more"
    )]
    InvalidPreference {
        /// The database.
        database: DatabaseName,
        /// The server.
        server: ServerName,
    },
    /// Mailboxes still live in the database.
    #[error("database {database} still holds {mailboxes} mailbox(es); move or remove them first")]
    DatabaseInUse {
        /// The database.
        database: DatabaseName,
        /// How many.
        mailboxes: usize,
    },
    /// A mailbox with this GUID exists.
    #[error("a mailbox with ExchangeGuid {guid} already exists")]
    MailboxExists {
        /// The GUID.
        guid: ExchangeGuid,
    },
    /// Another mailbox has this primary address.
    #[error("address {address} already belongs to mailbox {guid}")]
    AddressInUseByMailbox {
        /// The address.
        address: SmtpAddress,
        /// The mailbox that has it.
        guid: ExchangeGuid,
    },
    /// No mailbox with this GUID.
    #[error("no mailbox with ExchangeGuid {guid}")]
    UnknownMailbox {
        /// The GUID.
        guid: ExchangeGuid,
    },
    /// A user mailbox without an owner.
    #[error("user mailbox {address} needs an owner")]
    OwnerRequired {
        /// The mailbox's address.
        address: SmtpAddress,
    },
    /// An arbitration mailbox with an owner.
    #[error("arbitration mailbox {address} cannot have an owner")]
    OwnerNotAllowed {
        /// The mailbox's address.
        address: SmtpAddress,
    },
    /// A user can own one user mailbox.
    #[error("user {user} already has mailbox {mailbox}")]
    UserHasMailbox {
        /// The user.
        user: UserId,
        /// Their mailbox.
        mailbox: SmtpAddress,
    },
    /// A user with this logon name exists.
    #[error("user {user} already exists")]
    UserExists {
        /// The name.
        user: UserId,
    },
    /// No user with this logon name.
    #[error("no user named {user}")]
    UnknownUser {
        /// The name.
        user: UserId,
    },
    /// Another user has this SID.
    #[error("SID {sid} already belongs to {user}")]
    SidInUse {
        /// The SID.
        sid: Sid,
        /// Who has it.
        user: UserId,
    },
    /// The user still owns a mailbox.
    #[error("user {user} still owns mailbox {mailbox}; remove it first")]
    UserInUse {
        /// The user.
        user: UserId,
        /// The mailbox.
        mailbox: SmtpAddress,
    },
}

/// Exchange's limit on DAG members (and so on copies of one database).
pub const MAX_DAG_MEMBERS: usize = 16;

/// Local part of the arbitration mailbox Exchange anchors management sessions to.
const MANAGEMENT_ARBITRATION: &str = "systemmailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn server(name: &str, port: u16, build: &str) -> Server {
        Server {
            name: name.parse().expect("valid"),
            address: format!("127.0.0.1:{port}").parse().expect("valid"),
            site: SiteName::default_site(),
            build: build.parse().expect("valid"),
        }
    }

    pub(crate) fn copy(server: &str, pref: u32) -> DatabaseCopy {
        DatabaseCopy {
            server: server.parse().expect("valid"),
            activation_preference: pref,
            copy_queue_length: None,
        }
    }

    fn dag(name: &str, members: &[&str]) -> Dag {
        Dag {
            name: name.parse().expect("valid"),
            members: members.iter().map(|m| m.parse().expect("valid")).collect(),
        }
    }

    fn db(name: &str, dag: Option<&str>, copies: Vec<DatabaseCopy>) -> Database {
        Database {
            name: name.parse().expect("valid"),
            dag: dag.map(|d| d.parse().expect("valid")),
            copies,
        }
    }

    fn three_servers() -> Topology {
        let mut t = Topology::new();
        for (i, n) in ["ex1", "ex2", "ex3"].iter().enumerate() {
            t.add_server(server(n, 4441 + i as u16, "15.0.1156.6"))
                .expect("adds");
        }
        t.add_server(server("lone", 4450, "15.0.1156.6"))
            .expect("adds");
        t.add_dag(dag("dag1", &["ex1", "ex2", "ex3"]))
            .expect("adds");
        t
    }

    #[test]
    fn dag_over_sixteen_members_is_refused() {
        let mut t = Topology::new();
        let names: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            t.add_server(server(n, 5000 + i as u16, "15.0.1156.6"))
                .expect("adds");
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(matches!(
            t.add_dag(dag("big", &refs)),
            Err(ModelError::DagTooLarge { members: 17, .. })
        ));
        t.add_dag(dag("full", &refs[..16]))
            .expect("16 members is the limit");
    }

    #[test]
    fn dag_members_must_exist_be_distinct_and_belong_to_one_dag() {
        let mut t = three_servers();
        assert!(matches!(
            t.add_dag(dag("d2", &["nope"])),
            Err(ModelError::UnknownServer { .. })
        ));
        assert!(matches!(
            t.add_dag(dag("d2", &["lone", "lone"])),
            Err(ModelError::DuplicateDagMember { .. })
        ));
        assert!(matches!(
            t.add_dag(dag("d2", &["ex1"])),
            Err(ModelError::ServerInAnotherDag { .. })
        ));
        assert!(matches!(
            t.add_dag(dag("d2", &[])),
            Err(ModelError::EmptyDag { .. })
        ));
    }

    #[test]
    fn copy_on_a_server_outside_the_dag_is_refused() {
        let mut t = three_servers();
        let err = t.add_database(db(
            "db1",
            Some("dag1"),
            vec![copy("ex1", 1), copy("lone", 2)],
        ));
        assert!(matches!(err, Err(ModelError::CopyOutsideDag { .. })));
    }

    #[test]
    fn duplicate_activation_preference_is_refused() {
        let mut t = three_servers();
        let err = t.add_database(db(
            "db1",
            Some("dag1"),
            vec![copy("ex1", 1), copy("ex2", 1)],
        ));
        assert!(matches!(
            err,
            Err(ModelError::DuplicatePreference { preference: 1, .. })
        ));
    }

    #[test]
    fn duplicate_copy_zero_preference_and_no_copies_are_refused() {
        let mut t = three_servers();
        assert!(matches!(
            t.add_database(db(
                "db1",
                Some("dag1"),
                vec![copy("ex1", 1), copy("ex1", 2)]
            )),
            Err(ModelError::DuplicateCopy { .. })
        ));
        assert!(matches!(
            t.add_database(db("db1", Some("dag1"), vec![copy("ex1", 0)])),
            Err(ModelError::InvalidPreference { .. })
        ));
        assert!(matches!(
            t.add_database(db("db1", Some("dag1"), vec![])),
            Err(ModelError::NoCopies { .. })
        ));
    }

    #[test]
    fn standalone_databases_have_one_copy_off_any_dag() {
        let mut t = three_servers();
        assert!(matches!(
            t.add_database(db("db1", None, vec![copy("lone", 1), copy("ex1", 2)])),
            Err(ModelError::StandaloneWithCopies { .. })
        ));
        assert!(matches!(
            t.add_database(db("db1", None, vec![copy("ex1", 1)])),
            Err(ModelError::StandaloneOnDagMember { .. })
        ));
        t.add_database(db("db1", None, vec![copy("lone", 1)]))
            .expect("standalone ok");
    }

    #[test]
    fn copies_are_kept_in_preference_order() {
        let mut t = three_servers();
        t.add_database(db(
            "db1",
            Some("dag1"),
            vec![copy("ex3", 3), copy("ex1", 1), copy("ex2", 2)],
        ))
        .expect("adds");
        let prefs: Vec<u32> = t
            .database(&"db1".parse().expect("valid"))
            .expect("exists")
            .copies
            .iter()
            .map(|c| c.activation_preference)
            .collect();
        assert_eq!(prefs, [1, 2, 3]);
    }

    #[test]
    fn removals_refuse_objects_still_in_use() {
        let mut t = three_servers();
        t.add_database(db("db1", Some("dag1"), vec![copy("ex1", 1)]))
            .expect("adds");
        assert!(matches!(
            t.remove_server(&"ex1".parse().expect("valid")),
            Err(ModelError::ServerInUse { .. })
        ));
        assert!(matches!(
            t.remove_dag(&"dag1".parse().expect("valid")),
            Err(ModelError::DagInUse { .. })
        ));
        t.add_user(User {
            id: "alice@contoso.com".parse().expect("valid"),
            sid: None,
            previous_mailbox: None,
        })
        .expect("adds");
        let guid: ExchangeGuid = "00000000-0000-4000-8000-000000000001".parse().expect("ok");
        t.add_mailbox(Mailbox {
            guid,
            primary_smtp: "alice@contoso.com".parse().expect("valid"),
            owner: Some("alice@contoso.com".parse().expect("valid")),
            kind: MailboxType::User,
            database: "db1".parse().expect("valid"),
        })
        .expect("adds");
        assert!(matches!(
            t.remove_database(&"db1".parse().expect("valid")),
            Err(ModelError::DatabaseInUse { mailboxes: 1, .. })
        ));
        assert!(matches!(
            t.remove_user(&"alice@contoso.com".parse().expect("valid")),
            Err(ModelError::UserInUse { .. })
        ));
    }

    #[test]
    fn mailbox_rules_on_owners_and_addresses() {
        let mut t = three_servers();
        t.add_database(db("db1", Some("dag1"), vec![copy("ex1", 1)]))
            .expect("adds");
        let alice: UserId = "alice@contoso.com".parse().expect("valid");
        t.add_user(User {
            id: alice.clone(),
            sid: None,
            previous_mailbox: None,
        })
        .expect("adds");
        let mk = |n: u128, smtp: &str, owner: Option<&UserId>, kind| Mailbox {
            guid: ExchangeGuid::from_u128(n),
            primary_smtp: smtp.parse().expect("valid"),
            owner: owner.cloned(),
            kind,
            database: "db1".parse().expect("valid"),
        };
        assert!(matches!(
            t.add_mailbox(mk(1, "a@contoso.com", None, MailboxType::User)),
            Err(ModelError::OwnerRequired { .. })
        ));
        assert!(matches!(
            t.add_mailbox(mk(
                1,
                "a@contoso.com",
                Some(&alice),
                MailboxType::Arbitration
            )),
            Err(ModelError::OwnerNotAllowed { .. })
        ));
        t.add_mailbox(mk(1, "alice@contoso.com", Some(&alice), MailboxType::User))
            .expect("ok");
        assert!(matches!(
            t.add_mailbox(mk(2, "alice2@contoso.com", Some(&alice), MailboxType::User)),
            Err(ModelError::UserHasMailbox { .. })
        ));
        assert!(matches!(
            t.add_mailbox(mk(3, "ALICE@contoso.com", None, MailboxType::Shared)),
            Err(ModelError::AddressInUseByMailbox { .. })
        ));
        assert_eq!(
            t.own_mailbox(&alice).map(|m| m.guid),
            Some(ExchangeGuid::from_u128(1))
        );
    }

    #[test]
    fn removing_a_user_mailbox_leaves_previous_mailbox_info() {
        let mut t = three_servers();
        t.add_database(db("db1", Some("dag1"), vec![copy("ex1", 1)]))
            .expect("adds");
        let alice: UserId = "alice@contoso.com".parse().expect("valid");
        t.add_user(User {
            id: alice.clone(),
            sid: None,
            previous_mailbox: None,
        })
        .expect("adds");
        let guid = ExchangeGuid::from_u128(7);
        t.add_mailbox(Mailbox {
            guid,
            primary_smtp: "alice@contoso.com".parse().expect("valid"),
            owner: Some(alice.clone()),
            kind: MailboxType::User,
            database: "db1".parse().expect("valid"),
        })
        .expect("adds");
        t.remove_mailbox(&guid).expect("removes");
        let prev = t
            .user(&alice)
            .and_then(|u| u.previous_mailbox.clone())
            .expect("previous info kept");
        assert_eq!(prev.exchange_guid, guid);
        assert_eq!(prev.recipient_type, RecipientTypeDetails::UserMailbox);
        assert!(t.own_mailbox(&alice).is_none());

        assert!(matches!(
            t.clear_previous_mailbox(&alice, None, "admin", SystemTime::UNIX_EPOCH),
            Err(ClearPreviousError::ConfirmationRequired { .. })
        ));
        let confirm = ClearConfirmation::permanently_clear(&alice);
        let audit = t
            .clear_previous_mailbox(&alice, Some(&confirm), "admin", SystemTime::UNIX_EPOCH)
            .expect("clears");
        assert_eq!(audit.cleared.exchange_guid, guid);
        assert!(t.user(&alice).is_some_and(|u| u.previous_mailbox.is_none()));
    }

    #[test]
    fn sids_are_unique_and_indexed() {
        let mut t = Topology::new();
        let sid: Sid = "S-1-5-21-1-2-3-1001".parse().expect("valid");
        t.add_user(User {
            id: "a@contoso.com".parse().expect("valid"),
            sid: Some(sid.clone()),
            previous_mailbox: None,
        })
        .expect("adds");
        assert!(matches!(
            t.add_user(User {
                id: "b@contoso.com".parse().expect("valid"),
                sid: Some(sid.clone()),
                previous_mailbox: None,
            }),
            Err(ModelError::SidInUse { .. })
        ));
        assert_eq!(
            t.user_by_sid(&sid).map(|u| u.id.as_str()),
            Some("a@contoso.com")
        );
    }

    #[test]
    fn servers_need_distinct_names_and_addresses() {
        let mut t = Topology::new();
        t.add_server(server("ex1", 1, "15.0.1156.6")).expect("adds");
        assert!(matches!(
            t.add_server(server("EX1", 2, "15.0.1156.6")),
            Err(ModelError::ServerExists { .. })
        ));
        assert!(matches!(
            t.add_server(server("ex2", 1, "15.0.1156.6")),
            Err(ModelError::AddressInUse { .. })
        ));
    }

    #[test]
    fn arbitration_fallback_prefers_the_management_mailbox() {
        let mut t = three_servers();
        t.add_database(db("db1", Some("dag1"), vec![copy("ex1", 1)]))
            .expect("adds");
        for (n, smtp) in [
            (
                1,
                "systemmailbox{1f05a927-0000-0000-0000-000000000000}@contoso.com",
            ),
            (
                2,
                "systemmailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com",
            ),
        ] {
            t.add_mailbox(Mailbox {
                guid: ExchangeGuid::from_u128(n),
                primary_smtp: smtp.parse().expect("valid"),
                owner: None,
                kind: MailboxType::Arbitration,
                database: "db1".parse().expect("valid"),
            })
            .expect("adds");
        }
        assert_eq!(
            t.arbitration_mailboxes().first().map(|m| m.guid),
            Some(ExchangeGuid::from_u128(2))
        );
    }
}
