//! REGISTER after authentication: from SIP to the registrar core and back (RFC 3261 §10.3).

use std::net::SocketAddr;
use std::time::Instant;

use herald_directory::User;
use herald_registrar::{Aor, Contact, ContactBinding, RegisterError, RegisterRequest, Registrar};
use herald_sip::{ContactList, HeaderName, Request, Response, ResponseBuilder};

use crate::config::FrontendConfig;
use crate::flow::FlowPath;

/// Applies an authenticated REGISTER and builds its answer.
pub(crate) fn handle<F: FlowPath>(
    registrar: &mut Registrar<F>,
    config: &FrontendConfig,
    now: Instant,
    request: &Request,
    user: &User,
    flow: F,
    peer: SocketAddr,
) -> ResponseBuilder {
    // §10.3 step 3: the authenticated user may only change its own bindings. Both sides are
    // compared in the directory's canonical form (case-insensitive user part and domain).
    // A To at one of our aliases (`sip:alice@192.0.2.1`) is the primary domain's user.
    let owns =
        crate::validate::local_aor(request.to().uri(), config).is_some_and(|a| a == user.aor);
    if !owns {
        return Response::for_request(request, 403, "Forbidden").header(
            HeaderName::Warning,
            "399 herald \"credentials do not belong to the address being registered\"",
        );
    }
    let Some(aor) = registrar_aor(user) else {
        return Response::for_request(request, 500, "Server Internal Error");
    };
    let contacts = match request.contacts() {
        Ok(ContactList::Wildcard) => vec![Contact::Wildcard],
        Ok(list) => list
            .contacts()
            .iter()
            .map(binding_of)
            .map(Contact::Binding)
            .collect(),
        Err(_) => {
            return Response::for_request(request, 400, "Bad Request")
                .header(HeaderName::Warning, "399 herald \"malformed Contact\"");
        }
    };
    let register = RegisterRequest {
        aor,
        call_id: request.call_id().to_owned(),
        cseq: request.cseq().seq,
        contacts,
        expires: request.expires().ok().flatten(),
        flow,
        source: peer.to_string(),
        user_agent: request.user_agent().map(str::to_owned),
        epid: request
            .from()
            .param("epid")
            .flatten()
            .map(|e| e.trim_matches('"').to_owned()),
    };
    match registrar.register(now, register) {
        Ok(ok) => {
            let parts = ok.response_parts();
            let mut r = Response::for_request(request, 200, "OK");
            for contact in &parts.contacts {
                r = r.header(HeaderName::Contact, contact);
            }
            r = r
                .header(HeaderName::Expires, parts.expires.to_string())
                .header(HeaderName::AllowEvents, parts.allow_events);
            for token in parts.supported {
                r = r.header(HeaderName::Supported, token);
            }
            r
        }
        Err(e) => {
            let status = e.status_code();
            let mut r = Response::for_request(request, status, e.reason_phrase());
            if let RegisterError::IntervalTooBrief { min_expires } = e {
                r = r.header(HeaderName::MinExpires, min_expires.to_string());
            } else {
                r = r.header(HeaderName::Warning, format!("399 herald \"{e}\""));
            }
            r
        }
    }
}

/// The directory user's address in the registrar's (and presence engine's) form.
pub(crate) fn registrar_aor(user: &User) -> Option<Aor> {
    aor_of(&user.aor)
}

/// A directory address in the registrar's form.
pub(crate) fn aor_of(aor: &herald_directory::Aor) -> Option<Aor> {
    Aor::parse(&format!("{}@{}", aor.user(), aor.domain().as_str())).ok()
}

/// The REGISTER that re-creates a stored binding with `secs` left.
pub(crate) fn restored_request<F>(
    aor: Aor,
    stored: &herald_directory::StoredBinding,
    flow: F,
    secs: u32,
) -> RegisterRequest<F> {
    let mut binding = ContactBinding::new(stored.contact.clone());
    binding.params = stored.params.clone();
    binding.expires = Some(secs);
    binding.q = stored.q;
    binding.instance = stored.instance.clone();
    binding.reg_id = stored.reg_id;
    RegisterRequest {
        aor,
        call_id: stored.call_id.clone(),
        cseq: stored.cseq,
        contacts: vec![Contact::Binding(binding)],
        expires: None,
        flow,
        source: stored.source.clone(),
        user_agent: stored.user_agent.clone(),
        epid: stored.epid.clone(),
    }
}

/// A Contact value as the registrar stores it: the URI, its comparison key (RFC 3261 §19.1.4
/// equality is approximated by the registrar's documented rule), and the header parameters
/// other than `expires`, echoed in every 200 OK.
fn binding_of(contact: &herald_sip::Contact) -> ContactBinding {
    let mut binding = ContactBinding::new(contact.uri().to_string());
    binding.expires = contact.expires();
    binding.q = contact.q();
    binding.instance = contact.instance().map(|i| i.into_owned());
    binding.reg_id = contact.reg_id();
    let mut params = String::new();
    for (name, value) in contact.addr().params() {
        if name.eq_ignore_ascii_case("expires") {
            continue;
        }
        params.push(';');
        params.push_str(name);
        if let Some(v) = value {
            params.push('=');
            params.push_str(v);
        }
    }
    binding.params = params;
    binding
}
