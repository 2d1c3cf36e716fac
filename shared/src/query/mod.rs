//! SpaceONE's `Query` (filter, filter_or, keyword, sort, page, only, minimal, count_only) over
//! documents: the `APIKeyInfo` of each key. The service runs it on the keys the store lists, so
//! it behaves the same on every store. Anything it does not understand is an error, never
//! silently ignored.
//!
//! [`filter`] compiles conditions into predicates; [`stat`] is `StatisticsQuery`.

pub mod filter;
pub mod stat;

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use self::filter::{Condition, Filter};
use crate::error::Error;
use crate::limits::QUERY_MAX_PAGE_LIMIT;
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

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    key: String,
    #[serde(default)]
    desc: bool,
}

/// `{key, desc}`, `{keys: [{key, desc}, ...]}`, or a list of `{key, desc}`.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        let limit = self.limit.unwrap_or(QUERY_MAX_PAGE_LIMIT);
        if limit == 0 || limit > QUERY_MAX_PAGE_LIMIT {
            return Err(invalid(format!("page.limit must be between 1 and {QUERY_MAX_PAGE_LIMIT}")));
        }
        let from = usize::try_from(start - 1).unwrap_or(usize::MAX).min(total);
        let to = from.saturating_add(limit as usize).min(total);
        Ok(from..to)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// The fields a minimal answer keeps, those `keyword` looks in, and those `only` may name beyond
/// the schema (shown, but never tested by a condition or a sort).
pub struct Projection<'a> {
    pub minimal: &'a [&'a str],
    pub keyword: &'a [&'a str],
    pub shown_only: &'a [&'a str],
}

impl Query {
    /// Adds `k = v` conditions (the top-level fields of `APIKeyQuery`).
    pub fn and_equal(&mut self, field: &str, value: Option<String>) {
        if let Some(value) = value {
            self.filter.push(Condition::equal(field, value));
        }
    }

    pub fn run(
        &self,
        documents: Vec<Document>,
        schema: &Schema,
        projection: &Projection<'_>,
        now: Timestamp,
    ) -> Result<QueryResult, Error> {
        let selected = self.select(documents, schema, projection, now)?;
        Ok(self.present(selected, projection))
    }

    /// The documents the query selects, sorted, and of those the page it asks for, whole (`only`
    /// and `minimal` are [`Self::present`]'s). Checks the whole query first, so a query it
    /// refuses is refused whatever the documents.
    pub fn select(
        &self,
        documents: Vec<Document>,
        schema: &Schema,
        projection: &Projection<'_>,
        now: Timestamp,
    ) -> Result<QueryResult, Error> {
        let filter = Filter::compile(&self.filter, &self.filter_or, schema, now)?;
        let sort = self.sort.as_ref().map(|sort| check_sort(schema, sort)).transpose()?.unwrap_or_default();
        for field in &self.only {
            if !projection.shown_only.contains(&field.as_str()) {
                known(schema, field)?;
            }
        }
        self.page.unwrap_or_default().range(0)?;
        let keyword = self.keyword.as_deref().map(str::to_lowercase);
        let mut matching: Vec<Document> = documents
            .into_iter()
            .filter(|doc| filter.matches(doc))
            .filter(|doc| keyword.as_deref().is_none_or(|word| has_keyword(doc, projection.keyword, word)))
            .collect();
        sort_documents(&mut matching, &sort);
        let total_count = matching.len();
        let results =
            if self.count_only { Vec::new() } else { matching.drain(self.page_range(total_count)).collect() };
        Ok(QueryResult { results, total_count })
    }

    /// The selected page as the query shows it: only the fields `only` or `minimal` name, or
    /// nothing with `count_only`.
    pub fn present(&self, selected: QueryResult, projection: &Projection<'_>) -> QueryResult {
        let fields: Option<Vec<&str>> = if !self.only.is_empty() {
            Some(self.only.iter().map(String::as_str).collect())
        } else if self.minimal {
            Some(projection.minimal.to_vec())
        } else {
            None
        };
        let results = if self.count_only { Vec::new() } else { selected.results };
        let results = results
            .into_iter()
            .map(|doc| match &fields {
                Some(fields) => {
                    fields.iter().filter_map(|f| Some(((*f).to_owned(), doc.get(*f)?.clone()))).collect()
                }
                None => doc,
            })
            .collect();
        QueryResult { results, total_count: selected.total_count }
    }

    /// The positions of the page among `total` selected documents (the page was checked).
    pub fn page_range(&self, total: usize) -> std::ops::Range<usize> {
        self.page.unwrap_or_default().range(total).unwrap_or(0..0)
    }

    pub fn count_only(&self) -> bool {
        self.count_only
    }

    /// Whether the query selects every document in the order given: no condition, no keyword,
    /// no sort. Then a page is a plain slice.
    pub fn selects_all_in_order(&self) -> bool {
        self.filter.is_empty() && self.filter_or.is_empty() && self.keyword.is_none() && self.sort.is_none()
    }

    /// Whether a condition or the sort names one of `fields`.
    pub fn tests_any(&self, fields: &[&str]) -> bool {
        let sorted = self.sort.as_ref().map(Sort::keys).unwrap_or_default();
        self.filter.iter().chain(&self.filter_or).any(|c| fields.contains(&c.field()))
            || sorted.iter().any(|key| fields.contains(&key.key.as_str()))
    }

    /// What the query costs on each document it reads, in terms: one for the document, one for
    /// each value a condition compares with, one for each field `keyword` looks in, and one for
    /// each sort key. Times the documents read, that is what the cost limit bounds.
    pub fn terms(&self, projection: &Projection<'_>) -> usize {
        let conditions: usize = self.filter.iter().chain(&self.filter_or).map(Condition::terms).sum();
        let keyword = if self.keyword.is_some() { projection.keyword.len() } else { 0 };
        let sorted = self.sort.as_ref().map_or(0, |sort| sort.keys().len());
        1 + conditions + keyword + sorted
    }

    /// The `filter` conditions (all must hold) that say a field equals one of a few texts.
    pub fn equalities(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.filter.iter().filter_map(Condition::equality)
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

/// Orders two values of a field; a time field's as the instants they name. (Documents write a
/// time's fraction only when it is not zero, so as text `…:00.500Z` would come before `…:00Z`.)
pub(crate) fn compare_field(time: bool, a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match time {
        true => compare_instants(instant(a), instant(b), a, b),
        false => compare_values(a, b),
    }
}

pub(crate) type Instant = chrono::DateTime<chrono::FixedOffset>;

pub(crate) fn instant(value: Option<&Value>) -> Option<Instant> {
    value.and_then(Value::as_str).and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
}

/// Values that are no time (absent, empty, or text that does not parse) come first, in
/// [`compare_values`]' order; then times by instant. A total order, as sorting needs.
pub(crate) fn compare_instants(
    x: Option<Instant>,
    y: Option<Instant>,
    a: Option<&Value>,
    b: Option<&Value>,
) -> Ordering {
    match (x, y) {
        (Some(x), Some(y)) => x.cmp(&y),
        (x, y) => x.is_some().cmp(&y.is_some()).then_with(|| compare_values(a, b)),
    }
}

/// A sort key known to the schema.
pub(crate) struct SortBy {
    key: String,
    desc: bool,
    time: bool,
}

pub(crate) fn sort_documents(documents: &mut Vec<Document>, keys: &[SortBy]) {
    // Each document's times are parsed once, not at every comparison.
    let mut decorated: Vec<(Vec<Option<Instant>>, Document)> = documents
        .drain(..)
        .map(|doc| {
            let instants = keys.iter().map(|key| key.time.then(|| instant(doc.get(&key.key))).flatten());
            (instants.collect(), doc)
        })
        .collect();
    decorated.sort_by(|(a_instants, a), (b_instants, b)| {
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                let (x, y) = (a.get(&key.key), b.get(&key.key));
                let order = match key.time {
                    true => compare_instants(a_instants[i], b_instants[i], x, y),
                    false => compare_values(x, y),
                };
                if key.desc { order.reverse() } else { order }
            })
            .find(|order| order.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    documents.extend(decorated.into_iter().map(|(_, doc)| doc));
}

pub(crate) fn check_sort(schema: &Schema, sort: &Sort) -> Result<Vec<SortBy>, Error> {
    sort.keys()
        .into_iter()
        .map(|SortKey { key, desc }| {
            let time = known(schema, &key)? == FieldKind::Time;
            Ok(SortBy { key, desc, time })
        })
        .collect()
}

/// Absent, null, `""` and `[]` all mean "no value".
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_query_costs_a_term_for_the_document_each_compared_value_keyword_field_and_sort_key() {
        let projection = Projection { minimal: &[], keyword: &["id", "name", "owner"], shown_only: &[] };
        let terms =
            |query: serde_json::Value| serde_json::from_value::<Query>(query).unwrap().terms(&projection);
        assert_eq!(terms(json!({})), 1);
        assert_eq!(terms(json!({ "page": { "limit": 10 }, "only": ["name"], "count_only": true })), 1);
        let query = json!({
            "filter": [{ "k": "name", "v": "a" }, { "k": "user_id", "v": ["u1", "u2", "u3"], "o": "in" }],
            "filter_or": [{ "k": "scope", "v": [], "o": "contain_in" }],
            "keyword": "x",
            "sort": [{ "key": "name" }, { "key": "created_at", "desc": true }],
        });
        assert_eq!(terms(query), 1 + 1 + 3 + 1 + 3 + 2);
    }

    #[test]
    fn times_order_as_instants_whether_or_not_they_show_a_fraction() {
        let schema = Schema::new(&[("created_at", FieldKind::Time), ("name", FieldKind::Text)]);
        let times = ["2026-01-01T00:00:00.500Z", "2026-01-01T00:00:01Z", "", "2026-01-01T00:00:00Z"];
        let mut documents: Vec<Document> = times
            .iter()
            .map(|t| Map::from_iter([("created_at".to_owned(), json!(t)), ("name".to_owned(), json!(t))]))
            .collect();
        let sorted = |documents: &[Document], field: &str| -> Vec<String> {
            documents.iter().map(|d| d[field].as_str().unwrap().to_owned()).collect()
        };

        let by_time: Sort = serde_json::from_value(json!({ "key": "created_at" })).unwrap();
        sort_documents(&mut documents, &check_sort(&schema, &by_time).unwrap());
        let expected = ["", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.500Z", "2026-01-01T00:00:01Z"];
        assert_eq!(sorted(&documents, "created_at"), expected);

        // The same texts in a text field keep text order.
        let by_name: Sort = serde_json::from_value(json!({ "key": "name", "desc": true })).unwrap();
        sort_documents(&mut documents, &check_sort(&schema, &by_name).unwrap());
        let expected = ["2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.500Z", ""];
        assert_eq!(sorted(&documents, "name"), expected);

        let (a, b) = (json!("2026-01-01T01:00:00+01:00"), json!("2026-01-01T00:00:00.001Z"));
        assert_eq!(compare_field(true, Some(&a), Some(&b)), Ordering::Less, "the same hour in another zone");
        assert_eq!(compare_field(false, Some(&a), Some(&b)), Ordering::Greater);
    }
}
