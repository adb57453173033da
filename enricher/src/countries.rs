//! Country names from the bundled ISO 3166-1 table (`data/iso3166-1.tsv`), never from the
//! network.

use std::collections::HashMap;
use std::sync::LazyLock;

const TABLE: &str = include_str!("../data/iso3166-1.tsv");

static NAMES: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split_once('\t'))
        .collect()
});

/// The English short name of an ISO 3166-1 alpha-2 code (upper case), if ISO assigns it.
pub fn country_name(code: &str) -> Option<&'static str> {
    NAMES.get(code).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_assigned_code() {
        assert_eq!(NAMES.len(), 249);
        assert_eq!(country_name("US"), Some("United States"));
        assert_eq!(country_name("CI"), Some("Côte d'Ivoire"));
        assert_eq!(country_name("XK"), None, "Kosovo has no ISO code");
        assert_eq!(country_name("us"), None, "codes are upper case");
    }
}
