//! The [`AnchorStore`] conformance suite: what every store must do, written once and run
//! against [`crate::store::MemoryStore`] here and against herald's SQLite directory there.
//!
//! A store mounts it as one `#[test]` per check, each on a fresh store:
//!
//! ```ignore
//! herald_anchor::anchor_store_conformance_tests!(my_fresh_store());
//! ```
//!
//! Every check starts from an empty store. Users are in `contoso.com`: a store backed by a user
//! directory must serve that domain (create it in the factory), since storing a user there may
//! mean creating a directory account. Checks panic on failure, as tests do.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::active_manager::{ActiveCopy, ActiveManager, ActiveManagerConfig};
use crate::model::{
    AuditAction, ClearConfirmation, ClearPreviousError, Dag, DagName, Database, DatabaseCopy,
    DatabaseName, ExchangeGuid, Mailbox, MailboxType, ModelError, PreviousMailbox,
    RecipientTypeDetails, Server, ServerName, SiteName, User, UserId,
};
use crate::store::{
    AdminError, AnchorStore, Change, EventRecord, apply_change, clear_previous_mailbox,
};

/// Generates one `#[test]` per conformance check. `$make` is evaluated afresh in each test and
/// must yield an empty store whose type implements [`AnchorStore`].
#[macro_export]
macro_rules! anchor_store_conformance_tests {
    ($make:expr) => {
        $crate::__anchor_store_checks!($crate::__anchor_store_check_tests, $make);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __anchor_store_check_tests {
    ([$make:expr] $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let store = $make;
                $crate::testing::$check(&store);
            }
        )*
    };
}

/// The single list of checks, so a new check cannot be forgotten by a store.
#[doc(hidden)]
#[macro_export]
macro_rules! __anchor_store_checks {
    ($callback:path, $($args:tt)*) => {
        $callback! {
            [$($args)*]
            an_empty_store_loads_an_empty_directory,
            servers_round_trip_and_are_replaced,
            dags_keep_their_members_in_order,
            databases_round_trip_with_their_copies,
            deleting_a_database_forgets_its_active_copy,
            users_round_trip_with_sid_and_previous_mailbox,
            mailboxes_of_every_kind_round_trip,
            removing_a_mailbox_keeps_previous_mailbox_info,
            clearing_previous_mailbox_info_is_audited,
            events_update_the_active_copy_map,
            active_manager_restarts_where_it_was,
            deleting_absent_rows_is_not_an_error,
            refused_changes_write_nothing,
        }
    };
}

/// A new store holds nothing.
pub fn an_empty_store_loads_an_empty_directory(store: &dyn AnchorStore) {
    let t = store.load_topology().expect("loads");
    assert_eq!(t.servers().count(), 0);
    assert_eq!(t.dags().count(), 0);
    assert_eq!(t.databases().count(), 0);
    assert_eq!(t.mailboxes().count(), 0);
    assert_eq!(t.users().count(), 0);
    assert!(store.load_active_copies().expect("loads").is_empty());
    assert!(store.recent_events(10).expect("reads").is_empty());
    assert!(store.audit_log().expect("reads").is_empty());
}

/// Every field of a server survives, IPv6 literals and padded builds included, and a second
/// put replaces the first.
pub fn servers_round_trip_and_are_replaced(store: &dyn AnchorStore) {
    let ex1 = server("ex1", 4441, "15.0.1156.6");
    let mut v6 = server("ex2", 4442, "15.01.0396.030");
    v6.address = "[::1]:4442".parse().expect("valid");
    v6.site = "branch-office".parse().expect("valid");
    store.put_server(&ex1).expect("puts");
    store.put_server(&v6).expect("puts");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.server(&name("ex1")), Some(&ex1));
    assert_eq!(t.server(&name("ex2")), Some(&v6));

    let mut moved = ex1;
    moved.address = "127.0.0.1:5551".parse().expect("valid");
    moved.build = "15.0.1497.2".parse().expect("valid");
    store.put_server(&moved).expect("replaces");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.server(&name("ex1")), Some(&moved));
    assert_eq!(t.servers().count(), 2);

    store.delete_server(&name("ex2")).expect("deletes");
    let t = store.load_topology().expect("loads");
    assert_eq!(
        t.servers().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["ex1"]
    );
}

/// DAG members come back in the order they were given; a put replaces the member list.
pub fn dags_keep_their_members_in_order(store: &dyn AnchorStore) {
    for (i, n) in ["ex3", "ex1", "ex2", "ex4"].iter().enumerate() {
        store
            .put_server(&server(n, 4441 + i as u16, "15.0.1156.6"))
            .expect("puts");
    }
    let dag = Dag {
        name: "dag1".parse().expect("valid"),
        members: vec![name("ex3"), name("ex1"), name("ex2")],
    };
    store.put_dag(&dag).expect("puts");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.dag(&dag.name), Some(&dag));

    let smaller = Dag {
        name: dag.name.clone(),
        members: vec![name("ex4"), name("ex1")],
    };
    store.put_dag(&smaller).expect("replaces");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.dag(&dag.name), Some(&smaller));
    assert!(t.dag_of(&name("ex3")).is_none(), "ex3 left the DAG");

    store.delete_dag(&dag.name).expect("deletes");
    assert_eq!(store.load_topology().expect("loads").dags().count(), 0);
}

/// Databases keep their DAG and their copies (sorted by activation preference on load), copy
/// queue lengths where reported; standalone databases have no DAG.
pub fn databases_round_trip_with_their_copies(store: &dyn AnchorStore) {
    three_server_dag(store);
    store
        .put_server(&server("lone", 4450, "15.0.1156.6"))
        .expect("puts");
    let mut db1 = database("db1", Some("dag1"), &[("ex3", 3), ("ex1", 1), ("ex2", 2)]);
    db1.copies[0].copy_queue_length = Some(12);
    store.put_database(&db1).expect("puts");
    let standalone = database("db2", None, &[("lone", 1)]);
    store.put_database(&standalone).expect("puts");

    let t = store.load_topology().expect("loads");
    let loaded = t.database(&db("db1")).expect("db1 stored");
    assert_eq!(loaded.dag, db1.dag);
    let copies: Vec<(&str, u32, Option<u64>)> = loaded
        .copies
        .iter()
        .map(|c| {
            (
                c.server.as_str(),
                c.activation_preference,
                c.copy_queue_length,
            )
        })
        .collect();
    assert_eq!(
        copies,
        [("ex1", 1, None), ("ex2", 2, None), ("ex3", 3, Some(12))]
    );
    assert_eq!(t.database(&db("db2")), Some(&standalone));

    let fewer = database("db1", Some("dag1"), &[("ex2", 1)]);
    store.put_database(&fewer).expect("replaces");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.database(&db("db1")), Some(&fewer));
}

/// A deleted database leaves the active-copy map with it (its events stay in the log).
pub fn deleting_a_database_forgets_its_active_copy(store: &dyn AnchorStore) {
    seeded(store);
    store
        .record_event(&mounted("db1", "ex2", 1))
        .expect("records");
    store
        .record_event(&mounted("db2", "ex1", 2))
        .expect("records");
    store.delete_database(&db("db1")).expect("deletes");
    assert_eq!(
        store.load_active_copies().expect("loads"),
        [(db("db2"), ActiveCopy::Mounted(name("ex1")))]
    );
    assert_eq!(store.recent_events(10).expect("reads").len(), 2);
    assert!(
        store
            .load_topology()
            .expect("loads")
            .database(&db("db1"))
            .is_none()
    );
}

/// A user's SID and previous-mailbox info survive; a put replaces them; a delete removes the
/// user.
pub fn users_round_trip_with_sid_and_previous_mailbox(store: &dyn AnchorStore) {
    let mut alice = user("alice@contoso.com");
    alice.sid = Some("S-1-5-21-1-2-3-1001".parse().expect("valid"));
    alice.previous_mailbox = Some(PreviousMailbox {
        exchange_guid: guid(7),
        database: db("db-gone"),
        recipient_type: RecipientTypeDetails::SharedMailbox,
    });
    let bob = user("bob@contoso.com");
    store.put_user(&alice).expect("puts");
    store.put_user(&bob).expect("puts");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.user(&alice.id), Some(&alice));
    assert_eq!(t.user(&bob.id), Some(&bob));
    let sid = alice.sid.clone().expect("set above");
    assert_eq!(t.user_by_sid(&sid).map(|u| &u.id), Some(&alice.id));

    let plain = user("alice@contoso.com");
    store.put_user(&plain).expect("replaces");
    let t = store.load_topology().expect("loads");
    assert_eq!(t.user(&alice.id), Some(&plain));
    assert!(t.user_by_sid(&sid).is_none());

    store.delete_user(&bob.id).expect("deletes");
    let t = store.load_topology().expect("loads");
    assert!(t.user(&bob.id).is_none());
    assert_eq!(t.users().count(), 1);
}

/// User, shared and arbitration mailboxes come back as stored, with their owners.
pub fn mailboxes_of_every_kind_round_trip(store: &dyn AnchorStore) {
    seeded(store);
    let alice = user("alice@contoso.com");
    store.put_user(&alice).expect("puts");
    let own = mailbox(
        1,
        "alice@contoso.com",
        Some(&alice.id),
        MailboxType::User,
        "db1",
    );
    let shared = mailbox(
        2,
        "sales@contoso.com",
        Some(&alice.id),
        MailboxType::Shared,
        "db2",
    );
    let arbitration = mailbox(
        3,
        "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.com",
        None,
        MailboxType::Arbitration,
        "db2",
    );
    for m in [&own, &shared, &arbitration] {
        store.put_mailbox(m).expect("puts");
    }
    let t = store.load_topology().expect("loads");
    assert_eq!(t.mailbox(&own.guid), Some(&own));
    assert_eq!(t.mailbox(&shared.guid), Some(&shared));
    assert_eq!(t.mailbox(&arbitration.guid), Some(&arbitration));
    assert_eq!(t.own_mailbox(&alice.id).map(|m| m.guid), Some(own.guid));
    assert_eq!(
        t.arbitration_mailboxes().first().map(|m| m.guid),
        Some(arbitration.guid)
    );
}

/// Removing a user mailbox (through [`apply_change`]) stores the owner's previous-mailbox info
/// with the removal.
pub fn removing_a_mailbox_keeps_previous_mailbox_info(store: &dyn AnchorStore) {
    seeded(store);
    let alice: UserId = "alice@contoso.com".parse().expect("valid");
    apply_change(store, Change::AddUser(user(alice.as_str()))).expect("adds");
    let own = mailbox(
        9,
        "alice@contoso.com",
        Some(&alice),
        MailboxType::User,
        "db2",
    );
    apply_change(store, Change::AddMailbox(own.clone())).expect("adds");
    apply_change(store, Change::RemoveMailbox(own.guid)).expect("removes");

    let t = store.load_topology().expect("loads");
    assert!(t.mailbox(&own.guid).is_none());
    assert_eq!(
        t.user(&alice).and_then(|u| u.previous_mailbox.clone()),
        Some(PreviousMailbox {
            exchange_guid: own.guid,
            database: db("db2"),
            recipient_type: RecipientTypeDetails::UserMailbox,
        })
    );
}

/// Clearing needs a confirmation naming the user; a refusal writes nothing, a clearing writes
/// the user and its audit record together; the audit log keeps its order and exact times.
pub fn clearing_previous_mailbox_info_is_audited(store: &dyn AnchorStore) {
    let at = SystemTime::UNIX_EPOCH + Duration::new(1_450_000_000, 123_456_789);
    let mut users = Vec::new();
    for (i, id) in ["alice@contoso.com", "bob@contoso.com"].iter().enumerate() {
        let mut u = user(id);
        u.previous_mailbox = Some(PreviousMailbox {
            exchange_guid: guid(100 + i as u128),
            database: db("db-old"),
            recipient_type: RecipientTypeDetails::UserMailbox,
        });
        store.put_user(&u).expect("puts");
        users.push(u);
    }
    let alice = users[0].id.clone();
    let bob = users[1].id.clone();

    let refused = clear_previous_mailbox(store, &alice, None, "admin", at);
    assert!(matches!(
        refused,
        Err(AdminError::Clear(
            ClearPreviousError::ConfirmationRequired { .. }
        ))
    ));
    let wrong = ClearConfirmation::permanently_clear(&bob);
    assert!(matches!(
        clear_previous_mailbox(store, &alice, Some(&wrong), "admin", at),
        Err(AdminError::Clear(
            ClearPreviousError::ConfirmationMismatch { .. }
        ))
    ));
    assert!(store.audit_log().expect("reads").is_empty());
    assert_eq!(
        store.load_topology().expect("loads").user(&alice),
        Some(&users[0]),
        "a refusal changes nothing"
    );

    let first = clear_previous_mailbox(
        store,
        &bob,
        Some(&ClearConfirmation::permanently_clear(&bob)),
        "admin",
        at,
    )
    .expect("clears");
    let later = at + Duration::from_secs(60);
    let second = clear_previous_mailbox(
        store,
        &alice,
        Some(&ClearConfirmation::permanently_clear(&alice)),
        "cli:root",
        later,
    )
    .expect("clears");
    assert_eq!(
        second.action,
        AuditAction::PermanentlyClearPreviousMailboxInfo
    );
    assert_eq!(second.cleared.exchange_guid, guid(100));
    assert_eq!(store.audit_log().expect("reads"), [first, second]);
    let t = store.load_topology().expect("loads");
    assert!(t.users().all(|u| u.previous_mailbox.is_none()));

    assert!(matches!(
        clear_previous_mailbox(
            store,
            &alice,
            Some(&ClearConfirmation::permanently_clear(&alice)),
            "admin",
            later,
        ),
        Err(AdminError::Clear(ClearPreviousError::NothingToClear { .. }))
    ));
    assert_eq!(store.audit_log().expect("reads").len(), 2);
}

/// Events with a database state update the map; others only append; the log reads back
/// oldest first, limited to the most recent.
pub fn events_update_the_active_copy_map(store: &dyn AnchorStore) {
    seeded(store);
    let events = [
        mounted("db1", "ex1", 1),
        mounted("db2", "ex2", 2),
        EventRecord {
            at: time(3),
            database: None,
            active: None,
            message: "server ex1 is unhealthy after 3 failed probe(s): connection failed"
                .to_owned(),
        },
        mounted("db1", "ex3", 4),
        EventRecord {
            at: time(5),
            database: Some(db("db2")),
            active: Some(ActiveCopy::Dismounted),
            message: "database db2 dismounted: no healthy copy".to_owned(),
        },
    ];
    for e in &events {
        store.record_event(e).expect("records");
    }
    let mut copies = store.load_active_copies().expect("loads");
    copies.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        copies,
        [
            (db("db1"), ActiveCopy::Mounted(name("ex3"))),
            (db("db2"), ActiveCopy::Dismounted),
        ]
    );
    assert_eq!(store.recent_events(100).expect("reads"), events);
    assert_eq!(store.recent_events(2).expect("reads"), events[3..]);
    assert!(store.recent_events(0).expect("reads").is_empty());
}

/// The state Active Manager persisted through the store is where a restarted one resumes.
pub fn active_manager_restarts_where_it_was(store: &dyn AnchorStore) {
    seeded(store);
    let topology = Arc::new(store.load_topology().expect("loads"));
    let now = Instant::now();
    let mut am = ActiveManager::new(topology.clone(), ActiveManagerConfig::default(), now);
    am.move_database(now, &db("db1"), &name("ex3"))
        .expect("moves");
    while let Some(e) = am.poll_event() {
        store
            .record_event(&EventRecord::from_event(&e, SystemTime::now()))
            .expect("records");
    }
    let restarted = ActiveManager::restore(
        topology,
        ActiveManagerConfig::default(),
        store.load_active_copies().expect("loads"),
        now,
    );
    let active = |d: &str| {
        restarted
            .active_server(&db(d))
            .map(|s| s.name.to_string())
            .ok()
    };
    assert_eq!(active("db1").as_deref(), Some("ex3"));
    assert_eq!(active("db2").as_deref(), Some("ex2"));
    let log = store.recent_events(10).expect("reads");
    assert!(
        log.iter()
            .any(|e| e.message.contains("switchover from ex1")),
        "{log:?}"
    );
}

/// Deletes are idempotent, as the trait promises.
pub fn deleting_absent_rows_is_not_an_error(store: &dyn AnchorStore) {
    store.delete_server(&name("nope")).expect("no error");
    store
        .delete_dag(&"nope".parse().expect("valid"))
        .expect("no error");
    store.delete_database(&db("nope")).expect("no error");
    store
        .delete_user(&"nobody@contoso.com".parse().expect("valid"))
        .expect("no error");
    store.delete_mailbox(&guid(404), None).expect("no error");
}

/// [`apply_change`] checks a change against the stored directory before writing it.
pub fn refused_changes_write_nothing(store: &dyn AnchorStore) {
    seeded(store);
    let before = store.load_topology().expect("loads");
    let err = apply_change(
        store,
        Change::AddDatabase(database("db3", Some("dag1"), &[("ex1", 1), ("ex2", 1)])),
    );
    assert!(matches!(
        err,
        Err(AdminError::Model(ModelError::DuplicatePreference { .. }))
    ));
    let err = apply_change(store, Change::RemoveServer(name("ex1")));
    assert!(matches!(
        err,
        Err(AdminError::Model(ModelError::ServerInUse { .. }))
    ));
    let after = store.load_topology().expect("loads");
    assert_eq!(after.databases().count(), before.databases().count());
    assert!(after.server(&name("ex1")).is_some());
}

// ---- fixtures ----

/// ex1..ex3 in dag1, db1 (ex1, ex2, ex3) and db2 (ex2, ex3, ex1), through [`apply_change`].
fn seeded(store: &dyn AnchorStore) {
    three_server_dag(store);
    for d in [
        database("db1", Some("dag1"), &[("ex1", 1), ("ex2", 2), ("ex3", 3)]),
        database("db2", Some("dag1"), &[("ex2", 1), ("ex3", 2), ("ex1", 3)]),
    ] {
        apply_change(store, Change::AddDatabase(d)).expect("adds");
    }
}

fn three_server_dag(store: &dyn AnchorStore) {
    for (i, n) in ["ex1", "ex2", "ex3"].iter().enumerate() {
        apply_change(
            store,
            Change::AddServer(server(n, 4441 + i as u16, "15.0.1156.6")),
        )
        .expect("adds");
    }
    apply_change(
        store,
        Change::AddDag(Dag {
            name: dag_name("dag1"),
            members: vec![name("ex1"), name("ex2"), name("ex3")],
        }),
    )
    .expect("adds");
}

fn server(n: &str, port: u16, build: &str) -> Server {
    Server {
        name: name(n),
        address: format!("127.0.0.1:{port}").parse().expect("valid"),
        site: SiteName::default_site(),
        build: build.parse().expect("valid"),
    }
}

fn database(n: &str, dag: Option<&str>, copies: &[(&str, u32)]) -> Database {
    Database {
        name: db(n),
        dag: dag.map(dag_name),
        copies: copies
            .iter()
            .map(|(s, p)| DatabaseCopy {
                server: name(s),
                activation_preference: *p,
                copy_queue_length: None,
            })
            .collect(),
    }
}

fn user(id: &str) -> User {
    User {
        id: id.parse().expect("valid"),
        sid: None,
        previous_mailbox: None,
    }
}

fn mailbox(
    n: u128,
    smtp: &str,
    owner: Option<&UserId>,
    kind: MailboxType,
    database: &str,
) -> Mailbox {
    Mailbox {
        guid: guid(n),
        primary_smtp: smtp.parse().expect("valid"),
        owner: owner.cloned(),
        kind,
        database: db(database),
    }
}

fn mounted(database: &str, server: &str, second: u64) -> EventRecord {
    EventRecord {
        at: time(second),
        database: Some(db(database)),
        active: Some(ActiveCopy::Mounted(name(server))),
        message: format!("database {database} mounted on {server} (switchover)"),
    }
}

fn time(second: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000 + second, 1_000 * second as u32)
}

fn guid(n: u128) -> ExchangeGuid {
    ExchangeGuid::from_random_bytes(n.to_be_bytes())
}

fn name(n: &str) -> ServerName {
    n.parse().expect("valid")
}

fn db(n: &str) -> DatabaseName {
    n.parse().expect("valid")
}

fn dag_name(n: &str) -> DagName {
    n.parse().expect("valid")
}
