//! Which mailbox a request anchors to, and which server serves it.
//!
//! Mailbox anchoring (brief §3.1–3.2): the front door finds the request's anchor mailbox, asks
//! Active Manager where that mailbox's database is active, and proxies there. Hints are tried
//! in an order that depends on the protocol, most specific first:
//!
//! | path            | order                                                                |
//! |-----------------|----------------------------------------------------------------------|
//! | `/owa`, `/ecp`  | explicit logon in the URL, `X-AnchorMailbox`, backend cookie, user   |
//! | `/ews`          | `X-AnchorMailbox`, backend cookie, user                              |
//! | `/mapi`         | `MailboxId`, `X-AnchorMailbox`, backend cookie, user                 |
//! | `/autodiscover` | `X-AnchorMailbox`, backend cookie, user                              |
//! | `/powershell`   | see below                                                            |
//!
//! A request with no hint at all (an anonymous logon page) goes to any available server.
//! Explicit hints are never silently ignored: an `X-AnchorMailbox` naming nobody is a 404, not
//! a fall-through to the user's own mailbox. Only the backend cookie falls through, because a
//! refused cookie must behave exactly as no cookie (see [`cookie`]).
//!
//! Management shell: when every server is at or above 2013 CU11 / 2016 CU1
//! ([`ShellRouting::Anchored`]), a session anchors to the admin's own mailbox, else to the
//! arbitration mailbox (`SystemMailbox{bb558c35-...}` first). Otherwise the older behaviour
//! applies: any available server (at least the build the client asks for with `ExchClientVer`
//! if one is), kept for the session by a server-pinning backend cookie.

pub mod cookie;
mod request;

use std::fmt;

use http::StatusCode;

pub use request::{
    ANCHOR_MAILBOX, AnchorHint, AnchorRequest, BACKEND_COOKIE, MAX_BACKEND_COOKIES, MAX_HINT_LEN,
    Protocol, RequestError,
};

use crate::active_manager::{ActiveManager, Unavailable};
use crate::build::{BuildNumber, ShellRouting};
use crate::model::{DatabaseName, ExchangeGuid, Mailbox, Server, SmtpAddress, Topology, UserId};
use cookie::{CookieError, CookieKey, CookieTarget};

/// Where a request goes and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The server to proxy to.
    pub backend: Server,
    /// The anchor mailbox, when the route follows one.
    pub mailbox: Option<ExchangeGuid>,
    /// Its database.
    pub database: Option<DatabaseName>,
    /// Which hint decided, for `X-DiagInfo`-style diagnostics.
    pub reason: RouteReason,
}

impl Route {
    /// The cookie target recording this decision for the next request, if it is worth one:
    /// mailbox routes and version-based shell sessions (which must stay on one server).
    pub fn cookie_target(&self) -> Option<CookieTarget> {
        match (&self.mailbox, &self.reason) {
            (Some(guid), _) => Some(CookieTarget::Mailbox {
                guid: *guid,
                server: self.backend.name.clone(),
            }),
            (None, RouteReason::AnyServer(AnyServerWhy::ShellVersionBased { .. }))
            | (None, RouteReason::ShellSession) => {
                Some(CookieTarget::Server(self.backend.name.clone()))
            }
            _ => None,
        }
    }
}

/// The hint that decided a route.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteReason {
    /// The `X-AnchorMailbox` header.
    AnchorMailboxHeader,
    /// An address in the URL (`/owa/shared@contoso.com/`).
    ExplicitLogon,
    /// MAPI's `MailboxId` parameter.
    MapiMailboxId,
    /// A backend cookie herald issued earlier.
    BackEndCookie,
    /// The authenticated user's own mailbox.
    AuthenticatedUser,
    /// The arbitration mailbox, for an admin without a mailbox.
    ArbitrationMailbox,
    /// A version-based shell session kept on its server by its cookie.
    ShellSession,
    /// No mailbox decided; any available server.
    AnyServer(AnyServerWhy),
}

impl fmt::Display for RouteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnchorMailboxHeader => f.write_str("X-AnchorMailbox"),
            Self::ExplicitLogon => f.write_str("explicit logon"),
            Self::MapiMailboxId => f.write_str("MailboxId"),
            Self::BackEndCookie => f.write_str("X-BackEndCookie"),
            Self::AuthenticatedUser => f.write_str("authenticated user's mailbox"),
            Self::ArbitrationMailbox => {
                f.write_str("arbitration mailbox (the admin has no mailbox)")
            }
            Self::ShellSession => f.write_str("shell session cookie"),
            Self::AnyServer(why) => write!(f, "any available server ({why})"),
        }
    }
}

/// Why a request was not anchored to a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnyServerWhy {
    /// The request names no mailbox and carries no identity.
    NoAnchor,
    /// Management shell in an organisation with a server older than 2013 CU11 / 2016 CU1.
    ShellVersionBased {
        /// The oldest build holding the organisation back.
        oldest: BuildNumber,
    },
}

impl fmt::Display for AnyServerWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAnchor => f.write_str("no anchor in the request"),
            Self::ShellVersionBased { oldest } => write!(
                f,
                "version-based shell routing: a server runs {}, older than 2013 CU11 / 2016 CU1",
                oldest.describe()
            ),
        }
    }
}

/// A routing decision, with what happened to any backend cookie on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Where to go.
    pub route: Route,
    /// Why a presented cookie was not used, if one was refused (the request fell back to the
    /// directory lookup).
    pub refused_cookie: Option<CookieError>,
    /// The organisation's management-shell routing, for `/powershell` requests.
    pub shell_routing: Option<ShellRouting>,
}

/// Why no route could be found; answered to the client with [`RouteError::status`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The request names a user or mailbox the directory does not have (404).
    #[error("no user or mailbox {name} (from {source_hint})")]
    UnknownAnchor {
        /// The name as given.
        name: String,
        /// Which hint named it.
        source_hint: &'static str,
    },
    /// The user exists but has no mailbox to anchor to (404).
    #[error("{user} has no mailbox")]
    NoMailbox {
        /// The user.
        user: String,
    },
    /// An admin without a mailbox, in an organisation without an arbitration mailbox, cannot
    /// have an anchored management-shell session (503).
    #[error(
        "cannot anchor the management shell for {user}: the user has no mailbox and the \
         organisation has no arbitration mailbox to fall back to"
    )]
    NoShellAnchor {
        /// The admin.
        user: UserId,
    },
    /// The anchor mailbox's database has no active copy (503).
    #[error(transparent)]
    DatabaseUnavailable(#[from] Unavailable),
    /// No server is available for an unanchored request (503).
    #[error("no mailbox server is available")]
    NoServerAvailable,
}

impl RouteError {
    /// The HTTP status the front door answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownAnchor { .. } | Self::NoMailbox { .. } => StatusCode::NOT_FOUND,
            Self::NoShellAnchor { .. } | Self::DatabaseUnavailable(_) | Self::NoServerAvailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// The inputs of a routing decision that are not in the request.
#[derive(Debug)]
pub struct RouteContext<'a> {
    /// Where databases are active; its topology is the directory consulted.
    pub active_manager: &'a ActiveManager,
    /// Verifies backend cookies.
    pub cookie_key: &'a CookieKey,
    /// Wall-clock seconds since the Unix epoch, for cookie expiry.
    pub now_unix: u64,
    /// Picks among equally good servers for unanchored requests; the proxy passes a hash of
    /// the user so a user's unanchored requests keep landing on one server.
    pub spread: u64,
}

/// Decides where a request goes. `user` is the authenticated user, if any.
pub fn route(
    req: &AnchorRequest,
    user: Option<&UserId>,
    ctx: &RouteContext<'_>,
) -> Result<Decision, RouteError> {
    let topology = ctx.active_manager.topology();
    let mut refused_cookie = None;

    if req.protocol == Protocol::PowerShell {
        let routing = ShellRouting::for_servers(topology.servers().map(|s| &s.build));
        let route = shell_route(req, user, routing, ctx, &mut refused_cookie)?;
        return Ok(Decision {
            route,
            refused_cookie,
            shell_routing: Some(routing),
        });
    }

    if let Some(address) = &req.explicit_logon {
        let mailbox =
            topology
                .mailbox_by_smtp(address)
                .ok_or_else(|| RouteError::UnknownAnchor {
                    name: address.to_string(),
                    source_hint: "explicit logon URL",
                })?;
        return decided(to_mailbox(ctx, mailbox, RouteReason::ExplicitLogon)?, None);
    }
    if let Some(guid) = &req.mailbox_id {
        let mailbox = topology
            .mailbox(guid)
            .ok_or_else(|| RouteError::UnknownAnchor {
                name: guid.to_string(),
                source_hint: "MailboxId",
            })?;
        return decided(to_mailbox(ctx, mailbox, RouteReason::MapiMailboxId)?, None);
    }
    if let Some(hint) = &req.anchor_mailbox {
        let mailbox = resolve_hint(topology, hint)?;
        return decided(
            to_mailbox(ctx, mailbox, RouteReason::AnchorMailboxHeader)?,
            None,
        );
    }
    if let Some(route) = cookie_route(req, user, ctx, &mut refused_cookie) {
        return decided(route, refused_cookie);
    }
    if let Some(user) = user {
        let mailbox = own_mailbox(topology, user)?;
        return decided(
            to_mailbox(ctx, mailbox, RouteReason::AuthenticatedUser)?,
            refused_cookie,
        );
    }
    let route = any_server(ctx, None, AnyServerWhy::NoAnchor)?;
    decided(route, refused_cookie)
}

fn decided(route: Route, refused_cookie: Option<CookieError>) -> Result<Decision, RouteError> {
    Ok(Decision {
        route,
        refused_cookie,
        shell_routing: None,
    })
}

/// The management-shell rules of the module documentation.
fn shell_route(
    req: &AnchorRequest,
    user: Option<&UserId>,
    routing: ShellRouting,
    ctx: &RouteContext<'_>,
    refused_cookie: &mut Option<CookieError>,
) -> Result<Route, RouteError> {
    let topology = ctx.active_manager.topology();
    match routing {
        ShellRouting::Anchored => {
            let Some(user) = user else {
                // The backend will ask for credentials; any server can do that.
                return any_server(ctx, None, AnyServerWhy::NoAnchor);
            };
            if topology.user(user).is_none()
                && topology.mailbox_by_smtp(&SmtpAddress::from(user)).is_none()
            {
                return Err(RouteError::UnknownAnchor {
                    name: user.to_string(),
                    source_hint: "authenticated user",
                });
            }
            if let Some(mailbox) = topology.own_mailbox(user) {
                return to_mailbox(ctx, mailbox, RouteReason::AuthenticatedUser);
            }
            let arbitration = topology.arbitration_mailboxes();
            let mut first_error = None;
            for mailbox in arbitration {
                match to_mailbox(ctx, mailbox, RouteReason::ArbitrationMailbox) {
                    Ok(route) => return Ok(route),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(first_error.unwrap_or(RouteError::NoShellAnchor { user: user.clone() }))
        }
        ShellRouting::VersionBased { oldest } => {
            if let Some(route) = cookie_route(req, user, ctx, refused_cookie) {
                return Ok(route);
            }
            any_server(
                ctx,
                req.exch_client_ver,
                AnyServerWhy::ShellVersionBased { oldest },
            )
        }
    }
}

/// Routes by the first presented cookie that verifies and still leads somewhere; records why
/// the last refused one was refused. Only authenticated requests use cookies.
fn cookie_route(
    req: &AnchorRequest,
    user: Option<&UserId>,
    ctx: &RouteContext<'_>,
    refused: &mut Option<CookieError>,
) -> Option<Route> {
    let principal = user.map_or("", UserId::as_str);
    for value in &req.backend_cookies {
        let target = match ctx.cookie_key.verify(value, principal, ctx.now_unix) {
            Ok(t) => t,
            Err(e) => {
                *refused = Some(e);
                continue;
            }
        };
        let route = match target {
            CookieTarget::Mailbox { guid, .. } => ctx
                .active_manager
                .topology()
                .mailbox(&guid)
                .and_then(|m| to_mailbox(ctx, m, RouteReason::BackEndCookie).ok()),
            CookieTarget::Server(name) if req.protocol == Protocol::PowerShell => ctx
                .active_manager
                .topology()
                .server(&name)
                .filter(|s| ctx.active_manager.is_available(&s.name))
                .map(|s| Route {
                    backend: s.clone(),
                    mailbox: None,
                    database: None,
                    reason: RouteReason::ShellSession,
                }),
            CookieTarget::Server(_) => None,
        };
        match route {
            Some(r) => return Some(r),
            None => *refused = Some(CookieError::Stale),
        }
    }
    None
}

fn resolve_hint<'t>(topology: &'t Topology, hint: &AnchorHint) -> Result<&'t Mailbox, RouteError> {
    match hint {
        AnchorHint::Smtp(address) => {
            if let Some(m) = topology.mailbox_by_smtp(address) {
                return Ok(m);
            }
            let user = UserId::from(address);
            if topology.user(&user).is_some() {
                return topology
                    .own_mailbox(&user)
                    .ok_or_else(|| RouteError::NoMailbox {
                        user: user.to_string(),
                    });
            }
            Err(RouteError::UnknownAnchor {
                name: address.to_string(),
                source_hint: "X-AnchorMailbox",
            })
        }
        AnchorHint::Sid(sid) => {
            let user = topology
                .user_by_sid(sid)
                .ok_or_else(|| RouteError::UnknownAnchor {
                    name: sid.to_string(),
                    source_hint: "X-AnchorMailbox",
                })?;
            topology
                .own_mailbox(&user.id)
                .ok_or_else(|| RouteError::NoMailbox {
                    user: user.id.to_string(),
                })
        }
    }
}

/// The authenticated user's mailbox: their own, or a mailbox whose address is their logon
/// name (a shared mailbox signed into directly).
fn own_mailbox<'t>(topology: &'t Topology, user: &UserId) -> Result<&'t Mailbox, RouteError> {
    if let Some(m) = topology.own_mailbox(user) {
        return Ok(m);
    }
    if let Some(m) = topology.mailbox_by_smtp(&SmtpAddress::from(user)) {
        return Ok(m);
    }
    if topology.user(user).is_some() {
        return Err(RouteError::NoMailbox {
            user: user.to_string(),
        });
    }
    Err(RouteError::UnknownAnchor {
        name: user.to_string(),
        source_hint: "authenticated user",
    })
}

fn to_mailbox(
    ctx: &RouteContext<'_>,
    mailbox: &Mailbox,
    reason: RouteReason,
) -> Result<Route, RouteError> {
    let backend = ctx.active_manager.active_server(&mailbox.database)?;
    Ok(Route {
        backend: backend.clone(),
        mailbox: Some(mailbox.guid),
        database: Some(mailbox.database.clone()),
        reason,
    })
}

/// Any available server, at least `min_build` when one qualifies ("random server ≥
/// ExchClientVer, else any"), chosen by `spread` so one user keeps one server.
fn any_server(
    ctx: &RouteContext<'_>,
    min_build: Option<BuildNumber>,
    why: AnyServerWhy,
) -> Result<Route, RouteError> {
    let topology = ctx.active_manager.topology();
    let available: Vec<&Server> = topology
        .servers()
        .filter(|s| ctx.active_manager.is_available(&s.name))
        .collect();
    let new_enough: Vec<&Server> = match min_build {
        Some(min) => available
            .iter()
            .copied()
            .filter(|s| s.build >= min)
            .collect(),
        None => Vec::new(),
    };
    let pool = if new_enough.is_empty() {
        &available
    } else {
        &new_enough
    };
    if pool.is_empty() {
        return Err(RouteError::NoServerAvailable);
    }
    let index = usize::try_from(ctx.spread % pool.len() as u64).unwrap_or(0);
    Ok(Route {
        backend: pool[index].clone(),
        mailbox: None,
        database: None,
        reason: RouteReason::AnyServer(why),
    })
}

#[cfg(test)]
mod tests;
