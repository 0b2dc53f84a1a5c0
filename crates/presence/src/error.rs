//! The one error type for presence bodies that come from the network.

/// Why a presence body (PIDF, MS-PRES category XML, RLMI, watcherinfo) was rejected.
///
/// Every variant is something a peer did; the server answers it rather than dropping the
/// request. [`BodyError::status_code`] picks the SIP response: 400 for a body that is broken,
/// 415 for one that is well formed but in a form herald does not take, 413 for one that is too
/// big.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is longer than [`crate::Limits::max_body`]; it is refused before any parsing.
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// Elements nest deeper than [`crate::Limits::max_depth`]; bounds the parser's stack.
    #[error("XML nested deeper than {limit} elements")]
    TooDeep {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The document has more elements than [`crate::Limits::max_elements`].
    #[error("more than {limit} XML elements")]
    TooManyElements {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// One element carries more attributes than [`crate::Limits::max_attributes`].
    #[error("more than {limit} attributes on one element")]
    TooManyAttributes {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// A list in the document (resources, parts, contacts, ...) is longer than its bound.
    #[error("more than {limit} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The body is not valid UTF-8, the only encoding SIP presence bodies use in practice.
    #[error("body is not valid UTF-8")]
    NotUtf8,
    /// The XML declaration names an encoding other than UTF-8 (answered with 415).
    #[error("unsupported XML encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The document carries a `<!DOCTYPE>`; no presence format uses one, and refusing DTDs
    /// closes the entity-expansion attacks.
    #[error("document type declarations are not allowed")]
    Doctype,
    /// The XML is not well formed (syntax, mismatched end tags, duplicate attributes, ...).
    #[error("malformed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset of the error in the body.
        position: u64,
        /// The XML parser's description.
        message: String,
    },
    /// An element or attribute uses a namespace prefix that is not declared.
    #[error("undeclared namespace prefix {0:?}")]
    UnboundPrefix(String),
    /// An entity reference other than the five predefined ones or a character reference.
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    /// The body holds no root element.
    #[error("no root element")]
    NoRoot,
    /// The root element is not the one the content type promises.
    #[error("root element is {found}, expected {expected}")]
    UnexpectedRoot {
        /// `{namespace}local` of the root the format requires.
        expected: &'static str,
        /// `{namespace}local` of the root that was found.
        found: String,
    },
    /// A required attribute is absent.
    #[error("<{element}> lacks the {attribute} attribute")]
    MissingAttribute {
        /// The element that lacks it.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
    /// A required child element is absent.
    #[error("<{parent}> lacks a <{child}> element")]
    MissingElement {
        /// The element that lacks it.
        parent: &'static str,
        /// The child's name.
        child: &'static str,
    },
    /// An attribute or element value does not have the form its field requires.
    #[error("invalid {field}: {value:?}")]
    InvalidValue {
        /// Which field (`availability`, `version`, `timestamp`, ...).
        field: &'static str,
        /// The offending text, cut to 64 bytes.
        value: String,
    },
    /// A well-formed body in a form herald does not take: an unknown content type, a multipart
    /// subtype other than related, ... (answered with 415).
    #[error("unsupported {what}: {value:?}")]
    Unsupported {
        /// What kind of thing is unsupported.
        what: &'static str,
        /// The value that was offered.
        value: String,
    },
    /// A `multipart/related` body is broken (no boundary, no closing delimiter, bad part
    /// headers, missing root part).
    #[error("malformed multipart body: {0}")]
    Multipart(&'static str),
}

impl BodyError {
    /// The SIP status code a server answers this error with (RFC 3903 §11.1 step 4, RFC 3261
    /// §21.4.13 and §21.4.14).
    pub fn status_code(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            Self::UnsupportedEncoding(_) | Self::Unsupported { .. } => 415,
            _ => 400,
        }
    }

    /// Whether the body was well formed but of a kind herald does not take (415), as opposed
    /// to broken (400) or too big (413).
    pub fn is_unsupported(&self) -> bool {
        self.status_code() == 415
    }

    pub(crate) fn invalid(field: &'static str, value: &str) -> Self {
        let mut end = value.len().min(64);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Self::InvalidValue {
            field,
            value: value[..end].to_owned(),
        }
    }
}
