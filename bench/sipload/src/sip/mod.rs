//! Just enough SIP for a load generator: the header scanner both sides use, the parse of the
//! responses the generator matches, and the REGISTER text it sends.
//!
//! herald's own codec (`herald-sip`) decodes every message fully and owns its buffer; a generator
//! that shares two cores with the server under test reads only the status, Call-ID, CSeq and
//! challenge, borrowing from the receive buffer.

pub mod headers;
pub mod request;
pub mod response;
