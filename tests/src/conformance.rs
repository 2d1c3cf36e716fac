//! The store conformance suite: every conditional case of the [`Store`] trait, written once and
//! run against each implementation (see `tests/tests/store_conformance.rs`).

use std::sync::Arc;

use chrono::TimeDelta;
use keygate_core::key_value::{KeyValue, Pepper};
use keygate_core::model::{
    ApiKey, ApiKeyId, KeyChange, KeySlot, KeyState, NewSecret, SecretHash, StoredSecret, Timestamp, ValueRef,
};
use keygate_core::replay::ReplayNonce;
use keygate_core::store::{
    Imported, KeyListing, ListedField, ListingFilter, Record, RefreshMarker, Store, WriteError,
};

use crate::{Clock, PEPPER};

pub struct Fixture {
    pub key: ApiKey,
    pub primary: SecretHash,
    pub secondary: SecretHash,
}

/// A registered, enabled key with `remaining` units that expires a day from `now`.
pub fn fixture(now: Timestamp, remaining: u32) -> Fixture {
    let pepper = Pepper::new(PEPPER.as_bytes().to_vec()).unwrap();
    let id = ApiKeyId::generate();
    let (primary, secondary) = (KeyValue::generate(&id), KeyValue::generate(&id));
    let stored = |v: &KeyValue| StoredSecret::first(pepper.hash(v), v.last4());
    let key = ApiKey {
        primary: stored(&primary),
        secondary: stored(&secondary),
        api_key_id: id,
        domain_id: "domain-a".into(),
        user_id: "user-1".into(),
        name: "fixture".into(),
        description: String::new(),
        state: KeyState::Enabled,
        scope: vec!["read".into()],
        max_total_usage: remaining.max(1),
        remaining_total_usage: remaining,
        validity_seconds: None,
        expires_at: Some(now + TimeDelta::days(1)),
        registered_at: Some(now),
        last_accessed_at: None,
        created_at: now,
        modified_at: now,
        modifier: "AKTEST".into(),
        domain_code: "PUB".into(),
    };
    Fixture { primary: pepper.hash(&primary), secondary: pepper.hash(&secondary), key }
}

fn other_hash() -> SecretHash {
    let pepper = Pepper::new(PEPPER.as_bytes().to_vec()).unwrap();
    pepper.hash(&KeyValue::generate(&ApiKeyId::generate()))
}

/// The value a fixture's tokens are bought with: its first primary.
const FIRST_PRIMARY: ValueRef = ValueRef { slot: KeySlot::Primary, generation: 0 };

pub fn marker(jti: &str, family: &str, now: Timestamp) -> RefreshMarker {
    RefreshMarker {
        jti: jti.into(),
        family: family.into(),
        bought_with: FIRST_PRIMARY,
        expires_at: now + TimeDelta::minutes(15),
    }
}

fn rejected_with(err: WriteError) -> Option<ApiKey> {
    match err {
        WriteError::Rejected(old) => old.map(|k| *k),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn put(store: &Arc<dyn Store>, key: &ApiKey) {
    store.create_key(key, None).await.expect("created");
}

pub async fn create_then_get_round_trips_every_field(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let mut f = fixture(now, 5);
    f.key.registered_at = None;
    f.key.expires_at = None;
    f.key.validity_seconds = Some(3600);
    put(&store, &f.key).await;
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), Some(f.key.clone()));
    assert_eq!(store.get_key(&ApiKeyId::generate()).await.unwrap(), None);
}

pub async fn create_refuses_a_taken_id(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    let mut again = f.key.clone();
    again.name = "other".into();
    assert!(matches!(store.create_key(&again, None).await, Err(WriteError::AlreadyExists)));
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap().unwrap().name, "fixture");
}

pub async fn create_refuses_a_replayed_nonce_and_writes_nothing(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let nonce = nonce("nonce-1", now);
    let first = fixture(now, 5);
    store.create_key(&first.key, Some(&nonce)).await.unwrap();
    let second = fixture(now, 5);
    let replay = self::nonce("nonce-1", now);
    assert!(matches!(store.create_key(&second.key, Some(&replay)).await, Err(WriteError::Replayed)));
    assert_eq!(store.get_key(&second.key.api_key_id).await.unwrap(), None);
}

pub async fn register_sets_the_expiry_once(store: Arc<dyn Store>) {
    let clock = Clock::default();
    let now = clock.now();
    let mut f = fixture(now, 5);
    f.key.registered_at = None;
    f.key.expires_at = None;
    f.key.validity_seconds = Some(3600);
    put(&store, &f.key).await;
    let first = store.register_key(&f.key.api_key_id, &f.primary, now).await.unwrap();
    assert_eq!(first.registered_at, Some(now));
    assert_eq!(first.expires_at, Some(now + TimeDelta::hours(1)));
    let later = now + TimeDelta::minutes(30);
    let second = store.register_key(&f.key.api_key_id, &f.secondary, later).await.unwrap();
    assert_eq!((second.registered_at, second.expires_at), (first.registered_at, first.expires_at));
}

pub async fn register_keeps_a_fixed_expiry(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let mut f = fixture(now, 5);
    f.key.registered_at = None;
    let fixed = f.key.expires_at;
    put(&store, &f.key).await;
    let registered = store.register_key(&f.key.api_key_id, &f.primary, now).await.unwrap();
    assert_eq!(registered.expires_at, fixed);
}

pub async fn register_refuses_unknown_disabled_and_wrong_secret(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    assert_eq!(
        rejected_with(store.register_key(&ApiKeyId::generate(), &other_hash(), now).await.unwrap_err()),
        None
    );
    let mut f = fixture(now, 5);
    f.key.registered_at = None;
    put(&store, &f.key).await;
    let old = rejected_with(store.register_key(&f.key.api_key_id, &other_hash(), now).await.unwrap_err());
    assert_eq!(old.unwrap().registered_at, None);
    let mut d = fixture(now, 5);
    d.key.state = KeyState::Disabled;
    d.key.registered_at = None;
    put(&store, &d.key).await;
    let old = rejected_with(store.register_key(&d.key.api_key_id, &d.primary, now).await.unwrap_err());
    assert_eq!(old.unwrap().state, KeyState::Disabled);
}

pub async fn token_consumes_one_unit_with_either_secret(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 2);
    put(&store, &f.key).await;
    let later = now + TimeDelta::seconds(5);
    let after = store.consume_for_token(&f.key.api_key_id, &f.primary, later).await.unwrap();
    assert_eq!((after.remaining_total_usage, after.last_accessed_at), (1, Some(later)));
    let after = store.consume_for_token(&f.key.api_key_id, &f.secondary, later).await.unwrap();
    assert_eq!(after.remaining_total_usage, 0);
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap().unwrap().remaining_total_usage, 0);
}

pub async fn token_is_refused_with_the_key_as_it_was(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let exhausted = fixture(now, 0);
    let mut expired = fixture(now, 5);
    expired.key.expires_at = Some(now);
    let mut disabled = fixture(now, 5);
    disabled.key.state = KeyState::Disabled;
    let mut unregistered = fixture(now, 5);
    unregistered.key.registered_at = None;
    unregistered.key.expires_at = None;
    let wrong_secret = fixture(now, 5);
    for f in [&exhausted, &expired, &disabled, &unregistered, &wrong_secret] {
        put(&store, &f.key).await;
    }
    let cases = [
        ("exhausted", &exhausted, &exhausted.primary),
        ("expired", &expired, &expired.primary),
        ("disabled", &disabled, &disabled.primary),
        ("unregistered", &unregistered, &unregistered.primary),
        ("wrong secret", &wrong_secret, &other_hash()),
    ];
    for (what, f, secret) in cases {
        let err = store.consume_for_token(&f.key.api_key_id, secret, now).await.unwrap_err();
        assert_eq!(rejected_with(err).as_ref(), Some(&f.key), "{what}: handed back unchanged");
        assert_eq!(
            store.get_key(&f.key.api_key_id).await.unwrap().as_ref(),
            Some(&f.key),
            "{what}: not written"
        );
    }
    let err = store.consume_for_token(&ApiKeyId::generate(), &other_hash(), now).await.unwrap_err();
    assert_eq!(rejected_with(err), None, "unknown");
}

pub async fn refresh_consumes_one_unit_and_is_single_use(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    store.consume_for_refresh(&f.key.api_key_id, &marker("jti-1", "fam-1", now), now).await.unwrap();
    let after = store.get_key(&f.key.api_key_id).await.unwrap().unwrap();
    assert_eq!((after.remaining_total_usage, after.last_accessed_at), (4, Some(now)));
    let again = store.consume_for_refresh(&f.key.api_key_id, &marker("jti-1", "fam-1", now), now).await;
    assert!(matches!(again, Err(WriteError::TokenReused)), "{again:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap().unwrap().remaining_total_usage, 4);
}

pub async fn refresh_is_refused_for_a_revoked_family(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    store.revoke_family("fam-2", now + TimeDelta::minutes(15), now).await.unwrap();
    let outcome = store.consume_for_refresh(&f.key.api_key_id, &marker("jti-2", "fam-2", now), now).await;
    assert!(matches!(outcome, Err(WriteError::FamilyRevoked)), "{outcome:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap().unwrap().remaining_total_usage, 5);
    let other = store.consume_for_refresh(&f.key.api_key_id, &marker("jti-3", "fam-3", now), now).await;
    assert!(other.is_ok(), "other families refresh");
}

pub async fn a_refused_refresh_leaves_no_marker(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let exhausted = fixture(now, 0);
    let good = fixture(now, 5);
    put(&store, &exhausted.key).await;
    put(&store, &good.key).await;
    let err = store
        .consume_for_refresh(&exhausted.key.api_key_id, &marker("jti-4", "fam-4", now), now)
        .await
        .unwrap_err();
    assert_eq!(rejected_with(err).map(|k| k.remaining_total_usage), Some(0));
    let retry = store.consume_for_refresh(&good.key.api_key_id, &marker("jti-4", "fam-4", now), now).await;
    assert!(retry.is_ok(), "the refused attempt stored no marker: {retry:?}");
}

pub async fn refresh_is_refused_once_the_value_that_bought_it_is_regenerated(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    let rotate_primary = KeyChange {
        primary: Some(NewSecret { hash: other_hash(), last4: "NEW1".into() }),
        ..KeyChange::by("AKADMIN", now)
    };
    store.change_key(&f.key.api_key_id, "domain-a", &rotate_primary, &nonce("rotate", now)).await.unwrap();

    let stale = store.consume_for_refresh(&f.key.api_key_id, &marker("jti-7", "fam-7", now), now).await;
    let old = rejected_with(stale.unwrap_err()).expect("the key as it was");
    assert_eq!((old.primary.generation, old.remaining_total_usage), (1, 5), "nothing consumed");
    let stale_again = store.consume_for_refresh(&f.key.api_key_id, &marker("jti-7", "fam-7", now), now).await;
    assert!(matches!(stale_again, Err(WriteError::Rejected(Some(_)))), "the refused attempt left no marker");

    let current = RefreshMarker {
        bought_with: ValueRef { slot: KeySlot::Primary, generation: 1 },
        ..marker("jti-8", "fam-8", now)
    };
    store.consume_for_refresh(&f.key.api_key_id, &current, now).await.unwrap();
    let other_slot = RefreshMarker {
        bought_with: ValueRef { slot: KeySlot::Secondary, generation: 0 },
        ..marker("jti-9", "fam-9", now)
    };
    store.consume_for_refresh(&f.key.api_key_id, &other_slot, now).await.unwrap();
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap().unwrap().remaining_total_usage, 3);
}

pub async fn markers_and_revocations_lapse_after_their_time(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    store.consume_for_refresh(&f.key.api_key_id, &marker("jti-5", "fam-5", now), now).await.unwrap();
    store.revoke_family("fam-6", now + TimeDelta::minutes(15), now).await.unwrap();
    let later = now + TimeDelta::minutes(16);
    assert!(
        store.consume_for_refresh(&f.key.api_key_id, &marker("jti-5", "fam-5", later), later).await.is_ok()
    );
    assert!(
        store.consume_for_refresh(&f.key.api_key_id, &marker("jti-6", "fam-6", later), later).await.is_ok()
    );
}

pub async fn list_returns_a_domains_keys_oldest_first(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    // More keys than one DynamoDB batch read takes, written newest first.
    let mut expected = Vec::new();
    for i in (0..130).rev() {
        let mut f = fixture(now + TimeDelta::milliseconds(i), 5);
        f.key.domain_id = "domain-list".into();
        put(&store, &f.key).await;
        expected.push(f.key);
    }
    for _ in 0..3 {
        let mut other = fixture(now, 5);
        other.key.domain_id = "domain-other".into();
        put(&store, &other.key).await;
    }
    expected.reverse();
    assert_eq!(store.list_keys("domain-list").await.unwrap(), expected);
    assert_eq!(store.list_keys("domain-other").await.unwrap().len(), 3);
    assert_eq!(store.list_keys("domain-empty").await.unwrap(), Vec::new());

    let ids: Vec<ApiKeyId> = expected.iter().map(|key| key.api_key_id.clone()).collect();
    assert_eq!(store.list_key_ids("domain-list").await.unwrap(), ids);
    assert_eq!(store.count_keys("domain-list").await.unwrap(), 130);
    assert_eq!(store.count_keys("domain-other").await.unwrap(), 3);
    assert_eq!(store.count_keys("domain-empty").await.unwrap(), 0);
    let listings: Vec<KeyListing> = expected.iter().map(KeyListing::from).collect();
    assert_eq!(store.list_listings("domain-list", &ListingFilter::default()).await.unwrap(), listings);
    assert!(store.list_key_ids("domain-empty").await.unwrap().is_empty());
}

pub async fn get_keys_returns_those_asked_for_in_that_order(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let keys: Vec<ApiKey> = (0..120).map(|i| fixture(now + TimeDelta::milliseconds(i), 5).key).collect();
    for key in &keys {
        put(&store, key).await;
    }
    // Newest first, more than one batch, with an id that has no key in the middle.
    let missing = fixture(now, 5).key.api_key_id;
    let mut asked: Vec<ApiKeyId> = keys.iter().rev().map(|key| key.api_key_id.clone()).collect();
    asked.insert(60, missing);
    let found = store.get_keys(&asked).await.unwrap();
    let expected: Vec<ApiKey> = keys.iter().rev().cloned().collect();
    assert_eq!(found, expected);
    assert_eq!(store.get_keys(&[]).await.unwrap(), Vec::new());
    let twice = [keys[0].api_key_id.clone(), keys[1].api_key_id.clone(), keys[0].api_key_id.clone()];
    assert_eq!(store.get_keys(&twice).await.unwrap(), [keys[0].clone(), keys[1].clone(), keys[0].clone()]);
}

pub async fn listings_are_filtered_by_exact_equalities(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let mut keys = Vec::new();
    for (i, (user, name, state)) in [
        ("ann", "orders", KeyState::Enabled),
        ("bob", "orders", KeyState::Disabled),
        ("ann", "Orders", KeyState::Enabled),
        ("cy", "billing", KeyState::Enabled),
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = fixture(now + TimeDelta::milliseconds(i as i64), 5);
        f.key.domain_id = "domain-filter".into();
        f.key.user_id = user.into();
        f.key.name = name.into();
        f.key.state = state;
        put(&store, &f.key).await;
        keys.push(f.key);
    }
    // The positions (in `keys`) of the listings selected.
    async fn selected(
        store: &Arc<dyn Store>,
        keys: &[ApiKey],
        equal: &[(ListedField, &[&str])],
    ) -> Vec<usize> {
        let equal = equal.iter().map(|(f, v)| (*f, v.iter().map(|v| (*v).to_owned()).collect())).collect();
        let listings = store.list_listings("domain-filter", &ListingFilter { equal }).await.unwrap();
        listings.iter().map(|l| keys.iter().position(|k| k.api_key_id == l.api_key_id).unwrap()).collect()
    }
    let names = |equal: &'static [(ListedField, &'static [&'static str])]| selected(&store, &keys, equal);
    assert_eq!(names(&[(ListedField::Name, &["orders"])]).await, [0, 1], "exact: case counts");
    assert_eq!(names(&[(ListedField::UserId, &["ann", "cy"])]).await, [0, 2, 3]);
    assert_eq!(names(&[(ListedField::UserId, &["ann"]), (ListedField::State, &["ENABLED"])]).await, [0, 2]);
    assert_eq!(names(&[(ListedField::State, &["DISABLED"])]).await, [1]);
    assert_eq!(names(&[(ListedField::Name, &[])]).await, Vec::<usize>::new(), "none of no values");
    let id = keys[3].api_key_id.to_string();
    assert_eq!(selected(&store, &keys, &[(ListedField::ApiKeyId, &[id.as_str()])]).await, [3]);
}

/// The nonce of a new handling of the request `id` (each call is another handling).
pub fn nonce(id: &str, now: Timestamp) -> ReplayNonce {
    let request = format!("{:x}", rand::random::<u64>());
    ReplayNonce { id: id.into(), expires_at: now + TimeDelta::minutes(10), request }
}

/// An admin write sent again by the same handling (its first answer lost) is that write, applied
/// once; sent by another handling, it is a replay.
pub async fn a_write_sent_again_by_its_own_request_is_applied_once(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    let create = nonce("create", now);
    store.create_key(&f.key, Some(&create)).await.unwrap();
    store.create_key(&f.key, Some(&create)).await.expect("the same request again");
    let replay = nonce("create", now);
    assert!(matches!(store.create_key(&f.key, Some(&replay)).await, Err(WriteError::Replayed)));

    let rename = KeyChange { name: Some("renamed".into()), ..KeyChange::by("AKADMIN", now) };
    let change = nonce("change", now);
    let changed = store.change_key(&f.key.api_key_id, "domain-a", &rename, &change).await.unwrap();
    let rotate = KeyChange {
        primary: Some(NewSecret { hash: other_hash(), last4: "ROT1".into() }),
        ..KeyChange::by("AKADMIN", now)
    };
    let rotation = nonce("rotate", now);
    let rotated = store.change_key(&f.key.api_key_id, "domain-a", &rotate, &rotation).await.unwrap();
    let again = store.change_key(&f.key.api_key_id, "domain-a", &rotate, &rotation).await.unwrap();
    assert_eq!(again, rotated, "applied once: the generation moved by one");
    assert_eq!((again.primary.generation, again.name.as_str()), (1, "renamed"));
    let replayed = store.change_key(&f.key.api_key_id, "domain-a", &rename, &nonce("change", now)).await;
    assert!(matches!(replayed, Err(WriteError::Replayed)), "{replayed:?}");
    assert_eq!(changed.name, "renamed");

    let delete = nonce("delete", now);
    store.delete_key(&f.key.api_key_id, "domain-a", &delete, now).await.unwrap();
    store.delete_key(&f.key.api_key_id, "domain-a", &delete, now).await.expect("the same request again");
    let replay = store.delete_key(&f.key.api_key_id, "domain-a", &nonce("delete", now), now).await;
    assert!(matches!(replay, Err(WriteError::Replayed)), "{replay:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), None);
}

pub async fn change_applies_to_a_key_of_the_domain_once_per_nonce(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    let later = now + TimeDelta::seconds(1);
    let replacement = NewSecret { hash: other_hash(), last4: "WXYZ".into() };
    let change = KeyChange {
        state: Some(KeyState::Disabled),
        name: Some("renamed".into()),
        secondary: Some(replacement.clone()),
        ..KeyChange::by("AKADMIN", later)
    };
    let changed =
        store.change_key(&f.key.api_key_id, "domain-a", &change, &nonce("c1", later)).await.unwrap();
    let expected = f.key.changed(&change).expect("a next generation");
    assert_eq!(changed, expected);
    let rotated = StoredSecret { hash: replacement.hash, last4: replacement.last4, generation: 1 };
    assert_eq!(
        (changed.state, changed.name.as_str(), &changed.secondary),
        (KeyState::Disabled, "renamed", &rotated),
        "the replaced slot moves to its next generation"
    );
    assert_eq!(changed.primary, f.key.primary, "fields not in the change stay");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), Some(expected.clone()));

    let again = KeyChange { state: Some(KeyState::Enabled), ..KeyChange::by("AKADMIN", later) };
    let replayed = store.change_key(&f.key.api_key_id, "domain-a", &again, &nonce("c1", later)).await;
    assert!(matches!(replayed, Err(WriteError::Replayed)), "{replayed:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), Some(expected), "a replay changes nothing");
}

/// A slot at its last generation cannot be replaced: a generation that stood still would keep
/// the replaced value's token families alive.
pub async fn a_slot_at_its_last_generation_is_not_replaced(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let mut f = fixture(now, 5);
    f.key.primary.generation = u32::MAX;
    put(&store, &f.key).await;
    let rotate = |slot_primary: bool| {
        let new = NewSecret { hash: other_hash(), last4: "LAST".into() };
        let (primary, secondary) = if slot_primary { (Some(new), None) } else { (None, Some(new)) };
        KeyChange { primary, secondary, ..KeyChange::by("AKADMIN", now) }
    };
    let refused = store.change_key(&f.key.api_key_id, "domain-a", &rotate(true), &nonce("g1", now)).await;
    assert!(matches!(refused, Err(WriteError::Rejected(None))), "{refused:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), Some(f.key.clone()), "unchanged");
    let other = store.change_key(&f.key.api_key_id, "domain-a", &rotate(false), &nonce("g2", now)).await;
    assert_eq!(other.expect("the other slot moves on").secondary.generation, 1);
}

pub async fn change_refuses_another_domains_or_a_missing_key(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    let change = KeyChange { state: Some(KeyState::Disabled), ..KeyChange::by("AKOTHER", now) };
    let other = store.change_key(&f.key.api_key_id, "domain-b", &change, &nonce("c2", now)).await;
    assert!(matches!(other, Err(WriteError::Rejected(None))), "{other:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), Some(f.key.clone()));
    let missing = store.change_key(&ApiKeyId::generate(), "domain-a", &change, &nonce("c3", now)).await;
    assert!(matches!(missing, Err(WriteError::Rejected(None))), "{missing:?}");
    // The refused changes left no nonce behind: the same nonce still works.
    assert!(store.change_key(&f.key.api_key_id, "domain-a", &change, &nonce("c2", now)).await.is_ok());
}

pub async fn delete_removes_a_key_of_the_domain_once_per_nonce(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    let g = fixture(now, 5);
    put(&store, &f.key).await;
    put(&store, &g.key).await;
    let other = store.delete_key(&f.key.api_key_id, "domain-b", &nonce("d1", now), now).await;
    assert!(matches!(other, Err(WriteError::Rejected(None))), "{other:?}");
    assert!(store.get_key(&f.key.api_key_id).await.unwrap().is_some(), "another domain cannot delete it");
    store.delete_key(&f.key.api_key_id, "domain-a", &nonce("d1", now), now).await.unwrap();
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), None);
    let replayed = store.delete_key(&g.key.api_key_id, "domain-a", &nonce("d1", now), now).await;
    assert!(matches!(replayed, Err(WriteError::Replayed)), "{replayed:?}");
    assert!(store.get_key(&g.key.api_key_id).await.unwrap().is_some());
    let gone = store.consume_for_token(&f.key.api_key_id, &f.primary, now).await;
    assert!(matches!(gone, Err(WriteError::Rejected(None))), "a deleted key mints nothing");
}

/// A refused write's nonce, spent alone, refuses every later write that presents it; spending it
/// again is done when this handling spent it and a replay when another did. It lapses in time.
pub async fn a_spent_nonce_refuses_every_later_write(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5);
    put(&store, &f.key).await;
    let spent = nonce("refused", now);
    store.spend_nonce(&spent, now).await.expect("spent");
    store.spend_nonce(&spent, now).await.expect("the same handling again");
    let replay = store.spend_nonce(&nonce("refused", now), now).await;
    assert!(matches!(replay, Err(WriteError::Replayed)), "{replay:?}");

    let disable = KeyChange { state: Some(KeyState::Disabled), ..KeyChange::by("AKADMIN", now) };
    let changed = store.change_key(&f.key.api_key_id, "domain-a", &disable, &nonce("refused", now)).await;
    assert!(matches!(changed, Err(WriteError::Replayed)), "{changed:?}");
    let deleted = store.delete_key(&f.key.api_key_id, "domain-a", &nonce("refused", now), now).await;
    assert!(matches!(deleted, Err(WriteError::Replayed)), "{deleted:?}");
    let g = fixture(now, 5);
    let created = store.create_key(&g.key, Some(&nonce("refused", now))).await;
    assert!(matches!(created, Err(WriteError::Replayed)), "{created:?}");
    assert_eq!(store.get_key(&f.key.api_key_id).await.unwrap(), Some(f.key.clone()), "nothing changed");
    assert_eq!(store.get_key(&g.key.api_key_id).await.unwrap(), None);

    let lapsed = spent.expires_at + TimeDelta::seconds(1);
    store.spend_nonce(&nonce("refused", lapsed), lapsed).await.expect("a lapsed nonce counts as absent");
}

/// Many lapsed markers later, a live one still counts (the embedded store sweeps lapsed entries).
pub async fn sweeping_lapsed_markers_keeps_live_ones(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    let f = fixture(now, 5000);
    put(&store, &f.key).await;
    let live = RefreshMarker { expires_at: now + TimeDelta::days(1), ..marker("live", "fam-live", now) };
    store.consume_for_refresh(&f.key.api_key_id, &live, now).await.unwrap();
    for n in 0..1100 {
        let at = now + TimeDelta::seconds(n);
        let short = RefreshMarker {
            expires_at: at + TimeDelta::milliseconds(1),
            ..marker(&format!("short-{n}"), &format!("f-{n}"), at)
        };
        store.consume_for_refresh(&f.key.api_key_id, &short, at).await.unwrap();
    }
    let later = now + TimeDelta::hours(1);
    let again = store.consume_for_refresh(&f.key.api_key_id, &live, later).await;
    assert!(matches!(again, Err(WriteError::TokenReused)), "{again:?}");
    let lapsed =
        RefreshMarker { expires_at: later + TimeDelta::minutes(1), ..marker("short-0", "f-0", later) };
    assert!(store.consume_for_refresh(&f.key.api_key_id, &lapsed, later).await.is_ok());
}

/// Fills a store with one item of each kind: two keys (one created with a nonce), a refresh
/// marker and a revoked family. Returns the keys.
pub async fn one_of_each(store: &Arc<dyn Store>, now: Timestamp) -> (Fixture, Fixture) {
    let (a, b) = (fixture(now, 5), fixture(now, 7));
    put(store, &a.key).await;
    store.create_key(&b.key, Some(&nonce("create-b", now))).await.unwrap();
    store.consume_for_refresh(&a.key.api_key_id, &marker("jti-a", "family-a", now), now).await.unwrap();
    store.revoke_family("family-z", now + TimeDelta::minutes(15), now).await.unwrap();
    (a, b)
}

/// Export gives every item; importing it again adds nothing and overwrites nothing, so an old
/// backup cannot hand a key back the units it has used since; what was deleted comes back.
pub async fn export_then_import_restores_without_overwriting(store: Arc<dyn Store>) {
    let now = Clock::default().now();
    assert!(store.is_empty().await.unwrap(), "a new store is empty");
    let (a, b) = one_of_each(&store, now).await;
    assert!(!store.is_empty().await.unwrap());
    let backup = store.export().await.unwrap();
    let mut kinds: Vec<&str> = backup
        .iter()
        .map(|record| match record {
            Record::Key(_) => "key",
            Record::RefreshMarker { .. } => "marker",
            Record::RevokedFamily { .. } => "family",
            Record::ReplayNonce { .. } => "nonce",
        })
        .collect();
    kinds.dedup();
    assert_eq!(kinds, ["key", "marker", "family", "nonce"], "{backup:?}");
    assert_eq!(backup.len(), 5);
    let mut sorted = backup.clone();
    Record::sort(&mut sorted);
    assert_eq!(sorted, backup, "exported in Record::sort's order");

    assert_eq!(store.import(&backup).await.unwrap(), Imported { added: 0, kept: 5 });
    let spent = store.consume_for_token(&b.key.api_key_id, &b.primary, now).await.unwrap();
    store.delete_key(&a.key.api_key_id, "domain-a", &nonce("delete-a", now), now).await.unwrap();
    assert_eq!(store.import(&backup).await.unwrap(), Imported { added: 1, kept: 4 });
    assert_eq!(store.get_key(&b.key.api_key_id).await.unwrap(), Some(spent), "not overwritten");
    let a_after = store.get_key(&a.key.api_key_id).await.unwrap().expect("restored");
    assert_eq!(a_after.remaining_total_usage, 4, "as it was in the backup");
}

/// One `#[tokio::test]` per case for the store `$make` builds.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            create_then_get_round_trips_every_field,
            create_refuses_a_taken_id,
            create_refuses_a_replayed_nonce_and_writes_nothing,
            register_sets_the_expiry_once,
            register_keeps_a_fixed_expiry,
            register_refuses_unknown_disabled_and_wrong_secret,
            token_consumes_one_unit_with_either_secret,
            token_is_refused_with_the_key_as_it_was,
            refresh_consumes_one_unit_and_is_single_use,
            refresh_is_refused_for_a_revoked_family,
            a_refused_refresh_leaves_no_marker,
            refresh_is_refused_once_the_value_that_bought_it_is_regenerated,
            markers_and_revocations_lapse_after_their_time,
            list_returns_a_domains_keys_oldest_first,
            get_keys_returns_those_asked_for_in_that_order,
            listings_are_filtered_by_exact_equalities,
            change_applies_to_a_key_of_the_domain_once_per_nonce,
            change_refuses_another_domains_or_a_missing_key,
            a_slot_at_its_last_generation_is_not_replaced,
            delete_removes_a_key_of_the_domain_once_per_nonce,
            a_write_sent_again_by_its_own_request_is_applied_once,
            a_spent_nonce_refuses_every_later_write,
            sweeping_lapsed_markers_keeps_live_ones,
            export_then_import_restores_without_overwriting,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::conformance::$case($make).await;
            }
        )*
    };
}
