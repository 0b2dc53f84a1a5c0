//! Pool homing (MS-SIP §4.1): every user is homed on one Front End server of one of the
//! deployment's pools; a REGISTER that reaches another server, of the same pool or of another,
//! is answered `301` with a Contact for the home server, and the client registers there.

use std::sync::Arc;

use herald_discovery::Topology;
use herald_discovery::topology::Member;
use herald_sip::{HeaderName, Request, Response, ResponseBuilder, ViaTransport};

/// Which server this is, and where clients reach the others.
#[derive(Debug, Clone)]
pub struct Homing {
    /// Every pool of the deployment: a user may be homed on a server of any of them, and
    /// [`Topology::home_of`] is the one rule every server applies.
    pub topology: Arc<Topology>,
    /// This server's member FQDN.
    pub this: String,
    /// The SIP ports every server listens on (the same on all of them, as in a Lync
    /// deployment, where pools use 5061 and 5060).
    pub ports: MemberPorts,
}

/// The SIP ports of a pool member; `None` where the transport is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemberPorts {
    /// TLS.
    pub tls: Option<u16>,
    /// TCP.
    pub tcp: Option<u16>,
    /// UDP.
    pub udp: Option<u16>,
}

impl Homing {
    /// The member `aor` is homed on: the one the directory names (`stored`) in whichever pool
    /// has it, else the one the hash picks (see [`Topology::home_of`]).
    pub fn home_of(&self, aor: &str, stored: Option<&str>) -> &Member {
        self.topology.home_of(aor, stored).1
    }

    /// Whether this server is `aor`'s home.
    pub fn is_home(&self, aor: &str, stored: Option<&str>) -> bool {
        self.home_of(aor, stored)
            .fqdn
            .as_str()
            .eq_ignore_ascii_case(&self.this)
    }

    /// The 301 for a REGISTER of a user homed elsewhere, `None` when this is its home. The
    /// Contact names the home member's first address, on the transport the request came over
    /// (TLS when that transport is off), as a Lync Front End writes it.
    pub(crate) fn redirect(
        &self,
        request: &Request,
        aor: &str,
        stored: Option<&str>,
    ) -> Option<ResponseBuilder> {
        let home = self.home_of(aor, stored);
        if home.fqdn.as_str().eq_ignore_ascii_case(&self.this) {
            return None;
        }
        let address = home.addresses.first()?;
        let host = match address {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        };
        let wanted = match request.top_via().transport() {
            ViaTransport::Udp => ("udp", self.ports.udp),
            ViaTransport::Tcp => ("tcp", self.ports.tcp),
            _ => ("tls", self.ports.tls),
        };
        let (transport, port) = match wanted {
            (t, Some(p)) => (t, p),
            _ => ("tls", self.ports.tls?),
        };
        tracing::info!(user = aor, home = %home.fqdn.as_str(), "redirecting a REGISTER to the home server");
        Some(
            Response::for_request(request, 301, "Redirect request to Home Server").header(
                HeaderName::Contact,
                format!("<sip:{host}:{port};transport={transport}>"),
            ),
        )
    }
}
