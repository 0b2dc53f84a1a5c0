//! The trait-level conformance suite: what every [`Directory`] backend must do, written once.
//!
//! A backend mounts it either as one test per check, each on a fresh store:
//!
//! ```ignore
//! herald_directory::conformance_tests!(PgDirectory::connect_fresh_schema().unwrap());
//! ```
//!
//! or as one test that runs every check on a single store with [`run_conformance`]. Checks use
//! their own domains, clean up after themselves and only assert on their own data, so they also
//! pass on a store that holds other data.
//!
//! Checks panic on failure, as tests do.

use std::collections::HashSet;
use std::time::Duration;

use crate::{
    Aor, Credential, CredentialAlgorithm, Directory, DisplayName, Domain, EntityKind, Error,
    NewUser, UserQuery,
};

/// Runs every check in turn on `dir`.
pub fn run_conformance(dir: &dyn Directory) {
    macro_rules! run_all {
        ([$dir:expr] $($check:ident),* $(,)?) => {
            $( $check($dir); )*
        };
    }
    crate::__directory_checks!(run_all, dir);
}

/// Generates one `#[test]` per conformance check. `$make` is evaluated afresh in each test and
/// must yield a value whose type implements [`Directory`].
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__directory_checks!($crate::__directory_check_tests, $make);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __directory_check_tests {
    ([$make:expr] $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let dir = $make;
                $crate::testing::$check(&dir);
            }
        )*
    };
}

/// The single list of checks; both entry points expand it, so a new check cannot be forgotten
/// by one of them.
#[doc(hidden)]
#[macro_export]
macro_rules! __directory_checks {
    ($callback:path, $($args:tt)*) => {
        $callback! {
            [$($args)*]
            domains_are_added_listed_and_removed,
            domain_names_are_case_insensitive,
            domain_with_users_cannot_be_removed,
            user_round_trips_with_credentials,
            user_lookup_ignores_user_case,
            user_needs_an_existing_domain,
            duplicate_user_is_refused,
            duplicate_credentials_are_refused,
            display_name_and_enabled_are_updated,
            credentials_are_replaced_as_a_set,
            removing_a_user_removes_its_credentials,
            unknown_user_is_not_found,
            users_are_listed_in_order_and_paged,
            user_count_follows_adds_and_removes,
            bulk_add_is_all_or_nothing,
            change_token_follows_writes,
        }
    };
}

/// Domains can be added once, are listed in name order, and can be removed once.
pub fn domains_are_added_listed_and_removed(dir: &dyn Directory) {
    let b = domain("b.domains.conformance.test");
    let a = domain("a.domains.conformance.test");
    dir.add_domain(&b).expect("add b");
    dir.add_domain(&a).expect("add a");
    let ours: Vec<_> = dir
        .list_domains()
        .expect("list")
        .into_iter()
        .filter(|d| d.as_str().ends_with(".domains.conformance.test"))
        .collect();
    assert_eq!(ours, [a.clone(), b.clone()]);
    assert!(matches!(
        dir.add_domain(&a),
        Err(Error::AlreadyExists {
            kind: EntityKind::Domain,
            ..
        })
    ));
    dir.remove_domain(&a).expect("remove a");
    assert!(matches!(
        dir.remove_domain(&a),
        Err(Error::NotFound {
            kind: EntityKind::Domain,
            ..
        })
    ));
    assert!(!dir.list_domains().expect("list").contains(&a));
    dir.remove_domain(&b).expect("remove b");
}

/// `Example.COM` and `example.com` are one domain.
pub fn domain_names_are_case_insensitive(dir: &dyn Directory) {
    dir.add_domain(&domain("Case.Conformance.TEST"))
        .expect("add");
    assert!(matches!(
        dir.add_domain(&domain("case.conformance.test")),
        Err(Error::AlreadyExists { .. })
    ));
    dir.remove_domain(&domain("CASE.conformance.test"))
        .expect("remove");
}

/// A domain is not removed from under its users.
pub fn domain_with_users_cannot_be_removed(dir: &dyn Directory) {
    let d = domain("inuse.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let u = aor("someone@inuse.conformance.test");
    dir.add_user(&NewUser::new(u.clone())).expect("add user");
    match dir.remove_domain(&d) {
        Err(Error::DomainInUse { domain, users }) => {
            assert_eq!(domain, d.as_str());
            assert_eq!(users, 1);
        }
        other => panic!("expected DomainInUse, got {other:?}"),
    }
    assert!(dir.get_user(&u).expect("get").is_some());
    dir.remove_user(&u).expect("remove user");
    dir.remove_domain(&d).expect("remove domain");
}

/// What `add_user` returns is what `get_user` later returns.
pub fn user_round_trips_with_credentials(dir: &dyn Directory) {
    let d = domain("roundtrip.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let mut new = NewUser::new(aor("Alice.Smith@roundtrip.conformance.test"));
    new.display_name = display("Alice Smith (Zoë)");
    new.enabled = false;
    new.credentials = vec![
        cred(
            CredentialAlgorithm::Sha256,
            "roundtrip.conformance.test",
            'b',
        ),
        cred(CredentialAlgorithm::Nt, "", 'c'),
        cred(CredentialAlgorithm::Md5, "roundtrip.conformance.test", 'a'),
        cred(CredentialAlgorithm::Md5, "other realm", 'd'),
    ];
    let added = dir.add_user(&new).expect("add user");
    assert_eq!(
        added.aor.to_string(),
        "Alice.Smith@roundtrip.conformance.test"
    );
    assert_eq!(added.display_name, new.display_name);
    assert!(!added.enabled);
    assert_eq!(added.created_at, added.updated_at);
    assert_eq!(
        as_set(&added.credentials),
        as_set(&new.credentials),
        "every credential is kept"
    );
    let got = dir.get_user(&new.aor).expect("get").expect("user exists");
    assert_eq!(got, added);
    assert_eq!(
        got.aor.user(),
        "Alice.Smith",
        "the user part keeps its spelling"
    );
    cleanup(dir, &d);
}

/// The user part is unique and looked up without regard to case; the stored spelling wins.
pub fn user_lookup_ignores_user_case(dir: &dyn Directory) {
    let d = domain("lookup.conformance.test");
    dir.add_domain(&d).expect("add domain");
    dir.add_user(&NewUser::new(aor("BoB@lookup.conformance.test")))
        .expect("add user");
    let got = dir
        .get_user(&aor("sip:bob@LOOKUP.conformance.test"))
        .expect("get")
        .expect("found regardless of case");
    assert_eq!(got.aor.user(), "BoB");
    assert!(
        dir.get_user(&aor("bobby@lookup.conformance.test"))
            .expect("get")
            .is_none()
    );
    cleanup(dir, &d);
}

/// Users only live in domains the server serves.
pub fn user_needs_an_existing_domain(dir: &dyn Directory) {
    let result = dir.add_user(&NewUser::new(aor("carol@nowhere.conformance.test")));
    match result {
        Err(Error::NotFound {
            kind: EntityKind::Domain,
            key,
        }) => {
            assert_eq!(key, "nowhere.conformance.test");
        }
        other => panic!("expected NotFound(domain), got {other:?}"),
    }
}

/// A second user with the same AOR, in any case, is refused and the first is untouched.
pub fn duplicate_user_is_refused(dir: &dyn Directory) {
    let d = domain("dup.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let mut first = NewUser::new(aor("dave@dup.conformance.test"));
    first.display_name = display("First");
    dir.add_user(&first).expect("add user");
    let mut second = NewUser::new(aor("DAVE@dup.conformance.test"));
    second.display_name = display("Second");
    assert!(matches!(
        dir.add_user(&second),
        Err(Error::AlreadyExists {
            kind: EntityKind::User,
            ..
        })
    ));
    let got = dir.get_user(&first.aor).expect("get").expect("exists");
    assert_eq!(got.display_name.as_str(), "First");
    assert_eq!(got.aor.user(), "dave");
    cleanup(dir, &d);
}

/// Every write changes the token; reads do not.
pub fn change_token_follows_writes(dir: &dyn Directory) {
    let d = domain("token.conformance.test");
    let before = dir.change_token().expect("token");
    assert_eq!(
        before,
        dir.change_token().expect("token"),
        "a read changes nothing"
    );
    dir.add_domain(&d).expect("add domain");
    let after_domain = dir.change_token().expect("token");
    assert_ne!(before, after_domain);
    let u = aor("tok@token.conformance.test");
    dir.add_user(&NewUser::new(u.clone())).expect("add user");
    let after_user = dir.change_token().expect("token");
    assert_ne!(after_domain, after_user);
    dir.get_user(&u).expect("get");
    assert_eq!(after_user, dir.change_token().expect("token"));
    dir.set_enabled(&u, false).expect("disable");
    assert_ne!(after_user, dir.change_token().expect("token"));
    dir.remove_user(&u).expect("remove");
    cleanup(dir, &d);
}

/// A bulk import stores every user, or none when one of them is refused.
pub fn bulk_add_is_all_or_nothing(dir: &dyn Directory) {
    let d = domain("bulk.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let users: Vec<NewUser> = (0..50)
        .map(|i| NewUser::new(aor(&format!("u{i}@bulk.conformance.test"))))
        .collect();
    assert_eq!(dir.add_users(&users).expect("bulk add"), 50);
    for u in &users {
        assert!(dir.get_user(&u.aor).expect("get").is_some());
    }
    // The second batch holds one new user and one duplicate: nothing of it is kept.
    let batch = vec![
        NewUser::new(aor("fresh@bulk.conformance.test")),
        NewUser::new(aor("U7@bulk.conformance.test")),
    ];
    assert!(matches!(
        dir.add_users(&batch),
        Err(Error::AlreadyExists {
            kind: EntityKind::User,
            ..
        })
    ));
    assert!(
        dir.get_user(&aor("fresh@bulk.conformance.test"))
            .expect("get")
            .is_none()
    );
    // A user of an unknown domain refuses the batch too.
    let foreign = vec![NewUser::new(aor("x@nowhere.conformance.test"))];
    assert!(matches!(
        dir.add_users(&foreign),
        Err(Error::NotFound { .. })
    ));
    for u in &users {
        dir.remove_user(&u.aor).expect("remove");
    }
    cleanup(dir, &d);
}

/// Two hashes for one (algorithm, realm) are ambiguous and refused, with nothing stored.
pub fn duplicate_credentials_are_refused(dir: &dyn Directory) {
    let d = domain("dupcred.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let mut new = NewUser::new(aor("erin@dupcred.conformance.test"));
    new.credentials = vec![
        cred(CredentialAlgorithm::Md5, "r", 'a'),
        cred(CredentialAlgorithm::Md5, "r", 'b'),
    ];
    assert!(matches!(
        dir.add_user(&new),
        Err(Error::InvalidInput {
            field: "credentials",
            ..
        })
    ));
    assert!(dir.get_user(&new.aor).expect("get").is_none());
    new.credentials.pop();
    dir.add_user(&new).expect("add user");
    let twice = [
        cred(CredentialAlgorithm::Nt, "", 'c'),
        cred(CredentialAlgorithm::Nt, "", 'd'),
    ];
    assert!(matches!(
        dir.set_credentials(&new.aor, &twice),
        Err(Error::InvalidInput { .. })
    ));
    let got = dir.get_user(&new.aor).expect("get").expect("exists");
    assert_eq!(got.credentials, new.credentials, "old credentials kept");
    cleanup(dir, &d);
}

/// Setters change one field each and move `updated_at` forward, never `created_at`.
pub fn display_name_and_enabled_are_updated(dir: &dyn Directory) {
    let d = domain("update.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let added = dir
        .add_user(&NewUser::new(aor("frank@update.conformance.test")))
        .expect("add user");
    std::thread::sleep(Duration::from_millis(5));

    dir.set_display_name(&aor("FRANK@update.conformance.test"), &display("Frank F."))
        .expect("set display name");
    let got = dir.get_user(&added.aor).expect("get").expect("exists");
    assert_eq!(got.display_name.as_str(), "Frank F.");
    assert!(got.enabled);
    assert_eq!(got.created_at, added.created_at);
    assert!(
        got.updated_at > added.updated_at,
        "updated_at moves forward"
    );

    dir.set_enabled(&added.aor, false).expect("disable");
    let got = dir.get_user(&added.aor).expect("get").expect("exists");
    assert!(!got.enabled);
    assert_eq!(got.display_name.as_str(), "Frank F.");
    dir.set_enabled(&added.aor, true).expect("enable");
    assert!(
        dir.get_user(&added.aor)
            .expect("get")
            .expect("exists")
            .enabled
    );

    dir.set_display_name(&added.aor, &DisplayName::default())
        .expect("clear display name");
    let got = dir.get_user(&added.aor).expect("get").expect("exists");
    assert_eq!(got.display_name.as_str(), "");
    cleanup(dir, &d);
}

/// `set_credentials` replaces the whole set; an empty set removes every hash.
pub fn credentials_are_replaced_as_a_set(dir: &dyn Directory) {
    let d = domain("creds.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let mut new = NewUser::new(aor("grace@creds.conformance.test"));
    new.credentials = vec![
        cred(CredentialAlgorithm::Md5, "creds.conformance.test", '1'),
        cred(CredentialAlgorithm::Sha256, "creds.conformance.test", '2'),
    ];
    let added = dir.add_user(&new).expect("add user");
    std::thread::sleep(Duration::from_millis(5));

    let replacement = [
        cred(CredentialAlgorithm::Sha256, "creds.conformance.test", '3'),
        cred(CredentialAlgorithm::Nt, "", '4'),
    ];
    dir.set_credentials(&new.aor, &replacement)
        .expect("replace");
    let got = dir.get_user(&new.aor).expect("get").expect("exists");
    assert_eq!(as_set(&got.credentials), as_set(&replacement));
    assert!(got.updated_at > added.updated_at);

    dir.set_credentials(&new.aor, &[]).expect("clear");
    let got = dir.get_user(&new.aor).expect("get").expect("exists");
    assert!(got.credentials.is_empty());
    cleanup(dir, &d);
}

/// Removing a user removes its hashes: a user re-created with the same AOR starts clean.
pub fn removing_a_user_removes_its_credentials(dir: &dyn Directory) {
    let d = domain("remove.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let mut new = NewUser::new(aor("heidi@remove.conformance.test"));
    new.credentials = vec![cred(CredentialAlgorithm::Md5, "r", 'e')];
    dir.add_user(&new).expect("add user");
    dir.remove_user(&aor("Heidi@remove.conformance.test"))
        .expect("remove");
    assert!(dir.get_user(&new.aor).expect("get").is_none());
    assert!(matches!(
        dir.remove_user(&new.aor),
        Err(Error::NotFound {
            kind: EntityKind::User,
            ..
        })
    ));
    let again = dir
        .add_user(&NewUser::new(new.aor.clone()))
        .expect("re-add");
    assert!(again.credentials.is_empty());
    let got = dir.get_user(&new.aor).expect("get").expect("exists");
    assert!(got.credentials.is_empty(), "no credentials survive removal");
    cleanup(dir, &d);
}

/// Every per-user operation on a user that does not exist says so.
pub fn unknown_user_is_not_found(dir: &dyn Directory) {
    let d = domain("unknown.conformance.test");
    dir.add_domain(&d).expect("add domain");
    let ghost = aor("ghost@unknown.conformance.test");
    let is_not_found = |r: Result<(), Error>| {
        matches!(r, Err(Error::NotFound { kind: EntityKind::User, ref key })
            if key == "ghost@unknown.conformance.test")
    };
    assert!(dir.get_user(&ghost).expect("get").is_none());
    assert!(is_not_found(dir.set_display_name(&ghost, &display("G"))));
    assert!(is_not_found(dir.set_enabled(&ghost, false)));
    assert!(is_not_found(dir.set_credentials(&ghost, &[])));
    assert!(is_not_found(dir.remove_user(&ghost)));
    dir.remove_domain(&d).expect("remove domain");
}

/// Listing is ordered by (domain, case-folded user), filters by domain and pages by key.
pub fn users_are_listed_in_order_and_paged(dir: &dyn Directory) {
    let d1 = domain("a.list.conformance.test");
    let d2 = domain("b.list.conformance.test");
    dir.add_domain(&d2).expect("add domain");
    dir.add_domain(&d1).expect("add domain");
    let names = [
        "zed@a.list.conformance.test",
        "Amy@b.list.conformance.test",
        "bea@a.list.conformance.test",
        "Carl@a.list.conformance.test",
        "amz@b.list.conformance.test",
    ];
    for n in names {
        let mut new = NewUser::new(aor(n));
        new.credentials = vec![cred(CredentialAlgorithm::Md5, "r", '7')];
        dir.add_user(&new).expect("add user");
    }
    let expected = [
        "bea@a.list.conformance.test",
        "Carl@a.list.conformance.test",
        "zed@a.list.conformance.test",
        "Amy@b.list.conformance.test",
        "amz@b.list.conformance.test",
    ];

    let mut seen = Vec::new();
    let mut query = UserQuery::first(2).in_domain(d1.clone());
    let page = dir.list_users(&query).expect("list");
    assert_eq!(page.len(), 2);
    assert!(
        page.iter().all(|u| u.credentials.len() == 1),
        "lists carry credentials"
    );
    seen.extend(page.iter().map(|u| u.aor.to_string()));
    query = query.after(page[1].aor.clone());
    let page = dir.list_users(&query).expect("list");
    seen.extend(page.iter().map(|u| u.aor.to_string()));
    let last = page.last().expect("a second page").aor.clone();
    assert!(dir.list_users(&query.after(last)).expect("list").is_empty());
    assert_eq!(seen, expected[..3]);

    let page = dir
        .list_users(&UserQuery::first(10).in_domain(d2.clone()))
        .expect("list");
    let got: Vec<_> = page.iter().map(|u| u.aor.to_string()).collect();
    assert_eq!(got, expected[3..]);

    // Unfiltered paging crosses the domain boundary, starting from a cursor in `d1`.
    let page = dir
        .list_users(&UserQuery::first(2).after(aor("ZED@a.list.conformance.test")))
        .expect("list");
    let got: Vec<_> = page.iter().map(|u| u.aor.to_string()).collect();
    assert_eq!(got, expected[3..]);

    // A cursor need not name an existing user.
    let page = dir
        .list_users(&UserQuery::first(1).after(aor("bz@a.list.conformance.test")))
        .expect("list");
    assert_eq!(page[0].aor.to_string(), expected[1]);

    cleanup(dir, &d1);
    cleanup(dir, &d2);
}

/// `user_count` counts users across every domain.
pub fn user_count_follows_adds_and_removes(dir: &dyn Directory) {
    let before = dir.user_count().expect("count");
    let d = domain("count.conformance.test");
    dir.add_domain(&d).expect("add domain");
    for i in 0..3 {
        dir.add_user(&NewUser::new(aor(&format!("u{i}@count.conformance.test"))))
            .expect("add user");
    }
    assert_eq!(dir.user_count().expect("count"), before + 3);
    dir.remove_user(&aor("u1@count.conformance.test"))
        .expect("remove");
    assert_eq!(dir.user_count().expect("count"), before + 2);
    cleanup(dir, &d);
    assert_eq!(dir.user_count().expect("count"), before);
}

/// Removes every user of `d`, then `d`.
fn cleanup(dir: &dyn Directory, d: &Domain) {
    loop {
        let page = dir
            .list_users(&UserQuery::first(UserQuery::MAX_PAGE).in_domain(d.clone()))
            .expect("list for cleanup");
        if page.is_empty() {
            break;
        }
        for u in page {
            dir.remove_user(&u.aor).expect("remove for cleanup");
        }
    }
    dir.remove_domain(d).expect("remove domain for cleanup");
}

fn domain(name: &str) -> Domain {
    Domain::parse(name).expect("test domain parses")
}

fn aor(text: &str) -> Aor {
    Aor::parse(text).expect("test AOR parses")
}

fn display(name: &str) -> DisplayName {
    DisplayName::parse(name).expect("test display name parses")
}

/// A credential whose hash is `fill` repeated: distinct fills make distinct hashes.
fn cred(algorithm: CredentialAlgorithm, realm: &str, fill: char) -> Credential {
    let len = match algorithm {
        CredentialAlgorithm::Sha256 => 64,
        _ => 32,
    };
    Credential::new(algorithm, realm, &fill.to_string().repeat(len)).expect("test credential")
}

fn as_set(credentials: &[Credential]) -> HashSet<Credential> {
    credentials.iter().cloned().collect()
}
