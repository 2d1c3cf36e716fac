//! `keygate export` and `keygate import`: every stored item as JSON lines, straight from the store
//! (never through the API, which does not show hashes). Key values are never stored, so never
//! exported; the keys keep working wherever the same pepper is configured.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use keygate_core::config;
use keygate_core::service::check_stored_key;
use keygate_core::signature::Credential;
use keygate_core::store::Record;

use crate::data_dir::{self, DataDir};
use crate::private;
use crate::store_choice::{Existing, StoreArgs};

#[derive(Args)]
pub struct ExportArgs {
    /// Write here instead of to standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    from: Source,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Read from here instead of from standard input.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Import into a store that already holds items, adding only what it lacks.
    #[arg(long)]
    merge: bool,
    /// Also import the keys of this domain, which no admin credential here manages (repeatable).
    /// By default a key is imported only into a domain that KEYGATE_ADMIN_CREDENTIALS, or the
    /// data directory's credentials.json, names: any other would be a key no admin can see.
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    #[command(flatten)]
    into: Source,
}

/// The store to read or fill, as `keygate serve` chooses it.
#[derive(Args)]
struct Source {
    /// The data directory whose `keygate.db` to use.
    #[arg(long, env = "KEYGATE_DATA_DIR", default_value = data_dir::DEFAULT)]
    data_dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn export(args: ExportArgs) -> Result<(), String> {
    let store = args.from.store.open_persistent(&args.from.data_dir, Existing::Required).await?;
    let records = store.export().await.map_err(|e| e.to_string())?;
    let sink: Box<dyn Write> = match &args.output {
        // It holds key hashes and replay nonces.
        Some(path) => Box::new(private::truncated(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(sink);
    for record in &records {
        serde_json::to_writer(&mut sink, record).map_err(|e| e.to_string())?;
        sink.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    sink.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "keygate: exported {} records from {}",
        records.len(),
        args.from.store.describe(&args.from.data_dir)
    );
    Ok(())
}

pub async fn import(args: ImportArgs) -> Result<(), String> {
    let source: Box<dyn BufRead> = match &args.input {
        Some(path) => {
            Box::new(BufReader::new(File::open(path).map_err(|e| format!("{}: {e}", path.display()))?))
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let mut domains = administered_domains(&args.into.data_dir);
    domains.extend(args.domains.iter().cloned());
    // Every line is read and checked before anything is written: a bad file changes nothing.
    let mut records = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", index + 1))?;
        check(&record, &domains).map_err(|e| format!("line {}: {e}", index + 1))?;
        records.push(record);
    }
    let into = args.into.store.describe(&args.into.data_dir);
    let store = args.into.store.open_persistent(&args.into.data_dir, Existing::Create).await?;
    // A key deleted since the backup would come back: into a store in use, only on purpose.
    if !args.merge && !store.is_empty().await.map_err(|e| e.to_string())? {
        return Err(format!(
            "{into} is not empty: --merge adds what is missing (keys deleted since the backup come back), \
             never overwriting"
        ));
    }
    let imported = store.import(&records).await.map_err(|e| match args.into.store.is_table() {
        true => format!(
            "{e}; the records put so far stay: each is put only where none is, so the same command \
             again with --merge finishes the import exactly"
        ),
        false => format!("{e}; nothing of this import was kept: the same command can run again"),
    })?;
    eprintln!(
        "keygate: imported {} records, kept {} already there (an import never overwrites), into {into}",
        imported.added, imported.kept
    );
    Ok(())
}

/// A record is imported only if the API could have written it: a key passes the rules a created
/// key passes, in a domain an admin here manages.
fn check(record: &Record, domains: &BTreeSet<String>) -> Result<(), String> {
    let Record::Key(key) = record else { return Ok(()) };
    let refused = |reason: String| format!("key {}: {reason}", key.api_key_id);
    check_stored_key(key).map_err(|e| refused(e.to_string()))?;
    if !domains.contains(&key.domain_id) {
        return Err(refused(format!(
            "no admin credential here manages its domain; --domain {} imports it anyway",
            key.domain_id
        )));
    }
    Ok(())
}

/// The domains the admin credentials that a server started here would load manage.
fn administered_domains(data_dir: &Path) -> BTreeSet<String> {
    let credentials = match std::env::var(config::ADMIN_CREDENTIALS) {
        Ok(json) => serde_json::from_str::<Vec<Credential>>(&json).unwrap_or_default(),
        Err(_) => DataDir::new(data_dir.to_owned()).credentials().unwrap_or_default(),
    };
    credentials.into_iter().map(|credential| credential.domain_id).collect()
}
