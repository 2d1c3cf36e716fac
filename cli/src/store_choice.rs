//! Which store a command works on: the embedded SQLite file in the data directory (the default),
//! memory only, or a DynamoDB table.

use std::path::Path;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use keygate_core::store::{DynamoStore, MemoryStore, SqliteStore, Store};

/// The database file of the embedded store, in the data directory.
pub const DATABASE_FILE: &str = "keygate.db";

#[derive(Args)]
pub struct StoreArgs {
    /// The embedded store: `sqlite` keeps keys, quotas, refresh markers and replay nonces in
    /// `<data-dir>/keygate.db` across restarts; `memory` forgets them when the process ends.
    #[arg(long, value_enum, default_value_t = Embedded::Sqlite, conflicts_with = "table")]
    store: Embedded,
    /// Keep keys in this DynamoDB table (created if missing) instead of the embedded store.
    #[arg(long, env = "KEYGATE_TABLE_NAME")]
    table: Option<String>,
    /// A DynamoDB-compatible endpoint (DynamoDB Local, an emulator); default: AWS's own.
    #[arg(long, env = "KEYGATE_DYNAMODB_ENDPOINT", requires = "table")]
    dynamodb_endpoint: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Embedded {
    Sqlite,
    Memory,
}

impl StoreArgs {
    /// The chosen store, if it outlives this process: what export and import work on.
    pub async fn open_persistent(&self, data_dir: &Path) -> Result<Arc<dyn Store>, String> {
        if self.table.is_none() && self.store == Embedded::Memory {
            return Err("the memory store lives only inside its server: choose sqlite or a --table".into());
        }
        self.open(data_dir).await
    }

    pub async fn open(&self, data_dir: &Path) -> Result<Arc<dyn Store>, String> {
        if let Some(table) = &self.table {
            let store = DynamoStore::connect(self.dynamodb_endpoint.as_deref(), table.as_str()).await;
            store.create_table_if_missing().await.map_err(|e| e.to_string())?;
            return Ok(Arc::new(store));
        }
        match self.store {
            Embedded::Memory => Ok(Arc::new(MemoryStore::new())),
            Embedded::Sqlite => {
                std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
                let path = data_dir.join(DATABASE_FILE);
                let store = SqliteStore::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(Arc::new(store))
            }
        }
    }
}
