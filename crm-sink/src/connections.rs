//! The CRM connections, one per project: each project has its own CRM, configured per project
//! (`[crm.http]` for the default project, `[crm.projects.<id>]` for the others), and a lead is
//! delivered only through its own project's connection, never another's. Each connection has
//! its own limiter and retry budget.
//!
//! A project with no connection configured: its leads are folded into the read model as any
//! others, but not delivered and not dead-lettered (they stay out of sync, and a connection
//! configured later gets them through reconcile). The sink counts them
//! (`crm_sink_unconfigured_project_leads_total{project}`) and says so in the log at most once
//! per project per [`UNCONFIGURED_LOG_INTERVAL`].
//!
//! With `crm.destination = "log"`, every project's leads get the log line: there is no
//! connection to configure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, Registry};

use crate::CrmSinkError;
use crate::config::{CrmConfig, DestinationKind};
use crate::destination::Destination;
use crate::http_destination::{DeliveryError, HttpDestination, HttpDestinationMetrics};

/// How often, at most, the log says that one project's leads wait for a connection.
pub const UNCONFIGURED_LOG_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Connections {
    /// `log`: the one destination of every project.
    every_project: Option<Destination>,
    /// `http`: each configured project's own.
    by_project: BTreeMap<String, Destination>,
}

impl Connections {
    /// The connections `crm` configures. Their HTTP clients share one set of request metrics
    /// (`crm_requests_total`, ...), registered in `registry` when the destination is `http`.
    pub fn from_config(crm: &CrmConfig, registry: &Registry) -> Result<Self, CrmSinkError> {
        match crm.destination {
            DestinationKind::Log => Ok(Connections::log()),
            DestinationKind::Http => {
                let configured = crm.connections().map_err(DeliveryError::Config)?;
                let metrics = HttpDestinationMetrics::register(registry)?;
                let mut by_project = BTreeMap::new();
                for connection in configured {
                    let http = HttpDestination::named(&connection.http, &connection.key, metrics.clone())?;
                    by_project.insert(connection.project, Destination::Http(http));
                }
                Ok(Connections { every_project: None, by_project })
            }
        }
    }

    /// Every project's leads to the log line.
    pub fn log() -> Self {
        Connections { every_project: Some(Destination::Log), by_project: BTreeMap::new() }
    }

    /// One connection per project, as given.
    pub fn per_project(by_project: impl IntoIterator<Item = (String, Destination)>) -> Self {
        Connections { every_project: None, by_project: by_project.into_iter().collect() }
    }

    /// The connection of `project`'s leads, if it has one.
    pub fn of(&self, project: &str) -> Option<&Destination> {
        self.every_project.as_ref().or_else(|| self.by_project.get(project))
    }

    /// The longest wait until a connection's next request keeps to its budget's even pace: how
    /// long the sink gathers leads before its next batch. The busiest connection sets it for
    /// all, which holds any project's lead back by at most one spacing (53 ms at 190 per 10 s).
    pub fn until_paced(&self) -> Duration {
        self.by_project
            .values()
            .filter_map(|destination| match destination {
                Destination::Http(http) => Some(http.until_paced()),
                Destination::Log => None,
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Counts every connection's requests in the budget all replicas share (MongoDB `budgets`
    /// in `database`), so that the deployment keeps to each CRM's budget however many replicas
    /// run.
    pub async fn share_budgets(&self, database: &mongodb::Database) -> Result<(), CrmSinkError> {
        let collection = leadflow_core::store::shared_budget::SharedBudget::collection_in(database);
        for destination in self.by_project.values() {
            if let Destination::Http(http) = destination {
                http.share_budget(collection.clone())?;
                if let Some(budget) = http.shared_budget() {
                    budget.ensure_ttl_index().await?;
                }
            }
        }
        Ok(())
    }

    /// What each connection's CRM last said is wrong with its configuration (credentials,
    /// scopes, URL, properties), by config key; empty when none did.
    pub fn config_problems(&self) -> Vec<String> {
        self.by_project
            .values()
            .filter_map(|destination| match destination {
                Destination::Http(http) => http.config_problem(),
                Destination::Log => None,
            })
            .collect()
    }

    /// The projects with a connection; `None`: every project.
    pub fn projects(&self) -> Option<BTreeSet<String>> {
        match self.every_project {
            Some(_) => None,
            None => Some(self.by_project.keys().cloned().collect()),
        }
    }
}

/// Counts the leads of projects without a connection, and logs them, at most once per project
/// per [`UNCONFIGURED_LOG_INTERVAL`].
pub struct Unconfigured {
    counter: IntCounterVec,
    last_logged: Mutex<HashMap<String, Instant>>,
}

impl Unconfigured {
    pub fn new(counter: IntCounterVec) -> Self {
        Unconfigured { counter, last_logged: Mutex::new(HashMap::new()) }
    }

    /// `leads` of `project` were due for delivery and have nowhere to go.
    pub fn note(&self, project: &str, leads: usize) {
        self.counter.with_label_values(&[project]).inc_by(leads as u64);
        let now = Instant::now();
        let mut last_logged = self.last_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due =
            last_logged.get(project).is_none_or(|at| now.duration_since(*at) >= UNCONFIGURED_LOG_INTERVAL);
        if due {
            last_logged.insert(project.to_owned(), now);
            tracing::warn!(
                project,
                leads,
                "a project has no CRM connection: its leads stay in the read model, undelivered, until crm.projects.{project} is configured"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_has_only_its_own_projects_connection() {
        let connections = Connections::per_project([
            ("default".to_owned(), Destination::Log),
            ("acme".to_owned(), Destination::Log),
        ]);
        assert!(connections.of("default").is_some() && connections.of("acme").is_some());
        assert!(connections.of("globex").is_none(), "no connection is borrowed from another project");
        assert_eq!(connections.projects(), Some(BTreeSet::from(["acme".to_owned(), "default".to_owned()])));
        assert!(Connections::log().of("globex").is_some(), "the log line takes every project");
        assert_eq!(Connections::log().projects(), None);
    }

    #[test]
    fn unconfigured_leads_are_counted_per_project() {
        let counter = IntCounterVec::new(prometheus::Opts::new("t", "t"), &["project"]).unwrap();
        let unconfigured = Unconfigured::new(counter.clone());
        unconfigured.note("globex", 2);
        unconfigured.note("globex", 1);
        unconfigured.note("initech", 1);
        assert_eq!(counter.with_label_values(&["globex"]).get(), 3);
        assert_eq!(counter.with_label_values(&["initech"]).get(), 1);
        assert_eq!(unconfigured.last_logged.lock().unwrap().len(), 2, "one log line per project so far");
    }
}
