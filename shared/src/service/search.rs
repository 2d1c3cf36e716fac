//! The admin surfaces' reads of many keys: SpaceONE's search and stat, NCP's list. A plain page
//! reads only the domain's ids and the page's keys; anything that must look at every key runs as
//! one of the domain's queries (see [`QueryRunner`](super::QueryRunner)), within its limits.

use std::collections::HashMap;

use super::{Admission, Keygate, rules};
use crate::api_key_info;
use crate::error::Error;
use crate::model::{ApiKey, ApiKeyId, Caller, Timestamp};
use crate::query::stat::{StatResult, StatisticsQuery};
use crate::query::{Query, QueryResult};
use crate::store::{KeyListing, ListedField, ListingFilter};

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

impl Keygate {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::admin::tests::{caller, create, keygate};

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
}
