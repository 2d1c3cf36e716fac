//! The local server's data directory: whatever secret the environment does not give is
//! generated on first start and kept here, so restarts keep keys verifiable and tokens valid.

use std::fs;
use std::io::IsTerminal;
use std::path::PathBuf;

use keygate_core::config;
use keygate_core::signature::Credential;
use keygate_core::tokens::SigningAlgorithm;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::private;

pub const DEFAULT: &str = ".keygate";
const CREDENTIALS_FILE: &str = "credentials.json";
const SIGNING_KEY_FILE: &str = "signing-key.pem";
const PEPPER_FILE: &str = "pepper";
pub const LOCAL_DOMAIN: &str = "local";

pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Fills in the environment from the directory, creating what is missing, and returns a
    /// configuration lookup. Tells where a credential it creates is kept; only on a terminal does
    /// it print the credential itself, which is the user's own secret: elsewhere stdout is where
    /// the logs go.
    pub fn prepare(&self) -> Result<impl Fn(&str) -> Option<String> + use<>, String> {
        private::dir(&self.path)?;
        let env = |name: &str| std::env::var(name).ok();

        let credentials = match env(config::ADMIN_CREDENTIALS) {
            Some(json) => json,
            None => self.read_or_create(CREDENTIALS_FILE, || {
                let text = new_credentials(LOCAL_DOMAIN);
                self.announce(&text);
                text
            })?,
        };
        if lists_none(&credentials) {
            return Err(match env(config::ADMIN_CREDENTIALS) {
                Some(_) => format!(
                    "{} lists no admin credential: no one could administer this server. Set it to a \
                     list with one (`keygate secrets init` makes one), or unset it to use {}",
                    config::ADMIN_CREDENTIALS,
                    self.path.join(CREDENTIALS_FILE).display()
                ),
                None => format!(
                    "{} lists no admin credential: no one could administer this server. Remove the \
                     file and a new credential is made at the next start",
                    self.path.join(CREDENTIALS_FILE).display()
                ),
            });
        }
        let pepper = match env(config::PEPPER) {
            Some(pepper) => pepper,
            None => self.read_or_create(PEPPER_FILE, new_pepper)?,
        };
        let signing_key = match env(config::SIGNING_KEY) {
            Some(pem) => pem,
            None => {
                let algorithm = env(config::JWT_ALG)
                    .and_then(|name| SigningAlgorithm::parse(&name))
                    .unwrap_or(SigningAlgorithm::EdDsa);
                let file = format!("{}-{SIGNING_KEY_FILE}", algorithm_file_prefix(algorithm));
                self.read_or_create(&file, || algorithm.generate_pem())?
            }
        };
        Ok(move |name: &str| match name {
            config::ADMIN_CREDENTIALS => Some(credentials.clone()),
            config::PEPPER => Some(pepper.clone()),
            config::SIGNING_KEY => Some(signing_key.clone()),
            other => std::env::var(other).ok(),
        })
    }

    fn announce(&self, credentials: &str) {
        let path = self.path.join(CREDENTIALS_FILE);
        let created = format!(
            "keygate: created an admin credential for domain \"{LOCAL_DOMAIN}\" in {}",
            path.display()
        );
        if std::io::stdout().is_terminal() {
            println!("{created}:\n{credentials}");
        } else {
            println!("{created}; `keygate credentials show --data-dir {}` displays it", self.path.display());
        }
    }

    /// The first credential of the directory, for the CLI.
    pub fn credential(&self) -> Result<Credential, String> {
        let path = self.path.join(CREDENTIALS_FILE);
        self.credentials()?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{} holds no credential", path.display()))
    }

    /// Every credential the directory keeps.
    pub fn credentials(&self) -> Result<Vec<Credential>, String> {
        let path = self.path.join(CREDENTIALS_FILE);
        private::check(&self.path)?;
        private::check(&path)?;
        let text = fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (start `keygate serve` once, or set KEYGATE_ACCESS_KEY and KEYGATE_SECRET_KEY)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn read_or_create(&self, name: &str, create: impl FnOnce() -> String) -> Result<String, String> {
        let path = self.path.join(name);
        private::check(&path)?;
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = create();
                private::write_new(&path, &text)?;
                Ok(text)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// Whether `credentials` is a valid list with nothing in it: a server would start with it, and no
/// one could ever administer that server. Any other fault is reported, with its cause, when the
/// configuration is read.
fn lists_none(credentials: &str) -> bool {
    config::admin_credentials(credentials).is_ok_and(|list| list.is_empty())
}

/// `keygate credentials show`: each credential of the directory, for the user to copy.
pub fn show(path: PathBuf) -> Result<(), String> {
    let shown: Vec<String> = DataDir::new(path)
        .credentials()?
        .iter()
        .map(|credential| {
            format!(
                "access_key  {}\nsecret_key  {}\ndomain_id   {}\n",
                credential.access_key, credential.secret_key, credential.domain_id
            )
        })
        .collect();
    print!("{}", shown.join("\n"));
    Ok(())
}

fn algorithm_file_prefix(algorithm: SigningAlgorithm) -> &'static str {
    match algorithm {
        SigningAlgorithm::EdDsa => "eddsa",
        SigningAlgorithm::Es256 => "es256",
        SigningAlgorithm::Rs256 => "rs256",
    }
}

/// A new admin credential list, for `domain`, as `KEYGATE_ADMIN_CREDENTIALS` takes it.
pub fn new_credentials(domain: &str) -> String {
    let credential = serde_json::json!([{
        "access_key": format!("AK{}", random_text(18).to_uppercase()),
        "secret_key": random_text(40),
        "domain_id": domain,
    }]);
    serde_json::to_string_pretty(&credential).expect("serialisable")
}

pub fn new_pepper() -> String {
    random_text(48)
}

fn random_text(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}
