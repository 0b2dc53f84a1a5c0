use std::time::Instant;

use bytes::Bytes;
use herald_presence::Timestamp;
use herald_presence::engine::{
    AuthenticatedRequest, EndpointKey, Engine, EngineConfig, MemoryStore, OutboundKind,
};
use herald_registrar::{
    Contact as RegContact, ContactBinding, RegisterRequest, Registrar, RegistrarConfig,
};
use herald_sip::{Message, Request, Response};
use proptest::prelude::*;

use super::*;
use crate::sqlite::migrations::MIGRATIONS;
use crate::{Credential, CredentialAlgorithm, Directory, Domain, NewUser};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// A store serving example.test with alice ("Alice Liddell") and bob (no display name).
fn seeded(dir: &SqliteDirectory) {
    dir.add_domain(&Domain::parse("example.test").expect("valid"))
        .expect("adds the domain");
    let mut alice = NewUser::new(daor(ALICE));
    alice.display_name = DisplayName::parse("Alice Liddell").expect("valid");
    dir.add_user(&alice).expect("adds alice");
    dir.add_user(&NewUser::new(daor(BOB))).expect("adds bob");
}

fn fresh() -> SqliteDirectory {
    let dir = SqliteDirectory::open_in_memory().expect("in-memory store");
    seeded(&dir);
    dir
}

fn temp_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("directory.sqlite3");
    (tmp, path)
}

/// The engine's address type.
fn paor(s: &str) -> herald_registrar::Aor {
    herald_registrar::Aor::parse(s).expect("valid AOR")
}

/// The directory's address type.
fn daor(s: &str) -> Aor {
    Aor::parse(s).expect("valid AOR")
}

fn gid(n: u8) -> GroupId {
    GroupId::new(n).expect("valid group id")
}

fn cid(n: u16) -> ContainerId {
    ContainerId::new(n).expect("valid container id")
}

fn group(id: u8, name: &str, external: &str) -> Group {
    Group {
        id: gid(id),
        name: name.to_owned(),
        external: external.to_owned(),
    }
}

fn contact(uri: &str, name: &str, groups: &[u8], subscribed: bool) -> ContactEntry {
    ContactEntry {
        uri: uri.to_owned(),
        name: name.to_owned(),
        groups: groups.iter().map(|g| gid(*g)).collect(),
        subscribed,
        external: String::new(),
    }
}

/// Groups out of id order, contacts in several groups (in no particular order), every field
/// set somewhere.
fn sample_list() -> ContactList {
    ContactList {
        delta_num: 42,
        groups: vec![
            group(1, "~", ""),
            group(5, "Équipe — Zürich", r#"<x a="1"/>"#),
            group(3, "Friends", ""),
        ],
        contacts: vec![
            ContactEntry {
                external: "opaque;data".to_owned(),
                ..contact("sip:carol@example.test", "Carol", &[3, 1], true)
            },
            contact("sip:Dave@Partner.test", "", &[5], false),
            contact("tel:+15550100", "Front desk", &[1, 5, 3], true),
            contact("sip:erin@example.test", "Erin", &[], false),
        ],
    }
}

fn sample_containers() -> Vec<Container> {
    vec![
        Container {
            id: ContainerId::BLOCKED,
            version: 7,
            members: vec![Member::User("mallory@example.test".to_owned())],
        },
        Container {
            id: ContainerId::COMPANY,
            version: 1,
            members: vec![
                Member::SameEnterprise,
                Member::Domain("Example.test".into()),
            ],
        },
        Container {
            id: cid(0),
            version: u32::MAX,
            members: Vec::new(),
        },
        Container {
            id: ContainerId::EXTERNAL,
            version: 0,
            members: vec![
                Member::Federated,
                Member::PublicCloud,
                Member::Everyone,
                // Stored as given, not normalised the way a parsed member would be.
                Member::User("sip:Bob@Example.test ".to_owned()),
            ],
        },
    ]
}

fn key(category: &str, instance: u32, container: u16) -> PublicationKey {
    PublicationKey {
        category: CategoryName::parse(category).expect("valid category"),
        instance,
        container: cid(container),
    }
}

fn publication(category: &str, instance: u32, container: u16, version: u32) -> StoredPublication {
    StoredPublication {
        key: key(category, instance, container),
        version,
        document: format!(
            r#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories"><category name="{category}" instance="{instance}" container="{container}" version="{version}" expireType="static"/></categories>"#
        ),
    }
}

/// How many rows of `table` belong to users.id `user`.
fn rows_of(dir: &SqliteDirectory, table: &str, user: i64) -> i64 {
    dir.lock()
        .query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE user_id = ?1"),
            [user],
            |r| r.get(0),
        )
        .expect("counts")
}

fn user_id_of(dir: &SqliteDirectory, aor: &str) -> i64 {
    let a = daor(aor);
    dir.lock()
        .query_row(
            "SELECT id FROM users WHERE domain = ?1 AND user_key = ?2",
            params![a.domain().as_str(), a.user_key()],
            |r| r.get(0),
        )
        .expect("the user exists")
}

const PRESENCE_TABLES: [&str; 7] = [
    "presence_contact_lists",
    "presence_contact_groups",
    "presence_contacts",
    "presence_contact_memberships",
    "presence_containers",
    "presence_container_members",
    "presence_static_publications",
];

/// Saves one of everything for `user`.
fn fill(store: &mut SqlitePresenceStore, user: &str) {
    store
        .save_contact_list(&paor(user), &sample_list())
        .expect("saves the list");
    store
        .save_containers(&paor(user), &sample_containers())
        .expect("saves containers");
    store
        .write_static_publications(
            &paor(user),
            &[
                StaticChange::Put(publication("state", 536_870_912, 2, 3)),
                StaticChange::Put(publication("note", 0, 200, 1)),
            ],
        )
        .expect("saves publications");
}

fn assert_filled(store: &mut SqlitePresenceStore, user: &str) {
    let u = paor(user);
    assert_eq!(store.contact_list(&u).expect("reads"), Some(sample_list()));
    assert_eq!(store.containers(&u).expect("reads"), sample_containers());
    assert_eq!(
        store.static_publications(&u).expect("reads"),
        [
            publication("state", 536_870_912, 2, 3),
            publication("note", 0, 200, 1)
        ]
    );
}

// ---- round trips ----

#[test]
fn contact_lists_round_trip_exactly() {
    let dir = fresh();
    let mut store = dir.presence_store();
    let alice = paor(ALICE);
    assert_eq!(store.contact_list(&alice).expect("reads"), None);

    store
        .save_contact_list(&alice, &sample_list())
        .expect("saves");
    assert_eq!(
        store.contact_list(&alice).expect("reads"),
        Some(sample_list())
    );

    // A replacement drops what it no longer has.
    let mut smaller = sample_list();
    smaller.delta_num = u32::MAX;
    smaller.groups.remove(1);
    smaller.contacts.retain(|c| !c.groups.contains(&gid(5)));
    store.save_contact_list(&alice, &smaller).expect("saves");
    assert_eq!(store.contact_list(&alice).expect("reads"), Some(smaller));
    assert_eq!(
        rows_of(&dir, "presence_contact_groups", user_id_of(&dir, ALICE)),
        2
    );

    // An empty list is a list, not "none".
    let empty = ContactList::default();
    store.save_contact_list(&alice, &empty).expect("saves");
    assert_eq!(store.contact_list(&alice).expect("reads"), Some(empty));
    assert_eq!(store.contact_list(&paor(BOB)).expect("reads"), None);
}

#[test]
fn containers_round_trip_exactly() {
    let dir = fresh();
    let mut store = dir.presence_store();
    let alice = paor(ALICE);
    assert_eq!(store.containers(&alice).expect("reads"), []);
    store
        .save_containers(&alice, &sample_containers())
        .expect("saves");
    assert_eq!(
        store.containers(&alice).expect("reads"),
        sample_containers()
    );

    let fewer = sample_containers()[1..3].to_vec();
    store.save_containers(&alice, &fewer).expect("saves");
    assert_eq!(store.containers(&alice).expect("reads"), fewer);
    store.save_containers(&alice, &[]).expect("saves");
    assert_eq!(store.containers(&alice).expect("reads"), []);
    assert_eq!(
        rows_of(&dir, "presence_container_members", user_id_of(&dir, ALICE)),
        0
    );
}

/// Static changes give what `MemoryStore` gives, order included, after every step.
#[test]
fn static_publications_follow_memory_store_semantics() {
    let dir = fresh();
    let mut sqlite = dir.presence_store();
    let mut memory = MemoryStore::new();
    let alice = paor(ALICE);
    let steps: Vec<Vec<StaticChange>> = vec![
        vec![
            StaticChange::Put(publication("state", 536_870_912, 2, 0)),
            StaticChange::Put(publication("state", 536_870_912, 3, 0)),
            StaticChange::Put(publication("note", 0, 200, 0)),
        ],
        // Replacing moves the instance last; deleting what is absent is no error.
        vec![
            StaticChange::Put(publication("state", 536_870_912, 2, 1)),
            StaticChange::Delete(key("note", 0, 400)),
        ],
        vec![
            StaticChange::Put(publication("myCustomCategory", u32::MAX, 32767, u32::MAX)),
            StaticChange::Delete(key("state", 536_870_912, 3)),
            StaticChange::Put(publication("note", 0, 100, 0)),
            StaticChange::Put(publication("note", 0, 200, 1)),
        ],
        // Put then delete of the same key within one change set.
        vec![
            StaticChange::Put(publication("calendarData", 1, 300, 0)),
            StaticChange::Delete(key("calendarData", 1, 300)),
        ],
        vec![],
    ];
    for changes in &steps {
        memory
            .write_static_publications(&alice, changes)
            .expect("memory");
        sqlite
            .write_static_publications(&alice, changes)
            .expect("sqlite");
        assert_eq!(
            sqlite.static_publications(&alice).expect("reads"),
            memory.static_publications(&alice).expect("reads")
        );
    }
    assert_eq!(sqlite.static_publications(&alice).expect("reads").len(), 4);
}

#[test]
fn identity_is_the_directory_display_name() {
    let dir = fresh();
    let mut store = dir.presence_store();
    assert_eq!(
        store.identity(&paor(ALICE)).expect("reads"),
        Some(Identity {
            display_name: Some("Alice Liddell".to_owned()),
            ..Identity::default()
        })
    );
    assert_eq!(
        store.identity(&paor(BOB)).expect("reads"),
        None,
        "no name, no card"
    );
    assert_eq!(
        store.identity(&paor("nobody@example.test")).expect("reads"),
        None
    );
    dir.set_display_name(&daor(BOB), &DisplayName::parse("Bob").expect("valid"))
        .expect("renames");
    assert_eq!(
        store
            .identity(&paor(BOB))
            .expect("reads")
            .and_then(|i| i.display_name),
        Some("Bob".to_owned())
    );
}

#[test]
fn unknown_users_have_nothing_and_cannot_be_written() {
    let dir = fresh();
    let mut store = dir.presence_store();
    let ghost = paor("ghost@example.test");
    assert_eq!(store.contact_list(&ghost).expect("reads"), None);
    assert_eq!(store.containers(&ghost).expect("reads"), []);
    assert_eq!(store.static_publications(&ghost).expect("reads"), []);
    let err = store
        .save_contact_list(&ghost, &sample_list())
        .expect_err("no such user");
    assert!(
        err.0.contains("ghost@example.test") && err.0.contains("not found"),
        "{err}"
    );
    store
        .save_containers(&ghost, &sample_containers())
        .expect_err("no such user");
    store
        .write_static_publications(&ghost, &[StaticChange::Put(publication("note", 0, 200, 0))])
        .expect_err("no such user");
    let count: i64 = dir
        .lock()
        .query_row("SELECT COUNT(*) FROM presence_contact_lists", [], |r| {
            r.get(0)
        })
        .expect("counts");
    assert_eq!(count, 0);
}

#[test]
fn a_handle_is_a_send_presence_store_for_the_engine() {
    fn is_send<T: Send + 'static>(_: &T) {}
    let dir = fresh();
    let store: Box<dyn PresenceStore> = Box::new(dir.presence_store());
    is_send(&store);
    // A clone shares the data.
    let mut a = dir.presence_store();
    let mut b = a.clone();
    a.save_containers(&paor(ALICE), &sample_containers())
        .expect("saves");
    assert_eq!(
        b.containers(&paor(ALICE)).expect("reads"),
        sample_containers()
    );
}

#[test]
fn engine_writes_do_not_move_the_change_token_but_admin_commands_do() {
    let dir = fresh();
    let before = dir.change_token().expect("token");
    fill(&mut dir.presence_store(), ALICE);
    assert_eq!(dir.change_token().expect("token"), before);
    dir.add_contact(&daor(ALICE), &daor(BOB), None, None, 250)
        .expect("adds");
    assert_ne!(dir.change_token().expect("token"), before);
}

// ---- transactions ----

#[test]
fn refused_lists_and_containers_change_nothing() {
    let dir = fresh();
    let mut store = dir.presence_store();
    let alice = paor(ALICE);
    fill(&mut store, ALICE);

    let mut twice = sample_list();
    twice.contacts[1].uri = "SIP:CAROL@example.test".to_owned();
    let err = store
        .save_contact_list(&alice, &twice)
        .expect_err("refused");
    assert!(err.0.contains("appears twice"), "{err}");

    let mut stray = sample_list();
    stray.contacts[0].groups.push(gid(9));
    let err = store
        .save_contact_list(&alice, &stray)
        .expect_err("refused");
    assert!(err.0.contains("group 9"), "{err}");

    let mut groups_twice = sample_list();
    groups_twice.groups.push(group(3, "again", ""));
    store
        .save_contact_list(&alice, &groups_twice)
        .expect_err("refused");

    let mut containers = sample_containers();
    containers.push(Container {
        id: ContainerId::BLOCKED,
        version: 0,
        members: Vec::new(),
    });
    let err = store
        .save_containers(&alice, &containers)
        .expect_err("refused");
    assert!(err.0.contains("container 32000 appears twice"), "{err}");

    assert_filled(&mut store, ALICE);
}

/// A write that fails half-way (here a trigger aborting the last insert, as a full disk or a
/// constraint would) is rolled back whole.
#[test]
fn a_write_failing_midway_leaves_nothing() {
    let dir = fresh();
    let mut store = dir.presence_store();
    let alice = paor(ALICE);
    fill(&mut store, ALICE);
    dir.lock()
        .execute_batch(
            "CREATE TEMP TRIGGER fail_statics BEFORE INSERT ON presence_static_publications
             WHEN NEW.category = 'device' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
             CREATE TEMP TRIGGER fail_contacts BEFORE INSERT ON presence_contacts
             WHEN NEW.uri = 'sip:fail@example.test'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
             CREATE TEMP TRIGGER fail_members BEFORE INSERT ON presence_container_members
             WHEN NEW.value = 'fail.test' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .expect("installs the triggers");

    let err = store
        .write_static_publications(
            &alice,
            &[
                StaticChange::Delete(key("note", 0, 200)),
                StaticChange::Put(publication("state", 536_870_912, 2, 4)),
                StaticChange::Put(publication("calendarData", 0, 300, 0)),
                StaticChange::Put(publication("device", 0, 2, 0)),
            ],
        )
        .expect_err("fails");
    assert!(
        err.0.contains("writing the static publications") && err.0.contains("injected failure"),
        "the error says what failed and why: {err}"
    );

    let mut list = sample_list();
    list.contacts
        .push(contact("sip:fail@example.test", "", &[1], true));
    store.save_contact_list(&alice, &list).expect_err("fails");

    let mut containers = sample_containers();
    containers[0]
        .members
        .push(Member::Domain("fail.test".to_owned()));
    store
        .save_containers(&alice, &containers)
        .expect_err("fails");

    assert_filled(&mut store, ALICE);
    dir.add_contact(&daor(ALICE), &daor("fail@example.test"), None, None, 250)
        .expect_err("fails");
    assert_eq!(
        store.contact_list(&alice).expect("reads"),
        Some(sample_list())
    );
}

// ---- users ----

#[test]
fn removing_a_user_removes_its_presence_data() {
    let dir = fresh();
    let mut store = dir.presence_store();
    fill(&mut store, ALICE);
    fill(&mut store, BOB);
    let alice_id = user_id_of(&dir, ALICE);
    for table in PRESENCE_TABLES {
        assert!(
            rows_of(&dir, table, alice_id) > 0,
            "{table} has alice's rows"
        );
    }
    dir.remove_user(&daor(ALICE)).expect("removes alice");
    for table in PRESENCE_TABLES {
        assert_eq!(
            rows_of(&dir, table, alice_id),
            0,
            "{table} lost alice's rows"
        );
    }
    assert_filled(&mut store, BOB);

    // A new account under the same address starts empty.
    dir.add_user(&NewUser::new(daor(ALICE))).expect("re-adds");
    let alice = paor(ALICE);
    assert_eq!(store.contact_list(&alice).expect("reads"), None);
    assert_eq!(store.containers(&alice).expect("reads"), []);
    assert_eq!(store.static_publications(&alice).expect("reads"), []);
    let fk: i64 = dir
        .lock()
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("checks");
    assert_eq!(fk, 0);
}

#[test]
fn presence_data_survives_reopening_the_file() {
    let (_tmp, path) = temp_file();
    {
        let dir = SqliteDirectory::open(&path).expect("opens");
        seeded(&dir);
        fill(&mut dir.presence_store(), ALICE);
    }
    let dir = SqliteDirectory::open(&path).expect("reopens");
    assert_filled(&mut dir.presence_store(), ALICE);
}

/// `herald contact add` in another process, beside a running server.
#[test]
fn another_handle_on_the_file_sees_presence_writes_at_once() {
    let (_tmp, path) = temp_file();
    let server = SqliteDirectory::open(&path).expect("opens");
    seeded(&server);
    let admin = SqliteDirectory::open(&path).expect("opens");
    let mut store = server.presence_store();
    let token = server.change_token().expect("token");
    admin
        .add_contact(&daor(ALICE), &daor(BOB), Some("Bob"), None, 250)
        .expect("adds");
    assert_ne!(server.change_token().expect("token"), token);
    let list = store
        .contact_list(&paor(ALICE))
        .expect("reads")
        .expect("has a list");
    assert_eq!(list.contacts[0].uri, "sip:bob@example.test");

    fill(&mut store, BOB);
    assert_filled(&mut admin.presence_store(), BOB);
}

// ---- migrations ----

#[test]
fn a_version_three_store_upgrades_keeping_its_data() {
    let (_tmp, path) = temp_file();
    {
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, \
             name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;",
        )
        .expect("creates");
        for m in MIGRATIONS.iter().filter(|m| m.version <= 3) {
            conn.execute_batch(m.sql).expect("applies");
            conn.execute(
                "INSERT INTO schema_version VALUES (?1, ?2, 0)",
                params![m.version, m.name],
            )
            .expect("records");
        }
        conn.execute_batch(
            "INSERT INTO domains (name, created_at) VALUES ('example.test', 0);
             INSERT INTO users (domain, user_part, user_key, display_name, enabled, created_at, \
             updated_at) VALUES ('example.test', 'Alice', 'alice', 'Alice Liddell', 1, 0, 0),
                                ('example.test', 'bob', 'bob', '', 0, 0, 0);
             INSERT INTO credentials (user_id, algorithm, realm, hash) VALUES
                 (1, 'MD5', 'example.test', '0123456789abcdef0123456789abcdef');
             INSERT INTO anchor_servers (name, address, site, build)
                 VALUES ('ex1', '127.0.0.1:4441', 'default-first-site', '15.0.1156.6');",
        )
        .expect("seeds");
    }
    let dir = SqliteDirectory::open(&path).expect("opens and migrates");
    assert_eq!(
        dir.schema_version().expect("reads"),
        SqliteDirectory::SCHEMA_VERSION
    );
    let name: String = dir
        .lock()
        .query_row(
            "SELECT name FROM schema_version WHERE version = 4",
            [],
            |r| r.get(0),
        )
        .expect("migration 4 is recorded");
    assert_eq!(name, "0004_presence");

    let alice = dir
        .get_user(&daor(ALICE))
        .expect("reads")
        .expect("alice survived");
    assert_eq!(alice.aor.user(), "Alice");
    assert_eq!(
        alice.credentials,
        [Credential::new(
            CredentialAlgorithm::Md5,
            "example.test",
            "0123456789abcdef0123456789abcdef"
        )
        .expect("valid")]
    );
    assert!(
        !dir.get_user(&daor(BOB))
            .expect("reads")
            .expect("bob survived")
            .enabled
    );
    let servers: i64 = dir
        .lock()
        .query_row("SELECT COUNT(*) FROM anchor_servers", [], |r| r.get(0))
        .expect("counts");
    assert_eq!(servers, 1, "the anchoring directory survived");

    // Existing users have presence at once.
    let mut store = dir.presence_store();
    assert_eq!(
        store
            .identity(&paor(ALICE))
            .expect("reads")
            .and_then(|i| i.display_name),
        Some("Alice Liddell".to_owned())
    );
    fill(&mut store, ALICE);
    assert_filled(&mut store, ALICE);
    let fk: i64 = dir
        .lock()
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("checks");
    assert_eq!(fk, 0);
}

// ---- contact commands ----

#[test]
fn contact_commands_shape_the_list_as_the_engine_does() {
    let dir = fresh();
    let alice = daor(ALICE);
    assert_eq!(
        dir.contact_list(&alice).expect("reads"),
        ContactList::initial(),
        "a user without a list sees the initial one"
    );
    assert_eq!(
        dir.presence_store()
            .contact_list(&paor(ALICE))
            .expect("reads"),
        None,
        "and listing stores nothing"
    );

    let list = dir
        .add_contact(&alice, &daor("Bob@Example.TEST"), None, None, 250)
        .expect("adds");
    let expected = ContactList {
        delta_num: 2,
        groups: vec![group(1, "~", "")],
        contacts: vec![contact("sip:bob@example.test", "", &[1], true)],
    };
    assert_eq!(list, expected);
    assert_eq!(dir.contact_list(&alice).expect("reads"), expected);

    // Into a group the list does not have: refused, nothing changes.
    let err = dir
        .add_contact(&alice, &daor(BOB), None, Some(gid(4)), 250)
        .expect_err("no group 4");
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: EntityKind::ContactGroup,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "contact group 4 of alice@example.test not found"
    );

    // Once the group exists, adding again moves and renames the contact.
    let mut with_group = dir.contact_list(&alice).expect("reads");
    with_group.groups.push(group(4, "Work", ""));
    dir.presence_store()
        .save_contact_list(&paor(ALICE), &with_group)
        .expect("saves");
    let list = dir
        .add_contact(&alice, &daor(BOB), Some("Bob B."), Some(gid(4)), 250)
        .expect("updates");
    assert_eq!(
        list.contacts,
        [contact("sip:bob@example.test", "Bob B.", &[4], true)]
    );
    assert_eq!(list.delta_num, 3);

    // The limit counts contacts; updating one never hits it.
    let err = dir
        .add_contact(&alice, &daor("carol@example.test"), None, None, 1)
        .expect_err("full");
    assert!(
        matches!(&err, Error::ContactListFull { max: 1, user } if user == ALICE),
        "{err:?}"
    );
    dir.add_contact(&alice, &daor(BOB), None, None, 1)
        .expect("an update fits");
    assert_eq!(dir.contact_list(&alice).expect("reads").delta_num, 4);

    assert!(matches!(
        dir.add_contact(&alice, &daor(BOB), Some("bad\nname"), None, 250),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        dir.add_contact(&daor("ghost@example.test"), &daor(BOB), None, None, 250),
        Err(Error::NotFound {
            kind: EntityKind::User,
            ..
        })
    ));

    // Removal ignores case; removing what is not there writes nothing.
    assert!(
        dir.remove_contact(&alice, &daor("BOB@example.test"))
            .expect("removes")
    );
    let after = dir.contact_list(&alice).expect("reads");
    assert!(after.contacts.is_empty());
    assert_eq!(after.delta_num, 5);
    assert!(
        !dir.remove_contact(&alice, &daor(BOB))
            .expect("nothing to remove")
    );
    assert_eq!(dir.contact_list(&alice).expect("reads").delta_num, 5);
    assert!(
        !dir.remove_contact(&daor(BOB), &daor(ALICE))
            .expect("bob has no list")
    );
    assert_eq!(
        dir.presence_store()
            .contact_list(&paor(BOB))
            .expect("reads"),
        None
    );
    assert!(matches!(
        dir.remove_contact(&daor("ghost@example.test"), &daor(BOB)),
        Err(Error::NotFound {
            kind: EntityKind::User,
            ..
        })
    ));
}

#[test]
fn adding_to_the_default_group_creates_it_if_the_list_lacks_it() {
    let dir = fresh();
    let odd = ContactList {
        delta_num: 9,
        groups: vec![group(2, "Work", "")],
        contacts: vec![contact("sip:carol@example.test", "Carol", &[2], true)],
    };
    dir.presence_store()
        .save_contact_list(&paor(ALICE), &odd)
        .expect("saves");
    let list = dir
        .add_contact(&daor(ALICE), &daor(BOB), None, None, 250)
        .expect("adds");
    assert_eq!(list.groups, [group(1, "~", ""), group(2, "Work", "")]);
    assert_eq!(
        list.contacts[1],
        contact("sip:bob@example.test", "", &[1], true)
    );
    assert_eq!(list.delta_num, 10);
}

// ---- against MemoryStore, generated ----

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-zA-Z0-9 ~<>&\"'é—]{1,12}",]
}

fn arb_list() -> impl Strategy<Value = ContactList> {
    (
        any::<u32>(),
        proptest::sample::subsequence((1u8..=63).collect::<Vec<_>>(), 0..6).prop_shuffle(),
        proptest::collection::vec((arb_text(), arb_text()), 6),
        proptest::collection::btree_set("[a-z]{1,6}", 0..6),
        proptest::collection::vec(
            (
                arb_text(),
                proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
                any::<bool>(),
                arb_text(),
                any::<bool>(),
            ),
            6,
        ),
    )
        .prop_map(|(delta_num, ids, names, users, details)| {
            let groups: Vec<Group> = ids
                .iter()
                .zip(&names)
                .map(|(id, (name, external))| Group {
                    id: gid(*id),
                    name: name.clone(),
                    external: external.clone(),
                })
                .collect();
            let contacts = users
                .iter()
                .zip(details)
                .map(
                    |(user, (name, picks, subscribed, external, upper))| ContactEntry {
                        uri: if upper {
                            format!("sip:{}@Example.test", user.to_ascii_uppercase())
                        } else {
                            format!("sip:{user}@example.test")
                        },
                        name,
                        groups: if groups.is_empty() {
                            Vec::new()
                        } else {
                            picks
                                .iter()
                                .map(|i| groups[i.index(groups.len())].id)
                                .collect()
                        },
                        subscribed,
                        external,
                    },
                )
                .collect();
            ContactList {
                delta_num,
                groups,
                contacts,
            }
        })
}

fn arb_member() -> impl Strategy<Value = Member> {
    prop_oneof![
        arb_text().prop_map(Member::User),
        arb_text().prop_map(Member::Domain),
        Just(Member::SameEnterprise),
        Just(Member::Federated),
        Just(Member::PublicCloud),
        Just(Member::Everyone),
    ]
}

fn arb_containers() -> impl Strategy<Value = Vec<Container>> {
    (
        proptest::sample::subsequence(vec![0u16, 1, 2, 3, 100, 200, 300, 400, 32000, 32767], 0..6)
            .prop_shuffle(),
        proptest::collection::vec(
            (any::<u32>(), proptest::collection::vec(arb_member(), 0..5)),
            6,
        ),
    )
        .prop_map(|(ids, details)| {
            ids.iter()
                .zip(details)
                .map(|(id, (version, members))| Container {
                    id: cid(*id),
                    version,
                    members,
                })
                .collect()
        })
}

fn arb_change() -> impl Strategy<Value = StaticChange> {
    let keys = (
        prop_oneof![
            Just("state"),
            Just("note"),
            Just("calendarData"),
            Just("xCustom")
        ],
        prop_oneof![Just(0u32), Just(536_870_912), Just(u32::MAX)],
        prop_oneof![Just(2u16), Just(200), Just(32767)],
    );
    (keys, any::<u32>(), any::<bool>()).prop_map(|((cat, inst, cont), version, put)| {
        if put {
            StaticChange::Put(publication(cat, inst, cont, version))
        } else {
            StaticChange::Delete(key(cat, inst, cont))
        }
    })
}

#[derive(Debug, Clone)]
enum Op {
    List(ContactList),
    Containers(Vec<Container>),
    Statics(Vec<StaticChange>),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        arb_list().prop_map(Op::List),
        arb_containers().prop_map(Op::Containers),
        proptest::collection::vec(arb_change(), 0..6).prop_map(Op::Statics),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any sequence of writes reads back as from `MemoryStore`, for two users at once.
    #[test]
    fn sqlite_reads_back_what_memory_store_does(
        ops in proptest::collection::vec((any::<bool>(), arb_op()), 1..10)
    ) {
        let dir = fresh();
        let mut sqlite = dir.presence_store();
        let mut memory = MemoryStore::new();
        for (for_alice, op) in &ops {
            let user = paor(if *for_alice { ALICE } else { BOB });
            match op {
                Op::List(l) => {
                    sqlite.save_contact_list(&user, l).expect("sqlite");
                    memory.save_contact_list(&user, l).expect("memory");
                }
                Op::Containers(c) => {
                    sqlite.save_containers(&user, c).expect("sqlite");
                    memory.save_containers(&user, c).expect("memory");
                }
                Op::Statics(s) => {
                    sqlite.write_static_publications(&user, s).expect("sqlite");
                    memory.write_static_publications(&user, s).expect("memory");
                }
            }
            for u in [paor(ALICE), paor(BOB)] {
                prop_assert_eq!(
                    sqlite.contact_list(&u).expect("reads"),
                    memory.contact_list(&u).expect("reads")
                );
                prop_assert_eq!(
                    sqlite.containers(&u).expect("reads"),
                    memory.containers(&u).expect("reads")
                );
                prop_assert_eq!(
                    sqlite.static_publications(&u).expect("reads"),
                    memory.static_publications(&u).expect("reads")
                );
            }
        }
    }
}

// ---- the engine on this store ----

/// The wall clock at the simulated start (2024-01-01T00:00:00Z).
const WALL0: i64 = 1_704_067_200_000;
const PUBLISH_CT: &str = "application/msrtc-category-publish+xml";
const MEMBERS_CT: &str = "application/msrtc-setcontainermembers+xml";
const CATEGORIES_CT: &str = "application/msrtc-event-categories+xml";

/// A presence engine on a directory's store, with a registrar and a simulated clock: what
/// `herald serve` runs, without sockets.
struct Server {
    engine: Engine<u32>,
    registrar: Registrar<u32>,
    now: Instant,
    next_flow: u32,
    cseq: u32,
}

impl Server {
    fn on(dir: &SqliteDirectory) -> Self {
        let now = Instant::now();
        Self {
            engine: Engine::new(
                EngineConfig::default(),
                Box::new(dir.presence_store()),
                now,
                Timestamp::from_unix_millis(WALL0),
            )
            .expect("valid config"),
            registrar: Registrar::new(RegistrarConfig::default()).expect("valid config"),
            now,
            next_flow: 1,
            cseq: 0,
        }
    }

    fn register(&mut self, user: &str, epid: &str) -> u32 {
        let flow = self.next_flow;
        self.next_flow += 1;
        self.cseq += 1;
        let req = RegisterRequest {
            aor: paor(user),
            call_id: format!("reg-{epid}"),
            cseq: self.cseq,
            contacts: vec![RegContact::Binding(ContactBinding::new(format!(
                "sip:{epid}@10.0.0.{flow}:5060;transport=tcp"
            )))],
            expires: Some(3600),
            flow,
            source: format!("10.0.0.{flow}:5060/tcp"),
            user_agent: None,
            epid: Some(epid.to_owned()),
        };
        self.registrar
            .register(self.now, req)
            .expect("REGISTER accepted");
        while let Some(e) = self.registrar.poll_event() {
            self.engine.on_registrar_event(self.now, e);
        }
        flow
    }

    fn send(&mut self, user: &str, flow: u32, text: &str) -> Response {
        let request = parse_request(text);
        let endpoint = EndpointKey::from_request(&request);
        let reply = self.engine.handle_request(
            self.now,
            AuthenticatedRequest {
                request,
                user: paor(user),
                flow,
                endpoint,
                contact: None,
            },
        );
        let mut b = reply.response;
        if reply.dialog_tag.is_none() {
            b = b.to_tag("pipeline-tag");
        }
        b.build().expect("engine responses parse")
    }

    /// A SERVICE from `user` (endpoint `epid`) carrying `body` of type `ct`.
    fn service(&mut self, user: &str, flow: u32, epid: &str, ct: &str, body: &str) -> u16 {
        self.cseq += 1;
        let local = user.split('@').next().unwrap_or(user);
        let text = format!(
            "SERVICE sip:{user} SIP/2.0
Via: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKs{cseq}
Max-Forwards: 70
From: <sip:{user}>;tag=svc-{epid};epid={epid}
To: <sip:{user}>
Call-ID: service-{epid}
CSeq: {cseq} SERVICE
Contact: <sip:{local}@10.0.0.5:5060;transport=tcp>
Content-Type: {ct}

{body}",
            cseq = self.cseq
        );
        self.send(user, flow, &text).status()
    }

    /// `watcher` subscribes to `target`'s categories; returns the first notification's body.
    fn watch(&mut self, watcher: &str, target: &str) -> String {
        let flow = self.register(watcher, &format!("{}-pc", watcher.replace(['@', '.'], "-")));
        let local = watcher.split('@').next().unwrap_or(watcher);
        let call = format!("w{}", self.cseq);
        let text = format!(
            "SUBSCRIBE sip:{target} SIP/2.0
Via: SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bK{call}
Max-Forwards: 70
From: <sip:{watcher}>;tag=ft-{call}
To: <sip:{target}>
Call-ID: {call}
CSeq: 1 SUBSCRIBE
Contact: <sip:{local}@10.0.0.9:5060;transport=tcp>
Event: presence
Accept: {CATEGORIES_CT}"
        );
        assert_eq!(self.send(watcher, flow, &text).status(), 200);
        let mut last = None;
        while let Some(o) = self.engine.poll_outbound() {
            if let OutboundKind::Notify(id) = o.kind {
                self.engine.on_notify_response(self.now, id, 200);
            }
            let bytes = o
                .request
                .with_via("SIP/2.0/TCP 192.0.2.1:5061;branch=z9hG4bKtest");
            let req = Request::parse(bytes, &herald_sip::Limits::default())
                .expect("engine requests parse");
            last = Some(String::from_utf8_lossy(req.body()).into_owned());
        }
        last.expect("a first NOTIFY")
    }
}

fn parse_request(text: &str) -> Request {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut msg = String::new();
    for line in head.lines() {
        let line = line.trim();
        if !line.is_empty() {
            msg.push_str(line);
            msg.push_str("\r\n");
        }
    }
    msg.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    match Message::parse(Bytes::from(msg), &herald_sip::Limits::default()) {
        Ok(Message::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}"),
    }
}

fn publish_body(user: &str, availability: u32, note: &str) -> String {
    format!(
        r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="sip:{user}"><publication categoryName="state" instance="536870912" container="2" version="0" expireType="static"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" manual="true" xsi:type="userState"><availability>{availability}</availability></state></publication><publication categoryName="note" instance="0" container="200" version="0" expireType="static"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal" uri="">{note}</body></note></publication></publications></publish>"#
    )
}

/// Issue 3 point 7 on SQLite: a manual state and a note answered 200 are back after the
/// server (engine and database handle) restarts.
#[test]
fn engine_static_publications_survive_a_restart() {
    let (_tmp, path) = temp_file();
    {
        let dir = SqliteDirectory::open(&path).expect("opens");
        seeded(&dir);
        let mut server = Server::on(&dir);
        let flow = server.register(ALICE, "alicepc");
        let status = server.service(
            ALICE,
            flow,
            "alicepc",
            PUBLISH_CT,
            &publish_body(ALICE, 12500, "Back at 3"),
        );
        assert_eq!(status, 200);
        let stored = dir
            .presence_store()
            .static_publications(&paor(ALICE))
            .expect("reads");
        assert_eq!(stored.len(), 2, "stored before the 200: {stored:?}");
    }
    let dir = SqliteDirectory::open(&path).expect("reopens");
    let mut server = Server::on(&dir);
    server.register(ALICE, "alicepc");
    let body = server.watch(BOB, ALICE);
    assert!(
        body.contains("<availability>12500</availability>"),
        "{body}"
    );
    assert!(body.contains("Back at 3"), "{body}");
    assert!(
        body.contains("<displayName>Alice Liddell</displayName>"),
        "the contact card comes from the directory: {body}"
    );
}

#[test]
fn engine_contacts_and_containers_survive_a_restart() {
    let (_tmp, path) = temp_file();
    let before = {
        let dir = SqliteDirectory::open(&path).expect("opens");
        seeded(&dir);
        let mut server = Server::on(&dir);
        let flow = server.register(ALICE, "alicepc");
        server
            .engine
            .add_contact(server.now, &paor(ALICE), &paor(BOB), Some("Bob"), None)
            .expect("adds");
        let block = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="32000" version="0"><member action="add" type="user" value="bob@example.test"/></container></setContainerMembers>"#;
        assert_eq!(
            server.service(ALICE, flow, "alicepc", MEMBERS_CT, block),
            200
        );
        server
            .engine
            .contact_list(server.now, &paor(ALICE))
            .expect("reads")
    };
    let dir = SqliteDirectory::open(&path).expect("reopens");
    assert_eq!(
        dir.contact_list(&daor(ALICE)).expect("reads"),
        before,
        "the admin command sees what the engine saved"
    );
    let mut server = Server::on(&dir);
    assert_eq!(
        server
            .engine
            .contact_list(server.now, &paor(ALICE))
            .expect("reads"),
        before
    );
    server.register(ALICE, "alicepc");
    let body = server.watch(BOB, ALICE);
    assert!(
        body.contains("<availability>18500</availability>"),
        "bob is still blocked: {body}"
    );

    // An admin change made while no engine held the user is what the next engine loads.
    dir.add_contact(&daor(BOB), &daor(ALICE), None, None, 250)
        .expect("adds");
    let bob_list = Server::on(&dir)
        .engine
        .contact_list(Instant::now(), &paor(BOB))
        .expect("reads");
    assert_eq!(bob_list.contacts[0].uri, "sip:alice@example.test");
}

/// A store failure is a 500 and changes nothing (here: a user the directory lost while
/// signed in).
#[test]
fn engine_answers_500_when_the_store_refuses() {
    let dir = fresh();
    let mut server = Server::on(&dir);
    let flow = server.register(ALICE, "alicepc");
    dir.remove_user(&daor(ALICE)).expect("removes");
    let status = server.service(
        ALICE,
        flow,
        "alicepc",
        PUBLISH_CT,
        &publish_body(ALICE, 6500, "gone"),
    );
    assert_eq!(status, 500);
    let count: i64 = dir
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM presence_static_publications",
            [],
            |r| r.get(0),
        )
        .expect("counts");
    assert_eq!(count, 0);
}
