//! The `auth-scheme auth-param *(COMMA auth-param)` grammar shared by every scheme
//! (RFC 3261 §25.1), and quoted-string formatting.

use crate::credentials::CredentialsError;

/// One `name=value` pair, with quoted-string escapes already removed.
#[derive(Debug)]
pub(crate) struct RawParam<'a> {
    /// The name as written; compare it case-insensitively.
    pub(crate) name: &'a str,
    pub(crate) value: String,
}

/// Splits a header value into its scheme and parameters, bounding every length and count.
pub(crate) fn split(input: &[u8]) -> Result<(&str, Vec<RawParam<'_>>), CredentialsError> {
    if input.len() > MAX_HEADER_LEN {
        return Err(CredentialsError::TooLong {
            len: input.len(),
            max: MAX_HEADER_LEN,
        });
    }
    let mut cursor = Cursor { input, pos: 0 };
    cursor.skip_ws();
    let scheme = cursor.token();
    if scheme.is_empty() {
        return Err(CredentialsError::MissingScheme);
    }
    let mut params = Vec::new();
    let after_scheme = cursor.pos;
    cursor.skip_ws();
    if cursor.at_end() {
        return Ok((scheme, params));
    }
    if cursor.pos == after_scheme {
        return Err(cursor.syntax("whitespace after the scheme"));
    }
    loop {
        if params.len() == MAX_PARAMS {
            return Err(CredentialsError::TooManyParams { max: MAX_PARAMS });
        }
        let name = cursor.token();
        if name.is_empty() {
            return Err(cursor.syntax("a parameter name"));
        }
        cursor.skip_ws();
        if !cursor.eat(b'=') {
            return Err(cursor.syntax("'='"));
        }
        cursor.skip_ws();
        let value = if cursor.peek() == Some(b'"') {
            cursor.quoted_string(name)?
        } else {
            let value = cursor.bare_value();
            if value.is_empty() {
                return Err(cursor.syntax("a token or quoted-string"));
            }
            if value.len() > MAX_VALUE_LEN {
                return Err(value_too_long(name));
            }
            value.to_owned()
        };
        params.push(RawParam { name, value });
        cursor.skip_ws();
        if cursor.at_end() {
            return Ok((scheme, params));
        }
        if !cursor.eat(b',') {
            return Err(cursor.syntax("',' or the end of the header"));
        }
        cursor.skip_ws();
    }
}

/// Appends `value` as a quoted-string, escaping what RFC 3261 §25.1 `quoted-pair` requires.
///
/// Control characters are dropped: the parser never yields them, and a realm from configuration
/// must not be able to split a header line.
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for ch in value.chars() {
        if ch.is_control() && ch != '\t' {
            continue;
        }
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// LWS, including the CRLF of a folded line the codec may have left in place.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        self.ascii_slice(start)
    }

    /// An unquoted value: stricter than nothing, looser than `token`, because clients send
    /// unquoted values such as `algorithm=SHA-256` and some send `qop=auth` style values
    /// containing characters outside `token`.
    fn bare_value(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
        {
            self.pos += 1;
        }
        self.ascii_slice(start)
    }

    fn ascii_slice(&self, start: usize) -> &'a str {
        // Only ASCII bytes were consumed, so the slice is valid UTF-8.
        std::str::from_utf8(&self.input[start..self.pos]).unwrap_or_default()
    }

    fn quoted_string(&mut self, name: &str) -> Result<String, CredentialsError> {
        self.pos += 1; // the opening quote, checked by the caller
        let mut bytes = Vec::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.syntax("a closing '\"'"));
            };
            self.pos += 1;
            let byte = match byte {
                b'"' => break,
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(self.syntax("a character after '\\'"));
                    };
                    self.pos += 1;
                    escaped
                }
                other => other,
            };
            if (byte < 0x20 && byte != b'\t') || byte == 0x7f {
                return Err(CredentialsError::ControlCharacter { param: lower(name) });
            }
            if bytes.len() == MAX_VALUE_LEN {
                return Err(value_too_long(name));
            }
            bytes.push(byte);
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| CredentialsError::NotUtf8 { param: lower(name) })?;
        // C1 controls (U+0080..U+009F) are controls too: refused like the ASCII ones, so every
        // accepted value prints back unchanged.
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err(CredentialsError::ControlCharacter { param: lower(name) });
        }
        Ok(text)
    }

    fn syntax(&self, expected: &'static str) -> CredentialsError {
        CredentialsError::Syntax {
            offset: self.pos,
            expected,
        }
    }
}

fn value_too_long(name: &str) -> CredentialsError {
    CredentialsError::ValueTooLong {
        param: lower(name),
        max: MAX_VALUE_LEN,
    }
}

fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// RFC 3261 §25.1 `token`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Longest header value accepted; generous for NTLM/Kerberos blobs, small enough to bound work.
pub(crate) const MAX_HEADER_LEN: usize = 8192;
/// Longest single parameter value after unescaping (a Request-URI is the long one in Digest).
pub(crate) const MAX_VALUE_LEN: usize = 4096;
/// Most parameters accepted in one header value; Digest uses at most eleven.
pub(crate) const MAX_PARAMS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_section_25_1_quoted_pair_is_unescaped() {
        let (scheme, params) = split(br#"Digest username="a\"b\\c", qop=auth"#).unwrap();
        assert_eq!(scheme, "Digest");
        assert_eq!(params[0].value, r#"a"b\c"#);
        assert_eq!(params[1].value, "auth");
    }

    #[test]
    fn c1_control_characters_are_refused() {
        let header = "Digest username=\"a\", uri=\"sip\u{92}x\"";
        assert!(matches!(
            crate::Credentials::parse(header.as_bytes()),
            Err(CredentialsError::ControlCharacter { .. })
        ));
    }

    #[test]
    fn push_quoted_escapes_quote_and_backslash() {
        let mut out = String::new();
        push_quoted(&mut out, r#"a"b\c"#);
        assert_eq!(out, r#""a\"b\\c""#);
    }

    #[test]
    fn scheme_only_has_no_params() {
        let (scheme, params) = split(b"  NTLM  ").unwrap();
        assert_eq!(scheme, "NTLM");
        assert!(params.is_empty());
    }

    #[test]
    fn folded_lines_are_whitespace() {
        let (_, params) = split(b"Digest a=\"1\",\r\n b=2").unwrap();
        assert_eq!(params.len(), 2);
    }
}
