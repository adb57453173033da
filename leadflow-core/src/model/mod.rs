//! Pure domain logic over the contract's records: no I/O and no clock.

pub mod automation;
pub mod read_model;
pub mod scoring;
pub mod webhook;
