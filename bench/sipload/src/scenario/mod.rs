//! What the simulated clients do. One module per scenario; each implements
//! [`crate::engine::Scenario`] for one thread's clients.

pub mod presence;
pub mod register;
