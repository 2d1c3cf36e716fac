//! The reads of many keys: a domain's partition of an index, page by page, and keys fetched in
//! batches.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Select};

use super::client::unavailable;
use super::item::{GSI1_PK, Item, PK, domain_pk, key_from_item, s};
use super::{BATCH_GET_ATTEMPTS, BATCH_GET_BACKOFF, DynamoStore, writes};
use crate::model::ApiKey;
use crate::store::StoreError;

impl DynamoStore {
    /// Every page of one domain's partition of `index`, oldest first, each handed to `page`.
    pub(super) async fn query_domain(
        &self,
        index: &str,
        domain_id: &str,
        filter: Option<&writes::Expression>,
        select: Option<Select>,
        operation: &str,
        mut page: impl FnMut(QueryOutput) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut names = HashMap::from([("#domain".to_owned(), GSI1_PK.to_owned())]);
        let mut values = Item::from([(":domain".to_owned(), s(domain_pk(domain_id)))]);
        if let Some(filter) = filter {
            names.extend(filter.names.clone());
            values.extend(filter.values.clone());
        }
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#domain = :domain")
                .set_filter_expression(filter.map(|filter| filter.condition.clone()))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_select(select.clone())
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable(operation))?;
            start = output.last_evaluated_key().cloned();
            page(output)?;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    /// Reads up to [`BATCH_GET_LIMIT`] keys, asking again for any DynamoDB left unprocessed.
    pub(super) async fn batch_get(&self, pks: &[AttributeValue]) -> Result<Vec<ApiKey>, StoreError> {
        let keys: Vec<Item> = pks.iter().map(|pk| Item::from([(PK.to_owned(), pk.clone())])).collect();
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .expect("complete batch request");
        let mut found = Vec::new();
        for _ in 0..BATCH_GET_ATTEMPTS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(unavailable("get keys"))?;
            if let Some(items) = output.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().map(key_from_item).collect::<Result<Vec<_>, _>>()?);
            }
            match output.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(left) if !left.keys().is_empty() => request = left.clone(),
                _ => return Ok(found),
            }
            tokio::time::sleep(BATCH_GET_BACKOFF).await;
        }
        Err(StoreError::Unavailable("get keys: reads left unprocessed".into()))
    }
}
