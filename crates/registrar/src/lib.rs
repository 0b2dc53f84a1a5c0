//! herald-registrar
