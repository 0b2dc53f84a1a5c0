//! The RFC 1035 §4 message format, as much of it as an authoritative answerer needs: a query
//! parsed into typed data without allocating, and helpers to write a response.
//!
//! Every length and count read from the wire is bounded by the bytes actually present, so a
//! hostile datagram can at worst earn a FORMERR.

/// A parsed standard query. Borrowed from the datagram; the lower-cased name is copied into a
/// fixed buffer so lookups need no allocation.
#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    pub(crate) id: u16,
    pub(crate) opcode: u8,
    pub(crate) rd: bool,
    pub(crate) cd: bool,
    /// The question section exactly as received (name in its original case, type, class), so
    /// the response echoes it byte for byte (RFC 1035 §4.1.2; 0x20-randomising resolvers
    /// compare it).
    pub(crate) question: &'a [u8],
    pub(crate) name: LowerName,
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    pub(crate) edns: Option<Edns>,
}

/// A name in wire form, lower-cased, with the offsets where its labels start.
#[derive(Debug, Clone)]
pub(crate) struct LowerName {
    bytes: [u8; MAX_NAME],
    len: u8,
    starts: [u8; MAX_LABELS],
    labels: u8,
}

/// The requester's EDNS(0) OPT record (RFC 6891 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edns {
    pub(crate) udp_size: u16,
    pub(crate) version: u8,
    pub(crate) dnssec_ok: bool,
}

/// Why a datagram gets no normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Too short for a header, or a response: answering could start a loop (RFC 1035 §7.3 says
    /// responses are not answered).
    Drop,
    /// Malformed: answer FORMERR with the header fields that could be read.
    FormErr { id: u16, opcode: u8, rd: bool },
    /// A valid header with an opcode other than QUERY.
    NotImp { id: u16, opcode: u8, rd: bool },
}

impl LowerName {
    /// The wire bytes (lower-case), root label included.
    pub(crate) fn wire(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Offsets (into [`LowerName::wire`]) of every label start, the full name first, the root
    /// label last. Suffixes starting there are the name's ancestors.
    pub(crate) fn label_starts(&self) -> &[u8] {
        &self.starts[..usize::from(self.labels)]
    }
}

impl<'a> Query<'a> {
    /// Parses `msg` as a standard query.
    pub(crate) fn parse(msg: &'a [u8]) -> Result<Self, ParseError> {
        if msg.len() < HEADER_LEN {
            return Err(ParseError::Drop);
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let flags = u16::from_be_bytes([msg[2], msg[3]]);
        if flags & FLAG_QR != 0 {
            return Err(ParseError::Drop);
        }
        let opcode = ((flags >> 11) & 0x0f) as u8;
        let rd = flags & FLAG_RD != 0;
        let cd = flags & FLAG_CD != 0;
        let formerr = ParseError::FormErr { id, opcode, rd };
        if opcode != OPCODE_QUERY {
            return Err(ParseError::NotImp { id, opcode, rd });
        }
        let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
        let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
        if qd != 1 {
            return Err(formerr);
        }

        let mut pos = HEADER_LEN;
        let name = read_question_name(msg, &mut pos).ok_or(formerr)?;
        let fixed = msg.get(pos..pos + 4).ok_or(formerr)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        pos += 4;
        let question = &msg[HEADER_LEN..pos];

        // Answer and authority sections are empty in real queries; skip them if present, then
        // look for the one OPT record in the additional section.
        let mut edns = None;
        let total = u32::from(an) + u32::from(ns) + u32::from(ar);
        for i in 0..total {
            let root_owner = msg.get(pos) == Some(&0);
            skip_name(msg, &mut pos).ok_or(formerr)?;
            let fixed = msg.get(pos..pos + 10).ok_or(formerr)?;
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let class = u16::from_be_bytes([fixed[2], fixed[3]]);
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            pos += 10;
            if msg.len() < pos + rdlen {
                return Err(formerr);
            }
            pos += rdlen;
            let in_additional = i >= u32::from(an) + u32::from(ns);
            if rtype == TYPE_OPT {
                // RFC 6891 §6.1.1: one OPT, owned by the root, in the additional section.
                if edns.is_some() || !root_owner || !in_additional {
                    return Err(formerr);
                }
                edns = Some(Edns {
                    udp_size: class,
                    version: (ttl >> 16) as u8,
                    dnssec_ok: ttl & EDNS_DO != 0,
                });
            }
        }

        Ok(Query {
            id,
            opcode,
            rd,
            cd,
            question,
            name,
            qtype,
            qclass,
            edns,
        })
    }
}

/// Reads the question name: no compression is possible there (nothing precedes it to point to),
/// so a pointer is malformed.
fn read_question_name(msg: &[u8], pos: &mut usize) -> Option<LowerName> {
    let mut name = LowerName {
        bytes: [0; MAX_NAME],
        len: 0,
        starts: [0; MAX_LABELS],
        labels: 0,
    };
    let mut out = 0usize;
    loop {
        let len = usize::from(*msg.get(*pos)?);
        if len & 0xc0 != 0 {
            return None;
        }
        if out + 1 + len > MAX_NAME || usize::from(name.labels) >= MAX_LABELS {
            return None;
        }
        name.starts[usize::from(name.labels)] = out as u8;
        name.labels += 1;
        name.bytes[out] = len as u8;
        let label = msg.get(*pos + 1..*pos + 1 + len)?;
        for (dst, src) in name.bytes[out + 1..out + 1 + len].iter_mut().zip(label) {
            *dst = src.to_ascii_lowercase();
        }
        out += 1 + len;
        *pos += 1 + len;
        if len == 0 {
            name.len = out as u8;
            return Some(name);
        }
    }
}

/// Skips a possibly compressed name (RFC 1035 §4.1.4): a pointer ends it.
fn skip_name(msg: &[u8], pos: &mut usize) -> Option<()> {
    let mut seen = 0usize;
    loop {
        let len = *msg.get(*pos)?;
        match len & 0xc0 {
            0x00 => {
                *pos += 1 + usize::from(len);
                seen += 1 + usize::from(len);
                if seen > MAX_NAME || *pos > msg.len() {
                    return None;
                }
                if len == 0 {
                    return Some(());
                }
            }
            0xc0 => {
                msg.get(*pos + 1)?;
                *pos += 2;
                return Some(());
            }
            _ => return None,
        }
    }
}

/// Writes a 12-byte header. Counts are patched later with [`set_counts`].
pub(crate) fn write_header(out: &mut Vec<u8>, id: u16, flags: u16) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
}

/// Patches QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT.
pub(crate) fn set_counts(out: &mut [u8], qd: u16, an: u16, ns: u16, ar: u16) {
    out[4..6].copy_from_slice(&qd.to_be_bytes());
    out[6..8].copy_from_slice(&an.to_be_bytes());
    out[8..10].copy_from_slice(&ns.to_be_bytes());
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Response flags: QR, the request's opcode and RD (RFC 1035 §4.1.1), CD copied (RFC 4035
/// §3.1.6), AA when answering from our zones, TC, and the low four bits of the RCODE.
pub(crate) fn response_flags(
    opcode: u8,
    rd: bool,
    cd: bool,
    aa: bool,
    tc: bool,
    rcode: u16,
) -> u16 {
    let mut f = FLAG_QR | (u16::from(opcode & 0x0f) << 11) | (rcode & 0x0f);
    if aa {
        f |= FLAG_AA;
    }
    if tc {
        f |= FLAG_TC;
    }
    if rd {
        f |= FLAG_RD;
    }
    if cd {
        f |= FLAG_CD;
    }
    f
}

/// Appends our OPT record (RFC 6891 §6.1.2): our payload size, the upper RCODE bits, version 0,
/// the DO bit copied from the request (RFC 3225 §3).
pub(crate) fn write_opt(out: &mut Vec<u8>, rcode: u16, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    let mut ttl = u32::from((rcode >> 4) as u8) << 24;
    if dnssec_ok {
        ttl |= EDNS_DO;
    }
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// The length of what [`write_opt`] writes.
pub(crate) const OPT_LEN: usize = 11;
pub(crate) const HEADER_LEN: usize = 12;
/// RFC 1035 §2.3.4.
pub(crate) const MAX_NAME: usize = 255;
/// A 255-byte name has at most 128 labels, root included.
const MAX_LABELS: usize = 128;
/// The payload size we advertise and the largest UDP answer we send: the DNS Flag Day 2020
/// value, which avoids IP fragmentation.
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// RFC 1035 §4.2.1: UDP answers without EDNS.
pub(crate) const CLASSIC_UDP: usize = 512;
pub(crate) const TYPE_OPT: u16 = 41;
const EDNS_DO: u32 = 0x8000;
const OPCODE_QUERY: u8 = 0;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_CD: u16 = 0x0010;

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], ar: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&ar.to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(extra);
        m
    }

    #[test]
    fn rfc1035_section_4_1_2_question_is_parsed_and_lowercased() {
        let msg = query(b"\x03SIP\x07Contoso\x03com\x00", 1, &[], 0);
        let q = Query::parse(&msg).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.rd);
        assert_eq!(q.qtype, 1);
        assert_eq!(q.name.wire(), b"\x03sip\x07contoso\x03com\x00");
        assert_eq!(q.name.label_starts(), &[0, 4, 12, 16]);
        assert_eq!(&q.question[..4], b"\x03SIP");
        assert!(q.edns.is_none());
    }

    #[test]
    fn rfc6891_section_6_1_opt_is_read() {
        let opt = [0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0];
        let msg = query(b"\x00", 6, &opt, 1);
        let q = Query::parse(&msg).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 0,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn rfc6891_section_6_1_1_two_opts_are_formerr() {
        let opt = [0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0];
        let mut extra = opt.to_vec();
        extra.extend_from_slice(&opt);
        let msg = query(b"\x00", 6, &extra, 2);
        assert!(matches!(
            Query::parse(&msg),
            Err(ParseError::FormErr { .. })
        ));
    }

    #[test]
    fn malformed_queries_are_formerr_or_dropped() {
        assert_eq!(Query::parse(&[0; 5]).unwrap_err(), ParseError::Drop);
        let mut response = query(b"\x00", 1, &[], 0);
        response[2] |= 0x80;
        assert_eq!(Query::parse(&response).unwrap_err(), ParseError::Drop);
        // A pointer in the question, a label running past the end, a missing type.
        for bad in [
            query(b"\xc0\x0c", 1, &[], 0),
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab".to_vec(),
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
            // An additional record claimed but absent.
            query(b"\x00", 1, &[], 1),
        ] {
            assert!(
                matches!(Query::parse(&bad), Err(ParseError::FormErr { .. })),
                "{bad:?}"
            );
        }
        let mut two = query(b"\x00", 1, &[], 0);
        two[5] = 2;
        assert!(matches!(
            Query::parse(&two),
            Err(ParseError::FormErr { .. })
        ));
    }

    #[test]
    fn rfc1035_section_4_1_1_other_opcodes_are_notimp() {
        let mut msg = query(b"\x00", 1, &[], 0);
        msg[2] = 0x28; // opcode 5 (UPDATE)
        assert!(matches!(
            Query::parse(&msg),
            Err(ParseError::NotImp { opcode: 5, .. })
        ));
    }

    #[test]
    fn overlong_names_are_formerr() {
        let mut name = Vec::new();
        for _ in 0..5 {
            name.push(63);
            name.extend_from_slice(&[b'a'; 63]);
        }
        name.push(0);
        let msg = query(&name, 1, &[], 0);
        assert!(matches!(
            Query::parse(&msg),
            Err(ParseError::FormErr { .. })
        ));
    }
}
