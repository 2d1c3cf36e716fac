//! `template.yaml` against the code: no function's environment holds a secret, each function may
//! read exactly the secrets its `main.rs` uses and take only the DynamoDB actions its route
//! needs, the signature authorizer never caches, the API has the local router's routes, and the
//! example API sets the token authorizer's requirements by their names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use keygate_core::config::{ADMIN_CREDENTIALS, PEPPER, PUBLIC_KEYS, SIGNING_KEY, SIGNING_KEY_PREVIOUS, Uses};
use keygate_core::secrets::arn_variable;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// Each function's binary name and its resource.
fn functions(template: &Yaml) -> BTreeMap<String, Yaml> {
    let resources = template["Resources"].as_hash().unwrap();
    resources
        .values()
        .filter(|resource| resource["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|resource| {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
            (binary, resource.clone())
        })
        .collect()
}

fn strings(yaml: &Yaml) -> Vec<String> {
    match yaml {
        Yaml::String(value) => vec![value.clone()],
        Yaml::Array(values) => values.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// (action, resource) pairs a function's policies allow.
fn allowed(function: &Yaml) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for policy in function["Properties"]["Policies"].as_vec().map(Vec::as_slice).unwrap_or_default() {
        for statement in policy["Statement"].as_vec().unwrap() {
            for action in strings(&statement["Action"]) {
                for resource in strings(&statement["Resource"]) {
                    pairs.push((action.clone(), resource));
                }
            }
        }
    }
    pairs
}

fn environment(yaml: &Yaml) -> BTreeMap<String, String> {
    let Some(variables) = yaml["Environment"]["Variables"].as_hash() else { return BTreeMap::new() };
    variables
        .iter()
        .map(|(name, value)| (name.as_str().unwrap().to_owned(), strings(value).join(" ")))
        .collect()
}

/// The secret settings a function's code reads, from its `main.rs`.
fn secrets_in_code(binary: &str) -> BTreeSet<&'static str> {
    let main = std::fs::read_to_string(root().join(format!("functions/{binary}/src/main.rs"))).unwrap();
    if main.contains("authorizer::credentials_from_env()") {
        return BTreeSet::from([ADMIN_CREDENTIALS]);
    }
    let named = [
        ("Uses::NO_SECRET", Uses::NO_SECRET),
        ("Uses::PEPPER_AND_SIGNING_KEY", Uses::PEPPER_AND_SIGNING_KEY),
        ("Uses::PEPPER)", Uses::PEPPER),
        ("Uses::SIGNING_KEY)", Uses::SIGNING_KEY),
    ];
    let uses = named.iter().find(|(text, _)| main.contains(text)).map(|(_, uses)| *uses);
    uses.map(Uses::secrets).unwrap_or_default().into_iter().collect()
}

#[test]
fn no_function_environment_holds_a_secret() {
    let template = template();
    let mut environments = vec![("Globals".to_owned(), environment(&template["Globals"]["Function"]))];
    for (binary, function) in functions(&template) {
        environments.push((binary, environment(&function["Properties"])));
    }
    for (owner, variables) in environments {
        for (name, value) in variables {
            let secret =
                [ADMIN_CREDENTIALS, PEPPER, SIGNING_KEY, SIGNING_KEY_PREVIOUS].contains(&name.as_str());
            assert!(!secret, "{owner} sets {name}: secrets are read at start, by ARN");
            assert!(!value.contains("{{resolve:"), "{owner}: {name} resolves a secret into the environment");
        }
    }
}

#[test]
fn each_function_may_read_exactly_the_secrets_its_code_uses() {
    let template = template();
    let parameter_of = |setting: &str| match setting {
        ADMIN_CREDENTIALS => "AdminCredentialsSecretArn",
        PEPPER => "PepperSecretArn",
        SIGNING_KEY => "SigningKeySecretArn",
        other => panic!("no secret parameter for {other}"),
    };
    for (binary, function) in functions(&template) {
        let uses = secrets_in_code(&binary);
        let variables = environment(&function["Properties"]);
        let named: BTreeSet<String> =
            variables.keys().filter(|name| name.ends_with("_SECRET_ARN")).cloned().collect();
        let expected: BTreeSet<String> = uses.iter().map(|setting| arn_variable(setting)).collect();
        assert_eq!(named, expected, "{binary}: the secret ARNs in its environment");
        for setting in &uses {
            assert_eq!(variables[&arn_variable(setting)], parameter_of(setting), "{binary}");
        }
        let readable: BTreeSet<String> = allowed(&function)
            .into_iter()
            .filter(|(action, _)| action.starts_with("secretsmanager:"))
            .map(|(action, resource)| {
                assert_eq!(action, "secretsmanager:GetSecretValue", "{binary}");
                resource
            })
            .collect();
        let expected: BTreeSet<String> =
            uses.iter().map(|setting| parameter_of(setting).to_owned()).collect();
        assert_eq!(readable, expected, "{binary}: the secrets its policy lets it read");
    }
}

#[test]
fn each_function_may_take_only_the_dynamodb_actions_its_route_needs() {
    let admin_write = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"].as_slice();
    let listing = ["dynamodb:BatchGetItem", "dynamodb:Query"].as_slice();
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("admin-authorizer", [].as_slice()),
        ("token-authorizer", &[]),
        ("discovery", &[]),
        ("health", &[]),
        ("not-found", &[]),
        ("jwks", &[]),
        ("key-regist", &["dynamodb:UpdateItem"]),
        ("key-detail", &["dynamodb:GetItem"]),
        ("auth-token", &["dynamodb:UpdateItem"]),
        ("auth-refresh", &["dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
        ("identity-api-key-create", &["dynamodb:PutItem"]),
        ("identity-api-key-enable", admin_write),
        ("identity-api-key-disable", admin_write),
        ("identity-api-key-delete", &["dynamodb:DeleteItem", "dynamodb:PutItem"]),
        ("identity-api-key-get", &["dynamodb:GetItem"]),
        ("identity-api-key-list", listing),
        ("identity-api-key-search", listing),
        ("identity-api-key-stat", listing),
        ("ncp-api-key-create", &["dynamodb:PutItem"]),
        ("ncp-api-key-get", &["dynamodb:GetItem"]),
        ("ncp-api-key-list", listing),
        ("ncp-api-key-update", admin_write),
        ("ncp-api-key-regenerate", admin_write),
        ("ncp-api-key-delete", &["dynamodb:DeleteItem", "dynamodb:PutItem"]),
    ]);
    let functions = functions(&template());
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for (binary, function) in functions {
        let actions: BTreeSet<String> = allowed(&function)
            .into_iter()
            .filter(|(action, _)| action.starts_with("dynamodb:"))
            .map(|(action, _)| action)
            .collect();
        let wanted: BTreeSet<String> = expected[binary.as_str()].iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(actions, wanted, "{binary}");
    }
}

#[test]
fn the_functions_that_list_may_query_exactly_the_indexes_they_read() {
    let template = template();
    let declared: Vec<&str> = template["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|index| index["IndexName"].as_str().unwrap())
        .collect();
    assert_eq!(declared, ["gsi1", "gsi2"], "ids, then listings");
    // stat reads every key (ids, then the keys); the others read listings too.
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("identity-api-key-list", ["gsi1", "gsi2"].as_slice()),
        ("identity-api-key-search", &["gsi1", "gsi2"]),
        ("identity-api-key-stat", &["gsi1"]),
        ("ncp-api-key-list", &["gsi1", "gsi2"]),
    ]);
    for (binary, function) in functions(&template) {
        let queried: Vec<String> = allowed(&function)
            .into_iter()
            .filter(|(action, _)| action == "dynamodb:Query")
            .filter_map(|(_, resource)| resource.strip_prefix("${Table.Arn}/index/").map(str::to_owned))
            .collect();
        let wanted: Vec<String> = expected
            .get(binary.as_str())
            .copied()
            .unwrap_or_default()
            .iter()
            .map(|i| (*i).to_owned())
            .collect();
        assert_eq!(queried, wanted, "{binary}");
    }
}

#[test]
fn the_token_authorizer_is_offered_to_customers_apis_and_reads_the_published_keys() {
    let template = template();
    let output = &template["Outputs"]["TokenAuthorizerArn"]["Value"];
    assert_eq!(output.as_str(), Some("TokenAuthorizerFunction.Arn"));
    let function = &template["Resources"]["TokenAuthorizerFunction"]["Properties"];
    assert!(function["Events"].is_badvalue(), "keygate's own API does not use it");
}

/// One parameter holds the published keys, for every function that publishes, verifies or signs
/// tokens (a signing function checks at start that its key is among them); no other has them.
#[test]
fn the_published_keys_reach_the_functions_that_sign_verify_or_publish_tokens() {
    let template = template();
    let parameter = &template["Parameters"]["SigningPublicKeys"];
    assert_eq!(parameter["Type"].as_str(), Some("String"));
    assert!(parameter["Default"].is_badvalue(), "required: there is no JWKS to default to");
    let given: BTreeSet<String> = functions(&template)
        .into_iter()
        .filter_map(|(binary, function)| {
            let variables = environment(&function["Properties"]);
            let value = variables.get(PUBLIC_KEYS)?;
            assert_eq!(value, "SigningPublicKeys", "{binary}");
            Some(binary)
        })
        .collect();
    let expected = ["auth-refresh", "auth-token", "jwks", "token-authorizer"];
    assert_eq!(given, expected.map(str::to_owned).into());
}

#[test]
fn the_signature_authorizer_never_reuses_a_decision() {
    let template = template();
    let authorizer = &template["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["SignatureV2"];
    assert_eq!(authorizer["Identity"]["ReauthorizeEvery"].as_i64(), Some(0));
}

#[test]
fn the_api_has_the_local_routers_routes_and_the_readmes() {
    let mut declared = BTreeSet::new();
    for (binary, function) in functions(&template()) {
        let Some(events) = function["Properties"]["Events"].as_hash() else { continue };
        for event in events.values() {
            let properties = &event["Properties"];
            let route = (
                properties["Method"].as_str().unwrap().to_owned(),
                properties["Path"].as_str().unwrap().to_owned(),
            );
            assert!(declared.insert(route.clone()), "{binary}: {route:?} is declared twice");
        }
    }
    let served: BTreeSet<(String, String)> = keygate_core::http::router::routes()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    let mut expected = served.clone();
    expected.insert(("ANY".into(), "$default".into()));
    assert_eq!(declared, expected);

    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let api = readme.split("## The API").nth(1).unwrap().split("\n## ").next().unwrap();
    let paths: BTreeSet<&str> = served.iter().map(|(_, path)| path.as_str()).collect();
    for quoted in api.split('`').skip(1).step_by(2) {
        let Some(path) = quoted.split_whitespace().find(|word| word.starts_with('/')) else { continue };
        let path = path.split('?').next().unwrap().replace("{id}", "{api_key_id}");
        assert!(paths.contains(path.as_str()), "README names {path}, which no route serves");
    }
}

/// The alarms on keygate's own metrics watch metrics the code counts, in the namespace the
/// functions publish to.
#[test]
fn alarms_on_keygate_metrics_name_metrics_the_code_counts() {
    use keygate_core::lambda::METRICS_NAMESPACE;
    use keygate_core::telemetry::Metric;
    let template = template();
    let namespace = environment(&template["Globals"]["Function"])[METRICS_NAMESPACE].clone();
    let counted: BTreeSet<&str> = Metric::ALL.iter().map(|metric| metric.name()).collect();
    let mut watched = Vec::new();
    for (name, resource) in template["Resources"].as_hash().unwrap() {
        let properties = &resource["Properties"];
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        if strings(&properties["Namespace"]).join(" ") == namespace {
            let metric = properties["MetricName"].as_str().unwrap();
            assert!(counted.contains(metric), "{name:?} watches {metric}, which nothing counts");
            watched.push(metric.to_owned());
        }
    }
    assert_eq!(watched, ["RefreshReuseDetected"]);
}

/// `sam build` builds each function in its own directory, so with only the domain crate's features
/// its manifest enables: a function whose policy reads no secret builds no Secrets Manager client,
/// and one that takes no DynamoDB action builds no DynamoDB client.
#[test]
fn each_function_is_built_alone_with_only_the_sdk_clients_its_policy_uses() {
    for (binary, function) in functions(&template()) {
        let code = function["Properties"]["CodeUri"].as_str().unwrap_or_default().to_owned();
        assert_eq!(code, format!("functions/{binary}"), "{binary}");
        let manifest = std::fs::read_to_string(root().join(&code).join("Cargo.toml")).unwrap();
        let domain = manifest.lines().find(|line| line.starts_with("keygate-core")).unwrap();
        let actions: Vec<String> = allowed(&function).into_iter().map(|(action, _)| action).collect();
        let uses = |prefix: &str| actions.iter().any(|action| action.starts_with(prefix));
        assert_eq!(domain.contains("\"dynamodb\""), uses("dynamodb:"), "{binary}: {domain}");
        assert_eq!(domain.contains("\"secrets-manager\""), uses("secretsmanager:"), "{binary}: {domain}");
        assert!(!domain.contains("\"sqlite\""), "{binary}: only the local server keeps keys in SQLite");
    }
}

/// The example's protected API names what it requires of a token with exactly the stage variables
/// the token authorizer reads (a misspelt one would refuse every token): a tenant and scopes.
#[test]
fn the_example_api_requires_a_tenant_and_scopes_through_the_authorizers_stage_variables() {
    use keygate_core::http::token_authorizer::{SCOPES_VARIABLE, TENANT_VARIABLE};
    let text = std::fs::read_to_string(root().join("examples/protected-api/template.yaml")).unwrap();
    let example = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let variables = example["Resources"]["OrdersApi"]["Properties"]["StageVariables"].as_hash().unwrap();
    let names: BTreeSet<&str> = variables.keys().filter_map(Yaml::as_str).collect();
    assert_eq!(names, BTreeSet::from([TENANT_VARIABLE, SCOPES_VARIABLE]));
}
