//! Active Manager: the one authority on where each database's active copy is.
//!
//! Like Exchange's Primary Active Manager (brief §3.4) it decides which copy is active, reacts
//! to server failures by activating another copy (failover) and carries out planned moves
//! (switchover). Unlike it, this one is sans-IO: it never probes, sleeps or reads a clock. The
//! runtime asks [`ActiveManager::poll_probe`] which server to probe and when, reports the
//! outcome with [`ActiveManager::on_probe`], and drains [`ActiveManager::poll_event`] to log
//! every change and persist the active-copy map, which [`ActiveManager::restore`] reads back
//! after a restart. That makes every failover rule testable with simulated time.
//!
//! Health: a server starts [`Health::Unknown`] (presumed able to serve, so a fresh start routes
//! at once), becomes [`Health::Healthy`] on a successful probe and [`Health::Unhealthy`] after
//! `probe_failures` consecutive failures.
//!
//! Failover: when the server holding an active copy becomes unhealthy, each of its databases
//! moves to the best copy on a server that is not unhealthy (see [`CopySelection`]). With no
//! such copy the database is dismounted, and mounted again as soon as a probe finds one of its
//! copies' servers healthy. There is no automatic fail-back: as in Exchange, moving a database
//! back to its preferred server is a switchover an administrator asks for.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{DatabaseCopy, DatabaseName, Server, ServerAddress, ServerName, Topology};

/// Tunables of health checking and copy selection (`[anchor]` in herald's config).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveManagerConfig {
    /// Time between two probes of one server (`probe_interval_ms`).
    pub probe_interval: Duration,
    /// Consecutive failed probes after which a server is unhealthy (`probe_failures`, ≥ 1).
    pub probe_failures: u32,
    /// How failover ranks the remaining copies.
    pub selection: CopySelection,
}

impl Default for ActiveManagerConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_millis(5_000),
            probe_failures: 3,
            selection: CopySelection::PreferenceFirst,
        }
    }
}

/// How failover ranks candidate copies (all on servers that are not unhealthy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CopySelection {
    /// Best activation preference, then the lowest copy queue length where reported. This is
    /// Exchange's order under `AutoDatabaseMountDial=Lossless`, and herald's default because
    /// it is predictable for administrators. Preferences are unique per database (the model
    /// refuses duplicates), so the queue length only decides between copies that somehow
    /// share a preference.
    #[default]
    PreferenceFirst,
    /// Lowest reported copy queue length first (copies that report none come after those that
    /// do), then activation preference: Exchange's Best Copy Selection order under
    /// `BestAvailability`/`GoodAvailability`, which loses the fewest logs.
    QueueLengthFirst,
}

/// Why a probe failed. Kept with the server so `herald database list` can say why a server is
/// considered down.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No TCP (or HTTP) connection could be made.
    #[error("connection failed: {0}")]
    Connect(String),
    /// No answer within the probe timeout.
    #[error("no answer within the probe timeout")]
    Timeout,
    /// The health endpoint answered, but not with success.
    #[error("health endpoint answered HTTP {0}")]
    Status(u16),
}

/// A server's health as Active Manager believes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet; presumed able to serve.
    Unknown,
    /// The last probe succeeded.
    Healthy,
    /// `probe_failures` consecutive probes failed.
    Unhealthy,
}

/// Health bookkeeping for one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// Current belief.
    pub health: Health,
    /// Failed probes since the last success.
    pub consecutive_failures: u32,
    /// The most recent failure, cleared by a success.
    pub last_error: Option<ProbeError>,
    next_probe: Instant,
}

/// Where a database is, as Active Manager decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mount {
    /// The copy on `server` is active and serves requests.
    Mounted {
        /// The server holding the active copy.
        server: ServerName,
    },
    /// No copy is active; requests for its mailboxes are refused with 503.
    Dismounted {
        /// Why, for the 503 text and the admin.
        reason: DismountReason,
    },
}

/// Why a database is dismounted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DismountReason {
    /// Every server holding a copy is unhealthy.
    NoHealthyCopy {
        /// The server whose failure triggered the dismount, if a failure did.
        failed: Option<ServerName>,
        /// The servers holding copies, all unhealthy.
        copies_on: Vec<ServerName>,
    },
    /// It was dismounted before a restart; it is mounted again once a probe finds one of its
    /// copies' servers healthy.
    AwaitingHealthyCopy,
}

impl fmt::Display for DismountReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHealthyCopy { failed, copies_on } => {
                f.write_str("no healthy copy")?;
                if let Some(s) = failed {
                    write!(f, " after {s} failed")?;
                }
                f.write_str(" (copies on ")?;
                write_list(f, copies_on)?;
                f.write_str(" are all unhealthy)")
            }
            Self::AwaitingHealthyCopy => {
                f.write_str("dismounted before the last restart, waiting for a healthy copy")
            }
        }
    }
}

/// The persisted form of a database's state: what the caller stores so the active-copy map
/// survives restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveCopy {
    /// Active on this server.
    Mounted(ServerName),
    /// Not active anywhere.
    Dismounted,
}

/// One change Active Manager made, for the log and for persistence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmEvent {
    /// When it happened (the `now` of the call that caused it).
    pub at: Instant,
    /// What happened.
    pub kind: AmEventKind,
}

impl AmEvent {
    /// The database state to persist after this event, if it changed one.
    pub fn active_copy(&self) -> Option<(&DatabaseName, ActiveCopy)> {
        match &self.kind {
            AmEventKind::Mounted {
                database, server, ..
            } => Some((database, ActiveCopy::Mounted(server.clone()))),
            AmEventKind::Dismounted { database, .. } => Some((database, ActiveCopy::Dismounted)),
            _ => None,
        }
    }
}

impl fmt::Display for AmEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

/// The kinds of change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmEventKind {
    /// A copy became active.
    Mounted {
        /// The database.
        database: DatabaseName,
        /// Where it is now active.
        server: ServerName,
        /// Why.
        cause: MountCause,
    },
    /// A database lost its active copy.
    Dismounted {
        /// The database.
        database: DatabaseName,
        /// Why.
        reason: DismountReason,
    },
    /// A server crossed the failure threshold.
    ServerUnhealthy {
        /// The server.
        server: ServerName,
        /// Consecutive failures at that point.
        failures: u32,
        /// The last failure.
        error: ProbeError,
    },
    /// An unhealthy server answered a probe again.
    ServerRecovered {
        /// The server.
        server: ServerName,
    },
    /// A database left the directory.
    DatabaseRemoved {
        /// The database.
        database: DatabaseName,
    },
}

impl fmt::Display for AmEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mounted {
                database,
                server,
                cause,
            } => {
                write!(f, "database {database} mounted on {server} ({cause})")
            }
            Self::Dismounted { database, reason } => {
                write!(f, "database {database} dismounted: {reason}")
            }
            Self::ServerUnhealthy {
                server,
                failures,
                error,
            } => write!(
                f,
                "server {server} is unhealthy after {failures} failed probe(s): {error}"
            ),
            Self::ServerRecovered { server } => write!(f, "server {server} is healthy again"),
            Self::DatabaseRemoved { database } => write!(f, "database {database} removed"),
        }
    }
}

/// Why a copy was activated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountCause {
    /// First placement of a database Active Manager had no state for.
    Initial,
    /// Placement read back from the persisted map at start.
    Restored,
    /// Unplanned: the previous server became unhealthy.
    Failover {
        /// The server that failed.
        from: ServerName,
    },
    /// Planned: an administrator moved it.
    Switchover {
        /// Where it was active, if anywhere.
        from: Option<ServerName>,
    },
    /// A dismounted database was mounted again because a copy's server became healthy.
    Recovered,
    /// The directory changed so the previous server no longer holds a copy.
    CopyRemoved {
        /// The server that lost its copy.
        from: ServerName,
    },
}

impl fmt::Display for MountCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Initial => f.write_str("initial placement"),
            Self::Restored => f.write_str("restored after restart"),
            Self::Failover { from } => write!(f, "failover from {from}"),
            Self::Switchover { from: Some(from) } => write!(f, "switchover from {from}"),
            Self::Switchover { from: None } => f.write_str("switchover"),
            Self::Recovered => f.write_str("a copy's server is healthy again"),
            Self::CopyRemoved { from } => write!(f, "copy on {from} removed"),
        }
    }
}

/// What the runtime should do about probing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbePoll {
    /// Probe this server now and report with [`ActiveManager::on_probe`].
    Probe(ProbeTarget),
    /// Nothing is due before this instant.
    Wait(Instant),
    /// There are no servers to probe.
    Idle,
}

/// A server to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Its name, to report the result under.
    pub server: ServerName,
    /// Where to send the probe.
    pub address: ServerAddress,
}

/// Why no server can serve a database right now; the proxy answers 503 with this text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("database {database} is unavailable: {reason}")]
pub struct Unavailable {
    /// The database asked about.
    pub database: DatabaseName,
    /// Why.
    pub reason: UnavailableReason,
}

/// The reasons behind [`Unavailable`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnavailableReason {
    /// Active Manager does not know the database.
    UnknownDatabase,
    /// It is dismounted.
    Dismounted(DismountReason),
}

impl fmt::Display for UnavailableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDatabase => f.write_str("it is not in the directory"),
            Self::Dismounted(reason) => write!(f, "dismounted, {reason}"),
        }
    }
}

/// Why a planned switchover was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchoverError {
    /// No such database.
    #[error("no database named {database}")]
    UnknownDatabase {
        /// The name given.
        database: DatabaseName,
    },
    /// No such server.
    #[error("no server named {server}")]
    UnknownServer {
        /// The name given.
        server: ServerName,
    },
    /// The target holds no copy, so it has nothing to activate.
    #[error("server {server} holds no copy of database {database}")]
    NoCopy {
        /// The database.
        database: DatabaseName,
        /// The target.
        server: ServerName,
    },
    /// Activating a copy on an unhealthy server would take the database down.
    #[error("server {server} is unhealthy ({failures} failed probe(s){}); not moving {database}",
        last_error.as_ref().map(|e| format!(", last: {e}")).unwrap_or_default())]
    TargetUnhealthy {
        /// The database.
        database: DatabaseName,
        /// The target.
        server: ServerName,
        /// Its consecutive failures.
        failures: u32,
        /// Its last failure.
        last_error: Option<ProbeError>,
    },
    /// It is already active there.
    #[error("database {database} is already active on {server}")]
    AlreadyActive {
        /// The database.
        database: DatabaseName,
        /// The server.
        server: ServerName,
    },
}

/// The Active Manager state machine. See the module documentation for the rules.
#[derive(Debug)]
pub struct ActiveManager {
    config: ActiveManagerConfig,
    topology: Arc<Topology>,
    servers: BTreeMap<ServerName, ServerStatus>,
    mounts: BTreeMap<DatabaseName, Mount>,
    reported_queue: HashMap<(DatabaseName, ServerName), u64>,
    events: VecDeque<AmEvent>,
}

impl ActiveManager {
    /// Starts with no persisted state: every database goes to its best copy, every server is
    /// probed at once.
    pub fn new(topology: Arc<Topology>, config: ActiveManagerConfig, now: Instant) -> Self {
        Self::restore(topology, config, std::iter::empty(), now)
    }

    /// Starts from the persisted active-copy map. A database stays where it was if that server
    /// still holds a copy; a database that was dismounted stays so until a probe finds one of
    /// its copies healthy; anything else is placed as [`ActiveManager::new`] would.
    pub fn restore(
        topology: Arc<Topology>,
        config: ActiveManagerConfig,
        persisted: impl IntoIterator<Item = (DatabaseName, ActiveCopy)>,
        now: Instant,
    ) -> Self {
        let config = ActiveManagerConfig {
            probe_failures: config.probe_failures.max(1),
            ..config
        };
        let mut am = Self {
            config,
            topology: Arc::new(Topology::new()),
            servers: BTreeMap::new(),
            mounts: BTreeMap::new(),
            reported_queue: HashMap::new(),
            events: VecDeque::new(),
        };
        let persisted: HashMap<DatabaseName, ActiveCopy> = persisted.into_iter().collect();
        am.install_topology(topology, now);
        let names: Vec<DatabaseName> = am.topology.databases().map(|d| d.name.clone()).collect();
        for name in names {
            match persisted.get(&name) {
                Some(ActiveCopy::Mounted(server)) if am.has_copy(&name, server) => {
                    am.set_mount(now, &name, server.clone(), MountCause::Restored);
                }
                Some(ActiveCopy::Dismounted) => {
                    am.set_dismounted(now, &name, DismountReason::AwaitingHealthyCopy);
                }
                _ => am.place(now, &name, None, MountCause::Initial),
            }
        }
        am
    }

    /// The directory snapshot decisions are made against, shared with the anchoring code so
    /// both see one consistent view.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.topology
    }

    /// The configuration in force.
    pub fn config(&self) -> &ActiveManagerConfig {
        &self.config
    }

    /// Adopts a changed directory: new servers are probed at once, new databases placed,
    /// removed ones forgotten, and a database whose active server lost its copy is moved.
    pub fn update_topology(&mut self, topology: Arc<Topology>, now: Instant) {
        self.install_topology(topology, now);
        let gone: Vec<DatabaseName> = self
            .mounts
            .keys()
            .filter(|d| self.topology.database(d).is_none())
            .cloned()
            .collect();
        for database in gone {
            self.mounts.remove(&database);
            self.push(now, AmEventKind::DatabaseRemoved { database });
        }
        self.reported_queue.retain(|(d, s), _| {
            self.topology
                .database(d)
                .is_some_and(|db| has(&db.copies, s))
        });
        let names: Vec<DatabaseName> = self.topology.databases().map(|d| d.name.clone()).collect();
        for name in names {
            match self.mounts.get(&name).cloned() {
                None => self.place(now, &name, None, MountCause::Initial),
                Some(Mount::Mounted { server }) if !self.has_copy(&name, &server) => {
                    self.place(now, &name, None, MountCause::CopyRemoved { from: server });
                }
                Some(Mount::Dismounted { .. }) => self.remount(now, &name),
                Some(Mount::Mounted { .. }) => {}
            }
        }
    }

    /// Which server to probe next, or until when nothing is due. Returning a target schedules
    /// that server's next probe one interval later, so calling again does not repeat it.
    pub fn poll_probe(&mut self, now: Instant) -> ProbePoll {
        let Some((name, status)) = self.servers.iter_mut().min_by_key(|(_, s)| s.next_probe) else {
            return ProbePoll::Idle;
        };
        if status.next_probe > now {
            return ProbePoll::Wait(status.next_probe);
        }
        status.next_probe = now + self.config.probe_interval;
        match self.topology.server(name) {
            Some(server) => ProbePoll::Probe(ProbeTarget {
                server: server.name.clone(),
                address: server.address.clone(),
            }),
            // Unreachable while `servers` mirrors the topology; wait rather than panic.
            None => ProbePoll::Wait(now + self.config.probe_interval),
        }
    }

    /// Takes a probe outcome. A success makes the server healthy (and mounts databases that
    /// were waiting for it); a failure that reaches `probe_failures` in a row makes it
    /// unhealthy and fails its active databases over. Results for unknown servers (removed
    /// meanwhile) are ignored. The proxy also reports connection failures here, so a dead
    /// server is noticed by the traffic that hits it, not only by the next probe.
    pub fn on_probe(&mut self, now: Instant, server: &ServerName, result: Result<(), ProbeError>) {
        let threshold = self.config.probe_failures;
        let Some(status) = self.servers.get_mut(server) else {
            return;
        };
        match result {
            Ok(()) => {
                let was = status.health;
                status.health = Health::Healthy;
                status.consecutive_failures = 0;
                status.last_error = None;
                if was == Health::Unhealthy {
                    self.push(
                        now,
                        AmEventKind::ServerRecovered {
                            server: server.clone(),
                        },
                    );
                }
                if was != Health::Healthy {
                    let waiting: Vec<DatabaseName> = self
                        .mounts
                        .iter()
                        .filter(|(d, m)| {
                            matches!(m, Mount::Dismounted { .. }) && self.has_copy(d, server)
                        })
                        .map(|(d, _)| d.clone())
                        .collect();
                    for database in waiting {
                        self.remount(now, &database);
                    }
                }
            }
            Err(error) => {
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.last_error = Some(error.clone());
                if status.consecutive_failures >= threshold && status.health != Health::Unhealthy {
                    status.health = Health::Unhealthy;
                    let failures = status.consecutive_failures;
                    self.push(
                        now,
                        AmEventKind::ServerUnhealthy {
                            server: server.clone(),
                            failures,
                            error,
                        },
                    );
                    self.fail_over_from(now, server);
                }
            }
        }
    }

    /// Records a copy's queue length (log files not yet copied), as a replication monitor
    /// reports it; `None` forgets a report. Unknown copies are ignored.
    pub fn report_copy_queue_length(
        &mut self,
        database: &DatabaseName,
        server: &ServerName,
        length: Option<u64>,
    ) {
        if !self.has_copy(database, server) {
            return;
        }
        let key = (database.clone(), server.clone());
        match length {
            Some(l) => self.reported_queue.insert(key, l),
            None => self.reported_queue.remove(&key),
        };
    }

    /// Planned switchover (`herald database move DB --to SERVER`): activates the copy on
    /// `to`. Refused if `to` holds no copy or is unhealthy; a server not yet probed is
    /// accepted, as the administrator knows more than Active Manager does at that point.
    pub fn move_database(
        &mut self,
        now: Instant,
        database: &DatabaseName,
        to: &ServerName,
    ) -> Result<(), SwitchoverError> {
        let Some(mount) = self.mounts.get(database) else {
            return Err(SwitchoverError::UnknownDatabase {
                database: database.clone(),
            });
        };
        let Some(status) = self.servers.get(to) else {
            return Err(SwitchoverError::UnknownServer { server: to.clone() });
        };
        if !self.has_copy(database, to) {
            return Err(SwitchoverError::NoCopy {
                database: database.clone(),
                server: to.clone(),
            });
        }
        if status.health == Health::Unhealthy {
            return Err(SwitchoverError::TargetUnhealthy {
                database: database.clone(),
                server: to.clone(),
                failures: status.consecutive_failures,
                last_error: status.last_error.clone(),
            });
        }
        let from = match mount {
            Mount::Mounted { server } if server == to => {
                return Err(SwitchoverError::AlreadyActive {
                    database: database.clone(),
                    server: to.clone(),
                });
            }
            Mount::Mounted { server } => Some(server.clone()),
            Mount::Dismounted { .. } => None,
        };
        self.set_mount(now, database, to.clone(), MountCause::Switchover { from });
        Ok(())
    }

    /// The server holding `database`'s active copy, or why there is none.
    pub fn active_server(&self, database: &DatabaseName) -> Result<&Server, Unavailable> {
        let unavailable = |reason| Unavailable {
            database: database.clone(),
            reason,
        };
        match self.mounts.get(database) {
            Some(Mount::Mounted { server }) => self
                .topology
                .server(server)
                .ok_or_else(|| unavailable(UnavailableReason::UnknownDatabase)),
            Some(Mount::Dismounted { reason }) => {
                Err(unavailable(UnavailableReason::Dismounted(reason.clone())))
            }
            None => Err(unavailable(UnavailableReason::UnknownDatabase)),
        }
    }

    /// A database's state, for listings.
    pub fn mount(&self, database: &DatabaseName) -> Option<&Mount> {
        self.mounts.get(database)
    }

    /// Every database's state, by name (`herald database list`).
    pub fn mounts(&self) -> impl Iterator<Item = (&DatabaseName, &Mount)> {
        self.mounts.iter()
    }

    /// The map to persist, e.g. for a full rewrite at shutdown.
    pub fn active_copies(&self) -> Vec<(DatabaseName, ActiveCopy)> {
        self.mounts
            .iter()
            .map(|(d, m)| {
                let copy = match m {
                    Mount::Mounted { server } => ActiveCopy::Mounted(server.clone()),
                    Mount::Dismounted { .. } => ActiveCopy::Dismounted,
                };
                (d.clone(), copy)
            })
            .collect()
    }

    /// A server's health bookkeeping.
    pub fn server_status(&self, server: &ServerName) -> Option<&ServerStatus> {
        self.servers.get(server)
    }

    /// Whether requests may be sent to `server` (known and not unhealthy).
    pub fn is_available(&self, server: &ServerName) -> bool {
        self.servers
            .get(server)
            .is_some_and(|s| s.health != Health::Unhealthy)
    }

    /// The next change to log and persist, oldest first. The queue holds at most
    /// [`MAX_QUEUED_EVENTS`]; beyond that the oldest are dropped, so a caller that never
    /// drains cannot make it grow without bound.
    pub fn poll_event(&mut self) -> Option<AmEvent> {
        self.events.pop_front()
    }

    // ---- helpers ----

    fn install_topology(&mut self, topology: Arc<Topology>, now: Instant) {
        self.servers
            .retain(|name, _| topology.server(name).is_some());
        for server in topology.servers() {
            self.servers
                .entry(server.name.clone())
                .or_insert(ServerStatus {
                    health: Health::Unknown,
                    consecutive_failures: 0,
                    last_error: None,
                    next_probe: now,
                });
        }
        self.topology = topology;
    }

    fn has_copy(&self, database: &DatabaseName, server: &ServerName) -> bool {
        self.topology
            .database(database)
            .is_some_and(|d| has(&d.copies, server))
    }

    /// Every database active on `failed` moves to its best remaining copy or is dismounted.
    fn fail_over_from(&mut self, now: Instant, failed: &ServerName) {
        let affected: Vec<DatabaseName> = self
            .mounts
            .iter()
            .filter(|(_, m)| matches!(m, Mount::Mounted { server } if server == failed))
            .map(|(d, _)| d.clone())
            .collect();
        for database in affected {
            self.place(
                now,
                &database,
                Some(failed),
                MountCause::Failover {
                    from: failed.clone(),
                },
            );
        }
    }

    /// Mounts `database` on its best copy that is not unhealthy (and not on `exclude`), or
    /// dismounts it.
    fn place(
        &mut self,
        now: Instant,
        database: &DatabaseName,
        exclude: Option<&ServerName>,
        cause: MountCause,
    ) {
        match self.best_copy(database, exclude, true) {
            Some(server) => self.set_mount(now, database, server, cause),
            None => {
                let copies_on = self
                    .topology
                    .database(database)
                    .map(|d| d.copies.iter().map(|c| c.server.clone()).collect())
                    .unwrap_or_default();
                let reason = DismountReason::NoHealthyCopy {
                    failed: exclude.cloned(),
                    copies_on,
                };
                self.set_dismounted(now, database, reason);
            }
        }
    }

    /// Mounts a dismounted database on its best copy among servers proven healthy.
    fn remount(&mut self, now: Instant, database: &DatabaseName) {
        if let Some(server) = self.best_copy(database, None, false) {
            self.set_mount(now, database, server, MountCause::Recovered);
        }
    }

    /// Ranks the candidate copies per [`CopySelection`]. `allow_unknown` admits servers not
    /// probed yet (presumed healthy); remounting a dismounted database waits for proof.
    fn best_copy(
        &self,
        database: &DatabaseName,
        exclude: Option<&ServerName>,
        allow_unknown: bool,
    ) -> Option<ServerName> {
        let db = self.topology.database(database)?;
        let queue = |c: &DatabaseCopy| {
            self.reported_queue
                .get(&(database.clone(), c.server.clone()))
                .copied()
                .or(c.copy_queue_length)
        };
        db.copies
            .iter()
            .filter(|c| Some(&c.server) != exclude)
            .filter(|c| {
                self.servers.get(&c.server).is_some_and(|s| match s.health {
                    Health::Healthy => true,
                    Health::Unknown => allow_unknown,
                    Health::Unhealthy => false,
                })
            })
            .min_by_key(|c| {
                let q = queue(c);
                match self.config.selection {
                    CopySelection::PreferenceFirst => {
                        (c.activation_preference, q.unwrap_or(u64::MAX), 0)
                    }
                    CopySelection::QueueLengthFirst => (
                        u32::from(q.is_none()),
                        q.unwrap_or(u64::MAX),
                        u64::from(c.activation_preference),
                    ),
                }
            })
            .map(|c| c.server.clone())
    }

    fn set_mount(
        &mut self,
        now: Instant,
        database: &DatabaseName,
        server: ServerName,
        cause: MountCause,
    ) {
        self.mounts.insert(
            database.clone(),
            Mount::Mounted {
                server: server.clone(),
            },
        );
        self.push(
            now,
            AmEventKind::Mounted {
                database: database.clone(),
                server,
                cause,
            },
        );
    }

    fn set_dismounted(&mut self, now: Instant, database: &DatabaseName, reason: DismountReason) {
        self.mounts.insert(
            database.clone(),
            Mount::Dismounted {
                reason: reason.clone(),
            },
        );
        self.push(
            now,
            AmEventKind::Dismounted {
                database: database.clone(),
                reason,
            },
        );
    }

    fn push(&mut self, at: Instant, kind: AmEventKind) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(AmEvent { at, kind });
    }
}

fn has(copies: &[DatabaseCopy], server: &ServerName) -> bool {
    copies.iter().any(|c| &c.server == server)
}

fn write_list(f: &mut fmt::Formatter<'_>, names: &[ServerName]) -> fmt::Result {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{n}")?;
    }
    Ok(())
}

/// Bound on undrained events.
pub const MAX_QUEUED_EVENTS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{copy, server};
    use crate::model::{Dag, Database};

    const INTERVAL: Duration = Duration::from_secs(1);

    fn n(s: &str) -> ServerName {
        s.parse().expect("valid")
    }

    fn d(s: &str) -> DatabaseName {
        s.parse().expect("valid")
    }

    /// ex1..ex3 in dag1; db1 prefers ex1, ex2, ex3; db2 prefers ex2, ex3, ex1.
    fn topology() -> Arc<Topology> {
        let mut t = Topology::new();
        for (i, name) in ["ex1", "ex2", "ex3"].iter().enumerate() {
            t.add_server(server(name, 4441 + i as u16, "15.0.1156.6"))
                .expect("adds");
        }
        t.add_dag(Dag {
            name: "dag1".parse().expect("valid"),
            members: vec![n("ex1"), n("ex2"), n("ex3")],
        })
        .expect("adds");
        for (db, order) in [
            ("db1", ["ex1", "ex2", "ex3"]),
            ("db2", ["ex2", "ex3", "ex1"]),
        ] {
            t.add_database(Database {
                name: d(db),
                dag: Some("dag1".parse().expect("valid")),
                copies: order.iter().zip(1..).map(|(s, p)| copy(s, p)).collect(),
            })
            .expect("adds");
        }
        Arc::new(t)
    }

    fn config(failures: u32) -> ActiveManagerConfig {
        ActiveManagerConfig {
            probe_interval: INTERVAL,
            probe_failures: failures,
            ..Default::default()
        }
    }

    fn active(am: &ActiveManager, db: &str) -> Option<String> {
        am.active_server(&d(db)).ok().map(|s| s.name.to_string())
    }

    fn fail(am: &mut ActiveManager, now: Instant, s: &str, times: u32) {
        for _ in 0..times {
            am.on_probe(now, &n(s), Err(ProbeError::Timeout));
        }
    }

    fn drain(am: &mut ActiveManager) -> Vec<AmEventKind> {
        std::iter::from_fn(|| am.poll_event())
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn initial_placement_uses_activation_preference() {
        let mut am = ActiveManager::new(topology(), config(1), Instant::now());
        assert_eq!(active(&am, "db1").as_deref(), Some("ex1"));
        assert_eq!(active(&am, "db2").as_deref(), Some("ex2"));
        let events = drain(&mut am);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| matches!(
            e,
            AmEventKind::Mounted {
                cause: MountCause::Initial,
                ..
            }
        )));
    }

    #[test]
    fn failover_activates_the_next_preferred_healthy_copy() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        drain(&mut am);
        fail(&mut am, now, "ex1", 1);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex2"));
        assert_eq!(
            active(&am, "db2").as_deref(),
            Some("ex2"),
            "db2 was not on ex1"
        );
        let events = drain(&mut am);
        assert!(matches!(
            &events[0],
            AmEventKind::ServerUnhealthy { failures: 1, .. }
        ));
        assert!(matches!(
            &events[1],
            AmEventKind::Mounted { server, cause: MountCause::Failover { from }, .. }
                if server.as_str() == "ex2" && from.as_str() == "ex1"
        ));
    }

    #[test]
    fn failover_skips_unhealthy_copies_in_preference_order() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        fail(&mut am, now, "ex2", 1);
        fail(&mut am, now, "ex1", 1);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex3"));
        assert_eq!(active(&am, "db2").as_deref(), Some("ex3"));
    }

    #[test]
    fn failover_with_no_healthy_copy_dismounts_with_a_precise_reason() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        fail(&mut am, now, "ex2", 1);
        fail(&mut am, now, "ex3", 1);
        fail(&mut am, now, "ex1", 1);
        let err = am.active_server(&d("db1")).expect_err("dismounted");
        assert_eq!(
            err.reason,
            UnavailableReason::Dismounted(DismountReason::NoHealthyCopy {
                failed: Some(n("ex1")),
                copies_on: vec![n("ex1"), n("ex2"), n("ex3")],
            })
        );
        assert_eq!(
            err.to_string(),
            "database db1 is unavailable: dismounted, no healthy copy after ex1 failed \
             (copies on ex1, ex2, ex3 are all unhealthy)"
        );
        assert!(
            drain(&mut am)
                .iter()
                .any(|e| matches!(e, AmEventKind::Dismounted { .. }))
        );
    }

    #[test]
    fn dismounted_database_remounts_when_a_copy_recovers() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        for s in ["ex1", "ex2", "ex3"] {
            fail(&mut am, now, s, 1);
        }
        drain(&mut am);
        am.on_probe(now, &n("ex3"), Ok(()));
        assert_eq!(active(&am, "db1").as_deref(), Some("ex3"));
        let events = drain(&mut am);
        assert!(matches!(&events[0], AmEventKind::ServerRecovered { .. }));
        assert!(events.iter().any(|e| matches!(
            e,
            AmEventKind::Mounted {
                cause: MountCause::Recovered,
                ..
            }
        )));
    }

    #[test]
    fn recovery_does_not_fail_back_automatically() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        fail(&mut am, now, "ex1", 1);
        am.on_probe(now, &n("ex1"), Ok(()));
        assert_eq!(active(&am, "db1").as_deref(), Some("ex2"));
    }

    #[test]
    fn preference_first_ignores_queue_length_between_distinct_preferences() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        am.report_copy_queue_length(&d("db1"), &n("ex2"), Some(50));
        am.report_copy_queue_length(&d("db1"), &n("ex3"), Some(2));
        fail(&mut am, now, "ex1", 1);
        assert_eq!(
            active(&am, "db1").as_deref(),
            Some("ex2"),
            "preference decides first"
        );
    }

    #[test]
    fn preference_first_breaks_ties_by_copy_queue_length() {
        // The model refuses duplicate preferences; a hand-edited store could still hold them.
        let now = Instant::now();
        let mut t = (*topology()).clone();
        let mut db = t.database(&d("db1")).cloned().expect("db1 exists");
        db.copies[2].activation_preference = 2;
        t.insert_unchecked_database(db);
        let mut am = ActiveManager::new(Arc::new(t), config(1), now);
        am.report_copy_queue_length(&d("db1"), &n("ex2"), Some(50));
        am.report_copy_queue_length(&d("db1"), &n("ex3"), Some(2));
        fail(&mut am, now, "ex1", 1);
        assert_eq!(
            active(&am, "db1").as_deref(),
            Some("ex3"),
            "lower queue wins the tie"
        );
    }

    #[test]
    fn queue_length_first_prefers_the_shortest_reported_queue() {
        let now = Instant::now();
        let cfg = ActiveManagerConfig {
            selection: CopySelection::QueueLengthFirst,
            ..config(1)
        };
        let mut am = ActiveManager::new(topology(), cfg, now);
        am.report_copy_queue_length(&d("db1"), &n("ex2"), Some(40));
        am.report_copy_queue_length(&d("db1"), &n("ex3"), Some(3));
        fail(&mut am, now, "ex1", 1);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex3"));
    }

    #[test]
    fn queue_length_first_puts_unreported_copies_last() {
        let now = Instant::now();
        let cfg = ActiveManagerConfig {
            selection: CopySelection::QueueLengthFirst,
            ..config(1)
        };
        let mut am = ActiveManager::new(topology(), cfg, now);
        am.report_copy_queue_length(&d("db1"), &n("ex3"), Some(100));
        fail(&mut am, now, "ex1", 1);
        assert_eq!(
            active(&am, "db1").as_deref(),
            Some("ex3"),
            "ex2 reports no queue"
        );
    }

    #[test]
    fn probe_failures_must_be_consecutive() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(3), now);
        fail(&mut am, now, "ex1", 2);
        am.on_probe(now, &n("ex1"), Ok(()));
        fail(&mut am, now, "ex1", 2);
        assert_eq!(
            active(&am, "db1").as_deref(),
            Some("ex1"),
            "2 + 2 is not 3 in a row"
        );
        assert_eq!(
            am.server_status(&n("ex1")).map(|s| s.consecutive_failures),
            Some(2)
        );
        fail(&mut am, now, "ex1", 1);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex2"));
        assert_eq!(
            am.server_status(&n("ex1")).map(|s| s.health),
            Some(Health::Unhealthy)
        );
    }

    #[test]
    fn poll_probe_schedules_each_server_once_per_interval() {
        let t0 = Instant::now();
        let mut am = ActiveManager::new(topology(), config(3), t0);
        let mut due = Vec::new();
        while let ProbePoll::Probe(target) = am.poll_probe(t0) {
            due.push(target.server.to_string());
        }
        assert_eq!(
            due,
            ["ex1", "ex2", "ex3"],
            "every server is probed at start"
        );
        assert_eq!(am.poll_probe(t0), ProbePoll::Wait(t0 + INTERVAL));
        let half = t0 + INTERVAL / 2;
        assert_eq!(am.poll_probe(half), ProbePoll::Wait(t0 + INTERVAL));
        let t1 = t0 + INTERVAL;
        assert!(matches!(am.poll_probe(t1), ProbePoll::Probe(_)));
    }

    #[test]
    fn probe_failure_counting_with_simulated_time_detects_within_failures_intervals() {
        let t0 = Instant::now();
        let mut am = ActiveManager::new(topology(), config(3), t0);
        let mut now = t0;
        let mut detected_at = None;
        for _ in 0..10 {
            while let ProbePoll::Probe(target) = am.poll_probe(now) {
                let result = if target.server.as_str() == "ex1" {
                    Err(ProbeError::Connect("refused".into()))
                } else {
                    Ok(())
                };
                am.on_probe(now, &target.server, result);
            }
            if detected_at.is_none() && active(&am, "db1").as_deref() == Some("ex2") {
                detected_at = Some(now);
            }
            match am.poll_probe(now) {
                ProbePoll::Wait(next) => now = next,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            detected_at,
            Some(t0 + 2 * INTERVAL),
            "3rd probe at t0+2s fails it over"
        );
    }

    #[test]
    fn switchover_moves_and_records_the_previous_server() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        drain(&mut am);
        am.move_database(now, &d("db1"), &n("ex3")).expect("moves");
        assert_eq!(active(&am, "db1").as_deref(), Some("ex3"));
        assert_eq!(
            drain(&mut am),
            [AmEventKind::Mounted {
                database: d("db1"),
                server: n("ex3"),
                cause: MountCause::Switchover {
                    from: Some(n("ex1"))
                },
            }]
        );
    }

    #[test]
    fn switchover_onto_an_unhealthy_server_is_refused() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        fail(&mut am, now, "ex3", 1);
        let err = am
            .move_database(now, &d("db1"), &n("ex3"))
            .expect_err("refused");
        assert!(matches!(
            err,
            SwitchoverError::TargetUnhealthy { failures: 1, .. }
        ));
        assert!(
            err.to_string()
                .contains("no answer within the probe timeout")
        );
        assert_eq!(
            active(&am, "db1").as_deref(),
            Some("ex1"),
            "nothing changed"
        );
    }

    #[test]
    fn switchover_refuses_servers_without_a_copy_and_unknown_names() {
        let mut t = (*topology()).clone();
        t.add_server(server("ex4", 4444, "15.0.1156.6"))
            .expect("adds");
        let now = Instant::now();
        let mut am = ActiveManager::new(Arc::new(t), config(1), now);
        assert!(matches!(
            am.move_database(now, &d("db1"), &n("ex4")),
            Err(SwitchoverError::NoCopy { .. })
        ));
        assert!(matches!(
            am.move_database(now, &d("db1"), &n("nope")),
            Err(SwitchoverError::UnknownServer { .. })
        ));
        assert!(matches!(
            am.move_database(now, &d("nope"), &n("ex1")),
            Err(SwitchoverError::UnknownDatabase { .. })
        ));
        assert!(matches!(
            am.move_database(now, &d("db1"), &n("ex1")),
            Err(SwitchoverError::AlreadyActive { .. })
        ));
    }

    #[test]
    fn restore_keeps_persisted_placement_and_dismounts() {
        let now = Instant::now();
        let persisted = vec![
            (d("db1"), ActiveCopy::Mounted(n("ex3"))),
            (d("db2"), ActiveCopy::Dismounted),
        ];
        let mut am = ActiveManager::restore(topology(), config(1), persisted, now);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex3"));
        assert!(matches!(
            am.mount(&d("db2")),
            Some(Mount::Dismounted {
                reason: DismountReason::AwaitingHealthyCopy
            })
        ));
        am.on_probe(now, &n("ex3"), Ok(()));
        assert_eq!(
            active(&am, "db2").as_deref(),
            Some("ex3"),
            "first healthy copy mounts it"
        );
    }

    #[test]
    fn restore_ignores_a_persisted_server_without_a_copy() {
        let now = Instant::now();
        let persisted = vec![(d("db1"), ActiveCopy::Mounted(n("gone")))];
        let am = ActiveManager::restore(topology(), config(1), persisted, now);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex1"));
    }

    #[test]
    fn events_carry_the_state_to_persist() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        drain(&mut am);
        am.move_database(now, &d("db1"), &n("ex2")).expect("moves");
        let event = am.poll_event().expect("one event");
        assert_eq!(
            event.active_copy(),
            Some((&d("db1"), ActiveCopy::Mounted(n("ex2"))))
        );
        let restored = ActiveManager::restore(topology(), config(1), am.active_copies(), now);
        assert_eq!(active(&restored, "db1").as_deref(), Some("ex2"));
    }

    #[test]
    fn topology_update_places_new_databases_and_moves_off_removed_copies() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        drain(&mut am);
        let mut t = (*topology()).clone();
        t.remove_database(&d("db1")).expect("removes");
        t.add_database(Database {
            name: d("db1"),
            dag: Some("dag1".parse().expect("valid")),
            copies: vec![copy("ex2", 1), copy("ex3", 2)],
        })
        .expect("adds");
        t.add_database(Database {
            name: d("db3"),
            dag: Some("dag1".parse().expect("valid")),
            copies: vec![copy("ex3", 1)],
        })
        .expect("adds");
        am.update_topology(Arc::new(t), now);
        assert_eq!(active(&am, "db1").as_deref(), Some("ex2"));
        assert_eq!(active(&am, "db3").as_deref(), Some("ex3"));
        let events = drain(&mut am);
        assert!(events.iter().any(|e| matches!(
            e,
            AmEventKind::Mounted {
                cause: MountCause::CopyRemoved { .. },
                ..
            }
        )));
    }

    #[test]
    fn results_for_unknown_servers_are_ignored() {
        let now = Instant::now();
        let mut am = ActiveManager::new(topology(), config(1), now);
        drain(&mut am);
        am.on_probe(now, &n("nobody"), Err(ProbeError::Timeout));
        assert!(am.poll_event().is_none());
    }
}
