//! The data directory and what keygate writes are readable by their owner only, and keygate
//! refuses a data directory or secret that another user owns or could have written, as OpenSSH
//! does with its keys.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use support::{BINARY, cli, start_refused, start_with};

/// A user that is not root, for the cases only root can set up.
const NOBODY: u32 = 65534;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The directory 0700 and every file in it 0600.
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

fn is_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        println!("skipped: only root can give a file to another user");
    }
    root
}

/// A data directory of a first start, the server stopped.
fn started_once() -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    drop(start_with(&parent.path().join("data"), &[]));
    parent
}

#[test]
fn serve_keeps_its_data_directory_and_every_file_in_it_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let server = start_with(&dir, &[]);
    cli(&server, &dir, &[]);
    for file in ["keygate.db", "keygate.db-wal", "keygate.db-shm", "credentials.json", "pepper"] {
        assert!(dir.join(file).exists(), "{file}");
    }
    assert_private(&dir);
}

#[test]
fn a_data_directory_an_older_version_left_readable_is_made_private() {
    let parent = started_once();
    let dir = parent.path().join("data");
    set_mode(&dir, 0o755);
    for entry in std::fs::read_dir(&dir).unwrap() {
        set_mode(&entry.unwrap().path(), 0o644);
    }
    let server = start_with(&dir, &[]);
    cli(&server, &dir, &[]);
    assert_private(&dir);
}

#[test]
fn export_makes_an_existing_file_private_before_writing() {
    let parent = tempfile::tempdir().unwrap();
    let server = start_with(&parent.path().join("data"), &[]);
    cli(&server, &parent.path().join("data"), &[]);
    drop(server);
    let backup = parent.path().join("backup.jsonl");
    std::fs::write(&backup, "an older backup").unwrap();
    set_mode(&backup, 0o644);
    let output = Command::new(BINARY)
        .args(["export", "--output"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(parent.path().join("data"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(mode(&backup), 0o600);
    let written = std::fs::read_to_string(&backup).unwrap();
    assert!(written.starts_with("{\"kind\":\"key\""), "{written}");
}

#[test]
fn a_data_directory_others_can_write_is_refused_with_how_to_fix_it() {
    let parent = started_once();
    let dir = parent.path().join("data");
    set_mode(&dir, 0o777);
    let said = start_refused(&dir, &[]);
    assert!(said.contains("can be written by other users (mode 777)"), "{said}");
    assert!(said.contains(&format!("chmod -R go-rwx {}", dir.display())), "{said}");
}

#[test]
fn a_secret_others_can_write_is_refused() {
    for file in ["credentials.json", "pepper", "eddsa-signing-key.pem", "keygate.db"] {
        let parent = started_once();
        let path = parent.path().join("data").join(file);
        set_mode(&path, 0o620);
        let said = start_refused(&parent.path().join("data"), &[]);
        assert!(said.contains(&format!("{} can be written by other users", path.display())), "{said}");
    }
}

#[test]
fn a_data_directory_or_secret_of_another_user_is_refused() {
    if !is_root() {
        return;
    }
    for file in ["", "credentials.json", "pepper"] {
        let parent = started_once();
        let path = parent.path().join("data").join(file);
        std::os::unix::fs::chown(&path, Some(NOBODY), None).unwrap();
        let said = start_refused(&parent.path().join("data"), &[]);
        let path = path.display().to_string();
        let path = path.trim_end_matches('/');
        assert!(said.contains(&format!("{path} belongs to user {NOBODY}, not to you (user 0)")), "{said}");
        assert!(said.contains("chown"), "{said}");
    }
}

#[test]
fn the_admin_cli_refuses_a_credential_another_user_owns() {
    if !is_root() {
        return;
    }
    let parent = started_once();
    let dir = parent.path().join("data");
    std::os::unix::fs::chown(dir.join("credentials.json"), Some(NOBODY), None).unwrap();
    assert_eq!(std::fs::metadata(dir.join("credentials.json")).unwrap().uid(), NOBODY);
    let output = Command::new(BINARY).args(["credentials", "show", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("belongs to user 65534"), "{said}");
}
