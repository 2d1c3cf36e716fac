//! The conditions of `filter` and `filter_or`, compiled once per query into predicates that are
//! then tested against every document.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, TimeDelta};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::Value;

use super::{Document, FieldKind, Schema, compare_values, invalid, is_empty, known};
use crate::error::Error;
use crate::model::Timestamp;

/// Keeps a hostile pattern from costing more than a bounded automaton...
const REGEX_SIZE_LIMIT: usize = 1 << 16;
/// ...and a query (all its conditions together) from compiling many of them.
const MAX_PATTERNS: usize = 32;

/// One `{k, v, o}` condition (`key`, `value`, `operator` are accepted too).
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(alias = "key")]
    k: String,
    #[serde(alias = "value", default)]
    v: Value,
    #[serde(alias = "operator", default = "equals")]
    o: String,
}

fn equals() -> String {
    "eq".into()
}

impl Condition {
    /// `field = value`.
    pub fn equal(field: &str, value: String) -> Self {
        Self { k: field.into(), v: Value::String(value), o: equals() }
    }

    pub fn field(&self) -> &str {
        &self.k
    }

    /// What testing one document costs: one comparison for each value of a list (`in`,
    /// `contain_in`, ...), else one.
    pub fn terms(&self) -> usize {
        match &self.v {
            Value::Array(values) => values.len().max(1),
            _ => 1,
        }
    }

    /// The texts the field must equal one of, when this is an `eq` or `in` of texts only.
    pub fn equality(&self) -> Option<(&str, Vec<&str>)> {
        let values = match (self.o.as_str(), &self.v) {
            ("eq", Value::String(value)) => vec![value.as_str()],
            ("in", Value::Array(values)) => values.iter().map(Value::as_str).collect::<Option<_>>()?,
            _ => return None,
        };
        Some((&self.k, values))
    }
}

/// A compiled `filter` + `filter_or`: all of the first, and any of the second if it has any.
pub struct Filter {
    all: Vec<Predicate>,
    any: Vec<Predicate>,
}

impl Filter {
    pub fn compile(
        all: &[Condition],
        any: &[Condition],
        schema: &Schema,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let compile = |conditions: &[Condition]| {
            conditions.iter().map(|c| Predicate::compile(c, schema, now)).collect::<Result<Vec<_>, _>>()
        };
        let filter = Self { all: compile(all)?, any: compile(any)? };
        let patterns: usize = filter
            .all
            .iter()
            .chain(&filter.any)
            .map(|predicate| match &predicate.operation {
                Operation::Regex(patterns) => patterns.len(),
                _ => 0,
            })
            .sum();
        if patterns > MAX_PATTERNS {
            return Err(invalid(format!("a query takes at most {MAX_PATTERNS} regular expressions")));
        }
        Ok(filter)
    }

    pub fn matches(&self, doc: &Document) -> bool {
        self.all.iter().all(|p| p.matches(doc))
            && (self.any.is_empty() || self.any.iter().any(|p| p.matches(doc)))
    }
}

enum Operation {
    Equal(Value),
    NotEqual(Value),
    Compare(Ordering, bool, Value),
    Exists(bool),
    Contain(String),
    NotContain(String),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    ContainIn(Vec<String>),
    NotContainIn(Vec<String>),
    Regex(Vec<Regex>),
    /// The field's time against an instant: the ordering wanted, and whether equal passes.
    Time(Ordering, bool, Timestamp),
}

/// One compiled condition: the field it reads and what the field's value must satisfy.
struct Predicate {
    field: String,
    operation: Operation,
}

fn text_of(v: &Value, what: &str) -> Result<String, Error> {
    v.as_str().map(str::to_owned).ok_or_else(|| invalid(format!("{what} takes a string value")))
}

fn list_of(v: &Value, what: &str) -> Result<Vec<Value>, Error> {
    v.as_array().cloned().ok_or_else(|| invalid(format!("{what} takes a list value")))
}

fn texts_of(v: &Value, what: &str) -> Result<Vec<String>, Error> {
    list_of(v, what)?.iter().map(|item| text_of(item, what)).collect()
}

fn regex(pattern: &str) -> Result<Regex, Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| invalid(format!("not a valid regular expression: {pattern:?}")))
}

/// An RFC 3339 time, or a date (midnight UTC).
fn parse_time(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).ok().or_else(|| {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc())
    })
}

/// `now`, `now-1d`, `now+2h` (units s, m, h, d, w).
fn parse_time_difference(text: &str, now: Timestamp) -> Option<Timestamp> {
    let rest = text.trim().strip_prefix("now")?;
    // Byte-wise splitting below needs ASCII; no valid difference has anything else.
    if !rest.is_ascii() {
        return None;
    }
    if rest.is_empty() {
        return Some(now);
    }
    let (sign, amount) = match rest.split_at(1) {
        ("+", amount) => (1, amount),
        ("-", amount) => (-1, amount),
        _ => return None,
    };
    let (digits, unit) = amount.split_at(amount.len().checked_sub(1)?);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok().filter(|n| *n <= 100_000)?;
    let delta = match unit {
        "s" => TimeDelta::seconds(n),
        "m" => TimeDelta::minutes(n),
        "h" => TimeDelta::hours(n),
        "d" => TimeDelta::days(n),
        "w" => TimeDelta::weeks(n),
        _ => return None,
    };
    now.checked_add_signed(delta * sign)
}

impl Predicate {
    fn compile(condition: &Condition, schema: &Schema, now: Timestamp) -> Result<Self, Error> {
        let kind = known(schema, &condition.k)?;
        let o = condition.o.as_str();
        let v = &condition.v;
        let comparable = |v: &Value| -> Result<Value, Error> {
            match (kind, v) {
                (FieldKind::Number, Value::Number(_))
                | (FieldKind::Text | FieldKind::Time, Value::String(_)) => Ok(v.clone()),
                _ => Err(invalid(format!("{o} on {} takes a {kind:?} value", condition.k).to_lowercase())),
            }
        };
        let time_field = || {
            if kind == FieldKind::Time {
                Ok(())
            } else {
                Err(invalid(format!("{o} needs a time field, not {}", condition.k)))
            }
        };
        let ordering = |suffix: &str| match suffix {
            "lt" => Some((Ordering::Less, false)),
            "lte" => Some((Ordering::Less, true)),
            "gt" => Some((Ordering::Greater, false)),
            "gte" => Some((Ordering::Greater, true)),
            _ => None,
        };
        let operation = match o {
            "eq" => Operation::Equal(v.clone()),
            "not" => Operation::NotEqual(v.clone()),
            "lt" | "lte" | "gt" | "gte" => {
                if kind == FieldKind::List {
                    return Err(invalid(format!("{o} cannot compare the list {}", condition.k)));
                }
                let (order, or_equal) = ordering(o).expect("listed");
                let value = comparable(v)?;
                // A time field against a time compares instants, as `datetime_*` does; against any
                // other text (say `"2026"`), text.
                match (kind, value.as_str().and_then(parse_time)) {
                    (FieldKind::Time, Some(at)) => Operation::Time(order, or_equal, at),
                    _ => Operation::Compare(order, or_equal, value),
                }
            }
            "exists" => Operation::Exists(v.as_bool().ok_or_else(|| invalid("exists takes true or false"))?),
            "contain" => Operation::Contain(text_of(v, o)?.to_lowercase()),
            "not_contain" => Operation::NotContain(text_of(v, o)?.to_lowercase()),
            "in" => Operation::In(list_of(v, o)?),
            "not_in" => Operation::NotIn(list_of(v, o)?),
            "contain_in" => Operation::ContainIn(texts_of(v, o)?.iter().map(|s| s.to_lowercase()).collect()),
            "not_contain_in" => {
                Operation::NotContainIn(texts_of(v, o)?.iter().map(|s| s.to_lowercase()).collect())
            }
            "regex" => Operation::Regex(vec![regex(&text_of(v, o)?)?]),
            "regex_in" => {
                let patterns = texts_of(v, o)?;
                if patterns.len() > MAX_PATTERNS {
                    return Err(invalid(format!("regex_in takes at most {MAX_PATTERNS} patterns")));
                }
                Operation::Regex(patterns.iter().map(|p| regex(p)).collect::<Result<_, _>>()?)
            }
            datetime if datetime.starts_with("datetime_") => {
                time_field()?;
                let (order, or_equal) = ordering(&datetime["datetime_".len()..])
                    .ok_or_else(|| invalid(format!("unknown operator {o}")))?;
                let at = parse_time(&text_of(v, o)?)
                    .ok_or_else(|| invalid(format!("{o} takes an RFC 3339 time")))?;
                Operation::Time(order, or_equal, at)
            }
            timediff if timediff.starts_with("timediff_") => {
                time_field()?;
                let (order, or_equal) = ordering(&timediff["timediff_".len()..])
                    .ok_or_else(|| invalid(format!("unknown operator {o}")))?;
                let at = parse_time_difference(&text_of(v, o)?, now)
                    .ok_or_else(|| invalid(format!("{o} takes now, now-<n><s|m|h|d|w> or now+<n><unit>")))?;
                Operation::Time(order, or_equal, at)
            }
            other => return Err(invalid(format!("unknown operator {other}"))),
        };
        Ok(Self { field: condition.k.clone(), operation })
    }

    fn matches(&self, doc: &Document) -> bool {
        let value = doc.get(&self.field);
        // A list field matches when one of its elements does.
        let elements: Vec<&Value> = match value {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(v) => vec![v],
            None => vec![],
        };
        let contains = |needle: &str| {
            elements.iter().any(|e| e.as_str().is_some_and(|s| s.to_lowercase().contains(needle)))
        };
        let equal = |target: &Value| {
            value == Some(target)
                || elements
                    .iter()
                    .any(|e| compare_values(Some(e), Some(target)).is_eq() && same_type(e, target))
        };
        match &self.operation {
            Operation::Equal(target) => equal(target),
            Operation::NotEqual(target) => !equal(target),
            Operation::Compare(order, or_equal, target) => value.is_some_and(|v| {
                same_type(v, target) && !is_empty(v) && {
                    let found = compare_values(Some(v), Some(target));
                    found == *order || (*or_equal && found.is_eq())
                }
            }),
            Operation::Exists(wanted) => value.is_some_and(|v| !is_empty(v)) == *wanted,
            Operation::Contain(needle) => contains(needle),
            Operation::NotContain(needle) => !contains(needle),
            Operation::In(targets) => targets.iter().any(equal),
            Operation::NotIn(targets) => !targets.iter().any(equal),
            Operation::ContainIn(needles) => needles.iter().any(|n| contains(n)),
            Operation::NotContainIn(needles) => !needles.iter().any(|n| contains(n)),
            Operation::Regex(patterns) => {
                elements.iter().any(|e| e.as_str().is_some_and(|s| patterns.iter().any(|p| p.is_match(s))))
            }
            Operation::Time(order, or_equal, at) => {
                value.and_then(Value::as_str).and_then(parse_time).is_some_and(|time| {
                    let found = time.cmp(at);
                    found == *order || (*or_equal && found.is_eq())
                })
            }
        }
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Schema {
        Schema::new(&[
            ("name", FieldKind::Text),
            ("usage", FieldKind::Number),
            ("created_at", FieldKind::Time),
            ("scope", FieldKind::List),
        ])
    }

    fn now() -> Timestamp {
        Timestamp::from_timestamp_millis(1_764_000_000_000).unwrap() // 2025-11-24T16:00:00Z
    }

    fn document(name: &str, usage: i64, created_at: &str, scope: &[&str]) -> Document {
        match json!({ "name": name, "usage": usage, "created_at": created_at, "scope": scope }) {
            Value::Object(fields) => fields,
            _ => unreachable!(),
        }
    }

    /// The names of the documents one condition selects.
    fn selected(condition: Value) -> Result<Vec<String>, Error> {
        let condition: Condition = serde_json::from_value(condition).expect("a condition");
        let filter = Filter::compile(&[condition], &[], &schema(), now())?;
        let documents = [
            document("alpha", 5, "2025-11-24T15:00:00Z", &["orders:read"]),
            document("Beta", 50, "2025-11-01T00:00:00Z", &["orders:read", "orders:write"]),
            document("gamma", 500, "", &[]),
        ];
        Ok(documents
            .iter()
            .filter(|d| filter.matches(d))
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect())
    }

    #[test]
    fn each_operator_selects_what_it_says() {
        let cases = [
            (json!({ "k": "name", "v": "alpha" }), vec!["alpha"]),
            (json!({ "k": "name", "v": "alpha", "o": "not" }), vec!["Beta", "gamma"]),
            (json!({ "k": "usage", "v": 50, "o": "lt" }), vec!["alpha"]),
            (json!({ "k": "usage", "v": 50, "o": "lte" }), vec!["alpha", "Beta"]),
            (json!({ "k": "usage", "v": 50, "o": "gt" }), vec!["gamma"]),
            (json!({ "k": "usage", "v": 50, "o": "gte" }), vec!["Beta", "gamma"]),
            (json!({ "k": "created_at", "v": true, "o": "exists" }), vec!["alpha", "Beta"]),
            (json!({ "k": "created_at", "v": false, "o": "exists" }), vec!["gamma"]),
            (json!({ "k": "name", "v": "ET", "o": "contain" }), vec!["Beta"]),
            (json!({ "k": "name", "v": "ET", "o": "not_contain" }), vec!["alpha", "gamma"]),
            (json!({ "k": "name", "v": ["alpha", "gamma"], "o": "in" }), vec!["alpha", "gamma"]),
            (json!({ "k": "name", "v": ["alpha", "gamma"], "o": "not_in" }), vec!["Beta"]),
            (json!({ "k": "name", "v": ["lph", "amm"], "o": "contain_in" }), vec!["alpha", "gamma"]),
            (json!({ "k": "name", "v": ["lph", "amm"], "o": "not_contain_in" }), vec!["Beta"]),
            (json!({ "k": "name", "v": "^[ab]", "o": "regex" }), vec!["alpha"]),
            (json!({ "k": "name", "v": ["^B", "a$"], "o": "regex_in" }), vec!["alpha", "Beta", "gamma"]),
            (json!({ "k": "scope", "v": "orders:write" }), vec!["Beta"]),
            (json!({ "k": "created_at", "v": "2025-11-10", "o": "datetime_gt" }), vec!["alpha"]),
            // A time field against a time compares instants (text would put …:00.500Z first)…
            (json!({ "k": "created_at", "v": "2025-11-24T15:00:00.500Z", "o": "lt" }), vec!["alpha", "Beta"]),
            (json!({ "k": "created_at", "v": "2025-11-24T16:00:00+01:00", "o": "gte" }), vec!["alpha"]),
            // …and against other text, text.
            (json!({ "k": "created_at", "v": "2025-11", "o": "gt" }), vec!["alpha", "Beta"]),
            (json!({ "k": "created_at", "v": "2025-11-01T00:00:00Z", "o": "datetime_lte" }), vec!["Beta"]),
            (json!({ "k": "created_at", "v": "now-2h", "o": "timediff_gte" }), vec!["alpha"]),
            (json!({ "k": "created_at", "v": "now-2h", "o": "timediff_lt" }), vec!["Beta"]),
        ];
        for (condition, expected) in cases {
            assert_eq!(selected(condition.clone()).unwrap(), expected, "{condition}");
        }
    }

    #[test]
    fn filter_or_needs_any_and_filter_needs_all() {
        let conditions = |value: Value| -> Vec<Condition> { serde_json::from_value(value).unwrap() };
        let all = conditions(json!([{ "k": "usage", "v": 5, "o": "gt" }]));
        let any = conditions(json!([{ "k": "name", "v": "Beta" }, { "k": "name", "v": "alpha" }]));
        let filter = Filter::compile(&all, &any, &schema(), now()).unwrap();
        assert!(filter.matches(&document("Beta", 50, "", &[])));
        assert!(!filter.matches(&document("alpha", 5, "", &[])), "fails filter");
        assert!(!filter.matches(&document("gamma", 500, "", &[])), "fails filter_or");
    }

    #[test]
    fn conditions_that_cannot_be_evaluated_are_refused_by_name() {
        let cases = [
            (json!({ "k": "colour", "v": "red" }), "unknown field colour"),
            (json!({ "k": "name", "v": "x", "o": "like" }), "unknown operator like"),
            (json!({ "k": "usage", "v": "50", "o": "lt" }), "lt on usage takes a number value"),
            (json!({ "k": "scope", "v": "a", "o": "gt" }), "gt cannot compare the list scope"),
            (json!({ "k": "name", "v": 1, "o": "contain" }), "contain takes a string value"),
            (json!({ "k": "name", "v": "x", "o": "in" }), "in takes a list value"),
            (json!({ "k": "name", "v": "(", "o": "regex" }), "not a valid regular expression"),
            (json!({ "k": "name", "v": "now", "o": "timediff_lt" }), "timediff_lt needs a time field"),
            (json!({ "k": "created_at", "v": "now-1y", "o": "timediff_lt" }), "timediff_lt takes now"),
            (
                json!({ "k": "created_at", "v": "yesterday", "o": "datetime_lt" }),
                "datetime_lt takes an RFC 3339",
            ),
            (json!({ "k": "created_at", "v": "2025-01-01", "o": "datetime_near" }), "unknown operator"),
            (json!({ "k": "created_at", "v": true, "o": "exists" }), ""),
        ];
        for (condition, expected) in cases {
            match selected(condition.clone()) {
                Err(Error::InvalidArgument(message)) => {
                    assert!(message.contains(expected), "{condition}: {message}")
                }
                Ok(_) if expected.is_empty() => {}
                other => panic!("{condition}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_query_compiles_at_most_thirty_two_patterns() {
        let patterns: Vec<String> = (0..33).map(|i| format!("^{i}$")).collect();
        assert!(selected(json!({ "k": "name", "v": patterns, "o": "regex_in" })).is_err());
        let condition: Condition =
            serde_json::from_value(json!({ "k": "name", "v": "^a", "o": "regex" })).unwrap();
        let many = vec![condition; 33];
        assert!(Filter::compile(&many, &[], &schema(), now()).is_err());
        assert!(Filter::compile(&many[..32], &[], &schema(), now()).is_ok());
    }

    #[test]
    fn relative_times_count_whole_units_from_now() {
        assert_eq!(parse_time_difference("now", now()), Some(now()));
        assert_eq!(parse_time_difference("now+2h", now()), Some(now() + TimeDelta::hours(2)));
        assert_eq!(parse_time_difference(" now-3w ", now()), Some(now() - TimeDelta::weeks(3)));
        for bad in ["now-", "now-d", "now--1d", "now-1.5d", "now-1y", "now-100001d", "now-1日", "then"] {
            assert_eq!(parse_time_difference(bad, now()), None, "{bad}");
        }
    }
}
