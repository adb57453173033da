//! Batch read: reads a body into a [`Read`] and answers it from the contacts, 200 when all were
//! found and 207 with an `OBJECT_NOT_FOUND` error listing the others.

use serde_json::{Map, Value, json};

use super::contacts::Contacts;
use super::fields::{self, Rejection};
use super::properties::{OBJECT_ID_PROPERTY, Properties};

const READ_FIELDS: [&str; 4] = ["idProperty", "inputs", "properties", "propertiesWithHistory"];

#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// `None`: the ids are internal ids.
    pub id_property: Option<String>,
    pub ids: Vec<String>,
    pub properties: Vec<String>,
}

pub fn parse(body: &[u8], known: &Properties) -> Result<Read, Rejection> {
    let top = fields::object(body)?;
    let mut malformed = Vec::new();
    fields::unknown_fields(&top, &READ_FIELDS, "", &mut malformed);
    let mut ids = Vec::new();
    for (i, input) in fields::inputs(&top, &mut malformed).iter().enumerate() {
        let at = format!("inputs[{i}]");
        match input {
            Value::Object(input) => {
                fields::unknown_fields(input, &["id"], &at, &mut malformed);
                match input.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
                    Some(id) => ids.push(id.to_owned()),
                    None => malformed.push((format!("{at}.id"), "must be a non-empty string".to_owned())),
                }
            }
            _ => malformed.push((at, "must be an object".to_owned())),
        }
    }
    let mut names = |field: &str| match top.get(field) {
        None => Vec::new(),
        Some(Value::Array(names)) if names.iter().all(Value::is_string) => {
            names.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(_) => {
            malformed.push((field.to_owned(), "must be an array of strings".to_owned()));
            Vec::new()
        }
    };
    let properties = names("properties");
    names("propertiesWithHistory");
    let id_property = match top.get("idProperty") {
        None => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => {
            malformed.push(("idProperty".to_owned(), "must be a string".to_owned()));
            None
        }
    };
    if !malformed.is_empty() {
        return Err(Rejection::malformed(malformed));
    }
    if let Some(message) = id_property.as_deref().and_then(|name| fields::id_property_problem(known, name)) {
        let errors = vec![json!({"message": message, "in": "idProperty"})];
        return Err(Rejection { message, errors, property_errors: true });
    }
    Ok(Read { id_property, ids, properties })
}

/// The answer's body, and whether some id was not found (a 207).
pub fn answer(read: &Read, contacts: &Contacts, known: &Properties) -> (Value, bool) {
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in &read.ids {
        let Some(contact) = contacts.find(read.id_property.as_deref(), id) else {
            missing.push(id.clone());
            continue;
        };
        if !seen.insert(contact.id.clone()) {
            continue;
        }
        let mut properties = Map::new();
        let shown = read.properties.iter().filter(|name| known.get(name).is_some());
        for name in shown.chain([OBJECT_ID_PROPERTY.to_owned()].iter()).chain(read.id_property.iter()) {
            properties.insert(
                name.clone(),
                contact.properties.get(name).map_or(Value::Null, |v| Value::from(v.as_str())),
            );
        }
        results.push(contact.api_json(properties));
    }
    // HubSpot does not promise the order; a client that relies on it should fail here.
    results.reverse();
    let mut body = json!({"status": "COMPLETE", "results": results});
    if !missing.is_empty() {
        body["numErrors"] = json!(1);
        body["errors"] = json!([{"status": "error", "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
            "context": {"ids": missing}}]);
    }
    (body, !missing.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::properties::PropertySpec;
    use super::super::upsert::Write;
    use super::*;
    use time::OffsetDateTime;

    fn known() -> Properties {
        Properties::new(&PropertySpec::leadflow(), OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn the_body_is_strict_and_the_id_property_unique() {
        let bad = |body: Value| parse(body.to_string().as_bytes(), &known()).unwrap_err();
        let r = bad(json!({"inputs": [{"id": "L1", "x": 1}], "limit": 3}));
        let at: Vec<_> = r.errors.iter().map(|e| e["in"].clone()).collect();
        assert_eq!(at, [json!("limit"), json!("inputs[0].x")]);
        assert_eq!(bad(json!({"inputs": [{"id": "L1"}], "idProperty": "leadflow_stage"})).errors.len(), 1);
        assert_eq!(bad(json!({"inputs": []})).errors[0]["in"], "inputs");
        let read = parse(br#"{"inputs":[{"id":"1001"}],"properties":["email"]}"#, &known()).unwrap();
        assert_eq!(
            read,
            Read { id_property: None, ids: vec!["1001".into()], properties: vec!["email".into()] }
        );
    }

    #[test]
    fn found_contacts_show_the_asked_properties_and_the_missing_are_listed() {
        let mut contacts = Contacts::new(["email", "leadflow_id"]);
        let write = Write {
            id_property: "leadflow_id".into(),
            id: "L1".into(),
            properties: vec![
                ("leadflow_version".into(), Some("4".into())),
                ("firstname".into(), Some("A".into())),
            ],
        };
        contacts.upsert(&[write], OffsetDateTime::UNIX_EPOCH, false);
        let read = Read {
            id_property: Some("leadflow_id".into()),
            ids: vec!["L1".into(), "L2".into(), "L1".into()],
            properties: vec!["leadflow_version".into(), "nope".into(), "lastname".into()],
        };
        let (body, partial) = answer(&read, &contacts, &known());
        assert!(partial);
        assert_eq!(
            body["results"][0]["properties"],
            json!({"leadflow_version": "4", "lastname": null, "hs_object_id": "1001", "leadflow_id": "L1"})
        );
        assert_eq!(body["results"].as_array().unwrap().len(), 1, "one result per contact");
        assert_eq!(body["errors"][0]["context"]["ids"], json!(["L2"]));
        let by_internal = Read { id_property: None, ids: vec!["1001".into()], properties: vec![] };
        assert_eq!(
            answer(&by_internal, &contacts, &known()),
            (
                json!({"status": "COMPLETE", "results": [
                    body["results"][0].clone().as_object().map(|r| {
                        let mut r = r.clone();
                        r["properties"] = json!({"hs_object_id": "1001"});
                        Value::Object(r)
                    }).unwrap()
                ]}),
                false
            )
        );
    }
}
