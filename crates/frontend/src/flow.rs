//! Where answers go (RFC 3261 §18.2.2, RFC 3581 §4).

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

use herald_sip::Request;

/// The runtime's handle for a path to a peer: a connection, or a socket and a remote address.
pub trait FlowPath: Clone + Eq + Hash + Debug {
    /// For a datagram flow, the same socket towards another address; `None` for a connection,
    /// whose answers always go back over the connection itself.
    fn datagram_to(&self, peer: SocketAddr) -> Option<Self>;

    /// Whether the flow delivers reliably (a connection): requests sent over it are not
    /// retransmitted (RFC 3261 §17.1.2.2).
    fn is_reliable(&self) -> bool;

    /// A description of the flow that stays valid across a restart, for flows that do
    /// (a datagram path: our socket and the peer's address); `None` for a connection, which
    /// dies with the process. Bindings over such flows are stored so a restart signs nobody out.
    fn persistent(&self) -> Option<String>;

    /// The flow a [`FlowPath::persistent`] description names, if it still can.
    fn from_persistent(text: &str) -> Option<Self>;
}

/// Where the responses to `request` go. Over a connection: back over it. Over UDP: to the
/// source address and port when the client asked for rport (RFC 3581), otherwise to the
/// `received` address at the port in the Via's sent-by (RFC 3261 §18.2.2), 5060 by default.
/// `received` is by definition the source address, so the source is used even when the client
/// wrote a `received` of its own: answers never go to an address a peer names.
pub(crate) fn response_destination<F: FlowPath>(
    flow: &F,
    request: &Request,
    peer: SocketAddr,
) -> F {
    let via = request.top_via();
    if via.rport().is_some() {
        return flow.clone();
    }
    let ip: IpAddr = peer.ip();
    let port = via.sent_by().1.unwrap_or(5060);
    flow.datagram_to(SocketAddr::new(ip, port))
        .unwrap_or_else(|| flow.clone())
}
