//! What every LeadFlow process has around its own work.

pub mod backoff;
pub mod config;
pub mod duration;
pub mod ops_server;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod telemetry;
