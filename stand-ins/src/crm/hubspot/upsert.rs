//! Reads a batch-upsert body into [`Write`]s, judged against the properties that exist, or into
//! the [`Rejection`] a 400 carries. Nothing of a rejected body is applied.

use serde_json::{Map, Value, json};

use super::super::batch::plausible_email;
use super::fields::{self, Rejection};
use super::properties::{EMAIL_PROPERTY, Properties};

const INPUT_FIELDS: [&str; 4] = ["id", "idProperty", "properties", "objectWriteTraceId"];

/// One input: upsert the contact whose `id_property` is `id` with `properties`, each a text
/// value or `None` to clear it.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub id_property: String,
    pub id: String,
    pub properties: Vec<(String, Option<String>)>,
}

pub fn parse(body: &[u8], known: &Properties) -> Result<Vec<Write>, Rejection> {
    let top = fields::object(body)?;
    let mut malformed = Vec::new();
    fields::unknown_fields(&top, &["inputs"], "", &mut malformed);
    let inputs = fields::inputs(&top, &mut malformed);
    let mut shaped = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let at = format!("inputs[{i}]");
        let Value::Object(input) = input else {
            malformed.push((at, "must be an object".to_owned()));
            continue;
        };
        fields::unknown_fields(input, &INPUT_FIELDS, &at, &mut malformed);
        let text = |field: &str| input.get(field).and_then(Value::as_str).filter(|s| !s.is_empty());
        for field in ["id", "idProperty"] {
            if text(field).is_none() {
                malformed.push((format!("{at}.{field}"), "must be a non-empty string".to_owned()));
            }
        }
        if input.get("objectWriteTraceId").is_some_and(|v| !v.is_string()) {
            malformed.push((format!("{at}.objectWriteTraceId"), "must be a string".to_owned()));
        }
        match input.get("properties") {
            Some(Value::Object(properties)) => {
                if let (Some(id), Some(id_property)) = (text("id"), text("idProperty")) {
                    shaped.push((at, id_property.to_owned(), id.to_owned(), properties));
                }
            }
            _ => malformed.push((format!("{at}.properties"), "must be an object".to_owned())),
        }
    }
    if !malformed.is_empty() {
        return Err(Rejection::malformed(malformed));
    }
    for (at, id_property, _, _) in &shaped {
        if let Some(message) = fields::id_property_problem(known, id_property) {
            let errors = vec![json!({"message": message, "in": format!("{at}.idProperty")})];
            return Err(Rejection { message, errors, property_errors: true });
        }
    }
    let mut invalid = Vec::new();
    let writes = shaped
        .into_iter()
        .map(|(at, id_property, id, properties)| {
            if id_property == EMAIL_PROPERTY && !valid_email(&id) {
                invalid.push(Invalid::new(
                    &format!("{at}.id"),
                    EMAIL_PROPERTY,
                    "INVALID_EMAIL",
                    "Email address is invalid",
                ));
            }
            let properties = judge_properties(&at, properties, known, &mut invalid);
            Write { id_property, id, properties }
        })
        .collect();
    match invalid.is_empty() {
        true => Ok(writes),
        false => Err(Invalid::rejection(invalid)),
    }
}

fn judge_properties(
    at: &str,
    properties: &Map<String, Value>,
    known: &Properties,
    invalid: &mut Vec<Invalid>,
) -> Vec<(String, Option<String>)> {
    let mut values = Vec::with_capacity(properties.len());
    for (name, value) in properties {
        let location = format!("{at}.properties.{name}");
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                let message = format!("Property \"{name}\" must be a string, a number, a boolean or null");
                invalid.push(Invalid::new(&location, name, "INVALID_PROPERTY_VALUE", &message));
                continue;
            }
        };
        match known.get(name) {
            None => {
                let message = format!("Property \"{name}\" does not exist");
                invalid.push(Invalid::new(&location, name, "PROPERTY_DOESNT_EXIST", &message));
            }
            Some(p) if p.read_only => {
                let message =
                    format!("Property \"{name}\" is a read only property; its value cannot be set.");
                invalid.push(Invalid::new(&location, name, "READ_ONLY_VALUE", &message));
            }
            // The value stays out of the message: it is personal data, and clients log it.
            Some(_)
                if name == EMAIL_PROPERTY
                    && text.as_deref().is_some_and(|t| !t.is_empty() && !valid_email(t)) =>
            {
                invalid.push(Invalid::new(&location, name, "INVALID_EMAIL", "Email address is invalid"));
            }
            Some(_) => values.push((name.clone(), text.filter(|t| !t.is_empty()))),
        }
    }
    values
}

/// The versioned mode's loose check, and HubSpot's TLD check: the domain's last label is at
/// least two letters.
pub fn valid_email(address: &str) -> bool {
    let tld = address.rsplit_once('.').map(|(_, tld)| tld).unwrap_or_default();
    plausible_email(address) && tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic)
}

/// One bad property value.
struct Invalid {
    location: String,
    name: String,
    code: &'static str,
    message: String,
}

impl Invalid {
    fn new(location: &str, name: &str, code: &'static str, message: &str) -> Self {
        Invalid { location: location.to_owned(), name: name.to_owned(), code, message: message.to_owned() }
    }

    /// HubSpot's "Property values were not valid: [...]" 400, the list in its own JSON shape.
    fn rejection(invalid: Vec<Invalid>) -> Rejection {
        let listed: Vec<Value> = invalid
            .iter()
            .map(|i| json!({"isValid": false, "message": i.message, "error": i.code, "name": i.name}))
            .collect();
        let errors = invalid
            .into_iter()
            .map(|i| {
                json!({"message": i.message, "code": i.code, "context": {"propertyName": [i.name]}, "in": i.location})
            })
            .collect();
        let message = format!("Property values were not valid: {}", Value::Array(listed));
        Rejection { message, errors, property_errors: true }
    }
}

#[cfg(test)]
mod tests {
    use super::super::properties::PropertySpec;
    use super::*;
    use time::OffsetDateTime;

    fn known() -> Properties {
        Properties::new(&PropertySpec::leadflow(), OffsetDateTime::UNIX_EPOCH)
    }

    fn input(properties: Value) -> Value {
        json!({"idProperty": "leadflow_id", "id": "L1", "properties": properties})
    }

    fn rejected(body: Value) -> Rejection {
        parse(body.to_string().as_bytes(), &known()).unwrap_err()
    }

    fn locations(rejection: &Rejection) -> Vec<&str> {
        rejection.errors.iter().map(|e| e["in"].as_str().unwrap()).collect()
    }

    #[test]
    fn a_valid_input_becomes_text_values_and_empty_or_null_clears() {
        let body = json!({"inputs": [{"idProperty": "leadflow_id", "id": "L1", "objectWriteTraceId": "t",
            "properties": {"leadflow_version": 3, "leadflow_stage": true, "firstname": "", "lastname": null,
                           "email": "ada@example.com"}}]});
        let writes = parse(body.to_string().as_bytes(), &known()).unwrap();
        // Sorted: serde_json keeps a map's order as written when a crate of the workspace turns
        // on its `preserve_order`, and sorts it otherwise.
        let mut properties = writes[0].properties.clone();
        properties.sort();
        assert_eq!(
            properties,
            [
                ("email".to_owned(), Some("ada@example.com".to_owned())),
                ("firstname".to_owned(), None),
                ("lastname".to_owned(), None),
                ("leadflow_stage".to_owned(), Some("true".to_owned())),
                ("leadflow_version".to_owned(), Some("3".to_owned())),
            ]
        );
    }

    #[test]
    fn unknown_fields_anywhere_are_named() {
        let mut extra = input(json!({}));
        extra["idempotencyKey"] = json!("k");
        let r = rejected(json!({"inputs": [input(json!({})), extra], "dryRun": true}));
        assert_eq!(locations(&r), ["dryRun", "inputs[1].idempotencyKey"]);
        assert!(!r.property_errors && r.message.starts_with("Invalid input JSON: dryRun"), "{}", r.message);
        assert_eq!(locations(&rejected(json!({"inputs": []}))), ["inputs"]);
        let no_id = json!({"inputs": [{"idProperty": "leadflow_id", "properties": {}}]});
        assert_eq!(locations(&rejected(no_id)), ["inputs[0].id"]);
    }

    #[test]
    fn the_id_property_must_exist_and_be_unique_or_email() {
        let by = |p: &str| json!({"inputs": [{"idProperty": p, "id": "ada@example.com", "properties": {}}]});
        assert_eq!(rejected(by("nope")).message, "Property nope does not exist");
        assert_eq!(
            rejected(by("leadflow_stage")).message,
            "Unable to perform update/upsert by non-unique property: leadflow_stage"
        );
        assert!(parse(by("email").to_string().as_bytes(), &known()).is_ok());
        assert!(parse(by("leadflow_id").to_string().as_bytes(), &known()).is_ok());
    }

    #[test]
    fn missing_read_only_and_badly_typed_properties_fail_the_whole_batch() {
        let body = json!({"inputs": [input(json!({"foo": 1})),
                                     input(json!({"hs_object_id": "9", "leadflow_score": [1]}))]});
        let r = rejected(body);
        assert!(r.property_errors);
        assert_eq!(
            r.errors[0],
            json!({"message": "Property \"foo\" does not exist", "code": "PROPERTY_DOESNT_EXIST",
                   "context": {"propertyName": ["foo"]}, "in": "inputs[0].properties.foo"})
        );
        let codes: Vec<_> = r.errors.iter().map(|e| e["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE", "INVALID_PROPERTY_VALUE"]);
        assert!(
            r.message.starts_with("Property values were not valid: ")
                && r.message.contains("PROPERTY_DOESNT_EXIST")
        );
    }

    #[test]
    fn emails_need_a_letter_tld_of_two_or_more_and_stay_out_of_the_message() {
        for good in ["ada@example.com", "a.b+tag@mail.example.co.uk", "zoë@bücher.de"] {
            assert!(valid_email(good), "{good}");
        }
        for bad in ["x@y.z", "ada@example.c0m", "ada@example.123", "ada@example", "ada @example.com", "@a.de"]
        {
            assert!(!valid_email(bad), "{bad}");
            let r = rejected(json!({"inputs": [input(json!({"email": bad}))]}));
            assert_eq!(r.errors[0]["code"], "INVALID_EMAIL");
            assert!(!r.message.contains(bad), "{}", r.message);
        }
    }
}
