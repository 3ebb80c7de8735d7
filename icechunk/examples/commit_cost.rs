//! What one commit costs as a repository grows: requests, bytes written, time
//! and the process's peak memory for a commit that changes one key, on memory
//! and local storage.
//!
//! Run it with `cargo run --release -p icechunk --example commit_cost -- 1000
//! 10000` (the key counts; default 1,000, 10,000 and 100,000). Peak memory is
//! the process's high-water mark (`VmHWM`), so measure one size per run to read
//! it for that size. Every commit rewrites the whole
//! snapshot, so its size, and with it the bytes written, grows with the
//! number of keys; the number of requests does not.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use icechunk::{Repository, Storage, StorageConfig};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Requests and bytes sent to a store, counted by [`Counting`].
#[derive(Debug, Default)]
struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
}

impl Counts {
    fn take(&self) -> (u64, u64, u64) {
        (
            self.reads.swap(0, Ordering::Relaxed),
            self.writes.swap(0, Ordering::Relaxed),
            self.bytes_written.swap(0, Ordering::Relaxed),
        )
    }
}

/// An [`ObjectStore`] that passes every call on and counts it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ObjectStore>,
    counts: Arc<Counts>,
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl Counting {
    fn read(&self) {
        self.counts.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, bytes: usize) {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.counts
            .bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.write(payload.content_length());
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.write(0);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.read();
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.read();
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.write(0);
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.read();
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.read();
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.write(0);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.write(0);
        self.inner.rename_opts(from, to, options).await
    }
}

/// How many one-key commits are timed at each size (the median is shown).
const COMMITS: usize = 5;
/// The largest repository measured on local storage too.
const LOCAL_LIMIT: usize = 100_000;

/// A Zarr-like key: chunk `i` of one of 10 arrays.
fn key(i: usize) -> String {
    format!("array-{}/c/{}/{}", i % 10, i / 1000, i % 1000)
}

/// Fills a repository with `keys` keys (small inline values and, one in ten,
/// 1 KiB chunks), then commits `COMMITS` one-key changes, printing one line.
async fn measure(label: &str, storage: Storage, keys: usize) -> icechunk::Result<()> {
    let counts = Arc::new(Counts::default());
    let counted = counts.clone();
    let storage = storage.map_store(move |inner| {
        Arc::new(Counting {
            inner,
            counts: counted,
        })
    });
    let repo = Repository::create(storage).await?;
    let session = repo.writable_session("main").await?;
    for i in 0..keys {
        let value = if i % 10 == 0 {
            Bytes::from(vec![(i % 251) as u8; 1024])
        } else {
            Bytes::from(format!("{{\"value\":{i}}}"))
        };
        session.set(&key(i), value).await?;
    }
    session.commit("fill").await?;

    let mut times = Vec::new();
    let mut last = (0, 0, 0);
    for n in 0..COMMITS {
        session
            .set(&key(n), Bytes::from(format!("changed {n}")))
            .await?;
        counts.take();
        let started = Instant::now();
        session.commit(&format!("change {n}")).await?;
        times.push(started.elapsed());
        last = counts.take();
    }
    times.sort();
    let median = times.get(COMMITS / 2).copied().unwrap_or(Duration::ZERO);
    let (reads, writes, bytes) = last;
    println!(
        "{label:<7} {keys:>8} {writes:>7} {reads:>6} {:>12.1} {:>10.2} {:>9}",
        bytes as f64 / 1024.0,
        median.as_secs_f64() * 1000.0,
        peak_memory_mib().map_or("-".to_string(), |m| m.to_string()),
    );
    Ok(())
}

/// The process's peak resident memory so far, in MiB (Linux).
fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::main]
async fn main() -> icechunk::Result<()> {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![1_000, 10_000, 100_000];
    }
    let dir = std::env::temp_dir().join(format!("icechunk-commit-cost-{}", std::process::id()));
    println!(
        "storage     keys  writes  reads  written KiB  median ms  peak MiB   (one commit of one changed key)"
    );
    for &keys in &sizes {
        measure("memory", Storage::new(StorageConfig::memory())?, keys).await?;
        // Filling a local repository fsyncs every chunk it uploads: past 100,000 keys that is
        // the measurement's cost, not the commit's, so larger sizes run in memory only.
        if keys <= LOCAL_LIMIT {
            let local = Storage::new(StorageConfig::local(dir.join(keys.to_string())))?;
            measure("local", local, keys).await?;
        }
    }
    // Best effort: a leftover directory under the temporary directory is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
