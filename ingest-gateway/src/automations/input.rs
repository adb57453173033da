//! A posted or put rule, checked before anything is read or written: the project it may name,
//! the id the path gives, then `leadflow_core`'s [`validate_rule_json`] (every broken field by
//! its JSON path) and [`AutomationRule::validate`]. Pure.

use serde_json::Value;

use leadflow_core::model::automation::{AutomationRule, validate_rule_json};

use crate::error::FieldError;

/// The one id a rule may not take: `/api/automations/executions` is the executions log.
pub const RESERVED_ID: &str = "executions";

/// The rule in `body`, in `project_id`. `path_id` is the id of a `PUT`'s path: the body's id
/// may be left out or must be the same.
pub fn rule(
    body: &Value,
    project_id: &str,
    path_id: Option<&str>,
) -> Result<AutomationRule, Vec<FieldError>> {
    let mut body = body.clone();
    let mut errors = Vec::new();
    if let Some(object) = body.as_object_mut() {
        // A rule belongs to the caller's project: naming it is allowed, naming another is not.
        match object.remove("projectId") {
            Some(Value::String(named)) if named == project_id => {}
            Some(named) => errors.push(FieldError::new(
                "projectId",
                "invalid_value",
                format!("projectId must be left out or be the caller's project {project_id:?}; got {named}"),
            )),
            None => {}
        }
        if let Some(path_id) = path_id {
            match object.get("id") {
                None => {
                    object.insert("id".to_owned(), Value::from(path_id));
                }
                Some(Value::String(id)) if id == path_id => {}
                Some(other) => errors.push(FieldError::new(
                    "id",
                    "invalid_value",
                    format!("id must be left out or be the path's {path_id:?}; got {other}"),
                )),
            }
        }
    }
    let rule = validate_rule_json(&body).map_err(|found| {
        found
            .into_iter()
            .map(|e| FieldError { field: e.field, reason: e.reason, message: e.message })
            .collect()
    });
    let mut rule = match rule {
        Ok(rule) if errors.is_empty() => rule,
        Ok(_) => return Err(errors),
        Err(found) => {
            errors.extend::<Vec<FieldError>>(found);
            return Err(errors);
        }
    };
    if rule.id == RESERVED_ID {
        return Err(vec![FieldError::new(
            "id",
            "invalid_value",
            format!("id {RESERVED_ID:?} is taken by /api/automations/executions; pick another"),
        )]);
    }
    rule.project_id = project_id.to_owned();
    rule.validate().map_err(|e| vec![FieldError::new(e.field.clone(), "invalid_value", e.to_string())])?;
    Ok(rule)
}

/// The subscription ids the rule's `webhook` actions name, with each action's field path.
pub fn subscription_ids(rule: &AutomationRule) -> Vec<(String, &str)> {
    use leadflow_core::model::automation::Action;
    rule.actions
        .iter()
        .enumerate()
        .filter_map(|(index, action)| match action {
            Action::Webhook { subscription_id } => {
                Some((format!("actions[{index}].subscriptionId"), subscription_id.as_str()))
            }
            Action::NotifySales { .. } | Action::Email { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hot() -> Value {
        json!({"id": "hot", "version": "v1", "name": "Hot leads", "condition": {"type": "entersStage", "stage": "hot"},
               "actions": [{"type": "notifySales"}, {"type": "webhook", "subscriptionId": "sub-1"}]})
    }

    fn fields(result: Result<AutomationRule, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_rule_is_stamped_with_the_callers_project() {
        let rule = rule(&hot(), "acme", None).unwrap();
        assert_eq!((rule.project_id.as_str(), rule.id.as_str()), ("acme", "hot"));
        let mut named = hot();
        named["projectId"] = json!("acme");
        assert_eq!(super::rule(&named, "acme", None).unwrap().project_id, "acme");
        assert_eq!(subscription_ids(&rule), [("actions[1].subscriptionId".to_owned(), "sub-1")]);
    }

    #[test]
    fn another_project_a_mismatched_path_id_and_bad_fields_are_named() {
        let mut other = hot();
        other["projectId"] = json!("globex");
        assert_eq!(fields(rule(&other, "acme", None)), ["projectId"]);
        assert_eq!(fields(rule(&hot(), "acme", Some("cold"))), ["id"]);
        let mut no_id = hot();
        no_id.as_object_mut().unwrap().remove("id");
        assert_eq!(rule(&no_id, "acme", Some("from-path")).unwrap().id, "from-path");
        let mut bad = hot();
        bad["condition"] = json!({"type": "scoreCrosses", "threshold": -1});
        assert_eq!(fields(rule(&bad, "acme", None)), ["condition.threshold"]);
        bad["actions"] = json!([{"type": "webhook", "subscriptionId": "Not A Slug"}]);
        bad["condition"] = json!({"type": "becomesVerified"});
        assert_eq!(fields(rule(&bad, "acme", None)), ["actions[0].subscriptionId"]);
        let mut reserved = hot();
        reserved["id"] = json!("executions");
        assert_eq!(fields(rule(&reserved, "acme", None)), ["id"]);
    }
}
