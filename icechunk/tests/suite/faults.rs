//! A fault-injecting [`ObjectStore`] wrapper for tests.
//!
//! [`FaultyStore`] wraps a real store (InMemory, the local filesystem, an S3
//! or Azure client) and, for each call, draws a [`Fault`] from a seeded
//! [`Schedule`]: the call may fail before reaching the store, be applied and
//! then lose its reply (an error, a timeout, or a retry answered by the
//! store's state after the first attempt), be delayed, or be answered with a
//! server error. The schedule counts what it injected; [`observe`] runs an
//! operation and tells whether one of its writes had an ambiguous outcome.
//!
//! The seed fixes the sequence of faults. With concurrent callers, which call
//! draws which fault also depends on the order the calls arrive in, so a
//! failing seed may need a few runs to fail again.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call reaches the store and its reply reaches the caller.
    None,
    /// The connection fails before the request is sent: nothing is applied.
    Refused,
    /// The server answers 503 without applying anything.
    ServerError,
    /// The request is applied, then the connection drops: the caller gets an error.
    ReplyLost,
    /// The request is applied, but the reply comes too late: the caller times out.
    TimedOut,
    /// The request is applied, its reply is lost, and the client sends it
    /// again: the caller gets the answer to the second attempt (for a
    /// conditional write, "already exists" or "precondition failed").
    Retried,
    /// The call waits a little, then goes through.
    Delayed,
}

impl Fault {
    /// Every fault, in the order of [`Rates`] and of the printed counts.
    pub const ALL: [Fault; 6] = [
        Fault::Refused,
        Fault::ServerError,
        Fault::ReplyLost,
        Fault::TimedOut,
        Fault::Retried,
        Fault::Delayed,
    ];

    /// Whether the caller cannot tell if a write was applied.
    fn is_ambiguous(self) -> bool {
        matches!(self, Fault::ReplyLost | Fault::TimedOut | Fault::Retried)
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Probability of each fault per call, in the order of [`Fault::ALL`].
#[derive(Debug, Clone, Copy)]
pub struct Rates(pub [f64; 6]);

impl Rates {
    /// About one call in four is disturbed; one in ten has an ambiguous outcome.
    pub const DEFAULT: Rates = Rates([0.04, 0.03, 0.04, 0.02, 0.04, 0.08]);

    /// Every call gets `fault`.
    pub fn only(fault: Fault) -> Rates {
        let mut rates = [0.0; 6];
        if let Some(rate) = rates.get_mut(fault.index()) {
            *rate = 1.0;
        }
        Rates(rates)
    }
}

/// A seeded source of faults, shared by every store it wraps, with counts.
pub struct Schedule {
    rng: Mutex<StdRng>,
    rates: Rates,
    calls: AtomicU64,
    injected: [AtomicU64; 6],
    crash: Option<Crash>,
    revived: AtomicBool,
}

/// Where [`Schedule::crash_at`] stops the process.
#[derive(Debug, Clone, Copy)]
pub struct Crash {
    /// The number of the call (from 0) at which the process dies.
    pub at: u64,
    /// Whether that call was applied before the process died.
    pub applied: bool,
}

impl Schedule {
    pub fn new(seed: u64, rates: Rates) -> Arc<Schedule> {
        Arc::new(Schedule {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates,
            calls: AtomicU64::new(0),
            injected: Default::default(),
            crash: None,
            revived: AtomicBool::new(false),
        })
    }

    /// No random faults: calls before `crash.at` go through, and from that
    /// call on nothing reaches the store any more, as if the process had died
    /// there (after applying call `crash.at` if `crash.applied`).
    pub fn crash_at(crash: Crash) -> Arc<Schedule> {
        Arc::new(Schedule {
            rng: Mutex::new(StdRng::seed_from_u64(0)),
            rates: Rates([0.0; 6]),
            calls: AtomicU64::new(0),
            injected: Default::default(),
            crash: Some(crash),
            revived: AtomicBool::new(false),
        })
    }

    /// After a crash, lets every call through again (the storage is back).
    pub fn revive(&self) {
        self.revived.store(true, Ordering::SeqCst);
    }

    /// Whether the crash point of [`Schedule::crash_at`] was reached.
    pub fn crashed(&self) -> bool {
        self.crash.is_some_and(|c| self.calls() > c.at)
    }

    fn draw(&self) -> Fault {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(crash) = self.crash {
            if self.revived.load(Ordering::SeqCst) {
                return Fault::None;
            }
            return match call.cmp(&crash.at) {
                std::cmp::Ordering::Less => Fault::None,
                std::cmp::Ordering::Equal if crash.applied => Fault::ReplyLost,
                _ => Fault::Refused,
            };
        }
        let x: f64 = self.rng.lock().map(|mut rng| rng.random()).unwrap_or(1.0);
        let mut acc = 0.0;
        for (fault, rate) in Fault::ALL.iter().zip(self.rates.0) {
            acc += rate;
            if x < acc {
                if let Some(count) = self.injected.get(fault.index()) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                return *fault;
            }
        }
        Fault::None
    }

    /// Calls made through the stores this schedule disturbs.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many times each fault was injected, in the order of [`Fault::ALL`].
    pub fn injected(&self) -> Vec<(Fault, u64)> {
        Fault::ALL
            .iter()
            .zip(&self.injected)
            .map(|(f, c)| (*f, c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn total_injected(&self) -> u64 {
        self.injected().iter().map(|(_, c)| c).sum()
    }
}

tokio::task_local! {
    /// Writes with an ambiguous outcome made by the operation being observed.
    static AMBIGUOUS_WRITES: Cell<u32>;
}

/// Runs `operation` and returns its result with the number of its writes
/// whose reply was lost (so that the operation had to resolve them).
pub async fn observe<T>(operation: impl Future<Output = T>) -> (T, u32) {
    AMBIGUOUS_WRITES
        .scope(Cell::new(0), async move {
            let out = operation.await;
            (out, AMBIGUOUS_WRITES.with(Cell::get))
        })
        .await
}

fn note_ambiguous_write() {
    // Outside `observe` there is nothing to record.
    let _ = AMBIGUOUS_WRITES.try_with(|n| n.set(n.get() + 1));
}

fn injected_error(fault: Fault) -> object_store::Error {
    let source: Box<dyn std::error::Error + Send + Sync> = match fault {
        Fault::TimedOut => Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "injected fault: the request timed out",
        )),
        Fault::ServerError => "injected fault: 503 Service Unavailable".into(),
        _ => Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected fault: connection reset",
        )),
    };
    object_store::Error::Generic {
        store: "FaultyStore",
        source,
    }
}

async fn pause(fault: Fault) {
    match fault {
        Fault::Delayed => {
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
        }
        Fault::TimedOut => tokio::time::sleep(Duration::from_millis(1)).await,
        _ => {}
    }
}

/// An [`ObjectStore`] that passes every call to a real store, disturbed by a [`Schedule`].
#[derive(Clone)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    schedule: Arc<Schedule>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, schedule: Arc<Schedule>) -> FaultyStore {
        FaultyStore { inner, schedule }
    }

    /// Runs one call of the inner store under the fault drawn for it.
    /// `resolvable` tells whether the call is a write whose outcome the
    /// caller has to find out when its reply is lost (every write but a
    /// chunk's: chunks are content-addressed, any copy will do).
    async fn run<T, F, Fut>(&self, resolvable: bool, call: F) -> object_store::Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let fault = self.schedule.draw();
        if resolvable && fault.is_ambiguous() {
            note_ambiguous_write();
        }
        match fault {
            Fault::None => call().await,
            Fault::Delayed => {
                pause(fault).await;
                call().await
            }
            Fault::Refused | Fault::ServerError => Err(injected_error(fault)),
            Fault::ReplyLost | Fault::TimedOut => {
                let _applied = call().await;
                pause(fault).await;
                Err(injected_error(fault))
            }
            Fault::Retried => {
                let _first = call().await;
                call().await
            }
        }
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({:?})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let resolvable = !location.as_ref().starts_with("chunks/");
        self.run(resolvable, || {
            self.inner.put_opts(location, payload.clone(), opts.clone())
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.run(false, || self.inner.get_opts(location, options.clone()))
            .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.run(false, || self.inner.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let store = self.clone();
        locations
            .then(move |location| {
                let store = store.clone();
                async move {
                    let location = location?;
                    store
                        .run(true, || {
                            let location = location.clone();
                            let one = futures::stream::iter([Ok(location.clone())]).boxed();
                            let mut deleted = store.inner.delete_stream(one);
                            async move { deleted.next().await.unwrap_or(Ok(location)) }
                        })
                        .await
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.schedule.draw() {
            Fault::Refused | Fault::ServerError | Fault::ReplyLost | Fault::TimedOut => {
                futures::stream::iter([Err(injected_error(Fault::Refused))]).boxed()
            }
            _ => self.inner.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.run(false, || self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.run(true, || self.inner.copy_opts(from, to, options.clone()))
            .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.run(true, || self.inner.rename_opts(from, to, options.clone()))
            .await
    }
}
