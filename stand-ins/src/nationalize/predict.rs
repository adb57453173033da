//! The stand-in's answer for a name: a pure function of the name, so any test can compute the
//! expected response without asking the server.

use serde::{Deserialize, Serialize};

/// The countries predictions are drawn from (ISO 3166-1 alpha-2).
pub const COUNTRIES: [&str; 20] = [
    "US", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "NO", "PL", "IE", "PT", "BR", "MX", "IN", "JP", "CN",
    "NG", "AU", "CA",
];

/// One object of the API's response, field names as nationalize.io spells them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub count: u64,
    pub name: String,
    pub country: Vec<CountryProbability>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryProbability {
    pub country_id: String,
    pub probability: f64,
}

/// Predicts the countries for `name`; see the [module docs](super) for the rule.
pub fn predict(name: &str) -> Prediction {
    let lower = name.to_lowercase();
    if lower.is_empty() || lower.starts_with("unknown") {
        return Prediction { count: 0, name: name.to_owned(), country: Vec::new() };
    }
    let mut draws = Draws(fnv1a64(lower.as_bytes()));
    let how_many = 1 + draws.next() % 3;
    let count = 50 + draws.next() % 200_000;

    // Basis points keep the rounding exact: the sum can never creep over 1 through float error.
    let top = draws.next();
    let top_bp = if top.is_multiple_of(2) { 6001 + (top / 2) % 3500 } else { 2000 + (top / 2) % 4001 };
    let mut shares = vec![top_bp];
    let mut left = 10_000 - top_bp;
    for _ in 1..how_many {
        // 30–70 % of what is left, never above the previous share, so the list stays sorted.
        let share = (left * (30 + draws.next() % 41) / 100).clamp(1, *shares.last().unwrap());
        shares.push(share);
        left -= share;
    }

    let mut pool = COUNTRIES.to_vec();
    let country = shares
        .into_iter()
        .map(|bp| {
            let code = pool.remove((draws.next() % pool.len() as u64) as usize);
            CountryProbability { country_id: code.to_owned(), probability: bp as f64 / 10_000.0 }
        })
        .collect();
    Prediction { count, name: name.to_owned(), country }
}

/// FNV-1a 64: std's `DefaultHasher` may change between Rust releases; this never does.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64 seeded by the name's hash: FNV's output alone has too little spread in its low bits
/// to drive several independent choices.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> impl Iterator<Item = String> {
        (0..2000).map(|i| format!("name{i}"))
    }

    #[test]
    fn the_same_name_gives_the_same_prediction_and_case_only_changes_the_echoed_name() {
        assert_eq!(predict("michael"), predict("michael"));
        let upper = predict("Michael");
        assert_eq!(upper.name, "Michael");
        assert_eq!(upper.country, predict("michael").country);
        assert_eq!(upper.count, predict("michael").count);
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn unknown_and_empty_names_get_no_prediction() {
        for name in ["unknown", "Unknown-42", "UNKNOWNsmith", ""] {
            let p = predict(name);
            assert_eq!((p.count, p.country.len(), p.name.as_str()), (0, 0, name));
        }
        assert!(!predict("knownunknown").country.is_empty());
    }

    #[test]
    fn every_prediction_is_a_valid_distribution_over_distinct_listed_countries() {
        for name in names() {
            let p = predict(&name);
            assert!((1..=3).contains(&p.country.len()), "{name}: {p:?}");
            assert!(p.count > 0, "{name}");
            let sum: f64 = p.country.iter().map(|c| c.probability).sum();
            assert!(sum <= 1.0, "{name}: sum {sum}");
            for c in &p.country {
                assert!(c.probability > 0.0 && c.probability <= 1.0, "{name}: {c:?}");
                assert_eq!(
                    (c.probability * 10_000.0).round() / 10_000.0,
                    c.probability,
                    "{name}: 4 decimals"
                );
                assert!(COUNTRIES.contains(&c.country_id.as_str()), "{name}: {c:?}");
            }
            assert!(p.country.windows(2).all(|w| w[0].probability >= w[1].probability), "{name}: {p:?}");
            let mut ids: Vec<_> = p.country.iter().map(|c| &c.country_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), p.country.len(), "{name}: duplicate country");
        }
    }

    #[test]
    fn roughly_half_the_names_are_confident_and_every_list_length_occurs() {
        let predictions: Vec<_> = names().map(|n| predict(&n)).collect();
        let confident = predictions.iter().filter(|p| p.country[0].probability > 0.6).count();
        assert!((800..=1200).contains(&confident), "{confident} of 2000 above 0.6");
        for len in 1..=3 {
            assert!(predictions.iter().any(|p| p.country.len() == len), "no prediction with {len} countries");
        }
    }
}
