//! Kafka consumer stages: read a batch, process it, write its outputs and offsets.

pub mod automation_feed;
pub mod config;
pub mod exactly_once;
pub mod kafka;
pub mod metrics;
pub mod pause;
pub mod rules_feed;
pub mod startup;
pub mod typed;
