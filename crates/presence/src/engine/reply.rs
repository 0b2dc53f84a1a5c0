//! Building the engine's responses.

use herald_sip::{HeaderName, Request, Response};

use super::api::Reply;
use crate::BodyError;

/// The event packages the engine serves (`Allow-Events` of a 489). No spaces: SIPE splits the
/// value on commas without trimming (sipe-client §3.2).
pub(crate) const ALLOW_EVENTS: &str = "presence,presence.winfo,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2";

/// The methods the engine serves.
pub(crate) const ALLOW: &str = "PUBLISH, SUBSCRIBE, SERVICE";

/// A header name that is a known-good token.
pub(crate) fn header(name: &'static str) -> HeaderName {
    HeaderName::parse(name).expect("header names written in this module are tokens")
}

/// A reply with no dialog.
pub(crate) fn plain(response: herald_sip::ResponseBuilder) -> Reply {
    Reply {
        response,
        dialog_tag: None,
    }
}

/// `code reason` with nothing else.
pub(crate) fn simple(req: &Request, code: u16, reason: &str) -> Reply {
    plain(Response::for_request(req, code, reason))
}

/// `code reason` with a Warning saying why (RFC 3261 §20.43, code 399 "miscellaneous").
pub(crate) fn warn(req: &Request, code: u16, reason: &str, why: &str) -> Reply {
    plain(Response::for_request(req, code, reason).header(HeaderName::Warning, warning(why)))
}

/// `code reason` with Lync's `ms-diagnostics: code;reason="..."` (MS-SIP).
pub(crate) fn diagnosed(req: &Request, code: u16, reason: &str, diag: u32, why: &str) -> Reply {
    plain(
        Response::for_request(req, code, reason)
            .header(header("ms-diagnostics"), ms_diag(diag, why)),
    )
}

/// The `ms-diagnostics` value.
pub(crate) fn ms_diag(diag: u32, why: &str) -> String {
    format!("{diag};reason=\"{}\";source=\"herald\"", sanitize(why))
}

/// 405 with Allow.
pub(crate) fn method_not_allowed(req: &Request) -> Reply {
    plain(Response::for_request(req, 405, "Method Not Allowed").header(HeaderName::Allow, ALLOW))
}

/// 489 with the packages served (RFC 6665 §8.3.2, RFC 3903 §6 step 2).
pub(crate) fn bad_event(req: &Request) -> Reply {
    plain(
        Response::for_request(req, 489, "Bad Event").header(HeaderName::AllowEvents, ALLOW_EVENTS),
    )
}

/// 400 for a header that does not parse.
pub(crate) fn bad_header(req: &Request, name: &str) -> Reply {
    warn(req, 400, "Bad Request", &format!("malformed {name} header"))
}

/// 400 / 413 / 415 for a body the parsers refused (415 lists what is accepted).
pub(crate) fn body_error(req: &Request, e: &BodyError, accept: &str) -> Reply {
    let code = e.status_code();
    let reason = match code {
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        _ => "Bad Request",
    };
    let mut r = Response::for_request(req, code, reason)
        .header(HeaderName::Warning, warning(&e.to_string()));
    if code == 415 {
        r = r.header(HeaderName::Accept, accept);
    }
    plain(r)
}

/// 415 for a Content-Type the request's purpose does not take.
pub(crate) fn unsupported_media(req: &Request, accept: &str) -> Reply {
    plain(
        Response::for_request(req, 415, "Unsupported Media Type")
            .header(HeaderName::Accept, accept),
    )
}

/// 423 with Min-Expires.
pub(crate) fn interval_too_brief(req: &Request, min: u32) -> Reply {
    plain(
        Response::for_request(req, 423, "Interval Too Brief")
            .header(HeaderName::MinExpires, min.to_string()),
    )
}

/// 500 for a store failure: nothing was changed.
pub(crate) fn store_failed(req: &Request, e: &super::StoreError) -> Reply {
    plain(
        Response::for_request(req, 500, "Server Internal Error")
            .header(HeaderName::RetryAfter, "5")
            .header(HeaderName::Warning, warning(&e.to_string())),
    )
}

/// Lync's answer when a limit is reached: 413 with `ms-diagnostics: 2012;reason="quotaExceeded"`
/// (the code and reason Lync puts in an RLMI instance for "Maximum Followers Reached",
/// lync-exchange-facts §1.7).
pub(crate) fn quota_exceeded(req: &Request, what: &str) -> Reply {
    diagnosed(
        req,
        413,
        "Request Entity Too Large",
        QUOTA_DIAG,
        &format!("quotaExceeded: {what}"),
    )
}

/// Lync's diagnostic code for a subscription quota.
pub(crate) const QUOTA_DIAG: u32 = 2012;

fn warning(text: &str) -> String {
    format!("399 herald \"{}\"", sanitize(text))
}

fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .take(200)
        .collect()
}
