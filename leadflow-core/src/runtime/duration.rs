//! Durations in config. A duration key takes a humantime string (`"50ms"`, `"30s"`, `"1h"`,
//! `"2m 30s"`) or a bare whole number in the unit its old name carried: the keys were
//! `batch_linger_ms`, `reconcile_interval_s` and so on, and those names stay accepted as serde
//! aliases, so `LEADFLOW_CONSUMER__BATCH_LINGER_MS=5` still means 5 ms. A figment environment
//! value `5` arrives as an integer, `50ms` as a string; both work under either name.
//!
//! ```ignore
//! #[serde(alias = "batch_linger_ms", deserialize_with = "duration::millis_or_humantime")]
//! pub batch_linger: Duration,
//! ```
//!
//! A setting spelt both ways in different layers (`batch_linger = "50ms"` in the defaults,
//! `LEADFLOW_CONSUMER__BATCH_LINGER_MS=5` in the environment) would reach serde as two keys for
//! one field; [`crate::runtime::config::load`] lets the later layer's spelling take the earlier
//! one's place ([`supersede`]), so the layers keep their order whichever name each uses.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use figment::value::{Dict, Value};
use serde::Deserializer;
use serde::de::{self, Visitor};

/// A bare number is milliseconds (the key's old name ended in `_ms`); a string is humantime.
pub fn millis_or_humantime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor::<Millis>(PhantomData))
}

/// A bare number is seconds (the key's old name ended in `_s`); a string is humantime.
pub fn secs_or_humantime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor::<Secs>(PhantomData))
}

trait Unit {
    const NAME: &'static str;
    fn duration(n: u64) -> Duration;
}

struct Millis;
impl Unit for Millis {
    const NAME: &'static str = "milliseconds";
    fn duration(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}

struct Secs;
impl Unit for Secs {
    const NAME: &'static str = "seconds";
    fn duration(n: u64) -> Duration {
        Duration::from_secs(n)
    }
}

struct DurationVisitor<U>(PhantomData<U>);

impl<U: Unit> Visitor<'_> for DurationVisitor<U> {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a duration such as \"50ms\", \"30s\" or \"1h\", or a whole number of {}", U::NAME)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Ok(U::duration(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        u64::try_from(n).map(U::duration).map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(U::duration)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self));
        }
        humantime::parse_duration(text).map_err(|e| {
            E::custom(format!(
                "{text:?} is not a duration ({e}): write e.g. \"50ms\", \"30s\" or \"1h\", or a whole number of {}",
                U::NAME
            ))
        })
    }
}

/// The name a key has without its unit: `batch_linger_ms` and `batch_linger` are one setting.
fn without_unit(key: &str) -> &str {
    key.strip_suffix("_ms").or_else(|| key.strip_suffix("_s")).unwrap_or(key)
}

/// Takes out of `earlier` (a lower layer's table) every key that `later` (a higher layer's
/// table at the same place) sets under its other spelling: `later`'s `batch_linger_ms` removes
/// `earlier`'s `batch_linger`, and the other way round. Tables are compared key by key, all the
/// way down. Only a key spelt both ways is touched; a layer holding both spellings itself is
/// left for serde to refuse as a duplicate.
pub fn supersede(earlier: &mut Dict, later: &Dict) {
    for (key, value) in later {
        let stem = without_unit(key);
        earlier.retain(|other, _| other == key || without_unit(other) != stem);
        if let (Value::Dict(_, later_table), Some(Value::Dict(_, earlier_table))) =
            (value, earlier.get_mut(key))
        {
            supersede(earlier_table, later_table);
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use crate::runtime::config::load;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        consumer: Consumer,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Consumer {
        #[serde(alias = "batch_linger_ms", deserialize_with = "millis_or_humantime")]
        batch_linger: Duration,
        #[serde(alias = "refresh_s", deserialize_with = "secs_or_humantime")]
        refresh: Duration,
    }

    const DEFAULTS: &str = "[consumer]\nbatch_linger = \"50ms\"\nrefresh = \"30s\"\n";

    fn json(value: serde_json::Value) -> Result<Consumer, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn a_string_is_humantime_and_a_bare_number_is_the_old_unit() {
        let parsed = json(serde_json::json!({"batch_linger": "1s 500ms", "refresh": "1h"})).unwrap();
        assert_eq!(
            (parsed.batch_linger, parsed.refresh),
            (Duration::from_millis(1500), Duration::from_secs(3600))
        );
        let parsed = json(serde_json::json!({"batch_linger_ms": 5, "refresh_s": 300})).unwrap();
        assert_eq!(
            (parsed.batch_linger, parsed.refresh),
            (Duration::from_millis(5), Duration::from_secs(300))
        );
        let parsed = json(serde_json::json!({"batch_linger": "7", "refresh": 2})).unwrap();
        assert_eq!((parsed.batch_linger, parsed.refresh), (Duration::from_millis(7), Duration::from_secs(2)));
        let parsed = json(serde_json::json!({"batch_linger": "0ms", "refresh": 0})).unwrap();
        assert_eq!((parsed.batch_linger, parsed.refresh), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn a_bad_value_is_refused_saying_what_a_duration_looks_like() {
        let message = json(serde_json::json!({"batch_linger": "5 parsecs", "refresh": 1})).unwrap_err();
        assert!(
            message.contains("\"5 parsecs\" is not a duration") && message.contains("\"50ms\""),
            "{message}"
        );
        let message = json(serde_json::json!({"batch_linger": -5, "refresh": 1})).unwrap_err();
        assert!(message.contains("whole number of milliseconds"), "{message}");
        let message = json(serde_json::json!({"batch_linger": 1, "refresh": 1.5})).unwrap_err();
        assert!(message.contains("whole number of seconds"), "{message}");
        assert!(json(serde_json::json!({"batch_linger": 1, "refresh": ""})).is_err());
    }

    #[test]
    fn the_old_names_work_in_the_environment_and_a_later_layer_wins_whichever_name_it_uses() {
        figment::Jail::expect_with(|jail| {
            let cfg: Sample = load(&[DEFAULTS], None).unwrap();
            assert_eq!(cfg.consumer.batch_linger, Duration::from_millis(50));

            // "5" arrives from the environment as an integer, "2m" as a string.
            jail.set_env("LEADFLOW_CONSUMER__BATCH_LINGER_MS", "5");
            jail.set_env("LEADFLOW_CONSUMER__REFRESH_S", "2m");
            let cfg: Sample = load(&[DEFAULTS], None).unwrap();
            assert_eq!(cfg.consumer.batch_linger, Duration::from_millis(5));
            assert_eq!(cfg.consumer.refresh, Duration::from_secs(120));

            // A file with the old name under an environment with the new one: the environment wins.
            jail.create_file("svc.toml", "[consumer]\nbatch_linger_ms = 9\n")?;
            jail.clear_env();
            let cfg: Sample = load(&[DEFAULTS], Some(std::path::Path::new("svc.toml"))).unwrap();
            assert_eq!(
                cfg.consumer.batch_linger,
                Duration::from_millis(9),
                "the file's old name wins over the defaults"
            );
            jail.set_env("LEADFLOW_CONSUMER__BATCH_LINGER", "1s");
            let cfg: Sample = load(&[DEFAULTS], Some(std::path::Path::new("svc.toml"))).unwrap();
            assert_eq!(cfg.consumer.batch_linger, Duration::from_secs(1));
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LEADFLOW_CONSUMER__BATCH_LINGER", "5 parsecs");
            let message = load::<Sample>(&[DEFAULTS], None).unwrap_err().to_string();
            assert!(message.to_lowercase().contains("consumer.batch_linger"), "{message}");
            assert!(message.contains("\"5 parsecs\" is not a duration"), "{message}");
            jail.create_file("svc.toml", "[consumer]\nrefresh = \"5 parsecs\"\n")?;
            jail.clear_env();
            let message =
                load::<Sample>(&[DEFAULTS], Some(std::path::Path::new("svc.toml"))).unwrap_err().to_string();
            assert!(message.contains("consumer.refresh") && message.contains("svc.toml"), "{message}");
            jail.clear_env();
            jail.set_env("LEADFLOW_CONSUMER__REFRESH_S", "-3");
            let message = load::<Sample>(&[DEFAULTS], None).unwrap_err().to_string();
            assert!(message.to_lowercase().contains("consumer.refresh_s"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn one_layer_spelling_a_setting_both_ways_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("svc.toml", "[consumer]\nbatch_linger_ms = 9\nbatch_linger = \"9ms\"\n")?;
            let message =
                load::<Sample>(&[DEFAULTS], Some(std::path::Path::new("svc.toml"))).unwrap_err().to_string();
            assert!(message.contains("duplicate field") && message.contains("batch_linger"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn supersede_takes_out_only_the_other_spelling_of_a_later_key() {
        use figment::providers::{Format, Toml};
        let dict = |text: &str| -> Dict { figment::Figment::from(Toml::string(text)).extract().unwrap() };
        let mut earlier = dict("max_attempts = 1\n[a]\nx = 1\ny_ms = 2\nz = 3\n[b]\nw_s = 5\n");
        supersede(&mut earlier, &dict("max_attempt = 6\n[a]\nx_ms = 10\ny = 20\n[c]\nw = 7\n"));
        let a = earlier["a"].clone().into_dict().unwrap();
        assert_eq!(a.keys().collect::<Vec<_>>(), ["z"], "x and y_ms are taken out, z stays");
        assert!(earlier.contains_key("max_attempts"), "not a unit suffix");
        assert!(earlier["b"].clone().into_dict().unwrap().contains_key("w_s"), "another table's key");
    }
}
