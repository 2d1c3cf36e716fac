//! The admin CLI: signs requests with signature v2 and prints what the API answers.

use chrono::Utc;
use clap::Args;
use keygate_core::signature::{self, Credential};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Target;
use crate::data_dir::DataDir;

/// Where to send the request, and how to print the answer.
#[derive(Args)]
pub struct Common {
    #[command(flatten)]
    target: Target,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct KeyArgs {
    #[command(flatten)]
    common: Common,
    /// The key's id (`api-key-...`).
    api_key_id: String,
}

#[derive(Args)]
pub struct GetArgs {
    #[command(flatten)]
    common: Common,
    api_key_id: String,
    /// Show only these fields.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    common: Common,
    /// A SpaceONE Query as JSON, e.g. '{"filter":[{"k":"state","v":"ENABLED","o":"eq"}]}'.
    #[arg(long)]
    query: Option<String>,
    #[arg(long)]
    state: Option<String>,
    #[arg(long)]
    user_id: Option<String>,
}

#[derive(Args)]
pub struct StatArgs {
    #[command(flatten)]
    common: Common,
    /// A SpaceONE StatisticsQuery as JSON, e.g. '{"aggregate":[{"count":{"name":"keys"}}]}'.
    #[arg(long)]
    query: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Slot {
    Primary,
    Secondary,
}

#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    common: Common,
    api_key_id: String,
    /// Which value to replace.
    #[arg(long, value_enum)]
    slot: Slot,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    common: Common,
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
}

pub async fn create(args: CreateArgs) -> Result<(), String> {
    let client = AdminClient::new(&args.common.target)?;
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
    print(&info, args.common.json);
    if !args.common.json {
        eprintln!("\nThe api_key value is shown only now: store it safely.");
    }
    Ok(())
}

/// Ids go into the signed path as they are: anything but a key id could change the request.
fn checked_id(id: &str) -> Result<&str, String> {
    keygate_core::model::ApiKeyId::parse(id)
        .map(|_| id)
        .ok_or_else(|| format!("{id:?} is not a key id (api-key-<12 hex>)"))
}

pub async fn set_state(args: KeyArgs, action: &str) -> Result<(), String> {
    checked_id(&args.api_key_id)?;
    let client = AdminClient::new(&args.common.target)?;
    let path = format!("/identity/v1/api-key/{}/{action}", args.api_key_id);
    let info = client.send(Method::PUT, &path, None).await?;
    print(&info, args.common.json);
    Ok(())
}

pub async fn delete(args: KeyArgs) -> Result<(), String> {
    checked_id(&args.api_key_id)?;
    let client = AdminClient::new(&args.common.target)?;
    let answer =
        client.send(Method::DELETE, &format!("/identity/v1/api-key/{}", args.api_key_id), None).await?;
    if args.common.json {
        print(&answer, true);
    } else {
        println!("deleted {}", args.api_key_id);
    }
    Ok(())
}

pub async fn get(args: GetArgs) -> Result<(), String> {
    checked_id(&args.api_key_id)?;
    if let Some(bad) = args.only.iter().find(|f| !f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')) {
        return Err(format!("--only {bad:?} is not a field name"));
    }
    let client = AdminClient::new(&args.common.target)?;
    let mut path = format!("/identity/v1/api-key/{}", args.api_key_id);
    if !args.only.is_empty() {
        path = format!("{path}?only={}", args.only.join(","));
    }
    print(&client.send(Method::GET, &path, None).await?, args.common.json);
    Ok(())
}

pub async fn list(args: ListArgs) -> Result<(), String> {
    let client = AdminClient::new(&args.common.target)?;
    let mut body = Map::new();
    if let Some(query) = &args.query {
        let query: Value = serde_json::from_str(query).map_err(|e| format!("--query is not JSON: {e}"))?;
        body.insert("query".into(), query);
    }
    body.extend(args.state.map(|s| ("state".to_owned(), json!(s))));
    body.extend(args.user_id.map(|u| ("user_id".to_owned(), json!(u))));
    let found = client.send(Method::POST, "/identity/v1/api-keys/search", Some(Value::Object(body))).await?;
    if args.common.json {
        print(&found, true);
    } else {
        print_rows(found["results"].as_array().map(Vec::as_slice).unwrap_or_default(), LIST_COLUMNS);
        println!("({} in all)", found["total_count"]);
    }
    Ok(())
}

pub async fn stat(args: StatArgs) -> Result<(), String> {
    let client = AdminClient::new(&args.common.target)?;
    let query: Value = serde_json::from_str(&args.query).map_err(|e| format!("--query is not JSON: {e}"))?;
    let found =
        client.send(Method::POST, "/identity/v1/api-keys/stat", Some(json!({ "query": query }))).await?;
    if args.common.json {
        print(&found, true);
    } else {
        print_rows(found["results"].as_array().map(Vec::as_slice).unwrap_or_default(), &[]);
    }
    Ok(())
}

pub async fn rotate(args: RotateArgs) -> Result<(), String> {
    checked_id(&args.api_key_id)?;
    let client = AdminClient::new(&args.common.target)?;
    let key_type = match args.slot {
        Slot::Primary => "PRIMARY",
        Slot::Secondary => "SECONDARY",
    };
    let path = format!("/api/v1/api-keys/{}", args.api_key_id);
    let document = client.send(Method::PATCH, &path, Some(json!({ "keyType": key_type }))).await?;
    print(&document, args.common.json);
    if !args.common.json {
        eprintln!("\nThe new value is shown only now: store it safely. The other value keeps working.");
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// One object as `field  value` lines, or JSON.
fn print(answer: &Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(answer).expect("serialisable"));
        return;
    }
    let Some(fields) = answer.as_object() else {
        println!("{}", text(answer));
        return;
    };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in fields {
        println!("{name:<width$}  {}", text(value));
    }
}

/// The columns of `key list`'s table, of those the rows have.
const LIST_COLUMNS: &[&str] =
    &["api_key_id", "name", "state", "user_id", "remaining_total_usage", "max_total_usage", "expires_at"];

/// Objects as a table with the `preferred` columns they have (else all their fields), or values
/// one a line.
fn print_rows(rows: &[Value], preferred: &[&str]) {
    let Some(first) = rows.first().and_then(Value::as_object) else {
        rows.iter().for_each(|row| println!("{}", text(row)));
        return;
    };
    let mut columns: Vec<&str> = preferred.iter().copied().filter(|c| first.contains_key(*c)).collect();
    if columns.is_empty() {
        columns = first.keys().map(String::as_str).collect();
    }
    let cells: Vec<Vec<String>> =
        rows.iter().map(|row| columns.iter().map(|c| text(&row[*c])).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.clone());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
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
