//! The transaction layer: every live transaction of one server process or shard, their
//! deadlines, and the queues of datagrams and events they produce.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::client::ClientState;
use crate::key::{ClientKey, ServerKey};
use crate::server::ServerState;
use crate::timers::{Timer, Timers};

/// All client and server transactions of one process or shard (RFC 3261 §17), driven without
/// I/O: the runtime feeds it inputs and the current time, then drains what it produced.
///
/// `T` names where a message goes: a socket address, a connection id, whatever the runtime
/// needs to send it. The layer only clones it into each [`Transmit`].
///
/// After any input (`on_request`, `send_response`, `start_client`, `on_response`, `send_ack`,
/// `on_transport_error`, `abort`, `handle_timeout`) drain [`poll_transmit`] and [`poll_event`]
/// until they return `None`, then re-read [`poll_timeout`] and wake at that instant.
///
/// [`poll_transmit`]: TransactionLayer::poll_transmit
/// [`poll_event`]: TransactionLayer::poll_event
/// [`poll_timeout`]: TransactionLayer::poll_timeout
#[derive(Debug)]
pub struct TransactionLayer<T> {
    pub(crate) config: Config,
    pub(crate) slots: Vec<Slot<T>>,
    /// Indices of empty slots, reused first so the slot vector stays as small as the peak.
    free: Vec<u32>,
    pub(crate) servers: HashMap<ServerKey, u32>,
    pub(crate) clients: HashMap<ClientKey, u32>,
    /// Every armed deadline; entries whose transaction has moved on are skipped when popped
    /// (lazy deletion) and purged by `compact` when they outnumber the live ones.
    pub(crate) deadlines: BinaryHeap<Reverse<Deadline>>,
    transmits: VecDeque<Transmit<T>>,
    events: VecDeque<Event>,
}

impl<T: Clone> TransactionLayer<T> {
    /// Creates an empty layer. The two bounds are clamped to `MAX_BOUND` each, so that slot
    /// indices always fit the `u32` in an id.
    pub fn new(mut config: Config) -> Self {
        config.max_server_transactions = config.max_server_transactions.min(MAX_BOUND);
        config.max_client_transactions = config.max_client_transactions.min(MAX_BOUND);
        Self {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            deadlines: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration this layer runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next datagram or stream write to perform: a response, a request retransmission or an
    /// ACK the layer sends itself.
    ///
    /// Worth calling after every input and after `handle_timeout`; returns `None` once the queue
    /// is empty.
    pub fn poll_transmit(&mut self) -> Option<Transmit<T>> {
        self.transmits.pop_front()
    }

    /// The next thing the TU must hear about that is not the direct answer to an input.
    ///
    /// Worth calling after `handle_timeout` (timeouts and ends of lingering transactions), after
    /// `on_transport_error` and `abort`, and after any input that may end a transaction at once
    /// on a reliable transport (`send_response`, `on_response`, `send_ack`, an ACK to
    /// `on_request`).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called, or `None` if no timer is armed.
    ///
    /// Changes after every input and after `handle_timeout`, so re-read it after each. The
    /// instant may lie in the past; call `handle_timeout` right away then.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse(top)) = self.deadlines.peek() {
            if is_armed(&self.slots, top) {
                return Some(top.at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Fires every timer due at or before `now`: retransmissions (A, E, G), timeouts (B, F, H)
    /// and the ends of lingering transactions (D, I, J, K, L, M).
    ///
    /// Afterwards `poll_transmit`, `poll_event` and `poll_timeout` are worth calling.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(top)) = self.deadlines.peek().copied() {
            if top.at > now {
                break;
            }
            self.deadlines.pop();
            let Some(tx) = self.live(top.index, top.generation) else {
                continue;
            };
            let expired = tx.expire_at.is_some_and(|at| at <= now);
            let resend = tx.retransmit_at.is_some_and(|at| at <= now);
            let server = matches!(tx.role, Role::Server { .. });
            match (server, expired, resend) {
                (_, false, false) => {}
                (true, true, _) => self.server_expired(top.index),
                (true, false, true) => self.server_retransmit(now, top.index),
                (false, true, _) => self.client_expired(top.index),
                (false, false, true) => self.client_retransmit(now, top.index),
            }
        }
        self.compact();
    }

    /// Ends a transaction whose message could not be sent (§17.1.4, §17.2.4): the runtime calls
    /// this when a send for one of its `Transmit`s failed (ICMP unreachable, connection reset,
    /// TLS failure). Unknown or finished ids are ignored.
    ///
    /// Afterwards `poll_event` yields `TransportError` then `Terminated`.
    pub fn on_transport_error(&mut self, id: TransactionId) {
        let handle = id.handle();
        if self.live(handle.index, handle.generation).is_some() {
            self.events.push_back(Event::TransportError { id });
            self.terminate(handle.index);
        }
    }

    /// Ends a transaction at the TU's request, without sending anything: for Timer C (§16.6),
    /// or when the TU gives up on an INVITE that stays in Proceeding. Unknown or finished ids
    /// are ignored.
    ///
    /// Afterwards `poll_event` yields `Terminated`.
    pub fn abort(&mut self, id: TransactionId) {
        let handle = id.handle();
        if self.live(handle.index, handle.generation).is_some() {
            self.terminate(handle.index);
        }
    }

    /// Live server transactions, the number bounded by `Config::max_server_transactions`.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Live client transactions, the number bounded by `Config::max_client_transactions`.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub(crate) fn live(&self, index: u32, generation: u32) -> Option<&Transaction<T>> {
        let slot = self.slots.get(index as usize)?;
        if slot.generation != generation {
            return None;
        }
        slot.tx.as_ref()
    }

    pub(crate) fn tx_mut(&mut self, index: u32) -> Option<&mut Transaction<T>> {
        self.slots.get_mut(index as usize)?.tx.as_mut()
    }

    pub(crate) fn handle_of(&self, index: u32) -> Handle {
        let generation = self.slots.get(index as usize).map_or(0, |s| s.generation);
        Handle { index, generation }
    }

    /// Stores a new transaction and returns its slot index. The caller has checked the bound.
    pub(crate) fn insert(&mut self, tx: Transaction<T>) -> u32 {
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(index as usize)
        {
            slot.tx = Some(tx);
            return index;
        }
        // Fits: at most 2 * MAX_BOUND < u32::MAX transactions are ever alive at once.
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push(Slot {
            generation: 0,
            tx: Some(tx),
        });
        index
    }

    /// Queues `payload` for the transaction's destination.
    pub(crate) fn send(&mut self, index: u32, payload: Bytes) {
        let handle = self.handle_of(index);
        let Some(tx) = self.slots.get(index as usize).and_then(|s| s.tx.as_ref()) else {
            return;
        };
        let id = match tx.role {
            Role::Server { .. } => TransactionId::Server(ServerId(handle)),
            Role::Client { .. } => TransactionId::Client(ClientId(handle)),
        };
        self.transmits.push_back(Transmit {
            id,
            destination: tx.dest.clone(),
            payload,
        });
    }

    /// Re-sends the stored message, if any (a response for a server, the request or the ACK for
    /// a client).
    pub(crate) fn resend_last(&mut self, index: u32) {
        let last = self.tx_mut(index).and_then(|tx| tx.last.clone());
        if let Some(payload) = last {
            self.send(index, payload);
        }
    }

    /// Sets (or with `None` clears) the retransmission timer.
    pub(crate) fn set_retransmit(&mut self, index: u32, at: Option<Instant>) {
        if let Some(tx) = self.tx_mut(index) {
            tx.retransmit_at = at;
        }
        if let Some(at) = at {
            self.push_deadline(index, at);
        }
    }

    /// Sets (or with `None` clears) the timer that ends the current state.
    pub(crate) fn set_expire(&mut self, index: u32, at: Option<Instant>) {
        if let Some(tx) = self.tx_mut(index) {
            tx.expire_at = at;
        }
        if let Some(at) = at {
            self.push_deadline(index, at);
        }
    }

    /// Ends the transaction at `index` and tells the TU.
    pub(crate) fn terminate(&mut self, index: u32) {
        let handle = self.handle_of(index);
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        let Some(tx) = slot.tx.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        let id = match tx.role {
            Role::Server { key, .. } => {
                self.servers.remove(&key);
                TransactionId::Server(ServerId(handle))
            }
            Role::Client { key, .. } => {
                self.clients.remove(&key);
                TransactionId::Client(ClientId(handle))
            }
        };
        self.events.push_back(Event::Terminated { id });
    }

    /// Arms the timer that ends a lingering state, or ends the transaction now when it is zero
    /// (reliable transports).
    pub(crate) fn linger(&mut self, now: Instant, index: u32, duration: Duration) {
        if duration.is_zero() {
            self.terminate(index);
        } else {
            self.set_expire(index, Some(now + duration));
        }
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    fn push_deadline(&mut self, index: u32, at: Instant) {
        let generation = self.handle_of(index).generation;
        self.deadlines.push(Reverse(Deadline {
            at,
            index,
            generation,
        }));
    }

    /// Drops stale heap entries once they dominate, so that the heap stays proportional to
    /// the live transactions however fast they come and go (amortised O(1) per deadline).
    pub(crate) fn compact(&mut self) {
        let live = self.servers.len() + self.clients.len();
        if self.deadlines.len() > COMPACT_FACTOR * live + COMPACT_SLACK {
            let slots = &self.slots;
            self.deadlines
                .retain(|Reverse(deadline)| is_armed(slots, deadline));
        }
    }
}

/// Limits and timer values of a [`TransactionLayer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// T1, T2, T4 and Timer D.
    pub timers: Timers,
    /// Most server transactions alive at once; a new request beyond it gets
    /// `Error::TooManyServerTransactions`, which the caller answers with a stateless 503.
    ///
    /// On UDP a non-INVITE transaction lingers 64*T1 (32 s) after its final response (Timer J),
    /// so size this as peak requests per second × 32 s, plus headroom.
    pub max_server_transactions: usize,
    /// Most client transactions alive at once, counted apart from server transactions so that a
    /// flood of requests cannot stop this server from sending its own (NOTIFY, ...).
    pub max_client_transactions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timers: Timers::default(),
            max_server_transactions: 262_144,
            max_client_transactions: 65_536,
        }
    }
}

/// A message for the runtime to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit<T> {
    /// The transaction that sent it; give it back to `on_transport_error` if the send fails.
    pub id: TransactionId,
    /// Where to send it, as given when the transaction began.
    pub destination: T,
    /// The serialized message, shared with the copy kept for retransmission.
    pub payload: Bytes,
}

/// Something the TU must learn that is not the direct answer to an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A timeout timer fired. For a client (Timer B or F) the TU acts as if it had received a
    /// 408 (§8.1.3.1); for a server (Timer H) the ACK never came (§17.2.1). `Terminated`
    /// follows.
    TimedOut {
        /// The transaction that timed out.
        id: TransactionId,
        /// Which timer fired.
        timer: Timer,
    },
    /// The runtime reported a failed send (§17.1.4, §17.2.4); a client TU acts as if it had
    /// received a 503 (§8.1.3.1). `Terminated` follows.
    TransportError {
        /// The transaction whose send failed.
        id: TransactionId,
    },
    /// The transaction is gone; its id will not be seen again. Sent for every transaction
    /// exactly once, last, so the TU can drop whatever it kept for it in one place.
    Terminated {
        /// The transaction that ended.
        id: TransactionId,
    },
}

/// A server or client transaction, as named in transmits and events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionId {
    /// A transaction created by `on_request`.
    Server(ServerId),
    /// A transaction created by `start_client`.
    Client(ClientId),
}

impl TransactionId {
    fn handle(self) -> Handle {
        match self {
            Self::Server(ServerId(h)) | Self::Client(ClientId(h)) => h,
        }
    }
}

/// Names a server transaction for the TU. Cheap to copy; never reused for a later
/// transaction, so a stale id is answered with `Error::UnknownTransaction`, not misrouted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerId(pub(crate) Handle);

/// Names a client transaction for the TU; like [`ServerId`], never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(pub(crate) Handle);

impl From<ServerId> for TransactionId {
    fn from(id: ServerId) -> Self {
        Self::Server(id)
    }
}

impl From<ClientId> for TransactionId {
    fn from(id: ClientId) -> Self {
        Self::Client(id)
    }
}

/// Why the layer refused an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A new request arrived while `max_server_transactions` are alive: answer it statelessly
    /// with 503 (and a Retry-After).
    #[error("too many server transactions (limit {limit})")]
    TooManyServerTransactions {
        /// The configured bound.
        limit: usize,
    },
    /// `max_client_transactions` are alive: queue the request or fail it locally (a 503 for the
    /// TU, §8.1.3.1).
    #[error("too many client transactions (limit {limit})")]
    TooManyClientTransactions {
        /// The configured bound.
        limit: usize,
    },
    /// The transaction has ended (or the id was never issued by this layer).
    #[error("unknown or terminated transaction")]
    UnknownTransaction,
    /// A status code outside 100..=699 cannot be classified as provisional or final.
    #[error("status code {0} is outside 100..=699")]
    InvalidStatus(u16),
    /// A final response was already sent; only a 2xx may be re-sent after a 2xx (RFC 6026
    /// Accepted state), and nothing after a non-2xx.
    #[error("the transaction has already sent a final response")]
    FinalAlreadySent,
    /// ACK never has a client transaction of its own: the ACK for a non-2xx is sent with
    /// `send_ack`, the ACK for a 2xx is sent by the TU directly (§13.2.2.4, §17.1.1.3).
    #[error("ACK is not sent through a client transaction")]
    AckIsNotATransaction,
    /// A client transaction with this branch and method is alive: the TU reused a branch.
    #[error("a client transaction with this key already exists")]
    DuplicateKey,
    /// `send_ack` was called for a transaction that is not an INVITE client transaction in
    /// Completed after a 300–699 response.
    #[error("the transaction is not waiting for an ACK")]
    AckNotExpected,
}

/// Whether a heap entry still stands for an armed timer of a live transaction.
fn is_armed<T>(slots: &[Slot<T>], deadline: &Deadline) -> bool {
    slots
        .get(deadline.index as usize)
        .filter(|slot| slot.generation == deadline.generation)
        .and_then(|slot| slot.tx.as_ref())
        .is_some_and(|tx| {
            tx.expire_at == Some(deadline.at) || tx.retransmit_at == Some(deadline.at)
        })
}

/// One slot of the transaction table. The generation tells a live transaction from a later one
/// that reuses the slot.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    pub(crate) generation: u32,
    pub(crate) tx: Option<Transaction<T>>,
}

/// What the layer keeps per transaction: the key, where to send, the one message it may have
/// to resend, its state and two deadlines.
#[derive(Debug)]
pub(crate) struct Transaction<T> {
    pub(crate) role: Role,
    pub(crate) dest: T,
    /// Server: the last response sent. Client: the request, then (INVITE, Completed) the ACK.
    pub(crate) last: Option<Bytes>,
    /// Timer A, E or G.
    pub(crate) retransmit_at: Option<Instant>,
    /// The timer that ends the current state: B, D, F, H, I, J, K, L or M.
    pub(crate) expire_at: Option<Instant>,
    /// Retransmissions sent so far, for the doubling of Timers A, E and G.
    pub(crate) retransmits: u8,
    pub(crate) reliable: bool,
    pub(crate) invite: bool,
}

#[derive(Debug)]
pub(crate) enum Role {
    Server { key: ServerKey, state: ServerState },
    Client { key: ClientKey, state: ClientState },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Handle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// The response classes the state machines distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusClass {
    Provisional,
    Success,
    Failure,
}

impl StatusClass {
    pub(crate) fn of(status: u16) -> Option<Self> {
        match status {
            100..=199 => Some(Self::Provisional),
            200..=299 => Some(Self::Success),
            300..=699 => Some(Self::Failure),
            _ => None,
        }
    }
}

/// A heap entry: "look at transaction `index` at `at`". Ordered by time, then slot, so that
/// runs are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline {
    at: Instant,
    index: u32,
    generation: u32,
}

/// The heap is rebuilt when it holds more than this many entries per live transaction (each
/// has at most two armed timers) ...
const COMPACT_FACTOR: usize = 4;
/// ... plus this many, so that an almost empty layer does not rebuild on every call.
const COMPACT_SLACK: usize = 64;
/// The largest accepted value of each bound in [`Config`].
pub const MAX_BOUND: usize = 1 << 30;
