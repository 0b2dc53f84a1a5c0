//! Discovery for herald: how Lync clients find their server.
//!
//! The deployment model ([`topology`]) is the single source: the split-horizon DNS records
//! ([`records`], served by [`dns`]), the autodiscover documents ([`autodiscover`]) and the
//! certificate's names ([`certificate`]) are all derived from it, so they cannot disagree. The
//! client side, the walk `herald discover` performs, is in [`walk`].
//!
//! Protocol logic here is free of I/O: the DNS answerer turns query bytes into answer bytes, the
//! autodiscover service turns request facts into a response, the walk is a state machine that
//! asks for lookups. Thin async adapters (`dns::server`, `autodiscover::router`,
//! `walk::discover`) put them on sockets.

#![warn(missing_docs)]

pub mod autodiscover;
pub mod certificate;
pub mod dns;
pub mod name;
pub mod records;
pub mod topology;
pub mod walk;

pub use dns::{ZoneSet, serve_dns};
pub use name::{Fqdn, NameError};
pub use records::{Record, RecordData, RecordSet, View};
pub use topology::{EXAMPLE_TOML, LocalServer, Topology, TopologyConfig, TopologyError};
