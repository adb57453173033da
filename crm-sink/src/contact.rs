//! What the CRM gets of a lead, pure: HubSpot contact properties. Standard properties where
//! HubSpot has one (`firstname`, `lastname`, `email`, `company`, `country`), `leadflow_*` custom
//! properties for the rest. Absent facts are left out rather than sent empty, so that a
//! partial profile never blanks a field a salesperson filled in.

use serde_json::{Map, Value};

use crate::hubspot_wire::ContactRecord;
use crate::read_model::LeadView;

/// Every property the sink writes, besides `leadflow_id` and `leadflow_version`: what
/// `crm-sink setup` creates (the custom ones) and what reconcile reads back.
pub const PROPERTIES: [&str; 9] = [
    "firstname",
    "lastname",
    "email",
    "company",
    "country",
    "leadflow_country_code",
    "leadflow_country_probability",
    "leadflow_status",
    "leadflow_stage",
];

pub fn properties(view: &LeadView) -> Map<String, Value> {
    let mut properties = Map::new();
    let fields = view.crm_fields();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            properties.insert(key.to_owned(), value);
        }
    };
    if let Some(name) = &fields.name {
        let (first, last) = split_name(name);
        put("firstname", Some(first.into()));
        put("lastname", last.map(Value::from));
    }
    put("email", fields.email.map(Value::from));
    put("company", fields.company.map(Value::from));
    put("country", fields.country_name.map(Value::from));
    put("leadflow_country_code", fields.country_code.map(Value::from));
    put("leadflow_country_probability", fields.probability.map(Value::from));
    put("leadflow_status", fields.status.map(|s| s.as_str().into()));
    put("leadflow_stage", fields.stage.map(|s| Value::from(stage_name(s))));
    properties
}

/// How the CRM's copy of a lead stands against the read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmCopy {
    /// The CRM holds the version the read model synced, with its fields.
    InSync,
    /// The CRM has no such contact (never written, or deleted in the CRM).
    Missing,
    /// The CRM holds an older version than the one synced: a late write rolled it back, or it
    /// was never acknowledged.
    Lagging,
    /// The synced version, but a field the sink writes differs: edited in the CRM.
    Changed,
    /// A newer version than the read model has: another writer, left as it is.
    Ahead,
}

impl CrmCopy {
    pub fn as_str(self) -> &'static str {
        match self {
            CrmCopy::InSync => "in_sync",
            CrmCopy::Missing => "missing",
            CrmCopy::Lagging => "lagging",
            CrmCopy::Changed => "changed",
            CrmCopy::Ahead => "conflicting",
        }
    }

    /// Whether re-delivering the lead's current version repairs it.
    pub fn needs_delivery(self) -> bool {
        matches!(self, CrmCopy::Missing | CrmCopy::Lagging | CrmCopy::Changed)
    }
}

/// Compares the CRM's copy of `view` (`None`: not found) with what the sink last delivered.
/// HubSpot keeps every value as text, so a number is compared as the number its text reads as.
/// A property the sink leaves out (an absent fact) is not compared: a salesperson may fill it.
pub fn compare(view: &LeadView, held: Option<&ContactRecord>) -> CrmCopy {
    let Some(held) = held else { return CrmCopy::Missing };
    let version = held.version().unwrap_or(0);
    let current = view.version.max(view.synced_version);
    if version > current {
        return CrmCopy::Ahead;
    }
    if version < current {
        return CrmCopy::Lagging;
    }
    let same =
        properties(view).iter().all(|(name, expected)| same_value(expected, held.text(name).as_deref()));
    if same { CrmCopy::InSync } else { CrmCopy::Changed }
}

fn same_value(expected: &Value, held: Option<&str>) -> bool {
    match (expected, held) {
        (Value::String(s), Some(h)) => s == h,
        (Value::Number(n), Some(h)) => h.trim().parse::<f64>().ok() == n.as_f64(),
        (Value::Bool(b), Some(h)) => h == if *b { "true" } else { "false" },
        (Value::Null, None) => true,
        _ => false,
    }
}

/// The first word is the first name, the rest the last name: the same split the enricher
/// makes when it asks for a name's country.
fn split_name(name: &str) -> (&str, Option<&str>) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first, Some(rest.trim()).filter(|r| !r.is_empty())),
        None => (name, None),
    }
}

fn stage_name(stage: leadflow_core::contract::records::Stage) -> &'static str {
    use leadflow_core::contract::records::Stage;
    match stage {
        Stage::Cold => "cold",
        Stage::Warm => "warm",
        Stage::Hot => "hot",
        Stage::Qualified => "qualified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_model::Enrichment;
    use leadflow_core::contract::records::{EnrichmentStatus, Stage};
    use serde_json::json;
    use time::macros::datetime;

    fn view(name: &str, email: Option<&str>) -> LeadView {
        let mut view = LeadView::new("lead-1", 0);
        view.enrichment = Some(Enrichment {
            name: name.into(),
            email: email.map(str::to_owned),
            company: None,
            country_code: Some("GB".into()),
            country_name: Some("United Kingdom".into()),
            probability: Some(0.82),
            status: EnrichmentStatus::Verified,
            reason: None,
            enriched_at: datetime!(2026-01-16 10:00 UTC),
        });
        view
    }

    #[test]
    fn a_verified_lead_maps_to_standard_and_leadflow_properties() {
        let mut lead = view("Ada  King Lovelace", Some("ada@example.com"));
        lead.scoring = Some(crate::read_model::Scoring {
            score: 120.0,
            stage: Stage::Qualified,
            last_event_at: datetime!(2026-01-16 10:00 UTC),
            lead_version: 4,
            processed_at: datetime!(2026-01-16 10:00 UTC),
            rules_version: "v1".into(),
            merged_into: None,
        });
        assert_eq!(
            Value::Object(properties(&lead)),
            json!({
                "firstname": "Ada",
                "lastname": "King Lovelace",
                "email": "ada@example.com",
                "country": "United Kingdom",
                "leadflow_country_code": "GB",
                "leadflow_country_probability": 0.82,
                "leadflow_status": "Verified",
                "leadflow_stage": "qualified",
            })
        );
    }

    #[test]
    fn absent_facts_are_left_out() {
        let properties = properties(&view("Plato", None));
        assert_eq!(properties.get("firstname"), Some(&json!("Plato")));
        for absent in ["lastname", "email", "company", "leadflow_stage"] {
            assert!(!properties.contains_key(absent), "{absent} should be absent");
        }
    }

    fn held(properties: Value) -> ContactRecord {
        serde_json::from_value(json!({"id": "1001", "properties": properties})).unwrap()
    }

    #[test]
    fn a_crm_copy_is_in_sync_missing_lagging_changed_or_ahead() {
        let mut lead = view("Ada Lovelace", Some("ada@example.com"));
        lead.version = 3;
        lead.synced_version = 3;
        let as_sent = json!({"leadflow_id": "lead-1", "leadflow_version": "3", "firstname": "Ada",
            "lastname": "Lovelace", "email": "ada@example.com", "country": "United Kingdom",
            "leadflow_country_code": "GB", "leadflow_country_probability": "0.82",
            "leadflow_status": "Verified", "company": "kept by a salesperson"});
        assert_eq!(
            compare(&lead, Some(&held(as_sent.clone()))),
            CrmCopy::InSync,
            "numbers as text, extras kept"
        );
        assert_eq!(compare(&lead, None), CrmCopy::Missing);
        let mut older = as_sent.clone();
        older["leadflow_version"] = json!("2");
        assert_eq!(compare(&lead, Some(&held(older))), CrmCopy::Lagging);
        let mut edited = as_sent.clone();
        edited["email"] = json!("someone@else.example");
        assert_eq!(compare(&lead, Some(&held(edited))), CrmCopy::Changed);
        let mut cleared = as_sent.clone();
        cleared["leadflow_status"] = json!("");
        assert_eq!(compare(&lead, Some(&held(cleared))), CrmCopy::Changed);
        let mut newer = as_sent;
        newer["leadflow_version"] = json!(9);
        assert_eq!(compare(&lead, Some(&held(newer))), CrmCopy::Ahead);
        assert!(CrmCopy::Changed.needs_delivery() && !CrmCopy::Ahead.needs_delivery());
    }

    #[test]
    fn every_property_written_is_in_the_list_setup_creates() {
        let mut lead = view("Ada Lovelace", Some("ada@example.com"));
        lead.enrichment.as_mut().unwrap().company = Some("AE".into());
        for name in properties(&lead).keys() {
            assert!(PROPERTIES.contains(&name.as_str()), "{name}");
        }
    }
}
