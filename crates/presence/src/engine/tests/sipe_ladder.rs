//! sipe-client §6, the sign-in ladder SIPE (pidgin-sipe 1.25) runs, replayed message by
//! message through the engine for two users: what every response and notification must carry
//! for SIPE to sign in, list the buddy, show its presence and publish its own.

use std::time::Instant;

use super::lync::{PUBLISH_CT, note_pub, publish_body, rlmi_of, service, state_pub};
use super::*;
use crate::categories::roaming::{ContactList, RoamingSelf};
use crate::categories::{Categories, CategoryName, CategoryValue};

const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// A SIPE client: its user, epid and flow, and its dialogs' CSeq.
struct Sipe {
    user: &'static str,
    epid: &'static str,
    flow: u32,
    cseq: u32,
}

impl Sipe {
    /// §3.1 REGISTER, as the registrar sees it.
    fn sign_in(h: &mut Harness, user: &'static str, epid: &'static str) -> Self {
        let flow = h.next_flow;
        h.next_flow += 1;
        h.register_on(user, epid, flow, 7200);
        Self {
            user,
            epid,
            flow,
            cseq: 1,
        }
    }

    fn headers(&mut self, method: &str, call: &str) -> String {
        self.cseq += 1;
        let user = self.user;
        format!(
            "{method} sip:{user} SIP/2.0
Via: SIP/2.0/tcp 127.0.0.1:34404;branch=z9hG4bK{call}{cseq}
Max-Forwards: 70
From: <sip:{user}>;tag={call}t;epid={epid}
To: <sip:{user}>
Call-ID: {call}
CSeq: {cseq} {method}
User-Agent: Purple/2.14.12 Sipe/1.25.0 (linux-x86_64)
Contact: <sip:127.0.0.1:34404;transport=tcp;ms-opaque=d3470f2e1d>",
            cseq = self.cseq,
            epid = self.epid,
        )
    }

    /// §3.3: the self-event SUBSCRIBEs share these headers.
    fn self_subscribe(
        &mut self,
        h: &mut Harness,
        event: &str,
        accept: &str,
        body: Option<&str>,
    ) -> Response {
        let mut t = self.headers("SUBSCRIBE", &format!("{event}-{}", self.epid));
        t.push_str(&format!(
            "
Event: {event}
Accept: {accept}
Supported: com.microsoft.autoextend
Supported: ms-benotify
Proxy-Require: ms-benotify
Supported: ms-piggyback-first-notify"
        ));
        if event == "vnd-microsoft-roaming-contacts" {
            t.push_str("\nSupported: ms-ucs");
        }
        if event == "vnd-microsoft-provisioning-v2" {
            t.push_str("\nExpires: 0");
        }
        if let Some(b) = body {
            t.push_str(&format!("\nContent-Type: {accept}\n\n{b}"));
        }
        h.send(self.user, self.flow, &t)
    }

    /// §3.4: the batched presence SUBSCRIBE to self.
    fn batch(&mut self, h: &mut Harness, buddies: &[&str]) -> Response {
        let mut t = self.headers("SUBSCRIBE", &format!("presence-{}", self.epid));
        let resources: String = buddies
            .iter()
            .map(|b| format!(r#"<resource uri="sip:{b}"/>"#))
            .collect();
        t.push_str(&format!(
            r#"
Require: adhoclist, categoryList
Supported: eventlist
Accept: application/rlmi+xml, multipart/related, text/xml+msrtc.pidf, application/msrtc-event-categories+xml, application/xpidf+xml, application/pidf+xml
Supported: ms-piggyback-first-notify
Supported: ms-benotify
Proxy-Require: ms-benotify
Event: presence
Content-Type: application/msrtc-adrl-categorylist+xml

<batchSub xmlns="http://schemas.microsoft.com/2006/01/sip/batch-subscribe" uri="sip:{user}" name="">
<action name="subscribe" id="63792024"><adhocList>{resources}</adhocList>
<categoryList xmlns="http://schemas.microsoft.com/2006/09/sip/categorylist">
<category name="calendarData"/><category name="contactCard"/><category name="note"/><category name="state"/>
</categoryList></action></batchSub>"#,
            user = self.user
        ));
        h.send(self.user, self.flow, &t)
    }

    /// §3.6: a SERVICE.
    fn service(&mut self, h: &mut Harness, ct: &str, body: &str) -> Response {
        self.cseq += 1;
        h.send(
            self.user,
            self.flow,
            &service(self.user, self.epid, self.cseq, ct, body),
        )
    }

    /// The whole §6 ladder up to and including the initial publish; returns the batched
    /// SUBSCRIBE's 200.
    fn ladder(
        &mut self,
        h: &mut Harness,
        buddies: &[&str],
    ) -> (ContactList, RoamingSelf, Response) {
        // roaming-contacts: 200 with the list piggybacked.
        let r = self.self_subscribe(
            h,
            "vnd-microsoft-roaming-contacts",
            "application/vnd-microsoft-roaming-contacts+xml",
            None,
        );
        assert_eq!(r.status(), 200);
        assert!(
            rhdr(&r, "Expires").is_some_and(|e| e != "0"),
            "§3.3: SIPE keeps the dialog"
        );
        assert_eq!(rhdr(&r, "Event"), Some("vnd-microsoft-roaming-contacts"));
        assert_eq!(rhdr(&r, "ms-piggyback-cseq"), Some("1"));
        assert!(rhdr(&r, "Subscription-State").is_none_or(|s| s.contains("active")));
        assert_eq!(
            rhdr(&r, "Content-Type"),
            Some("application/vnd-microsoft-roaming-contacts+xml")
        );
        assert!(r.supported().any(|t| t == "ms-benotify"));
        assert!(!text(r.body()).contains("ucsmode"), "§8 item 3");
        let contacts = ContactList::parse(r.body(), &crate::Limits::DEFAULT).expect("contactList");
        assert!(contacts.delta_num > 0, "MS-SIP: deltaNum is non-zero");

        // roaming-self: 200 with roamingData piggybacked.
        let list = r#"<roamingList xmlns="http://schemas.microsoft.com/2006/09/sip/roaming-self"><roaming type="categories"/><roaming type="containers"/><roaming type="subscribers"/></roamingList>"#;
        let r = self.self_subscribe(
            h,
            "vnd-microsoft-roaming-self",
            "application/vnd-microsoft-roaming-self+xml",
            Some(list),
        );
        assert_eq!(r.status(), 200);
        assert_eq!(rhdr(&r, "Event"), Some("vnd-microsoft-roaming-self"));
        assert_eq!(rhdr(&r, "ms-piggyback-cseq"), Some("1"));
        let roaming = RoamingSelf::parse(r.body(), &crate::Limits::DEFAULT).expect("roamingData");
        assert_eq!(
            roaming.categories.as_ref().map(|c| c.uri.as_str()),
            Some(format!("sip:{}", self.user).as_str())
        );

        // provisioning-v2: a bare 200 and nothing else (§3.3: no group chat).
        let r = self.self_subscribe(
            h,
            "vnd-microsoft-provisioning-v2",
            "application/vnd-microsoft-roaming-provisioning-v2+xml",
            None,
        );
        assert_eq!(r.status(), 200);
        assert!(r.body().is_empty());

        // Buddy presence: one batched SUBSCRIBE (only once there is a contact list).
        let batch = self.batch(h, buddies);
        assert_eq!(batch.status(), 200);

        // The empty <containers> makes SIPE add sameEnterprise / federated (§3.3).
        if roaming.containers.as_ref().is_some_and(Vec::is_empty) {
            let members = r#"<setContainerMembers xmlns="http://schemas.microsoft.com/2006/09/sip/container-management"><container id="200" version="0"><member action="add" type="sameEnterprise"/></container><container id="100" version="0"><member action="add" type="federated"/></container></setContainerMembers>"#;
            let r = self.service(h, "application/msrtc-setcontainermembers+xml", members);
            assert_eq!(r.status(), 200);
        }

        // The first roaming-self processing triggers the initial publish (§3.6).
        let initial = std::fs::read_to_string(format!(
            "{}/tests/fixtures/sipe_3_6_initial_publish.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
        .replace("sip:alice@example.test", &format!("sip:{}", self.user));
        let r = self.service(h, PUBLISH_CT, &initial);
        assert_eq!(r.status(), 200);
        assert_eq!(
            rhdr(&r, "Content-Type"),
            Some("application/vnd-microsoft-roaming-self+xml")
        );
        (contacts, roaming, batch)
    }
}

fn categories_of(body: &Bytes) -> Categories {
    Categories::parse(body, &crate::Limits::DEFAULT).expect("categories")
}

fn availability(c: &Categories) -> Option<u32> {
    c.instances.iter().find_map(|i| match &i.value {
        CategoryValue::State(s) if i.name == CategoryName::State => {
            s.availability.map(|a| a.value())
        }
        _ => None,
    })
}

#[test]
fn sipe_6_sign_in_ladder_buddy_shows_busy_with_name_and_note_then_away() {
    let mut h = Harness::new();
    h.store.set_identity(
        &aor(BOB),
        Identity {
            display_name: Some("Bob Builder".to_owned()),
            email: Some("bob@example.test".to_owned()),
            ..Identity::default()
        },
    );

    // Bob signs in first and sets Busy with a note.
    let mut bob = Sipe::sign_in(&mut h, BOB, "bobepid01");
    bob.ladder(&mut h, &[]);
    let busy = publish_body(
        BOB,
        &[
            state_pub("userState", 536_870_912, 2, 1, "static", 6500),
            state_pub("userState", 536_870_912, 3, 1, "static", 6500),
            state_pub("machineState", 906_501_314, 2, 1, "endpoint", 3500),
            state_pub("machineState", 906_501_314, 3, 1, "endpoint", 3500),
            note_pub(200, 0, "Busy building"),
            note_pub(300, 0, "Busy building"),
            note_pub(400, 0, "Busy building"),
        ],
    );
    assert_eq!(bob.service(&mut h, PUBLISH_CT, &busy).status(), 200);
    h.deliver();

    // Alice has bob on her list (she added him from the client earlier).
    let mut alice = Sipe::sign_in(&mut h, ALICE, "aliceepid1");
    let add = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:setContact xmlns:m="http://schemas.microsoft.com/winrtc/2002/11/sip"><m:displayName></m:displayName><m:groups>1</m:groups><m:subscribed>true</m:subscribed><m:URI>sip:bob@example.test</m:URI><m:externalURI /><m:deltaNum>1</m:deltaNum></m:setContact></s:Body></s:Envelope>"#;
    assert_eq!(
        alice.service(&mut h, "application/SOAP+xml", add).status(),
        200
    );

    let (contacts, _, batch) = alice.ladder(&mut h, &[BOB]);
    assert_eq!(contacts.contacts.len(), 1);
    assert_eq!(contacts.groups[0].name, "~", "shown as Other Contacts");
    let raw = text(&contacts.render());
    assert!(
        raw.contains(r#"uri="bob@example.test""#),
        "§3.3: contact URIs without sip:"
    );

    // The batched SUBSCRIBE's 200 carries bob's presence (piggyback, multipart RLMI).
    assert_eq!(rhdr(&batch, "Event"), Some("presence"));
    assert!(rhdr(&batch, "Expires").is_some_and(|e| e.parse::<u32>().is_ok_and(|e| e > 240)));
    assert!(rhdr(&batch, "ms-piggyback-cseq").is_some());
    let n = rlmi_of(rhdr(&batch, "Content-Type").expect("ct"), batch.body());
    let part = n
        .parts
        .iter()
        .find(|p| p.content_id == BOB)
        .expect("bob's part");
    assert_eq!(part.content_type, "application/msrtc-event-categories+xml");
    let cats = categories_of(&part.body);
    assert_eq!(
        cats.uri, "sip:bob@example.test",
        "§8 item 4: exactly the buddy key"
    );
    assert_eq!(availability(&cats), Some(6500), "SIPE shows busy");
    let body = text(&part.body);
    assert!(
        body.contains("<displayName>Bob Builder</displayName>"),
        "the alias comes from contactCard"
    );
    assert!(body.contains("Busy building"));
    assert!(!body.contains("container="), "§1.7: containers stay hidden");

    // Bob goes Away: alice gets a BENOTIFY in the presence dialog.
    h.deliver();
    let away = publish_body(
        BOB,
        &[
            state_pub("userState", 536_870_912, 2, 2, "static", 15500),
            state_pub("userState", 536_870_912, 3, 2, "static", 15500),
            state_pub("machineState", 906_501_314, 2, 2, "endpoint", 15500),
            state_pub("machineState", 906_501_314, 3, 2, "endpoint", 15500),
        ],
    );
    let start = Instant::now();
    assert_eq!(bob.service(&mut h, PUBLISH_CT, &away).status(), 200);
    let out = h.outbound();
    eprintln!("publish -> notify in the engine: {:?}", start.elapsed());
    let to_alice: Vec<_> = out.iter().filter(|(o, _)| o.flow == alice.flow).collect();
    assert_eq!(to_alice.len(), 1);
    let (o, bn) = to_alice[0];
    assert_eq!(
        o.kind,
        OutboundKind::Benotify,
        "negotiated with ms-benotify"
    );
    assert_eq!(bn.call_id(), format!("presence-{}", alice.epid));
    assert_eq!(bn.from().tag(), batch.to().tag(), "server tag in From");
    assert_eq!(
        bn.to().tag(),
        Some("presence-aliceepid1t"),
        "client tag in To"
    );
    assert_eq!(hdr(bn, "Event"), Some("presence"));
    assert!(hdr(bn, "Subscription-State").is_some_and(|s| s.starts_with("active;expires=")));
    assert!(
        hdr(bn, "Content-Length").is_some(),
        "§3.7: always Content-Length"
    );
    let n = rlmi_of(hdr(bn, "Content-Type").expect("ct"), bn.body());
    assert_eq!(availability(&categories_of(&n.parts[0].body)), Some(15500));

    // Bob signs out: alice sees him Offline.
    h.unregister(BOB, "bobepid01", bob.flow);
    let out = h.outbound();
    let (_, bn) = out
        .iter()
        .find(|(o, _)| o.flow == alice.flow)
        .expect("to alice");
    let n = rlmi_of(hdr(bn, "Content-Type").expect("ct"), bn.body());
    assert_eq!(availability(&categories_of(&n.parts[0].body)), Some(18500));
}

#[test]
fn sipe_6_own_status_change_publishes_and_versions_follow_roaming_self() {
    let mut h = Harness::new();
    let mut alice = Sipe::sign_in(&mut h, ALICE, "aliceepid1");
    alice.ladder(&mut h, &[]);
    h.deliver();
    // SIPE takes the versions for its next publish from the publish 200's roaming-self body.
    let away = publish_body(
        ALICE,
        &[
            state_pub("userState", 536_870_912, 2, 1, "static", 15500),
            state_pub("userState", 536_870_912, 3, 1, "static", 15500),
        ],
    );
    let r = alice.service(&mut h, PUBLISH_CT, &away);
    assert_eq!(r.status(), 200);
    let roaming = RoamingSelf::parse(r.body(), &crate::Limits::DEFAULT).expect("roamingData");
    let cats = roaming.categories.expect("categories");
    let user_state = cats
        .instances
        .iter()
        .find(|i| i.instance == 536_870_912 && i.container.map(|c| c.value()) == Some(2))
        .expect("own userState");
    assert_eq!(user_state.version, Some(2));
    let aggregate = cats
        .instances
        .iter()
        .find(|i| i.instance == 1 && i.container.map(|c| c.value()) == Some(2))
        .expect("aggregateState in container 2 for the owner");
    assert!(
        matches!(&aggregate.value, CategoryValue::State(s) if s.availability.map(|a| a.value()) == Some(15500))
    );
    // A roaming-self NOTIFY carries the categories too.
    let out = h.outbound();
    assert!(
        out.iter()
            .any(|(_, r)| hdr(r, "Event") == Some("vnd-microsoft-roaming-self"))
    );
}
