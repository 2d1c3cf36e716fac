//! Properties of the pure parts, over generated inputs: key values, the string to sign, masking,
//! and Query filters against a naive reference.

use keygate_core::key_value::{KEY_VALUE_LEN, KeyValue, Pepper};
use keygate_core::model::{ApiKeyId, StoredSecret};
use keygate_core::query::{Condition, Document, FieldKind, Filter, Schema};
use keygate_core::signature;
use proptest::prelude::*;
use serde_json::{Value, json};

fn key_id() -> impl Strategy<Value = ApiKeyId> {
    "[0-9a-f]{12}".prop_map(|hex| ApiKeyId::parse(&format!("api-key-{hex}")).unwrap())
}

proptest! {
    #[test]
    fn generated_key_values_parse_back_to_their_id(id in key_id()) {
        let value = KeyValue::generate(&id);
        prop_assert_eq!(value.expose().len(), KEY_VALUE_LEN);
        let parsed = KeyValue::parse(value.expose()).expect("a generated value parses");
        prop_assert_eq!(parsed.api_key_id(), id);
    }

    #[test]
    fn any_one_character_changed_is_refused(id in key_id(), position in 0..KEY_VALUE_LEN, replacement in "[0-9A-Za-z_-]") {
        let value = KeyValue::generate(&id);
        let mut text = value.expose().to_owned();
        let original = text.as_bytes()[position] as char;
        prop_assume!(!replacement.starts_with(original));
        text.replace_range(position..=position, &replacement);
        prop_assert!(KeyValue::parse(&text).is_none(), "accepted {text}");
    }

    #[test]
    fn arbitrary_text_is_never_a_key_value_unless_well_formed(text in "\\PC{0,80}") {
        if let Some(parsed) = KeyValue::parse(&text) {
            prop_assert_eq!(parsed.expose(), text.as_str());
            prop_assert!(text.starts_with("kg_"));
        }
    }

    #[test]
    fn masking_shows_only_the_last_four_characters(id in key_id()) {
        let value = KeyValue::generate(&id);
        let pepper = Pepper::new(vec![9; 32]).unwrap();
        let stored = StoredSecret::first(pepper.hash(&value), value.last4());
        let masked = stored.masked();
        prop_assert_eq!(masked.len(), 9);
        prop_assert!(masked.starts_with("*****"));
        prop_assert!(value.expose().ends_with(&masked[5..]));
        let debug = format!("{:?} {:?}", value, stored);
        prop_assert!(!debug.contains(&value.expose()[..20]));
    }

    #[test]
    fn the_string_to_sign_has_three_lines_in_order(
        method in "(GET|POST|PUT|PATCH|DELETE)",
        path in "/[a-z0-9/?=&-]{0,40}",
        timestamp in "[0-9]{13}",
        access_key in "[A-Z0-9]{4,20}",
    ) {
        let text = signature::string_to_sign(&method, &path, &timestamp, &access_key);
        prop_assert_eq!(text.split('\n').collect::<Vec<_>>(), vec![format!("{method} {path}"), timestamp.clone(), access_key.clone()]);
        let signed = signature::sign("a-secret-of-enough-bytes", &method, &path, &timestamp, &access_key);
        let again = signature::sign("a-secret-of-enough-bytes", &method, &path, &timestamp, &access_key);
        prop_assert_eq!(&signed, &again);
        prop_assert_ne!(signed, signature::sign("another-secret-of-bytes", &method, &path, &timestamp, &access_key));
    }

    #[test]
    fn filters_select_what_a_naive_reference_selects(
        documents in prop::collection::vec(("[ab]{0,3}", 0i64..5), 0..12),
        field in prop::sample::select(vec!["name", "usage"]),
        operator in prop::sample::select(vec!["eq", "not", "lt", "lte", "gt", "gte", "contain", "in"]),
        text in "[ab]{0,2}",
        number in 0i64..5,
    ) {
        let schema = Schema::new(&[("name", FieldKind::Text), ("usage", FieldKind::Number)]);
        let target = if field == "name" { json!(text) } else { json!(number) };
        let value = match operator {
            "in" => json!([target.clone()]),
            "contain" => json!(text),
            _ => target.clone(),
        };
        let condition: Condition = serde_json::from_value(json!({ "k": field, "v": value, "o": operator })).unwrap();
        let now = chrono::Utc::now();
        let filter = Filter::compile(&[condition], &[], &schema, now).expect("every generated condition compiles");
        for (name, usage) in &documents {
            let document: Document = match json!({ "name": name, "usage": usage }) {
                Value::Object(fields) => fields,
                _ => unreachable!(),
            };
            let own = if field == "name" { json!(name) } else { json!(usage) };
            let expected = naive(operator, &own, &target, &text);
            prop_assert_eq!(filter.matches(&document), expected, "{} {} {} on {:?}", field, operator, target, document);
        }
    }
}

/// The operators as their documentation states them, for one text or number field.
fn naive(operator: &str, own: &Value, target: &Value, text: &str) -> bool {
    let empty = own.as_str().is_some_and(str::is_empty);
    let order = match (own, target) {
        (Value::Number(a), Value::Number(b)) => a.as_i64().cmp(&b.as_i64()),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => unreachable!("same kinds"),
    };
    match operator {
        "eq" | "in" => own == target,
        "not" => own != target,
        "lt" => !empty && order.is_lt(),
        "lte" => !empty && order.is_le(),
        "gt" => !empty && order.is_gt(),
        "gte" => !empty && order.is_ge(),
        "contain" => own.as_str().is_some_and(|s| s.to_lowercase().contains(&text.to_lowercase())),
        other => unreachable!("{other}"),
    }
}
