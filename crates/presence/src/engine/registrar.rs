//! Registrar events: who is signed in where.

use std::time::Instant;

use herald_registrar::Event;

use super::Engine;
use super::api::{EndpointKey, PresenceReport, PublicationReport, WatcherReport};
use super::state::{EndpointEntry, SubKind, Target, UserId};
use crate::categories::{CategoryValue, ExpireType};
use std::time::Duration;

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    pub(super) fn registrar_event(&mut self, now: Instant, event: Event<F>) {
        match event {
            Event::EndpointRegistered {
                aor,
                endpoint,
                flow,
            } => {
                let Ok(uid) = self.ensure_user(now, &aor) else {
                    return;
                };
                let key = EndpointKey::of(&endpoint);
                let user = self.user_mut(uid);
                user.endpoints.retain(|e| e.binding != endpoint.binding);
                user.endpoints.push(EndpointEntry {
                    binding: endpoint.binding,
                    key,
                    flow,
                });
                self.refresh_user(now, uid);
            }
            Event::EndpointRefreshed {
                aor,
                endpoint,
                flow,
                moved,
            } => {
                let Ok(uid) = self.ensure_user(now, &aor) else {
                    return;
                };
                let user = self.user_mut(uid);
                if !moved && user.endpoints.iter().any(|e| e.binding == endpoint.binding) {
                    // A plain refresh of an endpoint already known: nothing to re-derive.
                    return;
                }
                let old = match user
                    .endpoints
                    .iter_mut()
                    .find(|e| e.binding == endpoint.binding)
                {
                    Some(e) => Some(std::mem::replace(&mut e.flow, flow.clone())),
                    None => {
                        user.endpoints.push(EndpointEntry {
                            binding: endpoint.binding,
                            key: EndpointKey::of(&endpoint),
                            flow: flow.clone(),
                        });
                        None
                    }
                };
                if let Some(old) = old.filter(|o| *o != flow) {
                    let own = self.user(uid).own.clone();
                    for i in own {
                        if let Some(s) = self.subs[i as usize].as_mut()
                            && s.flow == old
                        {
                            s.flow = flow.clone();
                            // The stored row names the flow too.
                            self.persist_sub(now, self.sid_of(i));
                        }
                    }
                }
                self.refresh_user(now, uid);
            }
            Event::EndpointRemoved {
                aor,
                endpoint,
                flow,
                ..
            } => {
                let Some(&uid) = self.by_aor.get(&aor) else {
                    return;
                };
                let key = EndpointKey::of(&endpoint);
                let user = self.user_mut(uid);
                user.endpoints.retain(|e| e.binding != endpoint.binding);
                let key_alive = user.endpoints.iter().any(|e| e.key == key);
                let flow_alive = user.endpoints.iter().any(|e| e.flow == flow);
                if !key_alive {
                    user.published.retain(|p| {
                        !(p.instance.expire_type == Some(ExpireType::Endpoint)
                            && p.endpoint.as_ref() == Some(&key))
                    });
                    user.pidf.retain(|p| p.endpoint.as_ref() != Some(&key));
                }
                if !flow_alive {
                    self.end_own_subs(now, uid, |s| s == &flow);
                }
                self.refresh_user(now, uid);
                self.release.push(uid);
            }
            Event::AorOffline { aor } => {
                let Some(&uid) = self.by_aor.get(&aor) else {
                    return;
                };
                let user = self.user_mut(uid);
                user.endpoints.clear();
                user.pidf.clear();
                user.published.retain(|p| {
                    matches!(
                        p.instance.expire_type,
                        Some(ExpireType::Static | ExpireType::Time)
                    )
                });
                self.end_own_subs(now, uid, |_| true);
                self.refresh_user(now, uid);
                self.release.push(uid);
            }
            _ => {}
        }
    }

    /// Ends, without a NOTIFY (nobody is there to receive it), the subscriptions `uid` holds
    /// on a flow `on` accepts.
    fn end_own_subs(&mut self, now: Instant, uid: UserId, on: impl Fn(&F) -> bool) {
        let own = self.user(uid).own.clone();
        for i in own {
            let sid = self.sid_of(i);
            if self.sub(sid).is_some_and(|s| on(&s.flow)) {
                self.end_sub(now, sid, None);
            }
        }
    }

    pub(super) fn build_report(&self, now: Instant, uid: UserId) -> PresenceReport {
        let user = self.user(uid);
        let now_secs = self.secs(now);
        let mut publications = Vec::new();
        for p in &user.published {
            let i = &p.instance;
            publications.push(PublicationReport {
                key: format!(
                    "{}/{:#x}@{}",
                    i.name,
                    i.instance,
                    i.container.map_or(0, |c| c.value())
                ),
                endpoint: p.endpoint.as_ref().map(|k| k.as_str().to_owned()),
                expiry: i.expire_type.unwrap_or_default().as_str().to_owned(),
                availability: match &i.value {
                    CategoryValue::State(s) => s.availability,
                    _ => None,
                },
            });
        }
        for p in &user.pidf {
            publications.push(PublicationReport {
                key: format!("pidf {}", p.etag),
                endpoint: p.endpoint.as_ref().map(|k| k.as_str().to_owned()),
                expiry: "pidf".to_owned(),
                availability: Some(p.summary.availability),
            });
        }
        let mut watchers = Vec::new();
        for &w in &user.watchers {
            let Some(s) = self.subs[w as usize].as_ref() else {
                continue;
            };
            watchers.push(WatcherReport {
                uri: self.user(s.watcher).uri.to_string(),
                kind: match (&s.target, s.kind) {
                    (Target::List(_), _) => "presence (list)",
                    (_, SubKind::Presence) => "presence",
                    _ => "other",
                },
                expires_in: Duration::from_secs(u64::from(s.expires_at.saturating_sub(now_secs))),
            });
        }
        PresenceReport {
            uri: user.uri.to_string(),
            availability: user.availability,
            activity: user.activity.clone(),
            endpoints: user
                .endpoints
                .iter()
                .map(|e| e.key.as_str().to_owned())
                .collect(),
            publications,
            watchers,
        }
    }
}
