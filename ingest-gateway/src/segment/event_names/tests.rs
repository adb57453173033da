use proptest::prelude::*;

use super::*;

fn no_map() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn names_are_normalised() {
    let cases = [
        ("Order Completed", "order_completed"),
        ("page_view", "page_view"),
        ("Signed Up!", "signed_up"),
        ("  --  ", "e_"),
        ("", "e_"),
        ("3D View", "e_3d_view"),
        ("__Checkout -- Step 2__", "checkout_step_2"),
        ("Café Visité", "caf_visit"),
        ("ÉÉ", "e_"),
        ("ÉTÉ", "t"),
    ];
    for (name, expected) in cases {
        assert_eq!(event_type_of(name, &no_map()), expected, "{name:?}");
    }
}

#[test]
fn a_long_name_is_cut_to_64_characters() {
    let event_type = event_type_of(&"A".repeat(200), &no_map());
    assert_eq!(event_type, "a".repeat(64));
}

#[test]
fn a_cut_that_ends_on_a_separator_drops_it() {
    // Character 64 is the '_' between the two words.
    let name = format!("{} tail", "b".repeat(63));
    assert_eq!(event_type_of(&name, &no_map()), "b".repeat(63));
}

#[test]
fn a_digit_prefixed_name_is_cut_after_the_prefix() {
    let event_type = event_type_of(&"9".repeat(100), &no_map());
    assert_eq!(event_type, format!("e_{}", "9".repeat(62)));
}

#[test]
fn the_project_map_wins_by_exact_name() {
    let map = BTreeMap::from([("Demo Requested".to_owned(), "demo_request".to_owned())]);
    assert_eq!(event_type_of("Demo Requested", &map), "demo_request");
    assert_eq!(event_type_of("demo requested", &map), "demo_requested");
}

#[test]
fn a_mapped_value_that_is_no_event_type_is_passed_over() {
    let map = BTreeMap::from([("Demo Requested".to_owned(), "Demo Request".to_owned())]);
    assert_eq!(event_type_of("Demo Requested", &map), "demo_requested");
}

proptest! {
    #[test]
    fn every_name_becomes_a_valid_event_type(
        name in any::<String>(),
        mapped in any::<String>(),
    ) {
        let map = BTreeMap::from([(name.clone(), mapped)]);
        let with_map = event_type_of(&name, &map);
        prop_assert!(check_event_type(&with_map).is_ok(), "{name:?} -> {with_map:?}");
        let default = event_type_of(&name, &no_map());
        prop_assert!(check_event_type(&default).is_ok(), "{name:?} -> {default:?}");
    }

    #[test]
    fn every_wordy_name_becomes_a_valid_event_type(name in "[ A-Za-z0-9_.!-]{0,150}") {
        let event_type = event_type_of(&name, &no_map());
        prop_assert!(check_event_type(&event_type).is_ok(), "{name:?} -> {event_type:?}");
    }

    #[test]
    fn a_valid_event_type_is_its_own_name(event_type in "[a-z][a-z0-9]{0,20}(_[a-z0-9]{1,20}){0,2}") {
        prop_assert_eq!(event_type_of(&event_type, &no_map()), event_type);
    }
}
