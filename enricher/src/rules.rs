//! The enrichment rules, pure: which name to ask about, and what a prediction makes of a lead.
//!
//! Lookup key: nationalize.io predicts from first names, so the key is the name's first
//! whitespace-separated token, without the punctuation around it, in lower case
//! ("  Zoë-Anne O'Neil " asks about "zoë-anne"). A name whose first token holds no letter or
//! digit has no key and gets `To Check` with reason `no_prediction`, without a request.

use leadflow_core::contract::records::EnrichmentStatus;

pub const REASON_LOW_PROBABILITY: &str = "low_probability";
pub const REASON_NO_PREDICTION: &str = "no_prediction";
pub const REASON_ENRICHMENT_FAILED: &str = "enrichment_failed";

#[derive(Debug, Clone, PartialEq)]
pub struct CountryProbability {
    /// ISO 3166-1 alpha-2, upper case.
    pub country_id: String,
    pub probability: f64,
}

/// What the rules make of a lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub country_code: Option<String>,
    pub probability: Option<f64>,
    pub status: EnrichmentStatus,
    pub reason: Option<&'static str>,
}

/// The key a name is looked up (and cached) by.
pub fn lookup_key(name: &str) -> Option<String> {
    let first = name.split_whitespace().next()?;
    let trimmed = first.trim_matches(|c: char| !c.is_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_lowercase())
}

/// The most likely country wins (ties go to the smaller code, so the verdict does not depend on
/// the order of the list); above `threshold` it is `Verified`, at or below `To Check`.
pub fn verdict(countries: &[CountryProbability], threshold: f64) -> Verdict {
    let top = countries
        .iter()
        .max_by(|a, b| a.probability.total_cmp(&b.probability).then_with(|| b.country_id.cmp(&a.country_id)));
    match top {
        None => no_prediction(),
        Some(top) => {
            let verified = top.probability > threshold;
            Verdict {
                country_code: Some(top.country_id.clone()),
                probability: Some(top.probability),
                status: if verified { EnrichmentStatus::Verified } else { EnrichmentStatus::ToCheck },
                reason: (!verified).then_some(REASON_LOW_PROBABILITY),
            }
        }
    }
}

pub fn no_prediction() -> Verdict {
    Verdict {
        country_code: None,
        probability: None,
        status: EnrichmentStatus::ToCheck,
        reason: Some(REASON_NO_PREDICTION),
    }
}

/// For a name the API could not answer within the retry budget.
pub fn enrichment_failed() -> Verdict {
    Verdict {
        country_code: None,
        probability: None,
        status: EnrichmentStatus::ToCheck,
        reason: Some(REASON_ENRICHMENT_FAILED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn country(id: &str, probability: f64) -> CountryProbability {
        CountryProbability { country_id: id.into(), probability }
    }

    #[test]
    fn the_threshold_itself_is_to_check_and_just_above_it_is_verified() {
        let at = verdict(&[country("FR", 0.6)], 0.6);
        assert_eq!(at.status, EnrichmentStatus::ToCheck);
        assert_eq!(at.reason, Some(REASON_LOW_PROBABILITY));
        assert_eq!(at.country_code.as_deref(), Some("FR"), "the country is kept for a To Check lead");
        let above = verdict(&[country("FR", 0.6001)], 0.6);
        assert_eq!(above.status, EnrichmentStatus::Verified);
        assert_eq!(above.reason, None);
    }

    #[test]
    fn the_most_likely_country_wins_wherever_it_is_in_the_list() {
        let v = verdict(&[country("US", 0.1), country("IE", 0.7), country("GB", 0.2)], 0.6);
        assert_eq!((v.country_code.as_deref(), v.probability), (Some("IE"), Some(0.7)));
        assert_eq!(v.status, EnrichmentStatus::Verified);
    }

    #[test]
    fn an_empty_country_list_is_to_check_with_no_prediction() {
        let v = verdict(&[], 0.6);
        assert_eq!(v, no_prediction());
        assert_eq!(v.reason, Some("no_prediction"));
        assert_eq!(v.country_code, None);
    }

    #[test]
    fn the_threshold_is_configurable() {
        let prediction = [country("DE", 0.5)];
        assert_eq!(verdict(&prediction, 0.6).status, EnrichmentStatus::ToCheck);
        assert_eq!(verdict(&prediction, 0.4).status, EnrichmentStatus::Verified);
    }

    #[test]
    fn the_lookup_key_is_the_first_token_trimmed_and_lower_cased() {
        assert_eq!(lookup_key("  Zoë-Anne O'Neil ").as_deref(), Some("zoë-anne"));
        assert_eq!(lookup_key("\"MICHAEL\", Jr.").as_deref(), Some("michael"));
        assert_eq!(lookup_key("Ångström").as_deref(), Some("ångström"));
        assert_eq!(lookup_key("... x").as_deref(), None, "the first token has no letter");
        assert_eq!(lookup_key("   ").as_deref(), None);
    }

    proptest! {
        #[test]
        fn ties_do_not_depend_on_list_order(p in 0.0f64..=1.0, swap: bool) {
            let mut list = vec![country("AA", p), country("BB", p)];
            if swap { list.reverse(); }
            let winner = verdict(&list, 0.6).country_code;
            prop_assert_eq!(winner.as_deref(), Some("AA"));
        }

        #[test]
        fn verified_exactly_when_the_top_probability_exceeds_the_threshold(
            probs in proptest::collection::vec(0.0f64..=1.0, 1..6),
            threshold in 0.0f64..=1.0,
        ) {
            let list: Vec<_> = probs.iter().enumerate().map(|(i, p)| country(&format!("C{i}"), *p)).collect();
            let top = probs.iter().copied().fold(f64::MIN, f64::max);
            let v = verdict(&list, threshold);
            prop_assert_eq!(v.probability, Some(top));
            prop_assert_eq!(v.status == EnrichmentStatus::Verified, top > threshold);
        }

        #[test]
        fn a_lookup_key_is_never_blank_and_is_stable(name in "\\PC{0,40}") {
            if let Some(key) = lookup_key(&name) {
                prop_assert!(!key.trim().is_empty());
                prop_assert!(!key.contains(char::is_whitespace));
                prop_assert_eq!(lookup_key(&key), Some(key.clone()));
            }
        }
    }
}
