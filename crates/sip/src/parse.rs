//! The framing pass and the always-decoded headers.
//!
//! One pass over the bytes with `memchr` finds the start line, every header field (unfolding
//! continuation lines) and the body; then Via, From, To, Call-ID, CSeq, Max-Forwards and
//! Content-Length are decoded so a malformed one always yields the same error. Everything else
//! stays a `(name, value span)` until someone asks for it.

use bytes::Bytes;

use crate::error::ParseError;
use crate::header_name::HeaderName;
use crate::limits::Limits;
use crate::message::{Core, Field, Message, Parts, Request, Response};
use crate::method::Method;
use crate::name_addr::NameAddr;
use crate::scan::{self, Span};
use crate::typed::{self, CSeq};
use crate::uri::Uri;
use crate::via::Via;

/// How the message reached us, which decides the Content-Length rules (RFC 3261 §18.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Content-Length optional; surplus bytes after the body are discarded.
    Datagram,
    /// Content-Length required and the input is exactly one message.
    Stream,
}

/// Parses one message from `input`.
pub(crate) fn parse(input: Bytes, limits: &Limits, mode: Mode) -> Result<Message, ParseError> {
    let b = &input[..];
    let mut start = 0;
    while b[start..].starts_with(b"\r\n") {
        start += 2;
    }
    if start == b.len() {
        return Err(ParseError::Empty);
    }
    if b.len() - start > limits.max_message || b.len() > u32::MAX as usize {
        return Err(ParseError::MessageTooLarge {
            limit: limits.max_message,
        });
    }

    // Start line.
    let sl_end = find_line_end(b, start, limits.max_line)?;
    let line = &b[start..sl_end - 2];
    let start_line = parse_start_line(&input, line)?;

    // Header fields.
    let mut fields = Vec::with_capacity(16);
    let mut pos = sl_end;
    let mut content_length: Option<(usize, u32)> = None;
    loop {
        match b.get(pos) {
            None => return Err(ParseError::Unterminated),
            Some(b'\r') if b.get(pos + 1) == Some(&b'\n') => {
                pos += 2;
                break;
            }
            Some(b'\r' | b'\n' | b' ' | b'\t') => return Err(ParseError::BadHeaderLine),
            Some(_) => {}
        }
        let fstart = pos;
        let mut scan_from = pos;
        let fend = loop {
            let budget = limits.max_line.saturating_sub(scan_from - fstart);
            let end = find_line_end(b, scan_from, budget).map_err(|e| match e {
                ParseError::LineTooLong { .. } => ParseError::LineTooLong {
                    limit: limits.max_line,
                },
                e => e,
            })?;
            match b.get(end) {
                Some(b' ' | b'\t') => scan_from = end,
                _ => break end,
            }
        };
        let line = &b[fstart..fend - 2];
        let colon = line
            .iter()
            .position(|&c| c == b':')
            .ok_or(ParseError::BadHeaderLine)?;
        let raw_name = match line[..colon].last() {
            Some(b' ' | b'\t' | b'\r' | b'\n') => scan::trim_lws(&line[..colon]),
            _ => &line[..colon],
        };
        let name = HeaderName::from_wire(&input, raw_name).ok_or(ParseError::BadHeaderLine)?;
        let value = match &line[colon + 1..] {
            // The common `Name: value` shape, with no trailing LWS, needs no scanning.
            [b' ', v @ ..]
                if !matches!(v.first(), Some(b' ' | b'\t' | b'\r' | b'\n') | None)
                    && !matches!(v.last(), Some(b' ' | b'\t' | b'\r' | b'\n')) =>
            {
                v
            }
            v => scan::trim_lws(v),
        };
        let value_span = if value.is_empty() {
            Span::new(fend - 2, fend - 2)
        } else {
            let vs = value.as_ptr() as usize - b.as_ptr() as usize;
            Span::new(vs, vs + value.len())
        };
        if matches!(name, HeaderName::ContentLength) {
            let cl = typed::parse_number(value, "Content-Length")?;
            if content_length.is_some() {
                return Err(ParseError::DuplicateHeader {
                    header: "Content-Length",
                });
            }
            content_length = Some((fields.len(), cl));
        }
        if fields.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        fields.push(Field {
            name,
            own: None,
            line: Span::new(fstart, fend),
            name_span: Span::new(fstart, fstart + raw_name.len()),
            value: value_span,
        });
        pos = fend;
    }

    // Body (RFC 3261 §18.3).
    let header_end = pos;
    let avail = b.len() - header_end;
    let body_end = match (content_length, mode) {
        (Some((_, cl)), Mode::Datagram) => {
            let cl = cl as usize;
            if cl > avail {
                return Err(ParseError::BodyTruncated {
                    expected: cl,
                    actual: avail,
                });
            }
            header_end + cl
        }
        (Some((_, cl)), Mode::Stream) => {
            let cl = cl as usize;
            if cl != avail {
                return Err(ParseError::BodyTruncated {
                    expected: cl,
                    actual: avail,
                });
            }
            b.len()
        }
        (None, Mode::Datagram) => b.len(),
        (None, Mode::Stream) => return Err(ParseError::MissingContentLength),
    };

    let method = match &start_line {
        StartLine::Request { method, .. } => Some(method),
        StartLine::Response { .. } => None,
    };
    let core = decode_core(&input, &fields, limits, method)?;

    let buf = input.slice(start..body_end);
    let body = input.slice(header_end..body_end);
    if start != 0 {
        for f in &mut fields {
            f.line = f.line.shift_back(start);
            f.name_span = f.name_span.shift_back(start);
            f.value = f.value.shift_back(start);
        }
    }
    let parts = Parts {
        buf,
        start: Span::new(0, sl_end - 2 - start),
        fields,
        body,
        dirty: false,
        core: Box::new(core),
    };
    Ok(match start_line {
        StartLine::Request { method, uri } => Message::Request(Request { method, uri, parts }),
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason: reason.shift_back(start),
            parts,
        }),
    })
}

/// Decodes the headers every message must carry. `base` holds every field whose `own` is `None`.
pub(crate) fn decode_core(
    base: &Bytes,
    fields: &[Field],
    limits: &Limits,
    request_method: Option<&Method>,
) -> Result<Core, ParseError> {
    let mut vias = Vec::new();
    let mut from = None;
    let mut to = None;
    let mut call_id = None;
    let mut cseq = None;
    let mut max_forwards = None;
    let mut content_length = None;
    for f in fields {
        let src = f.own.as_ref().unwrap_or(base);
        let v = f.value.get(src);
        match f.name {
            HeaderName::Via => Via::parse_list(src, v, &mut vias, limits.max_vias)?,
            HeaderName::From => once(&mut from, "From", || NameAddr::parse_single(src, v, "From"))?,
            HeaderName::To => once(&mut to, "To", || NameAddr::parse_single(src, v, "To"))?,
            HeaderName::CallId => once(&mut call_id, "Call-ID", || typed::parse_call_id(src, v))?,
            HeaderName::CSeq => once(&mut cseq, "CSeq", || CSeq::parse(src, v))?,
            HeaderName::MaxForwards => once(&mut max_forwards, "Max-Forwards", || {
                let n = typed::parse_number(v, "Max-Forwards")?;
                u8::try_from(n).map_err(|_| ParseError::InvalidHeader {
                    header: "Max-Forwards",
                })
            })?,
            HeaderName::ContentLength => {
                once(&mut content_length, "Content-Length", || {
                    typed::parse_number(v, "Content-Length")
                })?;
            }
            _ => {}
        }
    }
    if vias.is_empty() {
        return Err(ParseError::MissingHeader { header: "Via" });
    }
    let from = from.ok_or(ParseError::MissingHeader { header: "From" })?;
    let to = to.ok_or(ParseError::MissingHeader { header: "To" })?;
    let call_id = call_id.ok_or(ParseError::MissingHeader { header: "Call-ID" })?;
    let cseq = cseq.ok_or(ParseError::MissingHeader { header: "CSeq" })?;
    if let Some(m) = request_method
        && cseq.method != *m
    {
        return Err(ParseError::CSeqMethodMismatch);
    }
    Ok(Core {
        vias,
        from,
        to,
        call_id,
        cseq,
        max_forwards,
        content_length,
    })
}

enum StartLine {
    Request { method: Method, uri: Uri },
    Response { status: u16, reason: Span },
}

fn parse_start_line(input: &Bytes, line: &[u8]) -> Result<StartLine, ParseError> {
    let base = line.as_ptr() as usize - input.as_ptr() as usize;
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = memchr::memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
        check_version(&line[..sp])?;
        let rest = &line[sp + 1..];
        let code_end = rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if code_end != 3 {
            return Err(ParseError::BadStatusCode);
        }
        let status = rest[..3]
            .iter()
            .fold(0u16, |a, &c| a * 10 + u16::from(c - b'0'));
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStatusCode);
        }
        let reason = match rest.get(3) {
            None => Span::new(base + line.len(), base + line.len()),
            Some(b' ') => Span::new(base + sp + 5, base + line.len()),
            Some(_) => return Err(ParseError::BadStatusCode),
        };
        return Ok(StartLine::Response { status, reason });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
    let sp2 = memchr::memrchr(b' ', line).ok_or(ParseError::BadStartLine)?;
    if sp2 <= sp1 {
        return Err(ParseError::BadStartLine);
    }
    let method = Method::from_token(input, &line[..sp1]).ok_or(ParseError::BadStartLine)?;
    check_version(&line[sp2 + 1..])?;
    let uri = &line[sp1 + 1..sp2];
    if uri.is_empty() || uri.iter().any(|&c| matches!(c, b' ' | b'\t' | b'<' | b'>')) {
        return Err(ParseError::BadRequestUri);
    }
    let uri = Uri::parse(scan::share(input, uri)).map_err(|_| ParseError::BadRequestUri)?;
    if uri.sip().is_some_and(|u| u.headers().is_some()) {
        return Err(ParseError::RequestUriHeaders);
    }
    Ok(StartLine::Request { method, uri })
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`; only 2.0 is supported (else 505).
fn check_version(v: &[u8]) -> Result<(), ParseError> {
    if v.len() < 4 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(ParseError::BadStartLine);
    }
    let num = &v[4..];
    let dot = memchr::memchr(b'.', num).ok_or(ParseError::BadStartLine)?;
    let (major, minor) = (&num[..dot], &num[dot + 1..]);
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if !digits(major) || !digits(minor) {
        return Err(ParseError::BadStartLine);
    }
    if num != b"2.0" {
        return Err(ParseError::UnsupportedVersion);
    }
    Ok(())
}

/// Finds the end of the line starting at `from` (index after its CRLF), enforcing `max` bytes.
fn find_line_end(b: &[u8], from: usize, max: usize) -> Result<usize, ParseError> {
    let window = &b[from..b.len().min(from.saturating_add(max).saturating_add(2))];
    match memchr::memchr(b'\n', window) {
        Some(i) => {
            if i == 0 || window[i - 1] != b'\r' {
                return Err(ParseError::BadHeaderLine);
            }
            if i - 1 > max {
                return Err(ParseError::LineTooLong { limit: max });
            }
            Ok(from + i + 1)
        }
        None if window.len() < b.len() - from => Err(ParseError::LineTooLong { limit: max }),
        None => Err(ParseError::Unterminated),
    }
}

fn once<T>(
    slot: &mut Option<T>,
    header: &'static str,
    f: impl FnOnce() -> Result<T, ParseError>,
) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::DuplicateHeader { header });
    }
    *slot = Some(f()?);
    Ok(())
}
