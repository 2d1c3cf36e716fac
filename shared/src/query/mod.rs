//! SpaceONE's `Query` (filter, filter_or, keyword, sort, page, only, minimal, count_only) over
//! documents: the `APIKeyInfo` of each key. It runs in the service on the keys the store lists,
//! so it behaves the same on every store. Anything it does not understand is an error, never
//! silently ignored.

pub mod stat;

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, TimeDelta};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::model::Timestamp;

pub type Document = Map<String, Value>;

/// The fields a query may name, and how they compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    Time,
    List,
}

/// The fields of the documents at hand and their kinds.
#[derive(Clone, Debug, Default)]
pub struct Schema(Vec<(String, FieldKind)>);

impl Schema {
    pub fn new(fields: &[(&str, FieldKind)]) -> Self {
        Self(fields.iter().map(|(name, kind)| ((*name).to_owned(), *kind)).collect())
    }

    pub fn kind(&self, field: &str) -> Option<FieldKind> {
        self.0.iter().find(|(name, _)| name == field).map(|(_, kind)| *kind)
    }

    fn push(&mut self, field: &str, kind: FieldKind) {
        self.0.retain(|(name, _)| name != field);
        self.0.push((field.to_owned(), kind));
    }
}

pub const MAX_PAGE_LIMIT: u64 = 1000;
/// Keeps a hostile pattern from costing more than a bounded automaton...
const REGEX_SIZE_LIMIT: usize = 1 << 16;
/// ...and a query (all its conditions together) from compiling many of them.
const MAX_PATTERNS: usize = 32;

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// One `{k, v, o}` condition (`key`, `value`, `operator` are accepted too).
#[derive(Clone, Debug, Deserialize)]
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    key: String,
    #[serde(default)]
    desc: bool,
}

/// `{key, desc}`, `{keys: [{key, desc}, ...]}`, or a list of `{key, desc}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Sort {
    One(SortKey),
    Many { keys: Vec<SortKey> },
    List(Vec<SortKey>),
}

impl Sort {
    fn keys(&self) -> Vec<SortKey> {
        match self {
            Sort::One(key) => vec![key.clone()],
            Sort::Many { keys } | Sort::List(keys) => keys.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    start: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

impl Page {
    /// The slice of `total` items the page covers, after checking its bounds.
    pub fn range(&self, total: usize) -> Result<std::ops::Range<usize>, Error> {
        let start = self.start.unwrap_or(1);
        if start == 0 {
            return Err(invalid("page.start counts from 1"));
        }
        let limit = self.limit.unwrap_or(MAX_PAGE_LIMIT);
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(invalid(format!("page.limit must be between 1 and {MAX_PAGE_LIMIT}")));
        }
        let from = usize::try_from(start - 1).unwrap_or(usize::MAX).min(total);
        let to = from.saturating_add(limit as usize).min(total);
        Ok(from..to)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[serde(default)]
    filter: Vec<Condition>,
    #[serde(default)]
    filter_or: Vec<Condition>,
    #[serde(default)]
    sort: Option<Sort>,
    #[serde(default)]
    page: Option<Page>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default)]
    minimal: bool,
    #[serde(default)]
    count_only: bool,
    #[serde(default)]
    keyword: Option<String>,
}

/// What a query answers: the page of documents and how many matched in all.
#[derive(Debug, PartialEq)]
pub struct QueryResult {
    pub results: Vec<Document>,
    pub total_count: usize,
}

/// The fields a minimal answer keeps, and those `keyword` looks in.
pub struct Projection<'a> {
    pub minimal: &'a [&'a str],
    pub keyword: &'a [&'a str],
}

impl Query {
    /// Adds `k = v` conditions (the top-level fields of `APIKeyQuery`).
    pub fn and_equal(&mut self, field: &str, value: Option<String>) {
        if let Some(value) = value {
            self.filter.push(Condition { k: field.into(), v: Value::String(value), o: equals() });
        }
    }

    pub fn run(
        &self,
        documents: Vec<Document>,
        schema: &Schema,
        projection: &Projection<'_>,
        now: Timestamp,
    ) -> Result<QueryResult, Error> {
        let filter = Filter::compile(&self.filter, &self.filter_or, schema, now)?;
        let sort = self.sort.as_ref().map(|sort| check_sort(schema, sort)).transpose()?.unwrap_or_default();
        for field in &self.only {
            if field != "api_key" {
                known(schema, field)?;
            }
        }
        let keyword = self.keyword.as_deref().map(str::to_lowercase);
        let mut matching: Vec<Document> = documents
            .into_iter()
            .filter(|doc| filter.matches(doc))
            .filter(|doc| keyword.as_deref().is_none_or(|word| has_keyword(doc, projection.keyword, word)))
            .collect();
        sort_documents(&mut matching, &sort);
        let total_count = matching.len();
        let range = self.page.unwrap_or_default().range(total_count)?;
        if self.count_only {
            return Ok(QueryResult { results: Vec::new(), total_count });
        }
        let fields: Option<Vec<&str>> = if !self.only.is_empty() {
            Some(self.only.iter().map(String::as_str).collect())
        } else if self.minimal {
            Some(projection.minimal.to_vec())
        } else {
            None
        };
        let results = matching
            .drain(range)
            .map(|doc| match &fields {
                Some(fields) => {
                    fields.iter().filter_map(|f| Some(((*f).to_owned(), doc.get(*f)?.clone()))).collect()
                }
                None => doc,
            })
            .collect();
        Ok(QueryResult { results, total_count })
    }
}

fn known(schema: &Schema, field: &str) -> Result<FieldKind, Error> {
    schema.kind(field).ok_or_else(|| invalid(format!("unknown field {field}")))
}

fn has_keyword(doc: &Document, fields: &[&str], word: &str) -> bool {
    fields
        .iter()
        .any(|f| doc.get(*f).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(word)))
}

/// Orders JSON values: absent and empty first, then numbers, then text.
pub(crate) fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::String(s)) if s.is_empty() => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or_default().total_cmp(&y.as_f64().unwrap_or_default())
        }
        (Some(Value::String(x)), Some(Value::String(y))) if !x.is_empty() && !y.is_empty() => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)).then_with(|| {
            let text = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_default();
            text(a).cmp(&text(b))
        }),
    }
}

pub(crate) fn sort_documents(documents: &mut [Document], keys: &[SortKey]) {
    documents.sort_by(|a, b| {
        keys.iter()
            .map(|key| {
                let order = compare_values(a.get(&key.key), b.get(&key.key));
                if key.desc { order.reverse() } else { order }
            })
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

pub(crate) fn check_sort(schema: &Schema, sort: &Sort) -> Result<Vec<SortKey>, Error> {
    let keys = sort.keys();
    for key in &keys {
        known(schema, &key.key)?;
    }
    Ok(keys)
}

/// A compiled `filter` + `filter_or`: all of the first, and any of the second if it has any.
pub struct Filter {
    all: Vec<Test>,
    any: Vec<Test>,
}

impl Filter {
    pub fn compile(
        all: &[Condition],
        any: &[Condition],
        schema: &Schema,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let compile = |conditions: &[Condition]| {
            conditions.iter().map(|c| Test::compile(c, schema, now)).collect::<Result<Vec<_>, _>>()
        };
        let filter = Self { all: compile(all)?, any: compile(any)? };
        let patterns: usize = filter
            .all
            .iter()
            .chain(&filter.any)
            .map(|test| match &test.operation {
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
        self.all.iter().all(|t| t.matches(doc))
            && (self.any.is_empty() || self.any.iter().any(|t| t.matches(doc)))
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

struct Test {
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

impl Test {
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
                Operation::Compare(order, or_equal, comparable(v)?)
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

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}
