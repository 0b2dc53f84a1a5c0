//! Just enough SIP for a load generator: the header scanner both sides use, the parse of the
//! responses the generator matches, the REGISTER text it sends, and the presence scenario's
//! requests, answers and bodies.
//!
//! herald's own codec (`herald-sip`) decodes every message fully and owns its buffer; a generator
//! that shares two cores with the server under test reads only the status, Call-ID, CSeq and
//! challenge (and, for presence, the To tag, SIP-ETag, Subscription-State and body), borrowing
//! from the receive buffer.

pub mod headers;
pub mod presence;
pub mod request;
pub mod response;
