//! A config value that must not be printed: an API key, an access token, a password.
//! [`Secret`]'s `Debug` and `Display` say `[redacted]` (or `[empty]`), so a config struct that
//! derives `Debug` can be logged whole; the value itself is read only through
//! [`Secret::expose`], which makes every use of it easy to find. It deserialises from a string
//! (empty allowed, meaning "none") and is not `Serialize`, so it cannot be written back out.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself: for the request that needs it, never for a log line or an error text.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the value replaced by `[redacted]`: for a text that may
    /// have picked the value up on its way (a URL in a library's error, say).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_owned() } else { text.replace(&self.0, "[redacted]") }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "[empty]" } else { "[redacted]" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Takes a string, and also a number or a boolean as its text: figment reads an environment
/// value `12345` as an integer, and a key made of digits is still a key. No error here quotes
/// the value.
struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        // Its text would not be what was written ("1e3" reads back as "1000").
        Err(E::custom("a secret that reads as a decimal number; quote it in the config file"))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Secret, E> {
        Ok(Secret(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_prints_redacted_and_exposes_on_request() {
        let secret = Secret::new("s3cret-key");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.expose(), "s3cret-key");
        assert_eq!(format!("{:?}", Secret::default()), "[empty]");
        assert!(Secret::default().is_empty());
    }

    #[test]
    fn a_struct_holding_one_debug_prints_without_it() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            base_url: String,
            api_key: Secret,
        }
        let config: Config =
            serde_json::from_value(serde_json::json!({"base_url": "http://x", "api_key": "s3cret-key"}))
                .unwrap();
        assert_eq!(config.api_key.expose(), "s3cret-key");
        let printed = format!("{config:?}");
        assert!(printed.contains("http://x") && !printed.contains("s3cret"), "{printed}");
        let empty: Config =
            serde_json::from_value(serde_json::json!({"base_url": "", "api_key": ""})).unwrap();
        assert!(empty.api_key.is_empty());
    }

    #[test]
    fn digits_are_a_secret_too_and_errors_never_quote_the_value() {
        let secret: Secret = serde_json::from_value(serde_json::json!(12345)).unwrap();
        assert_eq!(secret.expose(), "12345");
        let error = serde_json::from_value::<Secret>(serde_json::json!(["s3cret"])).unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
        let error = serde_json::from_value::<Secret>(serde_json::json!(1.25)).unwrap_err().to_string();
        assert!(!error.contains("1.25"), "{error}");
    }

    #[test]
    fn scrub_takes_the_value_out_of_a_text() {
        let secret = Secret::new("k3y");
        assert_eq!(secret.scrub("GET /?apikey=k3y failed"), "GET /?apikey=[redacted] failed");
        assert_eq!(Secret::default().scrub("as it was"), "as it was");
    }
}
