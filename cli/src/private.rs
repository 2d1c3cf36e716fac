//! Files only their owner can read. keygate keeps secrets and key hashes in its data directory, so
//! it makes that directory 0700 and every file in it 0600, and, as OpenSSH does with its keys,
//! trusts none that another user owns or could have written: such a file may hold an attacker's
//! credential or pepper.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `path` (0700) if missing, else checks it as [`check`] does.
pub fn dir(path: &Path) -> Result<(), String> {
    fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path).map_err(|e| at(path, e))?;
    check(path)
}

/// Creates the directory `path`, 0700; it must not exist yet.
pub fn new_dir(path: &Path) -> Result<(), String> {
    fs::DirBuilder::new().mode(DIR_MODE).create(path).map_err(|e| at(path, e))
}

/// Refuses `path` if another user owns it or group or others may write to it; otherwise takes
/// away any access of group and others (what older versions left: a 0755 directory, a 0644
/// database). A missing file passes: it is created private.
pub fn check(path: &Path) -> Result<(), String> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(at(path, e)),
    };
    let (owner, me) = (metadata.uid(), rustix::process::geteuid().as_raw());
    if owner != me {
        return Err(format!(
            "{} belongs to user {owner}, not to you (user {me}): keygate uses only a data directory \
             and secrets of its own user. If it is yours, `chown -R {me} {0}`; if not, remove it",
            path.display()
        ));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{0} can be written by other users (mode {mode:o}): anyone could have replaced the \
             secrets in it. If what it holds is yours, `chmod -R go-rwx {0}`; if not, remove it",
            path.display()
        ));
    }
    let private = if metadata.is_dir() { DIR_MODE } else { FILE_MODE };
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(private)).map_err(|e| at(path, e))?;
    }
    Ok(())
}

/// Writes `text` to `path`, a new file readable by its owner only.
pub fn write_new(path: &Path, text: &str) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| at(path, e))
}

/// Creates `path` empty and private if it is missing: SQLite then gives its `-wal` and `-shm`
/// files the same mode.
pub fn create_empty(path: &Path) -> Result<(), String> {
    match OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(at(path, e)),
        _ => Ok(()),
    }
}

/// `path` emptied for writing, readable by its owner only even if it existed (the mode given
/// at opening applies only to a file it creates).
pub fn truncated(path: &Path) -> Result<File, String> {
    // Made private before it is emptied and written: nothing it will hold is readable by others.
    let file = OpenOptions::new().write(true).create(true).mode(FILE_MODE).open(path);
    file.and_then(|file| {
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        file.set_len(0)?;
        Ok(file)
    })
    .map_err(|e| at(path, e))
}

fn at(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}
