//! The expressions of the conditional writes: each is built here, once, from the attribute names
//! of [`super::item`], whether it is sent alone (`UpdateItem`) or inside a transaction.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, Update};

use super::item::*;
use crate::model::{KeyChange, SecretHash, Timestamp, ValueRef};
use crate::store::{ListedField, ListingFilter};

/// Mintable: enabled, registered, unexpired and not exhausted. The key secret is checked by the
/// token route only: a refresh proves possession of a token instead.
const MINTABLE: &str =
    "#state = :enabled AND attribute_exists(#registered) AND #expires > :now AND #remaining > :zero";
const SECRET_MATCHES: &str = "(#primary = :secret OR #secondary = :secret)";
/// Absent, or present but lapsed (DynamoDB's TTL deletes only eventually).
const ABSENT_OR_LAPSED: &str = "attribute_not_exists(#pk) OR #lapses <= :now";

/// A condition, an update (empty for a condition alone) and the names and values they use.
#[derive(Debug, Default)]
pub struct Expression {
    pub condition: String,
    pub update: String,
    pub names: HashMap<String, String>,
    pub values: Item,
}

impl Expression {
    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// Sent alone, as an `UpdateItem`.
    pub fn update_item(self, request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        request
            .condition_expression(self.condition)
            .update_expression(self.update)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
    }

    /// Sent inside a transaction, handing the old item back when its condition fails (the mint
    /// needs it; an admin change does not ask for it).
    pub fn transact_update(self, table: &str, pk: String) -> Update {
        Update::builder()
            .table_name(table)
            .key(PK, s(pk))
            .condition_expression(self.condition)
            .update_expression(self.update)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("complete update")
    }
}

/// The token route's mint write: consumes one unit if the key is mintable and holds the
/// presented secret.
pub(super) fn consume_for_token(secret: &SecretHash, now: Timestamp) -> Expression {
    Expression { condition: format!("{MINTABLE} AND {SECRET_MATCHES}"), ..consume_unit(now) }
        .name("#primary", PRIMARY_HASH)
        .name("#secondary", SECONDARY_HASH)
        .value(":secret", s(secret.as_str()))
}

/// The refresh's mint write: consumes one unit if the key is mintable and the value that bought
/// the token's family is still its slot's current one (an item written before generations holds
/// generation 0).
pub(super) fn consume_for_refresh(bought_with: ValueRef, now: Timestamp) -> Expression {
    let current = if bought_with.generation == 0 {
        "(attribute_not_exists(#generation) OR #generation = :generation)"
    } else {
        "#generation = :generation"
    };
    Expression { condition: format!("{MINTABLE} AND {current}"), ..consume_unit(now) }
        .name("#generation", generation_attribute(bought_with.slot))
        .value(":generation", n(bought_with.generation))
}

/// Consuming one unit of a mintable key: what both mint writes share.
fn consume_unit(now: Timestamp) -> Expression {
    Expression {
        condition: MINTABLE.to_owned(),
        update: "SET #remaining = #remaining - :one, #last_accessed = :now".to_owned(),
        ..Expression::default()
    }
    .name("#state", STATE)
    .name("#registered", REGISTERED_AT)
    .name("#expires", EXPIRES_AT)
    .name("#remaining", REMAINING)
    .name("#last_accessed", LAST_ACCESSED_AT)
    .value(":enabled", s(ENABLED))
    .value(":now", millis(now))
    .value(":zero", n(0))
    .value(":one", n(1))
}

/// Registration: the first sets `registered_at` and the expiry (see [`EXPIRY_BASE`]), later ones
/// change nothing.
pub(super) fn register(secret: &SecretHash, now: Timestamp) -> Expression {
    Expression {
        condition: format!("#state = :enabled AND {SECRET_MATCHES}"),
        update: "SET #registered = if_not_exists(#registered, :now), \
                 #base = if_not_exists(#base, :now), \
                 #expires = if_not_exists(#base, :now) + #offset"
            .to_owned(),
        ..Expression::default()
    }
    .name("#state", STATE)
    .name("#primary", PRIMARY_HASH)
    .name("#secondary", SECONDARY_HASH)
    .name("#registered", REGISTERED_AT)
    .name("#base", EXPIRY_BASE)
    .name("#expires", EXPIRES_AT)
    .name("#offset", EXPIRY_OFFSET)
    .value(":enabled", s(ENABLED))
    .value(":secret", s(secret.as_str()))
    .value(":now", millis(now))
}

/// An admin change to a key of `domain_id`: the fields the change sets, and who made it when.
pub(super) fn change(domain_id: &str, change: &KeyChange) -> Expression {
    let mut assignments = vec!["#modifier = :modifier", "#modified_at = :modified_at"];
    let mut expression = Expression { condition: "#domain = :domain".to_owned(), ..Expression::default() }
        .name("#domain", DOMAIN_ID)
        .name("#modifier", MODIFIER)
        .name("#modified_at", MODIFIED_AT)
        .value(":domain", s(domain_id))
        .value(":modifier", s(&change.modifier))
        .value(":modified_at", millis(change.modified_at));
    let mut set =
        |placeholder: &'static str, attribute: &str, value: AttributeValue, assignment: &'static str| {
            let taken = std::mem::take(&mut expression);
            expression = taken.name(placeholder, attribute).value(&placeholder.replacen('#', ":", 1), value);
            assignments.push(assignment);
        };
    if let Some(state) = change.state {
        set("#state", STATE, s(state_name(state)), "#state = :state");
    }
    if let Some(name) = &change.name {
        set("#name", NAME, s(name), "#name = :name");
    }
    if let Some(description) = &change.description {
        set("#description", DESCRIPTION, s(description), "#description = :description");
    }
    if let Some(primary) = &change.primary {
        set("#primary", PRIMARY_HASH, s(primary.hash.as_str()), "#primary = :primary");
        set("#primary_last4", PRIMARY_LAST4, s(&primary.last4), "#primary_last4 = :primary_last4");
        set(
            "#primary_generation",
            PRIMARY_GENERATION,
            n(1),
            "#primary_generation = if_not_exists(#primary_generation, :zero) + :primary_generation",
        );
    }
    if let Some(secondary) = &change.secondary {
        set("#secondary", SECONDARY_HASH, s(secondary.hash.as_str()), "#secondary = :secondary");
        set("#secondary_last4", SECONDARY_LAST4, s(&secondary.last4), "#secondary_last4 = :secondary_last4");
        set(
            "#secondary_generation",
            SECONDARY_GENERATION,
            n(1),
            "#secondary_generation = if_not_exists(#secondary_generation, :zero) + :secondary_generation",
        );
    }
    if change.primary.is_some() || change.secondary.is_some() {
        expression = std::mem::take(&mut expression).value(":zero", n(0));
    }
    // A replaced slot needs a next generation: one that stood still would keep the replaced
    // value's families alive (and one past u32 could not be read back).
    if change.primary.is_some() {
        expression.condition.push_str(
            " AND (attribute_not_exists(#primary_generation) OR #primary_generation < :last_primary_generation)",
        );
        expression = std::mem::take(&mut expression).value(":last_primary_generation", n(u32::MAX));
    }
    if change.secondary.is_some() {
        expression.condition.push_str(
            " AND (attribute_not_exists(#secondary_generation) OR #secondary_generation < :last_secondary_generation)",
        );
        expression = std::mem::take(&mut expression).value(":last_secondary_generation", n(u32::MAX));
    }
    expression.update = format!("SET {}", assignments.join(", "));
    expression
}

/// The condition of a key-scoped admin write that changes nothing else (delete).
pub(super) fn in_domain(domain_id: &str) -> Expression {
    Expression { condition: "#domain = :domain".to_owned(), ..Expression::default() }
        .name("#domain", DOMAIN_ID)
        .value(":domain", s(domain_id))
}

/// The condition of a marker, revocation or nonce put: none live at `now`.
pub(super) fn absent_or_lapsed(now: Timestamp) -> Expression {
    Expression { condition: ABSENT_OR_LAPSED.to_owned(), ..Expression::default() }
        .name("#pk", PK)
        .name("#lapses", LAPSES_AT)
        .value(":now", millis(now))
}

/// The filter's equalities as a `FilterExpression` (`None`: it selects everything).
pub(super) fn listing_filter(filter: &ListingFilter) -> Option<Expression> {
    let mut expression = Expression::default();
    let mut conditions = Vec::new();
    for (n, (field, values)) in filter.equal.iter().enumerate() {
        let attribute = match field {
            ListedField::ApiKeyId => API_KEY_ID,
            ListedField::UserId => USER_ID,
            ListedField::Name => NAME,
            ListedField::State => STATE,
        };
        let placeholders: Vec<String> = (0..values.len()).map(|v| format!(":f{n}v{v}")).collect();
        expression = expression.name(&format!("#f{n}"), attribute);
        for (placeholder, value) in placeholders.iter().zip(values) {
            expression = expression.value(placeholder, s(value));
        }
        conditions.push(if placeholders.is_empty() {
            // `IN ()` is not an expression; equal to none of no values selects nothing.
            format!("attribute_not_exists(#f{n}) AND attribute_exists(#f{n})")
        } else {
            format!("#f{n} IN ({})", placeholders.join(", "))
        });
    }
    if conditions.is_empty() {
        return None;
    }
    expression.condition = conditions.join(" AND ");
    Some(expression)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{KeySlot, KeyState, NewSecret};

    /// DynamoDB refuses an expression whose names or values are not all used, or that uses one it
    /// was not given.
    fn assert_placeholders_match(what: &str, expression: &Expression) {
        let text = format!("{} {}", expression.condition, expression.update);
        let used = |sigil: char| -> BTreeSet<String> {
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == sigil))
                .filter(|word| word.starts_with(sigil))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(used('#'), expression.names.keys().cloned().collect(), "{what}: names");
        assert_eq!(used(':'), expression.values.keys().cloned().collect(), "{what}: values");
    }

    fn now() -> Timestamp {
        Timestamp::from_timestamp_millis(1_764_000_000_000).unwrap()
    }

    #[test]
    fn every_expression_uses_exactly_the_names_and_values_it_carries() {
        let secret = SecretHash::from_stored("ab".repeat(32));
        let full_change = KeyChange {
            state: Some(KeyState::Disabled),
            name: Some("renamed".into()),
            description: Some("text".into()),
            primary: Some(NewSecret { hash: secret.clone(), last4: "abcd".into() }),
            secondary: Some(NewSecret { hash: secret.clone(), last4: "efgh".into() }),
            ..KeyChange::by("AK", now())
        };
        let cases = [
            ("token mint", consume_for_token(&secret, now())),
            (
                "refresh mint, first value",
                consume_for_refresh(ValueRef { slot: KeySlot::Primary, generation: 0 }, now()),
            ),
            (
                "refresh mint, rotated value",
                consume_for_refresh(ValueRef { slot: KeySlot::Secondary, generation: 2 }, now()),
            ),
            (
                "rotation",
                change(
                    "domain-a",
                    &KeyChange { primary: full_change.primary.clone(), ..KeyChange::by("AK", now()) },
                ),
            ),
            ("register", register(&secret, now())),
            ("empty change", change("domain-a", &KeyChange::by("AK", now()))),
            ("full change", change("domain-a", &full_change)),
            ("delete", in_domain("domain-a")),
            ("lapsing put", absent_or_lapsed(now())),
        ];
        for (what, expression) in &cases {
            assert_placeholders_match(what, expression);
        }
    }

    #[test]
    fn the_mint_writes_name_the_stored_attributes_and_check_what_each_route_presents() {
        let secret = SecretHash::from_stored("cd".repeat(32));
        let token = consume_for_token(&secret, now());
        assert_eq!(token.names["#remaining"], REMAINING);
        assert_eq!(token.names["#primary"], PRIMARY_HASH);
        assert_eq!(token.values[":secret"], s(secret.as_str()));
        assert_eq!(token.values[":now"], n(1_764_000_000_000_i64));
        assert_eq!(token.condition, format!("{MINTABLE} AND {SECRET_MATCHES}"));

        let refresh = consume_for_refresh(ValueRef { slot: KeySlot::Secondary, generation: 2 }, now());
        assert_eq!(refresh.condition, format!("{MINTABLE} AND #generation = :generation"));
        assert_eq!(
            (refresh.names["#generation"].as_str(), &refresh.values[":generation"]),
            (SECONDARY_GENERATION, &n(2))
        );
        assert!(!refresh.values.contains_key(":secret"), "a refresh presents no key value");
        assert_eq!(refresh.update, token.update, "both consume the same way");

        let first = consume_for_refresh(ValueRef { slot: KeySlot::Primary, generation: 0 }, now());
        assert!(
            first.condition.contains("attribute_not_exists(#generation) OR"),
            "items from before generations"
        );
    }

    #[test]
    fn a_change_sets_only_what_it_carries() {
        let change =
            change("domain-a", &KeyChange { state: Some(KeyState::Enabled), ..KeyChange::by("AK", now()) });
        assert_eq!(change.update, "SET #modifier = :modifier, #modified_at = :modified_at, #state = :state");
        assert_eq!(change.values[":state"], s("ENABLED"));
        assert_eq!(change.values[":domain"], s("domain-a"));
    }

    #[test]
    fn a_listing_filter_is_one_in_per_field() {
        use crate::store::{ListedField, ListingFilter};
        let filter = ListingFilter {
            equal: vec![
                (ListedField::UserId, vec!["ann".into(), "bob".into()]),
                (ListedField::State, vec!["ENABLED".into()]),
            ],
        };
        let expression = listing_filter(&filter).unwrap();
        assert_eq!(expression.condition, "#f0 IN (:f0v0, :f0v1) AND #f1 IN (:f1v0)");
        assert_eq!((expression.names["#f0"].as_str(), expression.names["#f1"].as_str()), (USER_ID, STATE));
        assert_eq!(expression.values[":f0v1"], s("bob"));
        assert!(listing_filter(&ListingFilter::default()).is_none());
    }
}
