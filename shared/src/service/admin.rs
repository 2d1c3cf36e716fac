//! The admin surfaces' use cases (SpaceONE and NCP alike): create, read, search, count, change,
//! rotate and delete the keys of the caller's domain. Each checks its input against [`rules`]
//! first, so the rules hold whichever surface a request came through.

use std::collections::HashMap;

use super::{Admission, Keygate, rules};
use crate::api_key_info;
use crate::error::Error;
use crate::key_value::KeyValue;
use crate::model::{
    ApiKey, ApiKeyId, Caller, KeyChange, KeySlot, KeyState, NewSecret, StoredSecret, Timestamp,
};
use crate::query::stat::{StatResult, StatisticsQuery};
use crate::query::{Query, QueryResult};
use crate::replay::ReplayNonce;
use crate::store::{KeyListing, ListedField, ListingFilter, WriteError};

const DEFAULT_DOMAIN_CODE: &str = "PUB";
pub const REPLAYED: &str = "request already accepted once; sign each request with a new timestamp";

/// An admin's request for a new key; `None` means "the default".
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub user_id: String,
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub scope: Option<Vec<String>>,
    pub max_total_usage: Option<i64>,
    pub validity_seconds: Option<i64>,
    pub expires_at: Option<Timestamp>,
}

/// A new key with its two values, which are shown this once and never again.
pub struct CreatedKey {
    pub key: ApiKey,
    pub primary: KeyValue,
    pub secondary: KeyValue,
}

/// The key an admin request names: its id and, where a surface lets the request repeat it, the
/// domain the request says the key is in, which must be the caller's.
#[derive(Clone, Debug, Default)]
pub struct KeyTarget {
    pub id: String,
    pub domain_id: Option<String>,
}

impl KeyTarget {
    pub fn id(id: impl Into<String>) -> Self {
        Self { id: id.into(), domain_id: None }
    }
}

/// SpaceONE's `APIKeyQuery`: a `Query` and equality conditions on three fields.
#[derive(Clone, Debug, Default)]
pub struct KeySearch {
    pub query: Query,
    pub api_key_id: Option<String>,
    pub state: Option<String>,
    pub user_id: Option<String>,
    pub domain_id: Option<String>,
}

/// SpaceONE's `APIKeyStatQuery`.
#[derive(Debug)]
pub struct KeyStat {
    pub query: StatisticsQuery,
    pub domain_id: Option<String>,
}

/// One page of a domain's keys, oldest first, optionally only those whose name contains a text
/// (case-insensitive).
#[derive(Clone, Debug)]
pub struct ListPage {
    pub offset: usize,
    pub limit: usize,
    pub name_contains: Option<String>,
}

/// A page of keys and how many matched in all.
#[derive(Debug)]
pub struct KeysPage {
    pub keys: Vec<ApiKey>,
    pub total: usize,
}

/// An admin's change to a key's details; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

impl Keygate {
    pub async fn create_key(
        &self,
        caller: &Caller,
        request: NewKey,
        nonce: Option<&ReplayNonce>,
    ) -> Result<CreatedKey, Error> {
        let now = self.now();
        rules::own_domain(caller, request.domain_id.as_deref())?;
        let user_id = rules::user_id(request.user_id)?;
        let id = ApiKeyId::generate();
        let name = match request.name {
            Some(name) => rules::name(name)?,
            None => id.to_string(),
        };
        let description = rules::description(request.description.unwrap_or_default())?;
        let scope = rules::scope(request.scope.unwrap_or_default())?;
        let max_total_usage = match request.max_total_usage {
            None => self.key_defaults.max_total_usage,
            Some(n) => rules::max_total_usage(n)?,
        };
        let (validity_seconds, expires_at) = rules::expiry(
            request.validity_seconds,
            request.expires_at,
            self.key_defaults.validity_seconds,
            now,
        )?;

        let pepper = self.pepper()?;
        let primary = KeyValue::generate(&id);
        let secondary = KeyValue::generate(&id);
        let key = ApiKey {
            primary: StoredSecret::first(pepper.hash(&primary), primary.last4()),
            secondary: StoredSecret::first(pepper.hash(&secondary), secondary.last4()),
            api_key_id: id,
            domain_id: caller.domain_id.clone(),
            user_id,
            name,
            description,
            state: KeyState::Enabled,
            scope,
            max_total_usage,
            remaining_total_usage: max_total_usage,
            validity_seconds,
            expires_at,
            registered_at: None,
            last_accessed_at: None,
            created_at: now,
            modified_at: now,
            modifier: caller.access_key.clone(),
            domain_code: DEFAULT_DOMAIN_CODE.into(),
        };
        match self.store.create_key(&key, nonce).await {
            Ok(()) => Ok(CreatedKey { key, primary, secondary }),
            Err(WriteError::Replayed) => Err(replayed()),
            // 48 random bits collide about once in 16 million keys of one table; say so rather
            // than overwrite, and let the caller retry.
            Err(WriteError::AlreadyExists) => Err(Error::Conflict),
            Err(WriteError::Store(err)) => Err(err.into()),
            Err(other) => Err(Error::Internal(format!("unexpected create outcome {other:?}"))),
        }
    }

    /// A key of the caller's domain; any other id, well-formed or not, is unknown. Naming another
    /// domain is refused.
    pub async fn get_key(&self, caller: &Caller, target: &KeyTarget) -> Result<ApiKey, Error> {
        rules::own_domain(caller, target.domain_id.as_deref())?;
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        match self.store.get_key(&id).await? {
            Some(key) if key.domain_id == caller.domain_id => Ok(key),
            _ => Err(Error::NotFound),
        }
    }

    /// The `APIKeyInfo` documents of the caller's domain that a SpaceONE `Query` selects. A
    /// query that selects all, in order, reads only the domain's key ids and the page's keys.
    /// Any other reads the domain's listings (or, to test a counter, every key) and runs as one
    /// of the domain's queries (see [`QueryRunner`](super::QueryRunner)); so does a search whose
    /// page changed since the index said what it holds, which then reads every key.
    pub async fn search_keys(&self, caller: &Caller, search: KeySearch) -> Result<QueryResult, Error> {
        rules::own_domain(caller, search.domain_id.as_deref())?;
        let mut query = search.query;
        query.and_equal("api_key_id", search.api_key_id);
        query.and_equal("state", search.state);
        query.and_equal("user_id", search.user_id);
        let (schema, projection, now) = (api_key_info::schema(), api_key_info::PROJECTION, self.now());
        // Refused queries cost no read.
        query.select(Vec::new(), &schema, &projection, now)?;
        let domain_id = caller.domain_id.as_str();
        let in_order = query.selects_all_in_order();
        if in_order && let Some(found) = self.search_in_order(&query, domain_id).await? {
            return Ok(found);
        }
        let admitted = self.queries.admit(domain_id).await?;
        if !in_order
            && !query.tests_any(&api_key_info::COUNTERS)
            && let Some(found) = self.search_listings(&admitted, &query, domain_id, now).await?
        {
            return Ok(found);
        }
        let keys = self.store.list_keys(domain_id).await?;
        admitted.check_cost(keys.len(), query.terms(&projection))?;
        admitted.run(move || query.run(api_key_info::documents(&keys), &schema, &projection, now)).await
    }

    /// The search of every key in creation order, answered from the domain's ids and the page's
    /// keys; `None` when a key of the page was deleted since the ids were read.
    async fn search_in_order(&self, query: &Query, domain_id: &str) -> Result<Option<QueryResult>, Error> {
        if query.count_only() {
            let total_count = self.store.count_keys(domain_id).await?;
            return Ok(Some(QueryResult { results: Vec::new(), total_count }));
        }
        let ids = self.store.list_key_ids(domain_id).await?;
        let Some(keys) = self.keys_as_listed(&ids[query.page_range(ids.len())], None).await? else {
            return Ok(None);
        };
        let selected = QueryResult { results: api_key_info::documents(&keys), total_count: ids.len() };
        Ok(Some(query.present(selected, &api_key_info::PROJECTION)))
    }

    /// The search answered from the domain's listings and the page's keys; `None` when a key of
    /// the page was deleted or changed since the index was read (indexes are eventually
    /// consistent).
    async fn search_listings(
        &self,
        admitted: &Admission,
        query: &Query,
        domain_id: &str,
        now: Timestamp,
    ) -> Result<Option<QueryResult>, Error> {
        let projection = api_key_info::PROJECTION;
        let listings = self.store.list_listings(domain_id, &listing_filter(query)).await?;
        admitted.check_cost(listings.len(), query.terms(&projection))?;
        let selecting = query.clone();
        let (page, total_count) = admitted
            .run(move || {
                let documents = listings.iter().map(api_key_info::listing_document).collect();
                let (schema, projection) = (api_key_info::schema(), api_key_info::PROJECTION);
                let selected = selecting.select(documents, &schema, &projection, now)?;
                let by_id: HashMap<&str, &KeyListing> =
                    listings.iter().map(|l| (l.api_key_id.as_str(), l)).collect();
                let page: Vec<KeyListing> = selected
                    .results
                    .iter()
                    .filter_map(|doc| by_id.get(doc.get("api_key_id")?.as_str()?).map(|l| (*l).clone()))
                    .collect();
                Ok((page, selected.total_count))
            })
            .await?;
        let ids: Vec<ApiKeyId> = page.iter().map(|listing| listing.api_key_id.clone()).collect();
        let Some(keys) = self.keys_as_listed(&ids, Some(&page)).await? else { return Ok(None) };
        let selected = QueryResult { results: api_key_info::documents(&keys), total_count };
        Ok(Some(query.present(selected, &projection)))
    }

    /// The keys with these ids, if every one is still there and, given its listing, still as
    /// listed; `None` otherwise.
    async fn keys_as_listed(
        &self,
        ids: &[ApiKeyId],
        listed: Option<&[KeyListing]>,
    ) -> Result<Option<Vec<ApiKey>>, Error> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let keys = self.store.get_keys(ids).await?;
        let as_listed = keys.len() == ids.len()
            && listed.is_none_or(|listed| {
                keys.iter().zip(listed).all(|(key, listing)| KeyListing::from(key) == *listing)
            });
        Ok(as_listed.then_some(keys))
    }

    /// A SpaceONE `StatisticsQuery` over the caller's domain: its `results` (and `total_count`).
    /// It reads every key of the domain, as one of the domain's queries.
    pub async fn stat_keys(&self, caller: &Caller, stat: KeyStat) -> Result<StatResult, Error> {
        rules::own_domain(caller, stat.domain_id.as_deref())?;
        let (query, schema, now) = (stat.query, api_key_info::schema(), self.now());
        // Refused queries cost no read.
        query.run(Vec::new(), &schema, now)?;
        let admitted = self.queries.admit(&caller.domain_id).await?;
        let keys = self.store.list_keys(&caller.domain_id).await?;
        admitted.check_cost(keys.len(), query.terms())?;
        admitted.run(move || query.run(api_key_info::documents(&keys), &schema, now)).await
    }

    /// A page of the caller's keys, oldest first: their ids and then only the keys of the page.
    /// To match the name it reads the domain's listings, and every key when the page changed
    /// since the index was read, as one of the domain's queries.
    pub async fn list_keys(&self, caller: &Caller, page: ListPage) -> Result<KeysPage, Error> {
        let limit = rules::list_limit(page.limit)?;
        let domain_id = caller.domain_id.as_str();
        let name = page.name_contains.map(|n| n.to_lowercase());
        let slice = |total: usize| {
            let from = page.offset.min(total);
            from..from.saturating_add(limit).min(total)
        };
        let mut admitted = None;
        let found = match &name {
            None => {
                let ids = self.store.list_key_ids(domain_id).await?;
                let keys = self.keys_as_listed(&ids[slice(ids.len())], None).await?;
                keys.map(|keys| KeysPage { keys, total: ids.len() })
            }
            Some(name) => {
                let admission = admitted.insert(self.queries.admit(domain_id).await?);
                let listings = self.store.list_listings(domain_id, &ListingFilter::default()).await?;
                admission.check_cost(listings.len(), 1)?;
                let name = name.clone();
                let matching: Vec<KeyListing> = admission
                    .run(move || Ok(listings.into_iter().filter(|l| name_contains(&l.name, &name)).collect()))
                    .await?;
                let page = &matching[slice(matching.len())];
                let ids: Vec<ApiKeyId> = page.iter().map(|listing| listing.api_key_id.clone()).collect();
                let keys = self.keys_as_listed(&ids, Some(page)).await?;
                keys.map(|keys| KeysPage { keys, total: matching.len() })
            }
        };
        if let Some(found) = found {
            return Ok(found);
        }
        let admitted = match admitted {
            Some(admitted) => admitted,
            None => self.queries.admit(domain_id).await?,
        };
        let keys = self.store.list_keys(domain_id).await?;
        admitted.check_cost(keys.len(), 1)?;
        let matching: Vec<ApiKey> = admitted
            .run(move || {
                Ok(keys
                    .into_iter()
                    .filter(|key| name.as_deref().is_none_or(|n| name_contains(&key.name, n)))
                    .collect())
            })
            .await?;
        let total = matching.len();
        let keys = matching[slice(total)].to_vec();
        Ok(KeysPage { keys, total })
    }

    pub async fn set_state(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        state: KeyState,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        let change = KeyChange { state: Some(state), ..KeyChange::by(&caller.access_key, self.now()) };
        self.change(caller, target, &change, nonce).await
    }

    /// Renames, redescribes, enables or disables a key (NCP's PUT).
    pub async fn update_key(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        update: KeyUpdate,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        let change = KeyChange {
            name: update.name.map(rules::name).transpose()?,
            description: update.description.map(rules::description).transpose()?,
            state: update.enabled.map(|on| if on { KeyState::Enabled } else { KeyState::Disabled }),
            ..KeyChange::by(&caller.access_key, self.now())
        };
        self.change(caller, target, &change, nonce).await
    }

    /// Replaces one of a key's two values; the other keeps working, so a customer can move to the
    /// new value without a failed request. The new value is returned this once.
    pub async fn regenerate(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        slot: KeySlot,
        nonce: &ReplayNonce,
    ) -> Result<(ApiKey, KeyValue), Error> {
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        let value = KeyValue::generate(&id);
        let mut change = KeyChange::by(&caller.access_key, self.now());
        match slot {
            KeySlot::Primary => change.primary = Some(self.new_secret(&value)?),
            KeySlot::Secondary => change.secondary = Some(self.new_secret(&value)?),
        }
        Ok((self.change(caller, target, &change, nonce).await?, value))
    }

    /// Deletes a key of the caller's domain: the client API refuses it from this moment.
    pub async fn delete_key(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        nonce: &ReplayNonce,
    ) -> Result<(), Error> {
        rules::own_domain(caller, target.domain_id.as_deref())?;
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        self.store.delete_key(&id, &caller.domain_id, nonce, self.now()).await.map_err(admin_write_error)
    }

    /// Applies an admin change to a key of the caller's domain.
    async fn change(
        &self,
        caller: &Caller,
        target: &KeyTarget,
        change: &KeyChange,
        nonce: &ReplayNonce,
    ) -> Result<ApiKey, Error> {
        rules::own_domain(caller, target.domain_id.as_deref())?;
        let id = ApiKeyId::parse(&target.id).ok_or(Error::NotFound)?;
        self.store.change_key(&id, &caller.domain_id, change, nonce).await.map_err(admin_write_error)
    }

    /// Runs the work of a verified state-changing request, whose signature is spent whatever the
    /// answer: when the work ends in a refusal (its write refused or never attempted), the nonce
    /// is put on its own before the refusal is answered, so the captured request cannot be sent
    /// again with another body. A refusal whose signature could not be spent is 503: answering
    /// it would leave the signature usable.
    pub async fn spending_signature<T>(
        &self,
        nonce: &ReplayNonce,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match work.await {
            Ok(done) => Ok(done),
            // The only signature refusal past the verifier: the nonce is already someone's.
            Err(replay @ Error::Unauthenticated(_)) => Err(replay),
            Err(refusal) => Err(self.spend_signature(nonce, refusal).await),
        }
    }

    /// Spends the signature of a verified state-changing request refused with `refusal` (its
    /// write refused or never attempted), and answers what to say: the refusal, a replay when
    /// another handling spent the signature first, or 503 when it could not be spent.
    pub async fn spend_signature(&self, nonce: &ReplayNonce, refusal: Error) -> Error {
        match self.store.spend_nonce(nonce, self.now()).await {
            Ok(()) => refusal,
            Err(WriteError::Replayed) => replayed(),
            Err(err) => Error::Unavailable(format!("signature not spent after \"{refusal}\": {err:?}")),
        }
    }

    /// What the store keeps of a value that replaces a slot's.
    fn new_secret(&self, value: &KeyValue) -> Result<NewSecret, Error> {
        Ok(NewSecret { hash: self.pepper()?.hash(value), last4: value.last4() })
    }
}

/// The most values a store is asked to compare: DynamoDB takes at most 100 in one `IN`, and
/// limits an expression to 4 KB and 300 operators. Conditions past it are left to the query
/// engine, which tests every condition anyway.
const MAX_PUSHED_VALUES: usize = 100;

/// The query's equalities on text fields that a store can test as it reads listings.
fn listing_filter(query: &Query) -> ListingFilter {
    let mut budget = MAX_PUSHED_VALUES;
    let equal = query
        .equalities()
        .filter_map(|(field, values)| {
            let field = match field {
                "api_key_id" => ListedField::ApiKeyId,
                "user_id" => ListedField::UserId,
                "name" => ListedField::Name,
                "state" => ListedField::State,
                _ => return None,
            };
            if values.is_empty() || values.len() > budget {
                return None;
            }
            budget -= values.len();
            Some((field, values.into_iter().map(str::to_owned).collect()))
        })
        .collect();
    ListingFilter { equal }
}

/// Whether a key's name contains `lowercase`, whatever the case.
fn name_contains(name: &str, lowercase: &str) -> bool {
    name.to_lowercase().contains(lowercase)
}

/// Each signature is accepted once: two writes signed in the same millisecond share one.
fn replayed() -> Error {
    Error::Unauthenticated(REPLAYED.into())
}

/// A key-scoped admin write that did not happen: unknown or another domain's key is not found.
fn admin_write_error(err: WriteError) -> Error {
    match err {
        WriteError::Rejected(_) => Error::NotFound,
        WriteError::Replayed => replayed(),
        WriteError::Store(err) => err.into(),
        other => Error::Internal(format!("unexpected admin write outcome {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, PEPPER, SIGNING_KEY};
    use crate::store::MemoryStore;
    use crate::tokens::SigningAlgorithm;

    fn keygate() -> Keygate {
        let pem = SigningAlgorithm::EdDsa.generate_pem();
        let config = Config::from_lookup(|name| match name {
            PEPPER => Some("a-pepper-of-enough-bytes".into()),
            SIGNING_KEY => Some(pem.clone()),
            _ => None,
        })
        .expect("configuration");
        // Each reading is a millisecond later, so keys created one after another sort in order.
        let ticks = std::sync::atomic::AtomicI64::new(1_764_000_000_000);
        Keygate::new(config, Arc::new(MemoryStore::new())).with_clock(move || {
            let millis = ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Timestamp::from_timestamp_millis(millis).expect("in range")
        })
    }

    fn caller(domain: &str) -> Caller {
        Caller { domain_id: domain.into(), access_key: format!("AK-{domain}") }
    }

    async fn create(app: &Keygate, caller: &Caller, name: &str) -> ApiKey {
        let new_key = NewKey { user_id: "user-1".into(), name: Some(name.into()), ..NewKey::default() };
        app.create_key(caller, new_key, None).await.expect("created").key
    }

    fn nonce(id: &str, app: &Keygate) -> ReplayNonce {
        ReplayNonce::new(id, app.now())
    }

    #[tokio::test]
    async fn a_search_sees_only_the_callers_domain_and_refuses_naming_another() {
        let app = keygate();
        let mine = create(&app, &caller("a"), "mine").await;
        create(&app, &caller("b"), "theirs").await;
        let found = app.search_keys(&caller("a"), KeySearch::default()).await.unwrap();
        assert_eq!(found.total_count, 1);
        assert_eq!(found.results[0]["api_key_id"], mine.api_key_id.as_str());
        let naming_b = KeySearch { domain_id: Some("b".into()), ..KeySearch::default() };
        assert!(matches!(app.search_keys(&caller("a"), naming_b).await, Err(Error::PermissionDenied(_))));
    }

    #[tokio::test]
    async fn a_list_page_counts_every_match_and_returns_its_slice_oldest_first() {
        let app = keygate();
        for name in ["orders-1", "billing", "orders-2", "Orders-3"] {
            create(&app, &caller("a"), name).await;
        }
        let page = ListPage { offset: 1, limit: 1, name_contains: Some("ORDERS".into()) };
        let found = app.list_keys(&caller("a"), page).await.unwrap();
        assert_eq!(found.total, 3);
        assert_eq!(found.keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["orders-2"]);
        let too_many = ListPage { offset: 0, limit: 101, name_contains: None };
        assert!(matches!(app.list_keys(&caller("a"), too_many).await, Err(Error::InvalidArgument(_))));
    }

    #[tokio::test]
    async fn another_domains_key_is_not_found_to_every_key_scoped_use_case() {
        let app = keygate();
        let theirs = create(&app, &caller("b"), "theirs").await;
        let target = KeyTarget::id(theirs.api_key_id.as_str());
        let me = caller("a");
        assert!(matches!(app.get_key(&me, &target).await, Err(Error::NotFound)));
        let disabled = app.set_state(&me, &target, KeyState::Disabled, &nonce("1", &app)).await;
        assert!(matches!(disabled, Err(Error::NotFound)));
        let rotated = app.regenerate(&me, &target, KeySlot::Primary, &nonce("2", &app)).await;
        assert!(matches!(rotated, Err(Error::NotFound)));
        assert!(matches!(app.delete_key(&me, &target, &nonce("3", &app)).await, Err(Error::NotFound)));
        assert_eq!(app.get_key(&caller("b"), &target).await.unwrap(), theirs, "unchanged");
    }

    #[tokio::test]
    async fn an_update_is_checked_before_it_reaches_the_store_and_records_who_made_it() {
        let app = keygate();
        let key = create(&app, &caller("a"), "before").await;
        let target = KeyTarget::id(key.api_key_id.as_str());
        let blank_name = KeyUpdate { name: Some(" ".into()), ..KeyUpdate::default() };
        let refused = app.update_key(&caller("a"), &target, blank_name, &nonce("1", &app)).await;
        assert!(matches!(refused, Err(Error::MissingParameter(field)) if field == "name"));

        let update = KeyUpdate { name: Some("after".into()), enabled: Some(false), ..KeyUpdate::default() };
        let changed = app.update_key(&caller("a"), &target, update, &nonce("2", &app)).await.unwrap();
        assert_eq!((changed.name.as_str(), changed.state), ("after", KeyState::Disabled));
        assert_eq!(changed.description, key.description, "left as it was");
        assert_eq!(changed.modifier, "AK-a");
        let replayed = app.update_key(&caller("a"), &target, KeyUpdate::default(), &nonce("2", &app)).await;
        assert!(matches!(replayed, Err(Error::Unauthenticated(_))));
    }
}
