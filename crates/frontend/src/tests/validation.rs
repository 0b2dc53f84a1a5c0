//! Checks made before authentication (RFC 3261 §8.2.1–§8.2.3, §10.3, §16.3 step 3).

use super::*;

const ALLOW: &str = "REGISTER, OPTIONS, ACK, CANCEL";

/// Sends `req` from alice's address and checks it was refused with `status` without a
/// challenge and without a directory lookup.
fn refused(req: &Req, status: u16) -> Sent {
    let mut h = Harness::new();
    let sent = h.udp1(ALICE, &req.text());
    assert_eq!(sent.status(), status, "{}", sent.text());
    assert_echoes(req, &sent);
    assert!(h.lookups.is_empty());
    sent
}

#[test]
fn rfc3261_section_8_2_2_1_tel_request_uri_gets_416() {
    let mut req = Req::options("alice");
    req.uri = "tel:+1-201-555-0123".into();
    let sent = refused(&req, 416);
    assert_eq!(sent.response.reason(), b"Unsupported URI Scheme");
}

#[test]
fn rfc3261_section_8_2_2_1_unknown_scheme_gets_416() {
    let mut req = Req::options("alice");
    req.uri = "im:alice@example.test".into();
    refused(&req, 416);
    let mut req = Req::register("alice");
    req.uri = "urn:service:sos".into();
    refused(&req, 416);
}

#[test]
fn rfc3261_section_8_2_2_1_sips_request_uri_is_served() {
    let mut h = Harness::new();
    let mut req = Req::options("alice");
    req.uri = format!("sips:{DOMAIN}");
    assert_eq!(h.udp1(ALICE, &req.text()).status(), 407);
}

#[test]
fn rfc3261_section_8_2_1_invite_and_subscribe_get_405_with_allow() {
    for method in ["INVITE", "SUBSCRIBE", "MESSAGE", "BYE", "PUBLISH", "NOTIFY"] {
        let mut req = Req::new(method, &format!("sip:bob@{DOMAIN}"));
        req.to = format!("<sip:bob@{DOMAIN}>");
        if method == "SUBSCRIBE" || method == "NOTIFY" {
            req = req.header("Event", "presence");
        }
        let sent = refused(&req, 405);
        assert_eq!(sent.all(HeaderName::Allow), [ALLOW], "{method}");
    }
}

#[test]
fn rfc3261_section_8_2_1_extension_method_gets_501() {
    let req = Req::new("FOOBAR", &format!("sip:{DOMAIN}"));
    let sent = refused(&req, 501);
    assert_eq!(sent.response.reason(), b"Not Implemented");
    assert_eq!(sent.all(HeaderName::Allow), [ALLOW]);
}

#[test]
fn rfc3261_section_8_2_2_3_require_gets_420_listing_unsupported() {
    let req = Req::register("alice")
        .header("Require", "foo, bar")
        .header("Require", "baz");
    let sent = refused(&req, 420);
    assert_eq!(sent.response.reason(), b"Bad Extension");
    let unsupported: Vec<&[u8]> = sent
        .response
        .header_values(HeaderName::Unsupported)
        .collect();
    assert_eq!(unsupported, [&b"foo"[..], b"bar", b"baz"]);
}

#[test]
fn rfc3261_section_16_3_max_forwards_zero_to_a_user_gets_483() {
    let mut req = Req::options("alice");
    req.uri = format!("sip:bob@{DOMAIN}");
    req.max_forwards = Some(0);
    let sent = refused(&req, 483);
    assert_eq!(sent.response.reason(), b"Too Many Hops");
}

#[test]
fn rfc3261_section_16_3_max_forwards_zero_to_the_server_is_answered() {
    let mut h = Harness::new();
    let mut req = Req::options("alice");
    req.max_forwards = Some(0);
    assert_eq!(h.udp1(ALICE, &req.text()).status(), 407);
    // A REGISTER is for the registrar itself whatever its Request-URI says.
    let mut req = Req::register("alice");
    req.uri = format!("sip:alice@{DOMAIN}");
    req.max_forwards = Some(0);
    assert_eq!(h.udp1(ALICE, &req.text()).status(), 401);
}

#[test]
fn rfc3261_section_8_2_3_unsupported_content_encoding_gets_415() {
    let req = Req::options("alice")
        .header("Content-Type", "application/sdp")
        .header("Content-Encoding", "gzip")
        .body("v=0\r\n");
    let sent = refused(&req, 415);
    assert_eq!(sent.header(HeaderName::AcceptEncoding), Some("identity"));
}

#[test]
fn rfc3261_section_8_2_3_identity_or_empty_body_is_not_refused() {
    let mut h = Harness::new();
    let req = Req::options("alice")
        .header("Content-Type", "application/sdp")
        .header("Content-Encoding", "identity")
        .body("v=0\r\n");
    assert_eq!(h.udp1(ALICE, &req.text()).status(), 407);
    let req = Req::options("alice").header("Content-Encoding", "gzip");
    assert_eq!(h.udp1(ALICE, &req.text()).status(), 407);
}

#[test]
fn rfc3261_section_10_3_register_with_non_sip_to_gets_400() {
    let mut req = Req::register("alice");
    req.to = "<tel:+1-201-555-0123>".into();
    let sent = refused(&req, 400);
    assert!(
        sent.header(HeaderName::Warning)
            .is_some_and(|w| w.starts_with("399 ")),
        "{}",
        sent.text()
    );
}

#[test]
fn rfc3261_section_10_3_register_with_malformed_contact_or_expires_gets_400() {
    refused(
        &Req::register("alice")
            .without("Contact")
            .header("Contact", "<sip:alice@192.0.2.10"),
        400,
    );
    refused(&Req::register("alice").header("Expires", "soon"), 400);
}

/// Each request breaks two rules; the answer names the one checked first, in the order
/// validate.rs documents: method, hop count, Require, Content-Encoding, REGISTER shape.
/// (The Request-URI scheme against the method is left to the ignored test below.)
#[test]
fn rfc3261_section_8_2_checks_come_in_documented_order() {
    // Method before hop count and Require.
    let mut req = Req::new("INVITE", &format!("sip:bob@{DOMAIN}")).header("Require", "100rel");
    req.max_forwards = Some(0);
    refused(&req, 405);
    // Extension method before Require.
    refused(
        &Req::new("FOOBAR", &format!("sip:{DOMAIN}")).header("Require", "foo"),
        501,
    );
    // Hop count before Require.
    let mut req = Req::options("alice").header("Require", "foo");
    req.uri = format!("sip:bob@{DOMAIN}");
    req.max_forwards = Some(0);
    refused(&req, 483);
    // Require before Content-Encoding.
    refused(
        &Req::options("alice")
            .header("Require", "foo")
            .header("Content-Encoding", "gzip")
            .body("x"),
        420,
    );
    // Content-Encoding before the To of a REGISTER.
    let mut req = Req::register("alice")
        .header("Content-Encoding", "gzip")
        .body("x");
    req.to = "<tel:+1-201-555-0123>".into();
    refused(&req, 415);
    // Request-URI scheme before Require and Content-Encoding.
    let mut req = Req::options("alice")
        .header("Require", "foo")
        .header("Content-Encoding", "gzip")
        .body("x");
    req.uri = "tel:+1-201-555-0123".into();
    refused(&req, 416);
}

/// RFC 3261 §8.2: "UASs SHOULD process the requests in the order of the steps that follow in
/// this section (that is, starting with authentication, then inspecting the method, the header
/// fields, ...)": method inspection (§8.2.1, 405) comes before the Request-URI check of header
/// inspection (§8.2.2.1, 416). validate.rs says it follows §8.2's order but checks the scheme
/// first (that is §16.3's proxy order).
#[test]
fn rfc3261_section_8_2_method_inspection_precedes_request_uri_scheme() {
    let mut req = Req::new("INVITE", "tel:+1-201-555-0123");
    req.to = "<tel:+1-201-555-0123>".into();
    refused(&req, 405);
}
