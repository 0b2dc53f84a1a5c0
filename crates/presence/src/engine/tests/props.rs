//! Property test: after any sequence of registrations, subscriptions, publications,
//! unsubscriptions, NOTIFY outcomes and expiries, (1) every live subscription's watcher is
//! registered, (2) no notification is queued for a terminated subscription, (3) CSeq strictly
//! increases per dialog, and the engine's indexes agree with each other.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use super::lync::{PUBLISH_CT, batch_subscribe, publish_body, service, state_pub};
use super::rfc3903::{self, PIDF_AWAY, PIDF_BUSY, PIDF_OPEN};
use super::*;
use crate::engine::state::Target;

const USERS: [&str; 4] = [
    "u0@example.test",
    "u1@example.test",
    "u2@example.test",
    "u3@example.test",
];

#[derive(Clone, Debug)]
enum Op {
    Register(usize, usize),
    Unregister(usize, usize),
    Subscribe {
        watcher: usize,
        target: usize,
        expires: u32,
        benotify: bool,
    },
    Batch {
        watcher: usize,
        targets: Vec<usize>,
    },
    Refresh(usize, u32),
    Unsubscribe(usize),
    PublishPidf(usize, u8),
    PublishCategory(usize, u32),
    Advance(u32),
    Answer(usize, u16),
    Timeout(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 0..2usize).prop_map(|(u, e)| Op::Register(u, e)),
        (0..4usize, 0..2usize).prop_map(|(u, e)| Op::Unregister(u, e)),
        (
            0..4usize,
            0..4usize,
            prop_oneof![Just(0u32), Just(60), Just(120), Just(3600)],
            any::<bool>()
        )
            .prop_map(|(watcher, target, expires, benotify)| Op::Subscribe {
                watcher,
                target,
                expires,
                benotify
            }),
        (0..4usize, proptest::collection::vec(0..4usize, 1..4))
            .prop_map(|(watcher, targets)| Op::Batch { watcher, targets }),
        (0..8usize, prop_oneof![Just(60u32), Just(300)]).prop_map(|(i, e)| Op::Refresh(i, e)),
        (0..8usize).prop_map(Op::Unsubscribe),
        (0..4usize, 0..3u8).prop_map(|(u, s)| Op::PublishPidf(u, s)),
        (
            0..4usize,
            prop_oneof![Just(3500u32), Just(6500), Just(15500)]
        )
            .prop_map(|(u, a)| Op::PublishCategory(u, a)),
        prop_oneof![Just(1u32), Just(30), Just(61), Just(400)].prop_map(Op::Advance),
        (
            0..8usize,
            prop_oneof![Just(200u16), Just(481), Just(500), Just(408)]
        )
            .prop_map(|(i, s)| Op::Answer(i, s)),
        (0..8usize).prop_map(Op::Timeout),
    ]
}

/// The test's model of the world and the observations the properties need.
struct World {
    h: Harness,
    registered: HashSet<(usize, usize)>,
    /// (watcher, call, to-tag) of subscriptions the test created.
    dialogs: Vec<(usize, String, String)>,
    pending: Vec<NotifyId>,
    last_cseq: HashMap<(String, String), u32>,
    terminated: HashSet<(String, String)>,
    calls: u32,
    versions: HashMap<usize, u32>,
}

impl World {
    fn flow(u: usize, e: usize) -> u32 {
        u32::try_from(u * 10 + e + 1).unwrap_or(0)
    }

    fn registered_flow(&self, u: usize) -> Option<u32> {
        (0..2)
            .find(|&e| self.registered.contains(&(u, e)))
            .map(|e| Self::flow(u, e))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Register(u, e) => {
                self.h
                    .register_on(USERS[u], &format!("u{u}e{e}"), Self::flow(u, e), 3600);
                self.registered.insert((u, e));
            }
            Op::Unregister(u, e) => {
                if self.registered.remove(&(u, e)) {
                    self.h
                        .unregister(USERS[u], &format!("u{u}e{e}"), Self::flow(u, e));
                }
            }
            Op::Subscribe {
                watcher,
                target,
                expires,
                benotify,
            } => {
                let Some(flow) = self.registered_flow(watcher) else {
                    return;
                };
                self.calls += 1;
                let call = format!("c{}", self.calls);
                let extra = format!(
                    "Event: presence\nExpires: {expires}{}",
                    if benotify {
                        "\nSupported: ms-benotify"
                    } else {
                        ""
                    }
                );
                let r = self.h.send(
                    USERS[watcher],
                    flow,
                    &subscribe(USERS[watcher], USERS[target], &call, &extra),
                );
                if r.status() == 200 && expires > 0 {
                    let tag = r.to().tag().unwrap_or_default().to_owned();
                    self.dialogs.push((watcher, call, tag));
                }
            }
            Op::Batch {
                watcher,
                ref targets,
            } => {
                let Some(flow) = self.registered_flow(watcher) else {
                    return;
                };
                self.calls += 1;
                let call = format!("b{}", self.calls);
                let res: Vec<&str> = targets.iter().map(|&t| USERS[t]).collect();
                let r = self.h.send(
                    USERS[watcher],
                    flow,
                    &batch_subscribe(USERS[watcher], &call, 1, None, &res),
                );
                if r.status() == 200 {
                    let tag = r.to().tag().unwrap_or_default().to_owned();
                    self.dialogs.push((watcher, call, tag));
                }
            }
            Op::Refresh(i, _) | Op::Unsubscribe(i) if !self.dialogs.is_empty() => {
                let expires = match *op {
                    Op::Refresh(_, e) => e,
                    _ => 0,
                };
                let (watcher, call, tag) = self.dialogs[i % self.dialogs.len()].clone();
                let Some(flow) = self.registered_flow(watcher) else {
                    return;
                };
                let text = subscribe(
                    USERS[watcher],
                    USERS[watcher],
                    &call,
                    &format!("Event: presence\nExpires: {expires}"),
                )
                .replace(
                    &format!("To: <sip:{}>", USERS[watcher]),
                    &format!("To: <sip:{}>;tag={tag}", USERS[watcher]),
                )
                .replace(
                    "CSeq: 1 SUBSCRIBE",
                    &format!("CSeq: {} SUBSCRIBE", self.calls + 2),
                );
                let text = if call.starts_with('b') {
                    text.replace(
                        &format!("From: <sip:{}>;tag=ft-{call}", USERS[watcher]),
                        &format!("From: <sip:{}>;tag={call}-tag", USERS[watcher]),
                    )
                } else {
                    text
                };
                self.calls += 1;
                let _ = self.h.send(USERS[watcher], flow, &text);
            }
            Op::Refresh(..) | Op::Unsubscribe(_) => {}
            Op::PublishPidf(u, s) => {
                let body = [PIDF_OPEN, PIDF_BUSY, PIDF_AWAY][usize::from(s)]
                    .replace("carol@", &format!("u{u}@"));
                let text = rfc3903::publish(1, "Expires: 120", Some(&body))
                    .replace("carol@example.test", USERS[u]);
                let _ = self.h.send(USERS[u], 99, &text);
            }
            Op::PublishCategory(u, a) => {
                let v = self.versions.get(&u).copied().unwrap_or(0);
                let body = publish_body(
                    USERS[u],
                    &[state_pub("userState", 536_870_912, 2, v, "user", a)],
                );
                let r = self.h.send(
                    USERS[u],
                    98,
                    &service(USERS[u], &format!("u{u}e0"), 1, PUBLISH_CT, &body),
                );
                if r.status() == 200 {
                    self.versions.insert(u, v + 1);
                }
                if r.status() == 409 {
                    self.versions.insert(u, 0);
                }
            }
            Op::Advance(s) => self.h.advance(Duration::from_secs(u64::from(s))),
            Op::Answer(i, status) if !self.pending.is_empty() => {
                let id = self.pending.swap_remove(i % self.pending.len());
                self.h.engine.on_notify_response(self.h.now, id, status);
            }
            Op::Timeout(i) if !self.pending.is_empty() => {
                let id = self.pending.swap_remove(i % self.pending.len());
                self.h.engine.on_notify_timeout(self.h.now, id);
            }
            Op::Answer(..) | Op::Timeout(_) => {}
        }
    }

    /// Drains the outbound queue, checking properties 2 and 3 on every request.
    fn observe(&mut self, live_before: &HashSet<String>) -> Result<(), TestCaseError> {
        for (o, r) in self.h.outbound() {
            if let OutboundKind::Notify(id) = o.kind {
                self.pending.push(id);
            }
            let key = (
                r.call_id().to_owned(),
                r.from().tag().unwrap_or_default().to_owned(),
            );
            prop_assert!(
                !self.terminated.contains(&key),
                "NOTIFY after the final one in {key:?}"
            );
            let seq = r.cseq().seq;
            if let Some(&last) = self.last_cseq.get(&key) {
                prop_assert!(seq > last, "CSeq {seq} after {last} in {key:?}");
            }
            self.last_cseq.insert(key.clone(), seq);
            let state = hdr(&r, "Subscription-State").unwrap_or_default();
            if state.starts_with("terminated") {
                self.terminated.insert(key);
            } else {
                let tag = r.from().tag().unwrap_or_default();
                prop_assert!(
                    live_before.contains(tag),
                    "active NOTIFY for a subscription that was not live"
                );
            }
        }
        Ok(())
    }

    /// The dialog tags of the subscriptions live now.
    fn live(&self) -> HashSet<String> {
        let e = &self.h.engine;
        (0..e.subs.len())
            .filter(|&i| e.subs[i].is_some())
            .map(|i| e.local_tag(e.sid_of(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect()
    }

    /// Property 1 and the consistency of the indexes.
    fn check(&self) -> Result<(), TestCaseError> {
        let e = &self.h.engine;
        let mut live = 0;
        for (index, slot) in e.subs.iter().enumerate() {
            let Some(s) = slot else { continue };
            live += 1;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let w = e.user(s.watcher);
            prop_assert!(
                !w.endpoints.is_empty(),
                "live subscription of a signed-out watcher {}",
                w.aor
            );
            prop_assert!(w.own.contains(&index));
            match &s.target {
                Target::One { presentity, .. } => {
                    prop_assert!(e.user(*presentity).watchers.contains(&index));
                }
                Target::List(l) => {
                    for entry in &l.entries {
                        prop_assert!(e.user(entry.presentity).watchers.contains(&index));
                    }
                }
                Target::Own => {}
            }
        }
        prop_assert_eq!(live, e.subscription_count());
        for u in e.users.iter().flatten() {
            let expected: u32 = u
                .own
                .iter()
                .filter_map(|&i| e.subs[i as usize].as_ref())
                .map(Sub::resources)
                .sum();
            prop_assert_eq!(u.watched, expected, "quota count of {}", u.aor);
            for &w in &u.watchers {
                prop_assert!(e.subs[w as usize].is_some(), "dangling watcher entry");
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn rfc6665_invariants_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..48)) {
        let mut w = World {
            h: Harness::with(EngineConfig { poll_burst: 1000, ..EngineConfig::default() }),
            registered: HashSet::new(),
            dialogs: Vec::new(),
            pending: Vec::new(),
            last_cseq: HashMap::new(),
            terminated: HashSet::new(),
            calls: 0,
            versions: HashMap::new(),
        };
        for op in &ops {
            let live = w.live();
            let known = w.dialogs.len();
            w.apply(op);
            // Dialogs created by this very operation count as live.
            let live: HashSet<String> = live
                .into_iter()
                .chain(w.dialogs[known..].iter().map(|(_, _, t)| t.clone()))
                .collect();
            w.observe(&live)?;
            w.check()?;
        }
        let live = w.live();
        w.h.advance(Duration::from_secs(86_400));
        w.observe(&live)?;
        w.check()?;
        prop_assert_eq!(w.h.engine.subscription_count(), 0, "everything expires eventually");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever body arrives, the answer is a response, never a panic.
    #[test]
    fn network_bodies_never_panic(
        body in "[ -~<>/=\"]{0,200}",
        which in 0..6usize,
    ) {
        let mut h = Harness::new();
        let flow = h.register(USERS[0], "e0");
        let ct = [
            PUBLISH_CT,
            "application/msrtc-setcontainermembers+xml",
            "application/SOAP+xml",
            "application/msrtc-presence-setsubscriber+xml",
            "application/msrtc-adrl-categorylist+xml",
            "application/pidf+xml",
        ][which];
        let status = if which >= 4 {
            let method_body = format!("Event: presence\nContent-Type: {ct}\n\n{body}");
            let text = if which == 4 {
                subscribe(USERS[0], USERS[0], "fz", &method_body)
            } else {
                rfc3903::publish(1, "", Some(&body)).replace("carol@example.test", USERS[0])
            };
            h.send(USERS[0], flow, &text).status()
        } else {
            h.send(USERS[0], flow, &service(USERS[0], "e0", 1, ct, &body)).status()
        };
        prop_assert!((200..600).contains(&status));
    }
}

#[test]
fn the_engine_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Engine<u32>>();
    send::<Outbound<u32>>();
}
