//! Replay nonces on DynamoDB: put in one transaction with the admin write they guard, or alone
//! when that write was refused. A put refused because a live nonce is there means the same in
//! both: done, if this very handling stored it; a replay otherwise.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

use super::cancellation::Cancellation;
use super::client::unavailable;
use super::item::{Item, REQUEST, nonce_item};
use super::retry::{no_sdk_retries, not_applied, send_once_applied};
use super::{DynamoStore, writes};
use crate::model::Timestamp;
use crate::replay::{ReplayNonce, Seen};
use crate::store::WriteError;

impl DynamoStore {
    /// An admin write and its replay nonce in one transaction. The nonce failing its condition is
    /// a replay, unless the nonce there is this very request's (an earlier attempt was applied but
    /// its answer was lost, and the SDK sent it again): then the write is done. The write failing
    /// its own condition is `Rejected(None)`.
    pub(super) async fn transact_with_nonce(
        &self,
        write: TransactWriteItem,
        nonce: &ReplayNonce,
        now: Timestamp,
        operation: &str,
    ) -> Result<(), WriteError> {
        let mut put_nonce = self.put_lapsing(nonce_item(nonce), now);
        put_nonce.return_values_on_condition_check_failure =
            Some(ReturnValuesOnConditionCheckFailure::AllOld);
        let outcome = self
            .client
            .transact_write_items()
            .transact_items(write)
            .transact_items(TransactWriteItem::builder().put(put_nonce).build())
            .send()
            .await;
        let Err(err) = outcome else { return Ok(()) };
        match Cancellation::of(&err) {
            Some(cancellation) if cancellation.condition_failed(1) => {
                live_nonce(nonce, cancellation.old_item(1))
            }
            Some(cancellation) if cancellation.condition_failed(0) => Err(WriteError::Rejected(None)),
            _ => Err(unavailable(operation)(err).into()),
        }
    }

    /// Puts a marker, revocation or nonce unless a live one is there.
    pub(super) fn put_lapsing(&self, item: Item, now: Timestamp) -> Put {
        let condition = writes::absent_or_lapsed(now);
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition.condition)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values))
            .build()
            .expect("complete put")
    }

    /// Puts a refused write's nonce alone (see [`crate::store::Store::spend_nonce`]). Sent again
    /// only when it certainly was not applied, without the SDK's slower retries: a refusal waits
    /// on it, and the store may be what failed in the first place.
    pub(super) async fn put_nonce_alone(
        &self,
        nonce: &ReplayNonce,
        now: Timestamp,
    ) -> Result<(), WriteError> {
        let condition = writes::absent_or_lapsed(now);
        let outcome = send_once_applied(
            || {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(nonce_item(nonce)))
                    .condition_expression(&condition.condition)
                    .set_expression_attribute_names(Some(condition.names.clone()))
                    .set_expression_attribute_values(Some(condition.values.clone()))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .customize()
                    .config_override(no_sdk_retries())
                    .send()
            },
            not_applied,
        )
        .await;
        let Err(err) = outcome else { return Ok(()) };
        match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(failed)) => live_nonce(nonce, failed.item()),
            _ => Err(unavailable("spend nonce")(err).into()),
        }
    }
}

/// A nonce put failed its condition, so a live nonce is there (`stored`, as DynamoDB hands it
/// back): this handling's own (its write is applied), or another's, a replay. One without a
/// request is not ours.
fn live_nonce(nonce: &ReplayNonce, stored: Option<&Item>) -> Result<(), WriteError> {
    let stored_by = stored.and_then(|item| item.get(REQUEST)?.as_s().ok());
    match nonce.seen(Some(stored_by.map_or("", String::as_str))) {
        Seen::OurOwn => Ok(()),
        Seen::New | Seen::Replayed => Err(WriteError::Replayed),
    }
}
