//! The authoritative answerer: query bytes and the client's address in, answer bytes out.
//!
//! The records are compiled once into per-view tables of pre-encoded resource records, so an
//! answer is a hash lookup and a few copies into a reused buffer: no allocation per query. The
//! view is chosen by the client's source address (split-horizon DNS). Names that hold several
//! addresses (a pool FQDN: DNS load balancing) are answered in an order shuffled per answer; the
//! caller passes the random number generator, so tests are deterministic.
//!
//! Behaviour: AA on every answer from our zones; NXDOMAIN with the zone's SOA in the authority
//! section for a name that does not exist (RFC 2308 §2.1), NODATA (NOERROR, no answer, SOA) for
//! a name that exists with other types or is an empty non-terminal (RFC 8020); REFUSED outside
//! our zones and for zone transfers; FORMERR for malformed queries; NOTIMP for opcodes other
//! than QUERY; EDNS(0) with a 1232-byte payload; TC when an answer does not fit.

mod server;
mod wire;

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use rand::Rng;

pub use server::serve_dns;
use wire::{CLASSIC_UDP, EDNS_PAYLOAD, HEADER_LEN, OPT_LEN, ParseError, Query};

use crate::name::Fqdn;
use crate::records::{NEGATIVE_TTL, RecordData, RecordSet, TYPE_A, TYPE_AAAA, View};
use crate::topology::{Topology, is_internal};

/// Both views compiled for answering, plus the networks that choose between them.
#[derive(Debug, Clone)]
pub struct ZoneSet {
    internal_networks: Vec<IpNet>,
    internal: ViewTable,
    external: ViewTable,
}

/// How the query arrived, which decides the largest answer (RFC 1035 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram: 512 bytes, or the EDNS payload size up to 1232.
    Udp,
    /// Stream: up to 65535 bytes.
    Tcp,
}

/// What [`ZoneSet::answer`] did, for the caller's counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `out` holds an answer to send.
    Answered {
        /// The response code sent.
        rcode: Rcode,
        /// The view used, when the query got that far.
        view: Option<View>,
    },
    /// Nothing to send (not a query, or too short to answer).
    Dropped,
}

/// The response codes this server sends (RFC 1035 §4.1.1, RFC 6891 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rcode {
    /// The name exists (possibly with no data of the asked type).
    NoError,
    /// The query could not be parsed.
    FormErr,
    /// The name does not exist in our zone.
    NxDomain,
    /// An opcode other than QUERY.
    NotImp,
    /// Not our zone, a class other than IN, or a zone transfer.
    Refused,
    /// An EDNS version other than 0.
    BadVers,
}

#[derive(Debug, Clone, Default)]
struct ViewTable {
    /// Lower-case wire name → node.
    nodes: HashMap<Box<[u8]>, Node>,
    /// Zone apexes (lower-case wire names) → index into `zones`.
    apexes: HashMap<Box<[u8]>, usize>,
    zones: Vec<ZoneData>,
}

#[derive(Debug, Clone)]
struct ZoneData {
    /// The SOA for the authority section of negative answers: type..rdata, TTL lowered to the
    /// negative-caching time (RFC 2308 §3).
    negative_soa: Box<[u8]>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    zone: usize,
    rrsets: Vec<RrSet>,
}

/// One RRset: each record pre-encoded from TYPE to the end of RDATA (the owner is written as a
/// pointer to the question at answer time).
#[derive(Debug, Clone)]
struct RrSet {
    rtype: u16,
    rrs: Vec<Box<[u8]>>,
    /// Address records of SRV targets, for the additional section (RFC 2782 "Usage rules").
    additional: Vec<Glue>,
}

/// One additional record: owner name in wire form, then TYPE..RDATA.
#[derive(Debug, Clone)]
struct Glue {
    owner: Box<[u8]>,
    rest: Box<[u8]>,
}

impl ZoneSet {
    /// Compiles the topology's records and its internal networks.
    pub fn new(topology: &Topology) -> Self {
        Self::from_records(topology.records(), topology.internal_networks())
    }

    /// Compiles `records`; clients inside `internal_networks` get the internal view.
    pub fn from_records(records: &RecordSet, internal_networks: &[IpNet]) -> Self {
        Self {
            internal_networks: internal_networks.to_vec(),
            internal: ViewTable::build(records, View::Internal),
            external: ViewTable::build(records, View::External),
        }
    }

    /// The view a client at `source` gets.
    pub fn view_for(&self, source: IpAddr) -> View {
        if is_internal(&self.internal_networks, source) {
            View::Internal
        } else {
            View::External
        }
    }

    /// Answers the DNS message `query` from a client at `source`, writing the response into
    /// `out` (cleared first; keep one buffer per task to avoid allocating per query).
    pub fn answer<R: Rng + ?Sized>(
        &self,
        query: &[u8],
        source: IpAddr,
        transport: Transport,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Outcome {
        out.clear();
        let q = match Query::parse(query) {
            Ok(q) => q,
            Err(ParseError::Drop) => return Outcome::Dropped,
            Err(ParseError::FormErr { id, opcode, rd }) => {
                return header_only(out, id, opcode, rd, Rcode::FormErr);
            }
            Err(ParseError::NotImp { id, opcode, rd }) => {
                return header_only(out, id, opcode, rd, Rcode::NotImp);
            }
        };
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp, None) => CLASSIC_UDP,
            (Transport::Udp, Some(e)) => usize::from(e.udp_size.clamp(512, EDNS_PAYLOAD)),
        };
        if let Some(e) = q.edns
            && e.version != 0
        {
            // RFC 6891 §6.1.3: unknown version → BADVERS, with our OPT, no question needed.
            let mut w = Writer::start(out, &q, Rcode::BadVers, false);
            w.finish_counts(0, 0, 0);
            return Outcome::Answered {
                rcode: Rcode::BadVers,
                view: None,
            };
        }
        let view = self.view_for(source);
        let table = match view {
            View::Internal => &self.internal,
            View::External => &self.external,
        };
        let rcode = table.respond(&q, limit, rng, out);
        Outcome::Answered {
            rcode,
            view: Some(view),
        }
    }
}

impl Rcode {
    /// The 12-bit code (RFC 6891 §6.1.3 extended codes included).
    pub fn code(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::BadVers => 16,
        }
    }
}

impl ViewTable {
    fn build(records: &RecordSet, view: View) -> Self {
        let mut table = ViewTable::default();
        for zone in records.zones().iter().filter(|z| z.view == view) {
            let soa = records
                .lookup(view, zone.apex.as_str())
                .find(|r| matches!(r.data, RecordData::Soa(_)));
            let negative_soa = soa
                .map(|r| encode_rest(&r.data, r.ttl.min(NEGATIVE_TTL)))
                .unwrap_or_default();
            table
                .apexes
                .insert(zone.apex.to_wire().into_boxed_slice(), table.zones.len());
            table.zones.push(ZoneData { negative_soa });
        }
        for r in records.view(view) {
            let Some(zone_apex) = records.zone_of(view, &r.name) else {
                continue;
            };
            let zone = table.apexes[zone_apex.to_wire().as_slice()];
            let node = table
                .nodes
                .entry(r.name.to_wire().into_boxed_slice())
                .or_insert_with(|| Node {
                    zone,
                    rrsets: Vec::new(),
                });
            let rtype = r.data.type_code();
            let rest = encode_rest(&r.data, r.ttl);
            match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
                Some(set) => set.rrs.push(rest),
                None => node.rrsets.push(RrSet {
                    rtype,
                    rrs: vec![rest],
                    additional: Vec::new(),
                }),
            }
            // Empty non-terminals between the name and its apex exist (RFC 8020): they get
            // NODATA, not NXDOMAIN, so `_tcp.contoso.com` does not hide `_sip._tcp` from
            // resolvers that minimise queries (RFC 9156).
            let mut up = r.name.parent();
            while let Some(name) = up {
                if !name.is_within(zone_apex) || name == *zone_apex {
                    break;
                }
                table
                    .nodes
                    .entry(name.to_wire().into_boxed_slice())
                    .or_insert_with(|| Node {
                        zone,
                        rrsets: Vec::new(),
                    });
                up = name.parent();
            }
        }
        table.link_srv_targets(records, view);
        table
    }

    /// Copies the target's A and AAAA records next to each SRV RRset.
    fn link_srv_targets(&mut self, records: &RecordSet, view: View) {
        let targets: Vec<(Box<[u8]>, Vec<Fqdn>)> = self
            .nodes
            .keys()
            .filter_map(|key| {
                let mut names: Vec<Fqdn> = Vec::new();
                for r in records.view(view) {
                    if r.name.to_wire().as_slice() == &**key
                        && let RecordData::Srv { target, .. } = &r.data
                        && !names.contains(target)
                    {
                        names.push(target.clone());
                    }
                }
                (!names.is_empty()).then(|| (key.clone(), names))
            })
            .collect();
        for (key, names) in targets {
            let mut additional = Vec::new();
            for target in names {
                let owner = target.to_wire().into_boxed_slice();
                for r in records.lookup(view, target.as_str()) {
                    if matches!(r.data, RecordData::A(_) | RecordData::Aaaa(_)) {
                        additional.push(Glue {
                            owner: owner.clone(),
                            rest: encode_rest(&r.data, r.ttl),
                        });
                    }
                }
            }
            if let Some(node) = self.nodes.get_mut(&key)
                && let Some(set) = node.rrsets.iter_mut().find(|s| s.rtype == TYPE_SRV)
            {
                set.additional = additional;
            }
        }
    }

    fn respond<R: Rng + ?Sized>(
        &self,
        q: &Query<'_>,
        limit: usize,
        rng: &mut R,
        out: &mut Vec<u8>,
    ) -> Rcode {
        if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
            return refuse(out, q);
        }
        let wire = q.name.wire();
        let (zone, node) = match self.nodes.get(wire) {
            Some(node) => (node.zone, Some(node)),
            None => match self.enclosing_zone(q) {
                Some(zone) => (zone, None),
                None => return refuse(out, q),
            },
        };
        if q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR {
            // No zone transfers: `herald dns records --format zone` exports the zone.
            return refuse(out, q);
        }

        let Some(node) = node else {
            let mut w = Writer::start(out, q, Rcode::NxDomain, true);
            let ns = w.soa(self.apex_offset(q, zone), &self.zones[zone].negative_soa);
            w.finish(limit, 0, ns, 0);
            return Rcode::NxDomain;
        };

        let mut w = Writer::start(out, q, Rcode::NoError, true);
        let mut an = 0u16;
        let mut ar = 0u16;
        let matching = node
            .rrsets
            .iter()
            .filter(|s| q.qtype == TYPE_ANY || s.rtype == q.qtype);
        let mut additional: Option<&RrSet> = None;
        for set in matching {
            an += w.rrset(set, rng);
            if !set.additional.is_empty() {
                additional = Some(set);
            }
        }
        let mut ns = 0u16;
        if an == 0 {
            // NODATA: RFC 2308 §2.2 type 2, the SOA in the authority section.
            ns = w.soa(self.apex_offset(q, zone), &self.zones[zone].negative_soa);
        }
        let answer_end = w.out.len();
        if let Some(set) = additional {
            for glue in &set.additional {
                w.out.extend_from_slice(&glue.owner);
                w.out.extend_from_slice(&glue.rest);
                ar += 1;
            }
        }
        w.finish_with_additional(limit, an, ns, ar, answer_end);
        Rcode::NoError
    }

    /// The deepest zone of this view that holds the query name, found by trying its suffixes at
    /// every label boundary, longest first.
    fn enclosing_zone(&self, q: &Query<'_>) -> Option<usize> {
        let wire = q.name.wire();
        q.name
            .label_starts()
            .iter()
            .find_map(|&start| self.apexes.get(&wire[usize::from(start)..]).copied())
    }

    /// Where, in the response, the zone apex can be pointed to: inside the echoed question name.
    fn apex_offset(&self, q: &Query<'_>, zone: usize) -> usize {
        let wire = q.name.wire();
        let offset = q
            .name
            .label_starts()
            .iter()
            .find(|&&start| self.apexes.get(&wire[usize::from(start)..]) == Some(&zone))
            .copied()
            .unwrap_or(0);
        HEADER_LEN + usize::from(offset)
    }
}

/// Writes one response into the output buffer, tracking section counts.
struct Writer<'o, 'q> {
    out: &'o mut Vec<u8>,
    query: &'o Query<'q>,
    rcode: Rcode,
}

impl<'o, 'q> Writer<'o, 'q> {
    fn start(out: &'o mut Vec<u8>, query: &'o Query<'q>, rcode: Rcode, aa: bool) -> Self {
        let flags = wire::response_flags(query.opcode, query.rd, query.cd, aa, false, rcode.code());
        wire::write_header(out, query.id, flags);
        if rcode != Rcode::BadVers {
            out.extend_from_slice(query.question);
        }
        Self { out, query, rcode }
    }

    /// Writes an RRset owned by the query name, shuffled when it has several records.
    fn rrset<R: Rng + ?Sized>(&mut self, set: &RrSet, rng: &mut R) -> u16 {
        let n = set.rrs.len();
        let shuffle = n > 1 && (set.rtype == TYPE_A || set.rtype == TYPE_AAAA);
        if shuffle && n <= MAX_SHUFFLE {
            let mut order = [0u8; MAX_SHUFFLE];
            for (i, slot) in order.iter_mut().enumerate().take(n) {
                *slot = i as u8;
            }
            for i in (1..n).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            for &i in &order[..n] {
                self.rr_at_question(&set.rrs[usize::from(i)]);
            }
        } else {
            let first = if shuffle { rng.random_range(0..n) } else { 0 };
            for i in 0..n {
                self.rr_at_question(&set.rrs[(first + i) % n]);
            }
        }
        n as u16
    }

    fn rr_at_question(&mut self, rest: &[u8]) {
        self.out.extend_from_slice(&POINTER_TO_QUESTION);
        self.out.extend_from_slice(rest);
    }

    /// The zone's SOA in the authority section; its owner points into the question name.
    fn soa(&mut self, apex_offset: usize, rest: &[u8]) -> u16 {
        if rest.is_empty() {
            return 0;
        }
        let pointer = 0xc000 | (apex_offset as u16 & 0x3fff);
        self.out.extend_from_slice(&pointer.to_be_bytes());
        self.out.extend_from_slice(rest);
        1
    }

    fn finish(self, limit: usize, an: u16, ns: u16, ar: u16) {
        let end = self.out.len();
        self.finish_with_additional(limit, an, ns, ar, end);
    }

    /// Counts, OPT, and truncation: additional records that do not fit are dropped silently
    /// (RFC 2181 §9); answers that do not fit set TC and are all dropped.
    fn finish_with_additional(
        mut self,
        limit: usize,
        an: u16,
        ns: u16,
        ar: u16,
        answer_end: usize,
    ) {
        let opt = if self.query.edns.is_some() {
            OPT_LEN
        } else {
            0
        };
        let (mut an, mut ns, mut ar) = (an, ns, ar);
        if self.out.len() + opt > limit {
            if answer_end + opt <= limit {
                self.out.truncate(answer_end);
                ar = 0;
            } else {
                self.out.truncate(HEADER_LEN + self.query.question.len());
                (an, ns, ar) = (0, 0, 0);
                self.out[2] |= (TC_BIT >> 8) as u8;
            }
        }
        self.finish_counts(an, ns, ar);
    }

    fn finish_counts(&mut self, an: u16, ns: u16, ar: u16) {
        let mut ar = ar;
        if let Some(e) = self.query.edns {
            wire::write_opt(self.out, self.rcode.code(), e.dnssec_ok);
            ar += 1;
        }
        let qd = u16::from(self.rcode != Rcode::BadVers);
        wire::set_counts(self.out, qd, an, ns, ar);
    }
}

fn header_only(out: &mut Vec<u8>, id: u16, opcode: u8, rd: bool, rcode: Rcode) -> Outcome {
    let flags = wire::response_flags(opcode, rd, false, false, false, rcode.code());
    wire::write_header(out, id, flags);
    Outcome::Answered { rcode, view: None }
}

fn refuse(out: &mut Vec<u8>, q: &Query<'_>) -> Rcode {
    let mut w = Writer::start(out, q, Rcode::Refused, false);
    w.finish_counts(0, 0, 0);
    Rcode::Refused
}

/// TYPE, CLASS IN, TTL, RDLENGTH and RDATA of a record.
fn encode_rest(data: &RecordData, ttl: u32) -> Box<[u8]> {
    let mut rdata = Vec::with_capacity(32);
    data.write_rdata(&mut rdata);
    let mut out = Vec::with_capacity(10 + rdata.len());
    out.extend_from_slice(&data.type_code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    // RDATA of our types is at most two names plus 20 bytes: far below 65535.
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out.into_boxed_slice()
}

/// Compression pointer to offset 12, where the question name starts (RFC 1035 §4.1.4).
const POINTER_TO_QUESTION: [u8; 2] = [0xc0, 0x0c];
/// RRsets up to this size are shuffled fully; larger ones are rotated by a random offset.
const MAX_SHUFFLE: usize = 64;
const TC_BIT: u16 = 0x0200;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;
const TYPE_SRV: u16 = 33;
const TYPE_IXFR: u16 = 251;
const TYPE_AXFR: u16 = 252;
const TYPE_ANY: u16 = 255;

#[cfg(test)]
mod tests;
