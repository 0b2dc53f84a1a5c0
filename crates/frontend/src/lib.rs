//! The Front End's SIP request pipeline, without I/O.
//!
//! Everything a Lync Front End decides about a SIP message happens here: parsing at the edge,
//! transaction matching (RFC 3261 §17), request validation (§8.2), authentication (Digest per
//! RFC 8760, with throttling), and dispatch to the registrar (§10). The runtime owns sockets,
//! clock and the directory store; it feeds [`Frontend::handle_inbound`] and
//! [`Frontend::complete_lookup`] and writes out what [`Frontend::poll_transmit`] returns.
//!
//! The one thing the core cannot do itself is read the directory, which may block. When a
//! request carries credentials, [`Frontend::handle_inbound`] returns [`Step::Lookup`]: the
//! runtime fetches that user and hands the record back with [`Frontend::complete_lookup`]. The
//! request's server transaction stays open meanwhile, so a retransmission is absorbed.
//!
//! After any input, call [`Frontend::poll_transmit`] until it returns `None`, then sleep until
//! [`Frontend::poll_timeout`] (or the next input) and call [`Frontend::handle_timeout`].

mod config;
mod credentials;
mod flow;
mod homing;
mod ntlm;
mod register;
mod validate;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_auth::{
    ChallengeKind, Credentials, Decision, DigestAuthenticator, DigestCredentials, Outcome, Throttle,
};
use herald_directory::User;
use herald_registrar::Registrar;
use herald_sip::{
    Disposition, HeaderName, Message, Method, ParseError, Request, Response, Transport,
};
use herald_transaction::{
    ClientId, ClientKey, ClientVerdict, Error as TransactionError, Event as TransactionEvent,
    LegacyKeyParts, MethodKind, ServerId, ServerKey, ServerVerdict, TransactionId,
    TransactionLayer,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use config::{ConfigError, FrontendConfig};
pub use credentials::password_credentials;
pub use flow::FlowPath;
pub use herald_registrar::{Event as RegistrarEvent, RemovalReason};
pub use homing::{Homing, MemberPorts};
pub use ntlm::{DEFAULT_REALM as NTLM_REALM, NtlmConfig, SecurityAssociations};

/// One message as the transport delivered it.
#[derive(Debug, Clone)]
pub struct Inbound<F> {
    /// The path it came on; answers go back over it.
    pub flow: F,
    /// Whether the transport is a datagram or a stream one.
    pub transport: Transport,
    /// The address the bytes came from (the NAT's outside address for clients behind one).
    pub peer: SocketAddr,
    /// The message: raw bytes of a datagram, or what the stream deframer cut and parsed.
    pub payload: Payload,
}

/// What a transport hands over: datagrams are parsed here, streams are parsed by the deframer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Payload {
    /// A whole datagram, parsed with RFC 3261 §18.3's datagram rules.
    Datagram(Bytes),
    /// A message cut from a stream and parsed.
    Parsed(Box<Message>),
    /// A message cut from a stream whose content failed to parse; the stream is still in sync.
    Invalid {
        /// The message bytes, for the error answer.
        bytes: Bytes,
        /// Why it failed.
        error: ParseError,
    },
}

impl Payload {
    /// Parses a datagram payload now, so the runtime can do it before taking the lock around
    /// the core; other payloads are returned as they are.
    pub fn parse_datagram(self, limits: &herald_sip::Limits) -> Self {
        match self {
            Self::Datagram(bytes) => match Message::parse(bytes.clone(), limits) {
                Ok(m) => Self::Parsed(Box::new(m)),
                Err(error) => Self::Invalid { bytes, error },
            },
            other => other,
        }
    }
}

/// Bytes to write to a flow.
#[derive(Debug, Clone)]
pub struct Transmit<F> {
    /// Where to send them.
    pub flow: F,
    /// One complete SIP message.
    pub bytes: Bytes,
}

/// What the runtime must do after [`Frontend::handle_inbound`].
#[derive(Debug)]
#[must_use = "a Lookup must be completed or the request stays unanswered"]
pub enum Step<F> {
    /// Nothing more for this message; poll for transmissions.
    Done,
    /// Fetch `lookup.user()` from the directory and pass the result to
    /// [`Frontend::complete_lookup`].
    Lookup(Box<Lookup<F>>),
    /// The stream broke framing: close the connection.
    Close(F),
}

/// A request waiting for its user's directory record.
#[derive(Debug)]
pub struct Lookup<F> {
    user: herald_directory::Aor,
    pending: Pending<F>,
}

impl<F> Lookup<F> {
    /// The user whose record the core needs.
    pub fn user(&self) -> &herald_directory::Aor {
        &self.user
    }
}

#[derive(Debug)]
struct Pending<F> {
    id: ServerId,
    request: Request,
    flow: F,
    peer: SocketAddr,
    credentials: PendingAuth,
    realm: String,
}

/// How a request waiting for its user's record is to be authenticated.
#[derive(Debug)]
enum PendingAuth {
    /// From a trusted network: the user must exist, nothing more.
    Trusted,
    /// Digest credentials to verify against the stored HA1.
    Digest(DigestCredentials),
    /// An NTLM AUTHENTICATE_MESSAGE to verify against the stored NT hash.
    Ntlm(Box<ntlm::PendingNtlm>),
}

/// Something the rest of the server may want to know (presence, metrics, the admin view).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FrontendEvent<F> {
    /// A registration changed.
    Registrar(RegistrarEvent<F>),
    /// An authenticated request for the presence service, which runs beside the sharded
    /// pipeline: answer it with [`Frontend::respond`]. Its server transaction stays open
    /// meanwhile and absorbs retransmissions.
    Service(Box<ServiceRequest<F>>),
    /// A REGISTER changed the user's bindings: store `bindings` as the user's whole set, then
    /// send `ok` with [`Frontend::respond`] (or `failed` if the store refused).
    Persist(Box<PersistRegistration>),
    /// A request started with [`Frontend::send_request`] ended: its final status, or 408 when
    /// no final response came in time (RFC 3261 §8.1.3.1).
    RequestOutcome {
        /// The token given to [`Frontend::send_request`].
        token: u64,
        /// The final status code.
        status: u16,
    },
}

/// A request handed to a service outside the pipeline, already authenticated.
#[derive(Debug, Clone)]
pub struct ServiceRequest<F> {
    /// Where the answer goes.
    pub reply_to: ReplyTo,
    /// The request.
    pub request: Request,
    /// Who sent it, as authentication established (or, from a trusted network, as From says).
    pub user: herald_registrar::Aor,
    /// The flow it came on: later requests to the sender (NOTIFY) go back over it.
    pub flow: F,
}

/// A REGISTER's answer held until its bindings are stored.
#[derive(Debug, Clone)]
pub struct PersistRegistration {
    /// Where the answer goes.
    pub reply_to: ReplyTo,
    /// The 200 OK.
    pub ok: herald_sip::ResponseBuilder,
    /// The answer if the store fails (500, so the client retries).
    pub failed: herald_sip::ResponseBuilder,
    /// The user.
    pub aor: herald_directory::Aor,
    /// Every binding of the user the store should keep (those over datagram flows).
    pub bindings: Vec<herald_directory::StoredBinding>,
}

/// Names the server transaction of a [`ServiceRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    id: ServerId,
    request_tagged: bool,
}

/// The request pipeline. Generic over the runtime's flow handle `F`.
pub struct Frontend<F: FlowPath> {
    config: FrontendConfig,
    transactions: TransactionLayer<F>,
    registrar: Registrar<F>,
    digest: DigestAuthenticator,
    throttle: Throttle,
    rng: StdRng,
    transmits: VecDeque<Transmit<F>>,
    events: VecDeque<FrontendEvent<F>>,
    /// The caller's tokens of the client transactions it started.
    client_tokens: HashMap<ClientId, u64>,
    /// An instant and the Unix time in milliseconds at that instant, for stored expiries.
    wall: (Instant, i64),
    /// NTLM challenges sent and not yet answered.
    ntlm_challenges: ntlm::Challenges,
    /// NTLM security associations, shared with the other cores.
    security: SecurityAssociations<F>,
    counters: Counters,
}

impl<F: FlowPath> Frontend<F> {
    /// A pipeline with fresh state. `secret` keys the Digest nonces: give every process of a pool
    /// the same one so a nonce issued by one member verifies at another.
    pub fn new(
        config: FrontendConfig,
        secret: [u8; 32],
        now: Instant,
    ) -> Result<Self, ConfigError> {
        let registrar = Registrar::new(config.registrar.clone()).map_err(ConfigError::Registrar)?;
        Ok(Self {
            transactions: TransactionLayer::new(config.transactions),
            registrar,
            digest: DigestAuthenticator::new(config.digest.clone(), secret, now),
            throttle: Throttle::new(config.throttle.clone()),
            rng: StdRng::from_os_rng(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            client_tokens: HashMap::new(),
            wall: (now, 0),
            ntlm_challenges: ntlm::Challenges::default(),
            security: SecurityAssociations::default(),
            counters: Counters::new(),
            config,
        })
    }

    /// Takes one message from the network.
    pub fn handle_inbound(&mut self, now: Instant, inbound: Inbound<F>) -> Step<F> {
        let message = match inbound.payload.parse_datagram(&self.config.limits) {
            Payload::Parsed(m) => *m,
            Payload::Invalid { bytes, error } => {
                return self.reject_unparsed(
                    &inbound.flow,
                    inbound.transport,
                    inbound.peer,
                    &bytes,
                    &error,
                );
            }
            // parse_datagram leaves no datagram unparsed.
            Payload::Datagram(_) => return Step::Done,
        };
        match message {
            Message::Response(response) => {
                self.on_response(now, &response);
                Step::Done
            }
            Message::Request(request) => {
                self.on_request(now, request, inbound.flow, inbound.transport, inbound.peer)
            }
        }
    }

    /// Resumes a request once the directory answered. `user` is `Ok(None)` for an unknown user
    /// and `Err` when the store failed (the client is told to retry later).
    pub fn complete_lookup<E: std::fmt::Display>(
        &mut self,
        now: Instant,
        lookup: Lookup<F>,
        user: Result<Option<User>, E>,
    ) {
        let Lookup { user: aor, pending } = lookup;
        let user = match user {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(user = %aor, error = %e, "directory lookup failed");
                let r = Response::for_request(&pending.request, 503, "Service Unavailable")
                    .header(HeaderName::RetryAfter, "30");
                self.answer(now, pending.id, &pending.request, r);
                return;
            }
        };
        let c = match &pending.credentials {
            PendingAuth::Digest(c) => c,
            PendingAuth::Trusted => {
                // A trusted peer: the user it names must exist and be enabled, nothing more.
                match user.filter(|u| u.enabled) {
                    Some(user) => self.dispatch_authenticated(now, pending, &user),
                    None => {
                        let r = Response::for_request(&pending.request, 404, "Not Found")
                            .header(HeaderName::Warning, "399 herald \"no such user\"");
                        self.answer(now, pending.id, &pending.request, r);
                    }
                }
                return;
            }
            PendingAuth::Ntlm(_) => {
                self.complete_ntlm(now, pending, user, &aor);
                return;
            }
        };
        let stored = user.as_ref().filter(|u| u.enabled).and_then(|u| {
            let wanted = credentials::stored_algorithm(c.algorithm(), &c.username)?;
            u.credentials
                .iter()
                .find(|cred| cred.algorithm() == wanted && cred.realm() == pending.realm)
                .map(|cred| cred.hash().to_owned())
        });
        let method = pending.request.method().as_str().to_owned();
        let outcome = self
            .digest
            .verify(now, c, &method, &pending.realm, stored.as_deref());
        let source = pending.peer.ip();
        match outcome {
            Outcome::Ok => {
                self.throttle
                    .record_success(now, &throttle_key(&aor), source);
                if !validate::digest_uri_matches(&pending.request, &c.uri) {
                    metrics::counter!("herald_auth_failures_total", "reason" => "uri").increment(1);
                    let r = Response::for_request(&pending.request, 400, "Bad Request").header(
                        HeaderName::Warning,
                        "399 herald \"digest uri does not match the Request-URI\"",
                    );
                    self.answer(now, pending.id, &pending.request, r);
                    return;
                }
                let Some(user) = user else {
                    // verify() never says Ok without a stored hash.
                    return;
                };
                self.dispatch_authenticated(now, pending, &user);
            }
            Outcome::Stale => {
                let destination =
                    flow::response_destination(&pending.flow, &pending.request, pending.peer);
                self.challenge(
                    now,
                    pending.id,
                    &pending.request,
                    destination,
                    &pending.realm,
                    true,
                );
            }
            other => {
                metrics::counter!("herald_auth_failures_total", "reason" => outcome_label(other))
                    .increment(1);
                match other {
                    Outcome::WrongPassword => {
                        self.throttle
                            .record_failure(now, &throttle_key(&aor), source);
                        // Unknown users, disabled users and wrong passwords look the same, so
                        // the answer reveals nothing about which names exist.
                        tracing::info!(user = %aor, %source, "authentication failed");
                        let r = Response::for_request(&pending.request, 403, "Forbidden");
                        self.answer(now, pending.id, &pending.request, r);
                    }
                    Outcome::Malformed(m) => {
                        let r = Response::for_request(&pending.request, 400, "Bad Request")
                            .header(HeaderName::Warning, format!("399 herald \"{m:?}\""));
                        self.answer(now, pending.id, &pending.request, r);
                    }
                    _ => {
                        // Replay or a nonce we did not issue: a fresh challenge.
                        let destination = flow::response_destination(
                            &pending.flow,
                            &pending.request,
                            pending.peer,
                        );
                        self.challenge(
                            now,
                            pending.id,
                            &pending.request,
                            destination,
                            &pending.realm,
                            false,
                        );
                    }
                }
            }
        }
    }

    /// A TCP or TLS connection closed: what was registered over it is unreachable now.
    pub fn flow_closed(&mut self, now: Instant, flow: &F) {
        self.security.remove(flow);
        self.registrar.flow_closed(flow);
        self.drain_registrar(now);
    }

    /// Tells the core the wall-clock time (Unix milliseconds) at `now`, for the expiry times
    /// of stored registrations.
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        self.wall = (now, unix_ms);
    }

    /// Whether this server is the home of `aor` (always, outside a pool of several members).
    pub fn is_home(&self, aor: &herald_directory::Aor, stored: Option<&str>) -> bool {
        self.config
            .homing
            .as_ref()
            .is_none_or(|h| h.is_home(&aor.to_string(), stored))
    }

    /// Re-creates a binding a previous run stored (see [`FrontendEvent::Persist`]). Bindings
    /// that expired or whose flow cannot be rebuilt are skipped.
    pub fn restore(
        &mut self,
        now: Instant,
        aor: &herald_directory::Aor,
        stored: &herald_directory::StoredBinding,
    ) {
        if stored.server != self.member() {
            // Acknowledged by another member of the pool, over its own socket.
            return;
        }
        let left_ms = stored.expires_at_ms.saturating_sub(self.unix_ms(now));
        let (Some(flow), Some(aor)) = (F::from_persistent(&stored.flow), register::aor_of(aor))
        else {
            return;
        };
        if left_ms <= 0 {
            return;
        }
        let secs = u32::try_from((left_ms + 999) / 1000).unwrap_or(u32::MAX);
        if let Err(e) = self
            .registrar
            .restore(now, register::restored_request(aor, stored, flow, secs))
        {
            tracing::warn!(error = %e, contact = %stored.contact, "stored registration not restored");
        }
        self.drain_registrar(now);
    }

    /// Answers a [`ServiceRequest`]. Adds `Server` and, unless `dialog_tag_set` says the
    /// service already put its own To tag (a dialog it created, whose tag its later requests
    /// carry), a To tag of ours.
    pub fn respond(
        &mut self,
        now: Instant,
        reply_to: ReplyTo,
        response: herald_sip::ResponseBuilder,
        dialog_tag_set: bool,
    ) {
        let (status, bytes) = self.finish(reply_to.request_tagged || dialog_tag_set, response);
        if let Err(e) = self
            .transactions
            .send_response(now, reply_to.id, status, bytes)
        {
            tracing::debug!(error = %e, status, "response not sent by the transaction layer");
        }
        self.drain_transaction_events();
    }

    /// Sends a request of our own (a NOTIFY) through a client transaction: retransmitted over
    /// datagram flows, timed out after 64*T1. `request` must carry a top Via with `branch` and
    /// `method` in its CSeq, so responses find the transaction; the runtime must route those
    /// responses to this core. The final outcome comes back as
    /// [`FrontendEvent::RequestOutcome`] with `token`.
    ///
    /// # Errors
    /// The transaction layer refused it (too many client transactions, a branch in use).
    pub fn send_request(
        &mut self,
        now: Instant,
        flow: F,
        branch: &str,
        method: &Method,
        request: Bytes,
        token: u64,
    ) -> Result<(), TransactionError> {
        let reliable = flow.is_reliable();
        let key = ClientKey::new(branch, method_kind(method));
        let id = self
            .transactions
            .start_client(now, key, flow, reliable, request)?;
        self.client_tokens.insert(id, token);
        Ok(())
    }

    /// The next message to write.
    /// Messages to a client with an NTLM security association are signed here, whoever made
    /// them (a response, a NOTIFY, a retransmission).
    pub fn poll_transmit(&mut self) -> Option<Transmit<F>> {
        let t = match self.transmits.pop_front() {
            Some(t) => t,
            None => self.transactions.poll_transmit().map(|t| Transmit {
                flow: t.destination,
                bytes: t.payload,
            })?,
        };
        if self.config.ntlm.is_none() {
            return Some(t);
        }
        let bytes = self.security.sign(&t.flow, t.bytes, &self.config.limits);
        Some(Transmit {
            flow: t.flow,
            bytes,
        })
    }

    /// Shares the NTLM security associations with the other cores of the process, so that a
    /// message to a client is signed whichever core sends it.
    pub fn share_security_associations(&mut self, associations: SecurityAssociations<F>) {
        self.security = associations;
    }

    /// Sends a request nobody answers (BENOTIFY, MS-SIP §3.5) once, outside any transaction;
    /// signed like everything else to a client with a security association.
    pub fn send_unanswered(&mut self, flow: F, request: Bytes) {
        self.transmits.push_back(Transmit {
            flow,
            bytes: request,
        });
    }

    /// The next event for the rest of the server.
    pub fn poll_event(&mut self) -> Option<FrontendEvent<F>> {
        self.events.pop_front()
    }

    /// When [`Frontend::handle_timeout`] must run next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.transactions.poll_timeout(),
            self.registrar.poll_timeout(),
            self.digest.poll_timeout(),
            self.throttle.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        self.drain_transaction_events();
        self.registrar.handle_timeout(now);
        self.drain_registrar(now);
        self.digest.handle_timeout(now);
        self.throttle.handle_timeout(now);
    }

    /// Read access to registrations, for routing and the admin view.
    pub fn registrar(&self) -> &Registrar<F> {
        &self.registrar
    }

    /// Live server transactions, for metrics.
    pub fn transaction_count(&self) -> usize {
        self.transactions.server_count() + self.transactions.client_count()
    }

    /// The user's bindings as the store keeps them: those over flows that outlive a restart.
    fn stored_bindings(&self, now: Instant, user: &User) -> Vec<herald_directory::StoredBinding> {
        let Some(aor) = register::registrar_aor(user) else {
            return Vec::new();
        };
        let now_ms = self.unix_ms(now);
        self.registrar
            .bindings(&aor)
            .filter_map(|b| {
                Some(herald_directory::StoredBinding {
                    flow: b.flow().persistent()?,
                    contact: b.contact().to_owned(),
                    params: b.contact_params().to_owned(),
                    instance: b.instance().map(str::to_owned),
                    reg_id: b.reg_id(),
                    q: b.q(),
                    epid: b.epid().map(str::to_owned),
                    call_id: b.call_id().to_owned(),
                    cseq: b.cseq(),
                    expires_at_ms: now_ms.saturating_add(millis(b.expires_at(), now)),
                    source: b.source().to_owned(),
                    user_agent: b.user_agent().map(str::to_owned),
                    server: self.member().to_owned(),
                })
            })
            .collect()
    }

    /// This server's member FQDN in its pool, empty for a single server.
    fn member(&self) -> &str {
        self.config.homing.as_ref().map_or("", |h| h.this.as_str())
    }

    /// Unix milliseconds at `now`, from the wall clock the runtime set.
    fn unix_ms(&self, now: Instant) -> i64 {
        let (base, base_ms) = self.wall;
        base_ms.saturating_add(millis(now, base))
    }

    fn drain_registrar(&mut self, _now: Instant) {
        while let Some(e) = self.registrar.poll_event() {
            self.events.push_back(FrontendEvent::Registrar(e));
        }
    }

    fn reject_unparsed(
        &mut self,
        flow: &F,
        transport: Transport,
        peer: SocketAddr,
        bytes: &Bytes,
        error: &ParseError,
    ) -> Step<F> {
        metrics::counter!("herald_sip_parse_errors_total").increment(1);
        match error.disposition(bytes, transport) {
            Disposition::Reply(mut rejection) => {
                tracing::debug!(%error, status = rejection.status(), "answering an unparseable request");
                self.counters.response(rejection.status());
                rejection.stamp_source(peer);
                let rejection = rejection.header(HeaderName::Server, &self.config.server_header);
                let tag = self.new_tag();
                self.transmits.push_back(Transmit {
                    flow: flow.clone(),
                    bytes: rejection.to_bytes(Some(&tag)),
                });
                if transport == Transport::Stream && error.is_framing() {
                    return Step::Close(flow.clone());
                }
                Step::Done
            }
            Disposition::Close => {
                tracing::info!(%error, "stream framing lost");
                Step::Close(flow.clone())
            }
            _ => {
                tracing::debug!(%error, "dropping an unparseable message");
                Step::Done
            }
        }
    }

    fn on_response(&mut self, now: Instant, response: &Response) {
        // A response that matches no client transaction is a stray and is dropped (RFC 3261
        // §17.1.3).
        let Some(branch) = response.top_via().branch() else {
            return;
        };
        let key = ClientKey::new(branch, method_kind(&response.cseq().method));
        let status = response.status();
        if let ClientVerdict::Deliver(id) | ClientVerdict::NeedAck(id) =
            self.transactions.on_response(now, &key, status)
            && status >= 200
            && let Some(token) = self.client_tokens.remove(&id)
        {
            self.events
                .push_back(FrontendEvent::RequestOutcome { token, status });
        }
        self.drain_transaction_events();
    }

    /// Reports client transactions that timed out or failed as outcomes, and forgets ended ones.
    fn drain_transaction_events(&mut self) {
        while let Some(event) = self.transactions.poll_event() {
            let (id, status) = match event {
                TransactionEvent::TimedOut {
                    id: TransactionId::Client(id),
                    ..
                } => (id, 408),
                TransactionEvent::TransportError {
                    id: TransactionId::Client(id),
                } => (id, 503),
                TransactionEvent::Terminated {
                    id: TransactionId::Client(id),
                } => {
                    self.client_tokens.remove(&id);
                    continue;
                }
                _ => continue,
            };
            if let Some(token) = self.client_tokens.remove(&id) {
                self.events
                    .push_back(FrontendEvent::RequestOutcome { token, status });
            }
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        mut request: Request,
        flow: F,
        transport: Transport,
        peer: SocketAddr,
    ) -> Step<F> {
        request.stamp_via_source(peer);
        let reliable = transport == Transport::Stream;
        let destination = flow::response_destination(&flow, &request, peer);
        let key = server_key(&request);
        let id = match self
            .transactions
            .on_request(now, key, destination.clone(), reliable)
        {
            Ok(ServerVerdict::New(id)) => id,
            Ok(_) => return Step::Done,
            Err(TransactionError::TooManyServerTransactions { .. }) => {
                // Overloaded: answer statelessly and ask the client to come back later.
                let r = Response::for_request(&request, 503, "Service Unavailable")
                    .header(HeaderName::RetryAfter, "5")
                    .header(HeaderName::Server, &self.config.server_header)
                    .to_tag(&self.new_tag());
                self.counters.response(503);
                self.transmits.push_back(Transmit {
                    flow: destination,
                    bytes: r.to_bytes(),
                });
                return Step::Done;
            }
            Err(e) => {
                tracing::debug!(error = %e, "request not taken by the transaction layer");
                return Step::Done;
            }
        };
        self.counters.request(request.method());

        if let Some(rejection) = validate::check(&request, &self.config) {
            let r = rejection.into_response(&request);
            self.answer(now, id, &request, r);
            return Step::Done;
        }
        if matches!(request.method(), Method::Cancel) {
            // Every INVITE is answered at once, so nothing is ever left to cancel.
            let r = Response::for_request(&request, 481, "Call/Transaction Does Not Exist");
            self.answer(now, id, &request, r);
            return Step::Done;
        }

        if matches!(request.method(), Method::Register)
            && !validate::request_uri_is_ours(&request, &self.config)
        {
            // RFC 3261 §10.3 step 1: the Request-URI names the registrar's domain.
            let r = Response::for_request(&request, 403, "Forbidden").header(
                HeaderName::Warning,
                "399 herald \"this server is not the registrar of the Request-URI's domain\"",
            );
            self.answer(now, id, &request, r);
            return Step::Done;
        }
        let target_domain = validate::identity_domain(&request, &self.config);
        let realm = match target_domain.as_deref() {
            Some(d) if self.config.serves(d) => self.config.realm_for(d).to_owned(),
            _ if matches!(request.method(), Method::Register) => {
                // RFC 3261 §10.3 step 1: a registrar accepts bindings only for its domains.
                let r = Response::for_request(&request, 403, "Forbidden").header(
                    HeaderName::Warning,
                    "399 herald \"this server is not responsible for the domain\"",
                );
                self.answer(now, id, &request, r);
                return Step::Done;
            }
            _ => self
                .config
                .realm_for(&self.config.primary_domain)
                .to_owned(),
        };

        if self.config.is_trusted(peer.ip()) {
            let identity = match request.method() {
                Method::Register => request.to(),
                _ => request.from(),
            };
            let Some(user) = validate::local_aor(identity.uri(), &self.config) else {
                let r = Response::for_request(&request, 404, "Not Found")
                    .header(HeaderName::Warning, "399 herald \"not a user of ours\"");
                self.answer(now, id, &request, r);
                return Step::Done;
            };
            return Step::Lookup(Box::new(Lookup {
                user,
                pending: Pending {
                    id,
                    request,
                    flow,
                    peer,
                    credentials: PendingAuth::Trusted,
                    realm,
                },
            }));
        }
        if self.config.ntlm.is_some()
            && let Some(credentials) = ntlm::credentials(&request)
        {
            return self.on_ntlm(now, id, request, flow, peer, credentials, realm);
        }
        let kind = ChallengeKind::for_method(request.method().as_str());
        let credentials_header = match kind {
            ChallengeKind::Www => HeaderName::Authorization,
            _ => HeaderName::ProxyAuthorization,
        };
        // Take the Digest credentials for our realm; other schemes (NTLM, Kerberos) and other
        // realms are answered with our challenge.
        let mut digest = None;
        for header in request.headers_named(credentials_header) {
            match Credentials::parse(header) {
                Ok(Credentials::Digest(c)) if c.realm == realm => {
                    digest = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    metrics::counter!("herald_auth_failures_total", "reason" => "malformed")
                        .increment(1);
                    let r = Response::for_request(&request, 400, "Bad Request").header(
                        HeaderName::Warning,
                        format!("399 herald \"malformed credentials: {e}\""),
                    );
                    self.answer(now, id, &request, r);
                    return Step::Done;
                }
            }
        }
        let Some(credentials) = digest else {
            self.challenge(now, id, &request, destination, &realm, false);
            return Step::Done;
        };
        let Some(user) = validate::user_of(
            &credentials.username,
            target_domain.as_deref(),
            &self.config,
        ) else {
            // A name that cannot be a user of ours: the same answer as a wrong password, after
            // the same work, so the shape of names reveals nothing either.
            let _ = self
                .digest
                .verify(now, &credentials, request.method().as_str(), &realm, None);
            self.throttle
                .record_failure(now, &credentials.username, peer.ip());
            metrics::counter!("herald_auth_failures_total", "reason" => "wrong_password")
                .increment(1);
            let r = Response::for_request(&request, 403, "Forbidden");
            self.answer(now, id, &request, r);
            return Step::Done;
        };
        // Throttled by the canonical user, so no spelling of the name escapes the count.
        if let Decision::Refused { retry_after } =
            self.throttle.check(now, &throttle_key(&user), peer.ip())
        {
            metrics::counter!("herald_auth_failures_total", "reason" => "throttled").increment(1);
            tracing::info!(user = %user, source = %peer.ip(),
                "authentication throttled after repeated failures");
            let r = Response::for_request(&request, 403, "Forbidden")
                .header(
                    HeaderName::RetryAfter,
                    retry_after_secs(retry_after).to_string(),
                )
                .header(
                    HeaderName::Warning,
                    "399 herald \"too many failed attempts; try again later\"",
                );
            self.answer(now, id, &request, r);
            return Step::Done;
        }
        Step::Lookup(Box::new(Lookup {
            user,
            pending: Pending {
                id,
                request,
                flow,
                peer,
                credentials: PendingAuth::Digest(credentials),
                realm,
            },
        }))
    }

    /// A request with NTLM credentials: a step of the handshake, or a request signed with an
    /// association.
    #[allow(clippy::too_many_arguments)]
    fn on_ntlm(
        &mut self,
        now: Instant,
        id: ServerId,
        request: Request,
        flow: F,
        peer: SocketAddr,
        credentials: herald_ntlm::NtlmCredentials,
        realm: String,
    ) -> Step<F> {
        let Some(config) = self.config.ntlm.clone() else {
            return Step::Done;
        };
        let destination = flow::response_destination(&flow, &request, peer);
        match (&credentials.opaque, &credentials.gssapi_data) {
            // Step 2: the client asks for a challenge.
            (None, Some(_)) => {
                let (opaque, challenge) = self.ntlm_challenges.issue(now, &config, &mut self.rng);
                let r = Response::for_request(&request, 401, "Unauthorized").header(
                    HeaderName::WwwAuthenticate,
                    ntlm::challenge_header(&config, &opaque, &challenge),
                );
                self.stateless(id, &request, destination, r);
                Step::Done
            }
            // Step 3: the AUTHENTICATE_MESSAGE.
            (Some(opaque), Some(data)) if !data.is_empty() => {
                let challenge = self.ntlm_challenges.take(now, opaque);
                let message = herald_ntlm::AuthenticateMessage::parse(data);
                let (Some(challenge), Ok(message)) = (challenge, message) else {
                    metrics::counter!("herald_auth_failures_total", "reason" => "bad_nonce")
                        .increment(1);
                    self.ntlm_restart(id, &request, destination, &config);
                    return Step::Done;
                };
                let domain = validate::identity_domain(&request, &self.config);
                let Some(user) = validate::user_of(message.user(), domain.as_deref(), &self.config)
                else {
                    let r = Response::for_request(&request, 403, "Forbidden");
                    self.answer(now, id, &request, r);
                    return Step::Done;
                };
                Step::Lookup(Box::new(Lookup {
                    user,
                    pending: Pending {
                        id,
                        request,
                        flow,
                        peer,
                        credentials: PendingAuth::Ntlm(Box::new(ntlm::PendingNtlm {
                            challenge,
                            message,
                            credentials,
                        })),
                        realm,
                    },
                }))
            }
            // A request signed with the flow's association.
            _ => {
                let fields = ntlm::request_fields(&request);
                match self.security.verify(&flow, &credentials, &fields) {
                    Some(user) => {
                        let pending = Pending {
                            id,
                            request,
                            flow,
                            peer,
                            credentials: PendingAuth::Trusted,
                            realm,
                        };
                        self.dispatch_authenticated(now, pending, &user);
                    }
                    None => {
                        // A bad signature or an association we do not have: start over (SIPE
                        // re-signs a request answered 401 and re-authenticates a REGISTER).
                        metrics::counter!("herald_auth_failures_total", "reason" => "signature")
                            .increment(1);
                        self.ntlm_restart(id, &request, destination, &config);
                    }
                }
                Step::Done
            }
        }
    }

    /// The handshake's last step once the user's record is here: verify the AUTHENTICATE
    /// message against the NT hash, set up the association, verify the REGISTER's own
    /// signature, then serve it.
    /// 401 with the first NTLM challenge, for any method ([MS-SIPAE] uses 401 throughout):
    /// SIPE re-signs a request answered so, and re-authenticates on a REGISTER.
    fn ntlm_restart(
        &mut self,
        id: ServerId,
        request: &Request,
        destination: F,
        config: &NtlmConfig,
    ) {
        let r = Response::for_request(request, 401, "Unauthorized")
            .header(HeaderName::WwwAuthenticate, config.offer());
        self.stateless(id, request, destination, r);
    }

    fn complete_ntlm(
        &mut self,
        now: Instant,
        pending: Pending<F>,
        user: Option<User>,
        aor: &herald_directory::Aor,
    ) {
        let PendingAuth::Ntlm(n) = &pending.credentials else {
            return;
        };
        let stored = user.as_ref().filter(|u| u.enabled).and_then(|u| {
            u.credentials
                .iter()
                .find(|c| c.algorithm() == herald_directory::CredentialAlgorithm::Nt)
                .and_then(|c| c.hash().parse::<herald_ntlm::NtHash>().ok())
        });
        // Unknown users are checked against a random hash: same work, same answer.
        let hash = stored.unwrap_or_else(|| herald_ntlm::NtHash(self.rng.random()));
        let accepted = herald_ntlm::accept(&n.challenge, &n.message, &hash);
        let config = self.config.ntlm.clone();
        let established = match (accepted, user, config) {
            (Ok(auth), Some(user), Some(config)) if stored.is_some() => {
                let opaque = n.credentials.opaque.clone().unwrap_or_default();
                herald_ntlm::SipaeParams::new(
                    &config.realm,
                    &config.targetname,
                    &opaque,
                    n.credentials.version,
                )
                .ok()
                .map(|params| (herald_ntlm::SecurityAssociation::new(auth, params), user))
            }
            _ => None,
        };
        let Some((mut sa, user)) = established else {
            metrics::counter!("herald_auth_failures_total", "reason" => "wrong_password")
                .increment(1);
            self.throttle
                .record_failure(now, &throttle_key(aor), pending.peer.ip());
            tracing::info!(user = %aor, source = %pending.peer.ip(), "NTLM authentication failed");
            let r = Response::for_request(&pending.request, 403, "Forbidden");
            self.answer(now, pending.id, &pending.request, r);
            return;
        };
        // Version 4 clients sign the final REGISTER already.
        if n.credentials.response.is_some()
            && sa
                .verify(&n.credentials, &ntlm::request_fields(&pending.request))
                .is_err()
        {
            metrics::counter!("herald_auth_failures_total", "reason" => "signature").increment(1);
            let r = Response::for_request(&pending.request, 403, "Forbidden");
            self.answer(now, pending.id, &pending.request, r);
            return;
        }
        self.throttle
            .record_success(now, &throttle_key(aor), pending.peer.ip());
        tracing::info!(user = %aor, "NTLM security association established");
        self.security.insert(
            pending.flow.clone(),
            ntlm::Association {
                sa,
                user: user.clone(),
            },
        );
        self.dispatch_authenticated(now, pending, &user);
    }

    fn dispatch_authenticated(&mut self, now: Instant, pending: Pending<F>, user: &User) {
        let Pending {
            id,
            request,
            flow,
            peer,
            ..
        } = pending;
        match request.method() {
            Method::Register
                if let Some(r) = self.config.homing.as_ref().and_then(|h| {
                    h.redirect(&request, &user.aor.to_string(), user.home.as_deref())
                }) =>
            {
                self.answer(now, id, &request, r);
            }
            Method::Register => {
                let r = register::handle(
                    &mut self.registrar,
                    &self.config,
                    now,
                    &request,
                    user,
                    flow,
                    peer,
                );
                // A query (no Contact) changes nothing worth storing.
                let changes = r.status() == 200 && request.header(HeaderName::Contact).is_some();
                if self.config.persist_registrations && changes {
                    let bindings = self.stored_bindings(now, user);
                    let failed = Response::for_request(&request, 500, "Server Internal Error")
                        .header(HeaderName::RetryAfter, "5");
                    self.events
                        .push_back(FrontendEvent::Persist(Box::new(PersistRegistration {
                            reply_to: ReplyTo {
                                id,
                                request_tagged: request.to().tag().is_some(),
                            },
                            ok: r,
                            failed,
                            aor: user.aor.clone(),
                            bindings,
                        })));
                } else {
                    self.answer(now, id, &request, r);
                }
                self.drain_registrar(now);
            }
            Method::Options => {
                let r = validate::options_response(&request, &self.config);
                self.answer(now, id, &request, r);
            }
            Method::Publish | Method::Subscribe | Method::Service if self.config.presence => {
                let Some(aor) = register::registrar_aor(user) else {
                    let r = Response::for_request(&request, 500, "Server Internal Error");
                    self.answer(now, id, &request, r);
                    return;
                };
                let reply_to = ReplyTo {
                    id,
                    request_tagged: request.to().tag().is_some(),
                };
                self.events
                    .push_back(FrontendEvent::Service(Box::new(ServiceRequest {
                        reply_to,
                        request,
                        user: aor,
                        flow,
                    })));
            }
            _ => {
                // validate::check only lets the methods above through.
                let r = validate::method_not_allowed(&request, &self.config);
                self.answer(now, id, &request, r);
            }
        }
    }

    fn challenge(
        &mut self,
        now: Instant,
        id: ServerId,
        request: &Request,
        destination: F,
        realm: &str,
        stale: bool,
    ) {
        let kind = ChallengeKind::for_method(request.method().as_str());
        let challenge = self
            .digest
            .challenge(now, &mut self.rng, kind, realm, stale);
        let (code, reason) = match kind {
            ChallengeKind::Www => (401, "Unauthorized"),
            _ => (407, "Proxy Authentication Required"),
        };
        let name = match kind {
            ChallengeKind::Www => HeaderName::WwwAuthenticate,
            _ => HeaderName::ProxyAuthenticate,
        };
        let mut r = Response::for_request(request, code, reason);
        for value in &challenge.values {
            r = r.header(name.clone(), value);
        }
        if let (ChallengeKind::Www, Some(ntlm)) = (kind, &self.config.ntlm) {
            // After the Digest ones: clients that answer only the first challenge (SIPp) take
            // Digest, Lync clients look for the NTLM one.
            r = r.header(HeaderName::WwwAuthenticate, ntlm.offer());
        }
        self.stateless(id, request, destination, r);
    }

    /// Sends a challenge statelessly (RFC 3261 §26.3.2.4): a retransmitted request just gets a
    /// fresh challenge, and no transaction holds memory for the 64*T1 of Timer J for every
    /// client that has not authenticated yet.
    fn stateless(
        &mut self,
        id: ServerId,
        request: &Request,
        destination: F,
        r: herald_sip::ResponseBuilder,
    ) {
        self.transactions.abort(TransactionId::Server(id));
        self.drain_transaction_events();
        let (_, bytes) = self.finish(request.to().tag().is_some(), r);
        self.transmits.push_back(Transmit {
            flow: destination,
            bytes,
        });
    }

    /// Sends a final response through the request's server transaction, adding the To tag and
    /// the headers every response of ours carries.
    fn answer(
        &mut self,
        now: Instant,
        id: ServerId,
        request: &Request,
        response: herald_sip::ResponseBuilder,
    ) {
        let (status, bytes) = self.finish(request.to().tag().is_some(), response);
        if let Err(e) = self.transactions.send_response(now, id, status, bytes) {
            tracing::debug!(error = %e, status, "response not sent by the transaction layer");
        }
    }

    /// Adds what every response of ours carries (Server, a To tag unless `tagged`) and counts
    /// it.
    fn finish(&mut self, tagged: bool, response: herald_sip::ResponseBuilder) -> (u16, Bytes) {
        let mut response = response.header(HeaderName::Server, &self.config.server_header);
        if !tagged {
            response = response.to_tag(&self.new_tag());
        }
        let status = response.status();
        self.counters.response(status);
        (status, response.to_bytes())
    }

    fn new_tag(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }
}

fn server_key(request: &Request) -> ServerKey {
    let via = request.top_via();
    let method = method_kind(request.method());
    let sent_by = match via.sent_by() {
        (host, Some(port)) => format!("{host}:{port}"),
        (host, None) => host.to_string(),
    };
    if let Some(branch) = via.branch()
        && let Ok(key) = ServerKey::new(branch, &sent_by, method.clone())
    {
        return key;
    }
    // RFC 2543 clients: match by the request's identifying fields (RFC 3261 §17.2.3).
    let uri = request.uri().to_string();
    ServerKey::legacy(LegacyKeyParts {
        request_uri: &uri,
        to_tag: request.to().tag(),
        from_tag: request.from().tag(),
        call_id: request.call_id(),
        cseq: request.cseq().seq,
        top_via: via.as_str(),
        method: &method,
    })
}

fn method_kind(method: &Method) -> MethodKind {
    match method {
        Method::Invite => MethodKind::Invite,
        Method::Ack => MethodKind::Ack,
        Method::Cancel => MethodKind::Cancel,
        other => MethodKind::from_name(other.as_str()),
    }
}

/// Counters bumped for every message, registered once so the hot path does no registry lookup.
struct Counters {
    requests: Vec<metrics::Counter>,
    responses: [metrics::Counter; 6],
}

impl Counters {
    fn new() -> Self {
        Self {
            requests: METHOD_LABELS
                .iter()
                .map(|m| metrics::counter!("herald_sip_requests_total", "method" => *m))
                .collect(),
            responses: RESPONSE_CLASSES
                .map(|class| metrics::counter!("herald_sip_responses_total", "class" => class)),
        }
    }

    fn request(&self, method: &Method) {
        let label = method_label(method);
        if let Some(i) = METHOD_LABELS.iter().position(|m| *m == label) {
            self.requests[i].increment(1);
        }
    }

    fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 6) - 1;
        self.responses[class].increment(1);
    }
}

const METHOD_LABELS: [&str; 18] = [
    "REGISTER",
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "INFO",
    "REFER",
    "PRACK",
    "UPDATE",
    "BENOTIFY",
    "SERVICE",
    "NEGOTIATE",
    "other",
];
const RESPONSE_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// A bounded label set for metrics: extension methods are folded into one label.
fn method_label(method: &Method) -> &'static str {
    match method {
        Method::Register => "REGISTER",
        Method::Invite => "INVITE",
        Method::Ack => "ACK",
        Method::Cancel => "CANCEL",
        Method::Bye => "BYE",
        Method::Options => "OPTIONS",
        Method::Subscribe => "SUBSCRIBE",
        Method::Notify => "NOTIFY",
        Method::Publish => "PUBLISH",
        Method::Message => "MESSAGE",
        Method::Info => "INFO",
        Method::Refer => "REFER",
        Method::Prack => "PRACK",
        Method::Update => "UPDATE",
        Method::Benotify => "BENOTIFY",
        Method::Service => "SERVICE",
        Method::Negotiate => "NEGOTIATE",
        _ => "other",
    }
}

fn outcome_label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::WrongPassword => "wrong_password",
        Outcome::Replay => "replay",
        Outcome::BadNonce => "bad_nonce",
        Outcome::Malformed(_) => "malformed",
        _ => "other",
    }
}

/// One throttle entry per account, whatever case the client spelled the name in.
fn throttle_key(aor: &herald_directory::Aor) -> String {
    format!("{}@{}", aor.user_key(), aor.domain().as_str())
}

/// Milliseconds from `from` to `to`, 0 if `to` is earlier.
fn millis(to: Instant, from: Instant) -> i64 {
    i64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(i64::MAX)
}

fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
