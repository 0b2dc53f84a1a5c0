//! Byte-level scanning shared by every parser in the crate: character classes from the RFC 3261
//! §25 grammar, a cursor that understands LWS (including folded lines), and the generic
//! `;name=value` parameter grammar used by most header fields.
//!
//! Everything here works on spans (`u32` offsets) into one borrowed slice so the hot path makes no
//! allocations and touches no reference counts; the typed layers turn spans into `Bytes` slices.

use std::ops::Range;

use crate::error::ParseError;

/// A half-open byte range inside some buffer. `u32` keeps typed headers small; inputs are bounded
/// by [`crate::Limits`] (and every public entry point rejects inputs over `u32::MAX`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end);
        Self {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn get(self, b: &[u8]) -> &[u8] {
        &b[self.range()]
    }

    pub(crate) fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub(crate) fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// Moves the span back by `by` bytes (used when leading bytes are cut off the buffer).
    pub(crate) fn shift_back(self, by: usize) -> Self {
        Self::new(self.start as usize - by, self.end as usize - by)
    }
}

/// A zero-copy `Bytes` for `part`, which callers take from `src`; copies instead of panicking if
/// that invariant were ever broken.
pub(crate) fn share(src: &bytes::Bytes, part: &[u8]) -> bytes::Bytes {
    let (s, p) = (src.as_ptr() as usize, part.as_ptr() as usize);
    if p >= s && p + part.len() <= s + src.len() {
        src.slice_ref(part)
    } else {
        debug_assert!(
            part.is_empty(),
            "scanner invariant: part must lie inside src"
        );
        bytes::Bytes::copy_from_slice(part)
    }
}

/// Returns the `str` for bytes that a scanner has already checked are ASCII (or valid UTF-8);
/// falls back to an empty string rather than panicking if that invariant were ever broken.
pub(crate) fn ascii_str(b: &[u8]) -> &str {
    match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(_) => {
            debug_assert!(false, "scanner invariant: expected ASCII");
            ""
        }
    }
}

/// A cursor over one header value (or URI). LWS inside header values (SP, HTAB and the CRLF of a
/// folded line) is skipped by [`Cursor::skip_lws`]; framing has already ensured that a CR or LF
/// inside a value is always part of a fold.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Skips linear white space. Returns whether anything was skipped.
    pub(crate) fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.pos != start
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `c` surrounded by optional LWS (the RFC's SEMI, COMMA, EQUAL, SLASH, COLON).
    pub(crate) fn eat_sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_lws();
        if self.eat(c) {
            self.skip_lws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consumes the longest run of bytes of `class`.
    pub(crate) fn take_class(&mut self, class: u16) -> Span {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is(c, class) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Span::new(start, self.pos)
    }

    /// Consumes a non-empty token.
    pub(crate) fn token(&mut self) -> Option<Span> {
        let s = self.take_class(TOKEN);
        (!s.is_empty()).then_some(s)
    }

    /// Consumes a quoted string starting at the current `"`; the span includes both quotes.
    pub(crate) fn quoted(&mut self) -> Result<Span, ()> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(());
        }
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Span::new(start, self.pos));
                }
                b'\\' => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F): CR and LF may not be quoted.
                    match self.b.get(self.pos + 1) {
                        Some(b'\r' | b'\n') | None => return Err(()),
                        Some(_) => self.pos += 2,
                    }
                }
                _ => self.pos += 1,
            }
        }
        Err(())
    }

    /// Consumes a generic-param value: token, host (incl. an IPv6 reference) or quoted string.
    pub(crate) fn gen_value(&mut self) -> Result<Span, ()> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'[') => {
                let start = self.pos;
                let rest = &self.b[self.pos..];
                match memchr::memchr(b']', rest) {
                    Some(i) => {
                        self.pos += i + 1;
                        Ok(Span::new(start, self.pos))
                    }
                    None => Err(()),
                }
            }
            _ => {
                // The one value with colons outside brackets: Via's `received` holds a bare
                // IPv6address (RFC 3261 §25.1 via-received), e.g. `received=2001:db8::9`.
                let start = self.pos;
                let run = self.b[start..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'))
                    .count();
                let candidate = &self.b[start..start + run];
                let next_is_token = self.b.get(start + run).is_some_and(|&c| is(c, TOKEN));
                if candidate.contains(&b':') && !next_is_token {
                    self.pos = start + run;
                    return Ok(Span::new(start, self.pos));
                }
                self.token().ok_or(())
            }
        }
    }

    /// Parses `*( SEMI generic-param )` (header parameters, LWS allowed around `;` and `=`),
    /// calling `f` for each one. Stops before a `,` (list separator) or at the end; anything else
    /// is an error. Returns the span covering all parameters (from the first `;`).
    pub(crate) fn params(
        &mut self,
        mut f: impl FnMut(Span, Option<Span>) -> Result<(), ()>,
    ) -> Result<Span, ()> {
        let start = {
            let save = self.pos;
            self.skip_lws();
            let p = self.pos;
            self.pos = save;
            p
        };
        let mut end = start;
        loop {
            if !self.eat_sep(b';') {
                break;
            }
            let name = self.token().ok_or(())?;
            let value = if self.eat_sep(b'=') {
                Some(self.gen_value()?)
            } else {
                None
            };
            end = self.pos;
            f(name, value)?;
        }
        // Whatever follows must be the end of the element.
        let save = self.pos;
        self.skip_lws();
        match self.peek() {
            None | Some(b',') => {
                self.pos = save;
                Ok(Span::new(start, end.max(start)))
            }
            Some(_) => Err(()),
        }
    }
}

/// Iterates over `(name, Option<value>)` of a parameter section that was already validated by
/// [`Cursor::params`] (header params) or by the URI parser (`uri == true`: no LWS, `;` only).
pub(crate) struct ParamIter<'a> {
    cur: Cursor<'a>,
    uri: bool,
}

impl<'a> ParamIter<'a> {
    pub(crate) fn header(b: &'a [u8]) -> Self {
        Self {
            cur: Cursor::new(b),
            uri: false,
        }
    }

    pub(crate) fn uri(b: &'a [u8]) -> Self {
        Self {
            cur: Cursor::new(b),
            uri: true,
        }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let c = &mut self.cur;
        if self.uri {
            if !c.eat(b';') {
                return None;
            }
            let rest = &c.b[c.pos..];
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let item = &rest[..end];
            c.pos += end;
            return Some(match memchr::memchr(b'=', item) {
                Some(i) => (&item[..i], Some(&item[i + 1..])),
                None => (item, None),
            });
        }
        if !c.eat_sep(b';') {
            return None;
        }
        let name = c.token()?;
        let value = if c.eat_sep(b'=') {
            c.gen_value().ok()
        } else {
            None
        };
        Some((name.get(c.b), value.map(|v| v.get(c.b))))
    }
}

/// Splits a header value at top-level commas (outside quotes and angle brackets), trimming LWS.
pub(crate) fn split_commas(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    let mut done = v.is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = pos;
        let mut in_quote = false;
        let mut in_angle = false;
        while pos < v.len() {
            match v[pos] {
                b'\\' if in_quote => pos += 1,
                b'"' => in_quote = !in_quote,
                b'<' if !in_quote => in_angle = true,
                b'>' if !in_quote => in_angle = false,
                b',' if !in_quote && !in_angle => break,
                _ => {}
            }
            pos += 1;
        }
        let item = trim_lws(&v[start..pos.min(v.len())]);
        if pos >= v.len() {
            done = true;
        } else {
            pos += 1;
        }
        Some(item)
    })
}

/// Trims leading and trailing LWS.
pub(crate) fn trim_lws(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if matches!(first, b' ' | b'\t' | b'\r' | b'\n') {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if matches!(last, b' ' | b'\t' | b'\r' | b'\n') {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Parses an unsigned decimal of at most `u32` (leading zeros allowed, no sign, no LWS).
pub(crate) fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

/// Removes the quotes and quoted-pair escapes of a quoted string (span including quotes).
pub(crate) fn unquote(q: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let [b'"', inner @ .., b'"'] = q else {
        return std::borrow::Cow::Borrowed(q);
    };
    if memchr::memchr(b'\\', inner).is_none() {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            i += 1;
        }
        out.push(inner[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

/// Decodes `%HH` escapes; invalid escapes are kept literally (callers validated them already).
pub(crate) fn unescape(b: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memchr(b'%', b).is_none() {
        return std::borrow::Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Checks that every byte is in `class` or is part of a valid `%HH` escape.
pub(crate) fn all_escaped(b: &[u8], class: u16) -> bool {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if b.get(i + 1).and_then(hex).is_none() || b.get(i + 2).and_then(hex).is_none() {
                return false;
            }
            i += 3;
        } else if is(c, class) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Maps an internal `Err(())` to a precise error for header `header`.
pub(crate) fn invalid(header: &'static str) -> impl Fn(()) -> ParseError {
    move |()| ParseError::InvalidHeader { header }
}

#[inline]
pub(crate) fn is(c: u8, class: u16) -> bool {
    CLASS[c as usize] & class != 0
}

/// RFC 3261 `token`.
pub(crate) const TOKEN: u16 = 1 << 0;
/// RFC 3261 `word` (Call-ID).
pub(crate) const WORD: u16 = 1 << 1;
/// RFC 3261 `unreserved` (alphanum / mark).
pub(crate) const UNRESERVED: u16 = 1 << 2;
/// `user` characters other than escapes: unreserved / user-unreserved.
pub(crate) const USER: u16 = 1 << 3;
/// `password` characters other than escapes.
pub(crate) const PASSWORD: u16 = 1 << 4;
/// `paramchar` other than escapes.
pub(crate) const PARAMCHAR: u16 = 1 << 5;
/// `hname`/`hvalue` characters other than escapes.
pub(crate) const HCHAR: u16 = 1 << 6;
/// Hostname characters (alphanum, `-`, `.`, and `_` seen in the wild).
pub(crate) const HOST: u16 = 1 << 7;
/// URI scheme characters after the first.
pub(crate) const SCHEME: u16 = 1 << 8;
/// Characters allowed in an opaque (non-SIP) URI: any visible ASCII or non-ASCII except `<>"`
/// and whitespace.
pub(crate) const OPAQUE: u16 = 1 << 9;
/// Characters of `tel:` numbers and parameters (RFC 3966, loosely).
pub(crate) const TEL: u16 = 1 << 10;

static CLASS: [u16; 256] = build_classes();

const fn build_classes() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut v = 0u16;
        let mark = matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        );
        if alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            v |= TOKEN;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'.'
                    | b'!'
                    | b'%'
                    | b'*'
                    | b'_'
                    | b'+'
                    | b'`'
                    | b'\''
                    | b'~'
                    | b'('
                    | b')'
                    | b'<'
                    | b'>'
                    | b':'
                    | b'\\'
                    | b'"'
                    | b'/'
                    | b'['
                    | b']'
                    | b'?'
                    | b'{'
                    | b'}'
            )
        {
            v |= WORD;
        }
        if alnum || mark {
            v |= UNRESERVED;
            v |= USER | PASSWORD | PARAMCHAR | HCHAR;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            v |= USER;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            v |= PASSWORD;
        }
        if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            v |= PARAMCHAR;
        }
        if matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            v |= HCHAR;
        }
        if alnum || matches!(b, b'-' | b'.' | b'_') {
            v |= HOST;
        }
        if alnum || matches!(b, b'+' | b'-' | b'.') {
            v |= SCHEME;
        }
        if (b > 0x20 && b != 0x7f && !matches!(b, b'<' | b'>' | b'"')) || b >= 0x80 {
            v |= OPAQUE;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'.' | b'(' | b')' | b'+' | b'*' | b'#' | b'%' | b'_' | b'!'
            )
        {
            v |= TEL;
        }
        t[c] = v;
        c += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_lws_and_values() {
        let v = b" ;  tag    = 1918181833n ; x";
        let mut c = Cursor::new(v);
        let mut seen = Vec::new();
        c.params(|n, val| {
            seen.push((n.get(v).to_vec(), val.map(|s| s.get(v).to_vec())));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], (b"tag".to_vec(), Some(b"1918181833n".to_vec())));
        assert_eq!(seen[1], (b"x".to_vec(), None));
    }

    #[test]
    fn params_reject_empty() {
        let v = b";;";
        assert!(Cursor::new(v).params(|_, _| Ok(())).is_err());
    }

    #[test]
    fn split_commas_respects_quotes_and_angles() {
        let v = br#""a,b" <sip:x;a=1,2>, c , d"#;
        let parts: Vec<_> = split_commas(v).collect();
        assert_eq!(parts, vec![&br#""a,b" <sip:x;a=1,2>"#[..], b"c", b"d"]);
    }

    #[test]
    fn unescape_and_unquote() {
        assert_eq!(&*unescape(b"a%41%zz"), b"aA%zz");
        assert_eq!(&*unquote(br#""J \"x\"""#), br#"J "x""#);
        assert!(all_escaped(b"null-%00-null", USER));
        assert!(!all_escaped(b"%zz", USER));
    }

    #[test]
    fn u32_parse_bounds() {
        assert_eq!(parse_u32(b"0009"), Some(9));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b""), None);
    }
}
