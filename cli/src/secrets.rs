//! `keygate secrets`: new secret values for a deployment, made as `keygate serve` makes its own,
//! for the deploy section's commands to store in Secrets Manager.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keygate_core::tokens::{PublicKeys, SigningAlgorithm};

use crate::data_dir::{new_credentials, new_pepper};
use crate::private;

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Write a new admin credential, pepper and signing key into a new directory, readable by
    /// you only, and print the commands that store them in Secrets Manager.
    Init(InitArgs),
    /// Make a new token-signing key (PKCS#8 PEM): the next value of the signing-key secret.
    SigningKey(SigningKeyArgs),
    /// Print the public keys to publish, as the stack's SigningPublicKeys takes them (a JWKS in
    /// base64url), from private keys (PEM files: their public halves) and JWKS files (their
    /// keys, as JSON or base64url), in the order given.
    PublicKeys(PublicKeysArgs),
}

#[derive(Args)]
pub struct SigningKeyArgs {
    /// Write it to this new file, readable by you only, instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    algorithm: AlgorithmArg,
}

#[derive(Args)]
pub struct PublicKeysArgs {
    /// PEM private keys and JWKS files (a saved /.well-known/jwks.json, say).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the JWKS as JSON instead.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InitArgs {
    /// The directory to create.
    #[arg(long, default_value = "keygate-secrets")]
    out: PathBuf,
    /// The domain the admin credential manages.
    #[arg(long, default_value = "default")]
    domain: String,
    #[command(flatten)]
    algorithm: AlgorithmArg,
}

#[derive(Args)]
pub struct AlgorithmArg {
    /// EdDSA, ES256 or RS256 (RSA 2048), as the stack's JwtAlgorithm parameter says.
    #[arg(long = "alg", default_value = "EdDSA", value_parser = parse_algorithm)]
    algorithm: SigningAlgorithm,
}

fn parse_algorithm(name: &str) -> Result<SigningAlgorithm, String> {
    SigningAlgorithm::parse(name).ok_or_else(|| format!("{name}: expected EdDSA, ES256 or RS256"))
}

/// The files `init` writes, with the secret each becomes.
const FILES: [(&str, &str); 3] = [
    ("admin-credentials.json", "keygate/admin-credentials"),
    ("pepper", "keygate/pepper"),
    ("signing-key.pem", "keygate/signing-key"),
];
/// The public keys `init` writes beside them: no secret, the stack's SigningPublicKeys.
const PUBLIC_KEYS_FILE: &str = "signing-public-keys";

pub fn run(command: SecretsCommand) -> Result<(), String> {
    match command {
        SecretsCommand::Init(args) => init(args),
        SecretsCommand::SigningKey(SigningKeyArgs { out, algorithm }) => {
            let pem = algorithm.algorithm.generate_pem();
            match out {
                Some(path) => private::write_new(&path, &pem),
                None => {
                    print!("{pem}");
                    Ok(())
                }
            }
        }
        SecretsCommand::PublicKeys(PublicKeysArgs { files, json }) => {
            let texts = files
                .iter()
                .map(|path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display())))
                .collect::<Result<Vec<_>, _>>()?;
            let named = files.iter().map(|path| path.display().to_string()).zip(texts);
            let keys = public_keys(named)?;
            println!("{}", if json { keys.document().to_owned() } else { keys.encoded() });
            Ok(())
        }
    }
}

fn init(args: InitArgs) -> Result<(), String> {
    let out = &args.out;
    private::new_dir(out).map_err(|e| format!("{e} (it must not exist yet)"))?;
    let signing_key = args.algorithm.algorithm.generate_pem();
    let values = [new_credentials(&args.domain), new_pepper(), signing_key.clone()];
    for ((file, _), value) in FILES.iter().zip(&values) {
        private::write_new(&out.join(file), value)?;
    }
    let published = public_keys([("the new signing key".to_owned(), signing_key)])?;
    let path = out.join(PUBLIC_KEYS_FILE);
    std::fs::write(&path, format!("{}\n", published.encoded()))
        .map_err(|e| format!("{}: {e}", path.display()))?;

    println!("keygate: new secrets in {}; store them with:", out.display());
    for (file, name) in FILES {
        println!(
            "aws secretsmanager create-secret --name {name} --secret-string file://{}",
            out.join(file).display()
        );
    }
    println!("and deploy with SigningPublicKeys=$(cat {}), the public keys", path.display());
    Ok(())
}

/// The keys in `sources` (name, text): a PEM private key gives its public half, a JWKS its keys;
/// a key given twice is listed once.
fn public_keys(sources: impl IntoIterator<Item = (String, String)>) -> Result<PublicKeys, String> {
    let mut gathered: Option<PublicKeys> = None;
    for (name, text) in sources {
        let keys = PublicKeys::read(&text).map_err(|e| format!("{name}: {e}"))?;
        gathered = Some(match gathered {
            Some(before) => before.and(&keys)?,
            None => keys,
        });
    }
    gathered.ok_or_else(|| "no key given".into())
}
