//! [MS-SIPAE] message signing: the signed buffer built from SIP header fields, and the
//! per-client security association that signs herald's messages and checks the client's.

use crate::accept::Authenticated;
use crate::header::{AuthenticationInfo, NtlmCredentials};
use crate::session::{Direction, SessionKeys};

/// The NTLM sequence number of every MS-SIPAE signature.
///
/// Not a counter: Office Communicator, OCS and SIPE all sign with 100 (the `...64000000` tail
/// of every `response`/`rspauth`); the per-message counters are `cnum`/`snum`, which are part
/// of the signed text instead.
pub const SIPAE_SEQ_NUM: u32 = 100;

/// The SIP fields a signature covers, as they appear in the message.
///
/// Take them from the message being signed or verified, byte for byte: the peer rebuilds the
/// same text from the same headers, so any normalisation (case, whitespace, URI escaping)
/// breaks the signature. [`MessageFields::from_headers`] extracts them the way SIPE does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageFields<'a> {
    /// The Call-ID header value.
    pub call_id: &'a str,
    /// The CSeq number, as written.
    pub cseq_number: &'a str,
    /// The CSeq method (for responses, the method of the request answered).
    pub cseq_method: &'a str,
    /// The From URI, without the angle brackets.
    pub from_uri: &'a str,
    /// The From tag.
    pub from_tag: &'a str,
    /// The To URI, without the angle brackets.
    pub to_uri: &'a str,
    /// The To tag (empty in an out-of-dialog request).
    pub to_tag: &'a str,
    /// The `sip:` URI of P-Asserted-Identity (or P-Preferred-Identity).
    pub asserted_sip_uri: &'a str,
    /// The `tel:` URI of P-Asserted-Identity (or P-Preferred-Identity).
    pub asserted_tel_uri: &'a str,
    /// The Expires header value, empty when absent.
    pub expires: &'a str,
    /// The status code for a response, `None` for a request.
    pub status_code: Option<u16>,
}

/// Raw header values of one message, the input of [`MessageFields::from_headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderValues<'a> {
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq.
    pub cseq: &'a str,
    /// From.
    pub from: &'a str,
    /// To.
    pub to: &'a str,
    /// The first P-Asserted-Identity, else the first P-Preferred-Identity.
    pub asserted_identity: Option<&'a str>,
    /// Expires.
    pub expires: Option<&'a str>,
    /// The status code for a response.
    pub status_code: Option<u16>,
}

impl<'a> MessageFields<'a> {
    /// Extracts the signed fields from header values exactly as SIPE does
    /// (`sipmsg_breakdown_parse`), so that both ends build the same text.
    ///
    /// URIs are the text between the first `<` and the next `>`; tags the text after `;tag=`
    /// up to the next `;`; the CSeq number is the text before the first space. A From or To
    /// without angle brackets gives an empty URI, as it does in SIPE.
    pub fn from_headers(h: &HeaderValues<'a>) -> Self {
        let (cseq_number, cseq_method) = match h.cseq.split_once(' ') {
            Some((number, method)) => (number, method.trim()),
            None => (h.cseq, ""),
        };
        let (asserted_sip_uri, asserted_tel_uri) = h
            .asserted_identity
            .map(asserted_identity_uris)
            .unwrap_or_default();
        Self {
            call_id: h.call_id,
            cseq_number,
            cseq_method,
            from_uri: part_of(h.from, "<", ">"),
            from_tag: part_of(h.from, ";tag=", ";"),
            to_uri: part_of(h.to, "<", ">"),
            to_tag: part_of(h.to, ";tag=", ";"),
            asserted_sip_uri,
            asserted_tel_uri,
            expires: h.expires.unwrap_or(""),
            status_code: h.status_code,
        }
    }
}

/// The authentication values a signature covers besides the SIP fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFields<'a> {
    /// The scheme: "NTLM".
    pub protocol: &'a str,
    /// `crand` for the client, `srand` for the server.
    pub rand: &'a str,
    /// `cnum` for the client, `snum` for the server.
    pub num: &'a str,
    /// `realm`.
    pub realm: &'a str,
    /// `targetname`.
    pub targetname: &'a str,
}

/// The text that is signed ([MS-SIPAE] §3.2.5.x, SIPE's `sipmsg_breakdown_get_string`): every
/// value in angle brackets, empty ones as `<>`, the status code last for responses only.
///
/// With `version` ≥ 3 (what herald offers):
/// `<protocol><rand><num><realm><targetname><Call-ID><CSeq#><method><From URI><From tag>`
/// `<To URI><To tag><PAI sip URI><PAI tel URI><Expires>[<code>]`; below 3 the legacy form
/// without the To URI and P-Asserted-Identity.
pub fn signature_buffer(version: u32, auth: &AuthFields<'_>, msg: &MessageFields<'_>) -> String {
    let mut fields: Vec<&str> = vec![
        auth.protocol,
        auth.rand,
        auth.num,
        auth.realm,
        auth.targetname,
        msg.call_id,
        msg.cseq_number,
        msg.cseq_method,
        msg.from_uri,
        msg.from_tag,
    ];
    if version >= 3 {
        fields.extend([
            msg.to_uri,
            msg.to_tag,
            msg.asserted_sip_uri,
            msg.asserted_tel_uri,
        ]);
    } else {
        fields.push(msg.to_tag);
    }
    fields.push(msg.expires);
    let mut out = String::new();
    for field in fields {
        out.push('<');
        out.push_str(field);
        out.push('>');
    }
    if let Some(code) = msg.status_code {
        out.push_str(&format!("<{code}>"));
    }
    out
}

/// The header values that frame an NTLM security association, checked once so that every
/// header herald prints from them is one SIPE reads back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipaeParams {
    realm: String,
    targetname: String,
    opaque: String,
    version: Option<u32>,
}

impl SipaeParams {
    /// `realm` must not be empty (SIPE cannot sign with an empty realm); no value may contain
    /// `"`, `\`, `<`, `>` or control characters, since SIPE reads quoted values without
    /// unescaping and the signed text delimits fields with angle brackets. `version` 4 is what
    /// Lync servers and herald send.
    pub fn new(
        realm: &str,
        targetname: &str,
        opaque: &str,
        version: Option<u32>,
    ) -> Result<Self, ParamsError> {
        if realm.is_empty() {
            return Err(ParamsError::EmptyRealm);
        }
        for (field, value) in [
            ("realm", realm),
            ("targetname", targetname),
            ("opaque", opaque),
        ] {
            if value
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '\\' | '<' | '>'))
            {
                return Err(ParamsError::InvalidCharacter { field });
            }
        }
        Ok(Self {
            realm: realm.to_owned(),
            targetname: targetname.to_owned(),
            opaque: opaque.to_owned(),
            version,
        })
    }

    /// `realm`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// `targetname`.
    pub fn targetname(&self) -> &str {
        &self.targetname
    }

    /// `opaque`.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// `version`.
    pub fn version(&self) -> Option<u32> {
        self.version
    }
}

/// A [`SipaeParams`] value SIPE could not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// An empty realm.
    #[error("realm must not be empty")]
    EmptyRealm,
    /// A character that needs escaping or delimits signed fields.
    #[error("{field} contains a quote, backslash, angle bracket or control character")]
    InvalidCharacter {
        /// Which value.
        field: &'static str,
    },
}

/// One client's NTLM security association: the session keys plus the values that frame every
/// signature, and the server's message counter.
///
/// Keep one per authenticated connection (SIPE uses one per registrar connection), created
/// after [`accept`](crate::accept) succeeds.
#[derive(Debug, Clone)]
pub struct SecurityAssociation {
    keys: SessionKeys,
    params: SipaeParams,
    user: String,
    domain: String,
    next_snum: u64,
    highest_cnum: Option<u64>,
}

impl SecurityAssociation {
    /// Wraps the outcome of [`accept`](crate::accept) with the values of the challenge that
    /// started it (the same realm, targetname, opaque and version).
    pub fn new(authenticated: Authenticated, params: SipaeParams) -> Self {
        Self {
            keys: authenticated.keys,
            params,
            user: authenticated.user,
            domain: authenticated.domain,
            next_snum: 1,
            highest_cnum: None,
        }
    }

    /// The authenticated user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The authenticated user's domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The framing values.
    pub fn params(&self) -> &SipaeParams {
        &self.params
    }

    /// The session keys, for signing arbitrary buffers.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// The highest `cnum` verified so far; MS-SIPAE leaves replay handling to the server.
    pub fn highest_cnum(&self) -> Option<u64> {
        self.highest_cnum
    }

    /// Signs a message herald sends and returns its `Authentication-Info` value.
    ///
    /// `srand` is the salt of this message (any 32 random bits, printed as 8 hex digits);
    /// `snum` counts up from 1 per association.
    pub fn sign(&mut self, srand: u32, fields: &MessageFields<'_>) -> AuthenticationInfo {
        let srand = format!("{srand:08X}");
        let snum = self.next_snum.to_string();
        self.next_snum = self.next_snum.saturating_add(1);
        let buffer = signature_buffer(
            self.params.version.unwrap_or(0),
            &AuthFields {
                protocol: PROTOCOL,
                rand: &srand,
                num: &snum,
                realm: &self.params.realm,
                targetname: &self.params.targetname,
            },
            fields,
        );
        let rspauth = self
            .keys
            .sign(Direction::ServerToClient, SIPAE_SEQ_NUM, buffer.as_bytes());
        AuthenticationInfo {
            rspauth,
            srand,
            snum,
            opaque: Some(self.params.opaque.clone()),
            qop: Some("auth".to_owned()),
            targetname: self.params.targetname.clone(),
            realm: self.params.realm.clone(),
        }
    }

    /// Whether `credentials` belong to this association (same opaque, realm and targetname):
    /// the lookup step of [MS-SIPAE] §3.3.5.
    pub fn matches(&self, credentials: &NtlmCredentials) -> bool {
        credentials.opaque.as_deref() == Some(self.params.opaque.as_str())
            && credentials.realm.as_deref() == Some(self.params.realm.as_str())
            && credentials.targetname.as_deref() == Some(self.params.targetname.as_str())
    }

    /// Verifies the client's signature of a request (`crand`, `cnum`, `response` in its
    /// Authorization header). Refuse the request when this fails.
    pub fn verify(
        &mut self,
        credentials: &NtlmCredentials,
        fields: &MessageFields<'_>,
    ) -> Result<(), SignatureError> {
        let missing = |param| SignatureError::MissingParam { param };
        let opaque = credentials.opaque.as_deref().ok_or(missing("opaque"))?;
        let realm = credentials.realm.as_deref().ok_or(missing("realm"))?;
        let targetname = credentials
            .targetname
            .as_deref()
            .ok_or(missing("targetname"))?;
        if opaque != self.params.opaque {
            return Err(SignatureError::OtherAssociation { param: "opaque" });
        }
        if realm != self.params.realm {
            return Err(SignatureError::OtherAssociation { param: "realm" });
        }
        if targetname != self.params.targetname {
            return Err(SignatureError::OtherAssociation {
                param: "targetname",
            });
        }
        let crand = credentials.crand.as_deref().ok_or(missing("crand"))?;
        let cnum = credentials.cnum.as_deref().ok_or(missing("cnum"))?;
        let response = credentials.response.ok_or(missing("response"))?;
        let buffer = signature_buffer(
            self.params.version.unwrap_or(0),
            &AuthFields {
                protocol: PROTOCOL,
                rand: crand,
                num: cnum,
                realm,
                targetname,
            },
            fields,
        );
        self.keys
            .verify(
                Direction::ClientToServer,
                SIPAE_SEQ_NUM,
                buffer.as_bytes(),
                &response,
            )
            .map_err(|_| SignatureError::Mismatch)?;
        if let Ok(n) = cnum.parse::<u64>() {
            self.highest_cnum = Some(self.highest_cnum.map_or(n, |h| h.max(n)));
        }
        Ok(())
    }
}

/// Why a client's message signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A parameter the signature needs is absent.
    #[error("{param} missing from the credentials")]
    MissingParam {
        /// Which parameter.
        param: &'static str,
    },
    /// The credentials name another security association (or a stale one): re-challenge.
    #[error("{param} does not match the security association")]
    OtherAssociation {
        /// Which parameter differs.
        param: &'static str,
    },
    /// The signature is wrong: the message was altered or not signed with this SA's keys.
    #[error("message signature does not verify")]
    Mismatch,
}

/// SIPE's `sipmsg_find_part_of_header`: the text after `before` up to `after` (or the end);
/// empty when `before` is absent.
fn part_of<'a>(header: &'a str, before: &str, after: &str) -> &'a str {
    let Some(start) = header.find(before) else {
        return "";
    };
    let rest = &header[start + before.len()..];
    match rest.find(after) {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// SIPE's `sipmsg_parse_p_asserted_identity`: a bare `tel:` header is the tel URI; otherwise
/// each comma-separated part's `<...>` is classified by scheme, the first of each kind kept.
fn asserted_identity_uris(header: &str) -> (&str, &str) {
    if starts_with_ignore_case(header, "tel:") {
        return ("", header);
    }
    let (mut sip, mut tel) = ("", "");
    for part in header.split(',') {
        let Some(start) = part.find('<') else {
            continue;
        };
        let rest = &part[start + 1..];
        let uri = rest.find('>').map_or(rest, |end| &rest[..end]);
        if starts_with_ignore_case(uri, "sip:") && sip.is_empty() {
            sip = uri;
        } else if starts_with_ignore_case(uri, "tel:") && tel.is_empty() {
            tel = uri;
        }
    }
    (sip, tel)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

const PROTOCOL: &str = "NTLM";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_follows_sipe() {
        let f = MessageFields::from_headers(&HeaderValues {
            call_id: "8592g5DCBa1694i5887m0D0Bt2247b3F38xAE9Fx",
            cseq: "3 REGISTER",
            from: "\"Gabriel Burt\"<sip:gabriel@ocs.provo.novell.com>;tag=2947328781;epid=1234567890",
            to: "<sip:gabriel@ocs.provo.novell.com>;tag=B816D65C2300A32CFA6D371F2AF537FD",
            asserted_identity: None,
            expires: Some("900"),
            status_code: Some(200),
        });
        assert_eq!(f.from_uri, "sip:gabriel@ocs.provo.novell.com");
        assert_eq!(f.from_tag, "2947328781");
        assert_eq!(f.to_tag, "B816D65C2300A32CFA6D371F2AF537FD");
        assert_eq!((f.cseq_number, f.cseq_method), ("3", "REGISTER"));
        // Version 2 (legacy) text, as OCS 2007 signed it.
        let text = signature_buffer(
            2,
            &AuthFields {
                protocol: "NTLM",
                rand: "0878F41B",
                num: "1",
                realm: "SIP Communications Service",
                targetname: "ocs1.ocs.provo.novell.com",
            },
            &f,
        );
        assert_eq!(
            text,
            "<NTLM><0878F41B><1><SIP Communications Service><ocs1.ocs.provo.novell.com>\
             <8592g5DCBa1694i5887m0D0Bt2247b3F38xAE9Fx><3><REGISTER>\
             <sip:gabriel@ocs.provo.novell.com><2947328781><B816D65C2300A32CFA6D371F2AF537FD>\
             <900><200>"
        );
    }

    #[test]
    fn version_4_text_of_a_provisional_response_with_asserted_identity() {
        // SIPE's "v4 signature string" case: a 180 relayed by a Lync front end.
        let f = MessageFields::from_headers(&HeaderValues {
            call_id: "41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x",
            cseq: "1 INVITE",
            from: "\"Sender\"<sip:sender@company.com>;tag=2420628112;epid=54392f1bbf01",
            to: "\"recipient\"<sip:recipient@company.com>;tag=7aee15546a;epid=3102EB8BD1",
            asserted_identity: Some("\"recipient\"<SIP:recipient@company.com>"),
            expires: None,
            status_code: Some(180),
        });
        let text = signature_buffer(
            4,
            &AuthFields {
                protocol: "NTLM",
                rand: "1B6D47A1",
                num: "11",
                realm: "SIP Communications Service",
                targetname: "LOC-COMPANYT-FE03.COMPANY.COM",
            },
            &f,
        );
        assert_eq!(
            text,
            "<NTLM><1B6D47A1><11><SIP Communications Service><LOC-COMPANYT-FE03.COMPANY.COM>\
             <41CEg82ECa0AC8i3DD7mE673t9CF4b19DAxF780x><1><INVITE><sip:sender@company.com>\
             <2420628112><sip:recipient@company.com><7aee15546a><SIP:recipient@company.com>\
             <><><180>"
        );
    }

    #[test]
    fn asserted_identity_forms() {
        assert_eq!(
            asserted_identity_uris("tel:+14085264000"),
            ("", "tel:+14085264000")
        );
        assert_eq!(
            asserted_identity_uris(
                "\"Lunch, Lucas\" <sip:llucas@cisco.com>,<tel:+420123456;ext=88463>"
            ),
            ("sip:llucas@cisco.com", "tel:+420123456;ext=88463")
        );
        assert_eq!(asserted_identity_uris("sip:bare@x"), ("", ""));
    }

    #[test]
    fn part_of_matches_sipe_edge_cases() {
        assert_eq!(part_of("<sip:a@b>;tag=x", ";tag=", ";"), "x");
        assert_eq!(part_of("sip:a@b", "<", ">"), "");
        assert_eq!(part_of("<sip:a@b", "<", ">"), "sip:a@b");
    }

    #[test]
    fn params_refuse_what_sipe_cannot_read_back() {
        assert_eq!(
            SipaeParams::new("", "t", "o", Some(4)),
            Err(ParamsError::EmptyRealm)
        );
        assert_eq!(
            SipaeParams::new("r\"", "t", "o", Some(4)),
            Err(ParamsError::InvalidCharacter { field: "realm" })
        );
        assert_eq!(
            SipaeParams::new("r", "t>", "o", Some(4)),
            Err(ParamsError::InvalidCharacter {
                field: "targetname"
            })
        );
        assert!(
            SipaeParams::new("SIP Communications Service", "fe01", "4C40C5B3", Some(4)).is_ok()
        );
    }
}
