//! Splitting a SIP message head into its start line and header fields (RFC 3261 §7.3).

use memchr::memchr;

/// A message's start line and an iterator over its header fields.
///
/// Lines may end in CRLF or a bare LF (RFC 3261 §7.5 asks receivers to accept both); the head
/// ends at the first empty line or, in a truncated datagram, at the end of the input.
pub fn split(message: &[u8]) -> (&[u8], Headers<'_>) {
    let (start, rest) = next_line(message);
    (start, Headers { rest, seen: 0 })
}

/// Header fields in order, with folded continuation lines kept inside the value.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    rest: &'a [u8],
    seen: usize,
}

/// One header field: the name as sent and the value without surrounding whitespace.
///
/// A folded value (RFC 3261 §7.3.1 line continuation) still contains its CRLF and leading
/// whitespace; callers that keep the value unfold it with [`unfold`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The header name as sent, e.g. `Call-ID` or its compact form `i`.
    pub name: &'a [u8],
    /// The value with leading and trailing whitespace removed.
    pub value: &'a [u8],
}

impl Field<'_> {
    /// Whether the field is `long` or its compact form `short` (case-insensitively).
    pub fn is(&self, long: &str, short: Option<u8>) -> bool {
        self.name.eq_ignore_ascii_case(long.as_bytes())
            || short.is_some_and(|s| self.name.len() == 1 && self.name[0].eq_ignore_ascii_case(&s))
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            if self.rest.is_empty() || self.seen >= MAX_HEADERS {
                return None;
            }
            let (line_end, mut next) = line_bounds(self.rest);
            let mut end = line_end;
            if end == 0 {
                // The empty line: end of the head.
                self.rest = &[];
                return None;
            }
            // Swallow continuation lines into this field.
            while let Some(&first) = self.rest.get(next) {
                if first != b' ' && first != b'\t' {
                    break;
                }
                let (cont_end, cont_next) = line_bounds(&self.rest[next..]);
                end = next + cont_end;
                next += cont_next;
            }
            let line = &self.rest[..end];
            self.rest = &self.rest[next..];
            self.seen += 1;
            // A line without a colon is not a header; skip it rather than fail the message.
            let Some(colon) = memchr(b':', line) else {
                continue;
            };
            let name = trim(&line[..colon]);
            if name.is_empty() {
                continue;
            }
            return Some(Field {
                name,
                value: trim(&line[colon + 1..]),
            });
        }
    }
}

/// The value with each folded line break (CR, LF and the whitespace after it) replaced by one
/// space, appended to `out` as text; bytes that are not UTF-8 make it return `false`.
pub fn unfold(value: &[u8], out: &mut String) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let mut parts = text.split(['\r', '\n']).filter(|p| !p.is_empty());
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for part in parts {
        out.push(' ');
        out.push_str(part.trim_start_matches([' ', '\t']));
    }
    true
}

/// Removes leading and trailing SP / HTAB / CR / LF.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}

/// The first line (without its terminator) and what follows it.
fn next_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    let (end, next) = line_bounds(bytes);
    (&bytes[..end], &bytes[next..])
}

/// Where the first line's content ends and where the next line starts.
fn line_bounds(bytes: &[u8]) -> (usize, usize) {
    match memchr(b'\n', bytes) {
        Some(lf) if lf > 0 && bytes[lf - 1] == b'\r' => (lf - 1, lf + 1),
        Some(lf) => (lf, lf + 1),
        None => (bytes.len(), bytes.len()),
    }
}

/// Header fields read from one message at most; a longer head is treated as ending there.
const MAX_HEADERS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &[u8]) -> Vec<(String, String)> {
        split(message)
            .1
            .map(|f| {
                (
                    String::from_utf8_lossy(f.name).into_owned(),
                    String::from_utf8_lossy(f.value).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn rfc3261_section_7_3_splits_names_and_trimmed_values() {
        let (start, _) = split(b"SIP/2.0 200 OK\r\nCall-ID:  a@b \r\ni:c\r\n\r\nbody: no\r\n");
        assert_eq!(start, b"SIP/2.0 200 OK");
        assert_eq!(
            fields(b"SIP/2.0 200 OK\r\nCall-ID:  a@b \r\ni:c\r\n\r\nbody: no\r\n"),
            [("Call-ID".into(), "a@b".into()), ("i".into(), "c".into())]
        );
    }

    #[test]
    fn rfc3261_section_7_5_accepts_bare_lf() {
        assert_eq!(
            fields(b"SIP/2.0 200 OK\nCSeq: 1 REGISTER\n\n"),
            [("CSeq".into(), "1 REGISTER".into())]
        );
    }

    #[test]
    fn rfc3261_section_7_3_1_folded_value_is_one_field() {
        let message =
            b"SIP/2.0 401 X\r\nWWW-Authenticate: Digest realm=\"r\",\r\n  nonce=\"n\"\r\n\r\n";
        let f = split(message).1.next().unwrap();
        let mut out = String::new();
        assert!(unfold(f.value, &mut out));
        assert_eq!(out, "Digest realm=\"r\", nonce=\"n\"");
    }

    #[test]
    fn odd_lines_are_skipped_and_truncation_ends_the_head() {
        assert_eq!(
            fields(b"SIP/2.0 200 OK\r\nno colon here\r\n: empty name\r\nCSeq: 2 REGISTER"),
            [("CSeq".into(), "2 REGISTER".into())]
        );
        assert_eq!(fields(b""), []);
        assert!(
            Field {
                name: b"I",
                value: b""
            }
            .is("Call-ID", Some(b'i'))
        );
        assert!(
            !Field {
                name: b"ii",
                value: b""
            }
            .is("Call-ID", Some(b'i'))
        );
    }
}
