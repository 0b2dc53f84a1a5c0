//! SIP SIMPLE presence (RFC 3856, 3903, 6665): registering users, persistent subscriptions,
//! ETag-chained publications and one-time queries, phase by phase.
//!
//! The population: `P` presentities and `W` watchers, each watcher subscribing to `C`
//! presentities, so `W·C` subscriptions (subscription `s` is watcher `s / C`'s contact
//! `s % C`). The contacts of watcher `w` are presentities `(w + 1 + j·⌊P/C⌋) mod P`,
//! `j = 0..C`: distinct, and when `W` is a multiple of `P` every presentity has the same number
//! of watchers, `W·C / P`.
//!
//! Each phase's *mode* says what its paced units are:
//!
//! - [`MODE_REGISTER`]: one REGISTER of a user not yet registered (each user once);
//! - [`MODE_SUBSCRIBE`]: one subscription set up: SUBSCRIBE (Event: presence, Accept:
//!   application/pidf+xml) → 2xx and the initial NOTIFY, answered 200;
//! - [`MODE_PUBLISH`]: one PUBLISH of the presentity idle longest, the first of a chain without
//!   `SIP-If-Match`, the next ones with the last `SIP-ETag`; its body names the publication
//!   (a [`Marker`]) so a watcher can time the NOTIFY it causes;
//! - [`MODE_FETCH`]: one one-time query: SUBSCRIBE Expires: 0 → 2xx and one NOTIFY;
//! - [`MODE_HOLD`]: nothing is started; the subscriptions are held.
//!
//! In every mode, and between phases, every NOTIFY is answered 200 at once (BENOTIFY is not
//! answered) and counted. A request that carries no credentials and is challenged (401 or 407)
//! is sent again with Digest credentials from herald's own client code, as the register scenario
//! does; a user keeps its challenge and answers later requests with nc + 1.
//!
//! No per-message map: every Call-ID names its entity ([`presence::parse_call_id`]); in-flight
//! requests live in a slab of reusable buffers, so memory per subscription is a few dozen bytes
//! whatever the number of subscriptions held.

use std::collections::VecDeque;
use std::fmt::{self, Display};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use herald_auth::{NonceCount, answer_challenge};
use memchr::memmem;

use crate::engine::timers::Timer;
use crate::engine::transaction::{ClientTransaction, Fire};
use crate::engine::{Io, Phase, Scenario, ThreadContext, share};
use crate::sip::headers;
use crate::sip::presence::{
    self, Credentials, Ident, Incoming, Marker, Method, Request, Role, write_answer, write_pidf,
};
use crate::sip::request::cnonce;

/// Phase mode: register every user once.
pub const MODE_REGISTER: u32 = 1;
/// Phase mode: set up subscriptions not yet established.
pub const MODE_SUBSCRIBE: u32 = 2;
/// Phase mode: publish.
pub const MODE_PUBLISH: u32 = 3;
/// Phase mode: one-time queries.
pub const MODE_FETCH: u32 = 4;
/// Phase mode: start nothing, hold the subscriptions and answer NOTIFYs.
pub const MODE_HOLD: u32 = 5;

/// A user name pattern split at its `{n}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFormat {
    prefix: String,
    suffix: String,
}

impl UserFormat {
    /// `p{n}` → `p0`, `p1`, ...; a pattern without `{n}` is a prefix.
    pub fn new(pattern: &str) -> Self {
        match pattern.split_once("{n}") {
            Some((prefix, suffix)) => UserFormat {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            },
            None => UserFormat {
                prefix: pattern.to_owned(),
                suffix: String::new(),
            },
        }
    }

    /// User `n`'s name, written without allocating.
    pub fn user(&self, n: u32) -> UserName<'_> {
        UserName { format: self, n }
    }
}

/// One user's name, for `write!`.
#[derive(Clone, Copy, Debug)]
pub struct UserName<'a> {
    format: &'a UserFormat,
    n: u32,
}

impl Display for UserName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.format.prefix, self.n, self.format.suffix)
    }
}

/// Settings of the presence scenario, shared by every thread.
#[derive(Clone, Debug)]
pub struct PresenceConfig {
    /// The domain of every URI.
    pub domain: String,
    /// Presentities (`P`).
    pub presentities: u32,
    /// Watchers (`W`).
    pub watchers: u32,
    /// Subscriptions per watcher (`C`).
    pub contacts: u32,
    /// Presentity user names.
    pub presentity_format: UserFormat,
    /// Watcher user names; the same pattern as presentities makes them the same users.
    pub watcher_format: UserFormat,
    /// Every user's password, for Digest challenges; `None` refuses challenges.
    pub password: Option<String>,
    /// Expires of subscriptions and publications.
    pub expires: u32,
    /// Expires of registrations.
    pub register_expires: u32,
    /// Clients making one-time queries, in all (they use watcher identities).
    pub fetchers: u32,
    /// Identifies the run in Call-IDs, tags and markers (random per process).
    pub run: u64,
    /// Publication times are µs since this instant.
    pub epoch: Instant,
    /// A publish phase ends once no NOTIFY came for this long (or the drain ran out).
    pub notify_grace: Duration,
    shared: Arc<Shared>,
}

/// What every thread reads: each presentity's subscription count and last publication.
#[derive(Debug)]
struct Shared {
    fanout: Vec<u32>,
    /// `seq << 40 | sent µs` of each presentity's last PUBLISH (0: none yet), to time
    /// notifications whose body lost the marker.
    last_publish: Vec<AtomicU64>,
}

impl PresenceConfig {
    /// The population of `presentities` × (`watchers` × `contacts`), other settings at their
    /// defaults; `None` when the shape is impossible (no presentity, or more contacts than
    /// presentities).
    pub fn new(
        domain: &str,
        presentities: u32,
        watchers: u32,
        contacts: u32,
        run: u64,
    ) -> Option<Self> {
        if presentities == 0 || contacts > presentities || watchers.checked_mul(contacts).is_none()
        {
            return None;
        }
        let mut fanout = vec![0u32; presentities as usize];
        for w in 0..watchers {
            for j in 0..contacts {
                fanout[contact(presentities, contacts, w, j) as usize] += 1;
            }
        }
        let last_publish = (0..presentities).map(|_| AtomicU64::new(0)).collect();
        Some(PresenceConfig {
            domain: domain.to_owned(),
            presentities,
            watchers,
            contacts,
            presentity_format: UserFormat::new("p{n}"),
            watcher_format: UserFormat::new("w{n}"),
            password: None,
            expires: 3600,
            register_expires: 600,
            fetchers: 1000,
            run,
            epoch: Instant::now(),
            notify_grace: Duration::from_millis(500),
            shared: Arc::new(Shared {
                fanout,
                last_publish,
            }),
        })
    }

    /// Subscriptions in all.
    pub fn subscriptions(&self) -> u32 {
        self.watchers * self.contacts
    }

    /// The presentity of subscription `s`.
    pub fn presentity_of(&self, s: u32) -> u32 {
        contact(
            self.presentities,
            self.contacts,
            s / self.contacts.max(1),
            s % self.contacts.max(1),
        )
    }

    /// How many subscriptions presentity `p` has.
    pub fn fanout(&self, p: u32) -> u32 {
        self.shared.fanout.get(p as usize).copied().unwrap_or(0)
    }

    /// Users that register: presentities and watchers (once when they share a pattern).
    pub fn users(&self) -> u32 {
        if self.same_users() {
            self.presentities.max(self.watchers)
        } else {
            self.presentities + self.watchers
        }
    }

    fn same_users(&self) -> bool {
        self.presentity_format == self.watcher_format
    }

    /// User `u` of [`PresenceConfig::users`], as (format, number).
    fn user(&self, u: u32) -> UserName<'_> {
        if self.same_users() || u < self.presentities {
            self.presentity_format.user(u)
        } else {
            self.watcher_format.user(u - self.presentities)
        }
    }
}

fn contact(presentities: u32, contacts: u32, w: u32, j: u32) -> u32 {
    let step = (presentities / contacts.max(1)).max(1);
    ((u64::from(w) + 1 + u64::from(j) * u64::from(step)) % u64::from(presentities)) as u32
}

/// A user's Digest state: the last challenge and the nonce count used with it.
#[derive(Debug, Default)]
struct Auth {
    challenge: String,
    nc: u32,
    proxy: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubState {
    Idle,
    Subscribing,
    Established,
}

/// One persistent subscription: 24 bytes.
#[derive(Debug)]
struct Sub {
    presentity: u32,
    cseq: u32,
    txn: u32,
    /// Highest CSeq of the NOTIFYs received, to tell retransmissions.
    last_notify_cseq: u32,
    /// Publication number of the presentity the last notification reflected.
    last_seq: u32,
    state: SubState,
    /// [`GOT_2XX`] | [`GOT_NOTIFY`] while subscribing.
    flags: u8,
}

struct Publisher {
    cseq: u32,
    txn: u32,
    seq: u32,
    sent_us: u64,
    etag: String,
    auth: Auth,
}

struct Fetcher {
    /// The query number: in the Call-ID, so late answers to an earlier query are told apart.
    generation: u32,
    cseq: u32,
    txn: u32,
    presentity: u32,
    flags: u8,
    auth: Auth,
}

struct Registrant {
    cseq: u32,
    txn: u32,
    auth: Auth,
}

/// One request in flight, or a unit waiting for its NOTIFY.
struct Txn {
    role: Role,
    /// The entity's index within this thread's table.
    owner: u32,
    generation: u32,
    live: bool,
    cseq: u32,
    method: Method,
    authed: bool,
    /// The unit already answered a second challenge; another is a failure.
    rechallenged: bool,
    /// A 2xx came; the unit waits for its NOTIFY until the deadline.
    answered: bool,
    client: Option<ClientTransaction>,
    unit_started: Instant,
    socket: usize,
    message: Vec<u8>,
}

const GOT_2XX: u8 = 1;
const GOT_NOTIFY: u8 = 2;
const NO_TXN: u32 = u32::MAX;
const SEQ_SHIFT: u32 = 40;
const TIME_MASK: u64 = (1 << SEQ_SHIFT) - 1;

/// One thread's watchers, publishers, query clients and registering users.
pub struct PresenceScenario {
    config: PresenceConfig,
    locals: Vec<SocketAddr>,
    mode: u32,
    subs: Vec<Sub>,
    sub_base: u32,
    sub_idle: VecDeque<u32>,
    /// Digest state of the watchers of this thread's subscriptions, from `watcher_base`.
    watcher_auth: Vec<Auth>,
    watcher_base: u32,
    pubs: Vec<Publisher>,
    pub_base: u32,
    pub_idle: VecDeque<u32>,
    fetchers: Vec<Fetcher>,
    fetch_base: u32,
    fetch_idle: VecDeque<u32>,
    regs: Vec<Registrant>,
    reg_base: u32,
    reg_idle: VecDeque<u32>,
    txns: Vec<Txn>,
    free_txns: Vec<u32>,
    in_progress: usize,
    last_notify: Instant,
    finder: memmem::Finder<'static>,
    body: Vec<u8>,
    answer: Vec<u8>,
    uri: String,
    from: String,
    to: String,
    cnonce: String,
    rng: u64,
}

impl PresenceScenario {
    /// This thread's share of every population, idle.
    pub fn new(config: PresenceConfig, context: ThreadContext) -> Self {
        let (t, n) = (context.thread, context.threads.max(1));
        let subs_range = share(config.subscriptions(), n, t);
        let contacts = config.contacts.max(1);
        let watcher_base = subs_range.start / contacts;
        let watcher_end = subs_range.end.div_ceil(contacts);
        let subs = subs_range
            .clone()
            .map(|s| Sub {
                presentity: config.presentity_of(s),
                cseq: 0,
                txn: NO_TXN,
                last_notify_cseq: 0,
                last_seq: 0,
                state: SubState::Idle,
                flags: 0,
            })
            .collect::<Vec<_>>();
        let pub_range = share(config.presentities, n, t);
        let pubs = pub_range
            .clone()
            .map(|_| Publisher {
                cseq: 0,
                txn: NO_TXN,
                seq: 0,
                sent_us: 0,
                etag: String::new(),
                auth: Auth::default(),
            })
            .collect::<Vec<_>>();
        let fetch_range = share(config.fetchers, n, t);
        let fetchers = fetch_range
            .clone()
            .map(|_| Fetcher {
                generation: 0,
                cseq: 0,
                txn: NO_TXN,
                presentity: 0,
                flags: 0,
                auth: Auth::default(),
            })
            .collect::<Vec<_>>();
        let reg_range = share(config.users(), n, t);
        let regs = reg_range
            .clone()
            .map(|_| Registrant {
                cseq: 0,
                txn: NO_TXN,
                auth: Auth::default(),
            })
            .collect::<Vec<_>>();
        let mut rng = config.run ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        // Publishers start in a shuffled order, so the first publications spread over the
        // presentities' watchers instead of marching through them.
        let mut order: Vec<u32> = (0..pubs.len() as u32).collect();
        for i in (1..order.len()).rev() {
            let j = (xorshift(&mut rng) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let finder = memmem::Finder::new(&presence::marker_prefix(config.run)).into_owned();
        PresenceScenario {
            locals: context.locals,
            mode: 0,
            sub_idle: (0..subs.len() as u32).collect(),
            subs,
            sub_base: subs_range.start,
            watcher_auth: (watcher_base..watcher_end.max(watcher_base))
                .map(|_| Auth::default())
                .collect(),
            watcher_base,
            pub_idle: order.into(),
            pubs,
            pub_base: pub_range.start,
            fetch_idle: (0..fetchers.len() as u32).collect(),
            fetchers,
            fetch_base: fetch_range.start,
            reg_idle: (0..regs.len() as u32).collect(),
            regs,
            reg_base: reg_range.start,
            txns: Vec::new(),
            free_txns: Vec::new(),
            in_progress: 0,
            last_notify: Instant::now(),
            finder,
            body: Vec::with_capacity(1024),
            answer: Vec::with_capacity(1024),
            uri: String::with_capacity(64),
            from: String::with_capacity(32),
            to: String::with_capacity(32),
            cnonce: String::with_capacity(40),
            rng,
            config,
        }
    }

    /// Established subscriptions of this thread.
    pub fn established(&self) -> usize {
        self.subs
            .iter()
            .filter(|s| s.state == SubState::Established)
            .count()
    }

    fn socket_of(&self, index: u32) -> usize {
        index as usize % self.locals.len().max(1)
    }

    fn new_txn(&mut self, role: Role, owner: u32, now: Instant, socket: usize) -> u32 {
        let slot = match self.free_txns.pop() {
            Some(slot) => slot,
            None => {
                self.txns.push(Txn {
                    role,
                    owner,
                    generation: 0,
                    live: false,
                    cseq: 0,
                    method: Method::Register,
                    authed: false,
                    rechallenged: false,
                    answered: false,
                    client: None,
                    unit_started: now,
                    socket,
                    message: Vec::with_capacity(1536),
                });
                (self.txns.len() - 1) as u32
            }
        };
        let txn = &mut self.txns[slot as usize];
        txn.role = role;
        txn.owner = owner;
        txn.generation = txn.generation.wrapping_add(1);
        txn.live = true;
        txn.rechallenged = false;
        txn.answered = false;
        txn.client = None;
        txn.unit_started = now;
        txn.socket = socket;
        slot
    }

    fn free_txn(&mut self, slot: u32) {
        if let Some(txn) = self.txns.get_mut(slot as usize)
            && txn.live
        {
            txn.live = false;
            txn.generation = txn.generation.wrapping_add(1);
            self.free_txns.push(slot);
        }
    }

    /// Writes and sends the request of the unit in `slot` (a new CSeq each time), with
    /// credentials when `authed`; `false` when the credentials cannot be computed.
    fn send(&mut self, slot: u32, now: Instant, authed: bool, io: &mut Io<'_>) -> bool {
        let Some(txn) = self.txns.get(slot as usize) else {
            return false;
        };
        let (role, owner, socket) = (txn.role, txn.owner, txn.socket);
        let Some(&local) = self.locals.get(socket) else {
            return false;
        };
        let config = &self.config;
        let run = config.run;
        self.from.clear();
        self.to.clear();
        let mut expires = config.expires;
        let mut generation = 0;
        let mut if_match: Option<&str> = None;
        let mut body_len = 0;
        let (method, index, cseq, auth) = match role {
            Role::Subscription => {
                let sub = &mut self.subs[owner as usize];
                let global = self.sub_base + owner;
                let watcher = global / config.contacts.max(1);
                write_name(&mut self.from, config.watcher_format.user(watcher));
                write_name(&mut self.to, config.presentity_format.user(sub.presentity));
                sub.cseq = next_cseq(sub.cseq);
                let auth = &mut self.watcher_auth[(watcher - self.watcher_base) as usize];
                (Method::Subscribe, global, sub.cseq, auth)
            }
            Role::Fetcher => {
                let f = &mut self.fetchers[owner as usize];
                let global = self.fetch_base + owner;
                let watcher = global % config.watchers.max(1);
                write_name(&mut self.from, config.watcher_format.user(watcher));
                write_name(&mut self.to, config.presentity_format.user(f.presentity));
                f.cseq = next_cseq(f.cseq);
                expires = 0;
                generation = f.generation;
                (Method::Subscribe, global, f.cseq, &mut f.auth)
            }
            Role::Publisher => {
                let p = &mut self.pubs[owner as usize];
                let global = self.pub_base + owner;
                write_name(&mut self.from, config.presentity_format.user(global));
                self.to.push_str(&self.from);
                p.cseq = next_cseq(p.cseq);
                let marker = Marker {
                    run,
                    seq: p.seq,
                    sent_us: p.sent_us,
                };
                write_pidf(
                    &mut self.body,
                    &self.from,
                    &config.domain,
                    local,
                    p.seq % 2 == 1,
                    marker,
                );
                body_len = self.body.len();
                if !p.etag.is_empty() {
                    if_match = Some(&p.etag);
                }
                (Method::Publish, global, p.cseq, &mut p.auth)
            }
            Role::Registration => {
                let r = &mut self.regs[owner as usize];
                let global = self.reg_base + owner;
                write_name(&mut self.from, config.user(global));
                self.to.push_str(&self.from);
                r.cseq = next_cseq(r.cseq);
                expires = config.register_expires;
                (Method::Register, global, r.cseq, &mut r.auth)
            }
        };
        let mut request = Request {
            method,
            domain: &config.domain,
            from: &self.from,
            to: &self.to,
            local,
            run,
            ident: Ident {
                role,
                index,
                generation,
            },
            cseq,
            expires,
            if_match,
            credentials: None,
            body: &self.body[..body_len],
        };
        let txn = &mut self.txns[slot as usize];
        let credentials;
        if authed {
            let Some(password) = config.password.as_deref() else {
                io.stats.bad_challenges += 1;
                return false;
            };
            request.write_uri(&mut self.uri);
            auth.nc = auth.nc.wrapping_add(1);
            cnonce(run, index, cseq, &mut self.cnonce);
            match answer_challenge(
                &auth.challenge,
                &self.from,
                password,
                method.name(),
                &self.uri,
                &self.cnonce,
                NonceCount(auth.nc),
            ) {
                Ok(c) => credentials = c,
                Err(_) => {
                    io.stats.bad_challenges += 1;
                    auth.challenge.clear();
                    return false;
                }
            }
            request.credentials = Some(Credentials {
                value: &credentials,
                proxy: auth.proxy,
            });
        }
        request.write_to(&mut txn.message);
        txn.cseq = cseq;
        txn.method = method;
        txn.authed = authed;
        txn.answered = false;
        let (client, fire_at) = ClientTransaction::start(now, io.timer_config);
        txn.client = Some(client);
        io.timers.schedule(fire_at, slot, txn.generation);
        io.send(socket, &txn.message);
        true
    }

    /// The auth state the unit in `slot` uses.
    fn auth_of(&mut self, role: Role, owner: u32) -> Option<&mut Auth> {
        match role {
            Role::Subscription => {
                let global = self.sub_base + owner;
                let watcher = global / self.config.contacts.max(1);
                self.watcher_auth
                    .get_mut(watcher.checked_sub(self.watcher_base)? as usize)
            }
            Role::Fetcher => self.fetchers.get_mut(owner as usize).map(|f| &mut f.auth),
            Role::Publisher => self.pubs.get_mut(owner as usize).map(|p| &mut p.auth),
            Role::Registration => self.regs.get_mut(owner as usize).map(|r| &mut r.auth),
        }
    }

    /// Starts a unit: a transaction for entity `owner` of `role`, sent now.
    fn begin_unit(&mut self, role: Role, owner: u32, now: Instant, io: &mut Io<'_>) -> bool {
        let socket = self.socket_of(owner);
        let slot = self.new_txn(role, owner, now, socket);
        let authed = self
            .auth_of(role, owner)
            .is_some_and(|a| !a.challenge.is_empty());
        match role {
            Role::Subscription => {
                let sub = &mut self.subs[owner as usize];
                sub.txn = slot;
                sub.state = SubState::Subscribing;
                sub.flags = 0;
            }
            Role::Fetcher => {
                let f = &mut self.fetchers[owner as usize];
                f.txn = slot;
                f.flags = 0;
                f.generation = f.generation.wrapping_add(1);
                f.presentity =
                    (xorshift(&mut self.rng) % u64::from(self.config.presentities)) as u32;
            }
            Role::Publisher => {
                let global = self.pub_base + owner;
                let p = &mut self.pubs[owner as usize];
                p.txn = slot;
                p.seq = p.seq.wrapping_add(1) & 0xff_ffff;
                if p.seq == 0 {
                    p.seq = 1;
                }
                p.sent_us = micros_since(self.config.epoch, now);
                if let Some(last) = self.config.shared.last_publish.get(global as usize) {
                    last.store(
                        u64::from(p.seq) << SEQ_SHIFT | (p.sent_us & TIME_MASK),
                        Ordering::Relaxed,
                    );
                }
            }
            Role::Registration => self.regs[owner as usize].txn = slot,
        }
        self.in_progress += 1;
        if self.send(slot, now, authed, io) {
            return true;
        }
        // A challenge that cannot be answered: counted; the next attempt starts over.
        if let Some(a) = self.auth_of(role, owner) {
            a.challenge.clear();
        }
        self.end_unit(slot, false);
        true
    }

    /// The unit in `slot` is over: its entity becomes idle (or established), the slot free.
    fn end_unit(&mut self, slot: u32, success: bool) {
        let Some(txn) = self.txns.get(slot as usize) else {
            return;
        };
        if !txn.live {
            return;
        }
        let (role, owner) = (txn.role, txn.owner);
        match role {
            Role::Subscription => {
                let sub = &mut self.subs[owner as usize];
                sub.txn = NO_TXN;
                sub.flags = 0;
                if success {
                    sub.state = SubState::Established;
                } else {
                    sub.state = SubState::Idle;
                    self.sub_idle.push_back(owner);
                }
            }
            Role::Fetcher => {
                let f = &mut self.fetchers[owner as usize];
                f.txn = NO_TXN;
                f.flags = 0;
                self.fetch_idle.push_back(owner);
            }
            Role::Publisher => {
                self.pubs[owner as usize].txn = NO_TXN;
                self.pub_idle.push_back(owner);
            }
            Role::Registration => {
                self.regs[owner as usize].txn = NO_TXN;
                if !success {
                    self.reg_idle.push_back(owner);
                }
            }
        }
        self.in_progress = self.in_progress.saturating_sub(1);
        self.free_txn(slot);
    }

    /// Which transaction a response answers: its entity's current one, same CSeq and method.
    fn match_response(&self, r: &Incoming<'_>) -> Option<u32> {
        let ident = presence::parse_call_id(r.call_id, self.config.run)?;
        let slot = match ident.role {
            Role::Subscription => self.subs.get(local(ident.index, self.sub_base)?)?.txn,
            Role::Publisher => self.pubs.get(local(ident.index, self.pub_base)?)?.txn,
            Role::Registration => self.regs.get(local(ident.index, self.reg_base)?)?.txn,
            Role::Fetcher => {
                let f = self.fetchers.get(local(ident.index, self.fetch_base)?)?;
                if f.generation != ident.generation {
                    return None;
                }
                f.txn
            }
        };
        let txn = self.txns.get(slot as usize)?;
        let current = txn.live
            && !txn.answered
            && txn.cseq == r.cseq
            && r.cseq_method
                .eq_ignore_ascii_case(txn.method.name().as_bytes());
        current.then_some(slot)
    }

    fn on_response(&mut self, now: Instant, r: &Incoming<'_>, status: u16, io: &mut Io<'_>) {
        let Some(slot) = self.match_response(r) else {
            io.stats.stray += 1;
            return;
        };
        let txn = &mut self.txns[slot as usize];
        if status < 200 {
            io.stats.provisional += 1;
            if let Some(c) = txn.client.as_mut() {
                c.proceeding(io.timer_config);
            }
            return;
        }
        let sent = txn.client.map_or(now, |c| c.first_sent);
        let (role, owner, authed, unit_started) =
            (txn.role, txn.owner, txn.authed, txn.unit_started);
        match status {
            200..=299 => {
                io.stats
                    .auth_latency
                    .record(micros(now.saturating_duration_since(sent)));
                match role {
                    Role::Subscription | Role::Fetcher => {
                        let flags = match role {
                            Role::Subscription => &mut self.subs[owner as usize].flags,
                            _ => &mut self.fetchers[owner as usize].flags,
                        };
                        *flags |= GOT_2XX;
                        if *flags & GOT_NOTIFY != 0 {
                            self.complete(slot, now, io);
                        } else {
                            // Wait for the NOTIFY until Timer F would have fired.
                            txn.answered = true;
                            let deadline = unit_started + io.timer_config.timeout;
                            io.timers.schedule(deadline, slot, txn.generation);
                        }
                    }
                    Role::Publisher => {
                        let global = self.pub_base + owner;
                        let p = &mut self.pubs[owner as usize];
                        p.etag.clear();
                        if let Some(etag) = r.etag {
                            p.etag.push_str(&String::from_utf8_lossy(etag));
                        }
                        io.stats.notify.expected += u64::from(self.config.fanout(global));
                        self.complete(slot, now, io);
                    }
                    Role::Registration => self.complete(slot, now, io),
                }
            }
            401 | 407 => {
                let rechallenge = authed;
                let Some(auth) = self.auth_of(role, owner) else {
                    return;
                };
                let stale = r.challenge.is_some_and(|c| c.stale);
                let reused = auth.nc > 1;
                if rechallenge && !(stale || reused) {
                    // Fresh credentials refused.
                    auth.challenge.clear();
                    io.stats.fail_status(status);
                    self.end_unit(slot, false);
                    return;
                }
                auth.challenge.clear();
                auth.nc = 0;
                auth.proxy = status == 407;
                let usable = r
                    .challenge
                    .is_some_and(|c| headers::unfold(c.value, &mut auth.challenge));
                if !usable {
                    io.stats.bad_challenges += 1;
                    self.end_unit(slot, false);
                    return;
                }
                if rechallenge {
                    if self.txns[slot as usize].rechallenged {
                        io.stats.fail_status(status);
                        self.end_unit(slot, false);
                        return;
                    }
                    io.stats.rechallenges += 1;
                    self.txns[slot as usize].rechallenged = true;
                } else {
                    io.stats.challenges += 1;
                }
                // A new transaction (new CSeq, new branch) for the same unit.
                let txn = &mut self.txns[slot as usize];
                txn.generation = txn.generation.wrapping_add(1);
                if !self.send(slot, now, true, io) {
                    self.end_unit(slot, false);
                }
            }
            _ => {
                if role == Role::Publisher && status == 412 {
                    // The publication is gone (expired, or the server forgot it): the chain
                    // starts over with an initial PUBLISH.
                    self.pubs[owner as usize].etag.clear();
                }
                io.stats.fail_status(status);
                self.end_unit(slot, false);
            }
        }
    }

    fn complete(&mut self, slot: u32, now: Instant, io: &mut Io<'_>) {
        let started = self.txns[slot as usize].unit_started;
        io.stats.completed += 1;
        io.stats
            .unit_latency
            .record(micros(now.saturating_duration_since(started)));
        self.end_unit(slot, true);
    }

    fn on_request(&mut self, now: Instant, datagram: &[u8], r: &Incoming<'_>, io: &mut Io<'_>) {
        let best_effort = r.method.eq_ignore_ascii_case(b"BENOTIFY");
        let notify = best_effort || r.method.eq_ignore_ascii_case(b"NOTIFY");
        let ident = presence::parse_call_id(r.call_id, self.config.run);
        let known = notify
            && match ident {
                Some(Ident {
                    role: Role::Subscription,
                    index,
                    ..
                }) => local(index, self.sub_base)
                    .is_some_and(|i| self.subs.get(i).is_some_and(|s| s.state != SubState::Idle)),
                Some(Ident {
                    role: Role::Fetcher,
                    index,
                    generation,
                }) => local(index, self.fetch_base).is_some_and(|i| {
                    self.fetchers
                        .get(i)
                        .is_some_and(|f| f.generation == generation)
                }),
                _ => false,
            };
        if !best_effort {
            let (status, reason) = match (notify, known) {
                (true, true) => (200, "OK"),
                (true, false) => (481, "Subscription Does Not Exist"),
                (false, _) => (405, "Method Not Allowed"),
            };
            write_answer(datagram, status, reason, "sipload", &mut self.answer);
            let socket = match ident {
                Some(Ident {
                    role: Role::Subscription,
                    index,
                    ..
                }) => local(index, self.sub_base).map_or(0, |i| self.socket_of(i as u32)),
                Some(Ident {
                    role: Role::Fetcher,
                    index,
                    ..
                }) => local(index, self.fetch_base).map_or(0, |i| self.socket_of(i as u32)),
                _ => 0,
            };
            io.send(socket, &self.answer);
        }
        if !known {
            io.stats.notify.unknown += 1;
            return;
        }
        let Some(ident) = ident else {
            return;
        };
        match ident.role {
            Role::Fetcher => {
                let Some(i) = local(ident.index, self.fetch_base) else {
                    return;
                };
                let f = &mut self.fetchers[i];
                // Already answered (the query may even be over): the server resent it.
                if f.txn == NO_TXN || f.flags & GOT_NOTIFY != 0 {
                    io.stats.notify.retransmissions += 1;
                    return;
                }
                f.flags |= GOT_NOTIFY;
                let slot = f.txn;
                let got_2xx = f.flags & GOT_2XX != 0;
                if got_2xx {
                    self.complete(slot, now, io);
                }
            }
            Role::Subscription => {
                let Some(i) = local(ident.index, self.sub_base) else {
                    return;
                };
                self.on_sub_notify(now, i, r, best_effort, io);
            }
            _ => {}
        }
    }

    fn on_sub_notify(
        &mut self,
        now: Instant,
        i: usize,
        r: &Incoming<'_>,
        best_effort: bool,
        io: &mut Io<'_>,
    ) {
        let config = &self.config;
        let sub = &mut self.subs[i];
        // CSeq grows with every request of a dialog (RFC 3261 §12.2.1.1): one not above the
        // highest seen is a retransmission (our answer was lost or late) or an old one
        // overtaken, either way not a new notification.
        let seen = sub.flags & GOT_NOTIFY != 0 || sub.state == SubState::Established;
        if seen && r.cseq <= sub.last_notify_cseq {
            io.stats.notify.retransmissions += 1;
            return;
        }
        sub.last_notify_cseq = r.cseq;
        let marker = presence::find_marker(r.body, &self.finder, config.run);
        let last = config
            .shared
            .last_publish
            .get(sub.presentity as usize)
            .map_or(0, |a| a.load(Ordering::Relaxed));
        if sub.state == SubState::Subscribing {
            if sub.flags & GOT_NOTIFY != 0 {
                io.stats.notify.extra += 1;
                return;
            }
            // The initial NOTIFY: the state as it is, which completes the set-up.
            sub.flags |= GOT_NOTIFY;
            sub.last_seq = marker.map_or((last >> SEQ_SHIFT) as u32, |m| m.seq);
            let slot = sub.txn;
            if r.terminated {
                io.stats.notify.terminated += 1;
                // Accepted and ended at once (e.g. `reason=rejected`): counted as a 481, the
                // subscription does not exist.
                io.stats.fail_status(481);
                self.end_unit(slot, false);
            } else if sub.flags & GOT_2XX != 0 {
                self.complete(slot, now, io);
            }
            return;
        }
        if best_effort {
            io.stats.notify.benotifies += 1;
        } else {
            io.stats.notify.notifies += 1;
        }
        self.last_notify = now;
        let now_us = micros_since(config.epoch, now);
        match marker {
            Some(m) if m.seq != sub.last_seq => {
                sub.last_seq = m.seq;
                io.stats.notify.marked += 1;
                io.stats
                    .notify
                    .latency
                    .record(now_us.saturating_sub(m.sent_us));
            }
            Some(_) => io.stats.notify.extra += 1,
            None => {
                let seq = (last >> SEQ_SHIFT) as u32;
                if last != 0 && seq != sub.last_seq {
                    sub.last_seq = seq;
                    io.stats.notify.inferred += 1;
                    io.stats
                        .notify
                        .latency
                        .record(now_us.saturating_sub(last & TIME_MASK));
                } else {
                    io.stats.notify.extra += 1;
                }
            }
        }
        if r.terminated {
            io.stats.notify.terminated += 1;
            sub.state = SubState::Idle;
            self.sub_idle.push_back(i as u32);
        }
    }
}

impl Scenario for PresenceScenario {
    fn start(&mut self, now: Instant, io: &mut Io<'_>) -> bool {
        let (role, owner) = match self.mode {
            MODE_SUBSCRIBE => (Role::Subscription, self.sub_idle.pop_front()),
            MODE_PUBLISH => (Role::Publisher, self.pub_idle.pop_front()),
            MODE_FETCH => (Role::Fetcher, self.fetch_idle.pop_front()),
            MODE_REGISTER => (Role::Registration, self.reg_idle.pop_front()),
            _ => return false,
        };
        match owner {
            Some(owner) => self.begin_unit(role, owner, now, io),
            None => false,
        }
    }

    fn on_datagram(&mut self, now: Instant, datagram: &[u8], io: &mut Io<'_>) {
        let Ok(message) = presence::parse_incoming(datagram) else {
            io.stats.malformed += 1;
            return;
        };
        match message.status {
            Some(status) => self.on_response(now, &message, status, io),
            None => self.on_request(now, datagram, &message, io),
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer, io: &mut Io<'_>) {
        let slot = timer.client;
        let Some(txn) = self.txns.get_mut(slot as usize) else {
            return;
        };
        if !txn.live || txn.generation != timer.generation {
            return;
        }
        if txn.answered {
            // The 2xx came but the NOTIFY did not.
            io.stats.timeouts += 1;
            self.end_unit(slot, false);
            return;
        }
        let Some(client) = txn.client.as_mut() else {
            return;
        };
        match client.fire(now, io.timer_config) {
            Fire::Retransmit(at) => {
                io.stats.retransmissions += 1;
                io.timers.schedule(at, slot, txn.generation);
                io.send(txn.socket, &txn.message);
            }
            Fire::TimedOut => {
                io.stats.timeouts += 1;
                self.end_unit(slot, false);
            }
        }
    }

    fn outstanding(&self) -> usize {
        self.in_progress
    }

    fn abandon(&mut self, io: &mut Io<'_>) {
        for slot in 0..self.txns.len() as u32 {
            if self.txns[slot as usize].live {
                io.stats.unfinished += 1;
                self.end_unit(slot, false);
            }
        }
        self.in_progress = 0;
    }

    fn begin(&mut self, phase: &Phase, now: Instant) {
        self.mode = phase.mode;
        self.last_notify = now;
    }

    fn settled(&self, now: Instant) -> bool {
        self.in_progress == 0
            && (self.mode != MODE_PUBLISH
                || now.saturating_duration_since(self.last_notify) >= self.config.notify_grace)
    }
}

fn local(index: u32, base: u32) -> Option<usize> {
    index.checked_sub(base).map(|i| i as usize)
}

fn next_cseq(cseq: u32) -> u32 {
    // CSeq numbers stay below 2^31 (RFC 3261 §8.1.1.5).
    cseq % 0x7fff_ffff + 1
}

fn write_name(out: &mut String, name: UserName<'_>) {
    use fmt::Write as _;
    out.clear();
    let _ = write!(out, "{name}");
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn micros_since(epoch: Instant, now: Instant) -> u64 {
    micros(now.saturating_duration_since(epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_distinct_and_fan_out_evenly() {
        let c = PresenceConfig::new("example.com", 1000, 20_000, 1, 1).unwrap();
        assert_eq!(c.subscriptions(), 20_000);
        assert!((0..1000).all(|p| c.fanout(p) == 20));
        let c = PresenceConfig::new("example.com", 1000, 1000, 20, 1).unwrap();
        assert!((0..1000).all(|p| c.fanout(p) == 20));
        let mut mine: Vec<u32> = (0..20).map(|s| c.presentity_of(s)).collect();
        mine.sort_unstable();
        mine.dedup();
        assert_eq!(mine.len(), 20);
        assert!(!mine.contains(&0), "watcher 0 is not its own contact");
        assert!(PresenceConfig::new("example.com", 10, 5, 11, 1).is_none());
        assert!(PresenceConfig::new("example.com", 0, 5, 0, 1).is_none());
    }

    #[test]
    fn a_subscription_costs_the_generator_24_bytes() {
        assert_eq!(size_of::<Sub>(), 24);
    }

    #[test]
    fn users_are_shared_when_the_patterns_are() {
        let mut c = PresenceConfig::new("example.com", 10, 30, 2, 1).unwrap();
        assert_eq!(c.users(), 40);
        assert_eq!(c.user(3).to_string(), "p3");
        assert_eq!(c.user(12).to_string(), "w2");
        c.watcher_format = UserFormat::new("p{n}");
        assert_eq!(c.users(), 30);
        assert_eq!(c.user(12).to_string(), "p12");
        assert_eq!(UserFormat::new("u{n}.x").user(7).to_string(), "u7.x");
    }
}
