//! Presence peers: a SIP user agent over UDP that sends PUBLISH, SUBSCRIBE and SERVICE
//! (answering the server's Digest challenge), keeps the subscription dialogs it creates, and
//! collects, checks and answers the NOTIFY and BENOTIFY requests the server sends it.
//!
//! Requests the server sends arrive on the same socket as the answers to ours, in any order:
//! [`Peer::send`] files away every request it reads while waiting for its answer, and
//! [`Peer::expect_request`] takes from that inbox before reading the socket.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use herald_sip::{HeaderName, Limits, Message, Request, Response};

use super::sip::{ANSWER_TIMEOUT, answer, pick_challenge, show, token};
use super::{Account, Req, SipClient};

/// How long a test waits for a notification the server owes it.
pub(crate) const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// `application/pidf+xml`.
pub(crate) const PIDF: &str = "application/pidf+xml";
/// Lync category publication (lync-exchange-facts §1.6).
pub(crate) const CATEGORY_PUBLISH: &str = "application/msrtc-category-publish+xml";
/// Lync category documents in notifications.
pub(crate) const CATEGORIES: &str = "application/msrtc-event-categories+xml";
/// The resource-list part of list notifications (RFC 4662).
pub(crate) const RLMI: &str = "application/rlmi+xml";
/// A Lync batched subscription's body (MS-SIP §3.3).
pub(crate) const BATCH_SUBSCRIBE: &str = "application/msrtc-adrl-categorylist+xml";

/// A request the server sent us and when it was read off the socket.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) request: Request,
}

impl Received {
    pub(crate) fn method(&self) -> &str {
        self.request.method().as_str()
    }

    /// A header's value as text ("" when absent).
    pub(crate) fn header(&self, name: &str) -> String {
        self.request.header_str(name).unwrap_or_default().to_owned()
    }

    pub(crate) fn body(&self) -> String {
        String::from_utf8_lossy(self.request.body()).into_owned()
    }

    pub(crate) fn cseq(&self) -> u32 {
        self.request.cseq().seq
    }

    /// The whole request as text, for assertion messages.
    pub(crate) fn show(&self) -> String {
        String::from_utf8_lossy(&self.request.to_bytes()).into_owned()
    }

    /// `Subscription-State` without parameters (`active`, `terminated`).
    pub(crate) fn state(&self) -> String {
        self.header("Subscription-State")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// A `Subscription-State` parameter (`expires`, `reason`).
    pub(crate) fn state_param(&self, name: &str) -> Option<String> {
        self.header("Subscription-State")
            .split(';')
            .skip(1)
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
    }
}

/// A subscription dialog as the subscriber keeps it (RFC 6665 §4.1.2).
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub(crate) uri: String,
    pub(crate) call_id: String,
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) cseq: u32,
    pub(crate) event: String,
}

impl Dialog {
    /// The remote (notifier's) tag: the To tag of the 2xx, the From tag of its notifications.
    pub(crate) fn remote_tag(&self) -> &str {
        self.remote
            .split(";tag=")
            .nth(1)
            .map_or("", |t| t.split(';').next().unwrap_or(t))
    }
}

/// A user agent of one account on one UDP socket.
pub(crate) struct Peer {
    pub(crate) client: SipClient,
    pub(crate) account: Account,
    /// The challenge answered last (whether it came in a 407, its value, the nonce count
    /// used last), reused with a growing nonce count.
    challenge: Option<(bool, String, u32)>,
    inbox: VecDeque<Received>,
    /// When the last request went out (the authenticated try, when one was needed).
    pub(crate) last_sent: Option<Instant>,
    /// Whether to answer Digest challenges (off for peers on a trusted network).
    pub(crate) authenticate: bool,
    /// Whether a retransmitted request is absorbed as a UAS transaction would (answered again
    /// with the status given before, or dropped while the first copy waits in the inbox)
    /// instead of being filed as a new one.
    pub(crate) absorb_retransmissions: bool,
    /// The requests answered so far and their status, by (Call-ID, CSeq, method).
    answered: Vec<((String, u32, String), u16)>,
    /// Every request received so far, by (Call-ID, CSeq, method).
    seen: Vec<(String, u32, String)>,
    /// The Call-ID and last CSeq of this peer's registration.
    register_call_id: String,
    register_cseq: u32,
}

impl Peer {
    pub(crate) fn new(client: SipClient, account: Account) -> Self {
        Self {
            client,
            account,
            challenge: None,
            inbox: VecDeque::new(),
            last_sent: None,
            authenticate: true,
            absorb_retransmissions: true,
            answered: Vec::new(),
            seen: Vec::new(),
            register_call_id: format!("{}@blackbox.test", token()),
            register_cseq: 0,
        }
    }

    /// `sip:user@domain`.
    pub(crate) fn aor(&self) -> String {
        self.account.aor()
    }

    /// A Contact that reaches this peer's socket.
    pub(crate) fn contact(&self) -> String {
        self.client.contact(&self.account.user)
    }

    /// A request from this peer's AOR to `to` (a `sip:` URI, also the Request-URI).
    pub(crate) fn req(&self, method: &str, to: &str) -> Req {
        Req::new(method, to, &self.aor()).to(&format!("<{to}>"))
    }

    /// Sends `req` and returns its final answer. A 401 or 407 is answered with credentials
    /// (the same request with the next CSeq) once per challenge; later requests reuse the
    /// challenge with the next nonce count, as RFC 7616 §3.4 allows.
    #[track_caller]
    pub(crate) fn send(&mut self, req: Req) -> Response {
        let mut req = req;
        let mut fresh_challenges = 0;
        loop {
            let with_auth = if self.authenticate {
                self.authorize(req.clone())
            } else {
                req.clone()
            };
            let r = self.exchange(&with_auth);
            if !matches!(r.status(), 401 | 407) || !self.authenticate || fresh_challenges == 2 {
                return r;
            }
            fresh_challenges += 1;
            let proxy = r.status() == 407;
            let header = if proxy {
                "Proxy-Authenticate"
            } else {
                "WWW-Authenticate"
            };
            self.challenge = Some((proxy, pick_challenge(&r, header, None), 0));
            let next = req.seq() + 1;
            req = req.cseq(next);
        }
    }

    /// `req` with credentials for the challenge answered last (the next nonce count), or as it
    /// is when there was none: for sending the same bytes more than once.
    pub(crate) fn authorize(&mut self, req: Req) -> Req {
        match &mut self.challenge {
            Some((proxy, challenge, nc)) => {
                *nc += 1;
                let auth = answer(
                    challenge,
                    &self.account,
                    &self.account.password,
                    req.method(),
                    req.uri(),
                    *nc,
                );
                let name = if *proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                };
                req.header(name, &auth)
            }
            None => req,
        }
    }

    /// The next message of any kind (requests also go to the inbox), within `timeout`.
    pub(crate) fn next_message(&mut self, timeout: Duration) -> Option<Message> {
        self.read(timeout)
    }

    /// Sends `req` exactly as it is (no credentials) and returns its final answer.
    #[track_caller]
    pub(crate) fn send_plain(&mut self, req: &Req) -> Response {
        self.exchange(req)
    }

    #[track_caller]
    fn exchange(&mut self, req: &Req) -> Response {
        let text = req.text(&self.client);
        self.last_sent = Some(Instant::now());
        self.client.send_raw(text.as_bytes());
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left) {
                Some(Message::Response(r)) => {
                    if r.call_id() == req.call_id_value()
                        && r.cseq().seq == req.seq()
                        && r.cseq().method.as_str() == req.method()
                        && r.status() >= 200
                    {
                        return r;
                    }
                }
                Some(Message::Request(_)) => {}
                None => panic!(
                    "no answer within {ANSWER_TIMEOUT:?} from {} to:\n{text}",
                    self.client.server
                ),
            }
        }
    }

    /// Reads one message; requests also go to the inbox.
    fn read(&mut self, timeout: Duration) -> Option<Message> {
        let raw = self.client.recv_raw(timeout)?;
        let at = Instant::now();
        let message =
            Message::parse(Bytes::from(raw.clone()), &Limits::default()).unwrap_or_else(|e| {
                panic!(
                    "the server sent an unparseable message ({e}):\n{}",
                    String::from_utf8_lossy(&raw)
                )
            });
        if let Message::Request(r) = &message {
            let received = Received {
                at,
                request: r.clone(),
            };
            let key = key_of(r);
            let answered = self
                .answered
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, s)| *s);
            let seen = self.seen.contains(&key);
            match (self.absorb_retransmissions, answered) {
                (true, Some(status)) => self.reply(&received, status),
                (true, None) if seen => {}
                _ => {
                    if !seen {
                        self.seen.push(key);
                    }
                    self.inbox.push_back(received);
                }
            }
        }
        Some(message)
    }

    /// The next request the server sends, within `timeout`.
    pub(crate) fn next_request(&mut self, timeout: Duration) -> Option<Received> {
        if let Some(r) = self.inbox.pop_front() {
            return Some(r);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.read(left)?;
            // A retransmission the peer absorbed leaves the inbox empty: keep reading.
            if let Some(r) = self.inbox.pop_front() {
                return Some(r);
            }
        }
    }

    /// The next request, which must be a `method` (NOTIFY, BENOTIFY).
    #[track_caller]
    pub(crate) fn expect_request(&mut self, method: &str) -> Received {
        let r = self.next_request(NOTIFY_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{} got no {method} within {NOTIFY_TIMEOUT:?}",
                self.account.user
            )
        });
        assert_eq!(r.method(), method, "unexpected request:\n{}", r.show());
        r
    }

    /// The next NOTIFY, answered 200.
    #[track_caller]
    pub(crate) fn expect_notify(&mut self) -> Received {
        let n = self.expect_request("NOTIFY");
        self.reply(&n, 200);
        n
    }

    /// Asserts the server sends nothing for `wait`.
    #[track_caller]
    pub(crate) fn expect_silence(&mut self, wait: Duration) {
        if let Some(r) = self.next_request(wait) {
            panic!(
                "{} expected no request, got:\n{}",
                self.account.user,
                r.show()
            );
        }
    }

    /// Answers a request the server sent with `status` (RFC 3261 §8.2.6).
    pub(crate) fn reply(&mut self, to: &Received, status: u16) {
        let r = &to.request;
        let key = key_of(r);
        if !self.answered.iter().any(|(k, _)| *k == key) {
            self.answered.push((key, status));
        }
        let reason = match status {
            200 => "OK",
            481 => "Call/Transaction Does Not Exist",
            _ => "Whatever",
        };
        let mut t = format!("SIP/2.0 {status} {reason}\r\n");
        for via in r.headers_named(HeaderName::Via) {
            t.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(via)));
        }
        for (name, h) in [
            ("From", HeaderName::From),
            ("To", HeaderName::To),
            ("Call-ID", HeaderName::CallId),
            ("CSeq", HeaderName::CSeq),
        ] {
            let v = r.header_str(h).unwrap_or_default();
            t.push_str(&format!("{name}: {v}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        self.client.send_raw(t.as_bytes());
    }

    /// REGISTER this peer's Contact for `expires` seconds (0 removes it), answering the 401;
    /// `epid` (Lync's endpoint id) goes into From when given.
    #[track_caller]
    pub(crate) fn register(&mut self, expires: u32, epid: Option<&str>) -> Response {
        self.register_cseq += 1;
        let aor = self.aor();
        let mut from = format!("<{aor}>;tag={}", token());
        if let Some(epid) = epid {
            from.push_str(&format!(";epid={epid}"));
        }
        let req = Req::new("REGISTER", &self.account.registrar_uri(), &aor)
            .from(&from)
            .call_id(&self.register_call_id.clone())
            .cseq(self.register_cseq)
            .header("Contact", &self.contact())
            .header("Expires", &expires.to_string());
        let r = self.send(req);
        self.register_cseq = r.cseq().seq;
        r
    }

    /// SUBSCRIBE to `presentity` with `expires` and extra headers; returns the answer and, for
    /// a 2xx, the dialog.
    #[track_caller]
    pub(crate) fn subscribe(
        &mut self,
        presentity: &str,
        expires: u32,
        extra: &[(&str, &str)],
    ) -> (Response, Option<Dialog>) {
        self.subscribe_with_body(presentity, expires, extra, None)
    }

    /// [`Peer::subscribe`] with a body (its Content-Type among `extra`).
    #[track_caller]
    pub(crate) fn subscribe_with_body(
        &mut self,
        presentity: &str,
        expires: u32,
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) -> (Response, Option<Dialog>) {
        let local = format!("<{}>;tag={}", self.aor(), token());
        let mut req = self
            .req("SUBSCRIBE", presentity)
            .from(&local)
            .header("Contact", &self.contact())
            .header("Event", "presence")
            .header("Expires", &expires.to_string());
        if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("Accept")) {
            req = req.header("Accept", PIDF);
        }
        for (n, v) in extra {
            req = req.header(n, v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let call_id = req.call_id_value().to_owned();
        let r = self.send(req);
        let dialog = (200..300).contains(&r.status()).then(|| Dialog {
            uri: presentity.to_owned(),
            call_id,
            local,
            remote: r.header_str(HeaderName::To).unwrap_or_default().to_owned(),
            cseq: r.cseq().seq,
            event: "presence".to_owned(),
        });
        (r, dialog)
    }

    /// A Lync batched SUBSCRIBE (MS-SIP §3.3, sipe-client §3.4) for `presentities` (`sip:`
    /// URIs): one dialog to the subscriber's own AOR, the contact list in an
    /// `application/msrtc-adrl-categorylist+xml` body, notifications as `multipart/related`
    /// RLMI with category parts. Offers neither BENOTIFY nor a piggybacked first notification,
    /// so every notification is a NOTIFY after the 200.
    #[track_caller]
    pub(crate) fn batch_subscribe(
        &mut self,
        presentities: &[&str],
        expires: u32,
    ) -> (Response, Option<Dialog>) {
        let aor = self.aor();
        let resources: String = presentities
            .iter()
            .map(|p| format!(r#"<resource uri="{p}"/>"#))
            .collect();
        let body = format!(
            r#"<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="{aor}" name=""><action name="subscribe" id="1"><adhocList>{resources}</adhocList><categoryList xmlns="http://schemas.microsoft.com/2006/09/sip/categorylist"><category name="calendarData"/><category name="contactCard"/><category name="note"/><category name="state"/></categoryList></action></batchSub>"#
        );
        let accept = format!("{RLMI}, multipart/related, {CATEGORIES}, {PIDF}");
        self.subscribe_with_body(
            &aor,
            expires,
            &[
                ("Require", "adhoclist, categoryList"),
                ("Supported", "eventlist"),
                ("Accept", &accept),
                ("Content-Type", BATCH_SUBSCRIBE),
            ],
            Some(&body),
        )
    }

    /// A SUBSCRIBE inside `dialog` (refresh, or unsubscribe with 0).
    #[track_caller]
    pub(crate) fn resubscribe(&mut self, dialog: &mut Dialog, expires: u32) -> Response {
        dialog.cseq += 1;
        let req = Req::new("SUBSCRIBE", &dialog.uri, &self.aor())
            .from(&dialog.local)
            .to(&dialog.remote)
            .call_id(&dialog.call_id)
            .cseq(dialog.cseq)
            .header("Contact", &self.contact())
            .header("Event", &dialog.event)
            .header("Accept", PIDF)
            .header("Expires", &expires.to_string());
        let r = self.send(req);
        dialog.cseq = r.cseq().seq;
        r
    }

    /// PUBLISH to the peer's own AOR: `body` as PIDF (or none), `extra` headers.
    #[track_caller]
    pub(crate) fn publish(&mut self, body: Option<&str>, extra: &[(&str, &str)]) -> Response {
        let aor = self.aor();
        let mut req = self.req("PUBLISH", &aor).header("Event", "presence");
        for (n, v) in extra {
            req = req.header(n, v);
        }
        if let Some(body) = body {
            req = req.header("Content-Type", PIDF).body(body);
        }
        self.send(req)
    }

    /// SERVICE to the peer's own AOR with `body` of type `content_type`, from endpoint `epid`.
    #[track_caller]
    pub(crate) fn service(&mut self, epid: &str, content_type: &str, body: &str) -> Response {
        let aor = self.aor();
        let req = self
            .req("SERVICE", &aor)
            .from(&format!("<{aor}>;tag={};epid={epid}", token()))
            .header("Contact", &self.contact())
            .header("Content-Type", content_type)
            .body(body);
        self.send(req)
    }
}

/// What identifies a request's retransmissions.
fn key_of(r: &Request) -> (String, u32, String) {
    (
        r.call_id().to_owned(),
        r.cseq().seq,
        r.method().as_str().to_owned(),
    )
}

/// A PIDF document for `entity` (`sip:...`): `basic` status and optional RPID activity.
pub(crate) fn pidf(
    entity: &str,
    basic: &str,
    activity: Option<&str>,
    note: Option<&str>,
) -> String {
    let person = activity.map_or(String::new(), |a| {
        format!(r#"<dm:person id="p1"><rpid:activities><rpid:{a}/></rpid:activities></dm:person>"#)
    });
    let note = note.map_or(String::new(), |n| format!("<note>{n}</note>"));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{entity}">
<tuple id="t1"><status><basic>{basic}</basic></status></tuple>
{person}{note}
</presence>"#
    )
}

/// One Lync `state` publication (SIPE's userState / machineState, sipe-client §3.6).
pub(crate) fn state_publication(
    kind: &str,
    instance: u32,
    container: u16,
    version: u32,
    expire: &str,
    availability: u32,
) -> String {
    let manual = if kind == "userState" { "true" } else { "false" };
    format!(
        r#"<publication categoryName="state" instance="{instance}" container="{container}" version="{version}" expireType="{expire}"><state xmlns="http://schemas.microsoft.com/2006/09/sip/state" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" manual="{manual}" xsi:type="{kind}"><availability>{availability}</availability></state></publication>"#
    )
}

/// A static `note` publication in `container`.
pub(crate) fn note_publication(container: u16, version: u32, text: &str) -> String {
    format!(
        r#"<publication categoryName="note" instance="0" container="{container}" version="{version}" expireType="static"><note xmlns="http://schemas.microsoft.com/2006/09/sip/note"><body type="personal" uri="">{text}</body></note></publication>"#
    )
}

/// A category publication body for `aor` (`sip:...`).
pub(crate) fn category_publish(aor: &str, publications: &[String]) -> String {
    format!(
        r#"<publish xmlns="http://schemas.microsoft.com/2006/09/sip/rich-presence"><publications uri="{aor}">{}</publications></publish>"#,
        publications.concat()
    )
}

/// Asserts a response's status; `what` names the request in the failure message, with the
/// whole response.
#[track_caller]
pub(crate) fn assert_answer(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status(), status, "{what}:\n{}", show(r));
}
