//! The binding store and RFC 3261 §10.3 steps 6–8.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aor::Aor;
use crate::binding::{Binding, BindingId, Key, contact_key, remaining_secs};
use crate::error::{ConfigError, RegisterError};
use crate::event::{Endpoint, Event, RemovalReason};
use crate::request::{Contact, ContactBinding, RegisterRequest};

/// Registrar policy. The defaults follow Lync Server's registrar where the briefs document it
/// (briefs/lync-exchange-facts.md §1.10, from `Set-CsRegistrarConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest non-zero expiry accepted; shorter requests get 423 with this as `Min-Expires`.
    /// Default 60 s: RFC 3261's own example floor, low enough for test clients, high enough that
    /// refreshes cannot become a load problem.
    pub min_expires: u32,
    /// Longest expiry granted; longer requests are clamped to it (step 7 allows choosing less).
    /// Default 3600 s: a client that vanishes without closing its connection (NAT drop, sleep)
    /// stays "online" to its watchers at most this long.
    pub max_expires: u32,
    /// Expiry used when the REGISTER names none. SIPE sends neither an `expires` parameter nor an
    /// `Expires` header, so for Lync clients this is the value that matters. Default 600 s,
    /// Lync's `DefaultEndpointExpiration`; SIPE refreshes 30 s before it runs out.
    pub default_expires: u32,
    /// Most bindings one AOR may hold; Lync's `MaxEndpointsPerUser`, default 8. Also bounds the
    /// per-AOR work of every lookup, which scans this many bindings at most.
    pub max_bindings_per_aor: usize,
}

impl RegistrarConfig {
    /// Checks the settings can work together.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_expires == 0 {
            return Err(ConfigError::MaxExpiresZero);
        }
        if self.min_expires > self.max_expires {
            return Err(ConfigError::MinAboveMax {
                min: self.min_expires,
                max: self.max_expires,
            });
        }
        if !(self.min_expires..=self.max_expires).contains(&self.default_expires) {
            return Err(ConfigError::DefaultOutOfRange {
                default: self.default_expires,
                min: self.min_expires,
                max: self.max_expires,
            });
        }
        if self.max_bindings_per_aor == 0 {
            return Err(ConfigError::NoBindingsAllowed);
        }
        Ok(())
    }
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_bindings_per_aor: 8,
        }
    }
}

/// The location service: every AOR's bindings, their expiry timers, and the events their changes
/// cause. `F` is the runtime's handle for the connection a REGISTER arrived on; it is hashed so a
/// closed connection finds its bindings without a scan.
#[derive(Debug)]
pub struct Registrar<F> {
    config: RegistrarConfig,
    /// Bindings per AOR, in registration order; at most `max_bindings_per_aor` each, so lookups
    /// within an AOR are short scans.
    aors: HashMap<Aor, Vec<Binding<F>>>,
    /// Flow → bindings reached over it, for [`Registrar::flow_closed`].
    by_flow: HashMap<F, Vec<(Aor, BindingId)>>,
    /// Expiry heap with lazy deletion: a refresh pushes a new entry and leaves the old one, which
    /// is skipped when it surfaces because the binding's `expires_at` has moved on.
    timers: BinaryHeap<Reverse<Timer>>,
    events: VecDeque<Event<F>>,
    next_id: u64,
    binding_total: usize,
}

impl<F: Clone + Eq + Hash> Registrar<F> {
    /// An empty registrar, after checking the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] from [`RegistrarConfig::validate`].
    pub fn new(config: RegistrarConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            aors: HashMap::new(),
            by_flow: HashMap::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            next_id: 1,
            binding_total: 0,
        })
    }

    /// The policy in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Processes one authenticated REGISTER: RFC 3261 §10.3 steps 6–8.
    ///
    /// Bindings that expired by `now` are removed first, so a late refresh starts a new
    /// registration instead of reviving a dead one. The request is then validated as a whole and
    /// applied only if every Contact is acceptable (the RFC's atomicity rule); on error nothing
    /// changes and no event is queued. The events a successful change causes are queued for
    /// [`Registrar::poll_event`], the single path for all events whatever caused them.
    ///
    /// # Errors
    /// A [`RegisterError`] when the request must be refused; its status code is the answer.
    pub fn register(
        &mut self,
        now: Instant,
        req: RegisterRequest<F>,
    ) -> Result<RegisterOk, RegisterError> {
        self.handle_timeout(now);
        let plan = self.plan(&req, false)?;
        let what = self.apply(now, req.aor.clone(), plan, req);
        Ok(self.answer(now, what))
    }

    /// Re-creates bindings a previous run acknowledged (read back from the store at start):
    /// like [`Registrar::register`], but each Contact's `expires` is the time it has left,
    /// which may be under `min_expires` without being refused. The usual events are queued, so
    /// the rest of the server learns who is signed in.
    ///
    /// # Errors
    /// A [`RegisterError`] when the bindings cannot be held (more than the binding limit).
    pub fn restore(&mut self, now: Instant, req: RegisterRequest<F>) -> Result<(), RegisterError> {
        self.handle_timeout(now);
        let plan = self.plan(&req, true)?;
        self.apply(now, req.aor.clone(), plan, req);
        Ok(())
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event<F>> {
        self.events.pop_front()
    }

    /// When [`Registrar::handle_timeout`] should next be called. May be earlier than any real
    /// expiry (a refreshed binding's old timer); such a wake-up does nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// Removes every binding whose expiry is at or before `now`, queuing
    /// [`RemovalReason::Expired`] and, for AORs left empty, [`Event::AorOffline`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(top)) = self.timers.peek() {
            if top.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            let Some(list) = self.aors.get_mut(&timer.aor) else {
                continue;
            };
            let Some(pos) = list
                .iter()
                .position(|b| b.id == timer.id && b.expires_at <= now)
            else {
                continue;
            };
            let binding = list.remove(pos);
            let now_empty = list.is_empty();
            self.forget(&timer.aor, binding, RemovalReason::Expired, now_empty);
        }
    }

    /// The runtime's report that a connection closed. Every binding reached over it is removed
    /// with [`RemovalReason::FlowFailed`] (see there for why removal, not keeping a dead route).
    pub fn flow_closed(&mut self, flow: &F) {
        let Some(entries) = self.by_flow.remove(flow) else {
            return;
        };
        for (aor, id) in entries {
            let Some(list) = self.aors.get_mut(&aor) else {
                continue;
            };
            let Some(pos) = list.iter().position(|b| b.id == id) else {
                continue;
            };
            let binding = list.remove(pos);
            let now_empty = list.is_empty();
            self.forget(&aor, binding, RemovalReason::FlowFailed, now_empty);
        }
    }

    /// The AOR's current bindings in registration order, for forking a request to all of a
    /// user's endpoints. Reflects the last [`Registrar::handle_timeout`] or
    /// [`Registrar::register`]; the runtime keeps that current by honouring `poll_timeout`.
    pub fn bindings(&self, aor: &Aor) -> impl Iterator<Item = &Binding<F>> {
        self.aors.get(aor).into_iter().flatten()
    }

    /// The binding of `aor` that `target` names, e.g. the endpoint a GRUU or an epid points at.
    pub fn binding(&self, aor: &Aor, target: Target<'_>) -> Option<&Binding<F>> {
        let contact = match target {
            Target::Contact(uri) => Some(contact_key(uri)),
            _ => None,
        };
        self.bindings(aor).find(|b| match target {
            Target::Binding(id) => b.id == id,
            Target::Instance(i) => b.instance().is_some_and(|x| x.eq_ignore_ascii_case(i)),
            Target::Epid(e) => b.epid().is_some_and(|x| x.eq_ignore_ascii_case(e)),
            Target::Contact(_) => contact.as_deref() == Some(contact_key(&b.uri).as_str()),
        })
    }

    /// The flow to send a request to one endpoint of `aor` over.
    pub fn lookup_flow(&self, aor: &Aor, target: Target<'_>) -> Option<&F> {
        self.binding(aor, target).map(Binding::flow)
    }

    /// Every AOR with at least one binding, for admin views.
    pub fn aors(&self) -> impl Iterator<Item = &Aor> {
        self.aors.keys()
    }

    /// Number of AORs with at least one binding (users signed in), for metrics.
    pub fn aor_count(&self) -> usize {
        self.aors.len()
    }

    /// Number of bindings over all AORs (endpoints signed in), for metrics.
    pub fn binding_count(&self) -> usize {
        self.binding_total
    }
}

/// Which endpoint of an AOR to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target<'a> {
    /// By binding id, e.g. from an event.
    Binding(BindingId),
    /// By `+sip.instance` (case-insensitive), e.g. from a GRUU.
    Instance(&'a str),
    /// By Contact URI, compared with [`crate::contact_key`].
    Contact(&'a str),
    /// By Lync endpoint id (case-insensitive), e.g. from the `epid` of a To header.
    Epid(&'a str),
}

/// A successful REGISTER: what the 200 OK must say (RFC 3261 §10.3 step 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOk {
    /// Every current binding of the AOR, not only those of this request.
    pub bindings: Vec<BindingView>,
    /// The value for the `Expires` header, without which SIPE does not consider itself signed
    /// in (briefs/sipe-client.md §3.2): the shortest expiry granted to a Contact of this request; for a query, the
    /// shortest remaining expiry of the AOR's bindings; otherwise (a sign-out) 0.
    pub expires: u32,
}

/// One binding as the 200 OK lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingView {
    /// The binding.
    pub binding: BindingId,
    /// The Contact value as registered, `<uri>;params`, without `expires`.
    pub contact: String,
    /// Seconds until it expires, as chosen by the registrar.
    pub expires: u32,
}

impl BindingView {
    /// The Contact header value with the `expires` parameter step 8 requires.
    pub fn contact_header_value(&self) -> String {
        format!("{};expires={}", self.contact, self.expires)
    }
}

// ---- helpers -------------------------------------------------------------------------------

/// What a validated REGISTER will do.
enum Plan {
    /// No Contact: only report the bindings.
    Query,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    /// One entry per distinct binding key named by the request.
    Update(Vec<Op>),
}

/// One binding change; `existing` indexes the AOR's stored list.
struct Op {
    contact: usize,
    key: Key,
    granted: u32,
    existing: Option<usize>,
}

/// An expiry heap entry, ordered by time then id.
#[derive(Debug)]
struct Timer {
    at: Instant,
    id: BindingId,
    aor: Aor,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.id).cmp(&(other.at, other.id))
    }
}

impl<F: Clone + Eq + Hash> Registrar<F> {
    /// Steps 6 and 7 without side effects: every check that can refuse the request.
    fn plan(&self, req: &RegisterRequest<F>, restoring: bool) -> Result<Plan, RegisterError> {
        let stored: &[Binding<F>] = self.aors.get(&req.aor).map_or(&[], Vec::as_slice);
        if req.contacts.is_empty() {
            return Ok(Plan::Query);
        }
        if req.contacts.iter().any(|c| matches!(c, Contact::Wildcard)) {
            if req.contacts.len() != 1 {
                return Err(RegisterError::WildcardNotAlone);
            }
            if req.expires != Some(0) {
                return Err(RegisterError::WildcardNeedsExpiresZero);
            }
            for b in stored {
                check_order(b, req)?;
            }
            return Ok(Plan::RemoveAll);
        }

        let mut ops: Vec<Op> = Vec::new();
        for (i, contact) in req.contacts.iter().enumerate() {
            let Contact::Binding(cb) = contact else {
                continue;
            };
            let requested = cb
                .expires
                .or(req.expires)
                .unwrap_or(self.config.default_expires);
            let granted = if restoring {
                requested.min(self.config.max_expires)
            } else {
                self.grant(requested)?
            };
            let key = key_of(cb);
            let existing = stored.iter().position(|b| b.key.same(&key));
            if let Some(pos) = existing {
                check_order(&stored[pos], req)?;
            }
            let op = Op {
                contact: i,
                key,
                granted,
                existing,
            };
            // A key named twice in one request: the later Contact wins, as if processed in turn.
            match ops.iter_mut().find(|o| o.key.same(&op.key)) {
                Some(prev) => *prev = op,
                None => ops.push(op),
            }
        }

        let removed = ops
            .iter()
            .filter(|o| o.existing.is_some() && o.granted == 0)
            .count();
        let added = ops
            .iter()
            .filter(|o| o.existing.is_none() && o.granted > 0)
            .count();
        let after = stored.len() - removed + added;
        if after > self.config.max_bindings_per_aor && after > stored.len() {
            return Err(RegisterError::TooManyBindings {
                limit: self.config.max_bindings_per_aor,
            });
        }
        Ok(Plan::Update(ops))
    }

    /// Step 7's expiry choice for one Contact: 0 stays 0 (removal), too brief is refused, too
    /// long is clamped.
    fn grant(&self, requested: u32) -> Result<u32, RegisterError> {
        let RegistrarConfig {
            min_expires,
            max_expires,
            ..
        } = self.config;
        if requested == 0 {
            return Ok(0);
        }
        if requested < min_expires {
            // 423 is allowed only below one hour; a longer request under a higher configured
            // minimum is raised to it instead.
            if requested < ONE_HOUR {
                return Err(RegisterError::IntervalTooBrief { min_expires });
            }
            return Ok(min_expires);
        }
        Ok(requested.min(max_expires))
    }

    /// Commits a validated plan and queues its events. Returns what step 8 must report, with the
    /// shortest expiry granted to a Contact of the request, if any.
    fn apply(&mut self, now: Instant, aor: Aor, plan: Plan, req: RegisterRequest<F>) -> AnswerFor {
        let stored = self.aors.remove(&aor).unwrap_or_default();
        let was_online = !stored.is_empty();
        let ops = match plan {
            Plan::Query => {
                if was_online {
                    self.aors.insert(aor.clone(), stored);
                }
                return AnswerFor::Query(aor);
            }
            Plan::RemoveAll => {
                let count = stored.len();
                for (i, b) in stored.into_iter().enumerate() {
                    self.forget(&aor, b, RemovalReason::Unregistered, i + 1 == count);
                }
                return AnswerFor::Change(aor, None);
            }
            Plan::Update(ops) => ops,
        };

        let RegisterRequest {
            call_id,
            cseq,
            contacts,
            flow,
            source,
            user_agent,
            epid,
            ..
        } = req;
        let mut contacts: Vec<Option<ContactBinding>> = contacts
            .into_iter()
            .map(|c| match c {
                Contact::Binding(cb) => Some(cb),
                Contact::Wildcard => None,
            })
            .collect();
        let will_be_online = {
            let removed = ops
                .iter()
                .filter(|o| o.existing.is_some() && o.granted == 0)
                .count();
            let added = ops
                .iter()
                .filter(|o| o.existing.is_none() && o.granted > 0)
                .count();
            stored.len() - removed + added > 0
        };
        if !was_online && will_be_online {
            self.events.push_back(Event::AorOnline { aor: aor.clone() });
        }
        let ctx = Ctx {
            now,
            call_id: &call_id,
            cseq,
            flow: &flow,
            source: &source,
            user_agent: user_agent.as_deref(),
            epid: epid.as_deref().map(Arc::from),
        };

        // Additions and refreshes before removals, and a replacement's new binding before its
        // old one goes: counting endpoint events then never passes through zero unless the AOR
        // really goes offline.
        let mut ops = ops;
        ops.sort_by_key(|o| o.granted == 0);
        let mut slots: Vec<Option<Binding<F>>> = stored.into_iter().map(Some).collect();
        let mut added = Vec::new();
        let mut granted_min: Option<u32> = None;
        for op in ops {
            let Some(cb) = contacts.get_mut(op.contact).and_then(Option::take) else {
                continue;
            };
            if op.granted > 0 {
                granted_min = Some(granted_min.map_or(op.granted, |g| g.min(op.granted)));
            }
            let expires_at = now + Duration::from_secs(u64::from(op.granted));
            match op.existing {
                Some(pos) => {
                    let Some(slot) = slots.get_mut(pos) else {
                        continue;
                    };
                    let Some(old) = slot.take() else {
                        continue;
                    };
                    if op.granted == 0 {
                        self.forget(&aor, old, RemovalReason::Unregistered, false);
                    } else if *old.call_id == *ctx.call_id {
                        *slot = Some(self.refresh(&aor, old, cb, &ctx, expires_at));
                    } else {
                        let new = self.create(&aor, op.key, cb, &ctx, expires_at);
                        self.forget(&aor, old, RemovalReason::Replaced, false);
                        *slot = Some(new);
                    }
                }
                None if op.granted > 0 => {
                    added.push(self.create(&aor, op.key, cb, &ctx, expires_at));
                }
                None => {}
            }
        }
        let list: Vec<Binding<F>> = slots.into_iter().flatten().chain(added).collect();
        if list.is_empty() {
            if was_online {
                self.events
                    .push_back(Event::AorOffline { aor: aor.clone() });
            }
        } else {
            self.aors.insert(aor.clone(), list);
        }
        self.compact_timers();
        AnswerFor::Change(aor, granted_min)
    }

    /// Builds step 8's answer from the AOR's bindings after the change.
    fn answer(&self, now: Instant, what: AnswerFor) -> RegisterOk {
        let (aor, granted_min) = match &what {
            AnswerFor::Query(aor) => (aor, None),
            AnswerFor::Change(aor, g) => (aor, *g),
        };
        let bindings: Vec<BindingView> = self
            .bindings(aor)
            .map(|b| BindingView {
                binding: b.id,
                contact: b.contact_value(),
                expires: remaining_secs(b.expires_at, now),
            })
            .collect();
        let expires = match what {
            AnswerFor::Query(_) => bindings.iter().map(|v| v.expires).min().unwrap_or(0),
            AnswerFor::Change(..) => granted_min.unwrap_or(0),
        };
        RegisterOk { bindings, expires }
    }

    /// Updates a binding in place for a same-Call-ID refresh with a higher CSeq.
    fn refresh(
        &mut self,
        aor: &Aor,
        mut b: Binding<F>,
        cb: ContactBinding,
        ctx: &Ctx<'_, F>,
        expires_at: Instant,
    ) -> Binding<F> {
        let mut moved = false;
        if b.flow != *ctx.flow {
            unindex_flow(&mut self.by_flow, &b.flow, b.id);
            index_flow(&mut self.by_flow, ctx.flow, aor, b.id);
            b.flow = ctx.flow.clone();
            moved = true;
        }
        if *b.uri != *cb.uri {
            b.uri = Arc::from(cb.uri);
            moved = true;
        }
        if *b.params != *cb.params {
            b.params = cb.params.into_boxed_str();
        }
        if b.epid.as_deref() != ctx.epid.as_deref() {
            b.epid.clone_from(&ctx.epid);
            moved = true;
        }
        if *b.source != *ctx.source {
            b.source = Box::from(ctx.source);
        }
        if b.user_agent.as_deref() != ctx.user_agent {
            b.user_agent = ctx.user_agent.map(Box::from);
        }
        b.q = cb.q;
        b.cseq = ctx.cseq;
        b.expires_at = expires_at;
        self.push_timer(aor, b.id, expires_at);
        self.events.push_back(Event::EndpointRefreshed {
            aor: aor.clone(),
            endpoint: Endpoint::of(&b),
            flow: b.flow.clone(),
            moved,
        });
        b
    }

    /// Makes a new binding, indexes it and queues [`Event::EndpointRegistered`].
    fn create(
        &mut self,
        aor: &Aor,
        key: Key,
        cb: ContactBinding,
        ctx: &Ctx<'_, F>,
        expires_at: Instant,
    ) -> Binding<F> {
        let id = BindingId(self.next_id);
        self.next_id += 1;
        let b = Binding {
            id,
            key,
            uri: Arc::from(cb.uri),
            params: cb.params.into_boxed_str(),
            epid: ctx.epid.clone(),
            q: cb.q,
            call_id: Box::from(ctx.call_id),
            cseq: ctx.cseq,
            expires_at,
            registered_at: ctx.now,
            flow: ctx.flow.clone(),
            source: Box::from(ctx.source),
            user_agent: ctx.user_agent.map(Box::from),
        };
        self.binding_total += 1;
        index_flow(&mut self.by_flow, &b.flow, aor, id);
        self.push_timer(aor, id, expires_at);
        self.events.push_back(Event::EndpointRegistered {
            aor: aor.clone(),
            endpoint: Endpoint::of(&b),
            flow: b.flow.clone(),
        });
        b
    }

    /// Drops a binding already taken out of its AOR's list: unindexes it, counts it, and queues
    /// its removal (and the AOR's going offline, when `last`).
    fn forget(&mut self, aor: &Aor, b: Binding<F>, reason: RemovalReason, last: bool) {
        self.binding_total -= 1;
        unindex_flow(&mut self.by_flow, &b.flow, b.id);
        self.events.push_back(Event::EndpointRemoved {
            aor: aor.clone(),
            endpoint: Endpoint::of(&b),
            flow: b.flow,
            reason,
        });
        if last {
            self.aors.remove(aor);
            self.events
                .push_back(Event::AorOffline { aor: aor.clone() });
        }
    }

    fn push_timer(&mut self, aor: &Aor, id: BindingId, at: Instant) {
        self.timers.push(Reverse(Timer {
            at,
            id,
            aor: aor.clone(),
        }));
    }

    /// Rebuilds the heap from live bindings once stale entries (left by refreshes) outnumber
    /// them, so memory tracks bindings rather than refresh traffic.
    fn compact_timers(&mut self) {
        if self.timers.len() <= 2 * self.binding_total + TIMER_SLACK {
            return;
        }
        self.timers = self
            .aors
            .iter()
            .flat_map(|(aor, list)| {
                list.iter().map(|b| {
                    Reverse(Timer {
                        at: b.expires_at,
                        id: b.id,
                        aor: aor.clone(),
                    })
                })
            })
            .collect();
    }
}

/// What step 8 reports on.
enum AnswerFor {
    Query(Aor),
    Change(Aor, Option<u32>),
}

/// The per-request values every binding written by one REGISTER shares.
struct Ctx<'a, F> {
    now: Instant,
    call_id: &'a str,
    cseq: u32,
    flow: &'a F,
    source: &'a str,
    user_agent: Option<&'a str>,
    epid: Option<Arc<str>>,
}

/// Step 6/7's ordering rule: a request with a binding's Call-ID must have a higher CSeq.
fn check_order<F>(b: &Binding<F>, req: &RegisterRequest<F>) -> Result<(), RegisterError> {
    if *b.call_id == *req.call_id && req.cseq <= b.cseq {
        return Err(RegisterError::OutOfOrder {
            cseq: req.cseq,
            stored: b.cseq,
        });
    }
    Ok(())
}

/// The binding key of a Contact: its instance (RFC 5626 §6) if any, else its URI.
fn key_of(cb: &ContactBinding) -> Key {
    match &cb.instance {
        Some(instance) => Key::Instance {
            instance: Arc::from(instance.as_str()),
            reg_id: cb.reg_id,
        },
        None => Key::Contact(
            cb.key
                .clone()
                .unwrap_or_else(|| contact_key(&cb.uri))
                .into_boxed_str(),
        ),
    }
}

fn index_flow<F: Clone + Eq + Hash>(
    by_flow: &mut HashMap<F, Vec<(Aor, BindingId)>>,
    flow: &F,
    aor: &Aor,
    id: BindingId,
) {
    match by_flow.get_mut(flow) {
        Some(v) => v.push((aor.clone(), id)),
        None => {
            by_flow.insert(flow.clone(), vec![(aor.clone(), id)]);
        }
    }
}

fn unindex_flow<F: Eq + Hash>(
    by_flow: &mut HashMap<F, Vec<(Aor, BindingId)>>,
    flow: &F,
    id: BindingId,
) {
    if let Some(v) = by_flow.get_mut(flow) {
        v.retain(|(_, b)| *b != id);
        if v.is_empty() {
            by_flow.remove(flow);
        }
    }
}

/// RFC 3261 §10.3 step 7 allows 423 only for requests shorter than one hour.
const ONE_HOUR: u32 = 3600;
/// Stale heap entries tolerated before [`Registrar::compact_timers`] rebuilds the heap.
const TIMER_SLACK: usize = 1024;

#[cfg(test)]
mod tests;
