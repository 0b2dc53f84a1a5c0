//! herald-transaction
