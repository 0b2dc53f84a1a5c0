//! Request checks that come before any application logic (RFC 3261 §8.2.1–§8.2.3, §16.3).

use herald_directory::Aor;
use herald_sip::{HeaderName, Method, Request, Response, ResponseBuilder, Uri};

use crate::config::FrontendConfig;

/// The methods herald answers itself; others get 405 (known) or 501 (unknown).
const ALLOWED_METHODS: &str = "REGISTER, OPTIONS, ACK, CANCEL";
/// The same with the presence service attached.
const ALLOWED_METHODS_WITH_PRESENCE: &str =
    "REGISTER, OPTIONS, ACK, CANCEL, SUBSCRIBE, PUBLISH, SERVICE";

/// The `Allow` header value for this configuration.
pub(crate) fn allowed_methods(config: &FrontendConfig) -> &'static str {
    if config.presence {
        ALLOWED_METHODS_WITH_PRESENCE
    } else {
        ALLOWED_METHODS
    }
}

/// An error answer decided before authentication.
pub(crate) struct Rejection {
    status: u16,
    reason: &'static str,
    headers: Vec<(HeaderName, String)>,
}

impl Rejection {
    fn new(status: u16, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn warning(self, text: &str) -> Self {
        self.with(HeaderName::Warning, format!("399 herald \"{text}\""))
    }

    pub(crate) fn into_response(self, request: &Request) -> ResponseBuilder {
        let mut r = Response::for_request(request, self.status, self.reason);
        for (name, value) in self.headers {
            r = r.header(name, value);
        }
        r
    }
}

/// The first reason to refuse `request` without looking further, in RFC 3261 §8.2's order:
/// method (§8.2.1), Request-URI scheme, hop count, required extensions (§8.2.2), content
/// encoding (§8.2.3); then the
/// shape of a REGISTER (§10.3 steps 2–3 need a SIP To and parseable Contacts).
pub(crate) fn check(request: &Request, config: &FrontendConfig) -> Option<Rejection> {
    let allow = allowed_methods(config);
    match request.method() {
        Method::Register | Method::Options | Method::Cancel | Method::Ack => {}
        Method::Publish | Method::Subscribe | Method::Service if config.presence => {}
        Method::Extension(_) => {
            return Some(Rejection::new(501, "Not Implemented").with(HeaderName::Allow, allow));
        }
        _ => {
            // NOTIFY and BENOTIFY to the server among them: herald is never a subscriber.
            return Some(Rejection::new(405, "Method Not Allowed").with(HeaderName::Allow, allow));
        }
    }
    let uri = request.uri();
    if !matches!(uri, Uri::Sip(_) | Uri::Sips(_)) {
        return Some(
            Rejection::new(416, "Unsupported URI Scheme")
                .warning(&format!("the {} scheme is not served here", uri.scheme())),
        );
    }
    if matches!(request.method(), Method::Cancel) {
        // §8.2.2.3: Require is ignored in CANCEL (and ACK never reaches here).
        return None;
    }
    // A request for a user with no hops left would have to be forwarded (§16.3 step 3);
    // REGISTER and OPTIONS to the server itself are answered here whatever the count.
    let for_user = uri.sip().is_some_and(|u| u.user().is_some());
    if request.max_forwards() == Some(0)
        && for_user
        && !matches!(request.method(), Method::Register)
    {
        return Some(Rejection::new(483, "Too Many Hops"));
    }
    let unsupported: Vec<&str> = request
        .require()
        .filter(|tag| !(config.presence && understood_with_presence(tag)))
        .collect();
    if !unsupported.is_empty() {
        return Some(
            Rejection::new(420, "Bad Extension")
                .with(HeaderName::Unsupported, unsupported.join(", ")),
        );
    }
    if let Some(enc) = request.header_str(HeaderName::ContentEncoding)
        && !enc.trim().eq_ignore_ascii_case("identity")
        && !request.body().is_empty()
    {
        return Some(
            Rejection::new(415, "Unsupported Media Type")
                .with(HeaderName::AcceptEncoding, "identity"),
        );
    }
    if matches!(request.method(), Method::Register) {
        if !matches!(request.to().uri(), Uri::Sip(_) | Uri::Sips(_)) {
            return Some(
                Rejection::new(400, "Bad Request").warning("To must be a SIP address of record"),
            );
        }
        if request.contacts().is_err() {
            return Some(Rejection::new(400, "Bad Request").warning("malformed Contact"));
        }
        if request.expires().is_err() {
            return Some(Rejection::new(400, "Bad Request").warning("malformed Expires"));
        }
    }
    None
}

/// Extensions the presence service implements, which clients may `Require`: Lync batched
/// subscriptions (`adhoclist`, `categoryList`, MS-SIP §3.3) and RFC 4662 lists (`eventlist`).
fn understood_with_presence(tag: &str) -> bool {
    ["adhoclist", "categorylist", "eventlist"]
        .iter()
        .any(|t| tag.eq_ignore_ascii_case(t))
}

/// Whether a REGISTER's Request-URI names this registrar: one of our domains or a host inside
/// one (`sip.example.test`), one of our aliases, or an IP address (a client that addresses
/// the server directly).
pub(crate) fn request_uri_is_ours(request: &Request, config: &FrontendConfig) -> bool {
    let Some(uri) = request.uri().sip() else {
        return false;
    };
    if uri.host().ip().is_some() || config.domain_of(uri.host_str()).is_some() {
        return true;
    }
    let host = uri.host_str().trim_end_matches('.').to_ascii_lowercase();
    config.domains.iter().any(|d| {
        host == *d
            || host
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

/// The domain whose user the request claims to be: the To of a REGISTER (the address being
/// registered), the From of anything else (the sender). A host that is one of our aliases
/// (our own address, `[sip] domain_aliases`) names the primary domain.
pub(crate) fn identity_domain(request: &Request, config: &FrontendConfig) -> Option<String> {
    let addr = match request.method() {
        Method::Register => request.to(),
        _ => request.from(),
    };
    addr.uri().sip().map(|u| {
        let host = u.host_str();
        config
            .domain_of(host)
            .map_or_else(|| host.to_ascii_lowercase(), str::to_owned)
    })
}

/// The user of ours a SIP URI names, in the directory's canonical form: `alice@example.test`
/// for `sip:Alice@EXAMPLE.test` and, when `192.0.2.1` is one of our aliases, for
/// `sip:alice@192.0.2.1:5060` too (RFC 3261 §10.3 step 1 and §16.4: a request addressed to the
/// server itself is for its domain). `None` for other domains and URIs without a user.
pub(crate) fn local_aor(uri: &Uri, config: &FrontendConfig) -> Option<Aor> {
    let sip = uri.sip()?;
    sip.user()?;
    let domain = config.domain_of(sip.host_str())?;
    let aor = sip.aor();
    let (user, _) = aor.rsplit_once('@')?;
    Aor::parse(&format!("{user}@{domain}")).ok()
}

/// The directory user a Digest username names: `alice@example.test` as it is, or `alice` in
/// the domain the request is about. `None` when that is not a user name of one of our domains.
pub(crate) fn user_of(
    username: &str,
    domain: Option<&str>,
    config: &FrontendConfig,
) -> Option<Aor> {
    let aor = if username.contains('@') {
        Aor::parse(username).ok()?
    } else {
        let domain = domain
            .filter(|d| config.serves(d))
            .unwrap_or(&config.primary_domain);
        Aor::parse(&format!("{username}@{domain}")).ok()?
    };
    config.serves(aor.domain().as_str()).then_some(aor)
}

/// Whether the credentials were computed for this request's Request-URI (RFC 7616 §3.4.6:
/// the server must check the digest-uri names the same resource).
pub(crate) fn digest_uri_matches(request: &Request, digest_uri: &str) -> bool {
    match Uri::parse_str(digest_uri) {
        Ok(uri) => &uri == request.uri(),
        Err(_) => false,
    }
}

/// The answer to an OPTIONS addressed to the server: what it can do.
pub(crate) fn options_response(request: &Request, config: &FrontendConfig) -> ResponseBuilder {
    let mut r = Response::for_request(request, 200, "OK")
        .header(HeaderName::Allow, allowed_methods(config))
        .header(HeaderName::AcceptEncoding, "identity");
    for token in herald_registrar::response::SUPPORTED {
        r = r.header(HeaderName::Supported, token);
    }
    r
}

/// 405 with the methods herald does answer.
pub(crate) fn method_not_allowed(request: &Request, config: &FrontendConfig) -> ResponseBuilder {
    Response::for_request(request, 405, "Method Not Allowed")
        .header(HeaderName::Allow, allowed_methods(config))
}
