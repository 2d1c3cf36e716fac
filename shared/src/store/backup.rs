//! What `keygate export` writes and `keygate import` reads, one JSON object per line: every stored
//! item, so a backup is one command and an install can move between the embedded store and
//! DynamoDB. Keys travel as they are stored, with their values' peppered hashes and never a value,
//! so the pepper must travel with them (outside the file) for the keys to keep working.

use serde::{Deserialize, Serialize};

use crate::model::{ApiKey, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    Key(Box<ApiKey>),
    /// A refreshed token's single-use marker.
    RefreshMarker {
        jti: String,
        lapses_at: Timestamp,
    },
    /// A token family revoked after a refresh was reused.
    RevokedFamily {
        family: String,
        lapses_at: Timestamp,
    },
    /// An accepted admin signature, refused as a replay until it lapses.
    ReplayNonce {
        id: String,
        request: String,
        lapses_at: Timestamp,
    },
}

impl Record {
    /// Orders records as every store exports them, so two exports can be compared.
    pub fn sort(records: &mut [Record]) {
        records.sort_by_cached_key(|record| match record {
            Record::Key(key) => (0, key.api_key_id.to_string()),
            Record::RefreshMarker { jti, .. } => (1, jti.clone()),
            Record::RevokedFamily { family, .. } => (2, family.clone()),
            Record::ReplayNonce { id, .. } => (3, id.clone()),
        });
    }
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Records put into the store.
    pub added: usize,
    /// Records whose item was there already, left as it is: an import never overwrites, so an old
    /// backup cannot give a key back the quota it has used since.
    pub kept: usize,
}

impl Imported {
    /// Counts one record: added, or kept as it was.
    pub fn count(&mut self, added: bool) {
        match added {
            true => self.added += 1,
            false => self.kept += 1,
        }
    }
}
