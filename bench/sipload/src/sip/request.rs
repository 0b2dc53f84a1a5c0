//! The REGISTER text the generator sends, and the identifiers that let a response name its client.
//!
//! Identifiers are derived, not stored: a per-process `run` number (random) with the client index
//! and CSeq makes every Call-ID, tag, branch and cnonce unique, and the client index is read back
//! out of a response's Call-ID, so matching costs no map lookup.

use std::fmt::{self, Display};
use std::io::Write;
use std::net::SocketAddr;

/// One REGISTER request, written straight into a reusable buffer.
#[derive(Clone, Copy)]
pub struct Register<'a> {
    /// The registrar's domain: Request-URI `sip:<domain>` and the AOR's host.
    pub domain: &'a str,
    /// The user part of the AOR, and of the Contact.
    pub user: &'a str,
    /// The socket's own address: Via sent-by and Contact host:port.
    pub local: SocketAddr,
    /// Identifies this process's run; see [`call_id_client`].
    pub run: u64,
    /// The client's index across all threads.
    pub client: u32,
    /// The CSeq number: one more than the client's previous request.
    pub cseq: u32,
    /// Requested registration interval, in both Contact `expires` and `Expires`.
    pub expires: u32,
    /// The `Authorization` value (Digest credentials), when answering a challenge.
    pub authorization: Option<&'a dyn Display>,
}

impl Register<'_> {
    /// Replaces `out`'s contents with the request; `out` keeps its capacity between requests.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.clear();
        // Writing into a Vec only fails when allocation does, which aborts anyway.
        let _ = self.write_inner(out);
    }

    fn write_inner(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let Register {
            domain,
            user,
            local,
            run,
            client,
            cseq,
            expires,
            authorization,
        } = *self;
        write!(out, "REGISTER sip:{domain} SIP/2.0\r\n")?;
        write!(
            out,
            "Via: SIP/2.0/UDP {local};branch={BRANCH_COOKIE}{run:x}.{client}.{cseq};rport\r\n"
        )?;
        out.extend_from_slice(b"Max-Forwards: 70\r\n");
        write!(out, "From: <sip:{user}@{domain}>;tag={run:x}.{client}\r\n")?;
        write!(out, "To: <sip:{user}@{domain}>\r\n")?;
        write!(out, "Call-ID: {}\r\n", CallId { run, client, local })?;
        write!(out, "CSeq: {cseq} REGISTER\r\n")?;
        write!(
            out,
            "Contact: <sip:{user}@{local};transport=udp>;expires={expires}\r\n"
        )?;
        write!(out, "Expires: {expires}\r\n")?;
        if let Some(credentials) = authorization {
            write!(out, "Authorization: {credentials}\r\n")?;
        }
        out.extend_from_slice(b"User-Agent: sipload\r\nContent-Length: 0\r\n\r\n");
        Ok(())
    }
}

/// The Call-ID of client `client` in run `run`: `<run hex>-<client>@<local ip>`.
#[derive(Clone, Copy, Debug)]
pub struct CallId {
    /// The run number.
    pub run: u64,
    /// The client index.
    pub client: u32,
    /// The socket address whose IP names the host part.
    pub local: SocketAddr,
}

impl Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}@{}", self.run, self.client, self.local.ip())
    }
}

/// The client index a Call-ID written by [`CallId`] in run `run` names; `None` for a Call-ID of
/// another run or process, or one that is not of that shape.
pub fn call_id_client(call_id: &[u8], run: u64) -> Option<u32> {
    let dash = memchr::memchr(b'-', call_id)?;
    let at = dash + 1 + memchr::memchr(b'@', call_id.get(dash + 1..)?)?;
    let run_hex = std::str::from_utf8(&call_id[..dash]).ok()?;
    if u64::from_str_radix(run_hex, 16).ok()? != run || run_hex.len() > 16 {
        return None;
    }
    let index = &call_id[dash + 1..at];
    if index.is_empty() || index.len() > 10 || !index.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(index).ok()?.parse().ok()
}

/// The cnonce for a client's request: unique per run, client and CSeq, lowercase hex.
pub fn cnonce(run: u64, client: u32, cseq: u32, out: &mut String) {
    use fmt::Write as _;
    out.clear();
    let _ = write!(out, "{run:x}{client:08x}{cseq:08x}");
}

/// RFC 3261 §8.1.1.7: every branch starts with this so RFC 2543 servers are told apart.
const BRANCH_COOKIE: &str = "z9hG4bK";

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use herald_sip::{Limits, Message};

    use super::*;

    fn sample(authorization: Option<&dyn Display>) -> Vec<u8> {
        let mut out = Vec::new();
        Register {
            domain: "herald.test",
            user: "load7",
            local: "127.0.0.1:5070".parse().unwrap(),
            run: 0xabc,
            client: 7,
            cseq: 2,
            expires: 600,
            authorization,
        }
        .write_to(&mut out);
        out
    }

    #[test]
    fn rfc3261_section_10_2_register_shape() {
        let text = String::from_utf8(sample(None)).unwrap();
        assert_eq!(
            text,
            "REGISTER sip:herald.test SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc.7.2;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:load7@herald.test>;tag=abc.7\r\n\
             To: <sip:load7@herald.test>\r\n\
             Call-ID: abc-7@127.0.0.1\r\n\
             CSeq: 2 REGISTER\r\n\
             Contact: <sip:load7@127.0.0.1:5070;transport=udp>;expires=600\r\n\
             Expires: 600\r\n\
             User-Agent: sipload\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    /// herald's own parser accepts what the generator sends, credentials included.
    #[test]
    fn herald_sip_parses_the_request() {
        let credentials = herald_auth::answer_challenge(
            r#"Digest realm="herald.test", nonce="n", opaque="o", algorithm=SHA-256, qop="auth""#,
            "load7",
            "pw",
            "REGISTER",
            "sip:herald.test",
            "c1",
            herald_auth::NonceCount(1),
        )
        .unwrap();
        let bytes = Bytes::from(sample(Some(&credentials)));
        let Message::Request(req) = Message::parse(bytes, &Limits::default()).unwrap() else {
            panic!("a request");
        };
        assert_eq!(req.call_id(), "abc-7@127.0.0.1");
        assert_eq!(req.content_length(), Some(0));
        let auth = req.header_str("Authorization").unwrap();
        assert!(auth.starts_with("Digest username=\"load7\""), "{auth}");
        assert!(auth.contains("nc=00000001"), "{auth}");
    }

    #[test]
    fn call_id_names_its_client_only_in_its_own_run() {
        let local = "[::1]:5070".parse().unwrap();
        let text = CallId {
            run: u64::MAX,
            client: u32::MAX,
            local,
        }
        .to_string();
        assert_eq!(text, "ffffffffffffffff-4294967295@::1");
        assert_eq!(call_id_client(text.as_bytes(), u64::MAX), Some(u32::MAX));
        assert_eq!(call_id_client(text.as_bytes(), 1), None);
        for odd in [
            "",
            "-",
            "1-@x",
            "1-2",
            "1-x@y",
            "x-1@y",
            "1-99999999999@y",
            "1-4294967296@y",
        ] {
            assert_eq!(call_id_client(odd.as_bytes(), 1), None, "{odd}");
        }
        assert_eq!(call_id_client(b"1-0@", 1), Some(0));
    }

    #[test]
    fn cnonce_is_unique_hex() {
        let mut a = String::new();
        let mut b = String::new();
        cnonce(1, 2, 3, &mut a);
        cnonce(1, 2, 4, &mut b);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
