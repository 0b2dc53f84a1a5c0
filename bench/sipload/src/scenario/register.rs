//! Authenticated registration (RFC 3261 §10.2 with §22 Digest): REGISTER without credentials,
//! 401 with the SHA-256 challenge, REGISTER with `Authorization` and CSeq + 1, 200.
//!
//! With nonce reuse a client keeps its last challenge and sends later REGISTERs with credentials
//! straight away, nonce-count + 1 each time (what deployed clients do); a 401 to such a request
//! (stale, or the server forgot the nonce) is answered once with the new challenge. Every client
//! keeps one Call-ID and its CSeq sequence for the whole run, as a re-registering UA does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use herald_auth::{NonceCount, answer_challenge};

use crate::engine::timers::Timer;
use crate::engine::transaction::{ClientTransaction, Fire};
use crate::engine::{Io, Scenario, ThreadContext};
use crate::sip::headers;
use crate::sip::request::{self, Register};
use crate::sip::response::{self, Response};

/// Settings of the register scenario.
#[derive(Clone, Debug)]
pub struct RegisterConfig {
    /// Registrar domain and Digest `uri` host.
    pub domain: String,
    /// User name pattern; `{n}` is replaced by the client index.
    pub user_format: String,
    /// Password, the same for every user unless it contains `{n}`.
    pub password: String,
    /// Registration interval asked for.
    pub expires: u32,
    /// Keep nonces and send credentials without waiting for a challenge.
    pub reuse_nonce: bool,
    /// Identifies the run in Call-IDs (random per process).
    pub run: u64,
}

impl RegisterConfig {
    /// The user name of client `n`.
    pub fn user(&self, n: u32) -> String {
        self.user_format.replace("{n}", &n.to_string())
    }

    fn password(&self, n: u32) -> Option<Box<str>> {
        self.password
            .contains("{n}")
            .then(|| self.password.replace("{n}", &n.to_string()).into())
    }
}

/// One thread's registering clients.
pub struct RegisterScenario {
    config: RegisterConfig,
    /// `sip:<domain>`: Request-URI and Digest `uri`.
    uri: String,
    locals: Vec<SocketAddr>,
    /// Global index of `clients[0]`.
    base: u32,
    clients: Vec<Client>,
    /// Clients without a unit in progress, longest idle first.
    idle: VecDeque<u32>,
    cnonce: String,
}

struct Client {
    user: Box<str>,
    /// Set when passwords differ per user.
    password: Option<Box<str>>,
    socket: usize,
    cseq: u32,
    state: State,
    /// Bumped whenever a transaction ends, so its pending timers are recognised as stale.
    generation: u32,
    txn: Option<ClientTransaction>,
    /// When the current unit's first request went out.
    unit_started: Instant,
    /// The SHA-256 (else first) Digest challenge last received, unfolded.
    challenge: String,
    nc: u32,
    /// This unit already answered a second challenge; another 401 is a failure.
    rechallenged: bool,
    /// The request in flight, kept byte for byte for retransmission.
    message: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// REGISTER without credentials sent; a 401 is expected.
    Unauthenticated,
    /// REGISTER with credentials sent; a 200 is expected.
    Authenticated,
}

impl RegisterScenario {
    /// The clients of one thread, idle.
    pub fn new(config: RegisterConfig, context: ThreadContext) -> Self {
        let now = Instant::now();
        let sockets = context.locals.len().max(1);
        let clients = context
            .clients
            .clone()
            .enumerate()
            .map(|(i, n)| Client {
                user: config.user(n).into(),
                password: config.password(n),
                socket: i % sockets,
                cseq: 0,
                state: State::Idle,
                generation: 0,
                txn: None,
                unit_started: now,
                challenge: String::new(),
                nc: 0,
                rechallenged: false,
                message: Vec::with_capacity(MESSAGE_CAPACITY),
            })
            .collect::<Vec<_>>();
        RegisterScenario {
            uri: format!("sip:{}", config.domain),
            idle: (0..clients.len() as u32).collect(),
            base: context.clients.start,
            locals: context.locals,
            clients,
            config,
            cnonce: String::with_capacity(40),
        }
    }

    /// Sends the client's next REGISTER, with credentials if it holds a challenge and `auth`.
    fn send(&mut self, local: u32, now: Instant, auth: bool, io: &mut Io<'_>) -> bool {
        let Some(client) = self.clients.get_mut(local as usize) else {
            return false;
        };
        let Some(&local_addr) = self.locals.get(client.socket) else {
            return false;
        };
        // CSeq numbers stay below 2^31 (RFC 3261 §8.1.1.5).
        client.cseq = client.cseq % 0x7fff_ffff + 1;
        let global = self.base + local;
        let mut register = Register {
            domain: &self.config.domain,
            user: &client.user,
            local: local_addr,
            run: self.config.run,
            client: global,
            cseq: client.cseq,
            expires: self.config.expires,
            authorization: None,
        };
        if auth {
            client.nc = client.nc.wrapping_add(1);
            request::cnonce(self.config.run, global, client.cseq, &mut self.cnonce);
            let password = client.password.as_deref().unwrap_or(&self.config.password);
            let Ok(credentials) = answer_challenge(
                &client.challenge,
                &client.user,
                password,
                "REGISTER",
                &self.uri,
                &self.cnonce,
                NonceCount(client.nc),
            ) else {
                io.stats.bad_challenges += 1;
                client.challenge.clear();
                return false;
            };
            register.authorization = Some(&credentials);
            register.write_to(&mut client.message);
            client.state = State::Authenticated;
        } else {
            register.write_to(&mut client.message);
            client.state = State::Unauthenticated;
        }
        client.generation = client.generation.wrapping_add(1);
        let (txn, fire_at) = ClientTransaction::start(now, io.timer_config);
        client.txn = Some(txn);
        io.timers.schedule(fire_at, local, client.generation);
        io.send(client.socket, &client.message);
        true
    }

    /// The unit in progress on `local` is over; the client goes to the back of the idle queue.
    fn finish(&mut self, local: u32) {
        if let Some(client) = self.clients.get_mut(local as usize) {
            client.state = State::Idle;
            client.txn = None;
            client.generation = client.generation.wrapping_add(1);
            self.idle.push_back(local);
        }
    }

    /// Which client a response is for, if it answers that client's transaction in flight.
    fn match_response(&self, response: &Response<'_>) -> Option<u32> {
        let global = request::call_id_client(response.call_id, self.config.run)?;
        let local = global.checked_sub(self.base)?;
        let client = self.clients.get(local as usize)?;
        let current = client.state != State::Idle
            && client.cseq == response.cseq
            && response.method.eq_ignore_ascii_case(b"REGISTER");
        current.then_some(local)
    }

    /// Keeps the challenge of a 401 for the client; `false` when there is none usable.
    fn store_challenge(&mut self, local: u32, response: &Response<'_>) -> bool {
        let Some(client) = self.clients.get_mut(local as usize) else {
            return false;
        };
        client.challenge.clear();
        client.nc = 0;
        match response.challenge {
            Some(c) => headers::unfold(c.value, &mut client.challenge),
            None => false,
        }
    }
}

impl Scenario for RegisterScenario {
    fn start(&mut self, now: Instant, io: &mut Io<'_>) -> bool {
        let Some(local) = self.idle.pop_front() else {
            return false;
        };
        let Some(client) = self.clients.get_mut(local as usize) else {
            return false;
        };
        client.unit_started = now;
        client.rechallenged = false;
        let auth = self.config.reuse_nonce && !client.challenge.is_empty();
        if self.send(local, now, auth, io) {
            true
        } else {
            // Only a challenge that cannot be answered gets here; it was counted, and the
            // next attempt starts over without credentials.
            self.idle.push_back(local);
            true
        }
    }

    fn on_datagram(&mut self, now: Instant, datagram: &[u8], io: &mut Io<'_>) {
        let Ok(response) = response::parse(datagram) else {
            io.stats.malformed += 1;
            return;
        };
        let Some(local) = self.match_response(&response) else {
            io.stats.stray += 1;
            return;
        };
        let Some(client) = self.clients.get_mut(local as usize) else {
            return;
        };
        let status = response.status;
        if status < 200 {
            io.stats.provisional += 1;
            if let Some(txn) = client.txn.as_mut() {
                txn.proceeding(io.timer_config);
            }
            return;
        }
        let sent = client.txn.map_or(now, |t| t.first_sent);
        let state = client.state;
        let stale = response.challenge.is_some_and(|c| c.stale);
        let reused = client.nc > 1;
        match (state, status) {
            (State::Authenticated, 200..=299) => {
                io.stats.completed += 1;
                io.stats
                    .auth_latency
                    .record(micros(now.saturating_duration_since(sent)));
                io.stats
                    .unit_latency
                    .record(micros(now.saturating_duration_since(client.unit_started)));
                self.finish(local);
            }
            (State::Unauthenticated, 401 | 407) => {
                io.stats.challenges += 1;
                if self.store_challenge(local, &response) {
                    if !self.send(local, now, true, io) {
                        self.finish(local);
                    }
                } else {
                    io.stats.bad_challenges += 1;
                    self.finish(local);
                }
            }
            (State::Authenticated, 401 | 407) if (stale || reused) && !client.rechallenged => {
                io.stats.rechallenges += 1;
                client.rechallenged = true;
                if self.store_challenge(local, &response) {
                    if !self.send(local, now, true, io) {
                        self.finish(local);
                    }
                } else {
                    io.stats.bad_challenges += 1;
                    self.finish(local);
                }
            }
            _ => {
                io.stats.fail_status(status);
                if status == 401 || status == 407 {
                    // Credentials on a fresh nonce were refused: start over next time.
                    client.challenge.clear();
                }
                self.finish(local);
            }
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer, io: &mut Io<'_>) {
        let Some(client) = self.clients.get_mut(timer.client as usize) else {
            return;
        };
        if client.generation != timer.generation || client.state == State::Idle {
            return;
        }
        let Some(txn) = client.txn.as_mut() else {
            return;
        };
        match txn.fire(now, io.timer_config) {
            Fire::Retransmit(at) => {
                io.stats.retransmissions += 1;
                io.timers.schedule(at, timer.client, client.generation);
                io.send(client.socket, &client.message);
            }
            Fire::TimedOut => {
                io.stats.timeouts += 1;
                self.finish(timer.client);
            }
        }
    }

    fn outstanding(&self) -> usize {
        self.clients.len() - self.idle.len()
    }

    fn abandon(&mut self, io: &mut Io<'_>) {
        for local in 0..self.clients.len() as u32 {
            if self.clients[local as usize].state != State::Idle {
                io.stats.unfinished += 1;
                self.finish(local);
            }
        }
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Room for a REGISTER with SHA-256 credentials and a long user name, so that writing a
/// request does not reallocate.
const MESSAGE_CAPACITY: usize = 1024;
