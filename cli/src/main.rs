//! `keygate`: the local server (`keygate serve`) and the admin CLI (`keygate key ...`).

mod admin;
mod backup;
mod data_dir;
mod private;
mod secrets;
mod serve;
mod store_choice;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "keygate", version, about = "API keys and access tokens: local server and admin CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every route on 127.0.0.1, keeping keys in `<data-dir>/keygate.db` by default.
    Serve(serve::ServeArgs),
    /// Write every stored item (keys with hashes only, markers, nonces) as JSON lines.
    Export(backup::ExportArgs),
    /// Add the items of an export to a store, keeping any already there.
    Import(backup::ImportArgs),
    /// Make new secret values for a deployment.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// The local server's admin credential.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Manage API keys through the signed admin API.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the OpenAPI 3.1 document of every route (what `serve` answers at /openapi.json).
    Openapi,
}

#[derive(Subcommand)]
enum CredentialsCommand {
    /// Print the admin credentials a data directory keeps: access key, secret key and domain.
    Show {
        /// The data directory of the local server.
        #[arg(long, env = "KEYGATE_DATA_DIR", default_value = data_dir::DEFAULT)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key; its value is printed this once.
    Create(admin::CreateArgs),
    /// Enable a key.
    Enable(admin::KeyArgs),
    /// Disable a key: the client API refuses it until it is enabled again.
    Disable(admin::KeyArgs),
    /// Delete a key.
    Delete(admin::KeyArgs),
    /// Show a key (its value masked).
    Get(admin::GetArgs),
    /// List keys, optionally with a SpaceONE Query.
    List(admin::ListArgs),
    /// Statistics over keys: a SpaceONE StatisticsQuery.
    Stat(admin::StatArgs),
    /// Replace the primary or secondary value of a key; the other keeps working.
    Rotate(admin::RotateArgs),
}

/// Where the admin CLI sends requests and which credential signs them.
#[derive(Args, Clone)]
struct Target {
    /// Base URL of a keygate API (with its stage path, if any).
    #[arg(long, env = "KEYGATE_URL", default_value = "http://127.0.0.1:3000", global = true)]
    url: String,
    /// Data directory of the local server, whose credential signs requests unless
    /// KEYGATE_ACCESS_KEY and KEYGATE_SECRET_KEY are set.
    #[arg(long, env = "KEYGATE_DATA_DIR", default_value = data_dir::DEFAULT, global = true)]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Export(args) => backup::export(args).await,
        Command::Import(args) => backup::import(args).await,
        Command::Secrets(command) => secrets::run(command),
        Command::Credentials(CredentialsCommand::Show { data_dir }) => data_dir::show(data_dir),
        Command::Openapi => {
            print!("{}", keygate_core::http::openapi::document_json());
            Ok(())
        }
        Command::Key(command) => match command {
            KeyCommand::Create(args) => admin::create(args).await,
            KeyCommand::Enable(args) => admin::set_state(args, "enable").await,
            KeyCommand::Disable(args) => admin::set_state(args, "disable").await,
            KeyCommand::Delete(args) => admin::delete(args).await,
            KeyCommand::Get(args) => admin::get(args).await,
            KeyCommand::List(args) => admin::list(args).await,
            KeyCommand::Stat(args) => admin::stat(args).await,
            KeyCommand::Rotate(args) => admin::rotate(args).await,
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keygate: {message}");
            ExitCode::FAILURE
        }
    }
}
