//! The DNS records of both views, generated from the [`Topology`] (never written by hand, so the
//! zone cannot drift from the deployment), and their renderings for admins who host DNS
//! elsewhere (`herald dns records`).
//!
//! The record names and targets follow the Lync Server 2013 tables: the internal view sends
//! everything to the Front End pool (or the Director for sign-in), the external view to the
//! reverse proxy and the Edge. TTLs: A, AAAA and SRV use the topology's `ttl` (default 300 s, so
//! a changed member is seen within minutes); SOA and NS use 3600 s; negative answers are cached
//! for [`NEGATIVE_TTL`] seconds (the SOA minimum, RFC 2308 §5), so a record added to the topology
//! is seen quickly.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::name::Fqdn;
use crate::topology::{Topology, TopologyError, pool_addresses};

/// Which answer set a client gets: inside the corporate network or outside it (split-horizon DNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Clients in `[topology] internal_networks`.
    Internal,
    /// Every other client.
    External,
}

/// One resource record with the reason it exists, for the admin's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The view that answers it.
    pub view: View,
    /// The owner name.
    pub name: Fqdn,
    /// Seconds a resolver may cache it.
    pub ttl: u32,
    /// Type and data.
    pub data: RecordData,
    /// Why it exists (the Lync table's "purpose" column).
    pub purpose: String,
}

/// The record types herald publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// RFC 2782 service location.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Relative share among equal priorities.
        weight: u16,
        /// The SIP port.
        port: u16,
        /// A name with A/AAAA records in the same zone.
        target: Fqdn,
    },
    /// Name server of the zone.
    Ns(Fqdn),
    /// Start of authority.
    Soa(Soa),
}

/// RFC 1035 §3.3.13 SOA fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// Primary name server.
    pub mname: Fqdn,
    /// Mailbox of the responsible person, `@` written as the first dot.
    pub rname: Fqdn,
    /// Version of the zone (a digest of its records, so it changes when they do).
    pub serial: u32,
    /// Secondary refresh interval.
    pub refresh: u32,
    /// Secondary retry interval.
    pub retry: u32,
    /// Secondary expiry.
    pub expire: u32,
    /// Negative-caching TTL (RFC 2308 §4).
    pub minimum: u32,
}

/// A zone apex served in one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The view.
    pub view: View,
    /// The apex name.
    pub apex: Fqdn,
}

/// Every zone and record of both views.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSet {
    zones: Vec<Zone>,
    records: Vec<Record>,
}

/// Why a view name given on the command line is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown view {0:?}: use internal or external")]
pub struct UnknownView(pub String);

impl View {
    /// Both views, internal first.
    pub const ALL: [View; 2] = [View::Internal, View::External];

    /// The lower-case name used in tables and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Internal => "internal",
            View::External => "external",
        }
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for View {
    type Err = UnknownView;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "internal" => Ok(View::Internal),
            "external" => Ok(View::External),
            _ => Err(UnknownView(s.to_owned())),
        }
    }
}

impl RecordData {
    /// The RR type mnemonic.
    pub fn type_name(&self) -> &'static str {
        match self {
            RecordData::A(_) => "A",
            RecordData::Aaaa(_) => "AAAA",
            RecordData::Srv { .. } => "SRV",
            RecordData::Ns(_) => "NS",
            RecordData::Soa(_) => "SOA",
        }
    }

    /// The RR type code (RFC 1035 §3.2.2, RFC 3596, RFC 2782).
    pub fn type_code(&self) -> u16 {
        match self {
            RecordData::A(_) => TYPE_A,
            RecordData::Aaaa(_) => TYPE_AAAA,
            RecordData::Srv { .. } => TYPE_SRV,
            RecordData::Ns(_) => TYPE_NS,
            RecordData::Soa(_) => TYPE_SOA,
        }
    }

    /// The RDATA in wire form. Names are written uncompressed: RFC 2782 forbids compressing the
    /// SRV target, and doing the same everywhere keeps the answerer simple.
    pub(crate) fn write_rdata(&self, out: &mut Vec<u8>) {
        match self {
            RecordData::A(a) => out.extend_from_slice(&a.octets()),
            RecordData::Aaaa(a) => out.extend_from_slice(&a.octets()),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                out.extend_from_slice(&priority.to_be_bytes());
                out.extend_from_slice(&weight.to_be_bytes());
                out.extend_from_slice(&port.to_be_bytes());
                target.write_wire(out);
            }
            RecordData::Ns(n) => n.write_wire(out),
            RecordData::Soa(s) => {
                s.mname.write_wire(out);
                s.rname.write_wire(out);
                for v in [s.serial, s.refresh, s.retry, s.expire, s.minimum] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
}

impl fmt::Display for RecordData {
    /// Master-file (RFC 1035 §5.1) presentation of the RDATA, names fully qualified.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordData::A(a) => write!(f, "{a}"),
            RecordData::Aaaa(a) => write!(f, "{a}"),
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => write!(f, "{priority} {weight} {port} {target}."),
            RecordData::Ns(n) => write!(f, "{n}."),
            RecordData::Soa(s) => write!(
                f,
                "{}. {}. {} {} {} {} {}",
                s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
        }
    }
}

impl RecordSet {
    /// Generates every record of both views. Fails when two roles claim one name with different
    /// addresses, which [`Topology::from_config`] reports at start.
    pub(crate) fn build(topology: &Topology) -> Result<Self, TopologyError> {
        let mut b = Builder::new(topology);
        b.lync_records();
        b.topology_names();
        b.check_claims()?;
        Ok(b.finish())
    }

    /// The zones of every view.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// Every record, grouped by view and zone.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The records one view answers.
    pub fn view(&self, view: View) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.view == view)
    }

    /// The records at `name` in `view`, of any type.
    pub fn lookup<'a>(&'a self, view: View, name: &'a str) -> impl Iterator<Item = &'a Record> {
        self.view(view).filter(move |r| {
            r.name
                .as_str()
                .eq_ignore_ascii_case(name.trim_end_matches('.'))
        })
    }

    /// An aligned table (view, name, TTL, type, data, purpose) for `herald dns records`.
    pub fn render_table(&self, view: Option<View>) -> String {
        let rows: Vec<[String; 6]> = self
            .records
            .iter()
            .filter(|r| view.is_none_or(|v| v == r.view))
            .map(|r| {
                [
                    r.view.to_string(),
                    r.name.to_string(),
                    r.ttl.to_string(),
                    r.data.type_name().to_owned(),
                    r.data.to_string(),
                    r.purpose.clone(),
                ]
            })
            .collect();
        let header = ["VIEW", "NAME", "TTL", "TYPE", "DATA", "PURPOSE"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[&str]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<w$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&header);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&cells);
        }
        out
    }

    /// RFC 1035 §5 master files for the zones of `view`, one `$ORIGIN` block per zone, names
    /// fully qualified, so an admin can load them into another DNS server.
    pub fn render_zone(&self, view: View) -> String {
        let mut out = format!("; herald: {view} view, generated from the topology\n");
        for zone in self.zones.iter().filter(|z| z.view == view) {
            let _ = write!(out, "\n$ORIGIN {}.\n", zone.apex);
            for r in self.records.iter().filter(|r| {
                r.view == view && self.zone_of(view, &r.name).is_some_and(|z| z == &zone.apex)
            }) {
                let _ = writeln!(
                    out,
                    "{}.\t{}\tIN\t{}\t{}\t; {}",
                    r.name,
                    r.ttl,
                    r.data.type_name(),
                    r.data,
                    r.purpose
                );
            }
        }
        out
    }

    /// The apex of the deepest zone of `view` that holds `name`.
    pub fn zone_of(&self, view: View, name: &Fqdn) -> Option<&Fqdn> {
        self.zones
            .iter()
            .filter(|z| z.view == view && name.is_within(&z.apex))
            .map(|z| &z.apex)
            .max_by_key(|apex| apex.as_str().len())
    }
}

/// Collects address claims per (view, name), then turns them into records.
struct Builder<'t> {
    topology: &'t Topology,
    /// (view, name) → index into `claims`, to find clashes.
    index: HashMap<(View, Fqdn), usize>,
    claims: Vec<Claim>,
    clash: Option<TopologyError>,
    srvs: Vec<Record>,
}

struct Claim {
    view: View,
    name: Fqdn,
    role: String,
    addresses: Vec<IpAddr>,
    purpose: String,
}

impl<'t> Builder<'t> {
    fn new(topology: &'t Topology) -> Self {
        Self {
            topology,
            index: HashMap::new(),
            claims: Vec::new(),
            clash: None,
            srvs: Vec::new(),
        }
    }

    /// The tables of the Lync Server 2013 DNS planning documents, for every SIP domain.
    fn lync_records(&mut self) {
        let t = self.topology;
        let pool = pool_addresses(&t.pools[0].members);
        let registrar = pool_addresses(t.registrar_members());
        let registrar_role = if t.director.is_some() {
            "Director"
        } else {
            "Front End pool"
        };
        let proxy = t.reverse_proxy.clone();
        let edge = t.edge.clone();
        for domain in t.domains.clone() {
            use View::{External, Internal};
            let d = &domain;
            self.lync(
                Internal,
                d,
                "lyncdiscoverinternal",
                registrar_role,
                &registrar,
                "Autodiscover service on the internal Web services",
            );
            self.lync(
                Internal,
                d,
                "sipinternal",
                registrar_role,
                &registrar,
                "Front End pool or Director, internal only",
            );
            self.lync(
                Internal,
                d,
                "sip",
                registrar_role,
                &registrar,
                "Front End pool or Director on the internal network",
            );
            self.lync(
                Internal,
                d,
                "dialin",
                "Front End pool",
                &pool,
                "dial-in conferencing",
            );
            self.lync(
                Internal,
                d,
                "meet",
                "Front End pool",
                &pool,
                "web conferencing URL",
            );
            self.lync(
                Internal,
                d,
                "admin",
                "Front End pool",
                &pool,
                "Lync Control Panel",
            );
            if t.lyncdiscover_internal {
                self.lync(
                    Internal,
                    d,
                    "lyncdiscover",
                    "reverse proxy",
                    &proxy,
                    "Autodiscover through the reverse proxy for mobile clients inside",
                );
            }
            self.srv(
                Internal,
                d,
                "_sipinternaltls._tcp",
                t.ports.internal_tls,
                "internal TLS connections",
            );
            if t.tcp_enabled {
                self.srv(
                    Internal,
                    d,
                    "_sipinternal._tcp",
                    t.ports.internal_tcp,
                    "internal TCP connections (only when TCP is allowed)",
                );
            }

            self.lync(
                External,
                d,
                "meet",
                "reverse proxy",
                &proxy,
                "external web conferencing",
            );
            self.lync(
                External,
                d,
                "dialin",
                "reverse proxy",
                &proxy,
                "external dial-in conferencing",
            );
            self.lync(
                External,
                d,
                "lyncdiscover",
                "reverse proxy",
                &proxy,
                "Autodiscover service on the external Web services",
            );
            self.lync(
                External,
                d,
                "sip",
                "Access Edge",
                &edge.access,
                "Access Edge service for external clients",
            );
            self.lync(
                External,
                d,
                "sipexternal",
                "Access Edge",
                &edge.access,
                "Access Edge service for external clients",
            );
            self.lync(
                External,
                d,
                "access",
                "Access Edge",
                &edge.access,
                "Access Edge",
            );
            self.lync(External, d, "av", "A/V Edge", &edge.av, "A/V Edge");
            self.lync(
                External,
                d,
                "webconf",
                "Web Conferencing Edge",
                &edge.webconf,
                "Web Conferencing Edge",
            );
            self.srv(
                External,
                d,
                "_sip._tls",
                t.ports.external_tls,
                "external TLS connections",
            );
            self.srv(
                External,
                d,
                "_sipfederationtls._tcp",
                t.ports.federation,
                "federation",
            );
        }
    }

    /// Names the topology itself introduces: pools, servers, web services, simple URL hosts.
    fn topology_names(&mut self) {
        let t = self.topology;
        use View::{External, Internal};
        for pool in &t.pools {
            let all = pool_addresses(&pool.members);
            let role = format!("pool {}", pool.fqdn);
            self.claim(
                Internal,
                &pool.fqdn,
                &role,
                &all,
                "Front End pool (DNS load balancing: every member)",
            );
            for m in &pool.members {
                self.claim(
                    Internal,
                    &m.fqdn,
                    &format!("server {}", m.fqdn),
                    &m.addresses,
                    &format!("Front End server of {}", pool.fqdn),
                );
            }
            self.claim(
                Internal,
                &pool.web_internal,
                &role,
                &all,
                "internal web services",
            );
            // Published by the reverse proxy; without one, each pool's own members publish it
            // (the first pool's are also the reverse proxy's default), so a Redirect to
            // another pool's external web services reaches that pool.
            let (publisher, addresses) = if t.reverse_proxy_configured {
                ("reverse proxy", t.reverse_proxy.as_slice())
            } else {
                (role.as_str(), all.as_slice())
            };
            self.claim(
                External,
                &pool.web_external,
                publisher,
                addresses,
                &format!("external web services of {}", pool.fqdn),
            );
        }
        if let Some(dir) = &t.director {
            let all = pool_addresses(&dir.members);
            self.claim(
                Internal,
                &dir.fqdn,
                "Director",
                &all,
                "Director pool (DNS load balancing: every member)",
            );
            for m in &dir.members {
                self.claim(
                    Internal,
                    &m.fqdn,
                    &format!("server {}", m.fqdn),
                    &m.addresses,
                    "Director server",
                );
            }
        }
        if let Some(access) = &t.edge.access_fqdn {
            self.claim(
                External,
                access,
                "Access Edge",
                &t.edge.access,
                "Access Edge",
            );
        }
        let pool = pool_addresses(&t.pools[0].members);
        let [meet, dialin, admin] = t.simple_urls.hosts.clone();
        let rp = &t.reverse_proxy;
        for (view, host, label, role, addresses, purpose) in [
            (
                Internal,
                &meet,
                "meet",
                "Front End pool",
                &pool,
                "meeting simple URL",
            ),
            (
                External,
                &meet,
                "meet",
                "reverse proxy",
                rp,
                "meeting simple URL",
            ),
            (
                Internal,
                &dialin,
                "dialin",
                "Front End pool",
                &pool,
                "dial-in simple URL",
            ),
            (
                External,
                &dialin,
                "dialin",
                "reverse proxy",
                rp,
                "dial-in simple URL",
            ),
            (
                Internal,
                &admin,
                "admin",
                "Front End pool",
                &pool,
                "Control Panel simple URL",
            ),
        ] {
            // A simple URL at its default name (`meet.<domain>`) is one of the Lync names, so
            // `omit_records` removes it like the others; a custom host is the admin's own.
            let default_name = t.domains.iter().any(|d| d.prefixed(label) == *host);
            if default_name && self.omitted(view, label) {
                continue;
            }
            self.claim(view, host, role, addresses, purpose);
        }
    }

    fn omitted(&self, view: View, label: &str) -> bool {
        self.topology
            .omit
            .iter()
            .any(|o| o.label == label && o.view.is_none_or(|v| v == view))
    }

    #[allow(clippy::too_many_arguments)]
    fn lync(
        &mut self,
        view: View,
        domain: &Fqdn,
        label: &str,
        role: &str,
        addresses: &[IpAddr],
        purpose: &str,
    ) {
        if self.omitted(view, label) {
            return;
        }
        self.claim(view, &domain.prefixed(label), role, addresses, purpose);
    }

    fn srv(&mut self, view: View, domain: &Fqdn, label: &str, port: u16, purpose: &str) {
        if self.omitted(view, label) {
            return;
        }
        self.srvs.push(Record {
            view,
            name: domain.prefixed(label),
            ttl: self.topology.ttl,
            data: RecordData::Srv {
                priority: 0,
                weight: 0,
                port,
                target: domain.prefixed("sip"),
            },
            purpose: purpose.to_owned(),
        });
    }

    /// Records that `role` wants `name` to answer `addresses` in `view`. A second claim with the
    /// same addresses is a harmless alias (e.g. a pool named `sip.<domain>`); different addresses
    /// are a configuration error.
    fn claim(&mut self, view: View, name: &Fqdn, role: &str, addresses: &[IpAddr], purpose: &str) {
        if let Some(&i) = self.index.get(&(view, name.clone())) {
            let first = &self.claims[i];
            let same = first.addresses.len() == addresses.len()
                && addresses.iter().all(|a| first.addresses.contains(a));
            if !same && self.clash.is_none() {
                self.clash = Some(TopologyError::Conflict {
                    name: name.to_string(),
                    view,
                    first: first.role.clone(),
                    second: role.to_owned(),
                });
            }
            return;
        }
        self.index.insert((view, name.clone()), self.claims.len());
        self.claims.push(Claim {
            view,
            name: name.clone(),
            role: role.to_owned(),
            addresses: addresses.to_vec(),
            purpose: purpose.to_owned(),
        });
    }

    fn check_claims(&mut self) -> Result<(), TopologyError> {
        match self.clash.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn zones(&self) -> Vec<Zone> {
        let mut zones: Vec<Zone> = Vec::new();
        for view in View::ALL {
            for d in &self.topology.domains {
                zones.push(Zone {
                    view,
                    apex: d.clone(),
                });
            }
            for c in self.claims.iter().filter(|c| c.view == view) {
                if zones
                    .iter()
                    .any(|z| z.view == view && c.name.is_within(&z.apex))
                {
                    continue;
                }
                let apex = c.name.parent().unwrap_or_else(|| c.name.clone());
                zones.push(Zone { view, apex });
            }
        }
        zones
    }

    fn finish(mut self) -> RecordSet {
        let zones = self.zones();
        let ttl = self.topology.ttl;
        // Name servers: claimed last so that an explicit role name wins a clash-free tie.
        for z in &zones {
            let ns_addresses = match z.view {
                View::Internal => self.topology.name_servers_internal.clone(),
                View::External => self.topology.name_servers_external.clone(),
            };
            let ns = z.apex.prefixed("ns");
            if !self.index.contains_key(&(z.view, ns.clone())) {
                self.claim(
                    z.view,
                    &ns,
                    "name server",
                    &ns_addresses,
                    "name server of the zone",
                );
            }
        }

        let mut body: Vec<Record> = Vec::new();
        for c in &self.claims {
            for a in &c.addresses {
                let data = match a {
                    IpAddr::V4(v4) => RecordData::A(*v4),
                    IpAddr::V6(v6) => RecordData::Aaaa(*v6),
                };
                body.push(Record {
                    view: c.view,
                    name: c.name.clone(),
                    ttl,
                    data,
                    purpose: format!("{} ({})", c.purpose, c.role),
                });
            }
        }
        body.append(&mut self.srvs);
        let serial = serial_of(&body);

        let mut records = Vec::with_capacity(body.len() + 2 * zones.len());
        for z in &zones {
            let ns = z.apex.prefixed("ns");
            records.push(Record {
                view: z.view,
                name: z.apex.clone(),
                ttl: ZONE_TTL,
                data: RecordData::Soa(Soa {
                    mname: ns.clone(),
                    rname: z.apex.prefixed("hostmaster"),
                    serial,
                    refresh: SOA_REFRESH,
                    retry: SOA_RETRY,
                    expire: SOA_EXPIRE,
                    minimum: NEGATIVE_TTL,
                }),
                purpose: "start of authority".to_owned(),
            });
            records.push(Record {
                view: z.view,
                name: z.apex.clone(),
                ttl: ZONE_TTL,
                data: RecordData::Ns(ns),
                purpose: "name server".to_owned(),
            });
            // The zone's own records, in generation order (the Lync table order).
            let set = RecordSet {
                zones: zones.clone(),
                records: Vec::new(),
            };
            for r in &body {
                if r.view == z.view && set.zone_of(z.view, &r.name) == Some(&z.apex) {
                    records.push(r.clone());
                }
            }
        }
        RecordSet { zones, records }
    }
}

/// FNV-1a over the records' text: the serial changes whenever the records do, with no clock.
fn serial_of(records: &[Record]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for r in records {
        let text = format!(
            "{} {} {} {} {}\n",
            r.view,
            r.name,
            r.ttl,
            r.data.type_name(),
            r.data
        );
        for b in text.bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash.max(1)
}

/// Seconds resolvers cache negative answers (the SOA minimum, RFC 2308 §5).
pub const NEGATIVE_TTL: u32 = 60;
/// TTL of SOA and NS records.
pub const ZONE_TTL: u32 = 3600;
const SOA_REFRESH: u32 = 3600;
const SOA_RETRY: u32 = 600;
const SOA_EXPIRE: u32 = 604_800;
pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_NS: u16 = 2;
pub(crate) const TYPE_SOA: u16 = 6;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_SRV: u16 = 33;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{LocalServer, TopologyConfig};
    use serde::Deserialize;

    /// A deployment with a two-member pool, a Director, an Edge and a reverse proxy, each at
    /// distinct addresses, so every record's target is visible.
    pub(crate) fn contoso(extra: &str) -> Topology {
        #[derive(Deserialize)]
        struct File {
            topology: TopologyConfig,
        }
        let tcp = if extra.contains("tcp_enabled") {
            ""
        } else {
            "tcp_enabled = true"
        };
        let text = format!(
            r#"[topology]
            {tcp}
            reverse_proxy = ["203.0.113.20"]
            {extra}
            [topology.edge]
            access = ["203.0.113.10", "2001:db8::10"]
            av = ["203.0.113.11"]
            webconf = ["203.0.113.12"]
            [[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [
              {{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11", "fd00::11"] }},
              {{ fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] }},
            ]
            "#
        );
        let file: File = toml::from_str(&text).unwrap();
        let local = LocalServer {
            domains: vec!["contoso.com".into()],
            ..LocalServer::default()
        };
        Topology::from_config(&file.topology, &local).unwrap()
    }

    fn a(set: &RecordSet, view: View, name: &str) -> Vec<String> {
        let mut v: Vec<String> = set
            .lookup(view, name)
            .filter(|r| matches!(r.data, RecordData::A(_) | RecordData::Aaaa(_)))
            .map(|r| r.data.to_string())
            .collect();
        v.sort();
        v
    }

    fn srv(set: &RecordSet, view: View, name: &str) -> Vec<String> {
        set.lookup(view, name)
            .filter(|r| matches!(r.data, RecordData::Srv { .. }))
            .map(|r| r.data.to_string())
            .collect()
    }

    const POOL: [&str; 3] = ["10.0.0.11", "10.0.0.12", "fd00::11"];

    #[test]
    fn internal_view_points_every_lync_name_at_the_pool() {
        let t = contoso("");
        let set = t.records();
        for label in [
            "lyncdiscoverinternal",
            "sipinternal",
            "sip",
            "dialin",
            "meet",
            "admin",
        ] {
            assert_eq!(
                a(set, View::Internal, &format!("{label}.contoso.com")),
                POOL,
                "{label}"
            );
        }
        assert!(a(set, View::Internal, "lyncdiscover.contoso.com").is_empty());
        assert_eq!(a(set, View::Internal, "pool01.contoso.com"), POOL);
        assert_eq!(a(set, View::Internal, "fe02.contoso.com"), ["10.0.0.12"]);
    }

    #[test]
    fn rfc2782_internal_srv_records_target_sip_on_5061_and_5060() {
        let t = contoso("");
        let set = t.records();
        assert_eq!(
            srv(set, View::Internal, "_sipinternaltls._tcp.contoso.com"),
            ["0 0 5061 sip.contoso.com."]
        );
        assert_eq!(
            srv(set, View::Internal, "_sipinternal._tcp.contoso.com"),
            ["0 0 5060 sip.contoso.com."]
        );
        assert!(srv(set, View::Internal, "_sip._tls.contoso.com").is_empty());
    }

    #[test]
    fn sipinternal_tcp_srv_only_when_tcp_is_enabled() {
        let t = contoso("tcp_enabled = false").records().clone();
        assert!(srv(&t, View::Internal, "_sipinternal._tcp.contoso.com").is_empty());
        assert_eq!(
            srv(&t, View::Internal, "_sipinternaltls._tcp.contoso.com").len(),
            1
        );
    }

    #[test]
    fn external_view_points_at_reverse_proxy_and_edge() {
        let t = contoso("");
        let set = t.records();
        for label in ["meet", "dialin", "lyncdiscover"] {
            assert_eq!(
                a(set, View::External, &format!("{label}.contoso.com")),
                ["203.0.113.20"],
                "{label}"
            );
        }
        for label in ["sip", "sipexternal", "access"] {
            assert_eq!(
                a(set, View::External, &format!("{label}.contoso.com")),
                ["2001:db8::10", "203.0.113.10"],
                "{label}"
            );
        }
        assert_eq!(a(set, View::External, "av.contoso.com"), ["203.0.113.11"]);
        assert_eq!(
            a(set, View::External, "webconf.contoso.com"),
            ["203.0.113.12"]
        );
        assert_eq!(
            a(set, View::External, "lyncweb.contoso.com"),
            ["203.0.113.20"]
        );
        for internal_only in [
            "lyncdiscoverinternal",
            "sipinternal",
            "admin",
            "pool01",
            "fe01",
        ] {
            assert!(a(set, View::External, &format!("{internal_only}.contoso.com")).is_empty());
        }
    }

    #[test]
    fn rfc2782_external_srv_records_use_443_and_5061() {
        let t = contoso("");
        let set = t.records();
        assert_eq!(
            srv(set, View::External, "_sip._tls.contoso.com"),
            ["0 0 443 sip.contoso.com."]
        );
        assert_eq!(
            srv(set, View::External, "_sipfederationtls._tcp.contoso.com"),
            ["0 0 5061 sip.contoso.com."]
        );
    }

    #[test]
    fn rfc2782_srv_targets_are_names_with_address_records_in_the_same_zone() {
        let t = contoso("");
        let set = t.records();
        for r in set.records() {
            if let RecordData::Srv { target, .. } = &r.data {
                assert_eq!(set.zone_of(r.view, target), set.zone_of(r.view, &r.name));
                assert!(!a(set, r.view, target.as_str()).is_empty(), "{target}");
            }
        }
    }

    #[test]
    fn lyncdiscover_internal_switch_adds_the_forward_lookup() {
        let t = contoso("lyncdiscover_internal = true");
        assert_eq!(
            a(t.records(), View::Internal, "lyncdiscover.contoso.com"),
            ["203.0.113.20"]
        );
    }

    #[test]
    fn director_takes_the_sign_in_names() {
        let t = contoso(
            r#"[topology.director]
            fqdn = "dir.contoso.com"
            members = [{ fqdn = "dir01.contoso.com", addresses = ["10.0.0.21"] }]"#,
        );
        let set = t.records();
        for label in ["sip", "sipinternal", "lyncdiscoverinternal", "dir", "dir01"] {
            assert_eq!(
                a(set, View::Internal, &format!("{label}.contoso.com")),
                ["10.0.0.21"]
            );
        }
        assert_eq!(a(set, View::Internal, "meet.contoso.com"), POOL);
    }

    #[test]
    fn every_zone_has_one_soa_and_one_ns_with_an_address() {
        let t = contoso("");
        let set = t.records();
        assert_eq!(set.zones().len(), 2);
        for z in set.zones() {
            let at_apex: Vec<&Record> = set.lookup(z.view, z.apex.as_str()).collect();
            assert_eq!(
                at_apex
                    .iter()
                    .filter(|r| r.data.type_name() == "SOA")
                    .count(),
                1
            );
            assert_eq!(
                at_apex
                    .iter()
                    .filter(|r| r.data.type_name() == "NS")
                    .count(),
                1
            );
            assert!(at_apex.iter().all(|r| r.ttl == ZONE_TTL));
            assert!(!a(set, z.view, "ns.contoso.com").is_empty());
        }
    }

    #[test]
    fn pool_outside_the_sip_domain_gets_its_own_internal_zone() {
        #[derive(Deserialize)]
        struct File {
            topology: TopologyConfig,
        }
        let file: File = toml::from_str(
            r#"[topology]
            [[topology.pools]]
            fqdn = "pool01.corp.local"
            members = [{ fqdn = "fe01.corp.local", addresses = ["10.0.0.11"] }]"#,
        )
        .unwrap();
        let local = LocalServer {
            domains: vec!["contoso.com".into()],
            ..LocalServer::default()
        };
        let t = Topology::from_config(&file.topology, &local).unwrap();
        let zones: Vec<String> = t
            .records()
            .zones()
            .iter()
            .map(|z| format!("{} {}", z.view, z.apex))
            .collect();
        assert!(
            zones.contains(&"internal corp.local".to_owned()),
            "{zones:?}"
        );
        assert!(
            !zones.contains(&"external corp.local".to_owned()),
            "{zones:?}"
        );
    }

    fn two_pools(extra: &str) -> Topology {
        #[derive(Deserialize)]
        struct File {
            topology: TopologyConfig,
        }
        let file: File = toml::from_str(&format!(
            r#"[topology]
            {extra}
            [[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [
              {{ fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] }},
              {{ fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] }},
            ]
            [[topology.pools]]
            fqdn = "pool02.contoso.com"
            web_internal = "web02.contoso.com"
            web_external = "lyncweb02.contoso.com"
            members = [
              {{ fqdn = "fe21.contoso.com", addresses = ["10.0.1.21"] }},
              {{ fqdn = "fe22.contoso.com", addresses = ["10.0.1.22", "fd00::22"] }},
            ]"#
        ))
        .unwrap();
        let local = LocalServer {
            domains: vec!["contoso.com".into()],
            ..LocalServer::default()
        };
        Topology::from_config(&file.topology, &local).unwrap()
    }

    #[test]
    fn each_pool_name_answers_its_own_members_and_the_domain_names_the_first_pool() {
        let t = two_pools("");
        let set = t.records();
        let first = ["10.0.0.11", "10.0.0.12"];
        let second = ["10.0.1.21", "10.0.1.22", "fd00::22"];
        assert_eq!(a(set, View::Internal, "pool01.contoso.com"), first);
        assert_eq!(a(set, View::Internal, "pool02.contoso.com"), second);
        assert_eq!(a(set, View::Internal, "web02.contoso.com"), second);
        assert_eq!(
            a(set, View::Internal, "fe22.contoso.com"),
            ["10.0.1.22", "fd00::22"]
        );
        for label in ["sip", "sipinternal", "lyncdiscoverinternal", "meet"] {
            assert_eq!(
                a(set, View::Internal, &format!("{label}.contoso.com")),
                first,
                "{label}"
            );
        }
        // Pool and server names are internal only.
        for name in ["pool02", "web02", "fe21"] {
            assert!(a(set, View::External, &format!("{name}.contoso.com")).is_empty());
        }
        // Without a reverse proxy each pool publishes its own external web services.
        assert_eq!(a(set, View::External, "lyncweb.contoso.com"), first);
        assert_eq!(a(set, View::External, "lyncweb02.contoso.com"), second);
        assert_eq!(a(set, View::External, "lyncdiscover.contoso.com"), first);
    }

    #[test]
    fn a_reverse_proxy_publishes_every_pools_external_web_services() {
        let t = two_pools(r#"reverse_proxy = ["203.0.113.20"]"#);
        let set = t.records();
        for name in ["lyncweb", "lyncweb02", "lyncdiscover"] {
            assert_eq!(
                a(set, View::External, &format!("{name}.contoso.com")),
                ["203.0.113.20"],
                "{name}"
            );
        }
    }

    #[test]
    fn omit_records_drops_one_name_in_one_view() {
        let t = contoso(r#"omit_records = ["internal:lyncdiscoverinternal", "_sip._tls"]"#);
        let set = t.records();
        assert!(a(set, View::Internal, "lyncdiscoverinternal.contoso.com").is_empty());
        assert!(srv(set, View::External, "_sip._tls.contoso.com").is_empty());
        assert_eq!(a(set, View::Internal, "sip.contoso.com"), POOL);
    }

    #[test]
    fn omit_records_drops_simple_urls_at_their_default_names() {
        let t = contoso(r#"omit_records = ["meet", "external:dialin", "admin"]"#);
        let set = t.records();
        for view in [View::Internal, View::External] {
            assert!(a(set, view, "meet.contoso.com").is_empty(), "{view:?}");
            assert!(a(set, view, "admin.contoso.com").is_empty(), "{view:?}");
        }
        assert!(a(set, View::External, "dialin.contoso.com").is_empty());
        assert_eq!(a(set, View::Internal, "dialin.contoso.com"), POOL);
    }

    #[test]
    fn ttls_are_300_for_addresses_and_3600_for_zone_records() {
        let t = contoso("");
        for r in t.records().records() {
            let expected = match r.data {
                RecordData::Soa(_) | RecordData::Ns(_) => ZONE_TTL,
                _ => 300,
            };
            assert_eq!(r.ttl, expected, "{r:?}");
        }
    }

    #[test]
    fn serial_changes_when_records_change() {
        let soa = |t: &Topology| {
            t.records()
                .records()
                .iter()
                .find_map(|r| match &r.data {
                    RecordData::Soa(s) => Some(s.serial),
                    _ => None,
                })
                .unwrap()
        };
        assert_eq!(soa(&contoso("")), soa(&contoso("")));
        assert_ne!(soa(&contoso("")), soa(&contoso("tcp_enabled = false")));
    }

    #[test]
    fn table_lists_every_record_with_its_purpose() {
        let t = contoso("");
        let table = t.records().render_table(Some(View::External));
        assert!(table.starts_with("VIEW"));
        assert!(table.contains("_sip._tls.contoso.com"));
        assert!(table.contains("Access Edge"));
        assert!(!table.contains("internal "));
        assert_eq!(
            table.lines().count(),
            1 + t.records().view(View::External).count()
        );
    }

    #[test]
    fn zone_file_is_rfc1035_master_format() {
        let t = contoso("");
        let zone = t.records().render_zone(View::Internal);
        assert!(zone.contains("$ORIGIN contoso.com.\n"));
        assert!(zone.contains("sip.contoso.com.\t300\tIN\tA\t10.0.0.11"));
        assert!(zone.contains(
            "_sipinternaltls._tcp.contoso.com.\t300\tIN\tSRV\t0 0 5061 sip.contoso.com."
        ));
        assert!(
            zone.contains("contoso.com.\t3600\tIN\tSOA\tns.contoso.com. hostmaster.contoso.com. ")
        );
    }
}
