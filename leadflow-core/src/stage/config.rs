//! A stage's consumer-group and transaction settings.

use std::time::Duration;

use serde::Deserialize;

use crate::runtime::duration::millis_or_humantime;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactlyOnceConfig {
    /// The consumer group; every instance of a stage shares it.
    pub group_id: String,
    /// Names this instance among the group's: it is the static group member id
    /// (`group.instance.id`) and the transactional id is `<group_id>-<instance_id>`. Keep it
    /// stable across restarts of one instance (a restart then takes the dead instance's
    /// partitions at once and aborts its open transaction) and distinct between instances.
    /// Empty means the host name.
    pub instance_id: String,
    /// The most records one transaction covers.
    pub max_batch_records: usize,
    /// How long a batch waits for more records, only after a full batch (a backlog). Otherwise
    /// a batch takes the records that have already arrived and goes at once.
    #[serde(alias = "batch_linger_ms", deserialize_with = "millis_or_humantime")]
    pub batch_linger: Duration,
    /// `transaction.timeout.ms`: how long an instance that vanished mid-transaction can hold
    /// back `read_committed` readers of its output partitions.
    #[serde(alias = "transaction_timeout_ms", deserialize_with = "millis_or_humantime")]
    pub transaction_timeout: Duration,
    /// First wait before a batch is retried after a transient failure (doubling up to 30 s).
    #[serde(alias = "retry_backoff_ms", deserialize_with = "millis_or_humantime")]
    pub retry_backoff: Duration,
    /// `false` is at-least-once, kept to measure what exactly-once costs: no transaction, the
    /// offsets are committed once the batch's records are acknowledged, so a crash between the
    /// two writes the batch's records again. The stage's own state must make repeats harmless.
    #[serde(default = "exactly_once_by_default")]
    pub exactly_once: bool,
}

fn exactly_once_by_default() -> bool {
    true
}

impl ExactlyOnceConfig {
    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.group_id, self.instance())
    }

    pub(crate) fn instance(&self) -> String {
        if self.instance_id.is_empty() { host_name() } else { self.instance_id.clone() }
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transactional_id_names_the_group_and_instance() {
        let config = ExactlyOnceConfig {
            group_id: "enricher".into(),
            instance_id: "a".into(),
            max_batch_records: 1,
            batch_linger: Duration::ZERO,
            transaction_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_millis(100),
            exactly_once: true,
        };
        assert_eq!(config.transactional_id(), "enricher-a");
        let unnamed = ExactlyOnceConfig { instance_id: String::new(), ..config };
        assert!(unnamed.transactional_id().starts_with("enricher-"));
        assert!(unnamed.transactional_id().len() > "enricher-".len());
    }
}
