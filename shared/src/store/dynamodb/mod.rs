//! The DynamoDB store: each [`Store`] method is one request (a conditional write or a
//! transaction), and a failed condition is explained from the item DynamoDB hands back
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), never from a second read.
//!
//! Nothing outside this module knows the SDK. [`item`] maps keys to items, [`writes`] builds the
//! conditional writes' expressions, [`retry`] decides when a mint may be sent again,
//! [`cancellation`] reads why a transaction was cancelled, [`nonces`] puts replay nonces,
//! [`reads`] reads a domain's index and keys in batches, and [`backup`] exports and imports.

mod backup;
mod cancellation;
mod client;
mod item;
mod nonces;
mod reads;
mod retry;
pub mod table;
mod writes;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem, WriteRequest,
};

use self::cancellation::Cancellation;
pub use self::client::client_config;
use self::client::unavailable;
use self::item::*;
use self::retry::{no_sdk_retries, not_applied, send_once_applied};
use super::{Imported, KeyListing, ListingFilter, Record, RefreshMarker, Store, StoreError, WriteError};
use crate::model::{ApiKey, ApiKeyId, KeyChange, SecretHash, Timestamp};
use crate::replay::ReplayNonce;

/// Keys only: a domain's key ids in creation order (`gsi1sk` is `<created_at>#<id>`).
pub const GSI1: &str = "gsi1";
/// The same keys, carrying each key's [`KeyListing`] ([`item::LISTED`]).
pub const GSI2: &str = "gsi2";
/// DynamoDB's limit on keys in one BatchGetItem.
const BATCH_GET_LIMIT: usize = 100;
const BATCH_GET_ATTEMPTS: usize = 5;
/// DynamoDB's limit on writes in one BatchWriteItem.
const BATCH_WRITE_LIMIT: usize = 25;
const BATCH_GET_BACKOFF: std::time::Duration = std::time::Duration::from_millis(25);

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// A store on `table`, with the SDK's default configuration (the CLI, the tests).
    pub async fn connect(endpoint: Option<&str>, table: impl Into<String>) -> Self {
        Self::with_config(&crate::aws::default_config().await, endpoint, table)
    }

    /// A store on `table`, over the SDK configuration `base` (a Lambda's, say).
    pub fn with_config(
        base: &aws_config::SdkConfig,
        endpoint: Option<&str>,
        table: impl Into<String>,
    ) -> Self {
        Self::new(Client::from_conf(client_config(base, endpoint).build()), table)
    }

    /// Creates the table as `template.yaml` declares it, for the local server and the tests (in
    /// AWS the template owns the table).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        table::create_if_missing(&self.client, &self.table).await
    }

    /// Puts keys with no condition, 25 to a request: for loading a new table (tests and
    /// benchmarks), never on a request's path.
    pub async fn load_keys(&self, keys: &[ApiKey]) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_WRITE_LIMIT) {
            let mut writes: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    let put = PutRequest::builder().set_item(Some(key_to_item(key))).build();
                    WriteRequest::builder().put_request(put.expect("complete put")).build()
                })
                .collect();
            for attempt in 0.. {
                if attempt == BATCH_GET_ATTEMPTS {
                    return Err(StoreError::Unavailable("load keys: writes left unprocessed".into()));
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, writes)
                    .send()
                    .await
                    .map_err(unavailable("load keys"))?;
                writes =
                    output.unprocessed_items().and_then(|u| u.get(&self.table)).cloned().unwrap_or_default();
                if writes.is_empty() {
                    break;
                }
                tokio::time::sleep(BATCH_GET_BACKOFF).await;
            }
        }
        Ok(())
    }
}

/// The key as an `UpdateItem` with `ALL_NEW` left it, or why its condition failed.
fn updated_key<R: std::fmt::Debug>(
    outcome: Result<UpdateItemOutput, SdkError<UpdateItemError, R>>,
    operation: &str,
) -> Result<ApiKey, WriteError> {
    match outcome {
        Ok(output) => Ok(key_from_item(output.attributes().unwrap_or(&Item::new()))?),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => Err(rejected(e.item())?),
            _ => Err(unavailable(operation)(err).into()),
        },
    }
}

fn rejected(old: Option<&Item>) -> Result<WriteError, StoreError> {
    Ok(WriteError::Rejected(old.map(key_from_item).transpose()?.map(Box::new)))
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_key(&self, key: &ApiKey, nonce: Option<&ReplayNonce>) -> Result<(), WriteError> {
        let item = key_to_item(key);
        let Some(nonce) = nonce else {
            let outcome = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            return match outcome {
                Ok(_) => Ok(()),
                Err(err)
                    if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Err(WriteError::AlreadyExists)
                }
                Err(err) => Err(unavailable("create key")(err).into()),
            };
        };
        let put_key = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .expect("complete put");
        let write = TransactWriteItem::builder().put(put_key).build();
        self.transact_with_nonce(write, nonce, key.created_at, "create key").await.map_err(|err| match err {
            WriteError::Rejected(_) => WriteError::AlreadyExists,
            other => other,
        })
    }

    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(key_pk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("get key"))?;
        output.item().map(key_from_item).transpose()
    }

    async fn get_keys(&self, ids: &[ApiKeyId]) -> Result<Vec<ApiKey>, StoreError> {
        // BatchGetItem refuses a request that names a key twice.
        let mut distinct: Vec<&ApiKeyId> = ids.iter().collect();
        distinct.sort();
        distinct.dedup();
        let mut found = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(BATCH_GET_LIMIT) {
            let pks: Vec<AttributeValue> = chunk.iter().map(|id| s(key_pk(id))).collect();
            found.extend(self.batch_get(&pks).await?.into_iter().map(|key| (key.api_key_id.clone(), key)));
        }
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// The domain's partition of the keys-only index: about 11,000 ids per request.
    async fn list_key_ids(&self, domain_id: &str) -> Result<Vec<ApiKeyId>, StoreError> {
        let mut ids = Vec::new();
        self.query_domain(GSI1, domain_id, None, None, "list key ids", |page| {
            ids.extend(page.items().iter().map(key_id_of).collect::<Result<Vec<_>, _>>()?);
            Ok(())
        })
        .await?;
        Ok(ids)
    }

    /// `Select=COUNT` on the keys-only index: the same pages as the ids, without carrying them.
    async fn count_keys(&self, domain_id: &str) -> Result<usize, StoreError> {
        let mut count = 0;
        self.query_domain(GSI1, domain_id, None, Some(Select::Count), "count keys", |page| {
            count += usize::try_from(page.count()).unwrap_or_default();
            Ok(())
        })
        .await?;
        Ok(count)
    }

    /// The domain's partition of the listing index, with the filter's equalities evaluated by
    /// DynamoDB: each request reads up to 1 MB of listings and returns those that pass.
    async fn list_listings(
        &self,
        domain_id: &str,
        filter: &ListingFilter,
    ) -> Result<Vec<KeyListing>, StoreError> {
        let filter = writes::listing_filter(filter);
        let mut listings = Vec::new();
        self.query_domain(GSI2, domain_id, filter.as_ref(), None, "list listings", |page| {
            listings.extend(page.items().iter().map(listing_from_item).collect::<Result<Vec<_>, _>>()?);
            Ok(())
        })
        .await?;
        Ok(listings)
    }

    async fn register_key(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        let request = self.client.update_item().table_name(&self.table).key(PK, s(key_pk(id)));
        let outcome = writes::register(secret, now)
            .update_item(request)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        updated_key(outcome, "register key")
    }

    async fn consume_for_token(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        let outcome = send_once_applied(
            || {
                let request = self.client.update_item().table_name(&self.table).key(PK, s(key_pk(id)));
                writes::consume_for_token(secret, now)
                    .update_item(request)
                    .return_values(ReturnValue::AllNew)
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            },
            not_applied,
        )
        .await;
        updated_key(outcome, "consume for token")
    }

    async fn consume_for_refresh(
        &self,
        id: &ApiKeyId,
        marker: &RefreshMarker,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let put_marker = self.put_lapsing(lapsing(refresh_marker_pk(&marker.jti), marker.expires_at), now);
        let family_is_live = writes::absent_or_lapsed(now);
        let family_not_revoked = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(family_pk(&marker.family)))
            .condition_expression(family_is_live.condition)
            .set_expression_attribute_names(Some(family_is_live.names))
            .set_expression_attribute_values(Some(family_is_live.values))
            .build()
            .expect("complete condition check");
        let consume_unit =
            writes::consume_for_refresh(marker.bought_with, now).transact_update(&self.table, key_pk(id));
        let items = vec![
            TransactWriteItem::builder().put(put_marker).build(),
            TransactWriteItem::builder().condition_check(family_not_revoked).build(),
            TransactWriteItem::builder().update(consume_unit).build(),
        ];
        let outcome = send_once_applied(
            || {
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            },
            |err| not_applied(err) || Cancellation::of(err).is_some_and(|c| c.only_conflicted()),
        )
        .await;
        let Err(err) = outcome else { return Ok(()) };
        match Cancellation::of(&err) {
            Some(cancellation) if cancellation.condition_failed(0) => Err(WriteError::TokenReused),
            Some(cancellation) if cancellation.condition_failed(1) => Err(WriteError::FamilyRevoked),
            Some(cancellation) if cancellation.condition_failed(2) => {
                Err(rejected(cancellation.old_item(2))?)
            }
            _ => Err(unavailable("consume for refresh")(err).into()),
        }
    }

    /// The change and the nonce in one transaction, then the item read back (a transaction
    /// returns none): two requests, the one admin route that pays a second.
    async fn change_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, WriteError> {
        let update = writes::change(domain_id, change);
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(PK, s(key_pk(id)))
            .condition_expression(update.condition)
            .update_expression(update.update)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .build()
            .expect("complete update");
        let write = TransactWriteItem::builder().update(update).build();
        self.transact_with_nonce(write, nonce, change.modified_at, "change key").await?;
        // Deleted between the two requests: the change was applied, so "not found" would mislead.
        self.get_key(id).await?.ok_or_else(|| {
            StoreError::Unavailable(
                "change key: applied, but the key was deleted before it was read back".into(),
            )
            .into()
        })
    }

    async fn delete_key(
        &self,
        id: &ApiKeyId,
        domain_id: &str,
        nonce: &ReplayNonce,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let in_domain = writes::in_domain(domain_id);
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(key_pk(id)))
            .condition_expression(in_domain.condition)
            .set_expression_attribute_names(Some(in_domain.names))
            .set_expression_attribute_values(Some(in_domain.values))
            .build()
            .expect("complete delete");
        let write = TransactWriteItem::builder().delete(delete).build();
        self.transact_with_nonce(write, nonce, now, "delete key").await
    }

    async fn spend_nonce(&self, nonce: &ReplayNonce, now: Timestamp) -> Result<(), WriteError> {
        self.put_nonce_alone(nonce, now).await
    }

    async fn revoke_family(
        &self,
        family: &str,
        expires_at: Timestamp,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lapsing(family_pk(family), expires_at)))
            .send()
            .await
            .map_err(unavailable("revoke family"))?;
        Ok(())
    }

    /// A consistent scan of the whole table: for backups and moves, never on a request's path.
    async fn export(&self) -> Result<Vec<Record>, StoreError> {
        self.scan_records().await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.holds_nothing().await
    }

    async fn import(&self, records: &[Record]) -> Result<Imported, StoreError> {
        self.put_records(records).await
    }
}
