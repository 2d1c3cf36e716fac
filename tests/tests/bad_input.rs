//! Bad input never hurts: whatever arrives, every route answers with a 4xx in its surface's shape,
//! never a 5xx (the store is healthy here) and never a panic.

use chrono::TimeDelta;
use keygate_core::signature;
use keygate_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROUTES: &[(Method, &str)] = &[
    (Method::Post, "/v1/key/regist"),
    (Method::Get, "/v1/key/detail"),
    (Method::Get, "/v1/auth/token"),
    (Method::Get, "/v1/auth/refresh"),
    (Method::Post, "/identity/v1/api-keys"),
];

fn noise(rng: &mut StdRng, alphabet: &[u8], max_len: usize) -> String {
    let len = rng.random_range(0..=max_len);
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// Inputs that are almost right are the interesting ones: mutate real values a little (and
/// really: a value that still reads as the original, say with a trimmed space, is tried again).
fn mutate(rng: &mut StdRng, value: &str) -> String {
    loop {
        let mutated = mutate_once(rng, value);
        if mutated.trim() != value {
            return mutated;
        }
    }
}

/// A mutation of a JSON text that does not mean the same JSON (white space between tokens would).
fn mutate_json(rng: &mut StdRng, json: &str) -> String {
    let original: serde_json::Value = serde_json::from_str(json).unwrap();
    loop {
        let mutated = mutate(rng, json);
        if serde_json::from_str::<serde_json::Value>(&mutated).ok().as_ref() != Some(&original) {
            return mutated;
        }
    }
}

fn mutate_once(rng: &mut StdRng, value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..3) {
            0 if !chars.is_empty() => {
                let at = rng.random_range(0..chars.len());
                chars.remove(at);
            }
            1 => {
                let at = rng.random_range(0..=chars.len());
                chars.insert(at, ['.', '_', '"', '{', 'A', '0', '=', ' '][rng.random_range(0..8)]);
            }
            _ if !chars.is_empty() => {
                let at = rng.random_range(0..chars.len());
                chars[at] = ['a', 'Z', '9', '-', '}'][rng.random_range(0..5)];
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[tokio::test]
async fn two_thousand_malformed_requests_get_4xx_answers() {
    let t = TestApp::new().await;
    let created = t.registered_key(1_000_000, TimeDelta::days(1)).await;
    let key = created.primary.expose().to_owned();
    let (_, body, _) = t.send(get("/v1/auth/token", &[("x-api-key", &key)])).await;
    let token = body["result"]["access_token"].as_str().unwrap().to_owned();
    let json_like = br#"{}[]":,0123456789.eE-+truefalsenull key user_id scope \u00e9"#;
    let printable: Vec<u8> = (0x20..0x7f).collect();
    let mut rng = StdRng::seed_from_u64(0x006b_6579_6761_7465);

    for round in 0..2000 {
        // Each request its own timestamp, so no two signed ones are replays of each other.
        t.clock.advance(TimeDelta::milliseconds(1));
        let (method, path) = ROUTES[round % ROUTES.len()];
        let body = match rng.random_range(0..4) {
            0 => noise(&mut rng, json_like, 200),
            1 => mutate_json(&mut rng, &format!(r#"{{"key":"{key}"}}"#)),
            2 => mutate_json(
                &mut rng,
                r#"{"user_id":"u","max_total_usage":5,"scope":["a"],"validity_seconds":60}"#,
            ),
            _ => noise(&mut rng, &printable, 100),
        };
        let api_key = mutate(&mut rng, &key);
        let authorization = format!("Bearer {}", mutate(&mut rng, &token));
        let timestamp = mutate(&mut rng, &t.clock.now().timestamp_millis().to_string());
        let signature_value = noise(&mut rng, &printable, 60);
        let headers = [
            ("x-api-key", api_key.as_str()),
            ("authorization", authorization.as_str()),
            (signature::TIMESTAMP_HEADER, timestamp.as_str()),
            (signature::ACCESS_KEY_HEADER, ACCESS_KEY),
            (signature::SIGNATURE_HEADER, signature_value.as_str()),
        ];
        // Half the admin requests are signed properly, so their bodies reach the handler.
        let signed_properly = path.starts_with("/identity/") && round % 2 == 0;
        let request = if signed_properly {
            t.signed_create(&body, ACCESS_KEY, SECRET_KEY)
        } else {
            request(method, path, &headers, Some(&body))
        };
        let (status, json, _) = t.send(request).await;
        if signed_properly && status == 200 {
            // A mutation can still be a valid create (another user_id, say): that is no bad input.
            continue;
        }
        assert!((400..500).contains(&status), "{path} answered {status} {json} to body {body:?}");
        assert_ne!(
            (signed_properly, status),
            (true, 401),
            "a properly signed request got past the signature check: {json}"
        );
        assert!(json.is_object(), "{path}: the answer is the surface's JSON envelope");
    }
}

/// Random text over ASCII and wider characters, where byte-wise parsing goes wrong; half the
/// time shaped like a relative time (`now-3d`) with odd signs and units.
fn wide_text(rng: &mut StdRng) -> String {
    if rng.random_bool(0.5) {
        const SIGNS: &[&str] = &["-", "+", "→", "é", ""];
        const UNITS: &[&str] = &["d", "h", "w", "é", "😀", "", "dd"];
        let sign = SIGNS[rng.random_range(0..SIGNS.len())];
        let unit = UNITS[rng.random_range(0..UNITS.len())];
        return format!("now{sign}{}{unit}", rng.random_range(0..1000));
    }
    const PIECES: &[&str] =
        &["now", "-", "+", "1", "d", "h", "é", "→", "😀", "2026-01-01", "T", "Z", ":", "(", "[", ".*"];
    (0..rng.random_range(0..6)).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
}

fn random_value(rng: &mut StdRng) -> serde_json::Value {
    use serde_json::json;
    match rng.random_range(0..6) {
        0 => json!(wide_text(rng)),
        1 => json!(rng.random_range(-1_000_000i64..1_000_000)),
        2 => json!((0..rng.random_range(0..3)).map(|_| wide_text(rng)).collect::<Vec<_>>()),
        3 => json!(rng.random_bool(0.5)),
        4 => json!(null),
        _ => json!({ "nested": wide_text(rng) }),
    }
}

#[tokio::test]
async fn three_thousand_random_queries_get_200_or_400() {
    use serde_json::json;
    let t = TestApp::new().await;
    for _ in 0..5 {
        t.registered_key(10, TimeDelta::days(1)).await;
    }
    const OPERATORS: &[&str] = &[
        "eq",
        "not",
        "lt",
        "lte",
        "gt",
        "gte",
        "exists",
        "contain",
        "not_contain",
        "in",
        "not_in",
        "contain_in",
        "not_contain_in",
        "regex",
        "regex_in",
        "datetime_lt",
        "datetime_lte",
        "datetime_gt",
        "datetime_gte",
        "timediff_lt",
        "timediff_lte",
        "timediff_gt",
        "timediff_gte",
        "nope",
    ];
    const FIELDS: &[&str] =
        &["name", "state", "scope", "max_total_usage", "created_at", "expires_at", "nope"];
    const AGGREGATES: &[&str] =
        &["count", "sum", "average", "max", "min", "first", "last", "push", "add_to_set"];
    let mut rng = StdRng::seed_from_u64(0x0071_7565_7279);
    for round in 0..3000 {
        let field = FIELDS[rng.random_range(0..FIELDS.len())];
        let condition = json!({ "k": field, "v": random_value(&mut rng), "o": OPERATORS[rng.random_range(0..OPERATORS.len())] });
        let (path, body) = if round % 3 == 0 {
            let stage = json!({ "group": {
                "keys": [{ "key": FIELDS[rng.random_range(0..FIELDS.len())], "name": "k" }],
                "fields": [{ "key": field, "name": "v", "operator": AGGREGATES[rng.random_range(0..AGGREGATES.len())] }],
            }});
            (
                "/identity/v1/api-keys/stat",
                json!({ "query": { "filter": [condition], "aggregate": [stage] } }),
            )
        } else {
            let sort =
                json!({ "key": FIELDS[rng.random_range(0..FIELDS.len())], "desc": rng.random_bool(0.5) });
            (
                "/identity/v1/api-keys/search",
                json!({ "query": { "filter_or": [condition], "sort": sort, "keyword": wide_text(&mut rng) } }),
            )
        };
        let (status, answer, _) = t.send(t.admin(Method::Post, path, &body.to_string(), false)).await;
        assert!(status == 200 || status == 400, "{status} {answer} for {body}");
    }
}
