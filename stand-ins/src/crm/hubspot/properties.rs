//! The contact properties that exist: HubSpot's built-in ones, custom ones created through
//! `POST /crm/v3/properties/contacts` (judged here), and the list the stand-in may precreate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The property HubSpot sets to a contact's internal id; nobody else may write it.
pub const OBJECT_ID_PROPERTY: &str = "hs_object_id";
/// The property HubSpot keeps unique for contacts, and accepts as an `idProperty`.
pub const EMAIL_PROPERTY: &str = "email";

const BUILT_IN: [&str; 8] =
    ["email", "firstname", "lastname", "company", "country", "phone", "lifecyclestage", OBJECT_ID_PROPERTY];
const TYPES: [&str; 6] = ["string", "number", "enumeration", "datetime", "date", "bool"];
const REQUIRED_FIELDS: [&str; 5] = ["name", "label", "type", "fieldType", "groupName"];

/// One property as the properties API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field_type: String,
    pub group_name: String,
    pub has_unique_value: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(skip)]
    pub read_only: bool,
}

/// A property to create without the API: the `--precreate-properties` flag's items
/// (`name[:unique]`) and `POST /__admin/properties`'s elements (`{"name","type"?,"hasUniqueValue"?}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PropertySpec {
    pub name: String,
    #[serde(rename = "type", default = "string_type")]
    pub kind: String,
    #[serde(default)]
    pub has_unique_value: bool,
}

fn string_type() -> String {
    "string".to_owned()
}

impl PropertySpec {
    pub fn new(name: &str, unique: bool) -> Self {
        PropertySpec { name: name.to_owned(), kind: string_type(), has_unique_value: unique }
    }

    /// LeadFlow's contact properties: `leadflow_id` (unique), `leadflow_version`, `leadflow_score`,
    /// `leadflow_country_probability` (numbers), `leadflow_stage`, `leadflow_status`,
    /// `leadflow_country_code`: the crm-sink's set (`crm-sink setup`), and `leadflow_score`.
    pub fn leadflow() -> Vec<PropertySpec> {
        let mut specs = vec![PropertySpec::new("leadflow_id", true)];
        for name in ["leadflow_version", "leadflow_score", "leadflow_country_probability"] {
            specs.push(PropertySpec { kind: "number".to_owned(), ..PropertySpec::new(name, false) });
        }
        specs.extend(
            ["leadflow_stage", "leadflow_status", "leadflow_country_code"]
                .map(|name| PropertySpec::new(name, false)),
        );
        specs
    }

    /// `leadflow` (the set above) or a comma-separated list of `name` / `name:unique`.
    pub fn parse_list(list: &str) -> Result<Vec<PropertySpec>, String> {
        if list == "leadflow" {
            return Ok(PropertySpec::leadflow());
        }
        list.split(',')
            .map(|item| {
                let (name, unique) = match item.split_once(':') {
                    None => (item, false),
                    Some((name, "unique")) => (name, true),
                    Some((_, flag)) => {
                        return Err(format!("{item}: only \":unique\" may follow a name, not {flag:?}"));
                    }
                };
                let spec = PropertySpec::new(name, unique);
                spec.check().map(|()| spec)
            })
            .collect()
    }

    /// The rules the properties API applies to a name and a type.
    pub fn check(&self) -> Result<(), String> {
        if !valid_name(&self.name) {
            return Err(format!("{:?} is not a property name (^[a-z][a-z0-9_]*$)", self.name));
        }
        if !TYPES.contains(&self.kind.as_str()) {
            return Err(format!("{}: type {:?} is not one of {}", self.name, self.kind, TYPES.join(", ")));
        }
        Ok(())
    }
}

/// Why a create was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateError {
    /// 400 `VALIDATION_ERROR`: the message, and `(field, problem)` for each bad field.
    Invalid(String, Vec<(String, String)>),
    /// 409 `OBJECT_ALREADY_EXISTS`.
    Exists(String),
}

#[derive(Debug, Clone)]
pub struct Properties {
    by_name: BTreeMap<String, Property>,
}

impl Properties {
    /// The built-in properties, then `precreated` (a name already there is kept as it is).
    pub fn new(precreated: &[PropertySpec], now: OffsetDateTime) -> Self {
        let mut properties = Properties { by_name: BTreeMap::new() };
        for name in BUILT_IN {
            let mut property = Property {
                name: name.to_owned(),
                label: name.to_owned(),
                kind: string_type(),
                field_type: "text".to_owned(),
                group_name: "contactinformation".to_owned(),
                has_unique_value: false,
                created_at: now,
                read_only: name == OBJECT_ID_PROPERTY,
            };
            if name == OBJECT_ID_PROPERTY {
                (property.kind, property.field_type) = ("number".to_owned(), "number".to_owned());
            }
            properties.by_name.insert(name.to_owned(), property);
        }
        for spec in precreated {
            properties.add(spec, now);
        }
        properties
    }

    /// Adds `spec` unless a property of that name exists; says whether it did.
    pub fn add(&mut self, spec: &PropertySpec, now: OffsetDateTime) -> bool {
        if self.by_name.contains_key(&spec.name) {
            return false;
        }
        let property = Property {
            name: spec.name.clone(),
            label: spec.name.clone(),
            kind: spec.kind.clone(),
            field_type: if spec.kind == "number" { "number" } else { "text" }.to_owned(),
            group_name: "contactinformation".to_owned(),
            has_unique_value: spec.has_unique_value,
            created_at: now,
            read_only: false,
        };
        self.by_name.insert(spec.name.clone(), property);
        true
    }

    pub fn get(&self, name: &str) -> Option<&Property> {
        self.by_name.get(name)
    }

    pub fn list(&self) -> impl Iterator<Item = &Property> {
        self.by_name.values()
    }

    /// The names a contact's value must be unique for: email and every `hasUniqueValue` one.
    pub fn unique_names(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .values()
            .filter(|p| p.has_unique_value || p.name == EMAIL_PROPERTY)
            .map(|p| p.name.as_str())
    }

    /// Judges a `POST /crm/v3/properties/contacts` body and creates the property.
    pub fn create(&mut self, body: &Value, now: OffsetDateTime) -> Result<&Property, CreateError> {
        let Some(fields) = body.as_object() else {
            return Err(CreateError::Invalid("The body must be a JSON object".into(), vec![]));
        };
        let text = |field: &str| fields.get(field).and_then(Value::as_str).filter(|s| !s.is_empty());
        let missing: Vec<&str> = REQUIRED_FIELDS.into_iter().filter(|f| text(f).is_none()).collect();
        if !missing.is_empty() {
            let problems = missing.iter().map(|f| (f.to_string(), "is required".to_owned())).collect();
            return Err(CreateError::Invalid(
                format!("Missing required fields: {}", missing.join(", ")),
                problems,
            ));
        }
        let (name, kind) = (text("name").unwrap_or_default(), text("type").unwrap_or_default());
        let mut problems = Vec::new();
        if !valid_name(name) {
            problems.push(("name".to_owned(), format!("{name:?} must match ^[a-z][a-z0-9_]*$")));
        }
        if !TYPES.contains(&kind) {
            problems.push(("type".to_owned(), format!("{kind:?} is not one of {}", TYPES.join(", "))));
        }
        let unique = match fields.get("hasUniqueValue") {
            None => false,
            Some(Value::Bool(unique)) => *unique,
            Some(_) => {
                problems.push(("hasUniqueValue".to_owned(), "must be a boolean".to_owned()));
                false
            }
        };
        if let Some((field, problem)) = problems.first() {
            return Err(CreateError::Invalid(format!("{field} {problem}"), problems));
        }
        if self.by_name.contains_key(name) {
            return Err(CreateError::Exists(name.to_owned()));
        }
        let property = Property {
            name: name.to_owned(),
            label: text("label").unwrap_or_default().to_owned(),
            kind: kind.to_owned(),
            field_type: text("fieldType").unwrap_or_default().to_owned(),
            group_name: text("groupName").unwrap_or_default().to_owned(),
            has_unique_value: unique,
            created_at: now,
            read_only: false,
        };
        Ok(self.by_name.entry(name.to_owned()).or_insert(property))
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The 400 body for a refused create's problems.
pub fn problems_json(problems: &[(String, String)]) -> Value {
    problems
        .iter()
        .map(|(field, problem)| json!({"message": format!("{field} {problem}"), "in": field}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(name: &str) -> Value {
        json!({"name": name, "label": "L", "type": "string", "fieldType": "text", "groupName": "g",
               "hasUniqueValue": true})
    }

    #[test]
    fn built_ins_exist_and_hs_object_id_is_read_only() {
        let properties = Properties::new(&[], OffsetDateTime::UNIX_EPOCH);
        assert_eq!(properties.list().count(), 8);
        assert!(properties.get(OBJECT_ID_PROPERTY).unwrap().read_only);
        assert!(!properties.get("email").unwrap().read_only);
        assert_eq!(properties.unique_names().collect::<Vec<_>>(), ["email"]);
    }

    #[test]
    fn a_create_names_what_is_missing_or_bad_and_a_second_one_is_a_conflict() {
        let mut properties = Properties::new(&[], OffsetDateTime::UNIX_EPOCH);
        let Err(CreateError::Invalid(message, problems)) = properties
            .create(&json!({"name": "x", "type": "string", "fieldType": "text"}), OffsetDateTime::UNIX_EPOCH)
        else {
            panic!("accepted")
        };
        assert_eq!(message, "Missing required fields: label, groupName");
        assert_eq!(problems.len(), 2);
        for (bad, field) in [(json!("Leadflow"), "name"), (json!("9x"), "name")] {
            let mut b = body("x");
            b["name"] = bad;
            let Err(CreateError::Invalid(_, problems)) = properties.create(&b, OffsetDateTime::UNIX_EPOCH)
            else {
                panic!("accepted")
            };
            assert_eq!(problems[0].0, field);
        }
        let mut b = body("x");
        b["type"] = json!("text");
        assert!(matches!(properties.create(&b, OffsetDateTime::UNIX_EPOCH), Err(CreateError::Invalid(..))));
        let created = properties.create(&body("leadflow_id"), OffsetDateTime::UNIX_EPOCH).unwrap();
        assert!(created.has_unique_value);
        assert_eq!(
            properties.create(&body("leadflow_id"), OffsetDateTime::UNIX_EPOCH),
            Err(CreateError::Exists("leadflow_id".into()))
        );
        assert_eq!(properties.unique_names().collect::<Vec<_>>(), ["email", "leadflow_id"]);
    }

    #[test]
    fn the_precreate_list_reads_names_and_the_unique_flag() {
        let specs = PropertySpec::parse_list("leadflow_id:unique,leadflow_version").unwrap();
        assert_eq!(
            specs,
            [PropertySpec::new("leadflow_id", true), PropertySpec::new("leadflow_version", false)]
        );
        assert_eq!(PropertySpec::parse_list("leadflow").unwrap(), PropertySpec::leadflow());
        for bad in ["", "a:primary", "Name", "a,,b"] {
            assert!(PropertySpec::parse_list(bad).is_err(), "{bad:?}");
        }
        let odd = PropertySpec { kind: "text".into(), ..PropertySpec::new("x", false) };
        assert!(odd.check().unwrap_err().contains("type"));
    }
}
