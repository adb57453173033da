//! Topic names, and the topic declarations in `deploy/topics.conf`, which both the local stack
//! script and the services read, so that there is one list of topics.

pub const NAMES: &str = "leads.names.v1";
pub const EVENTS: &str = "leads.events.v1";
pub const ENRICHED: &str = "leads.enriched.v1";
pub const SCORES: &str = "leads.scores.v1";
pub const REVIEWS: &str = "leads.reviews.v1";
pub const CRM_DELIVERIES: &str = "crm.deliveries.v1";
/// Written by `crm-sink reconcile`: leads to deliver again.
pub const CRM_RESYNC: &str = "crm.resync.v1";
pub const DLQ: &str = "leads.dlq.v1";
/// Compacted, one partition: the newest record is the scorer's rule set in force.
pub const SCORING_RULES: &str = "scoring.rules.v1";
/// Compacted, one partition: one record per automation rule (key `automation/<project>/<id>`),
/// the newest in force, a tombstone for a deleted rule.
pub const AUTOMATION_RULES: &str = "automations.rules.v1";
/// The automator's record of each execution: one per (project, rule, lead, UTC day).
pub const AUTOMATION_EXECUTIONS: &str = "automations.executions.v1";

/// The declarations: one line per topic, `name partitions [key=value ...]`, `#` comments.
pub const TOPICS_CONF: &str = include_str!("../../../deploy/topics.conf");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Topic-level configs such as `cleanup.policy=compact`.
    pub configs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("topics.conf line {line}: {message}")]
pub struct TopicsConfError {
    pub line: usize,
    pub message: String,
}

pub fn parse_topics_conf(text: &str) -> Result<Vec<TopicSpec>, TopicsConfError> {
    let mut specs = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |message: String| TopicsConfError { line: index + 1, message };
        let mut words = line.split_whitespace();
        let name = words.next().expect("a non-empty line has a first word").to_owned();
        let partitions = words
            .next()
            .ok_or_else(|| err(format!("topic {name} has no partition count")))?
            .parse::<i32>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| err(format!("topic {name}: partitions must be a positive integer")))?;
        let configs = words
            .map(|word| {
                word.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| err(format!("topic {name}: expected key=value, got {word:?}")))
            })
            .collect::<Result<_, _>>()?;
        specs.push(TopicSpec { name, partitions, configs });
    }
    Ok(specs)
}

/// The topics the project declares.
pub fn declared_topics() -> Vec<TopicSpec> {
    parse_topics_conf(TOPICS_CONF).expect("deploy/topics.conf is checked by a unit test")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_topics_parse_and_cover_every_record_topic() {
        let specs = parse_topics_conf(TOPICS_CONF).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        for topic in [
            NAMES,
            EVENTS,
            ENRICHED,
            SCORES,
            REVIEWS,
            CRM_DELIVERIES,
            CRM_RESYNC,
            DLQ,
            SCORING_RULES,
            AUTOMATION_RULES,
            AUTOMATION_EXECUTIONS,
        ] {
            assert!(names.contains(&topic), "{topic} missing from deploy/topics.conf");
        }
    }

    #[test]
    fn co_partitioned_topics_have_equal_partition_counts() {
        // The crm-sink joins enriched, scored, review and resync records per lead; that only
        // works when a lead id maps to the same partition number on every topic.
        let specs = declared_topics();
        let count = |t: &str| specs.iter().find(|s| s.name == t).map(|s| s.partitions);
        let counts: Vec<_> = [
            NAMES,
            EVENTS,
            ENRICHED,
            SCORES,
            REVIEWS,
            CRM_DELIVERIES,
            CRM_RESYNC,
            DLQ,
            AUTOMATION_EXECUTIONS,
        ]
        .iter()
        .map(|t| count(t))
        .collect();
        assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    }

    #[test]
    fn parser_reports_the_line_of_a_bad_declaration() {
        let err = parse_topics_conf("# c\nok.v1 6\nbad.v1 zero\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = parse_topics_conf("t 3 cleanup.policy\n").unwrap_err();
        assert!(err.message.contains("key=value"), "{}", err.message);
        let specs = parse_topics_conf("t 3 cleanup.policy=compact # trailing comment\n").unwrap();
        assert_eq!(specs[0].configs, vec![("cleanup.policy".into(), "compact".into())]);
    }
}
