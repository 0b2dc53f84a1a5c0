//! herald-directory
