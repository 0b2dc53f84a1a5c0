//! The one error type for everything that can be wrong with bytes from the network.

/// Why a message (or a URI, or a header value given to a mutator) was rejected.
///
/// What to do about it depends on the transport and on how much of the message could be read;
/// [`ParseError::disposition`] decides that (answer, drop, or close the connection).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input held no message: it was empty or only CRLF keep-alives.
    #[error("no message in input")]
    Empty,
    /// The header section was not ended by an empty line.
    #[error("header section is not terminated by an empty line")]
    Unterminated,
    /// The message is larger than [`crate::Limits::max_message`].
    #[error("message larger than {limit} bytes")]
    MessageTooLarge {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The message has more header fields than [`crate::Limits::max_headers`].
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// A start line or header field is longer than [`crate::Limits::max_line`].
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The message has more Via values than [`crate::Limits::max_vias`].
    #[error("more than {limit} Via values")]
    TooManyVias {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The start line is neither a Request-Line nor a Status-Line (wrong spacing, bad method
    /// token, missing parts).
    #[error("malformed start line")]
    BadStartLine,
    /// The Request-URI is malformed (embedded LWS, `<>`, bad SIP URI syntax).
    #[error("malformed Request-URI")]
    BadRequestUri,
    /// The SIP Request-URI carries headers (`?Route=...`), which RFC 3261 §19.1.5 forbids there.
    #[error("Request-URI carries URI headers")]
    RequestUriHeaders,
    /// The SIP version is well formed but not 2.0 (answered with 505).
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code")]
    BadStatusCode,
    /// A header line has no colon, a non-token name, or a bare CR/LF.
    #[error("malformed header line")]
    BadHeaderLine,
    /// A header every message must carry is absent.
    #[error("missing {header} header")]
    MissingHeader {
        /// The canonical header name.
        header: &'static str,
    },
    /// A single-valued header appears more than once.
    #[error("{header} header appears more than once")]
    DuplicateHeader {
        /// The canonical header name.
        header: &'static str,
    },
    /// A header value does not match its grammar (including out-of-range numbers).
    #[error("malformed {header} header")]
    InvalidHeader {
        /// The canonical header name.
        header: &'static str,
    },
    /// The CSeq method differs from the request method (RFC 3261 §8.2; RFC 4475 §3.1.2.17).
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// A message on a stream transport has no Content-Length (RFC 3261 §18.3).
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// A datagram's body is shorter than its Content-Length.
    #[error("body is {actual} bytes but Content-Length says {expected}")]
    BodyTruncated {
        /// The Content-Length value.
        expected: usize,
        /// The bytes actually present.
        actual: usize,
    },
    /// A URI does not match its grammar.
    #[error("malformed URI")]
    InvalidUri,
    /// A value given to a header mutator cannot be put on the wire (CR/LF or a grammar error in
    /// a header the crate always decodes).
    #[error("invalid header value")]
    InvalidHeaderValue,
}

impl ParseError {
    /// Whether the error means the byte stream can no longer be split into messages, so a stream
    /// connection must be closed (RFC 4475 §3.1.2.3, §3.3.9).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            Self::Unterminated
                | Self::MissingContentLength
                | Self::BodyTruncated { .. }
                | Self::InvalidHeader {
                    header: "Content-Length"
                }
                | Self::DuplicateHeader {
                    header: "Content-Length"
                }
        )
    }

    /// Whether the error is a size bound (answered with 513 Message Too Large).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Self::MessageTooLarge { .. }
                | Self::TooManyHeaders { .. }
                | Self::LineTooLong { .. }
                | Self::TooManyVias { .. }
        )
    }
}
