//! The bodies of register and login, checked field by field: every broken rule is a
//! [`FieldError`] naming its field, and a body with any is a 400 before any hashing or query.

use serde_json::{Map, Value};

use leadflow_core::contract::project::check_project_id;

use crate::error::{AppError, FieldError};
use crate::users::password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// The most characters an email may have (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// The most projects one registration may name.
pub const MAX_PROJECTS_PER_USER: usize = 100;

/// `POST /api/auth/register`'s body. `projects` is `None` when the body has none.
#[derive(Debug, PartialEq, Eq)]
pub struct Registration {
    /// Lowercased: the user's id.
    pub email: String,
    pub password: String,
    pub projects: Option<Vec<String>>,
}

/// `POST /api/auth/login`'s body.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Lowercased, as stored.
    pub email: String,
    pub password: String,
}

pub fn registration(body: &Value) -> Result<Registration, AppError> {
    let fields = object(body)?;
    let mut errors = unknown_fields(fields, &["email", "password", "projects"]);
    let email = required_string(fields, "email", &mut errors).and_then(|e| checked_email(e, &mut errors));
    let password = required_string(fields, "password", &mut errors);
    if let Some(Err(error)) = password.map(check_password_rules) {
        errors.push(error);
    }
    let projects = match fields.get("projects") {
        None => None,
        Some(value) => checked_projects(value, &mut errors),
    };
    match (email, password) {
        (Some(email), Some(password)) if errors.is_empty() => {
            Ok(Registration { email, password: password.to_owned(), projects })
        }
        _ => Err(AppError::invalid_fields(errors)),
    }
}

/// A login's password is only checked for being a string of at most the longest allowed
/// length: any other rule would tell a caller something about the password's shape, and the
/// limit keeps an attacker from making argon2 hash megabytes.
pub fn credentials(body: &Value) -> Result<Credentials, AppError> {
    let fields = object(body)?;
    let mut errors = unknown_fields(fields, &["email", "password"]);
    let email = required_string(fields, "email", &mut errors).and_then(|e| checked_email(e, &mut errors));
    let password = required_string(fields, "password", &mut errors);
    if let Some(password) = password
        && password.chars().count() > MAX_PASSWORD_CHARS
    {
        errors.push(FieldError::new(
            "password",
            "too_long",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    match (email, password) {
        (Some(email), Some(password)) if errors.is_empty() => {
            Ok(Credentials { email, password: password.to_owned() })
        }
        _ => Err(AppError::invalid_fields(errors)),
    }
}

/// A simple check, not RFC 5322: one `@` with something on both sides, no whitespace, at most
/// [`MAX_EMAIL_CHARS`]. The lowercased address is the user's id, so `Ada@X.io` and `ada@x.io`
/// are one account.
pub fn normalized_email(email: &str) -> Result<String, FieldError> {
    let invalid = |message: &str| FieldError::new("email", "invalid_format", message);
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(FieldError::new(
            "email",
            "too_long",
            format!("email must be at most {MAX_EMAIL_CHARS} characters"),
        ));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("email must be an address with one @"));
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(invalid("email must be an address with one @ and text on both sides"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("email must not contain spaces or control characters"));
    }
    Ok(email.to_lowercase())
}

/// 12 to 256 characters (Unicode scalar values, not bytes), anything else allowed: length is
/// what makes a password strong, and composition rules only make it harder to remember.
pub fn check_password_rules(password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            "too_short",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            "password",
            "too_long",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

fn object(body: &Value) -> Result<&Map<String, Value>, AppError> {
    body.as_object().ok_or_else(|| {
        AppError::invalid_fields(vec![FieldError::new(
            "body",
            "invalid_type",
            "the body must be a JSON object",
        )])
    })
}

fn unknown_fields(fields: &Map<String, Value>, known: &[&str]) -> Vec<FieldError> {
    fields
        .keys()
        .filter(|name| !known.contains(&name.as_str()))
        .map(|name| {
            FieldError::new(name.clone(), "unknown_field", format!("{name} is not a field of this body"))
        })
        .collect()
}

fn required_string<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match fields.get(name) {
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            errors.push(FieldError::new(name, "invalid_type", format!("{name} must be a string")));
            None
        }
        None => {
            errors.push(FieldError::new(name, "required", format!("{name} is required")));
            None
        }
    }
}

fn checked_email(email: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    normalized_email(email).map_err(|error| errors.push(error)).ok()
}

/// A list of distinct valid project ids, in the order given; an empty list is allowed (a user
/// a later registration or an admin gives projects to) but `null` is not.
fn checked_projects(value: &Value, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        errors.push(FieldError::new("projects", "invalid_type", "projects must be an array of project ids"));
        return None;
    };
    if items.len() > MAX_PROJECTS_PER_USER {
        errors.push(FieldError::new(
            "projects",
            "too_many",
            format!("projects may name at most {MAX_PROJECTS_PER_USER} projects"),
        ));
        return None;
    }
    let mut projects: Vec<String> = Vec::with_capacity(items.len());
    let before = errors.len();
    for (i, item) in items.iter().enumerate() {
        let field = format!("projects[{i}]");
        match item {
            Value::String(id) => match check_project_id(id) {
                Ok(()) if !projects.contains(id) => projects.push(id.clone()),
                Ok(()) => {
                    errors.push(FieldError::new(field, "invalid_value", format!("{id} is listed twice")))
                }
                Err(error) => errors.push(FieldError::new(field, error.reason(), error.to_string())),
            },
            _ => errors.push(FieldError::new(field, "invalid_type", "a project id must be a string")),
        }
    }
    (errors.len() == before).then_some(projects)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields_of(error: AppError) -> Vec<(String, &'static str)> {
        error.body.details.into_iter().map(|e| (e.field, e.reason)).collect()
    }

    #[test]
    fn an_email_is_lowercased_and_needs_one_at_sign_with_text_on_both_sides() {
        assert_eq!(normalized_email("Ada.Lovelace@Example.COM").unwrap(), "ada.lovelace@example.com");
        for bad in ["ada.example.com", "@example.com", "ada@", "a@b@c", "ada @example.com", ""] {
            assert_eq!(normalized_email(bad).unwrap_err().reason, "invalid_format", "{bad:?}");
        }
        let longest = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS - 12));
        assert_eq!(longest.len(), MAX_EMAIL_CHARS);
        assert!(normalized_email(&longest).is_ok());
        assert_eq!(normalized_email(&format!("a{longest}")).unwrap_err().reason, "too_long");
    }

    #[test]
    fn a_password_has_12_to_256_characters_counted_as_characters() {
        assert_eq!(check_password_rules(&"x".repeat(11)).unwrap_err().reason, "too_short");
        assert!(check_password_rules(&"x".repeat(12)).is_ok());
        assert!(check_password_rules(&"é".repeat(256)).is_ok(), "512 bytes but 256 characters");
        assert_eq!(check_password_rules(&"x".repeat(257)).unwrap_err().reason, "too_long");
    }

    #[test]
    fn a_registration_is_read_with_its_email_lowercased() {
        let body = json!({"email": "Ada@Example.com", "password": "a long enough pass", "projects": ["acme", "default"]});
        assert_eq!(
            registration(&body).unwrap(),
            Registration {
                email: "ada@example.com".into(),
                password: "a long enough pass".into(),
                projects: Some(vec!["acme".into(), "default".into()]),
            }
        );
        let without = registration(&json!({"email": "a@b.c", "password": "a long enough pass"})).unwrap();
        assert_eq!(without.projects, None);
    }

    #[test]
    fn a_bad_registration_names_every_broken_field() {
        let body =
            json!({"email": "nope", "password": "short", "projects": ["ok", "Bad!", 3, "ok"], "role": "x"});
        let error = registration(&body).unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(
            fields_of(error),
            vec![
                ("role".to_owned(), "unknown_field"),
                ("email".to_owned(), "invalid_format"),
                ("password".to_owned(), "too_short"),
                ("projects[1]".to_owned(), "invalid_format"),
                ("projects[2]".to_owned(), "invalid_type"),
                ("projects[3]".to_owned(), "invalid_value"),
            ]
        );
        let error = registration(&json!({"email": null, "projects": null})).unwrap_err();
        assert_eq!(
            fields_of(error),
            vec![
                ("email".to_owned(), "invalid_type"),
                ("password".to_owned(), "required"),
                ("projects".to_owned(), "invalid_type"),
            ]
        );
        assert_eq!(
            fields_of(registration(&json!([])).unwrap_err()),
            vec![("body".to_owned(), "invalid_type")]
        );
    }

    #[test]
    fn a_login_takes_any_password_up_to_the_longest_allowed() {
        let read = credentials(&json!({"email": "Ada@Example.com", "password": "short"})).unwrap();
        assert_eq!(read, Credentials { email: "ada@example.com".into(), password: "short".into() });
        let error = credentials(&json!({"email": "a@b.c", "password": "x".repeat(257)})).unwrap_err();
        assert_eq!(fields_of(error), vec![("password".to_owned(), "too_long")]);
        let error = credentials(&json!({"email": "a@b.c"})).unwrap_err();
        assert_eq!(error.body.field.as_deref(), Some("password"));
    }
}
