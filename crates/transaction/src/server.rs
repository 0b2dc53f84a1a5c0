//! Server transactions (RFC 3261 §17.2, with the RFC 6026 Accepted state): absorbing request
//! retransmissions, retransmitting non-2xx final responses to INVITE, and lingering long enough
//! to answer late retransmissions from the cached response.

use std::time::Instant;

use bytes::Bytes;

use crate::key::{MethodKind, ServerKey};
use crate::layer::{Error, Event, Role, ServerId, StatusClass, Transaction, TransactionLayer};
use crate::timers::Timer;

impl<T: Clone> TransactionLayer<T> {
    /// Matches a request from the network to a server transaction (§17.2.3), creating one for a
    /// new request.
    ///
    /// `destination` is where responses go (§18.2.2: from the top Via, `received` and `rport`)
    /// and `reliable` whether that transport is TCP/TLS/SCTP (no retransmissions, Timers I and
    /// J zero). Both are remembered from the request that creates the transaction; those of
    /// retransmissions are ignored.
    ///
    /// For an INVITE the TU should send `100 Trying` (§17.2.1) at once unless it answers
    /// within 200 ms: the layer cannot build it.
    ///
    /// A retransmission may queue the cached response, and an ACK on a reliable transport may
    /// end the transaction, so `poll_transmit` and `poll_event` are worth calling afterwards.
    ///
    /// # Errors
    /// `TooManyServerTransactions` for a new request beyond the bound; retransmissions and ACKs
    /// are still matched when the layer is full.
    pub fn on_request(
        &mut self,
        now: Instant,
        key: ServerKey,
        destination: T,
        reliable: bool,
    ) -> Result<ServerVerdict, Error> {
        if *key.method() == MethodKind::Ack {
            return Ok(self.on_ack(now, &key));
        }
        if let Some(&index) = self.servers.get(&key) {
            return Ok(self.on_retransmitted_request(index));
        }
        let limit = self.config.max_server_transactions;
        if self.servers.len() >= limit {
            return Err(Error::TooManyServerTransactions { limit });
        }
        let invite = key.method().is_invite();
        let state = if invite {
            ServerState::Proceeding
        } else {
            ServerState::Trying
        };
        let index = self.insert(Transaction {
            role: Role::Server {
                key: key.clone(),
                state,
            },
            dest: destination,
            last: None,
            retransmit_at: None,
            expire_at: None,
            retransmits: 0,
            reliable,
            invite,
        });
        self.servers.insert(key, index);
        Ok(ServerVerdict::New(ServerId(self.handle_of(index))))
    }

    /// Sends a response from the TU through its server transaction and moves the state machine:
    /// 1xx to Proceeding; a 2xx to INVITE to Accepted (RFC 6026, Timer L); a 300–699 to INVITE
    /// to Completed (Timer G on unreliable transports, Timer H); a final response to anything
    /// else to Completed (Timer J).
    ///
    /// In Accepted the TU may call this again with the 2xx: its own 2xx retransmissions
    /// (§13.3.1.4) travel through here, the layer does not repeat a 2xx by itself.
    ///
    /// Afterwards `poll_transmit` has the response; on a reliable transport a final response
    /// to a non-INVITE ends the transaction, so `poll_event` and `poll_timeout` are worth
    /// calling too.
    ///
    /// # Errors
    /// `UnknownTransaction` if it has ended, `InvalidStatus` outside 100..=699,
    /// `FinalAlreadySent` after a final response (except a 2xx repeated in Accepted).
    pub fn send_response(
        &mut self,
        now: Instant,
        id: ServerId,
        status: u16,
        response: Bytes,
    ) -> Result<(), Error> {
        let class = StatusClass::of(status).ok_or(Error::InvalidStatus(status))?;
        let index = id.0.index;
        let tx = self
            .live(index, id.0.generation)
            .ok_or(Error::UnknownTransaction)?;
        let Role::Server { state, .. } = tx.role else {
            return Err(Error::UnknownTransaction);
        };
        let (invite, reliable) = (tx.invite, tx.reliable);
        let timers = self.config.timers;
        match (state, class) {
            (ServerState::Trying | ServerState::Proceeding, StatusClass::Provisional) => {
                self.set_server_state(index, ServerState::Proceeding, Some(response.clone()));
                self.send(index, response);
            }
            (ServerState::Proceeding, StatusClass::Success) if invite => {
                // RFC 6026 §8.5: the 2xx is retransmitted by the TU, not by us; keep nothing.
                self.set_server_state(index, ServerState::Accepted, None);
                self.send(index, response);
                self.set_expire(index, Some(now + timers.timeout()));
            }
            (ServerState::Proceeding, StatusClass::Failure) if invite => {
                self.set_server_state(index, ServerState::Completed, Some(response.clone()));
                self.send(index, response);
                if !reliable {
                    self.set_retransmit(index, Some(now + timers.backoff(0, Some(timers.t2))));
                }
                self.set_expire(index, Some(now + timers.timeout()));
            }
            (
                ServerState::Trying | ServerState::Proceeding,
                StatusClass::Success | StatusClass::Failure,
            ) => {
                self.set_server_state(index, ServerState::Completed, Some(response.clone()));
                self.send(index, response);
                self.linger(now, index, timers.j(reliable));
            }
            (ServerState::Accepted, StatusClass::Success) => self.send(index, response),
            _ => return Err(Error::FinalAlreadySent),
        }
        self.compact();
        Ok(())
    }

    /// Finds the server transaction for a key; how the TU handling a CANCEL finds the INVITE
    /// (with [`ServerKey::cancel_target`]).
    pub fn server_id(&self, key: &ServerKey) -> Option<ServerId> {
        self.servers
            .get(key)
            .map(|&index| ServerId(self.handle_of(index)))
    }

    /// Where a server transaction stands, or `None` once it has ended. A CANCEL's TU answers
    /// the INVITE with 487 only while it is still `Proceeding` (§9.2).
    pub fn server_state(&self, id: ServerId) -> Option<ServerState> {
        match self.live(id.0.index, id.0.generation)?.role {
            Role::Server { state, .. } => Some(state),
            Role::Client { .. } => None,
        }
    }

    fn on_ack(&mut self, now: Instant, key: &ServerKey) -> ServerVerdict {
        let Some(index) = key
            .ack_candidates()
            .find_map(|candidate| self.servers.get(&candidate).copied())
        else {
            return ServerVerdict::Ack2xxOrStray;
        };
        let Some(tx) = self.tx_mut(index) else {
            return ServerVerdict::Ack2xxOrStray;
        };
        let reliable = tx.reliable;
        match tx.role {
            Role::Server {
                state: ServerState::Completed,
                ..
            } => {
                // §17.2.1: stop G, replace H with I; the cached response is no longer needed.
                self.set_server_state(index, ServerState::Confirmed, None);
                self.set_retransmit(index, None);
                let linger = self.config.timers.t4_unless_reliable(reliable);
                self.linger(now, index, linger);
                ServerVerdict::AckForCompleted
            }
            Role::Server {
                state: ServerState::Confirmed,
                ..
            } => ServerVerdict::AckForCompleted,
            // Accepted: RFC 6026 §8.7 passes the ACK up; Proceeding: no final response was
            // sent, so this ACK is not ours to absorb.
            _ => ServerVerdict::Ack2xxOrStray,
        }
    }

    fn on_retransmitted_request(&mut self, index: u32) -> ServerVerdict {
        let state = match self.tx_mut(index).map(|tx| &tx.role) {
            Some(Role::Server { state, .. }) => *state,
            _ => return ServerVerdict::Retransmission,
        };
        match state {
            // §17.2.1, §17.2.2: answer with the most recent response. Trying has none yet.
            ServerState::Proceeding | ServerState::Completed => self.resend_last(index),
            // Trying: discarded (§17.2.2); Confirmed: absorbed (§17.2.1); Accepted: absorbed,
            // the TU retransmits its 2xx itself (RFC 6026 §8.7).
            ServerState::Trying | ServerState::Confirmed | ServerState::Accepted => {}
        }
        ServerVerdict::Retransmission
    }

    /// A server timer ending the current state fired.
    pub(crate) fn server_expired(&mut self, index: u32) {
        let (state, invite) = match self.tx_mut(index) {
            Some(Transaction {
                role: Role::Server { state, .. },
                invite,
                ..
            }) => (*state, *invite),
            _ => return,
        };
        if invite && state == ServerState::Completed {
            // §17.2.1: Timer H, the ACK never came.
            let id = ServerId(self.handle_of(index)).into();
            self.push_event(Event::TimedOut {
                id,
                timer: Timer::H,
            });
        }
        // Otherwise Timer I (Confirmed), J (non-INVITE Completed) or L (Accepted).
        self.terminate(index);
    }

    /// Timer G: re-send the non-2xx final response, doubling the interval up to T2.
    pub(crate) fn server_retransmit(&mut self, now: Instant, index: u32) {
        let timers = self.config.timers;
        let Some(tx) = self.tx_mut(index) else {
            return;
        };
        tx.retransmits = tx.retransmits.saturating_add(1);
        let next = timers.backoff(tx.retransmits, Some(timers.t2));
        self.resend_last(index);
        self.set_retransmit(index, Some(now + next));
    }

    fn set_server_state(&mut self, index: u32, new: ServerState, last: Option<Bytes>) {
        if let Some(tx) = self.tx_mut(index) {
            if let Role::Server { state, .. } = &mut tx.role {
                *state = new;
            }
            tx.last = last;
        }
    }
}

/// What to do with a request after the layer has matched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerVerdict {
    /// A new transaction: pass the request to the TU, which answers through `send_response`
    /// with this id.
    New(ServerId),
    /// A retransmission of a request the TU already has: drop it. The last response, if the
    /// state calls for it, is queued again.
    Retransmission,
    /// An ACK for the non-2xx final response of an INVITE transaction (§17.2.1): absorbed, the
    /// TU need not see it.
    AckForCompleted,
    /// An ACK that completes no transaction here: an ACK for a 2xx (a transaction of its own,
    /// §17.1.1.3), for an RFC 6026 Accepted transaction, or a stray. Pass it to the TU, which
    /// matches it to a dialog or forwards it.
    Ack2xxOrStray,
}

/// The states of §17.2.1 and §17.2.2 plus RFC 6026's Accepted; Terminated transactions are
/// gone from the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerState {
    /// Non-INVITE, no response yet: retransmissions are discarded.
    Trying,
    /// A provisional response was sent (or, for INVITE, none yet): retransmissions get it.
    Proceeding,
    /// A final response was sent (non-2xx for INVITE): retransmissions get it again.
    Completed,
    /// INVITE only: the ACK came; lingering for Timer I.
    Confirmed,
    /// INVITE only (RFC 6026): a 2xx was sent; lingering for Timer L to absorb retransmitted
    /// INVITEs.
    Accepted,
}
