//! `keygate secrets`: the values it makes are the ones a deployment accepts.

mod support;

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keygate_core::config::{self, Config, PEPPER, PUBLIC_KEYS, SIGNING_KEY, Uses};
use serde_json::Value;
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
    let (pepper, pem, published) = (read("pepper"), read("signing-key.pem"), read("signing-public-keys"));
    let lookup = |name: &str| match name {
        PEPPER => Some(pepper.clone()),
        SIGNING_KEY => Some(pem.clone()),
        PUBLIC_KEYS => Some(published.clone()),
        _ => None,
    };
    // As auth-token is configured in AWS: it checks that its key is among the published ones.
    Config::for_uses(lookup, Uses::PEPPER_AND_SIGNING_KEY).expect("the pepper and the keys are accepted");
    let jwks: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(published.trim()).unwrap()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0].get("d"), None, "no private parameter: {jwks}");
    assert!(printed.contains("SigningPublicKeys"), "{printed}");
    #[cfg(unix)]
    for file in ["admin-credentials.json", "pepper", "signing-key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is readable by others");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the directory is open to others");
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

fn secrets(args: &[&str], files: &[&std::path::Path]) -> std::process::Output {
    Command::new(BINARY).arg("secrets").args(args).args(files).output().unwrap()
}

/// A rotation's public keys: the new key's and the ones published now, each once, in that order,
/// as one base64url line that a stack parameter takes (through a shell and `sam deploy
/// --parameter-overrides`, which splits on spaces and unquotes), or as JSON with `--json`.
#[test]
fn public_keys_gathers_new_and_published_keys_for_the_stack_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
    for path in [&old, &new] {
        let output = secrets(&["signing-key", "--out"], &[path]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(output.stdout.is_empty(), "written, not printed");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&new).unwrap().permissions().mode() & 0o077, 0);
    }
    // As saved from the API's /.well-known/jwks.json.
    let published_now = dir.path().join("jwks.json");
    let output = secrets(&["public-keys", "--json"], &[&old]);
    assert!(output.status.success());
    std::fs::write(&published_now, &output.stdout).unwrap();

    let output = secrets(&["public-keys"], &[&new, &published_now, &old]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap().trim_end().to_owned();
    assert!(printed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{printed}");
    let kid_of = |path: &std::path::Path| {
        let jwks: Value =
            serde_json::from_slice(&secrets(&["public-keys", "--json"], &[path]).stdout).unwrap();
        jwks["keys"][0]["kid"].clone()
    };
    let jwks: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&printed).unwrap()).unwrap();
    let kids: Vec<Value> = jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].clone()).collect();
    assert_eq!(kids, [kid_of(&new), kid_of(&old)]);

    // The functions take it: the new key signs, and both verify.
    let pem = std::fs::read_to_string(&new).unwrap();
    let lookup = |name: &str| match name {
        SIGNING_KEY => Some(pem.clone()),
        PUBLIC_KEYS => Some(printed.clone()),
        _ => None,
    };
    let config = Config::for_uses(lookup, Uses::SIGNING_KEY).unwrap();
    assert_eq!(config.tokens.unwrap().public_keys().jwks().keys.len(), 2);

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a key").unwrap();
    let refused = secrets(&["public-keys"], &[&new, &junk]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("junk: not a PKCS#8 PEM private key, and not a JWKS"), "{message}");
}
