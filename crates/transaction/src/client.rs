//! Client transactions (RFC 3261 §17.1, with the RFC 6026 Accepted state): retransmitting
//! requests over unreliable transports, timing out, filtering response retransmissions and
//! acknowledging non-2xx final responses to INVITE.

use std::time::Instant;

use bytes::Bytes;

use crate::key::{ClientKey, MethodKind};
use crate::layer::{ClientId, Error, Event, Role, StatusClass, Transaction, TransactionLayer};
use crate::timers::Timer;

impl<T: Clone> TransactionLayer<T> {
    /// Starts a client transaction and queues the first transmission of `request`.
    ///
    /// INVITE arms Timer B (64*T1) and, on an unreliable transport, Timer A (T1, doubling);
    /// any other method arms Timer F (64*T1) and, unreliably, Timer E (T1, doubling up to T2).
    /// The request must carry `key`'s branch in its top Via and its method in CSeq so that the
    /// responses find this transaction.
    ///
    /// Afterwards `poll_transmit` has the request and `poll_timeout` has moved.
    ///
    /// # Errors
    /// `AckIsNotATransaction` for ACK, `DuplicateKey` if the branch is in use,
    /// `TooManyClientTransactions` beyond the bound.
    pub fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        destination: T,
        reliable: bool,
        request: Bytes,
    ) -> Result<ClientId, Error> {
        if *key.method() == MethodKind::Ack {
            return Err(Error::AckIsNotATransaction);
        }
        if self.clients.contains_key(&key) {
            return Err(Error::DuplicateKey);
        }
        let limit = self.config.max_client_transactions;
        if self.clients.len() >= limit {
            return Err(Error::TooManyClientTransactions { limit });
        }
        let invite = key.method().is_invite();
        let state = if invite {
            ClientState::Calling
        } else {
            ClientState::Trying
        };
        let timers = self.config.timers;
        let index = self.insert(Transaction {
            role: Role::Client {
                key: key.clone(),
                state,
            },
            dest: destination,
            last: Some(request.clone()),
            retransmit_at: None,
            expire_at: None,
            retransmits: 0,
            reliable,
            invite,
        });
        self.clients.insert(key, index);
        self.send(index, request);
        if !reliable {
            self.set_retransmit(index, Some(now + timers.t1));
        }
        self.set_expire(index, Some(now + timers.timeout()));
        self.compact();
        Ok(ClientId(self.handle_of(index)))
    }

    /// Matches a response from the network to its client transaction (§17.1.3) and moves the
    /// state machine.
    ///
    /// `key` is built from the response's top Via branch and CSeq method. For INVITE: 1xx to
    /// Proceeding (retransmissions stop, and so does Timer B); 2xx to Accepted (RFC 6026,
    /// Timer M); 300–699 to Completed (Timer D), where the layer needs the ACK bytes from the
    /// TU (`NeedAck`). For other methods: 1xx to Proceeding (retransmissions continue every
    /// T2); a final response to Completed (Timer K).
    ///
    /// Afterwards `poll_transmit` may hold a re-sent ACK; on a reliable transport a final
    /// response may end the transaction, so `poll_event` and `poll_timeout` are worth calling.
    pub fn on_response(&mut self, now: Instant, key: &ClientKey, status: u16) -> ClientVerdict {
        let Some(class) = StatusClass::of(status) else {
            return ClientVerdict::Discard;
        };
        let Some(&index) = self.clients.get(key) else {
            return ClientVerdict::Stray;
        };
        let Some(tx) = self.tx_mut(index) else {
            return ClientVerdict::Stray;
        };
        let Role::Client { state, .. } = tx.role else {
            return ClientVerdict::Stray;
        };
        let (invite, reliable) = (tx.invite, tx.reliable);
        let id = ClientId(self.handle_of(index));
        let timers = self.config.timers;
        let verdict = match (invite, state, class) {
            (true, ClientState::Calling | ClientState::Proceeding, StatusClass::Provisional) => {
                // §17.1.1.2: no more retransmissions; Timer B only guards Calling.
                self.set_client_state(index, ClientState::Proceeding, false);
                self.set_retransmit(index, None);
                self.set_expire(index, None);
                ClientVerdict::Deliver(id)
            }
            (true, ClientState::Calling | ClientState::Proceeding, StatusClass::Success) => {
                self.set_client_state(index, ClientState::Accepted, false);
                self.set_retransmit(index, None);
                self.set_expire(index, Some(now + timers.timeout()));
                ClientVerdict::Deliver(id)
            }
            (true, ClientState::Calling | ClientState::Proceeding, StatusClass::Failure) => {
                self.set_client_state(index, ClientState::Completed, false);
                self.set_retransmit(index, None);
                // On a reliable transport Timer D is zero, but the transaction waits (at most
                // T1) for `send_ack`, which ends it.
                let linger = if reliable { timers.t1 } else { timers.d(false) };
                self.set_expire(index, Some(now + linger));
                ClientVerdict::NeedAck(id)
            }
            (true, ClientState::Completed, StatusClass::Failure) => {
                // §17.1.1.2: each retransmitted final response gets the ACK again.
                self.resend_last(index);
                ClientVerdict::Absorb
            }
            (true, ClientState::Accepted, StatusClass::Success) => ClientVerdict::Deliver(id),
            (false, ClientState::Trying | ClientState::Proceeding, StatusClass::Provisional) => {
                self.set_client_state(index, ClientState::Proceeding, true);
                ClientVerdict::Deliver(id)
            }
            (false, ClientState::Trying | ClientState::Proceeding, _) => {
                self.set_client_state(index, ClientState::Completed, false);
                self.set_retransmit(index, None);
                self.linger(now, index, timers.t4_unless_reliable(reliable));
                ClientVerdict::Deliver(id)
            }
            _ => ClientVerdict::Absorb,
        };
        self.compact();
        verdict
    }

    /// Hands the layer the ACK for a 300–699 response to INVITE, after `NeedAck` (§17.1.1.3:
    /// the TU builds it from the request and the response's To tag). The layer sends it now and
    /// again for every retransmission of that response until Timer D fires.
    ///
    /// Afterwards `poll_transmit` has the ACK; on a reliable transport the transaction ends,
    /// so `poll_event` has `Terminated`.
    ///
    /// # Errors
    /// `UnknownTransaction` if it has ended, `AckNotExpected` if it is not an INVITE client
    /// transaction in Completed.
    pub fn send_ack(&mut self, id: ClientId, ack: Bytes) -> Result<(), Error> {
        let index = id.0.index;
        let tx = self
            .live(index, id.0.generation)
            .ok_or(Error::UnknownTransaction)?;
        let waiting = tx.invite
            && matches!(
                tx.role,
                Role::Client {
                    state: ClientState::Completed,
                    ..
                }
            );
        if !waiting {
            return Err(Error::AckNotExpected);
        }
        let reliable = tx.reliable;
        self.send(index, ack.clone());
        if reliable {
            self.terminate(index);
        } else if let Some(tx) = self.tx_mut(index) {
            tx.last = Some(ack);
        }
        Ok(())
    }

    /// Where a client transaction stands, or `None` once it has ended.
    pub fn client_state(&self, id: ClientId) -> Option<ClientState> {
        match self.live(id.0.index, id.0.generation)?.role {
            Role::Client { state, .. } => Some(state),
            Role::Server { .. } => None,
        }
    }

    /// A client timer ending the current state fired.
    pub(crate) fn client_expired(&mut self, index: u32) {
        let (state, invite) = match self.tx_mut(index) {
            Some(Transaction {
                role: Role::Client { state, .. },
                invite,
                ..
            }) => (*state, *invite),
            _ => return,
        };
        let timer = match (invite, state) {
            (true, ClientState::Calling) => Some(Timer::B),
            (false, ClientState::Trying | ClientState::Proceeding) => Some(Timer::F),
            // D (Completed INVITE), K (Completed non-INVITE), M (Accepted).
            _ => None,
        };
        if let Some(timer) = timer {
            let id = ClientId(self.handle_of(index)).into();
            self.push_event(Event::TimedOut { id, timer });
        }
        self.terminate(index);
    }

    /// Timer A or E: re-send the request. A doubles without bound; E doubles up to T2 while
    /// Trying and stays at T2 in Proceeding (§17.1.2.2).
    pub(crate) fn client_retransmit(&mut self, now: Instant, index: u32) {
        let timers = self.config.timers;
        let Some(tx) = self.tx_mut(index) else {
            return;
        };
        tx.retransmits = tx.retransmits.saturating_add(1);
        let proceeding = matches!(
            tx.role,
            Role::Client {
                state: ClientState::Proceeding,
                ..
            }
        );
        let next = match (tx.invite, proceeding) {
            (true, _) => timers.backoff(tx.retransmits, None),
            (false, false) => timers.backoff(tx.retransmits, Some(timers.t2)),
            (false, true) => timers.t2,
        };
        self.resend_last(index);
        self.set_retransmit(index, Some(now + next));
    }

    /// Moves to `new`; without `keep_request` the stored request is dropped (no more
    /// retransmissions).
    fn set_client_state(&mut self, index: u32, new: ClientState, keep_request: bool) {
        if let Some(tx) = self.tx_mut(index) {
            if let Role::Client { state, .. } = &mut tx.role {
                *state = new;
            }
            if !keep_request {
                tx.last = None;
            }
        }
    }
}

/// What to do with a response after the layer has matched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientVerdict {
    /// Pass the response to the TU.
    Deliver(ClientId),
    /// Pass the response (a 300–699 to INVITE) to the TU, then build the ACK (§17.1.1.3) and
    /// give it to `send_ack` right away: on a reliable transport the transaction waits only T1
    /// for it.
    NeedAck(ClientId),
    /// A retransmission the TU has already seen: drop it (any ACK it calls for is queued).
    Absorb,
    /// No client transaction matches: §18.1.2 passes it to the core (a 2xx retransmission
    /// after Accepted ended, or a response to a request that was never ours).
    Stray,
    /// The status code is outside 100..=699, which the codec should have rejected: drop it.
    Discard,
}

/// The states of §17.1.1 and §17.1.2 plus RFC 6026's Accepted; Terminated transactions are
/// gone from the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientState {
    /// INVITE sent, no response yet: Timers A and B run.
    Calling,
    /// Non-INVITE sent, no response yet: Timers E and F run.
    Trying,
    /// A provisional response came. INVITE: waiting without a timeout (the TU's Timer C);
    /// non-INVITE: still retransmitting every T2 until Timer F.
    Proceeding,
    /// A final response came (non-2xx for INVITE): absorbing its retransmissions (Timer D or
    /// K), re-sending the ACK for INVITE.
    Completed,
    /// INVITE only (RFC 6026): a 2xx came; further 2xx go to the TU until Timer M.
    Accepted,
}
