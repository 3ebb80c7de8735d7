//! Where a repository's objects live: configuration ([`StorageConfig`]) and
//! the handle used to reach them ([`Storage`]).
//!
//! Supported locations:
//!
//! | URL                     | backend                                          |
//! |-------------------------|--------------------------------------------------|
//! | `memory://` `memory://name` | in memory; each [`Storage`] value is its own store, shared by its clones |
//! | `file:///abs/path`      | a local directory (created if missing)           |
//! | `s3://bucket/prefix`    | Amazon S3 or an S3-compatible server             |
//! | `az://container/prefix` | Azure Blob Storage or the Azurite emulator       |
//!
//! Options are string key/value pairs; see [`StorageConfig::from_url`].

mod config;
mod local;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

pub use config::StorageConfig;
use config::{Backend, invalid};

use crate::error::{Error, Result};

/// Removes the quotes around an ETag (servers disagree on whether to send them).
pub(crate) fn normalize_etag(etag: &str) -> &str {
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"')
}
/// How [`Storage::put`] treats an existing object.
#[derive(Debug, Clone)]
pub(crate) enum WriteMode {
    /// Only write if there is no object yet.
    Create,
    /// Write unconditionally.
    #[cfg_attr(not(test), allow(dead_code))]
    Overwrite,
    /// Only write if the object's current ETag is this one.
    Update(String),
}

/// What [`Storage::put`] did.
#[derive(Debug, Clone)]
pub(crate) enum PutOutcome {
    /// The object was written; its new ETag if the server told it.
    Written { etag: Option<String> },
    /// `WriteMode::Create` found an existing object.
    AlreadyExists,
    /// `WriteMode::Update` found another version (or no object).
    PreconditionFailed,
}

/// An object read from storage.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) data: Bytes,
    pub(crate) etag: Option<String>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    location: String,
}

/// A handle on the place where a repository's objects are stored.
///
/// Cheap to clone: clones share the same connection (and, for memory storage,
/// the same data).
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("location", &self.inner.location)
            .finish()
    }
}

impl Storage {
    /// Connects to the configured location. No request is made yet, except
    /// that a local directory is created if it does not exist.
    pub fn new(config: StorageConfig) -> Result<Storage> {
        let location = config.location();
        let store: Arc<dyn ObjectStore> = match &config.backend {
            Backend::Memory { .. } => Arc::new(InMemory::new()),
            Backend::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    invalid(format!("cannot create directory {}: {e}", root.display()))
                })?;
                let store = local::LockingLocalStore::new(root.clone()).map_err(|e| {
                    invalid(format!("cannot use directory {}: {e}", root.display()))
                })?;
                Arc::new(store)
            }
            Backend::S3 { bucket, prefix } => with_prefix(config.build_s3(bucket)?, prefix),
            Backend::Azure { container, prefix } => {
                with_prefix(config.build_azure(container)?, prefix)
            }
        };
        Ok(Storage {
            inner: Arc::new(Inner { store, location }),
        })
    }

    /// The same location reached through a wrapper around the object store,
    /// for example one that adds instrumentation, throttling or, in tests,
    /// injected faults. `wrap` receives the store this handle uses (already
    /// restricted to the location's prefix) and returns the one to use.
    pub fn map_store(
        &self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Storage {
        Storage {
            inner: Arc::new(Inner {
                store: wrap(self.inner.store.clone()),
                location: self.inner.location.clone(),
            }),
        }
    }

    /// The location as a URL, for messages (for example `s3://bucket/prefix`).
    pub fn location(&self) -> String {
        self.inner.location.clone()
    }

    /// The full name of an object, for messages.
    pub(crate) fn describe(&self, key: &str) -> String {
        let location = &self.inner.location;
        if location.ends_with('/') {
            format!("{location}{key}")
        } else {
            format!("{location}/{key}")
        }
    }

    /// Reads an object; `None` if it does not exist.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Fetched>> {
        let path = Path::from(key);
        let result = match self.inner.store.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::storage("reading", self.describe(key), e)),
        };
        let etag = result.meta.e_tag.clone();
        let data = result
            .bytes()
            .await
            .map_err(|e| Error::storage("reading", self.describe(key), e))?;
        Ok(Some(Fetched { data, etag }))
    }

    /// Reads bytes `range` of an object; `None` if it does not exist. The
    /// range must lie within the object (the caller knows its length).
    pub(crate) async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Bytes>> {
        match self.inner.store.get_range(&Path::from(key), range).await {
            Ok(data) => Ok(Some(data)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage("reading", self.describe(key), e)),
        }
    }

    /// Tells whether an object exists.
    pub(crate) async fn exists(&self, key: &str) -> Result<bool> {
        match self.inner.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::storage("checking", self.describe(key), e)),
        }
    }

    /// Writes an object.
    pub(crate) async fn put(&self, key: &str, data: Bytes, mode: WriteMode) -> Result<PutOutcome> {
        let mode = match mode {
            WriteMode::Create => PutMode::Create,
            WriteMode::Overwrite => PutMode::Overwrite,
            WriteMode::Update(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .inner
            .store
            .put_opts(&Path::from(key), data.into(), opts)
            .await
        {
            Ok(r) => Ok(PutOutcome::Written { etag: r.e_tag }),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(object_store::Error::Precondition { .. }) => Ok(PutOutcome::PreconditionFailed),
            Err(e) => Err(Error::storage("writing", self.describe(key), e)),
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage("deleting", self.describe(key), e)),
        }
    }

    /// The names of the objects directly inside directory `dir`, sorted.
    pub(crate) async fn list_names(&self, dir: &str) -> Result<Vec<String>> {
        let prefix = Path::from(dir);
        let result = self
            .inner
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| Error::storage("listing", self.describe(dir), e))?;
        let mut names: Vec<String> = result
            .objects
            .iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn normalizes_etags() {
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("abc"), "abc");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
    }

    #[test]
    fn storage_is_send_sync_debug_clone() {
        fn check<T: Send + Sync + fmt::Debug + Clone + 'static>() {}
        check::<Storage>();
        check::<StorageConfig>();
    }

    #[tokio::test]
    async fn memory_clones_share_and_new_values_do_not() {
        let config = StorageConfig::memory();
        let a = Storage::new(config.clone()).unwrap();
        let b = a.clone();
        let c = Storage::new(config).unwrap();
        a.put("x", Bytes::from_static(b"1"), WriteMode::Overwrite)
            .await
            .unwrap();
        assert!(b.get("x").await.unwrap().is_some());
        assert!(c.get("x").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn put_modes() {
        let dir = tempfile::tempdir().unwrap();
        for storage in [
            Storage::new(StorageConfig::memory()).unwrap(),
            Storage::new(StorageConfig::local(dir.path().join("repo"))).unwrap(),
        ] {
            let w = storage
                .put("refs/x", Bytes::from_static(b"1"), WriteMode::Create)
                .await
                .unwrap();
            let PutOutcome::Written { etag: Some(etag) } = w else {
                panic!("{w:?}")
            };
            assert!(matches!(
                storage
                    .put("refs/x", Bytes::from_static(b"2"), WriteMode::Create)
                    .await
                    .unwrap(),
                PutOutcome::AlreadyExists
            ));
            assert!(matches!(
                storage
                    .put(
                        "refs/x",
                        Bytes::from_static(b"2"),
                        WriteMode::Update(etag.clone())
                    )
                    .await
                    .unwrap(),
                PutOutcome::Written { .. }
            ));
            assert!(matches!(
                storage
                    .put("refs/x", Bytes::from_static(b"3"), WriteMode::Update(etag))
                    .await
                    .unwrap(),
                PutOutcome::PreconditionFailed
            ));
            assert_eq!(
                storage.list_names("refs").await.unwrap(),
                vec!["x".to_string()]
            );
            assert!(storage.exists("refs/x").await.unwrap());
            storage.delete("refs/x").await.unwrap();
            storage.delete("refs/x").await.unwrap();
            assert!(!storage.exists("refs/x").await.unwrap());
            assert!(storage.list_names("refs").await.unwrap().is_empty());
            assert!(storage.list_names("nothing").await.unwrap().is_empty());
        }
    }

    /// A server that does not answer gives `Error::Storage`, quickly.
    #[tokio::test]
    async fn unreachable_server_is_a_storage_error() {
        let config = StorageConfig::from_url(
            "s3://bucket/prefix",
            [
                ("endpoint", "http://127.0.0.1:1"),
                ("allow_http", "true"),
                ("region", "us-east-1"),
                ("access_key_id", "test"),
                ("secret_access_key", "test"),
                ("max_retries", "0"),
                ("retry_timeout_secs", "1"),
            ],
        )
        .unwrap();
        let storage = Storage::new(config).unwrap();
        let started = std::time::Instant::now();
        let err = storage.get("repo").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(20));
        match &err {
            Error::Storage {
                operation, path, ..
            } => {
                assert_eq!(*operation, "reading");
                assert_eq!(path, "s3://bucket/prefix/repo");
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = crate::Repository::open(storage).await.unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err}");
    }
}
