//! The DynamoDB store: each [`Store`] method is one request (a conditional write or a
//! transaction), and a failed condition is explained from the item DynamoDB hands back
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), never from a second read.
//!
//! Nothing outside this module knows the SDK.

mod item;
pub mod table;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use self::item::*;
use super::{RefreshMarker, Store, StoreError, WriteError};
use crate::key_value::SecretHash;
use crate::model::{ApiKey, ApiKeyId, KeyChange, Timestamp};
use crate::signature::ReplayNonce;

pub const GSI1: &str = "gsi1";
/// DynamoDB's limit on keys in one BatchGetItem.
const BATCH_GET_LIMIT: usize = 100;
const BATCH_GET_ATTEMPTS: usize = 5;

/// A mint or refresh is retried this many times at most, and only after an error that proves
/// the write was not applied.
const WRITE_ATTEMPTS: u32 = 3;
const WRITE_BACKOFF: Duration = Duration::from_millis(25);

/// Mintable: enabled, registered, unexpired and not exhausted. The key secret is checked by the
/// token route only: a refresh proves possession of a token instead.
const MINTABLE: &str =
    "#state = :enabled AND attribute_exists(#registered) AND #expires > :now AND #remaining > :zero";
const SECRET_MATCHES: &str = "(#primary = :secret OR #secondary = :secret)";
const CONSUME_UNIT: &str = "SET #remaining = #remaining - :one, #last_accessed = :now";
/// Absent, or present but lapsed (DynamoDB's TTL deletes only eventually).
const ABSENT_OR_LAPSED: &str = "attribute_not_exists(#pk) OR #lapses <= :now";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// The SDK configuration keygate runs with: bounded timeouts (a request that hangs becomes a 500
/// within seconds), standard retries for reads and admin writes, and, when an endpoint is given
/// (DynamoDB Local, an emulator), placeholder credentials unless real ones are configured.
pub async fn client_config(endpoint: Option<&str>) -> aws_sdk_dynamodb::config::Builder {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(4))
        .build();
    let region = RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "keygate"));
        }
    }
    aws_sdk_dynamodb::config::Builder::from(&loader.load().await)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub async fn connect(endpoint: Option<&str>, table: impl Into<String>) -> Self {
        Self::new(Client::from_conf(client_config(endpoint).await.build()), table)
    }

    /// Creates the table as `template.yaml` declares it, for the local server and the tests (in
    /// AWS the template owns the table).
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        table::create_if_missing(&self.client, &self.table).await
    }

    fn key(&self, id: &ApiKeyId) -> (String, AttributeValue) {
        (PK.to_owned(), s(key_pk(id)))
    }

    /// Reads up to [`BATCH_GET_LIMIT`] keys, asking again for any DynamoDB left unprocessed.
    async fn batch_get(&self, pks: &[AttributeValue]) -> Result<Vec<ApiKey>, StoreError> {
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
                .map_err(unavailable("list keys"))?;
            if let Some(items) = output.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().map(key_from_item).collect::<Result<Vec<_>, _>>()?);
            }
            match output.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(left) if !left.keys().is_empty() => request = left.clone(),
                _ => return Ok(found),
            }
            tokio::time::sleep(WRITE_BACKOFF).await;
        }
        Err(StoreError::Unavailable("list keys: reads left unprocessed".into()))
    }

    /// An admin write and its replay nonce in one transaction. The nonce failing its condition is
    /// a replay; the write failing its own is `Rejected(None)`.
    async fn transact_with_nonce(
        &self,
        write: TransactWriteItem,
        put_nonce: Put,
        operation: &str,
    ) -> Result<(), WriteError> {
        let outcome = self
            .client
            .transact_write_items()
            .transact_items(write)
            .transact_items(TransactWriteItem::builder().put(put_nonce).build())
            .send()
            .await;
        let err = match outcome {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons().to_vec()
            }
            _ => return Err(unavailable(operation)(err).into()),
        };
        let failed = |index: usize| reasons.get(index).and_then(|r| r.code()) == Some(CONDITION_FAILED);
        if failed(1) {
            Err(WriteError::Replayed)
        } else if failed(0) {
            Err(WriteError::Rejected(None))
        } else {
            Err(unavailable(operation)(err).into())
        }
    }

    fn put_lapsing(&self, item: Item, now: Timestamp) -> Put {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(ABSENT_OR_LAPSED)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#lapses", LAPSES_AT)
            .expression_attribute_values(":now", millis(now))
            .build()
            .expect("complete put")
    }
}

/// Condition, names and values of consuming one unit: the key must be mintable and, when a secret
/// is presented (the token route), hold it.
struct ConsumeUnit {
    condition: String,
    names: std::collections::HashMap<String, String>,
    values: Item,
}

impl ConsumeUnit {
    fn new(secret: Option<&SecretHash>, now: Timestamp) -> Self {
        let mut names = names(&[
            ("#state", STATE),
            ("#registered", REGISTERED_AT),
            ("#expires", EXPIRES_AT),
            ("#remaining", REMAINING),
            ("#last_accessed", LAST_ACCESSED_AT),
        ]);
        let mut values =
            values(&[(":enabled", s("ENABLED")), (":now", millis(now)), (":zero", n(0)), (":one", n(1))]);
        let condition = match secret {
            Some(secret) => {
                names.extend(self::names(&[("#primary", PRIMARY_HASH), ("#secondary", SECONDARY_HASH)]));
                values.insert(":secret".to_owned(), s(secret.as_str()));
                format!("{MINTABLE} AND {SECRET_MATCHES}")
            }
            None => MINTABLE.to_owned(),
        };
        Self { condition, names, values }
    }
}

/// The key as an `UpdateItem` with `ALL_NEW` left it, or why its condition failed.
fn updated_key<R: std::fmt::Debug>(
    outcome: Result<aws_sdk_dynamodb::operation::update_item::UpdateItemOutput, SdkError<UpdateItemError, R>>,
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

fn names(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn values(pairs: &[(&str, AttributeValue)]) -> Item {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

pub(crate) fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(err: &SdkError<E, R>) -> String {
    DisplayErrorContext(err).to_string()
}

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &str,
) -> impl FnOnce(SdkError<E, R>) -> StoreError + '_ {
    move |err| StoreError::Unavailable(format!("{operation}: {}", describe(&err)))
}

fn rejected(old: Option<&Item>) -> Result<WriteError, StoreError> {
    Ok(WriteError::Rejected(old.map(key_from_item).transpose()?.map(Box::new)))
}

/// An error after which the write certainly did not happen: DynamoDB refused it for capacity or
/// a conflicting transaction, or the connection was refused before anything was sent. A timeout
/// proves nothing (the write may have been applied), so it is never retried.
fn not_applied<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(context) => matches!(
            context.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TransactionConflictException"
            )
        ),
        SdkError::DispatchFailure(failure) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                failure.as_connector_error().map(|e| e as _);
            while let Some(err) = source {
                if err
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    return true;
                }
                source = err.source();
            }
            false
        }
        _ => false,
    }
}

/// Sends a mint or refresh write with the SDK's own retries off, retrying only when `retry`
/// proves the previous attempt was not applied: a unit may be lost, but a token is never issued
/// twice for one unit and a refresh is never mistaken for its own replay.
async fn send_once_applied<T, E, R, F, Fut>(
    mut send: F,
    retry: impl Fn(&SdkError<E, R>) -> bool,
) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(err) if attempt < WRITE_ATTEMPTS && retry(&err) => {
                tokio::time::sleep(WRITE_BACKOFF * attempt).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

fn no_sdk_retries() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::default().retry_config(RetryConfig::disabled())
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

#[async_trait]
impl Store for DynamoStore {
    async fn create_key(&self, key: &ApiKey, nonce: Option<&ReplayNonce>) -> Result<(), WriteError> {
        let item = key_to_item(key);
        let put_key = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .expect("complete put");
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
        let put_nonce = self.put_lapsing(lapsing(nonce_pk(&nonce.id), nonce.expires_at), key.created_at);
        self.transact_with_nonce(TransactWriteItem::builder().put(put_key).build(), put_nonce, "create key")
            .await
            .map_err(|err| match err {
                WriteError::Rejected(_) => WriteError::AlreadyExists,
                other => other,
            })
    }

    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let (name, value) = self.key(id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(name, value)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("get key"))?;
        output.item().map(key_from_item).transpose()
    }

    /// The domain's partition of the `gsi1` index (keys only), page by page, then the items
    /// themselves in batches: never a table scan.
    async fn list_keys(&self, domain_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#domain = :domain")
                .expression_attribute_names("#domain", GSI1_PK)
                .expression_attribute_values(":domain", s(domain_pk(domain_id)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("list keys"))?;
            keys.extend(page.items().iter().filter_map(|item| item.get(PK).cloned()));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            found.extend(self.batch_get(chunk).await?);
        }
        found.sort_by(|a, b| (a.created_at, &a.api_key_id).cmp(&(b.created_at, &b.api_key_id)));
        Ok(found)
    }

    async fn register_key(
        &self,
        id: &ApiKeyId,
        secret: &SecretHash,
        now: Timestamp,
    ) -> Result<ApiKey, WriteError> {
        let (name, value) = self.key(id);
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(name, value)
            .condition_expression(format!("#state = :enabled AND {SECRET_MATCHES}"))
            .update_expression(
                "SET #registered = if_not_exists(#registered, :now), \
                 #base = if_not_exists(#base, :now), \
                 #expires = if_not_exists(#base, :now) + #offset",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#state", STATE),
                ("#primary", PRIMARY_HASH),
                ("#secondary", SECONDARY_HASH),
                ("#registered", REGISTERED_AT),
                ("#base", EXPIRY_BASE),
                ("#expires", EXPIRES_AT),
                ("#offset", EXPIRY_OFFSET),
            ])))
            .set_expression_attribute_values(Some(values(&[
                (":enabled", s("ENABLED")),
                (":secret", s(secret.as_str())),
                (":now", millis(now)),
            ])))
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
        let consume = ConsumeUnit::new(Some(secret), now);
        let outcome = send_once_applied(
            || {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(PK, s(key_pk(id)))
                    .condition_expression(&consume.condition)
                    .update_expression(CONSUME_UNIT)
                    .set_expression_attribute_names(Some(consume.names.clone()))
                    .set_expression_attribute_values(Some(consume.values.clone()))
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
        let family_not_revoked = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, s(family_pk(&marker.family)))
            .condition_expression(ABSENT_OR_LAPSED)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#lapses", LAPSES_AT)
            .expression_attribute_values(":now", millis(now))
            .build()
            .expect("complete condition check");
        let consume = ConsumeUnit::new(None, now);
        let consume_unit = Update::builder()
            .table_name(&self.table)
            .key(PK, s(key_pk(id)))
            .condition_expression(consume.condition)
            .update_expression(CONSUME_UNIT)
            .set_expression_attribute_names(Some(consume.names))
            .set_expression_attribute_values(Some(consume.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("complete update");
        let items = vec![
            TransactWriteItem::builder().put(put_marker).build(),
            TransactWriteItem::builder().condition_check(family_not_revoked).build(),
            TransactWriteItem::builder().update(consume_unit).build(),
        ];
        let cancellation_reasons = |err: &SdkError<_, _>| match err {
            SdkError::ServiceError(context) => match context.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    Some(c.cancellation_reasons().to_vec())
                }
                _ => None,
            },
            _ => None,
        };
        let outcome = send_once_applied(
            || {
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            },
            |err| {
                not_applied(err)
                    || cancellation_reasons(err).is_some_and(|reasons| {
                        reasons.iter().any(|r| r.code() == Some("TransactionConflict"))
                            && !reasons.iter().any(|r| r.code() == Some(CONDITION_FAILED))
                    })
            },
        )
        .await;
        let err = match outcome {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let Some(reasons) = cancellation_reasons(&err) else {
            return Err(unavailable("consume for refresh")(err).into());
        };
        let failed = |index: usize| reasons.get(index).is_some_and(|r| r.code() == Some(CONDITION_FAILED));
        if failed(0) {
            Err(WriteError::TokenReused)
        } else if failed(1) {
            Err(WriteError::FamilyRevoked)
        } else if failed(2) {
            Err(rejected(reasons[2].item())?)
        } else {
            Err(unavailable("consume for refresh")(err).into())
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
        let mut assignments = vec!["#modifier = :modifier", "#modified_at = :modified_at"];
        let mut attribute_names =
            names(&[("#domain", "domain_id"), ("#modifier", "modifier"), ("#modified_at", "modified_at")]);
        let mut attribute_values = values(&[
            (":domain", s(domain_id)),
            (":modifier", s(&change.modifier)),
            (":modified_at", millis(change.modified_at)),
        ]);
        let mut assign =
            |name: &'static str, attribute: &str, value: AttributeValue, assignment: &'static str| {
                attribute_names.insert(name.to_owned(), attribute.to_owned());
                attribute_values.insert(name.replacen('#', ":", 1), value);
                assignments.push(assignment);
            };
        if let Some(state) = change.state {
            assign("#state", STATE, s(state_name(state)), "#state = :state");
        }
        if let Some(name) = &change.name {
            assign("#name", "name", s(name), "#name = :name");
        }
        if let Some(description) = &change.description {
            assign("#description", "description", s(description), "#description = :description");
        }
        if let Some(primary) = &change.primary {
            assign("#primary", PRIMARY_HASH, s(primary.hash.as_str()), "#primary = :primary");
            assign("#primary_last4", "primary_last4", s(&primary.last4), "#primary_last4 = :primary_last4");
        }
        if let Some(secondary) = &change.secondary {
            assign("#secondary", SECONDARY_HASH, s(secondary.hash.as_str()), "#secondary = :secondary");
            assign(
                "#secondary_last4",
                "secondary_last4",
                s(&secondary.last4),
                "#secondary_last4 = :secondary_last4",
            );
        }
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(key_pk(id)))
            .condition_expression("#domain = :domain")
            .update_expression(format!("SET {}", assignments.join(", ")))
            .set_expression_attribute_names(Some(attribute_names))
            .set_expression_attribute_values(Some(attribute_values))
            .build()
            .expect("complete update");
        let put_nonce = self.put_lapsing(lapsing(nonce_pk(&nonce.id), nonce.expires_at), change.modified_at);
        self.transact_with_nonce(
            TransactWriteItem::builder().update(update).build(),
            put_nonce,
            "change key",
        )
        .await?;
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
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(key_pk(id)))
            .condition_expression("#domain = :domain")
            .expression_attribute_names("#domain", "domain_id")
            .expression_attribute_values(":domain", s(domain_id))
            .build()
            .expect("complete delete");
        let put_nonce = self.put_lapsing(lapsing(nonce_pk(&nonce.id), nonce.expires_at), now);
        self.transact_with_nonce(TransactWriteItem::builder().delete(delete).build(), put_nonce, "delete key")
            .await
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
}
