//! `crm-sink setup`: makes each project's CRM ready for the sink, idempotently. HubSpot refuses a
//! write to a property that does not exist (`PROPERTY_DOESNT_EXIST`), and upserts only by a
//! property with unique values, so the sink's custom properties must exist first: `leadflow_id`
//! (unique: the upsert key), `leadflow_version`, and the `leadflow_*` fields of
//! [`crate::contact::PROPERTIES`]. The standard ones (`firstname`, `email`, ...) must exist too.
//!
//! For each connection, setup lists the contact properties
//! (`GET {base_url}/crm/v3/properties/contacts`), creates those missing
//! (`POST`, which answers 409 when another run created one meanwhile: that is fine), and checks
//! those present: the type, and uniqueness for `leadflow_id`. It prints what it did for each, and
//! fails (exit 1) naming any property it cannot make right: HubSpot cannot make an existing
//! property unique, so a non-unique `leadflow_id` has to be deleted in HubSpot first.
//!
//! The deciding ([`plan`]) is pure; the requests are in [`run`].

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use crate::config::{CrmSinkConfig, DestinationKind};
use crate::http_destination::HttpDestinationConfig;
use crate::hubspot_wire::{ID_PROPERTY, PROPERTIES_PATH, VERSION_PROPERTY};

/// A custom property the sink writes, as `POST /crm/v3/properties/contacts` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertySpec {
    pub name: &'static str,
    pub label: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub field_type: &'static str,
    pub group_name: &'static str,
    pub has_unique_value: bool,
}

const fn custom(name: &'static str, label: &'static str, kind: &'static str, unique: bool) -> PropertySpec {
    let field_type = if matches!(kind.as_bytes(), b"number") { "number" } else { "text" };
    PropertySpec { name, label, kind, field_type, group_name: "contactinformation", has_unique_value: unique }
}

/// Every custom property the sink writes.
pub const CUSTOM: [PropertySpec; 6] = [
    custom(ID_PROPERTY, "LeadFlow id", "string", true),
    custom(VERSION_PROPERTY, "LeadFlow version", "number", false),
    custom("leadflow_country_code", "LeadFlow country code", "string", false),
    custom("leadflow_country_probability", "LeadFlow country probability", "number", false),
    custom("leadflow_status", "LeadFlow status", "string", false),
    custom("leadflow_stage", "LeadFlow stage", "string", false),
];

/// HubSpot's own properties the sink writes; they exist in every account.
pub const STANDARD: [&str; 5] = ["firstname", "lastname", "email", "company", "country"];

/// A property as `GET /crm/v3/properties/contacts` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingProperty {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub has_unique_value: bool,
}

#[derive(Debug, Deserialize)]
struct PropertyList {
    results: Vec<ExistingProperty>,
}

/// What setup does about one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create(PropertySpec),
    /// There, and as the sink needs it.
    Ready(&'static str),
    /// There but unusable, or missing and not ours to create.
    Wrong {
        name: &'static str,
        why: String,
    },
}

/// What to do about each property the sink writes, given the account's.
pub fn plan(existing: &[ExistingProperty]) -> Vec<Step> {
    let find = |name: &str| existing.iter().find(|p| p.name == name);
    let mut steps: Vec<Step> = CUSTOM
        .iter()
        .map(|spec| match find(spec.name) {
            None => Step::Create(spec.clone()),
            Some(found) if found.kind.as_deref().is_some_and(|k| k != spec.kind) => Step::Wrong {
                name: spec.name,
                why: format!(
                    "has type {}, the sink writes {}",
                    found.kind.as_deref().unwrap_or("?"),
                    spec.kind
                ),
            },
            Some(found) if spec.has_unique_value && !found.has_unique_value => Step::Wrong {
                name: spec.name,
                why: "exists without unique values, and HubSpot upserts only by a unique property; \
                      delete it in HubSpot, then run setup again"
                    .to_owned(),
            },
            Some(_) => Step::Ready(spec.name),
        })
        .collect();
    steps.extend(STANDARD.iter().map(|name| match find(name) {
        Some(_) => Step::Ready(name),
        None => Step::Wrong {
            name,
            why: "is a standard HubSpot property, and this CRM does not have it".to_owned(),
        },
    }));
    steps
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Http(String),
    #[error("{key}: the CRM refused {what}: {status} {body}")]
    Refused { key: String, what: String, status: StatusCode, body: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0} problems left; the sink stays unready until they are fixed")]
    Unfinished(usize),
}

/// `crm-sink setup`, for every configured connection.
pub async fn run(config: CrmSinkConfig) -> Result<(), SetupError> {
    if config.crm.destination == DestinationKind::Log {
        println!("setup: crm.destination is log; there is no CRM to set up");
        return Ok(());
    }
    let connections = config.crm.connections().map_err(SetupError::Config)?;
    let mut wrong = 0;
    for connection in connections {
        match setup_one(&connection.key, &connection.http).await {
            Ok(problems) => wrong += problems,
            Err(e) => {
                eprintln!("setup: {e}");
                wrong += 1;
            }
        }
    }
    if wrong > 0 {
        return Err(SetupError::Unfinished(wrong));
    }
    println!("setup: every CRM has the properties the sink writes");
    Ok(())
}

/// Sets up one connection; answers how many properties are still wrong.
async fn setup_one(key: &str, http: &HttpDestinationConfig) -> Result<usize, SetupError> {
    let client = reqwest::Client::builder()
        .timeout(http.request_timeout)
        .build()
        .map_err(|e| SetupError::Http(format!("cannot build the HTTP client: {e}")))?;
    let url = format!("{}{PROPERTIES_PATH}", http.base_url.trim_end_matches('/'));
    let with_token = |request: reqwest::RequestBuilder| match http.access_token.expose() {
        "" => request,
        token => request.header(AUTHORIZATION, format!("Bearer {token}")),
    };
    let failed = |e: reqwest::Error| SetupError::Http(format!("{key}: {}", e.without_url()));
    let response = with_token(client.get(&url)).send().await.map_err(failed)?;
    let status = response.status();
    let body = response.bytes().await.map_err(failed)?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(SetupError::Refused {
            key: key.to_owned(),
            what: "listing the contact properties".into(),
            status,
            body,
        });
    }
    let existing: PropertyList = serde_json::from_slice(&body)
        .map_err(|e| SetupError::Http(format!("{key}: the property list is not HubSpot's JSON: {e}")))?;
    let mut wrong = 0;
    for step in plan(&existing.results) {
        match step {
            Step::Ready(name) => println!("{key}: {name} is ready"),
            Step::Wrong { name, why } => {
                eprintln!("{key}: {name} {why}");
                wrong += 1;
            }
            Step::Create(spec) => {
                let request = client.post(&url).header(CONTENT_TYPE, "application/json").json(&spec);
                let response = with_token(request).send().await.map_err(failed)?;
                match response.status() {
                    status if status.is_success() => println!(
                        "{key}: {} created ({}{})",
                        spec.name,
                        spec.kind,
                        if spec.has_unique_value { ", unique" } else { "" }
                    ),
                    // Another run created it between the list and now.
                    StatusCode::CONFLICT => {
                        println!("{key}: {} was created meanwhile; it is ready", spec.name)
                    }
                    status => {
                        let body = response.text().await.unwrap_or_default().chars().take(300).collect();
                        return Err(SetupError::Refused {
                            key: key.to_owned(),
                            what: format!("creating {}", spec.name),
                            status,
                            body,
                        });
                    }
                }
            }
        }
    }
    Ok(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(name: &str, kind: &str, unique: bool) -> ExistingProperty {
        ExistingProperty { name: name.into(), kind: Some(kind.into()), has_unique_value: unique }
    }

    fn standard() -> Vec<ExistingProperty> {
        STANDARD.iter().map(|n| existing(n, "string", false)).collect()
    }

    #[test]
    fn a_fresh_account_gets_every_custom_property_and_leadflow_id_is_unique() {
        let steps = plan(&standard());
        let created: Vec<&PropertySpec> =
            steps.iter().filter_map(|s| if let Step::Create(p) = s { Some(p) } else { None }).collect();
        assert_eq!(created.len(), CUSTOM.len());
        assert!(created.iter().all(|p| p.has_unique_value == (p.name == ID_PROPERTY)));
        assert!(steps.iter().all(|s| !matches!(s, Step::Wrong { .. })));
        let json = serde_json::to_value(created[0]).unwrap();
        assert_eq!(json["hasUniqueValue"], true);
        assert_eq!(json["fieldType"], "text");
    }

    #[test]
    fn a_second_run_creates_nothing() {
        let mut all = standard();
        all.extend(CUSTOM.iter().map(|p| existing(p.name, p.kind, p.has_unique_value)));
        assert!(plan(&all).iter().all(|s| matches!(s, Step::Ready(_))));
    }

    #[test]
    fn a_non_unique_id_a_wrong_type_and_a_missing_standard_property_are_named() {
        let mut all: Vec<ExistingProperty> = standard().into_iter().filter(|p| p.name != "company").collect();
        all.push(existing(ID_PROPERTY, "string", false));
        all.push(existing(VERSION_PROPERTY, "string", false));
        let wrong: Vec<&str> = plan(&all)
            .iter()
            .filter_map(|s| if let Step::Wrong { name, .. } = s { Some(*name) } else { None })
            .collect();
        assert_eq!(wrong, [ID_PROPERTY, VERSION_PROPERTY, "company"]);
    }

    #[test]
    fn every_property_the_sink_writes_is_planned() {
        let planned: Vec<&str> = CUSTOM.iter().map(|p| p.name).chain(STANDARD).collect();
        for name in crate::contact::PROPERTIES {
            assert!(planned.contains(&name), "{name}");
        }
    }
}
