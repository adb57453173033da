//! What the LeadFlow services share: the record types and the topics they travel on, the
//! schema-registry codec, Kafka client setup, layered config, telemetry (logs, metrics, the ops
//! endpoints) and the shutdown signal. Domain rules that belong to one service live in that
//! service's crate; only what two or more services need is here.

pub mod backoff;
pub mod codec;
pub mod config;
pub mod exactly_once;
pub mod kafka;
pub mod mongo;
pub mod ops_server;
pub mod read_model;
pub mod records;
pub mod rules_feed;
pub mod scoring;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod topics;
