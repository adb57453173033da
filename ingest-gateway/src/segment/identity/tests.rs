use proptest::prelude::*;

use super::*;

#[test]
fn an_id_in_the_lead_id_rule_is_kept_as_it_is() {
    for id in ["user-42", "a@x.io", "anon:7f3e.b_c", &"a".repeat(MAX_ID_CHARS)] {
        assert_eq!(lead_id_of(id).as_deref(), Ok(id));
        assert_eq!(sdk_id_of(id), id);
    }
}

#[test]
fn free_text_ids_are_encoded_and_decoded() {
    for id in ["user 42", "a+b@x.io", "Zoë", "é", "a/b?c=d"] {
        let lead_id = lead_id_of(id).unwrap();
        assert!(lead_id.starts_with(ENCODED_PREFIX), "{lead_id}");
        assert!(check_lead_id("leadId", &lead_id).is_ok(), "{lead_id}");
        assert_eq!(sdk_id_of(&lead_id), id);
    }
    assert_eq!(lead_id_of("user 42").unwrap(), "b64.dXNlciA0Mg");
}

#[test]
fn an_id_that_starts_with_the_prefix_is_encoded() {
    let lead_id = lead_id_of("b64.dXNlciA0Mg").unwrap();
    assert_ne!(lead_id, "b64.dXNlciA0Mg");
    assert_ne!(lead_id, lead_id_of("user 42").unwrap());
    assert_eq!(sdk_id_of(&lead_id), "b64.dXNlciA0Mg");
}

#[test]
fn an_id_too_long_to_encode_is_refused() {
    let longest = " ".repeat(MAX_ENCODED_ID_BYTES);
    assert_eq!(lead_id_of(&longest).unwrap().chars().count(), MAX_ID_CHARS);
    let over = " ".repeat(MAX_ENCODED_ID_BYTES + 1);
    assert_eq!(lead_id_of(&over), Err(IdError::TooLong { bytes: MAX_ENCODED_ID_BYTES + 1 }));
    // Within the rule but over 128 characters: no longer kept as it is, and too long to encode.
    assert!(matches!(lead_id_of(&"a".repeat(MAX_ID_CHARS + 1)), Err(IdError::TooLong { .. })));
}

#[test]
fn an_empty_id_is_refused() {
    assert_eq!(lead_id_of(""), Err(IdError::Empty));
}

#[test]
fn a_lead_id_that_is_no_encoding_is_itself() {
    // Nothing encoded, a length base64 cannot have, and a byte that is not UTF-8 ("_w" is 0xFF).
    for lead_id in ["b64.", "b64.a", "b64._w", "plain"] {
        assert_eq!(sdk_id_of(lead_id), lead_id);
    }
}

proptest! {
    #[test]
    fn lead_ids_round_trip_and_pass_the_lead_id_rule(id in any::<String>()) {
        if let Ok(lead_id) = lead_id_of(&id) {
            prop_assert!(check_lead_id("leadId", &lead_id).is_ok(), "{lead_id:?}");
            prop_assert_eq!(sdk_id_of(&lead_id), id);
        } else {
            prop_assert!(id.is_empty() || id.len() > MAX_ENCODED_ID_BYTES);
        }
    }

    #[test]
    fn lead_ids_of_lead_id_like_text_round_trip(id in "(b64\\.)?[A-Za-z0-9._:@ +-]{1,89}") {
        let lead_id = lead_id_of(&id).unwrap();
        prop_assert!(check_lead_id("leadId", &lead_id).is_ok(), "{lead_id:?}");
        prop_assert_eq!(sdk_id_of(&lead_id), id);
    }

    #[test]
    fn distinct_ids_get_distinct_lead_ids(
        a in "(b64\\.)?[A-Za-z0-9._:@ +-]{1,40}",
        b in "(b64\\.)?[A-Za-z0-9._:@ +-]{1,40}",
    ) {
        prop_assume!(a != b);
        prop_assert_ne!(lead_id_of(&a).unwrap(), lead_id_of(&b).unwrap());
    }

    #[test]
    fn distinct_arbitrary_ids_get_distinct_lead_ids(a in any::<String>(), b in any::<String>()) {
        prop_assume!(a != b);
        if let (Ok(x), Ok(y)) = (lead_id_of(&a), lead_id_of(&b)) {
            prop_assert_ne!(x, y);
        }
    }
}
