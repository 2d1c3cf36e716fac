//! The generated admin credential reaches the user without reaching the logs: printed only on a
//! terminal, shown on demand by `keygate credentials show`; and a server no one could administer
//! does not start.

mod support;

use std::process::Command;

use keygate_core::signature::Credential;
use support::{BINARY, start, start_refused};

fn stored(dir: &std::path::Path) -> Credential {
    let text = std::fs::read_to_string(dir.join("credentials.json")).unwrap();
    serde_json::from_str::<Vec<Credential>>(&text).unwrap().remove(0)
}

#[test]
fn without_a_terminal_a_first_start_prints_where_the_credential_is_and_not_its_secret() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = start(data_dir.path());
    let printed = server.printed.join("\n");
    let credential = stored(data_dir.path());
    assert!(!printed.contains(&credential.secret_key), "{printed}");
    assert!(printed.contains(&data_dir.path().join("credentials.json").display().to_string()), "{printed}");
    assert!(printed.contains("keygate credentials show"), "{printed}");
    let logs = server.stop();
    assert!(logs.iter().all(|line| !line.contains(&credential.secret_key)), "{logs:?}");
}

#[test]
fn credentials_show_prints_the_access_key_secret_and_domain() {
    let data_dir = tempfile::tempdir().unwrap();
    drop(start(data_dir.path()));
    let output = Command::new(BINARY)
        .args(["credentials", "show", "--data-dir"])
        .arg(data_dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let credential = stored(data_dir.path());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "access_key  {}\nsecret_key  {}\ndomain_id   local\n",
            credential.access_key, credential.secret_key
        )
    );
}

#[test]
fn on_a_terminal_a_first_start_prints_the_credential() {
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: no `script` to give the server a terminal");
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    // `script` runs the server on a pseudo-terminal; a data directory that cannot be served
    // (its database is a directory) stops it once the credential is made.
    std::fs::create_dir(data_dir.path().join("keygate.db")).unwrap();
    let serve = format!("'{BINARY}' serve --port 0 --data-dir '{}'", data_dir.path().display());
    let output = Command::new("script").args(["-qec", &serve, "/dev/null"]).output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains(&stored(data_dir.path()).secret_key), "{printed}");
}

#[test]
fn an_empty_credential_list_is_refused_at_start() {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(data_dir.path().join("credentials.json"), "[]").unwrap();
    let said = start_refused(data_dir.path(), &[]);
    assert!(said.contains("credentials.json lists no admin credential"), "{said}");

    let data_dir = tempfile::tempdir().unwrap();
    let said = start_refused(data_dir.path(), &[("KEYGATE_ADMIN_CREDENTIALS", " [ ] ")]);
    assert!(said.contains("KEYGATE_ADMIN_CREDENTIALS lists no admin credential"), "{said}");
}
