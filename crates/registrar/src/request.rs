//! The REGISTER as the registrar needs it: parsed and authenticated by the runtime.

use crate::aor::Aor;

/// An already parsed and authenticated REGISTER (RFC 3261 §10.3 steps 1–5 done by the runtime).
///
/// Keeping this a plain struct of the registrar's own decouples the core from the SIP codec and
/// the auth layer: the runtime fills it from whatever message type it has, and tests build it
/// directly.
#[derive(Debug, Clone)]
pub struct RegisterRequest<F> {
    /// The canonical AOR from the To header (step 5).
    pub aor: Aor,
    /// The Call-ID; with [`Self::cseq`] it orders REGISTERs from one UA (step 7).
    pub call_id: String,
    /// The CSeq sequence number.
    pub cseq: u32,
    /// The Contact header values in the order received. Empty means a query (step 6 skips to 8).
    pub contacts: Vec<Contact>,
    /// The `Expires` header, the second choice for each Contact's expiry (step 7).
    pub expires: Option<u32>,
    /// The connection or flow the REGISTER came on; requests to the endpoint go back over it.
    pub flow: F,
    /// Printable source address (`ip:port/transport`) for admin views.
    pub source: String,
    /// The `User-Agent` header, for admin views.
    pub user_agent: Option<String>,
    /// The `epid` parameter of the From header: the Lync endpoint id, which the server echoes in
    /// the To header of requests to that endpoint and which Lync GRUUs are built from. It is
    /// per-request (From), so it applies to every Contact of the request.
    pub epid: Option<String>,
}

/// One Contact header value.
#[derive(Debug, Clone, PartialEq)]
pub enum Contact {
    /// `Contact: *`, which removes every binding of the AOR (step 6).
    Wildcard,
    /// A contact address to bind.
    Binding(ContactBinding),
}

/// One contact address of a REGISTER, split into what the registrar decides on and what it only
/// has to echo back in the 200 OK.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactBinding {
    /// The Contact URI as received, without the angle brackets, e.g.
    /// `sip:127.0.0.1:34404;transport=tcp;ms-opaque=d3470f2e1d`.
    pub uri: String,
    /// The header parameters after the `>` as received, *without* `expires` (the registrar writes
    /// its own), e.g. `;methods="INVITE, MESSAGE";proxy=replace;+sip.instance="<urn:uuid:…>"`.
    /// Echoed verbatim in the 200 OK so the client recognises its own Contact.
    pub params: String,
    /// The `expires` Contact parameter, the first choice for the expiry (step 7).
    pub expires: Option<u32>,
    /// The `q` parameter in thousandths (`q=0.5` → 500), for routing preference.
    pub q: Option<u16>,
    /// The `+sip.instance` value with the quotes removed (`<urn:uuid:…>`). When present, the
    /// binding is keyed by it (RFC 5626 §6) instead of by the URI, so a client that comes back on
    /// a new port replaces its old binding instead of adding one.
    pub instance: Option<String>,
    /// The RFC 5626 `reg-id`; with the instance it keys the binding, so one device can keep
    /// several flows.
    pub reg_id: Option<u32>,
    /// The URI comparison form (RFC 3261 §19.1.4) if the runtime computes one with the SIP
    /// codec's URI type; otherwise the registrar uses [`crate::contact_key`].
    pub key: Option<String>,
}

impl ContactBinding {
    /// A contact with only a URI: the common case in tests and for plain SIP clients.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            ..Self::default()
        }
    }
}
