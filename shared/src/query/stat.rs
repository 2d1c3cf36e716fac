//! SpaceONE's `StatisticsQuery`: filter, then `aggregate` stages (group, count, sort, project,
//! limit, skip) or `distinct`, then `page`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    Condition, Document, FieldKind, Filter, Instant, Page, Schema, Sort, check_sort, compare_field,
    compare_instants, instant, invalid, known, sort_documents,
};
use crate::error::Error;
use crate::model::Timestamp;

/// What a `StatisticsQuery` answers (a `google.protobuf.Struct`).
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatResult {
    /// The groups, counts or projected documents of `aggregate`, or the values of `distinct`.
    pub results: Vec<Value>,
    /// How many results there were before `page`; only with a `page`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatisticsQuery {
    #[serde(default)]
    aggregate: Vec<Stage>,
    #[serde(default)]
    distinct: Option<String>,
    #[serde(default)]
    filter: Vec<Condition>,
    #[serde(default)]
    filter_or: Vec<Condition>,
    #[serde(default)]
    page: Option<Page>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
enum Stage {
    Group(Group),
    Count(Count),
    Sort(Sort),
    Project(Project),
    Limit(u64),
    Skip(u64),
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct Group {
    #[serde(default)]
    keys: Vec<Named>,
    #[serde(default)]
    fields: Vec<GroupField>,
}

/// A source field and the name it takes in the output.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct Named {
    key: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct GroupField {
    #[serde(default)]
    key: Option<String>,
    name: String,
    operator: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct Count {
    name: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct Project {
    fields: Vec<Named>,
}

impl StatisticsQuery {
    /// What the query costs on each document it reads, in terms, as [`super::Query::terms`]
    /// counts them: one for the document, the conditions' values, and each stage's keys and
    /// fields (no stage makes more documents than it is given).
    pub fn terms(&self) -> usize {
        let conditions: usize = self.filter.iter().chain(&self.filter_or).map(Condition::terms).sum();
        let stages: usize = self.aggregate.iter().map(Stage::terms).sum();
        1 + conditions + stages + usize::from(self.distinct.is_some())
    }

    /// The `results` (and, with a page, `total_count`) of the query over `documents`.
    pub fn run(
        &self,
        documents: Vec<Document>,
        schema: &Schema,
        now: Timestamp,
    ) -> Result<StatResult, Error> {
        if self.distinct.is_some() && !self.aggregate.is_empty() {
            return Err(invalid("distinct and aggregate are exclusive"));
        }
        let filter = Filter::compile(&self.filter, &self.filter_or, schema, now)?;
        let mut documents: Vec<Document> = documents.into_iter().filter(|d| filter.matches(d)).collect();
        let results: Vec<Value> = match &self.distinct {
            Some(field) => {
                let time = known(schema, field)? == FieldKind::Time;
                distinct(&documents, field, time)
            }
            None => {
                let mut schema = schema.clone();
                for stage in &self.aggregate {
                    documents = stage.apply(documents, &mut schema)?;
                }
                documents.into_iter().map(Value::Object).collect()
            }
        };
        let total_count = results.len();
        match &self.page {
            Some(page) => {
                let range = page.range(total_count)?;
                Ok(StatResult { results: results[range].to_vec(), total_count: Some(total_count) })
            }
            None => Ok(StatResult { results, total_count: None }),
        }
    }
}

/// The different non-empty values of a field (list fields count each element), in order; a time
/// field's by instant.
fn distinct(documents: &[Document], field: &str, time: bool) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut values: Vec<(Option<Instant>, Value)> = Vec::new();
    for value in documents.iter().filter_map(|d| d.get(field)) {
        let items = match value {
            Value::Array(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        for item in items {
            if !super::is_empty(item) && seen.insert(item.to_string()) {
                values.push((time.then(|| instant(Some(item))).flatten(), item.clone()));
            }
        }
    }
    values.sort_by(|(x, a), (y, b)| compare_instants(*x, *y, Some(a), Some(b)));
    values.into_iter().map(|(_, value)| value).collect()
}

impl Stage {
    fn terms(&self) -> usize {
        match self {
            Stage::Group(group) => (group.keys.len() + group.fields.len()).max(1),
            Stage::Sort(sort) => sort.keys().len().max(1),
            Stage::Project(project) => project.fields.len().max(1),
            Stage::Count(_) | Stage::Limit(_) | Stage::Skip(_) => 1,
        }
    }

    fn apply(&self, mut documents: Vec<Document>, schema: &mut Schema) -> Result<Vec<Document>, Error> {
        match self {
            Stage::Group(group) => group.apply(&documents, schema),
            Stage::Count(count) => {
                *schema = Schema::new(&[(count.name.as_str(), FieldKind::Number)]);
                Ok(vec![Map::from_iter([(count.name.clone(), json!(documents.len()))])])
            }
            Stage::Sort(sort) => {
                sort_documents(&mut documents, &check_sort(schema, sort)?);
                Ok(documents)
            }
            Stage::Project(project) => {
                let mut projected = Schema::default();
                for field in &project.fields {
                    projected.push(&field.name, known(schema, &field.key)?);
                }
                *schema = projected;
                Ok(documents
                    .iter()
                    .map(|d| {
                        project
                            .fields
                            .iter()
                            .map(|f| (f.name.clone(), d.get(&f.key).cloned().unwrap_or(Value::Null)))
                            .collect()
                    })
                    .collect())
            }
            Stage::Limit(n) => {
                Ok(documents.into_iter().take(usize::try_from(*n).unwrap_or(usize::MAX)).collect())
            }
            Stage::Skip(n) => {
                Ok(documents.into_iter().skip(usize::try_from(*n).unwrap_or(usize::MAX)).collect())
            }
        }
    }
}

impl Group {
    fn apply(&self, documents: &[Document], schema: &mut Schema) -> Result<Vec<Document>, Error> {
        let mut output = Schema::default();
        for key in &self.keys {
            output.push(&key.name, known(schema, &key.key)?);
        }
        let mut operations = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let operation = Aggregate::parse(&field.operator)?;
            let source = match (&field.key, operation) {
                (None, Aggregate::Count) => None,
                (None, _) => return Err(invalid(format!("{} needs a key", field.operator))),
                (Some(key), _) => Some((key.as_str(), known(schema, key)?)),
            };
            let kind = source.map(|(_, kind)| kind);
            output.push(&field.name, operation.result_kind(kind)?);
            operations.push((field, operation, kind == Some(FieldKind::Time)));
        }

        // Groups in the order their first document comes.
        let mut groups: Vec<(Vec<Value>, Vec<&Document>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for doc in documents {
            let key: Vec<Value> =
                self.keys.iter().map(|k| doc.get(&k.key).cloned().unwrap_or(Value::Null)).collect();
            let slot = *index.entry(Value::from(key.clone()).to_string()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(doc);
        }
        *schema = output;
        Ok(groups
            .into_iter()
            .map(|(key, members)| {
                let mut out: Document = self.keys.iter().map(|k| k.name.clone()).zip(key).collect();
                for (field, operation, time) in &operations {
                    let values: Vec<&Value> = match &field.key {
                        Some(key) => members.iter().filter_map(|d| d.get(key)).collect(),
                        None => Vec::new(),
                    };
                    out.insert(field.name.clone(), operation.apply(members.len(), &values, *time));
                }
                out
            })
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Count,
    Sum,
    Average,
    Max,
    Min,
    First,
    Last,
    Push,
    AddToSet,
}

impl Aggregate {
    fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "average" => Self::Average,
            "max" => Self::Max,
            "min" => Self::Min,
            "first" => Self::First,
            "last" => Self::Last,
            "push" => Self::Push,
            "add_to_set" => Self::AddToSet,
            other => return Err(invalid(format!("unknown aggregate operator {other}"))),
        })
    }

    fn result_kind(self, source: Option<FieldKind>) -> Result<FieldKind, Error> {
        match (self, source) {
            (Self::Count, _) => Ok(FieldKind::Number),
            (Self::Sum | Self::Average, Some(FieldKind::Number)) => Ok(FieldKind::Number),
            (Self::Sum | Self::Average, _) => Err(invalid("sum and average need a number field")),
            (Self::Push | Self::AddToSet, _) => Ok(FieldKind::List),
            (_, Some(kind)) => Ok(kind),
            (_, None) => Err(invalid("this operator needs a key")),
        }
    }

    /// `time`: the values are a time field's.
    fn apply(self, members: usize, values: &[&Value], time: bool) -> Value {
        let present: Vec<&Value> = values.iter().copied().filter(|v| !super::is_empty(v)).collect();
        let numbers: Vec<&serde_json::Number> = present.iter().filter_map(|v| v.as_number()).collect();
        match self {
            Self::Count => json!(members),
            Self::Sum => match numbers.iter().map(|n| n.as_i64()).sum::<Option<i64>>() {
                Some(total) => json!(total),
                None => json!(numbers.iter().filter_map(|n| n.as_f64()).sum::<f64>()),
            },
            Self::Average if numbers.is_empty() => Value::Null,
            Self::Average => {
                json!(numbers.iter().filter_map(|n| n.as_f64()).sum::<f64>() / numbers.len() as f64)
            }
            Self::Max => present
                .iter()
                .copied()
                .max_by(|a, b| compare_field(time, Some(a), Some(b)))
                .cloned()
                .unwrap_or(Value::Null),
            Self::Min => present
                .iter()
                .copied()
                .min_by(|a, b| compare_field(time, Some(a), Some(b)))
                .cloned()
                .unwrap_or(Value::Null),
            Self::First => values.first().map(|v| (*v).clone()).unwrap_or(Value::Null),
            Self::Last => values.last().map(|v| (*v).clone()).unwrap_or(Value::Null),
            Self::Push => Value::Array(values.iter().map(|v| (*v).clone()).collect()),
            // Each value once, in the order first seen; a value's text is its identity, so a group
            // of n values costs n, not n² comparisons.
            Self::AddToSet => {
                let mut seen = HashSet::new();
                Value::Array(
                    values.iter().filter(|v| seen.insert(v.to_string())).map(|v| (*v).clone()).collect(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statistics_query_costs_its_conditions_values_and_each_stages_keys_and_fields() {
        let terms = |query: Value| serde_json::from_value::<StatisticsQuery>(query).unwrap().terms();
        assert_eq!(terms(json!({})), 1);
        assert_eq!(terms(json!({ "distinct": "user_id", "filter": [{ "k": "state", "v": "ENABLED" }] })), 3);
        let query = json!({
            "filter_or": [{ "k": "user_id", "v": ["a", "b"], "o": "in" }],
            "aggregate": [
                { "group": { "keys": [{ "key": "user_id", "name": "user" }], "fields": [
                    { "name": "n", "operator": "count" },
                    { "key": "api_key_id", "name": "ids", "operator": "add_to_set" },
                ] } },
                { "sort": { "keys": [{ "key": "n", "desc": true }] } },
                { "project": { "fields": [{ "key": "user", "name": "u" }] } },
                { "count": { "name": "groups" } },
                { "limit": 5 },
            ],
        });
        assert_eq!(terms(query), 1 + 2 + 3 + 1 + 1 + 1 + 1);
    }

    #[test]
    fn add_to_set_keeps_each_value_once_in_the_order_first_seen() {
        let (a, b, one) = (json!("a"), json!("b"), json!(1));
        let values = [&b, &a, &b, &one, &a];
        assert_eq!(Aggregate::AddToSet.apply(values.len(), &values, false), json!(["b", "a", 1]));
    }

    #[test]
    fn the_latest_and_earliest_of_a_time_field_are_by_instant() {
        let schema = Schema::new(&[("created_at", FieldKind::Time)]);
        let documents: Vec<Document> = ["2026-01-01T00:00:00.500Z", "2026-01-01T00:00:00Z"]
            .iter()
            .map(|t| Map::from_iter([("created_at".to_owned(), json!(t))]))
            .collect();
        let query: StatisticsQuery = serde_json::from_value(json!({ "aggregate": [{ "group": { "fields": [
            { "key": "created_at", "name": "latest", "operator": "max" },
            { "key": "created_at", "name": "earliest", "operator": "min" },
        ] } }] }))
        .unwrap();
        let now = Timestamp::from_timestamp_millis(1_764_000_000_000).unwrap();
        let answer = query.run(documents, &schema, now).unwrap();
        assert_eq!(
            answer.results,
            [json!({ "latest": "2026-01-01T00:00:00.500Z", "earliest": "2026-01-01T00:00:00Z" })]
        );
    }

    #[test]
    fn distinct_times_come_once_each_in_instant_order() {
        let schema = Schema::new(&[("created_at", FieldKind::Time)]);
        let times = ["2026-01-01T00:00:00.500Z", "2026-01-01T00:00:00Z", "", "2026-01-01T00:00:00.500Z"];
        let documents: Vec<Document> =
            times.iter().map(|t| Map::from_iter([("created_at".to_owned(), json!(t))])).collect();
        let query: StatisticsQuery = serde_json::from_value(json!({ "distinct": "created_at" })).unwrap();
        let now = Timestamp::from_timestamp_millis(1_764_000_000_000).unwrap();
        let answer = query.run(documents, &schema, now).unwrap();
        assert_eq!(answer.results, [json!("2026-01-01T00:00:00Z"), json!("2026-01-01T00:00:00.500Z")]);
    }
}
