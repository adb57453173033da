//! What the CRM gets of a lead, pure: HubSpot contact properties. Standard properties where
//! HubSpot has one (`firstname`, `lastname`, `email`, `company`, `country`), `leadflow_*` custom
//! properties for the rest. Absent facts are left out rather than sent empty, so that a
//! partial profile never blanks a field a salesperson filled in.

use serde_json::{Map, Value};

use crate::read_model::LeadView;

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
}
