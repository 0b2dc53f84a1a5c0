//! herald-sip
