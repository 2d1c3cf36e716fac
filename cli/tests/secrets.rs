//! `keygate secrets`: the values it makes are the ones a deployment accepts.

mod support;

use std::process::Command;

use keygate_core::config::{self, Config, PEPPER, SIGNING_KEY, Uses};
use support::BINARY;

#[test]
fn init_writes_private_secrets_a_deployment_accepts_and_prints_how_to_store_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secrets");
    let output = Command::new(BINARY)
        .args(["secrets", "init", "--domain", "acme", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("aws secretsmanager create-secret --name keygate/pepper --secret-string file://"),
        "{printed}"
    );

    let read = |file: &str| std::fs::read_to_string(out.join(file)).unwrap();
    let credentials =
        config::admin_credentials(&read("admin-credentials.json")).expect("a valid credential list");
    assert!(!credentials.is_empty());
    assert!(read("admin-credentials.json").contains("\"domain_id\": \"acme\""));
    let (pepper, pem) = (read("pepper"), read("signing-key.pem"));
    let lookup = |name: &str| match name {
        PEPPER => Some(pepper.clone()),
        SIGNING_KEY => Some(pem.clone()),
        _ => None,
    };
    Config::for_uses(lookup, Uses::PEPPER_AND_SIGNING_KEY).expect("the pepper and the key are accepted");
    #[cfg(unix)]
    for file in ["admin-credentials.json", "pepper", "signing-key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{file} is readable by others");
    }

    let again = Command::new(BINARY).args(["secrets", "init", "--out"]).arg(&out).output().unwrap();
    assert!(!again.status.success(), "an existing directory is never overwritten");
    assert_eq!(read("signing-key.pem"), pem);
}

#[test]
fn signing_key_prints_a_new_key_of_the_algorithm_asked() {
    let output = Command::new(BINARY).args(["secrets", "signing-key", "--alg", "ES256"]).output().unwrap();
    assert!(output.status.success());
    let pem = String::from_utf8(output.stdout).unwrap();
    let lookup = |name: &str| match name {
        SIGNING_KEY => Some(pem.clone()),
        config::JWT_ALG => Some("ES256".into()),
        _ => None,
    };
    Config::for_uses(lookup, Uses::SIGNING_KEY).expect("an ES256 key");
    let refused = Command::new(BINARY).args(["secrets", "signing-key", "--alg", "HS256"]).output().unwrap();
    assert!(!refused.status.success());
}
