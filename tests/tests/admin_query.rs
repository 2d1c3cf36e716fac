//! SpaceONE `list` / `search` (Query) and `stat` (StatisticsQuery) on a fixture of 60 keys across
//! three domains. Every expected answer is worked out by hand from the fixture's rules below, not
//! computed by the engine under test.
//!
//! Domain A (the caller) holds kx-01 .. kx-30 (a prefix no hex key id contains, for `keyword`); key i is created at START + (i - 1) hours with:
//! - user_id: alice when i % 3 == 0, bob when i % 3 == 1, carol when i % 3 == 2
//! - scope: [] when i % 5 == 0, else ["orders:read"] for even i, ["orders:read", "orders:write"] for odd i
//! - max_total_usage: 10 × i; DISABLED when i % 7 == 0
//! - registered (at creation) when i <= 20; expires a day after registration when i <= 15, else
//!   at START + 100 days
//! - one token minted when i % 4 == 0 and i <= 20 (4, 8, 12, 16, 20)
//!
//! Domain B holds 20 keys and domain C 10 keys, all created after A's, owned by user "zed".

use chrono::TimeDelta;
use keygate_tests::*;
use serde_json::{Value, json};

struct Fixture {
    t: TestApp,
}

async fn fixture() -> Fixture {
    let t = TestApp::new().await;
    for i in 1..=30u32 {
        let scope: Vec<&str> = match i {
            i if i % 5 == 0 => vec![],
            i if i % 2 == 0 => vec!["orders:read"],
            _ => vec!["orders:read", "orders:write"],
        };
        let user = ["alice", "bob", "carol"][(i % 3) as usize];
        let mut body = json!({
            "user_id": user,
            "name": format!("kx-{i:02}"),
            "scope": scope,
            "max_total_usage": 10 * i,
        });
        if i <= 15 {
            body["validity_seconds"] = json!(86_400);
        } else {
            body["expires_at"] = json!("2026-04-11T00:00:00Z");
        }
        let (status, created, _) = t.send(t.signed_create(&body.to_string(), ACCESS_KEY, SECRET_KEY)).await;
        assert_eq!(status, 200, "{created}");
        let value = created["api_key"].as_str().unwrap().to_owned();
        let path = format!("/identity/v1/api-key/{}", created["api_key_id"].as_str().unwrap());
        if i <= 20 {
            let (status, _, _) = t.send(post("/v1/key/regist", &json!({ "key": value }).to_string())).await;
            assert_eq!(status, 200);
        }
        if i % 4 == 0 && i <= 20 {
            assert_eq!(t.send(get("/v1/auth/token", &[("x-api-key", &value)])).await.0, 200);
        }
        if i % 7 == 0 {
            assert_eq!(t.send(t.admin(Method::Put, &format!("{path}/disable"), "", false)).await.0, 200);
        }
        if i < 30 {
            t.clock.advance(TimeDelta::hours(1));
        }
    }
    for (count, access_key, secret_key) in
        [(20, OTHER_ACCESS_KEY, OTHER_SECRET_KEY), (10, THIRD_ACCESS_KEY, THIRD_SECRET_KEY)]
    {
        for n in 0..count {
            let body = json!({ "user_id": "zed", "name": format!("other-{n:02}") }).to_string();
            // Each write is signed anew: a millisecond apart, leaving the clock where it is.
            let signed_at = t.clock.now() - TimeDelta::milliseconds(n + 1);
            let create =
                signed(Method::Post, "/identity/v1/api-keys", &body, access_key, secret_key, signed_at);
            assert_eq!(t.send(create).await.0, 200);
        }
    }
    Fixture { t }
}

impl Fixture {
    async fn search(&self, body: Value) -> (u16, Value) {
        let request = self.t.admin(Method::Post, "/identity/v1/api-keys/search", &body.to_string(), false);
        let (status, json, _) = self.t.send(request).await;
        (status, json)
    }

    /// The names a filter finds, in name order.
    async fn names(&self, filter: Value) -> Vec<String> {
        let (status, body) = self
            .search(json!({ "query": { "filter": filter, "sort": { "key": "name" }, "only": ["name"] } }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_count"].as_u64().unwrap() as usize, body["results"].as_array().unwrap().len());
        body["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    }

    async fn stat(&self, query: Value) -> Value {
        let request = self.t.admin(
            Method::Post,
            "/identity/v1/api-keys/stat",
            &json!({ "query": query }).to_string(),
            false,
        );
        let (status, body, _) = self.t.send(request).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

fn keys(numbers: &[u32]) -> Vec<String> {
    numbers.iter().map(|i| format!("kx-{i:02}")).collect()
}

fn range(from: u32, to: u32) -> Vec<u32> {
    (from..=to).collect()
}

fn filter(k: &str, o: &str, v: Value) -> Value {
    json!([{ "k": k, "v": v, "o": o }])
}

// ---------------------------------------------------------------- Query operators

#[tokio::test]
async fn each_filter_operator_finds_what_the_fixture_rules_say() {
    let f = fixture().await;
    let cases: Vec<(&str, Value, Vec<u32>)> = vec![
        ("eq", filter("state", "eq", json!("DISABLED")), vec![7, 14, 21, 28]),
        (
            "eq without o",
            json!([{ "key": "user_id", "value": "alice" }]),
            vec![3, 6, 9, 12, 15, 18, 21, 24, 27, 30],
        ),
        (
            "not",
            filter("user_id", "not", json!("alice")),
            vec![1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 26, 28, 29],
        ),
        ("lt", filter("max_total_usage", "lt", json!(50)), range(1, 4)),
        ("lte", filter("max_total_usage", "lte", json!(50)), range(1, 5)),
        ("gt", filter("max_total_usage", "gt", json!(270)), range(28, 30)),
        ("gte", filter("max_total_usage", "gte", json!(270)), range(27, 30)),
        ("lt on text", filter("name", "lt", json!("kx-03")), vec![1, 2]),
        ("remaining after one token", filter("remaining_total_usage", "eq", json!(39)), vec![4]),
        ("exists", filter("registered_at", "exists", json!(true)), range(1, 20)),
        ("exists false", filter("registered_at", "exists", json!(false)), range(21, 30)),
        ("exists on a list", filter("scope", "exists", json!(false)), vec![5, 10, 15, 20, 25, 30]),
        (
            "contain in a list",
            filter("scope", "contain", json!("WRITE")),
            vec![1, 3, 7, 9, 11, 13, 17, 19, 21, 23, 27, 29],
        ),
        ("contain", filter("name", "contain", json!("KX-1")), range(10, 19)),
        ("not_contain", filter("name", "not_contain", json!("-1")), [range(1, 9), range(20, 30)].concat()),
        (
            "in",
            filter("user_id", "in", json!(["alice", "carol"])),
            vec![2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24, 26, 27, 29, 30],
        ),
        (
            "in on a list",
            filter("scope", "in", json!(["orders:write"])),
            vec![1, 3, 7, 9, 11, 13, 17, 19, 21, 23, 27, 29],
        ),
        ("not_in", filter("state", "not_in", json!(["ENABLED"])), vec![7, 14, 21, 28]),
        ("contain_in", filter("name", "contain_in", json!(["-05", "-25"])), vec![5, 25]),
        ("not_contain_in", filter("name", "not_contain_in", json!(["-0", "-1", "-2"])), vec![30]),
        ("regex", filter("name", "regex", json!("^kx-(0[1-3]|30)$")), vec![1, 2, 3, 30]),
        ("regex_in", filter("name", "regex_in", json!(["^kx-0[1-2]$", "9$"])), vec![1, 2, 9, 19, 29]),
        ("datetime_lt", filter("created_at", "datetime_lt", json!("2026-01-01T03:00:00Z")), vec![1, 2, 3]),
        ("datetime_lte", filter("created_at", "datetime_lte", json!("2026-01-01T03:00:00Z")), range(1, 4)),
        ("datetime_gt", filter("created_at", "datetime_gt", json!("2026-01-02T03:00:00Z")), vec![29, 30]),
        ("datetime_gte", filter("created_at", "datetime_gte", json!("2026-01-02T03:00:00Z")), range(28, 30)),
        ("datetime with a date", filter("created_at", "datetime_gte", json!("2026-01-02")), range(25, 30)),
        // The clock stands at START + 29 h, when kx-30 was created.
        ("timediff_gt", filter("created_at", "timediff_gt", json!("now-3h")), range(28, 30)),
        ("timediff_gte", filter("created_at", "timediff_gte", json!("now-3h")), range(27, 30)),
        ("timediff_lt", filter("created_at", "timediff_lt", json!("now-27h")), vec![1, 2]),
        ("timediff_lte", filter("created_at", "timediff_lte", json!("now-27h")), vec![1, 2, 3]),
        ("timediff ahead", filter("expires_at", "timediff_gt", json!("now+50d")), range(16, 30)),
        (
            "timediff on the unset",
            filter("last_accessed_at", "timediff_lte", json!("now")),
            vec![4, 8, 12, 16, 20],
        ),
    ];
    for (what, conditions, expected) in cases {
        assert_eq!(f.names(conditions).await, keys(&expected), "{what}");
    }
}

#[tokio::test]
async fn filter_or_keyword_and_the_request_fields_narrow_as_documented() {
    let f = fixture().await;
    let body = json!({ "query": {
        "filter_or": [{ "k": "state", "v": "DISABLED", "o": "eq" }, { "k": "user_id", "v": "bob", "o": "eq" }],
        "sort": { "key": "name" }, "only": ["name"],
    }});
    let (_, found) = f.search(body).await;
    let names: Vec<&str> =
        found["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, keys(&[1, 4, 7, 10, 13, 14, 16, 19, 21, 22, 25, 28]));

    let (_, found) = f.search(json!({ "query": { "keyword": "KX-2", "count_only": true } })).await;
    assert_eq!(found, json!({ "results": [], "total_count": 10 }));
    let (_, found) = f.search(json!({ "query": { "keyword": "carol", "count_only": true } })).await;
    assert_eq!(found["total_count"], json!(10), "keyword looks at user_id");

    let (_, found) =
        f.search(json!({ "state": "DISABLED", "user_id": "bob", "query": { "only": ["name"] } })).await;
    assert_eq!(found, json!({ "results": [{ "name": "kx-07" }, { "name": "kx-28" }], "total_count": 2 }));
}

#[tokio::test]
async fn sort_page_only_and_minimal_shape_the_answer() {
    let f = fixture().await;
    let body = json!({ "query": {
        "sort": { "keys": [{ "key": "user_id" }, { "key": "max_total_usage", "desc": true }] },
        "page": { "start": 2, "limit": 3 },
        "only": ["user_id", "max_total_usage"],
    }});
    let (_, found) = f.search(body).await;
    assert_eq!(
        found,
        json!({ "results": [
            { "user_id": "alice", "max_total_usage": 270 },
            { "user_id": "alice", "max_total_usage": 240 },
            { "user_id": "alice", "max_total_usage": 210 },
        ], "total_count": 30 })
    );

    let (_, found) = f.search(json!({ "query": { "sort": { "key": "created_at", "desc": true }, "page": { "limit": 1 }, "minimal": true } })).await;
    let first = &found["results"][0];
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["api_key_id", "domain_id", "name", "state", "user_id"]
    );
    assert_eq!((&first["name"], &found["total_count"]), (&json!("kx-30"), &json!(30)));

    let (_, found) = f.search(json!({ "query": { "page": { "start": 31 } } })).await;
    assert_eq!(found, json!({ "results": [], "total_count": 30 }), "a page past the end is empty");
}

#[tokio::test]
async fn get_list_filters_by_its_query_parameters() {
    let f = fixture().await;
    let path = "/identity/v1/api-keys?state=DISABLED&user_id=alice";
    let (status, found, _) = f.t.send(f.t.admin(Method::Get, path, "", false)).await;
    assert_eq!(status, 200);
    assert_eq!(found["total_count"], json!(1));
    assert_eq!(found["results"][0]["name"], json!("kx-21"));
    assert!(found["results"][0]["api_key"].as_str().unwrap().starts_with("*****"), "values stay masked");
}

// ---------------------------------------------------------------- StatisticsQuery

fn group_by_user(field: Value) -> Value {
    json!({ "aggregate": [
        { "group": { "keys": [{ "key": "user_id", "name": "user" }], "fields": [field] } },
        { "sort": { "key": "user" } },
    ]})
}

#[tokio::test]
async fn each_aggregate_operator_computes_what_the_fixture_rules_say() {
    let f = fixture().await;
    let cases = [
        ("count", json!({ "name": "n", "operator": "count" }), json!([30 / 3, 10, 10])),
        // Σ 10i over i ≡ 0, 1, 2 (mod 3): 10 × 165, 10 × 145, 10 × 155.
        (
            "sum",
            json!({ "key": "max_total_usage", "name": "n", "operator": "sum" }),
            json!([1650, 1450, 1550]),
        ),
        (
            "average",
            json!({ "key": "max_total_usage", "name": "n", "operator": "average" }),
            json!([165.0, 145.0, 155.0]),
        ),
        ("max", json!({ "key": "max_total_usage", "name": "n", "operator": "max" }), json!([300, 280, 290])),
        ("min", json!({ "key": "max_total_usage", "name": "n", "operator": "min" }), json!([30, 10, 20])),
        // Documents come oldest first.
        (
            "first",
            json!({ "key": "name", "name": "n", "operator": "first" }),
            json!(["kx-03", "kx-01", "kx-02"]),
        ),
        (
            "last",
            json!({ "key": "name", "name": "n", "operator": "last" }),
            json!(["kx-30", "kx-28", "kx-29"]),
        ),
    ];
    for (what, field, expected) in cases {
        let found = f.stat(group_by_user(field)).await;
        let values: Vec<Value> =
            found["results"].as_array().unwrap().iter().map(|r| r["n"].clone()).collect();
        let users: Vec<Value> =
            found["results"].as_array().unwrap().iter().map(|r| r["user"].clone()).collect();
        assert_eq!(users, [json!("alice"), json!("bob"), json!("carol")], "{what}");
        assert_eq!(Value::from(values), expected, "{what}");
    }

    let disabled = json!([{ "k": "state", "v": "DISABLED", "o": "eq" }]);
    let found = f
        .stat(json!({ "filter": disabled, "aggregate": [{ "group": { "keys": [{ "key": "state", "name": "state" }], "fields": [
            { "key": "name", "name": "names", "operator": "push" },
            { "key": "user_id", "name": "users", "operator": "add_to_set" },
        ]}}]}))
        .await;
    assert_eq!(
        found,
        json!({ "results": [{
            "state": "DISABLED",
            "names": ["kx-07", "kx-14", "kx-21", "kx-28"],
            "users": ["bob", "carol", "alice"],
        }]})
    );
}

#[tokio::test]
async fn count_sort_project_limit_skip_distinct_and_page_stages() {
    let f = fixture().await;
    let found = f.stat(json!({ "aggregate": [{ "count": { "name": "total" } }] })).await;
    assert_eq!(found, json!({ "results": [{ "total": 30 }] }), "only the caller's domain is counted");

    let found = f
        .stat(json!({ "aggregate": [
            { "sort": { "key": "max_total_usage", "desc": true } },
            { "skip": 1 },
            { "limit": 2 },
            { "project": { "fields": [{ "key": "name", "name": "key" }, { "key": "max_total_usage", "name": "quota" }] } },
        ]}))
        .await;
    assert_eq!(
        found,
        json!({ "results": [{ "key": "kx-29", "quota": 290 }, { "key": "kx-28", "quota": 280 }] })
    );

    let found = f.stat(json!({ "distinct": "scope" })).await;
    assert_eq!(found, json!({ "results": ["orders:read", "orders:write"] }));
    let found = f.stat(json!({ "distinct": "user_id", "page": { "start": 2, "limit": 1 } })).await;
    assert_eq!(found, json!({ "results": ["bob"], "total_count": 3 }));

    let found = f
        .stat(json!({ "aggregate": [
            { "group": { "keys": [{ "key": "state", "name": "state" }], "fields": [{ "name": "keys", "operator": "count" }] } },
            { "sort": { "key": "keys", "desc": true } },
        ]}))
        .await;
    assert_eq!(
        found,
        json!({ "results": [{ "state": "ENABLED", "keys": 26 }, { "state": "DISABLED", "keys": 4 }] })
    );
}

// ---------------------------------------------------------------- tenant isolation

#[tokio::test]
async fn every_admin_route_denies_another_domain_and_changes_nothing() {
    let f = fixture().await;
    let t = &f.t;
    let before = t.store.list_keys(DOMAIN).await.unwrap();
    let victim = &before[0].api_key_id;
    let not_found = spaceone_error("ERROR_NOT_FOUND", "resource not found");
    let denied = spaceone_error("ERROR_PERMISSION_DENIED", "domain_id is not the caller's domain");
    let cases = [
        (
            Method::Post,
            "/identity/v1/api-keys".to_owned(),
            json!({ "user_id": "u", "domain_id": DOMAIN }),
            403,
            denied.clone(),
        ),
        (Method::Get, format!("/identity/v1/api-key/{victim}"), json!(null), 404, not_found.clone()),
        (Method::Put, format!("/identity/v1/api-key/{victim}/enable"), json!(null), 404, not_found.clone()),
        (Method::Put, format!("/identity/v1/api-key/{victim}/disable"), json!(null), 404, not_found.clone()),
        (Method::Delete, format!("/identity/v1/api-key/{victim}"), json!(null), 404, not_found.clone()),
        (Method::Get, format!("/identity/v1/api-keys?domain_id={DOMAIN}"), json!(null), 403, denied.clone()),
        (
            Method::Post,
            "/identity/v1/api-keys/search".to_owned(),
            json!({ "domain_id": DOMAIN }),
            403,
            denied.clone(),
        ),
        (
            Method::Post,
            "/identity/v1/api-keys/stat".to_owned(),
            json!({ "domain_id": DOMAIN, "query": {} }),
            403,
            denied.clone(),
        ),
    ];
    for (method, path, body, status, expected) in cases {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        let (got, json, _) = t.send(t.admin(method, &path, &body, true)).await;
        assert_eq!((got, json), (status, expected), "{method:?} {path}");
    }
    // Lists and statistics of the other domain show only its own keys.
    let (_, found, _) = t.send(t.admin(Method::Get, "/identity/v1/api-keys", "", true)).await;
    assert_eq!(found["total_count"], json!(20));
    assert!(found["results"].as_array().unwrap().iter().all(|r| r["domain_id"] == json!(OTHER_DOMAIN)));
    let stat = json!({ "query": { "aggregate": [{ "count": { "name": "n" } }] } }).to_string();
    let (_, found, _) = t.send(t.admin(Method::Post, "/identity/v1/api-keys/stat", &stat, true)).await;
    assert_eq!(found, json!({ "results": [{ "n": 20 }] }));
    assert_eq!(t.store.list_keys(DOMAIN).await.unwrap(), before, "nothing of domain A changed");
}

// ---------------------------------------------------------------- malformed queries

#[tokio::test]
async fn sixty_malformed_queries_get_400_never_a_5xx() {
    let f = fixture().await;
    let deep = (0..200).fold(json!(1), |inner, _| json!([inner]));
    let deep_text = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let search = |query: Value| json!({ "query": query }).to_string();
    let stat = |query: Value| json!({ "query": query }).to_string();
    let cases: Vec<(&str, &str, String)> = vec![
        ("search", "not JSON", "{".into()),
        ("search", "a list body", "[]".into()),
        ("search", "query is a string", r#"{"query":"all"}"#.into()),
        ("search", "unknown top-level field", r#"{"color":"red"}"#.into()),
        ("search", "unknown query field", search(json!({ "color": "red" }))),
        ("search", "filter not a list", search(json!({ "filter": {} }))),
        ("search", "condition not an object", search(json!({ "filter": ["state"] }))),
        ("search", "condition without k", search(json!({ "filter": [{ "v": 1 }] }))),
        (
            "search",
            "k and key both",
            search(json!({ "filter": [{ "k": "state", "key": "state", "v": "x" }] })),
        ),
        (
            "search",
            "unknown condition field",
            search(json!({ "filter": [{ "k": "state", "v": "x", "x": 1 }] })),
        ),
        (
            "search",
            "unknown operator",
            search(json!({ "filter": [{ "k": "state", "v": "x", "o": "like" }] })),
        ),
        (
            "search",
            "operator not a string",
            search(json!({ "filter": [{ "k": "state", "v": "x", "o": 1 }] })),
        ),
        ("search", "unknown field", search(json!({ "filter": [{ "k": "secret", "v": "x" }] }))),
        ("search", "filtering the masked value", search(json!({ "filter": [{ "k": "api_key", "v": "x" }] }))),
        (
            "search",
            "lt with a string on a number",
            search(json!({ "filter": [{ "k": "max_total_usage", "v": "5", "o": "lt" }] })),
        ),
        (
            "search",
            "gt with a number on text",
            search(json!({ "filter": [{ "k": "name", "v": 5, "o": "gt" }] })),
        ),
        ("search", "lt on a list", search(json!({ "filter": [{ "k": "scope", "v": "a", "o": "lt" }] }))),
        (
            "search",
            "exists with a string",
            search(json!({ "filter": [{ "k": "name", "v": "yes", "o": "exists" }] })),
        ),
        (
            "search",
            "contain with a number",
            search(json!({ "filter": [{ "k": "name", "v": 1, "o": "contain" }] })),
        ),
        (
            "search",
            "not_contain with a list",
            search(json!({ "filter": [{ "k": "name", "v": [], "o": "not_contain" }] })),
        ),
        (
            "search",
            "in with a string",
            search(json!({ "filter": [{ "k": "state", "v": "ENABLED", "o": "in" }] })),
        ),
        (
            "search",
            "not_in with an object",
            search(json!({ "filter": [{ "k": "state", "v": {}, "o": "not_in" }] })),
        ),
        (
            "search",
            "contain_in with numbers",
            search(json!({ "filter": [{ "k": "name", "v": [1, 2], "o": "contain_in" }] })),
        ),
        (
            "search",
            "not_contain_in with a string",
            search(json!({ "filter": [{ "k": "name", "v": "a", "o": "not_contain_in" }] })),
        ),
        ("search", "bad regex", search(json!({ "filter": [{ "k": "name", "v": "(", "o": "regex" }] }))),
        (
            "search",
            "huge regex",
            search(json!({ "filter": [{ "k": "name", "v": "a{1000}{1000}", "o": "regex" }] })),
        ),
        (
            "search",
            "regex_in with a bad pattern",
            search(json!({ "filter": [{ "k": "name", "v": ["a", "["], "o": "regex_in" }] })),
        ),
        (
            "search",
            "regex with a number",
            search(json!({ "filter": [{ "k": "name", "v": 5, "o": "regex" }] })),
        ),
        (
            "search",
            "datetime on text",
            search(json!({ "filter": [{ "k": "name", "v": "2026-01-01", "o": "datetime_lt" }] })),
        ),
        (
            "search",
            "datetime not a time",
            search(json!({ "filter": [{ "k": "created_at", "v": "yesterday", "o": "datetime_lt" }] })),
        ),
        (
            "search",
            "datetime_between",
            search(json!({ "filter": [{ "k": "created_at", "v": "2026-01-01", "o": "datetime_between" }] })),
        ),
        (
            "search",
            "timediff not relative",
            search(json!({ "filter": [{ "k": "created_at", "v": "2026-01-01", "o": "timediff_lt" }] })),
        ),
        (
            "search",
            "timediff bad unit",
            search(json!({ "filter": [{ "k": "created_at", "v": "now-3y", "o": "timediff_lt" }] })),
        ),
        (
            "search",
            "timediff enormous",
            search(json!({ "filter": [{ "k": "created_at", "v": "now-99999999999d", "o": "timediff_gt" }] })),
        ),
        (
            "search",
            "filter_or with an unknown field",
            search(json!({ "filter_or": [{ "k": "nope", "v": 1 }] })),
        ),
        (
            "search",
            "timediff with a negative count",
            search(
                json!({ "filter": [{ "k": "created_at", "v": "now+-9999999999999999w", "o": "timediff_gt" }] }),
            ),
        ),
        (
            "search",
            "33 regex conditions in one query",
            search(
                json!({ "filter": (0..33).map(|_| json!({ "k": "name", "v": "\\w{20}", "o": "regex" })).collect::<Vec<_>>() }),
            ),
        ),
        (
            "search",
            "regexes split between filter and filter_or",
            search(
                json!({ "filter": [{ "k": "name", "v": vec!["a"; 20], "o": "regex_in" }], "filter_or": [{ "k": "name", "v": vec!["b"; 20], "o": "regex_in" }] }),
            ),
        ),
        (
            "search",
            "regex_in with 33 patterns",
            search(json!({ "filter": [{ "k": "name", "v": vec!["a"; 33], "o": "regex_in" }] })),
        ),
        (
            "search",
            "timediff ending in a wide character",
            search(json!({ "filter": [{ "k": "created_at", "v": "now-1é", "o": "timediff_lt" }] })),
        ),
        (
            "search",
            "timediff with a wide sign",
            search(json!({ "filter": [{ "k": "created_at", "v": "now→1d", "o": "timediff_lt" }] })),
        ),
        ("search", "sort by an unknown field", search(json!({ "sort": { "key": "nope" } }))),
        ("search", "sort desc not a bool", search(json!({ "sort": { "key": "name", "desc": "yes" } }))),
        ("search", "sort a number", search(json!({ "sort": 5 }))),
        ("search", "page start 0", search(json!({ "page": { "start": 0 } }))),
        ("search", "page limit 0", search(json!({ "page": { "limit": 0 } }))),
        ("search", "page limit above 1000", search(json!({ "page": { "limit": 1001 } }))),
        ("search", "page limit huge", search(json!({ "page": { "limit": 1e300 } }))),
        ("search", "page start negative", search(json!({ "page": { "start": -1 } }))),
        ("search", "page unknown field", search(json!({ "page": { "size": 10 } }))),
        ("search", "only an unknown field", search(json!({ "only": ["secret"] }))),
        ("search", "only not a list", search(json!({ "only": "name" }))),
        ("search", "minimal not a bool", search(json!({ "minimal": 1 }))),
        ("search", "count_only not a bool", search(json!({ "count_only": "true" }))),
        ("search", "keyword not a string", search(json!({ "keyword": 5 }))),
        (
            "search",
            "deeply nested value",
            search(json!({ "filter": [{ "k": "name", "v": deep, "o": "eq" }] })),
        ),
        (
            "search",
            "nesting beyond the parser's limit",
            format!(r#"{{"query":{{"filter":[{{"k":"name","v":{deep_text}}}]}}}}"#),
        ),
        ("search", "state of the wrong type", r#"{"state":5}"#.into()),
        ("stat", "query missing", "{}".into()),
        ("stat", "unknown stage", stat(json!({ "aggregate": [{ "lookup": {} }] }))),
        ("stat", "two stages in one", stat(json!({ "aggregate": [{ "limit": 1, "skip": 1 }] }))),
        (
            "stat",
            "group by an unknown field",
            stat(json!({ "aggregate": [{ "group": { "keys": [{ "key": "nope", "name": "n" }] } }] })),
        ),
        (
            "stat",
            "unknown aggregate operator",
            stat(
                json!({ "aggregate": [{ "group": { "fields": [{ "key": "name", "name": "n", "operator": "median" }] } }] }),
            ),
        ),
        (
            "stat",
            "sum of text",
            stat(
                json!({ "aggregate": [{ "group": { "fields": [{ "key": "name", "name": "n", "operator": "sum" }] } }] }),
            ),
        ),
        (
            "stat",
            "max without a key",
            stat(json!({ "aggregate": [{ "group": { "fields": [{ "name": "n", "operator": "max" }] } }] })),
        ),
        (
            "stat",
            "sort by a field the group dropped",
            stat(json!({ "aggregate": [
            { "group": { "keys": [{ "key": "state", "name": "state" }] } }, { "sort": { "key": "name" } }] })),
        ),
        (
            "stat",
            "project an unknown field",
            stat(json!({ "aggregate": [{ "project": { "fields": [{ "key": "nope", "name": "n" }] } }] })),
        ),
        ("stat", "limit negative", stat(json!({ "aggregate": [{ "limit": -1 }] }))),
        ("stat", "distinct of an unknown field", stat(json!({ "distinct": "nope" }))),
        (
            "stat",
            "distinct with aggregate",
            stat(json!({ "distinct": "state", "aggregate": [{ "count": { "name": "n" } }] })),
        ),
        ("stat", "stat page limit too big", stat(json!({ "distinct": "state", "page": { "limit": 5000 } }))),
        (
            "stat",
            "filter with an unknown operator",
            stat(json!({ "filter": [{ "k": "state", "v": 1, "o": "near" }] })),
        ),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (route, what, body) in cases {
        let path = format!("/identity/v1/api-keys/{route}");
        let (status, json, _) = f.t.send(f.t.admin(Method::Post, &path, &body, false)).await;
        assert_eq!(status, 400, "{route}: {what}: {json}");
        assert_eq!(json["error"]["code"], json!("ERROR_INVALID_ARGUMENT"), "{route}: {what}");
    }
}

/// A search reads the domain's ids or listings and then only its page's keys; a query that tests
/// a counter reads every key. Whichever way it goes, the answer is what running the query over
/// every key of the domain gives.
#[tokio::test]
async fn every_query_answers_as_reading_the_whole_domain_would() {
    use keygate_core::api_key_info::{PROJECTION, documents, schema};
    use keygate_core::query::Query;
    use keygate_core::service::KeySearch;

    let f = fixture().await;
    let t = &f.t;
    let page = |start: u32, limit: u32| json!({ "start": start, "limit": limit });
    let queries = [
        json!({}),
        json!({ "page": page(1, 10) }),
        json!({ "page": page(28, 10) }),
        json!({ "page": page(31, 10) }),
        json!({ "count_only": true }),
        json!({ "count_only": true, "page": page(2, 3) }),
        json!({ "minimal": true, "page": page(5, 4) }),
        json!({ "only": ["name", "remaining_total_usage", "api_key"], "page": page(3, 6) }),
        json!({ "filter": filter("user_id", "eq", json!("alice")) }),
        json!({ "filter": filter("user_id", "in", json!(["alice", "carol"])), "page": page(2, 5) }),
        json!({ "filter": filter("state", "eq", json!("DISABLED")), "count_only": true }),
        json!({ "filter": filter("name", "in", json!([])) }),
        json!({ "filter": filter("name", "contain", json!("X-1")), "sort": { "key": "name", "desc": true } }),
        json!({ "filter_or": [{ "k": "user_id", "v": "bob" }, { "k": "max_total_usage", "v": 250, "o": "gte" }] }),
        json!({ "keyword": "KX-2", "page": page(2, 3) }),
        json!({ "sort": { "key": "created_at", "desc": true }, "page": page(1, 7) }),
        json!({ "sort": [{ "key": "user_id" }, { "key": "max_total_usage", "desc": true }] }),
        json!({ "sort": { "key": "remaining_total_usage" }, "page": page(1, 12) }),
        json!({ "filter": filter("last_accessed_at", "exists", json!(true)) }),
        json!({ "filter": filter("remaining_total_usage", "lt", json!(100)), "count_only": true }),
        json!({ "filter": filter("expires_at", "datetime_gt", json!("2026-04-01")), "only": ["api_key_id"] }),
    ];
    let every_key = t.store.list_keys(DOMAIN).await.unwrap();
    assert_eq!(every_key.len(), 30);
    for body in queries {
        let query: Query = serde_json::from_value(body.clone()).unwrap();
        let reference = query.run(documents(&every_key), &schema(), &PROJECTION, t.clock.now()).unwrap();
        let search = KeySearch { query, ..KeySearch::default() };
        let answered = t.app.search_keys(&t.caller(), search).await.unwrap();
        assert_eq!(answered, reference, "{body}");
    }
}
