//! What the LeadFlow services share, in layers. Each layer uses only those below it:
//!
//! - [`contract`]: the records, the topics they travel on, and the schema-registry codec;
//! - [`model`]: pure domain logic (scoring, the lead read model), with no I/O;
//! - [`runtime`]: what every process has (layered config, telemetry, the ops endpoints,
//!   shutdown, backoff);
//! - [`store`]: MongoDB, and the document shapes every service reads or writes;
//! - [`stage`]: Kafka consumer stages (the exactly-once loop, its pause, metrics and config,
//!   Kafka client setup, start-up, the rules feed).
//!
//! Domain rules that belong to one service live in that service's crate; only what two or more
//! services need is here.

pub mod contract;
pub mod model;
pub mod runtime;
pub mod stage;
pub mod store;
