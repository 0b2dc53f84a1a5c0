//! Directory records held in memory for the request path.
//!
//! Every authenticated request needs its user's record; reading the store each time costs a
//! blocking-pool hop and a query. The cache answers from memory and is emptied whenever the
//! store's [`ChangeToken`] moves — checked by a background task a few times a second — so an
//! admin's `user set --disable` in another process takes effect within that interval, not after
//! a timed expiry. Unknown users are cached too (so a flood of made-up names does not reach
//! the store), within a bound on entries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald_directory::{Aor, ChangeToken, Directory, User};
use parking_lot::Mutex;

/// How often the store is asked whether anything changed.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Entries kept before the cache starts over (a memory bound, not an eviction policy).
const MAX_ENTRIES: usize = 200_000;

/// The cache: a map from user to record (or to "no such user").
pub(crate) struct UserCache {
    entries: Mutex<HashMap<Aor, Option<User>>>,
    token: Mutex<Option<ChangeToken>>,
}

impl UserCache {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            token: Mutex::new(None),
        })
    }

    /// The cached answer for `aor`, if there is one.
    pub(crate) fn get(&self, aor: &Aor) -> Option<Option<User>> {
        self.entries.lock().get(aor).cloned()
    }

    /// Stores what the directory said about `aor`, unless the store changed since `token` was
    /// taken before the read (the answer may then be stale already).
    pub(crate) fn put(&self, aor: Aor, user: Option<User>, token: Option<ChangeToken>) {
        if token.is_none() || *self.token.lock() != token {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(aor, user);
    }

    /// The token the cached entries are valid for.
    pub(crate) fn token(&self) -> Option<ChangeToken> {
        *self.token.lock()
    }

    /// Compares the store's token with the one the entries were read under; empties the cache
    /// when they differ.
    fn refresh(&self, current: ChangeToken) {
        let mut token = self.token.lock();
        if *token != Some(current) {
            self.entries.lock().clear();
            *token = Some(current);
        }
    }

    /// Keeps the cache in step with the store for the life of the process.
    pub(crate) async fn watch(self: Arc<Self>, directory: Arc<dyn Directory>) {
        loop {
            let dir = directory.clone();
            match tokio::task::spawn_blocking(move || dir.change_token()).await {
                Ok(Ok(current)) => self.refresh(current),
                Ok(Err(e)) => {
                    // Without a token nothing new is cached; reads go to the store.
                    tracing::warn!(error = %e, "cannot read the directory's change token");
                    *self.token.lock() = None;
                    self.entries.lock().clear();
                }
                Err(_) => {}
            }
            tokio::time::sleep(CHECK_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_directory::{Domain, NewUser, SqliteDirectory};

    use super::*;

    fn store() -> (tempfile::TempDir, SqliteDirectory, SqliteDirectory, Aor) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.db");
        let server = SqliteDirectory::open(&path).unwrap();
        let admin = SqliteDirectory::open(&path).unwrap();
        admin.add_domain(&Domain::parse("c.test").unwrap()).unwrap();
        let aor = Aor::parse("ann@c.test").unwrap();
        admin.add_user(&NewUser::new(aor.clone())).unwrap();
        (tmp, server, admin, aor)
    }

    #[test]
    fn another_processs_write_empties_the_cache() {
        let (_tmp, server, admin, aor) = store();
        let cache = UserCache::new();
        cache.refresh(server.change_token().unwrap());
        let token = cache.token();
        cache.put(aor.clone(), server.get_user(&aor).unwrap(), token);
        assert!(cache.get(&aor).unwrap().unwrap().enabled);
        admin.set_enabled(&aor, false).unwrap();
        cache.refresh(server.change_token().unwrap());
        assert!(cache.get(&aor).is_none(), "the change emptied the cache");
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_cached() {
        let (_tmp, server, admin, aor) = store();
        let cache = UserCache::new();
        cache.refresh(server.change_token().unwrap());
        let stale_token = cache.token();
        let stale = server.get_user(&aor).unwrap();
        admin.set_enabled(&aor, false).unwrap();
        cache.refresh(server.change_token().unwrap());
        cache.put(aor.clone(), stale, stale_token);
        assert!(cache.get(&aor).is_none());
    }

    #[test]
    fn nothing_is_cached_before_the_first_token() {
        let (_tmp, server, _admin, aor) = store();
        let cache = UserCache::new();
        cache.put(aor.clone(), server.get_user(&aor).unwrap(), None);
        assert!(cache.get(&aor).is_none());
    }
}
