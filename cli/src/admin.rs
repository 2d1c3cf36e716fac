//! The admin CLI: signs requests with signature v2 and prints what the API answers.

use chrono::Utc;
use clap::Args;
use reqwest::Method;
use serde_json::{Map, Value, json};
use shared::signature::{self, Credential};

use crate::Target;
use crate::data_dir::DataDir;

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    target: Target,
    /// Owner of the key inside the domain (default: the signing access key).
    #[arg(long)]
    user_id: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Scope copied into tokens; repeat the option or separate with commas.
    #[arg(long, value_delimiter = ',')]
    scope: Vec<String>,
    /// Tokens that may ever be minted with the key.
    #[arg(long)]
    max_usage: Option<i64>,
    /// The key expires this many seconds after registration.
    #[arg(long, conflicts_with = "expires_at")]
    validity_seconds: Option<i64>,
    /// The key expires at this RFC 3339 time.
    #[arg(long)]
    expires_at: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn create(args: CreateArgs) -> Result<(), String> {
    let client = AdminClient::new(&args.target)?;
    let mut body = Map::new();
    body.insert(
        "user_id".into(),
        json!(args.user_id.unwrap_or_else(|| client.credential.access_key.clone())),
    );
    let optional = [
        ("name", args.name.map(Value::from)),
        ("description", args.description.map(Value::from)),
        ("scope", (!args.scope.is_empty()).then(|| json!(args.scope))),
        ("max_total_usage", args.max_usage.map(Value::from)),
        ("validity_seconds", args.validity_seconds.map(Value::from)),
        ("expires_at", args.expires_at.map(Value::from)),
    ];
    body.extend(optional.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))));
    let info = client.send(Method::POST, "/identity/v1/api-keys", Some(Value::Object(body))).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info).expect("serialisable"));
    } else {
        print_table(&info);
        eprintln!("\nThe api_key value is shown only now: store it safely.");
    }
    Ok(())
}

fn print_table(info: &Value) {
    let Some(fields) = info.as_object() else { return };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in fields {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        println!("{name:<width$}  {text}");
    }
}

struct AdminClient {
    base_url: String,
    base_path: String,
    credential: Credential,
    http: reqwest::Client,
}

impl AdminClient {
    fn new(target: &Target) -> Result<Self, String> {
        let credential = match (std::env::var("KEYGATE_ACCESS_KEY"), std::env::var("KEYGATE_SECRET_KEY")) {
            (Ok(access_key), Ok(secret_key)) => {
                Credential { access_key, secret_key, domain_id: String::new() }
            }
            _ => DataDir::new(target.data_dir.clone()).credential()?,
        };
        let url = reqwest::Url::parse(&target.url).map_err(|e| format!("--url {}: {e}", target.url))?;
        Ok(Self {
            base_url: target.url.trim_end_matches('/').to_owned(),
            base_path: url.path().trim_end_matches('/').to_owned(),
            credential,
            http: reqwest::Client::new(),
        })
    }

    /// Sends a signed request; the signed path includes the base URL's path (an API stage).
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let timestamp = Utc::now().timestamp_millis().to_string();
        let signed_path = format!("{}{path}", self.base_path);
        let access_key = &self.credential.access_key;
        let signature = signature::sign(
            &self.credential.secret_key,
            method.as_str(),
            &signed_path,
            &timestamp,
            access_key,
        );
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header(signature::TIMESTAMP_HEADER, &timestamp)
            .header(signature::ACCESS_KEY_HEADER, access_key)
            .header(signature::SIGNATURE_HEADER, signature);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{}: {e}", self.base_url))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() { Ok(value) } else { Err(format!("{status}: {value}")) }
    }
}
