//! Backups on DynamoDB: `keygate export` scans the table, `keygate import` puts each record where
//! no item is.

use super::DynamoStore;
use super::client::unavailable;
use super::item::{PK, record_from_item, record_to_item};
use crate::store::{Imported, Record, StoreError};

impl DynamoStore {
    /// Every item, sorted as every store exports them.
    pub(super) async fn scan_records(&self) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("export"))?;
            for item in page.items() {
                records.push(record_from_item(item)?);
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        Record::sort(&mut records);
        Ok(records)
    }

    /// Whether the table holds no item at all.
    pub(super) async fn holds_nothing(&self) -> Result<bool, StoreError> {
        let page = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("is empty"))?;
        Ok(page.items().is_empty() && page.last_evaluated_key().is_none())
    }

    /// Puts each record where no item is, keeping any there: one conditional put each, so an
    /// import stopped midway is finished exactly by running it again.
    pub(super) async fn put_records(&self, records: &[Record]) -> Result<Imported, StoreError> {
        let mut imported = Imported::default();
        for record in records {
            let outcome = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record_to_item(record)))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match outcome {
                Ok(_) => imported.count(true),
                Err(err)
                    if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    imported.count(false)
                }
                Err(err) => return Err(unavailable("import")(err)),
            }
        }
        Ok(imported)
    }
}
