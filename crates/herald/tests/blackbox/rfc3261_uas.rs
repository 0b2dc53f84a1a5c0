//! RFC 3261 §8.2: what a UAS checks before it looks at credentials, in the RFC's order: the
//! method (§8.2.1), the Request-URI scheme (§8.2.2.1), hop count for requests it would forward
//! (§16.3), required extensions (§8.2.2.3), content (§8.2.3); and CANCEL without a transaction
//! (§9.2). None of these needs a user, so none is challenged.

use std::sync::{Arc, Mutex, Weak};

use herald_sip::HeaderName;

use crate::support::sip::{header, headers};
use crate::support::{Req, Server, Setup, SipClient, assert_status, shared, show};

const DOMAIN: &str = "uas.test";
const AOR: &str = "sip:alice@uas.test";

fn server() -> Arc<Server> {
    static SLOT: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    shared(&SLOT, || Setup::new(DOMAIN).tcp(&[]).tls(&[]).start())
}

fn send(req: Req) -> herald_sip::Response {
    let s = server();
    let mut c = SipClient::udp(s.udp());
    req.send(&mut c)
}

fn allow(r: &herald_sip::Response) -> Vec<String> {
    r.header_values(HeaderName::Allow)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// §8.2.1: a known method the UAS does not support gets 405 with an Allow header.
#[test]
fn rfc3261_8_2_1_invite_gets_405_with_allow() {
    let r = send(Req::new("INVITE", "sip:alice@uas.test", AOR));
    assert_status(&r, 405);
    let allow = allow(&r);
    assert!(allow.iter().any(|m| m == "REGISTER"), "{}", show(&r));
    assert!(!allow.iter().any(|m| m == "INVITE"), "{}", show(&r));
    // ACK completes an INVITE server transaction over UDP; herald does not need it to answer.
    assert!(r.to().tag().is_some());
}

/// §8.2.1: an unrecognised method gets 501.
#[test]
fn rfc3261_8_2_1_unknown_method_gets_501() {
    let r = send(Req::new("FROBNICATE", "sip:uas.test", AOR));
    assert_status(&r, 501);
}

/// §8.2.1 comes before §8.2.2.1: an unsupported method with an unsupported URI scheme is 405.
#[test]
fn rfc3261_8_2_1_method_is_checked_before_uri_scheme() {
    let r = send(Req::new("INVITE", "tel:+15551234567", AOR));
    assert_status(&r, 405);
}

/// §8.2.2.1: a Request-URI scheme the UAS does not serve gets 416.
#[test]
fn rfc3261_8_2_2_1_unsupported_uri_scheme_gets_416() {
    let r = send(Req::new("OPTIONS", "tel:+15551234567", AOR));
    assert_status(&r, 416);
}

/// §8.2.2.3: `Require` with an unknown option tag gets 420 listing it in `Unsupported`.
#[test]
fn rfc3261_8_2_2_3_unknown_require_gets_420_with_unsupported() {
    let r = send(
        Req::new("OPTIONS", "sip:uas.test", AOR).header("Require", "frobs, 100rel-of-the-future"),
    );
    assert_status(&r, 420);
    let unsupported: Vec<String> = r
        .header_values(HeaderName::Unsupported)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(
        unsupported,
        ["frobs", "100rel-of-the-future"],
        "{}",
        show(&r)
    );
}

/// §8.2.3: a body in a content coding the UAS does not understand gets 415 with
/// `Accept-Encoding`.
#[test]
fn rfc3261_8_2_3_unknown_content_encoding_gets_415() {
    let r = send(
        Req::new("OPTIONS", "sip:uas.test", AOR)
            .header("Content-Type", "text/plain")
            .header("Content-Encoding", "x-frob")
            .body("hello"),
    );
    assert_status(&r, 415);
    assert!(
        header(&r, HeaderName::AcceptEncoding).is_some(),
        "{}",
        show(&r)
    );
}

/// §16.3 step 3: Max-Forwards 0 on a request for a user (that would be forwarded) gets 483; a
/// REGISTER to the registrar itself is processed (challenged) whatever the count.
#[test]
fn rfc3261_16_3_max_forwards_zero_gets_483_except_register() {
    let r = send(Req::new("OPTIONS", "sip:bob@uas.test", AOR).max_forwards(Some(0)));
    assert_status(&r, 483);
    let r = send(Req::new("REGISTER", "sip:uas.test", AOR).max_forwards(Some(0)));
    assert_status(&r, 401);
}

/// §9.2: a CANCEL that matches no transaction gets 481.
#[test]
fn rfc3261_9_2_cancel_without_transaction_gets_481() {
    let r = send(Req::new("CANCEL", "sip:alice@uas.test", AOR));
    assert_status(&r, 481);
}

/// §10.3 step 2: the To of a REGISTER must be a SIP address of record: 400 otherwise.
#[test]
fn rfc3261_10_3_step_2_register_with_non_sip_to_is_400() {
    let r = send(Req::new("REGISTER", "sip:uas.test", AOR).to("<tel:+15551234567>"));
    assert_status(&r, 400);
}

/// §10.3 step 1: a REGISTER whose Request-URI names another domain is refused without a
/// challenge, even for one of our users.
#[test]
fn rfc3261_10_3_step_1_request_uri_of_another_domain_is_403() {
    let r = send(Req::new("REGISTER", "sip:elsewhere.test", AOR));
    assert_status(&r, 403);
    assert!(headers(&r, "WWW-Authenticate").is_empty(), "{}", show(&r));
}
