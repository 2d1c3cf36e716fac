//! `keygate secrets`: new secret values for a deployment, made as `keygate serve` makes its own,
//! for the deploy section's commands to store in Secrets Manager.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use keygate_core::tokens::SigningAlgorithm;

use crate::data_dir::{new_credentials, new_pepper, write_private};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Write a new admin credential, pepper and signing key into a new directory, readable by
    /// you only, and print the commands that store them in Secrets Manager.
    Init(InitArgs),
    /// Print a new token-signing key (PKCS#8 PEM): the next value of the signing-key secret.
    SigningKey(AlgorithmArg),
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

pub fn run(command: SecretsCommand) -> Result<(), String> {
    match command {
        SecretsCommand::SigningKey(AlgorithmArg { algorithm }) => {
            print!("{}", algorithm.generate_pem());
            Ok(())
        }
        SecretsCommand::Init(args) => init(args),
    }
}

fn init(args: InitArgs) -> Result<(), String> {
    let out = &args.out;
    std::fs::create_dir(out).map_err(|e| format!("{}: {e} (it must not exist yet)", out.display()))?;
    let values = [new_credentials(&args.domain), new_pepper(), args.algorithm.algorithm.generate_pem()];
    for ((file, _), value) in FILES.iter().zip(&values) {
        let path = out.join(file);
        write_private(&path, value).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("keygate: new secrets in {}; store them with:", out.display());
    for (file, name) in FILES {
        println!(
            "aws secretsmanager create-secret --name {name} --secret-string file://{}",
            out.join(file).display()
        );
    }
    Ok(())
}
