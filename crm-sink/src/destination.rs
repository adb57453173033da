//! Where delivered leads go: a project's CRM over HTTP, or the original system's log line.
//! One destination serves one project's leads (see [`crate::connections`]); the CRM gets each
//! lead under its bare leadId, since each project has a CRM of its own.

use leadflow_core::stage::pause::PauseSignal;

use crate::config::DestinationKind;
use crate::contact;
use crate::http_destination::{ContactOutcome, ContactUpsert, DeliveryError, HttpDestination};
use crate::read_model::LeadView;

#[derive(Clone)]
pub enum Destination {
    Http(HttpDestination),
    Log,
}

impl Destination {
    /// How long after an unanswered write the CRM may still apply it; zero for the log.
    pub fn late_apply_window(&self) -> std::time::Duration {
        match self {
            Destination::Http(http) => http.late_apply_window(),
            Destination::Log => std::time::Duration::ZERO,
        }
    }

    pub fn kind(&self) -> DestinationKind {
        match self {
            Destination::Http(_) => DestinationKind::Http,
            Destination::Log => DestinationKind::Log,
        }
    }

    /// Delivers each lead's current version; one outcome per lead, in order.
    pub async fn deliver(
        &self,
        leads: &[&LeadView],
        pause: &PauseSignal,
    ) -> Result<Vec<ContactOutcome>, DeliveryError> {
        match self {
            Destination::Http(http) => {
                let contacts: Vec<ContactUpsert> = leads
                    .iter()
                    .map(|lead| ContactUpsert {
                        lead_id: lead.lead_id().to_owned(),
                        version: lead.version,
                        properties: contact::properties(lead),
                    })
                    .collect();
                http.upsert(&contacts, pause).await
            }
            Destination::Log => Ok(leads
                .iter()
                .map(|lead| {
                    let name = lead.enrichment.as_ref().map_or("", |e| e.name.as_str());
                    tracing::info!(project = %lead.project_id, lead_id = %lead.lead_id(), version = lead.version, "[CRM Sync] Sending verified lead {name} to Sales Team...");
                    ContactOutcome::Delivered { unsure: false }
                })
                .collect()),
        }
    }
}
