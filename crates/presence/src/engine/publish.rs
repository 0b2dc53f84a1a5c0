//! Publication: RFC 3903 PUBLISH of PIDF documents, and Lync category publication through
//! SERVICE (`application/msrtc-category-publish+xml`, lync-exchange-facts §1.6).

use std::time::{Duration, Instant};

use herald_registrar::Aor;
use herald_sip::{HeaderName, Request, Response};

use super::Engine;
use super::api::{AuthenticatedRequest, Reply};
use super::reply::{self, header, plain};
use super::state::{PidfPublication, Published};
use super::store::{PublicationKey, StaticChange, StoredPublication};
use crate::categories::fault::{FaultOperation, WrongDelta};
use crate::categories::publish::{PublishOp, PublishRequest};
use crate::categories::roaming::SELF_CONTENT_TYPE;
use crate::categories::{
    CategoryInstance, CategoryName, CategoryValue, ExpireType, render_categories,
};
use crate::containers::ContainerId;
use crate::pidf;

impl<F: Clone + Eq + std::hash::Hash + std::fmt::Debug> Engine<F> {
    /// RFC 3903 §6.
    pub(super) fn publish(&mut self, now: Instant, req: AuthenticatedRequest<F>) -> Reply {
        let r = &req.request;
        // Step 1: the presentity, which only its owner may publish.
        let target = match self.request_target(r) {
            Ok(a) => a,
            Err(reply) => return *reply,
        };
        if target != req.user {
            return reply::warn(
                r,
                403,
                "Forbidden",
                "only the presentity publishes its state",
            );
        }
        // Step 2.
        match r.event() {
            Ok(Some(e)) if e.package().eq_ignore_ascii_case("presence") => {}
            Ok(_) => return reply::bad_event(r),
            Err(_) => return reply::bad_header(r, "Event"),
        }
        // Step 3 (checked against the store below).
        let if_match = r.sip_if_match();
        if let Some(tag) = if_match
            && (tag.is_empty() || tag.contains([',', ' ', '\t']))
        {
            return reply::warn(
                r,
                400,
                "Bad Request",
                "SIP-If-Match must hold one entity-tag",
            );
        }
        // Step 4.
        let Ok(requested) = r.expires() else {
            return reply::bad_header(r, "Expires");
        };
        let granted = match self.config.publication_expiry.grant(requested) {
            Ok(g) => g,
            Err(min) => return reply::interval_too_brief(r, min),
        };
        // Step 5: the body.
        let parsed = if r.body().is_empty() {
            None
        } else {
            let ct = match r.content_type() {
                Ok(Some(ct)) => ct,
                Ok(None) => return reply::unsupported_media(r, pidf::CONTENT_TYPE),
                Err(_) => return reply::bad_header(r, "Content-Type"),
            };
            if !ct.is("application", "pidf+xml") {
                return reply::unsupported_media(r, pidf::CONTENT_TYPE);
            }
            match pidf::Presence::parse(r.body(), &self.config.limits) {
                Ok(p) => Some((pidf::to_summary(&p), says_closed(&p))),
                Err(e) => return reply::body_error(r, &e, pidf::CONTENT_TYPE),
            }
        };
        let uid = match self.ensure_user(now, &target) {
            Ok(u) => u,
            Err(e) => return reply::store_failed(r, &e),
        };
        let etag = format!("{:x}", self.next_token());
        let expires_at = now + Duration::from_secs(u64::from(granted));
        let max = self.config.max_pidf_publications_per_user as usize;
        let user = self.user_mut(uid);
        match if_match {
            None => {
                let Some((summary, closed)) = parsed else {
                    return reply::warn(r, 400, "Bad Request", "an initial PUBLISH needs a body");
                };
                if granted > 0 {
                    if user.pidf.len() >= max {
                        return reply::quota_exceeded(r, "too many publications");
                    }
                    user.pidf.push(PidfPublication {
                        etag: etag.clone().into_boxed_str(),
                        expires_at,
                        endpoint: req.endpoint.clone(),
                        summary,
                        closed,
                        published_at: now,
                    });
                }
            }
            Some(tag) => {
                let Some(pos) = user.pidf.iter().position(|p| &*p.etag == tag) else {
                    return plain(Response::for_request(r, 412, "Conditional Request Failed"));
                };
                if granted == 0 {
                    user.pidf.remove(pos);
                } else {
                    let p = &mut user.pidf[pos];
                    p.etag = etag.clone().into_boxed_str();
                    p.expires_at = expires_at;
                    if let Some((summary, closed)) = parsed {
                        p.summary = summary;
                        p.closed = closed;
                        p.published_at = now;
                    }
                    if req.endpoint.is_some() {
                        p.endpoint = req.endpoint.clone();
                    }
                }
            }
        }
        self.refresh_user(now, uid);
        plain(
            Response::for_request(r, 200, "OK")
                .header(HeaderName::SipETag, etag)
                .header(HeaderName::Expires, granted.to_string()),
        )
    }

    /// A category publication: check every version first (409 WrongDelta naming each stale
    /// operation, nothing applied), persist the static instances, then apply all operations,
    /// aggregate and notify. The 200 carries the owner's categories as roaming-self so the
    /// client learns the new versions at once (sipe-client §3.6).
    pub(super) fn category_publish(
        &mut self,
        now: Instant,
        req: &AuthenticatedRequest<F>,
        body: PublishRequest,
    ) -> Reply {
        let r = &req.request;
        if !same_user(&body.uri, &req.user) {
            return reply::warn(
                r,
                403,
                "Forbidden",
                "publications must be for the publisher",
            );
        }
        for op in &body.ops {
            if let PublishOp::Publish(p) = op
                && let CategoryValue::State(s) = &p.value
            {
                if !s.kind.is_input() {
                    return reply::warn(
                        r,
                        400,
                        "Bad Request",
                        "the server computes aggregate states",
                    );
                }
                if s.availability
                    .is_some_and(|a| !a.is_publishable() && !a.is_unset())
                {
                    return reply::warn(r, 400, "Bad Request", "availability below 3000");
                }
            }
        }
        let uid = match self.ensure_user(now, &req.user) {
            Ok(u) => u,
            Err(e) => return reply::store_failed(r, &e),
        };
        let wall = self.wall(now);
        let user = self.user(uid);
        let find = |name: &CategoryName, instance: u32, container: ContainerId| {
            user.published.iter().position(|p| {
                p.instance.name == *name
                    && p.instance.instance == instance
                    && p.instance.container == Some(container)
            })
        };
        let mut faults = Vec::new();
        for (i, op) in body.ops.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            match op {
                PublishOp::Publish(p) => {
                    let cur = find(&p.category, p.instance, p.container)
                        .and_then(|pos| user.published[pos].instance.version)
                        .unwrap_or(0);
                    let exists = find(&p.category, p.instance, p.container).is_some();
                    if (exists || !p.is_deletion()) && p.version != cur {
                        faults.push(FaultOperation {
                            index,
                            version: Some(p.version),
                            cur_version: cur,
                        });
                    }
                }
                PublishOp::Remove(rm) => {
                    let cur = find(&rm.category, rm.instance, rm.container)
                        .and_then(|pos| user.published[pos].instance.version);
                    if let (Some(v), Some(c)) = (rm.version, cur)
                        && v != c
                    {
                        faults.push(FaultOperation {
                            index,
                            version: Some(v),
                            cur_version: c,
                        });
                    }
                }
            }
        }
        if !faults.is_empty() {
            let fault = WrongDelta { operations: faults };
            return plain(
                Response::for_request(r, 409, "Conflict")
                    .header(
                        header("ms-diagnostics"),
                        reply::ms_diag(1, "Version mismatch"),
                    )
                    .body(crate::categories::fault::CONTENT_TYPE, fault.render()),
            );
        }

        // Work out the new instances and what the store must learn.
        let mut next = user.published.clone();
        let mut statics = Vec::new();
        for op in &body.ops {
            match op {
                PublishOp::Publish(p) => {
                    let pos = next.iter().position(|x| {
                        x.instance.name == p.category
                            && x.instance.instance == p.instance
                            && x.instance.container == Some(p.container)
                    });
                    let key = PublicationKey {
                        category: p.category.clone(),
                        instance: p.instance,
                        container: p.container,
                    };
                    let was_static = pos.is_some_and(|i| next[i].is_static());
                    if p.is_deletion() {
                        if let Some(i) = pos {
                            next.remove(i);
                        }
                        if was_static {
                            statics.push(StaticChange::Delete(key));
                        }
                        continue;
                    }
                    let expire_type = match p.expire_type {
                        ExpireType::Custom => ExpireType::User,
                        other => other,
                    };
                    let instance = CategoryInstance {
                        name: p.category.clone(),
                        instance: p.instance,
                        publish_time: Some(wall),
                        container: Some(p.container),
                        version: Some(p.version.wrapping_add(1)),
                        expire_type: Some(expire_type),
                        value: p.value.clone(),
                    };
                    if expire_type == ExpireType::Static {
                        statics.push(StaticChange::Put(StoredPublication {
                            key,
                            version: p.version.wrapping_add(1),
                            document: String::from_utf8_lossy(&render_categories(
                                &self.user(uid).uri,
                                [&instance],
                            ))
                            .into_owned(),
                        }));
                    } else if was_static {
                        statics.push(StaticChange::Delete(key));
                    }
                    let expires_at = (expire_type == ExpireType::Time).then(|| {
                        let secs = p.expires.unwrap_or(self.config.publication_expiry.default);
                        now + Duration::from_secs(u64::from(secs))
                    });
                    let published = Published {
                        instance,
                        endpoint: req.endpoint.clone(),
                        expires_at,
                        published_at: now,
                    };
                    match pos {
                        Some(i) => next[i] = published,
                        None => next.push(published),
                    }
                }
                PublishOp::Remove(rm) => {
                    if let Some(i) = next.iter().position(|x| {
                        x.instance.name == rm.category
                            && x.instance.instance == rm.instance
                            && x.instance.container == Some(rm.container)
                    }) {
                        if next[i].is_static() {
                            statics.push(StaticChange::Delete(PublicationKey {
                                category: rm.category.clone(),
                                instance: rm.instance,
                                container: rm.container,
                            }));
                        }
                        next.remove(i);
                    }
                }
            }
        }
        if next.len() > self.config.max_instances_per_user as usize {
            return reply::quota_exceeded(r, "too many category instances");
        }
        if !statics.is_empty()
            && let Err(e) = self.store.write_static_publications(&req.user, &statics)
        {
            return reply::store_failed(r, &e);
        }
        self.user_mut(uid).published = next;
        self.refresh_user(now, uid);
        let (ct, body) = self.roaming_self_body(uid, true, false, false);
        debug_assert_eq!(ct, SELF_CONTENT_TYPE);
        plain(Response::for_request(r, 200, "OK").body(&ct, body))
    }

    /// The presentity a request addresses: its Request-URI as an AOR of a local domain, or of
    /// the primary domain when written at one of our aliases (404 otherwise).
    pub(super) fn request_target(&self, r: &Request) -> Result<Aor, Box<Reply>> {
        r.uri()
            .aor()
            .and_then(|a| self.local_aor(&a))
            .ok_or_else(|| reply::simple(r, 404, "Not Found").into())
    }

    /// `aor` (`user@host`) as a user of ours: itself in a local domain; at one of our aliases
    /// (`alice@192.0.2.1`, `alice@[2001:db8::1]`), the same user of the primary domain; `None`
    /// otherwise.
    pub(super) fn local_aor(&self, aor: &str) -> Option<Aor> {
        let (user, host) = aor.rsplit_once('@')?;
        if let Some(domain) = self.config.alias_target(host) {
            return Aor::parse(&format!("{user}@{domain}")).ok();
        }
        Aor::parse(aor).ok().filter(|a| self.is_local_aor(a))
    }

    /// Whether `aor` is in one of the served domains.
    pub(super) fn is_local_aor(&self, aor: &Aor) -> bool {
        let domain = aor.as_str().rsplit_once('@').map_or("", |(_, d)| d);
        self.config.is_local(domain)
    }
}

/// Whether a PIDF document's tuples say `closed`: at least one does and none says `open`.
fn says_closed(p: &pidf::Presence) -> bool {
    let says = |b: pidf::Basic| p.tuples.iter().any(|t| t.status.basic == Some(b));
    says(pidf::Basic::Closed) && !says(pidf::Basic::Open)
}

/// Whether a URI written in a body (`sip:` optional, any case) names `user`.
pub(crate) fn same_user(uri: &str, user: &Aor) -> bool {
    crate::containers::strip_sip(uri).eq_ignore_ascii_case(user.as_str())
}
