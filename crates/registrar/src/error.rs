//! The failures a caller of this crate has to answer or fix.

use thiserror::Error;

/// Why a REGISTER was refused. Nothing was changed when one of these is returned: RFC 3261 §10.3
/// processes a REGISTER atomically, so the registrar validates every Contact before it applies any.
///
/// The runtime answers with [`RegisterError::status_code`] and [`RegisterError::reason_phrase`];
/// the `Display` text is meant for a `Warning: 399` (or `ms-diagnostics-public`) header, which is
/// where SIPE takes the text it shows its user on a 403.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// `Contact: *` came with other Contact values. RFC 3261 §10.3 step 6: 400.
    #[error("Contact: * must be the only Contact value")]
    WildcardNotAlone,
    /// `Contact: *` came without `Expires: 0`. RFC 3261 §10.3 step 6: 400.
    #[error("Contact: * requires Expires: 0")]
    WildcardNeedsExpiresZero,
    /// A Contact asked for a non-zero expiry below the configured minimum. RFC 3261 §10.3 step 7:
    /// 423 with a `Min-Expires: {min_expires}` header, which the runtime must add.
    #[error("registration interval too brief; minimum is {min_expires} seconds")]
    IntervalTooBrief {
        /// The value for the `Min-Expires` header.
        min_expires: u32,
    },
    /// The REGISTER carries the Call-ID of an existing binding with a CSeq that is not higher than
    /// the stored one: it is a late or duplicated request. RFC 3261 §10.3 steps 6 and 7 say "the
    /// update MUST be aborted and the request fails" without naming a code; the only code §10.3
    /// gives for a failed binding update is 500 (end of step 7), so that is what we answer.
    #[error("out-of-order REGISTER: CSeq {cseq} is not higher than {stored} for this Call-ID")]
    OutOfOrder {
        /// CSeq number of the refused request.
        cseq: u32,
        /// CSeq number stored with the binding.
        stored: u32,
    },
    /// Accepting the REGISTER would leave the AOR with more bindings than
    /// `max_bindings_per_aor` (Lync's MaxEndpointsPerUser, default 8). The briefs do not say which
    /// code Lync sends; we answer 403, which SIPE reports as "rejected by the server" together
    /// with this text, rather than evicting another endpoint of the user behind their back.
    #[error("too many endpoints signed in for this user (limit {limit})")]
    TooManyBindings {
        /// The configured per-AOR limit.
        limit: usize,
    },
}

impl RegisterError {
    /// The SIP status code of the final response.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::WildcardNotAlone | Self::WildcardNeedsExpiresZero => 400,
            Self::IntervalTooBrief { .. } => 423,
            Self::OutOfOrder { .. } => 500,
            Self::TooManyBindings { .. } => 403,
        }
    }

    /// The RFC 3261 §21 reason phrase for [`Self::status_code`].
    pub fn reason_phrase(&self) -> &'static str {
        match self {
            Self::WildcardNotAlone | Self::WildcardNeedsExpiresZero => "Bad Request",
            Self::IntervalTooBrief { .. } => "Interval Too Brief",
            Self::OutOfOrder { .. } => "Server Internal Error",
            Self::TooManyBindings { .. } => "Forbidden",
        }
    }
}

/// A [`crate::RegistrarConfig`] that cannot work; reported at start-up instead of misbehaving on
/// the first REGISTER.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `min_expires` is above `max_expires`, so no expiry would be acceptable.
    #[error("min_expires ({min}) is above max_expires ({max})")]
    MinAboveMax {
        /// Configured minimum.
        min: u32,
        /// Configured maximum.
        max: u32,
    },
    /// `max_expires` is zero, so every registration would be removed at once.
    #[error("max_expires must be at least 1 second")]
    MaxExpiresZero,
    /// `default_expires` is outside `min_expires..=max_expires`; a REGISTER without any expiry
    /// (what SIPE sends) would then be refused with 423 or silently clamped.
    #[error("default_expires ({default}) is outside {min}..={max}")]
    DefaultOutOfRange {
        /// Configured default.
        default: u32,
        /// Configured minimum.
        min: u32,
        /// Configured maximum.
        max: u32,
    },
    /// `max_bindings_per_aor` is zero, so nobody could sign in.
    #[error("max_bindings_per_aor must be at least 1")]
    NoBindingsAllowed,
}

/// Why a string is not a canonical address-of-record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidAor {
    /// Nothing was given.
    #[error("empty address-of-record")]
    Empty,
    /// Longer than any real address; refused so keys stay bounded.
    #[error("address-of-record longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Not exactly one `@` between a non-empty user and domain.
    #[error("address-of-record is not user@domain")]
    NotUserAtDomain,
    /// A character that belongs to a URI or header, not to a canonical AOR (scheme, parameters,
    /// brackets, whitespace).
    #[error("character {0:?} is not allowed in a canonical address-of-record")]
    ForbiddenChar(char),
}
