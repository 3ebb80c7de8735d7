//! Local-filesystem object store with conditional updates.
//!
//! object_store's [`LocalFileSystem`] does not implement `PutMode::Update`.
//! [`LockingLocalStore`] wraps it and adds that mode:
//!
//! * ETags are derived from the object's **content** (a quoted SHA-256), not
//!   from file metadata: metadata ETags (inode, mtime, size) can repeat when
//!   an inode is reused within the timestamp granularity, which would let a
//!   stale compare-and-swap succeed.
//! * A conditional update takes an exclusive OS file lock
//!   ([`std::fs::File::try_lock`]) on a per-object lock file under
//!   `<root>/.icechunk-locks/`, outside the repository's key space, then
//!   compares the current content's ETag with the expected one, writes the new
//!   content atomically (temporary file + rename, done by `LocalFileSystem`)
//!   and releases the lock. Overwrites and deletes take the same lock, so they
//!   cannot slip between the comparison and the write. Because the lock is an
//!   OS lock on a file, this holds across threads and across processes.
//! * Creates need no lock: `LocalFileSystem` publishes them with a hard link,
//!   which fails atomically if the object exists.
//! * Durability: every write is flushed (`fsync` of the temporary file) before
//!   it is published, and the directory entry after (`LocalFileSystem`'s
//!   `with_fsync`), so a crash never leaves a partial object, nor a reference
//!   to an object that is not on disk.
//! * Cancel safety: a locked operation runs in a task of its own, so a caller
//!   that stops waiting (a timeout, a dropped future) cannot release the lock
//!   while the write it started is still going on. Such a write may still be
//!   applied, exactly like a request whose reply was lost.
//! * A lock is waited for at most [`LOCK_WAIT`]; then the operation fails
//!   with an error naming the lock file, instead of hanging.
//!
//! Listing results carry no ETag (reading every object to hash it would be
//! too costly); `get`/`head` return the content ETag.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    RenameOptions,
};
use sha2::{Digest, Sha256};

use super::normalize_etag;

/// Name of the directory, directly under the root, that holds lock files.
const LOCK_DIR: &str = ".icechunk-locks";

const STORE: &str = "LockingLocalStore";

/// How long an operation waits for an object's lock before failing.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A [`LocalFileSystem`] with content ETags and lock-based `PutMode::Update`.
#[derive(Debug, Clone)]
pub(crate) struct LockingLocalStore {
    inner: Arc<LocalFileSystem>,
    root: Arc<PathBuf>,
    lock_wait: Duration,
}

impl fmt::Display for LockingLocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE}({})", self.root.display())
    }
}

fn generic(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: source.into(),
    }
}

/// The ETag of some content: its quoted SHA-256.
pub(crate) fn content_etag<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for chunk in chunks {
        hasher.update(chunk);
    }
    let digest = hasher.finalize();
    let mut out = String::with_capacity(66);
    out.push('"');
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out.push('"');
    out
}

/// Runs blocking file-system work off the async threads when there is a
/// tokio runtime, in place otherwise.
async fn run_blocking<T, F>(work: F) -> object_store::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> object_store::Result<T> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(work).await.map_err(generic)?,
        Err(_) => work(),
    }
}

/// Takes the exclusive lock on the lock file `path`, waiting at most `wait`;
/// it is released when the returned file is dropped (or the process ends).
fn acquire(path: &std::path::Path, wait: Duration) -> object_store::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(generic)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(generic)?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(generic(format!(
                    "gave up after {wait:?} waiting for the lock {}: another writer holds it \
                     (a stuck process, or a file system that does not release locks)",
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(generic(e)),
        }
    }
}

impl LockingLocalStore {
    /// Opens a store rooted at `root`, which must exist.
    pub(crate) fn new(root: PathBuf) -> object_store::Result<Self> {
        let inner = LocalFileSystem::new_with_prefix(&root)?.with_fsync(true);
        Ok(LockingLocalStore {
            inner: Arc::new(inner),
            root: Arc::new(root),
            lock_wait: LOCK_WAIT,
        })
    }

    fn lock_path(&self, location: &Path) -> PathBuf {
        let mut path = self.root.join(LOCK_DIR);
        for part in location.parts() {
            path.push(part.as_ref());
        }
        path.set_extension(match path.extension() {
            Some(ext) => format!("{}.lock", ext.to_string_lossy()),
            None => "lock".to_string(),
        });
        path
    }

    /// Runs `critical` while holding the exclusive lock of `location`.
    ///
    /// Both run in a task of their own (when there is a tokio runtime), so
    /// that dropping the returned future cannot release the lock before
    /// `critical` is finished.
    async fn locked<T, F>(&self, location: &Path, critical: F) -> object_store::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let path = self.lock_path(location);
        let wait = self.lock_wait;
        let task = async move {
            let _guard = run_blocking(move || acquire(&path, wait)).await?;
            critical.await
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(task).await.map_err(generic)?,
            Err(_) => task.await,
        }
    }

    async fn read_all(&self, location: &Path) -> object_store::Result<(Bytes, ObjectMeta)> {
        let result = self.inner.get(location).await?;
        let meta = result.meta.clone();
        let bytes = result.bytes().await?;
        Ok((bytes, meta))
    }

    /// Fails with `Precondition` unless the object exists and its content
    /// ETag is `expected`. Called with the object's lock held.
    async fn check_version(
        &self,
        location: &Path,
        expected: Option<&str>,
    ) -> object_store::Result<()> {
        let current = match self.read_all(location).await {
            Ok((bytes, _)) => content_etag([bytes.as_ref()]),
            Err(object_store::Error::NotFound { path, .. }) => {
                return Err(object_store::Error::Precondition {
                    path,
                    source: "the object does not exist".into(),
                });
            }
            Err(e) => return Err(e),
        };
        if expected.is_some_and(|e| normalize_etag(e) == normalize_etag(&current)) {
            return Ok(());
        }
        Err(object_store::Error::Precondition {
            path: location.to_string(),
            source: format!(
                "the current ETag {current} does not match the expected {}",
                expected.unwrap_or("(none)")
            )
            .into(),
        })
    }

    fn hides(location: &ObjectMeta) -> bool {
        location
            .location
            .parts()
            .next()
            .is_some_and(|p| p.as_ref() == LOCK_DIR)
    }
}

#[async_trait]
impl ObjectStore for LockingLocalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let etag = content_etag(payload.iter().map(|b| b.as_ref()));
        let PutOptions {
            mode,
            tags,
            attributes,
            extensions,
        } = opts;
        let result = match mode {
            PutMode::Create => {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    tags,
                    attributes,
                    extensions,
                };
                self.inner.put_opts(location, payload, opts).await?
            }
            PutMode::Overwrite => {
                let opts = PutOptions {
                    mode: PutMode::Overwrite,
                    tags,
                    attributes,
                    extensions,
                };
                let (this, at) = (self.clone(), location.clone());
                self.locked(location, async move {
                    this.inner.put_opts(&at, payload, opts).await
                })
                .await?
            }
            PutMode::Update(version) => {
                let opts = PutOptions {
                    mode: PutMode::Overwrite,
                    tags,
                    attributes,
                    extensions,
                };
                let (this, at) = (self.clone(), location.clone());
                self.locked(location, async move {
                    this.check_version(&at, version.e_tag.as_deref()).await?;
                    this.inner.put_opts(&at, payload, opts).await
                })
                .await?
            }
        };
        Ok(PutResult {
            e_tag: Some(etag),
            version: None,
            extensions: result.extensions,
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        // Multipart uploads publish a whole new object with a rename; they do
        // not take the lock and are not used by this crate.
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.version.is_some() {
            return Err(object_store::Error::NotImplemented {
                operation: "`get_opts` with a version".into(),
                implementer: self.to_string(),
            });
        }
        let (bytes, mut meta) = self.read_all(location).await?;
        meta.e_tag = Some(content_etag([bytes.as_ref()]));
        // Conditions are evaluated against the content ETag.
        options.check_preconditions(&meta)?;
        let len = bytes.len() as u64;
        let range = match &options.range {
            Some(r) => r.as_range(len).map_err(generic)?,
            None => 0..len,
        };
        let data = if options.head {
            Bytes::new()
        } else {
            let start = usize::try_from(range.start).map_err(generic)?;
            let end = usize::try_from(range.end).map_err(generic)?;
            if start > end || end > bytes.len() {
                return Err(generic(format!("invalid range {start}..{end}")));
            }
            bytes.slice(start..end)
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(
                futures::stream::once(async move { Ok(data) }).boxed(),
            ),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let this = self.clone();
        locations
            .and_then(move |location| {
                let this = this.clone();
                async move {
                    let (inner, at) = (this.inner.clone(), location.clone());
                    this.locked(&location, async move { inner.delete(&at).await })
                        .await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner
            .list(prefix)
            .try_filter_map(|mut meta| async move {
                if Self::hides(&meta) {
                    return Ok(None);
                }
                meta.e_tag = None;
                Ok(Some(meta))
            })
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|m| !Self::hides(m));
        for meta in &mut result.objects {
            meta.e_tag = None;
        }
        result.common_prefixes.retain(|p| {
            p.parts()
                .next()
                .is_none_or(|first| first.as_ref() != LOCK_DIR)
        });
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let (inner, from, at) = (self.inner.clone(), from.clone(), to.clone());
        self.locked(
            to,
            async move { inner.copy_opts(&from, &at, options).await },
        )
        .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        let (inner, from, at) = (self.inner.clone(), from.clone(), to.clone());
        self.locked(
            to,
            async move { inner.rename_opts(&from, &at, options).await },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::UpdateVersion;

    fn update(etag: &str) -> PutOptions {
        PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: Some(etag.to_string()),
                version: None,
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn conditional_update_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = LockingLocalStore::new(dir.path().to_path_buf()).unwrap();
        let path = Path::from("refs/branch.main");

        // Update of a missing object fails.
        let err = store
            .put_opts(&path, Bytes::from_static(b"a").into(), update("\"x\""))
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::Precondition { .. }),
            "{err}"
        );

        let created = store
            .put_opts(
                &path,
                Bytes::from_static(b"a").into(),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let etag_a = created.e_tag.unwrap();
        let got = store.get(&path).await.unwrap();
        assert_eq!(got.meta.e_tag.as_deref(), Some(etag_a.as_str()));

        // A second create fails.
        let err = store
            .put_opts(
                &path,
                Bytes::from_static(b"z").into(),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::AlreadyExists { .. }),
            "{err}"
        );

        // Update with the right etag (quotes removed: still equal) works.
        let unquoted = etag_a.trim_matches('"').to_string();
        let res = store
            .put_opts(&path, Bytes::from_static(b"b").into(), update(&unquoted))
            .await
            .unwrap();
        let etag_b = res.e_tag.unwrap();
        assert_ne!(etag_a, etag_b);

        // The stale etag now fails.
        let err = store
            .put_opts(&path, Bytes::from_static(b"c").into(), update(&etag_a))
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::Precondition { .. }),
            "{err}"
        );
        assert_eq!(store.get(&path).await.unwrap().bytes().await.unwrap(), "b");

        // Conditional get uses the content etag.
        let opts = GetOptions {
            if_none_match: Some(etag_b.clone()),
            ..Default::default()
        };
        let err = store.get_opts(&path, opts).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotModified { .. }),
            "{err}"
        );

        // Lock files are not listed.
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert!(dir.path().join(LOCK_DIR).exists());
        let listed = store.list_with_delimiter(None).await.unwrap();
        assert_eq!(listed.common_prefixes, vec![Path::from("refs")]);

        // Delete works and takes the lock.
        store.delete(&path).await.unwrap();
        assert!(matches!(
            store.get(&path).await.unwrap_err(),
            object_store::Error::NotFound { .. }
        ));
    }

    /// Many tasks increment a counter with compare-and-swap, each through its
    /// own store value; no increment may be lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_compare_and_swap_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = Path::from("counter");
        let first = LockingLocalStore::new(dir.path().to_path_buf()).unwrap();
        first
            .put(&path, Bytes::from_static(b"0").into())
            .await
            .unwrap();

        let tasks = 8;
        let per_task = 15;
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let store = LockingLocalStore::new(dir.path().to_path_buf()).unwrap();
            let path = path.clone();
            handles.push(tokio::spawn(async move {
                let mut done = 0;
                while done < per_task {
                    let got = store.get(&path).await.unwrap();
                    let etag = got.meta.e_tag.clone().unwrap();
                    let text = got.bytes().await.unwrap();
                    let n: u64 = std::str::from_utf8(&text).unwrap().parse().unwrap();
                    let next = Bytes::from((n + 1).to_string());
                    match store.put_opts(&path, next.into(), update(&etag)).await {
                        Ok(_) => done += 1,
                        Err(object_store::Error::Precondition { .. }) => {
                            tokio::task::yield_now().await
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let text = first.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(text, (tasks * per_task).to_string());
    }

    /// Compare-and-swap increments abandoned at random moments (as a timeout
    /// would) may or may not be applied, but an abandoned one never lets
    /// another writer's increment be lost: the counter ends between the
    /// number of confirmed increments and that plus the abandoned ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn abandoned_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = Path::from("counter");
        let store = LockingLocalStore::new(dir.path().to_path_buf()).unwrap();
        store
            .put(&path, Bytes::from_static(b"0").into())
            .await
            .unwrap();
        let mut handles = Vec::new();
        for task in 0..6u64 {
            let store = LockingLocalStore::new(dir.path().to_path_buf()).unwrap();
            let path = path.clone();
            handles.push(tokio::spawn(async move {
                let (mut confirmed, mut abandoned) = (0u64, 0u64);
                for attempt in 0..40u64 {
                    let got = store.get(&path).await.unwrap();
                    let etag = got.meta.e_tag.clone().unwrap();
                    let text = got.bytes().await.unwrap();
                    let n: u64 = std::str::from_utf8(&text).unwrap().parse().unwrap();
                    let put = store.put_opts(&path, (n + 1).to_string().into(), update(&etag));
                    let patience = Duration::from_micros((task * 37 + attempt * 101) % 700);
                    match tokio::time::timeout(patience, put).await {
                        Ok(Ok(_)) => confirmed += 1,
                        Ok(Err(object_store::Error::Precondition { .. })) => {}
                        Ok(Err(e)) => panic!("{e}"),
                        Err(_) => abandoned += 1,
                    }
                }
                (confirmed, abandoned)
            }));
        }
        let (mut confirmed, mut abandoned) = (0, 0);
        for h in handles {
            let (c, a) = h.await.unwrap();
            confirmed += c;
            abandoned += a;
        }
        // Let the abandoned writes finish.
        let _ = store.locked(&path, async { Ok(()) }).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text = store.get(&path).await.unwrap().bytes().await.unwrap();
        let n: u64 = std::str::from_utf8(&text).unwrap().parse().unwrap();
        assert!(
            confirmed <= n && n <= confirmed + abandoned,
            "counter {n}, {confirmed} confirmed, {abandoned} abandoned"
        );
    }

    /// A lock held elsewhere (here: by this test) makes writes fail after the
    /// configured wait, naming the lock, instead of hanging.
    #[tokio::test]
    async fn lock_wait_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LockingLocalStore::new(dir.path().to_path_buf()).unwrap();
        store.lock_wait = Duration::from_millis(100);
        let path = Path::from("refs/branch.main");
        store
            .put(&path, Bytes::from_static(b"a").into())
            .await
            .unwrap();
        let held = acquire(&store.lock_path(&path), Duration::ZERO).unwrap();
        let started = Instant::now();
        let err = store
            .put(&path, Bytes::from_static(b"b").into())
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("waiting for the lock"), "{err}");
        assert!(store.delete(&path).await.is_err());
        drop(held);
        store.delete(&path).await.unwrap();
    }
}
