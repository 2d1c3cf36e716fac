//! Why DynamoDB cancelled a transaction: one reason per item, in the order the items were sent.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::CancellationReason;

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// The reasons of a cancelled transaction; `None` for any other failure.
pub(super) struct Cancellation(Vec<CancellationReason>);

impl Cancellation {
    pub(super) fn of<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Self> {
        match err.as_service_error()? {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                Some(Self(cancelled.cancellation_reasons().to_vec()))
            }
            _ => None,
        }
    }

    /// Whether the item at `index` failed its condition.
    pub(super) fn condition_failed(&self, index: usize) -> bool {
        self.0.get(index).and_then(|r| r.code()) == Some(CONDITION_FAILED)
    }

    /// The item at `index` as it was, when its condition failed and DynamoDB handed it back.
    pub(super) fn old_item(&self, index: usize) -> Option<&super::item::Item> {
        self.0.get(index).and_then(|r| r.item())
    }

    /// Some item conflicted with another transaction and none failed its condition: nothing was
    /// written, so the transaction may be sent again.
    pub(super) fn only_conflicted(&self) -> bool {
        self.0.iter().any(|r| r.code() == Some(TRANSACTION_CONFLICT))
            && !self.0.iter().any(|r| r.code() == Some(CONDITION_FAILED))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    use super::*;

    fn cancelled(codes: &[&str]) -> SdkError<TransactWriteItemsError, ()> {
        let reasons = codes.iter().map(|code| {
            let reason = CancellationReason::builder().code(*code);
            let reason = if *code == CONDITION_FAILED {
                reason.item("pk", AttributeValue::S(format!("KEY#{code}")))
            } else {
                reason
            };
            reason.build()
        });
        let exception =
            TransactionCanceledException::builder().set_cancellation_reasons(Some(reasons.collect())).build();
        SdkError::service_error(TransactWriteItemsError::TransactionCanceledException(exception), ())
    }

    #[test]
    fn names_the_item_whose_condition_failed_and_hands_it_back() {
        let cancellation = Cancellation::of(&cancelled(&["None", "ConditionalCheckFailed", "None"])).unwrap();
        assert!(!cancellation.condition_failed(0));
        assert!(cancellation.condition_failed(1));
        assert!(!cancellation.condition_failed(2));
        assert!(!cancellation.condition_failed(3), "past the last item");
        assert!(cancellation.old_item(1).is_some_and(|item| item.contains_key("pk")));
        assert!(cancellation.old_item(0).is_none());
        assert!(!cancellation.only_conflicted());
    }

    #[test]
    fn a_conflict_alone_may_be_retried_but_not_with_a_failed_condition() {
        assert!(Cancellation::of(&cancelled(&["None", "TransactionConflict"])).unwrap().only_conflicted());
        assert!(
            !Cancellation::of(&cancelled(&["ConditionalCheckFailed", "TransactionConflict"]))
                .unwrap()
                .only_conflicted()
        );
    }

    #[test]
    fn other_failures_are_not_cancellations() {
        let timed_out: SdkError<TransactWriteItemsError, ()> = SdkError::timeout_error("attempt timed out");
        assert!(Cancellation::of(&timed_out).is_none());
    }
}
