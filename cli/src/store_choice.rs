//! Which store a command works on: the embedded SQLite file in the data directory (the default),
//! memory only, or a DynamoDB table.

use std::path::Path;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use keygate_core::store::{DynamoStore, MemoryStore, SqliteStore, Store};

use crate::private;

/// The database file of the embedded store, in the data directory.
pub const DATABASE_FILE: &str = "keygate.db";

#[derive(Args)]
pub struct StoreArgs {
    /// The embedded store: `sqlite` (the default) keeps keys, quotas, refresh markers and replay
    /// nonces in `<data-dir>/keygate.db` across restarts; `memory` forgets them when the process
    /// ends. Given explicitly, it wins over a table named in the environment.
    #[arg(long, value_enum)]
    store: Option<Embedded>,
    /// Keep keys in this DynamoDB table (created if missing) instead of the embedded store.
    #[arg(long, env = "KEYGATE_TABLE_NAME")]
    table: Option<String>,
    /// A DynamoDB-compatible endpoint (DynamoDB Local, an emulator); default: AWS's own.
    #[arg(long, env = "KEYGATE_DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Embedded {
    Sqlite,
    Memory,
}

/// The store the flags choose.
enum Choice<'a> {
    Table(&'a str),
    Sqlite,
    Memory,
}

/// Whether a command may create the embedded database, or needs one to be there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Create,
    Required,
}

impl StoreArgs {
    fn choice(&self) -> Choice<'_> {
        match (self.store, &self.table) {
            (Some(Embedded::Memory), _) => Choice::Memory,
            (Some(Embedded::Sqlite), _) | (None, None) => Choice::Sqlite,
            (None, Some(table)) => Choice::Table(table),
        }
    }

    /// Whether the store is a DynamoDB table (whose import is one put per record, not one
    /// transaction).
    pub fn is_table(&self) -> bool {
        matches!(self.choice(), Choice::Table(_))
    }

    /// What a command works on, in words, for its output.
    pub fn describe(&self, data_dir: &Path) -> String {
        match self.choice() {
            Choice::Table(table) => match &self.dynamodb_endpoint {
                Some(endpoint) => format!("the DynamoDB table {table} at {endpoint}"),
                None => format!("the DynamoDB table {table}"),
            },
            Choice::Sqlite => data_dir.join(DATABASE_FILE).display().to_string(),
            Choice::Memory => "memory".into(),
        }
    }

    /// The chosen store, if it outlives this process: what export and import work on.
    pub async fn open_persistent(
        &self,
        data_dir: &Path,
        existing: Existing,
    ) -> Result<Arc<dyn Store>, String> {
        match self.choice() {
            Choice::Memory => {
                Err("the memory store lives only inside its server: choose sqlite or a --table".into())
            }
            Choice::Sqlite if existing == Existing::Required && !data_dir.join(DATABASE_FILE).exists() => {
                Err(format!(
                    "{}: no database there (is --data-dir right?)",
                    data_dir.join(DATABASE_FILE).display()
                ))
            }
            _ => self.open(data_dir).await,
        }
    }

    pub async fn open(&self, data_dir: &Path) -> Result<Arc<dyn Store>, String> {
        match self.choice() {
            Choice::Table(table) => {
                let store = DynamoStore::connect(self.dynamodb_endpoint.as_deref(), table).await;
                store.create_table_if_missing().await.map_err(|e| e.to_string())?;
                Ok(Arc::new(store))
            }
            Choice::Memory => Ok(Arc::new(MemoryStore::new())),
            Choice::Sqlite => {
                private::dir(data_dir)?;
                let path = data_dir.join(DATABASE_FILE);
                // SQLite gives the files it makes beside the database the database's own mode.
                for companion in ["", "-wal", "-shm"] {
                    private::check(&data_dir.join(format!("{DATABASE_FILE}{companion}")))?;
                }
                private::create_empty(&path)?;
                let store = SqliteStore::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(Arc::new(store))
            }
        }
    }
}
