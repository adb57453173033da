use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use leadflow_core::contract::codec::SchemaRegistryConfig;
use leadflow_core::contract::project::{self, DEFAULT_PROJECT};
use leadflow_core::runtime::config::{ShutdownConfig, TelemetryConfig};
use leadflow_core::runtime::duration::{millis_or_humantime, secs_or_humantime};
use leadflow_core::runtime::secret::Secret;
use leadflow_core::runtime::service::ServiceConfig;
use leadflow_core::stage::config::ExactlyOnceConfig;
use leadflow_core::stage::kafka::KafkaConfig;
use leadflow_core::store::mongo::MongoConfig;

use crate::http_destination::HttpDestinationConfig;

/// This service's defaults, layered over the shared ones.
pub const DEFAULTS: &str = include_str!("../config/defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmSinkConfig {
    pub kafka: KafkaConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub mongo: MongoConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub consumer: ExactlyOnceConfig,
    pub crm: CrmConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    pub destination: DestinationKind,
    /// How often the service asks for re-delivery of leads the CRM lacks; 0 turns it off.
    #[serde(alias = "reconcile_interval_s", deserialize_with = "secs_or_humantime")]
    pub reconcile_interval: Duration,
    /// Pages of 100 leads each periodic reconcile compares with the CRM (batch reads, from the
    /// request budget), going on where the last one stopped; 0: only the read model is looked at.
    pub sweep_pages: usize,
    /// How often the out-of-sync gauge is counted.
    #[serde(alias = "out_of_sync_refresh_s", deserialize_with = "secs_or_humantime")]
    pub out_of_sync_refresh: Duration,
    /// The default project's CRM connection.
    pub http: HttpDestinationConfig,
    /// `[crm.projects.<projectId>]`: each other project's own CRM connection. A key left out
    /// takes its value from `[crm.http]`, except `base_url`, which each project must give, and
    /// `access_token`, which is empty (none) unless given: a project never inherits another's
    /// CRM or credentials. See `config/defaults.toml` for projects without a connection.
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectConnectionConfig>,
}

/// `[crm.projects.<projectId>]`: the keys of `[crm.http]`, every one optional but `base_url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConnectionConfig {
    pub base_url: String,
    #[serde(default)]
    pub access_token: Secret,
    #[serde(default)]
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub requests_per_window: Option<u32>,
    #[serde(default, alias = "window_ms", deserialize_with = "some_millis_or_humantime")]
    pub window: Option<Duration>,
    #[serde(default, alias = "request_timeout_ms", deserialize_with = "some_millis_or_humantime")]
    pub request_timeout: Option<Duration>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default, alias = "backoff_initial_ms", deserialize_with = "some_millis_or_humantime")]
    pub backoff_initial: Option<Duration>,
    #[serde(default, alias = "backoff_max_ms", deserialize_with = "some_millis_or_humantime")]
    pub backoff_max: Option<Duration>,
    #[serde(default)]
    pub upsert_path: Option<String>,
    #[serde(default)]
    pub read_path: Option<String>,
    #[serde(default, deserialize_with = "some_millis_or_humantime")]
    pub late_apply_window: Option<Duration>,
    #[serde(default, deserialize_with = "some_millis_or_humantime")]
    pub daily_limit_probe: Option<Duration>,
    /// Not inherited: a project shares another's budget only when it says so.
    #[serde(default)]
    pub budget_name: String,
}

fn some_millis_or_humantime<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    millis_or_humantime(deserializer).map(Some)
}

impl ProjectConnectionConfig {
    /// The whole connection: this table's keys, the others from `[crm.http]`.
    pub fn over(&self, http: &HttpDestinationConfig) -> HttpDestinationConfig {
        HttpDestinationConfig {
            base_url: self.base_url.clone(),
            access_token: self.access_token.clone(),
            batch_size: self.batch_size.unwrap_or(http.batch_size),
            requests_per_window: self.requests_per_window.unwrap_or(http.requests_per_window),
            window: self.window.unwrap_or(http.window),
            request_timeout: self.request_timeout.unwrap_or(http.request_timeout),
            max_attempts: self.max_attempts.unwrap_or(http.max_attempts),
            backoff_initial: self.backoff_initial.unwrap_or(http.backoff_initial),
            backoff_max: self.backoff_max.unwrap_or(http.backoff_max),
            upsert_path: self.upsert_path.clone().unwrap_or_else(|| http.upsert_path.clone()),
            read_path: self.read_path.clone().unwrap_or_else(|| http.read_path.clone()),
            late_apply_window: self.late_apply_window.unwrap_or(http.late_apply_window),
            daily_limit_probe: self.daily_limit_probe.unwrap_or(http.daily_limit_probe),
            budget_name: self.budget_name.clone(),
        }
    }
}

/// One project's CRM connection, as configured: its project, the config key that names it (for
/// error messages) and its settings.
#[derive(Debug, Clone)]
pub struct ProjectConnection {
    pub project: String,
    pub key: String,
    pub http: HttpDestinationConfig,
}

impl CrmConfig {
    /// Every configured connection: the default project's (`crm.http`), then one per
    /// `[crm.projects.<id>]` table. The table's name is the project id, except that a `_` in it
    /// reads as `-`: an environment variable's name cannot hold a `-`, so
    /// `LEADFLOW_CRM__PROJECTS__ACME_EU__BASE_URL` configures the project `acme-eu` (a project id
    /// never holds `_`). Figment lower-cases environment keys, so `ACME` is the project `acme`.
    /// The projects whose leads are delivered: those with a connection, or every one (`None`)
    /// with the `log` destination.
    pub fn delivered_projects(&self) -> Result<Option<BTreeSet<String>>, String> {
        match self.destination {
            DestinationKind::Log => Ok(None),
            DestinationKind::Http => Ok(Some(self.connections()?.into_iter().map(|c| c.project).collect())),
        }
    }

    pub fn connections(&self) -> Result<Vec<ProjectConnection>, String> {
        let mut connections = vec![ProjectConnection {
            project: DEFAULT_PROJECT.to_owned(),
            key: "crm.http".to_owned(),
            http: self.http.clone(),
        }];
        for (name, table) in &self.projects {
            let key = format!("crm.projects.{name}");
            let project = name.replace('_', "-");
            if let Err(e) = project::check_project_id(&project) {
                return Err(format!("{key}: {name:?} is not a project id: {e}"));
            }
            if project == DEFAULT_PROJECT {
                return Err(format!("{key}: the default project's connection is [crm.http]"));
            }
            if let Some(twin) = connections.iter().find(|c| c.project == project) {
                return Err(format!(
                    "{key}: the project {project:?} is configured twice (also {})",
                    twin.key
                ));
            }
            connections.push(ProjectConnection { project, key, http: table.over(&self.http) });
        }
        Ok(connections)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// HubSpot-shaped batch upserts to `crm.http.base_url`.
    Http,
    /// The original system's log line, and nothing else.
    Log,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Http => "http",
            DestinationKind::Log => "log",
        }
    }
}

impl ServiceConfig for CrmSinkConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

#[cfg(test)]
mod tests {
    use leadflow_core::runtime::config::{SHARED_DEFAULTS, load};

    use super::*;

    fn load_with(overlay: &str) -> CrmSinkConfig {
        load(&[SHARED_DEFAULTS, DEFAULTS, overlay], None).unwrap()
    }

    #[test]
    fn a_project_table_takes_what_it_leaves_out_from_crm_http_but_never_its_url_or_token() {
        let config = load_with(
            "[crm.http]\naccess_token = \"default-token\"\n\
             [crm.projects.acme]\nbase_url = \"http://acme-crm\"\nwindow_ms = 500\n\
             [crm.projects.globex]\nbase_url = \"http://globex-crm\"\naccess_token = \"globex-token\"\nbatch_size = 7\n",
        );
        let connections = config.crm.connections().unwrap();
        let summary: Vec<(&str, &str, &str, usize, Duration)> = connections
            .iter()
            .map(|c| {
                (
                    c.project.as_str(),
                    c.http.base_url.as_str(),
                    c.http.access_token.expose(),
                    c.http.batch_size,
                    c.http.window,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("default", "http://127.0.0.1:8092", "default-token", 100, Duration::from_secs(10)),
                ("acme", "http://acme-crm", "", 100, Duration::from_millis(500)),
                ("globex", "http://globex-crm", "globex-token", 7, Duration::from_secs(10)),
            ]
        );
        assert!(!format!("{config:?}").contains("globex-token"), "the token never prints");
    }

    #[test]
    fn the_defaults_configure_only_the_default_project() {
        let config = load_with("");
        let projects: Vec<String> =
            config.crm.connections().unwrap().into_iter().map(|c| c.project).collect();
        assert_eq!(projects, ["default"]);
    }

    #[test]
    fn bad_project_tables_are_refused_naming_the_key() {
        let refused = |overlay: &str| {
            load::<CrmSinkConfig>(&[SHARED_DEFAULTS, DEFAULTS, overlay], None)
                .map_err(|e| e.to_string())
                .and_then(|c| c.crm.connections().map(|_| ()))
                .unwrap_err()
        };
        let message = refused("[crm.projects.acme]\nbatch_size = 5\n");
        assert!(message.contains("base_url"), "{message}");
        let message = refused("[crm.projects.acme]\nbase_url = \"http://a\"\nbase_urll = \"x\"\n");
        assert!(message.contains("base_urll"), "{message}");
        let message = refused("[crm.projects.\"Acme Corp\"]\nbase_url = \"http://a\"\n");
        assert!(message.starts_with("crm.projects.Acme Corp: "), "{message}");
        let message = refused("[crm.projects.default]\nbase_url = \"http://a\"\n");
        assert!(message.contains("[crm.http]"), "{message}");
        let message = refused(
            "[crm.projects.acme_eu]\nbase_url = \"http://a\"\n[crm.projects.acme-eu]\nbase_url = \"http://b\"\n",
        );
        assert!(message.contains("twice"), "{message}");
    }
}
