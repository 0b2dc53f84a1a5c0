//! Bounds on untrusted input, checked where each length or count is read.

/// Upper bounds the parser and the stream deframer enforce. A message over any bound is rejected
/// with an error that [`crate::ParseError::disposition`] maps to `513 Message Too Large`
/// (datagrams) or to closing the connection (streams that cannot be framed), so a peer can never
/// make the server buffer or scan without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line, headers and body) in bytes.
    pub max_message: usize,
    /// Most header fields (lines, after unfolding) in one message.
    pub max_headers: usize,
    /// Longest single header field (name, value and folded continuation lines) or start line.
    pub max_line: usize,
    /// Most Via values (summed over all Via header fields).
    pub max_vias: usize,
}

impl Limits {
    /// 64 KiB: the largest UDP payload, and far above any message a Lync client sends.
    pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;
    /// 256 header fields.
    pub const DEFAULT_MAX_HEADERS: usize = 256;
    /// 8 KiB per line.
    pub const DEFAULT_MAX_LINE: usize = 8 * 1024;
    /// 64 Via values: far more hops than any deployment has, and enough for RFC 4475 §3.1.1.7
    /// (`longreq`, a valid message with 34 Via values).
    pub const DEFAULT_MAX_VIAS: usize = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message: Self::DEFAULT_MAX_MESSAGE,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            max_line: Self::DEFAULT_MAX_LINE,
            max_vias: Self::DEFAULT_MAX_VIAS,
        }
    }
}

impl Limits {
    /// No bounds: for re-checking messages this process built or edited itself.
    pub(crate) fn unbounded() -> Self {
        Self {
            max_message: u32::MAX as usize,
            max_headers: usize::MAX,
            max_line: u32::MAX as usize,
            max_vias: usize::MAX,
        }
    }
}
