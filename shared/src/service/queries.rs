//! Where the admin queries that read a whole domain run (a search beyond a plain page, every
//! `stat`, NCP's name filter): a few at a time, each within a cost limit, and, in the local
//! server, on threads of their own. So one tenant's queries slow neither the client API nor
//! another tenant, whose requests the server's worker threads keep serving.
//!
//! A Lambda serves one request at a time: there the work runs where the request does, and only
//! the cost limit applies.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::background;
use crate::config::ConfigError;
use crate::error::Error;

/// The setting that bounds one query's cost (keys read × terms tested on each).
pub const QUERY_COST_LIMIT: &str = "KEYGATE_QUERY_COST_LIMIT";

/// What the runner allows each query, and each domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// The most one query may cost: keys read × the terms it tests on each (see `Query::terms`).
    /// 10,000 keys × 100 terms; a query past it is refused before it runs.
    pub cost: u64,
    /// The most queries of one domain that read all its keys at once, running or waiting for a
    /// thread; one more is refused with 503 rather than queued.
    pub per_domain: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self { cost: 1_000_000, per_domain: 2 }
    }
}

impl QueryLimits {
    /// The defaults, with the cost limit `KEYGATE_QUERY_COST_LIMIT` sets, if it does.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let cost = match lookup(QUERY_COST_LIMIT) {
            None => Self::default().cost,
            Some(value) => value.trim().parse().ok().filter(|cost| *cost > 0).ok_or_else(|| {
                ConfigError::new(format!("{QUERY_COST_LIMIT} must be a whole number above 0"))
            })?,
        };
        Ok(Self { cost, ..Self::default() })
    }
}

/// Runs the heavy admin queries: where the request runs ([`Self::inline`]), or on threads of its
/// own ([`Self::threads`]).
pub struct QueryRunner {
    limits: QueryLimits,
    /// How many queries each domain has admitted.
    admitted: Arc<Mutex<HashMap<String, usize>>>,
    pool: Option<Pool>,
}

impl QueryRunner {
    /// Runs each query where its request runs: for a Lambda, which serves one request at a time.
    pub fn inline(limits: QueryLimits) -> Self {
        Self { limits, admitted: Arc::default(), pool: None }
    }

    /// Runs queries on `threads` threads of their own, at the lowest priority, one query a
    /// thread from the moment it starts reading the domain's keys to its answer: at most
    /// `threads` cores ever work on queries, whatever the number of requests, and only with
    /// what the requests leave.
    pub fn threads(threads: NonZeroUsize, limits: QueryLimits) -> std::io::Result<Self> {
        Ok(Self { limits, admitted: Arc::default(), pool: Some(Pool::start(threads)?) })
    }

    /// One thread fewer than the machine has cores, and at least one: the rest serve requests.
    pub fn threads_for_this_machine() -> NonZeroUsize {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        NonZeroUsize::new(cores.saturating_sub(1)).unwrap_or(NonZeroUsize::MIN)
    }

    /// A place for one query of `domain_id`: refused at once when the domain already has its
    /// limit of them, else given when a thread is free (in the order asked).
    pub async fn admit(&self, domain_id: &str) -> Result<Admission, Error> {
        let mut ticket = Ticket::take(&self.admitted, domain_id, self.limits.per_domain)?;
        if let Some(pool) = &self.pool {
            let permit = pool.free.clone().acquire_owned().await.expect("the semaphore is never closed");
            ticket.thread = Some(permit);
        }
        Ok(Admission { ticket: Arc::new(ticket), cost_limit: self.limits.cost, jobs: self.jobs() })
    }

    fn jobs(&self) -> Option<mpsc::Sender<Job>> {
        self.pool.as_ref().map(|pool| pool.jobs.clone())
    }
}

/// An admitted query: it holds its domain's place (and its thread) until it and its work are
/// done, even when the request is dropped while the work runs.
pub struct Admission {
    ticket: Arc<Ticket>,
    cost_limit: u64,
    jobs: Option<mpsc::Sender<Job>>,
}

impl Admission {
    /// Refuses a query that would test `terms` terms on each of `keys` keys when that is more than
    /// the cost limit.
    pub fn check_cost(&self, keys: usize, terms: usize) -> Result<(), Error> {
        let cost = u64::try_from(keys).unwrap_or(u64::MAX).saturating_mul(terms as u64);
        if cost <= self.cost_limit {
            return Ok(());
        }
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        Err(Error::InvalidArgument(format!(
            "query too costly: {} × {} = {cost}, over the query cost limit of {}; test fewer fields \
             or values, or read fewer keys",
            plural(keys, "key"),
            plural(terms, "term"),
            self.cost_limit
        )))
    }

    /// Runs `work` (building documents, filtering, sorting, aggregating) on the query's thread.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(jobs) = &self.jobs else { return work() };
        let (answer, answered) = oneshot::channel();
        let ticket = self.ticket.clone();
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(work));
            drop(ticket);
            let _ = answer.send(outcome);
        });
        let stopped = || Error::Internal("the query threads have stopped".into());
        jobs.send(job).map_err(|_| stopped())?;
        match answered.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(Error::Internal("a query panicked".into())),
            Err(_) => Err(stopped()),
        }
    }
}

/// A domain's place for one query, given back when dropped, with the thread it holds.
struct Ticket {
    admitted: Arc<Mutex<HashMap<String, usize>>>,
    domain_id: String,
    thread: Option<OwnedSemaphorePermit>,
}

impl Ticket {
    fn take(
        admitted: &Arc<Mutex<HashMap<String, usize>>>,
        domain_id: &str,
        most: usize,
    ) -> Result<Self, Error> {
        let mut counts = admitted.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(domain_id.to_owned()).or_default();
        if *count >= most {
            return Err(Error::Busy(format!(
                "this domain already runs {most} queries that read all its keys, the most it may at \
                 once; retry when one has answered"
            )));
        }
        *count += 1;
        Ok(Self { admitted: admitted.clone(), domain_id: domain_id.to_owned(), thread: None })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.domain_id) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.domain_id);
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The query threads, and how many of them are free. A query takes a thread before it reads
/// the domain, so a job never waits in the channel for one.
struct Pool {
    jobs: mpsc::Sender<Job>,
    free: Arc<Semaphore>,
}

impl Pool {
    fn start(threads: NonZeroUsize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.get() {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("keygate-query-{n}")).spawn(move || {
                background::lower_this_threads_priority();
                // Ends when the runner, and every admission, is gone. The lock is let go before
                // the job runs, so the other threads take the next jobs meanwhile.
                loop {
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            })?;
        }
        Ok(Self { jobs, free: Arc::new(Semaphore::new(threads.get())) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cost: u64, per_domain: usize) -> QueryLimits {
        QueryLimits { cost, per_domain }
    }

    #[tokio::test]
    async fn a_domain_is_refused_a_query_past_its_limit_while_another_domain_is_admitted() {
        let runner = QueryRunner::inline(limits(100, 2));
        let first = runner.admit("a").await.unwrap();
        let _second = runner.admit("a").await.unwrap();
        let refused = runner.admit("a").await.err().unwrap();
        assert!(matches!(&refused, Error::Busy(m) if m.contains("already runs 2 queries")), "{refused:?}");
        let _other = runner.admit("b").await.unwrap();
        drop(first);
        assert!(runner.admit("a").await.is_ok(), "a place is given back when its query ends");
    }

    #[tokio::test]
    async fn a_place_is_held_until_the_work_it_started_has_ended() {
        let runner = QueryRunner::threads(NonZeroUsize::MIN, limits(100, 1)).unwrap();
        let admitted = runner.admit("a").await.unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let work = admitted.run(move || Ok(released.recv().ok()));
        // The request is dropped while its work runs: the domain's place stays taken.
        drop(tokio::time::timeout(std::time::Duration::from_millis(1), work).await);
        drop(admitted);
        assert!(matches!(runner.admit("a").await, Err(Error::Busy(_))));
        release.send(()).unwrap();
        let again = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match runner.admit("a").await {
                    Ok(admitted) => return admitted,
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        });
        assert!(again.await.is_ok(), "given back once the work ended");
    }

    #[tokio::test]
    async fn two_query_threads_run_two_queries_at_once() {
        let runner = QueryRunner::threads(NonZeroUsize::new(2).unwrap(), limits(100, 2)).unwrap();
        let (first, second) = (runner.admit("a").await.unwrap(), runner.admit("b").await.unwrap());
        // Each waits for the other: they finish only if both run at the same time.
        let meeting = Arc::new(std::sync::Barrier::new(2));
        let meet = |meeting: Arc<std::sync::Barrier>| move || Ok(meeting.wait().is_leader());
        let both = async { tokio::join!(first.run(meet(meeting.clone())), second.run(meet(meeting))) };
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(10), both).await.expect("both ran");
        assert_ne!(a.unwrap(), b.unwrap(), "one of the two met the other");
    }

    #[tokio::test]
    async fn work_runs_on_a_query_thread_at_the_lowest_priority_and_a_panic_is_an_internal_error() {
        let runner = QueryRunner::threads(NonZeroUsize::MIN, QueryLimits::default()).unwrap();
        let admitted = runner.admit("a").await.unwrap();
        let thread = admitted.run(|| Ok(std::thread::current().name().map(str::to_owned))).await;
        assert_eq!(thread.unwrap().as_deref(), Some("keygate-query-0"));
        #[cfg(target_os = "linux")]
        assert_eq!(
            admitted.run(|| Ok(background::this_threads_priority())).await.unwrap(),
            (libc::SCHED_IDLE, 19),
            "the lowest priority"
        );
        let panicked = admitted.run(|| -> Result<(), Error> { panic!("a bug") }).await;
        assert!(matches!(panicked, Err(Error::Internal(_))));
        assert_eq!(admitted.run(|| Ok(7)).await.unwrap(), 7, "the thread survives a panic");
    }

    #[tokio::test]
    async fn the_cost_is_keys_times_terms_and_the_refusal_names_the_limit() {
        let runner = QueryRunner::inline(limits(1_000, 2));
        let admitted = runner.admit("a").await.unwrap();
        assert!(admitted.check_cost(100, 10).is_ok());
        let refused = admitted.check_cost(101, 10).err().unwrap();
        assert!(
            matches!(&refused, Error::InvalidArgument(m)
                if m.starts_with("query too costly: 101 keys × 10 terms = 1010, over the query cost limit of 1000;")),
            "{refused:?}"
        );
        assert!(admitted.check_cost(usize::MAX, usize::MAX).is_err(), "no overflow");
    }

    #[test]
    fn the_cost_limit_is_read_from_its_setting_and_must_be_a_positive_number() {
        let set =
            |value: &'static str| move |name: &str| (name == QUERY_COST_LIMIT).then(|| value.to_owned());
        assert_eq!(QueryLimits::from_lookup(|_| None).unwrap(), QueryLimits::default());
        assert_eq!(QueryLimits::from_lookup(set(" 5000 ")).unwrap().cost, 5000);
        for bad in ["0", "-1", "lots", ""] {
            let err = QueryLimits::from_lookup(set(bad)).unwrap_err().to_string();
            assert!(
                err.contains("KEYGATE_QUERY_COST_LIMIT must be a whole number above 0"),
                "{bad:?}: {err}"
            );
        }
    }
}
