//! The table definition, read from `template.yaml` itself, so the table the local server and the
//! tests create is the one deployments get: the two cannot drift.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use yaml_rust2::{Yaml, YamlLoader};

use crate::store::StoreError;

const TEMPLATE: &str = include_str!("../../../../template.yaml");
const TABLE_RESOURCE: &str = "Table";

/// The `Properties` of the template's table resource.
fn table_properties() -> Yaml {
    let documents = YamlLoader::load_from_str(TEMPLATE).expect("template.yaml is YAML");
    documents[0]["Resources"][TABLE_RESOURCE]["Properties"].clone()
}

fn text<'a>(yaml: &'a Yaml, field: &str) -> &'a str {
    yaml[field].as_str().unwrap_or_else(|| panic!("template.yaml: Table needs {field}"))
}

fn list<'a>(yaml: &'a Yaml, field: &str) -> &'a [Yaml] {
    yaml[field].as_vec().map(Vec::as_slice).unwrap_or_default()
}

fn key_schema(yaml: &Yaml) -> Vec<KeySchemaElement> {
    list(yaml, "KeySchema")
        .iter()
        .map(|element| {
            KeySchemaElement::builder()
                .attribute_name(text(element, "AttributeName"))
                .key_type(KeyType::from(text(element, "KeyType")))
                .build()
                .expect("complete key schema element")
        })
        .collect()
}

/// The attributes an `INCLUDE` index carries besides the keys (`None` for another projection).
fn non_key_attributes(index: &Yaml) -> Option<Vec<String>> {
    let attributes = list(&index["Projection"], "NonKeyAttributes");
    (!attributes.is_empty())
        .then(|| attributes.iter().map(|a| a.as_str().expect("an attribute name").to_owned()).collect())
}

/// The name of the TTL attribute the template enables.
pub fn ttl_attribute() -> String {
    text(&table_properties()["TimeToLiveSpecification"], "AttributeName").to_owned()
}

fn attribute_definitions(properties: &Yaml) -> Vec<AttributeDefinition> {
    list(properties, "AttributeDefinitions")
        .iter()
        .map(|definition| {
            AttributeDefinition::builder()
                .attribute_name(text(definition, "AttributeName"))
                .attribute_type(ScalarAttributeType::from(text(definition, "AttributeType")))
                .build()
                .expect("complete attribute definition")
        })
        .collect()
}

fn indexes(properties: &Yaml) -> Vec<GlobalSecondaryIndex> {
    list(properties, "GlobalSecondaryIndexes")
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(text(index, "IndexName"))
                .set_key_schema(Some(key_schema(index)))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(text(&index["Projection"], "ProjectionType")))
                        .set_non_key_attributes(non_key_attributes(index))
                        .build(),
                )
                .build()
                .expect("complete index")
        })
        .collect()
}

/// How long a table made by an earlier version may take to build an index it lacks.
const INDEX_BUILD_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Creates the table as the template declares it (keys, indexes, TTL) unless it exists. A table
/// that exists but lacks an index the template declares (one made by an earlier version) gets
/// it, and this waits until the index is built.
pub async fn create_if_missing(client: &Client, table: &str) -> Result<(), StoreError> {
    let unavailable = |what: &str, err: String| StoreError::Unavailable(format!("{what} {table}: {err}"));
    let properties = table_properties();
    match client.describe_table().table_name(table).send().await {
        Ok(described) => {
            let existing = described.table().map(|t| t.global_secondary_indexes()).unwrap_or_default();
            for index in indexes(&properties) {
                if existing.iter().any(|e| e.index_name() == Some(index.index_name())) {
                    continue;
                }
                let create = CreateGlobalSecondaryIndexAction::builder()
                    .index_name(index.index_name())
                    .set_key_schema(Some(index.key_schema().to_vec()))
                    .set_projection(index.projection().cloned())
                    .build()
                    .expect("complete index");
                client
                    .update_table()
                    .table_name(table)
                    .set_attribute_definitions(Some(attribute_definitions(&properties)))
                    .global_secondary_index_updates(
                        GlobalSecondaryIndexUpdate::builder().create(create).build(),
                    )
                    .send()
                    .await
                    .map_err(|err| unavailable("add an index to", super::client::describe(&err)))?;
                wait_until_active(client, table, index.index_name()).await?;
            }
            return Ok(());
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(err) => return Err(unavailable("describe", super::client::describe(&err))),
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::from(text(&properties, "BillingMode")))
        .set_attribute_definitions(Some(attribute_definitions(&properties)))
        .set_key_schema(Some(key_schema(&properties)))
        .set_global_secondary_indexes(Some(indexes(&properties)))
        .send()
        .await
        .map_err(|err| unavailable("create", super::client::describe(&err)))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(ttl_attribute())
                .enabled(true)
                .build()
                .expect("complete TTL specification"),
        )
        .send()
        .await
        .map_err(|err| unavailable("enable TTL on", super::client::describe(&err)))?;
    Ok(())
}

async fn wait_until_active(client: &Client, table: &str, index: &str) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    loop {
        let described = client.describe_table().table_name(table).send().await.map_err(|err| {
            StoreError::Unavailable(format!("describe {table}: {}", super::client::describe(&err)))
        })?;
        let status = described
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .find(|e| e.index_name() == Some(index))
            .and_then(|e| e.index_status().cloned());
        if status == Some(IndexStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > INDEX_BUILD_WAIT {
            return Err(StoreError::Unavailable(format!("index {index} of {table} is still being built")));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dynamodb::item;

    #[test]
    fn the_template_declares_the_attributes_the_store_writes() {
        let properties = table_properties();
        let names: Vec<&str> =
            list(&properties, "AttributeDefinitions").iter().map(|d| text(d, "AttributeName")).collect();
        assert_eq!(names, [item::PK, item::GSI1_PK, item::GSI1_SK]);
        assert_eq!(ttl_attribute(), item::TTL);
        let indexes = list(&properties, "GlobalSecondaryIndexes");
        assert_eq!(text(&indexes[0], "IndexName"), super::super::GSI1);
        assert_eq!(text(&indexes[0]["Projection"], "ProjectionType"), "KEYS_ONLY");
        assert_eq!(text(&indexes[1], "IndexName"), super::super::GSI2);
        assert_eq!(non_key_attributes(&indexes[1]).unwrap(), item::LISTED);
    }

    #[test]
    fn no_attribute_a_mint_writes_is_in_an_index() {
        let indexes = list(&table_properties(), "GlobalSecondaryIndexes").to_vec();
        let carried: Vec<String> = indexes.iter().filter_map(non_key_attributes).flatten().collect();
        for written in [item::REMAINING, item::LAST_ACCESSED_AT] {
            assert!(!carried.iter().any(|a| a == written), "{written} is in an index");
        }
    }
}
