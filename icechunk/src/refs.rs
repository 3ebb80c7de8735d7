//! Branches and tags: name validation and reading/writing reference objects.
//!
//! * `refs/branch.<name>` points a branch at a snapshot. It is mutable: it is
//!   created with `PutMode::Create` and moved with a compare-and-swap on its
//!   ETag (`PutMode::Update`, see [`crate::resolve::move_branch`]).
//! * `refs/tag.<name>` points a tag at a snapshot. It is written once with
//!   `PutMode::Create` and never changed or removed.
//! * `refs/tag-deleted.<name>` is a tag's tombstone. A tag is live while its
//!   reference exists and its tombstone does not. Because the reference object
//!   stays after deletion, a deleted tag's name can never be created again.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::{self, ObjectKind, RefPayload, SnapshotId};
use crate::resolve::{Created, Intent, create_object, delete_object};
use crate::storage::Storage;

/// The directory holding all reference objects.
pub(crate) const REFS_DIR: &str = "refs";
const BRANCH_PREFIX: &str = "branch.";
const TAG_PREFIX: &str = "tag.";
const TOMBSTONE_PREFIX: &str = "tag-deleted.";

/// The name of the branch every repository starts with.
pub const MAIN_BRANCH: &str = "main";

const MAX_NAME_LEN: usize = 128;

/// Checks a branch or tag name: 1 to 128 characters among ASCII letters,
/// digits, `-`, `_` and `.`, not starting with `.` or `-`, not ending with
/// `.`, and without `..`.
pub(crate) fn validate_ref_name(name: &str) -> Result<()> {
    let fail = |reason: &str| {
        Err(Error::InvalidRefName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return fail("names cannot be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("names are at most 128 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return fail("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return fail("names cannot start with '.' or '-'");
    }
    if name.ends_with('.') {
        return fail("names cannot end with '.'");
    }
    if name.contains("..") {
        return fail("names cannot contain '..'");
    }
    Ok(())
}

pub(crate) fn branch_key(name: &str) -> String {
    format!("{REFS_DIR}/{BRANCH_PREFIX}{name}")
}

pub(crate) fn tag_key(name: &str) -> String {
    format!("{REFS_DIR}/{TAG_PREFIX}{name}")
}

pub(crate) fn tombstone_key(name: &str) -> String {
    format!("{REFS_DIR}/{TOMBSTONE_PREFIX}{name}")
}

/// A reference as read from storage: where it points and the ETag to
/// compare-and-swap against.
#[derive(Debug, Clone)]
pub(crate) struct RefState {
    pub(crate) snapshot: SnapshotId,
    pub(crate) etag: String,
}

pub(crate) fn encode_ref(kind: ObjectKind, snapshot: &SnapshotId) -> Result<Bytes> {
    format::encode_msgpack(
        kind,
        &RefPayload {
            snapshot: snapshot.clone(),
            written_at: chrono::Utc::now(),
        },
    )
}

async fn read_ref(storage: &Storage, key: &str, kind: ObjectKind) -> Result<Option<Fetched>> {
    let Some(fetched) = storage.get(key).await? else {
        return Ok(None);
    };
    let payload: RefPayload = format::decode_msgpack(&storage.describe(key), kind, &fetched.data)?;
    Ok(Some(Fetched {
        snapshot: payload.snapshot,
        etag: fetched.etag,
    }))
}

/// A reference's target and, if the server sent one, its ETag.
struct Fetched {
    snapshot: SnapshotId,
    etag: Option<String>,
}

/// Reads a branch; `None` if it does not exist.
///
/// A branch can only be moved by a compare-and-swap on its ETag, so a server
/// that returns none is reported as a storage error.
pub(crate) async fn read_branch(storage: &Storage, name: &str) -> Result<Option<RefState>> {
    let key = branch_key(name);
    let Some(fetched) = read_ref(storage, &key, ObjectKind::BranchRef).await? else {
        return Ok(None);
    };
    let Some(etag) = fetched.etag else {
        return Err(Error::storage(
            "reading",
            storage.describe(&key),
            object_store::Error::Generic {
                store: "icechunk",
                source: "the server returned no ETag; branches need ETags for their \
                         compare-and-swap, so this storage is not supported"
                    .into(),
            },
        ));
    };
    Ok(Some(RefState {
        snapshot: fetched.snapshot,
        etag,
    }))
}

/// Reads a branch, failing with [`Error::BranchNotFound`] if it is missing.
pub(crate) async fn fetch_branch(storage: &Storage, name: &str) -> Result<RefState> {
    read_branch(storage, name)
        .await?
        .ok_or_else(|| Error::BranchNotFound {
            branch: name.to_string(),
        })
}

/// Creates a branch; `false` if somebody else's branch of this name exists.
pub(crate) async fn create_branch(storage: &Storage, name: &str, at: &SnapshotId) -> Result<bool> {
    let data = encode_ref(ObjectKind::BranchRef, at)?;
    let intent = Intent::new(
        format!("creating branch `{name}` at snapshot {at}"),
        format!(
            "look the branch up (Repository::lookup_branch): if it points to snapshot {at}, \
             it was created; if it does not exist, create it again"
        ),
    );
    match create_object(storage, &branch_key(name), &data, intent).await? {
        Created::Ours => Ok(true),
        Created::Theirs => Ok(false),
    }
}

/// Deletes a branch reference (missing is fine).
pub(crate) async fn delete_branch(storage: &Storage, name: &str) -> Result<()> {
    let intent = Intent::new(
        format!("deleting branch `{name}`"),
        "list the branches (Repository::list_branches) to see whether it is gone",
    );
    delete_object(storage, &branch_key(name), intent).await
}

/// Lists the names of the objects in `refs/` starting with `prefix`.
async fn list_with_prefix(storage: &Storage, prefix: &str) -> Result<Vec<String>> {
    let names = storage.list_names(REFS_DIR).await?;
    Ok(names
        .into_iter()
        .filter_map(|n| n.strip_prefix(prefix).map(str::to_string))
        .filter(|n| validate_ref_name(n).is_ok())
        .collect())
}

/// All branch names, sorted.
pub(crate) async fn list_branches(storage: &Storage) -> Result<Vec<String>> {
    let mut names = list_with_prefix(storage, BRANCH_PREFIX).await?;
    names.sort();
    Ok(names)
}

/// State of a tag name.
pub(crate) enum TagState {
    Live(SnapshotId),
    Deleted,
    Missing,
}

/// Reads a tag and its tombstone.
pub(crate) async fn read_tag(storage: &Storage, name: &str) -> Result<TagState> {
    let Some(state) = read_ref(storage, &tag_key(name), ObjectKind::TagRef).await? else {
        return Ok(TagState::Missing);
    };
    if storage.exists(&tombstone_key(name)).await? {
        return Ok(TagState::Deleted);
    }
    Ok(TagState::Live(state.snapshot))
}

/// Creates a tag; never overwrites anything.
pub(crate) async fn create_tag(storage: &Storage, name: &str, at: &SnapshotId) -> Result<()> {
    let data = encode_ref(ObjectKind::TagRef, at)?;
    let intent = Intent::new(
        format!("creating tag `{name}` at snapshot {at}"),
        format!(
            "look the tag up (Repository::lookup_tag): if it points to snapshot {at}, it was \
             created; if it does not exist, create it again"
        ),
    );
    match create_object(storage, &tag_key(name), &data, intent).await? {
        Created::Ours => Ok(()),
        Created::Theirs => {
            if storage.exists(&tombstone_key(name)).await? {
                Err(Error::TagDeleted {
                    tag: name.to_string(),
                })
            } else {
                Err(Error::TagExists {
                    tag: name.to_string(),
                })
            }
        }
    }
}

/// Deletes a live tag by writing its tombstone.
pub(crate) async fn delete_tag(storage: &Storage, name: &str) -> Result<()> {
    let snapshot = match read_tag(storage, name).await? {
        TagState::Live(id) => id,
        TagState::Deleted | TagState::Missing => {
            return Err(Error::TagNotFound {
                tag: name.to_string(),
            });
        }
    };
    let data = encode_ref(ObjectKind::TagTombstone, &snapshot)?;
    let intent = Intent::new(
        format!("deleting tag `{name}`"),
        "look the tag up (Repository::lookup_tag): `TagNotFound` means it was deleted",
    );
    match create_object(storage, &tombstone_key(name), &data, intent).await? {
        Created::Ours => Ok(()),
        // Someone else deleted it at the same time.
        Created::Theirs => Err(Error::TagNotFound {
            tag: name.to_string(),
        }),
    }
}

/// Live tag names, sorted.
pub(crate) async fn list_tags(storage: &Storage) -> Result<Vec<String>> {
    let names = storage.list_names(REFS_DIR).await?;
    let mut tags = std::collections::BTreeSet::new();
    let mut deleted = std::collections::BTreeSet::new();
    for name in names {
        if let Some(tag) = name.strip_prefix(TAG_PREFIX) {
            if validate_ref_name(tag).is_ok() {
                tags.insert(tag.to_string());
            }
        } else if let Some(tag) = name.strip_prefix(TOMBSTONE_PREFIX) {
            deleted.insert(tag.to_string());
        }
    }
    Ok(tags.difference(&deleted).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for good in ["main", "dev", "feature-1", "v1.0.2", "a_b", "A", "x.y-z_1"] {
            validate_ref_name(good).unwrap();
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            ".hidden",
            "-x",
            "a..b",
            "trailing.",
            "a/b",
            "with space",
            "tab\t",
            "ünï",
            "a\\b",
            "a:b",
            "*",
            &long,
        ] {
            assert!(
                matches!(validate_ref_name(bad), Err(Error::InvalidRefName { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn keys_do_not_collide() {
        // A tag can never be mistaken for a tombstone and vice versa.
        assert!(!tombstone_key("x").starts_with(&format!("{REFS_DIR}/{TAG_PREFIX}")));
        assert!(!tag_key("x").starts_with(&format!("{REFS_DIR}/{TOMBSTONE_PREFIX}")));
    }

    /// A store whose reads carry no ETag, as some S3-compatible servers' do.
    mod without_etags {
        use std::sync::Arc;

        use async_trait::async_trait;
        use futures::stream::BoxStream;
        use object_store::path::Path;
        use object_store::{
            CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
            ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
        };

        use crate::{Error, Repository, Storage, StorageConfig};

        #[derive(Debug)]
        struct NoEtags(Arc<dyn ObjectStore>);

        impl std::fmt::Display for NoEtags {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "NoEtags({})", self.0)
            }
        }

        #[async_trait]
        impl ObjectStore for NoEtags {
            async fn put_opts(
                &self,
                location: &Path,
                payload: PutPayload,
                opts: PutOptions,
            ) -> object_store::Result<PutResult> {
                self.0.put_opts(location, payload, opts).await
            }

            async fn put_multipart_opts(
                &self,
                location: &Path,
                opts: PutMultipartOptions,
            ) -> object_store::Result<Box<dyn MultipartUpload>> {
                self.0.put_multipart_opts(location, opts).await
            }

            async fn get_opts(
                &self,
                location: &Path,
                options: GetOptions,
            ) -> object_store::Result<GetResult> {
                let mut result = self.0.get_opts(location, options).await?;
                result.meta.e_tag = None;
                Ok(result)
            }

            fn delete_stream(
                &self,
                locations: BoxStream<'static, object_store::Result<Path>>,
            ) -> BoxStream<'static, object_store::Result<Path>> {
                self.0.delete_stream(locations)
            }

            fn list(
                &self,
                prefix: Option<&Path>,
            ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
                self.0.list(prefix)
            }

            async fn list_with_delimiter(
                &self,
                prefix: Option<&Path>,
            ) -> object_store::Result<ListResult> {
                self.0.list_with_delimiter(prefix).await
            }

            async fn copy_opts(
                &self,
                from: &Path,
                to: &Path,
                options: CopyOptions,
            ) -> object_store::Result<()> {
                self.0.copy_opts(from, to, options).await
            }
        }

        #[tokio::test]
        async fn a_branch_read_without_etag_is_a_storage_error() {
            let storage = Storage::new(StorageConfig::memory()).unwrap();
            Repository::create(storage.clone()).await.unwrap();
            let blind = storage.map_store(|inner| Arc::new(NoEtags(inner)));
            let repo = Repository::open(blind).await.unwrap();
            for err in [
                repo.writable_session("main").await.unwrap_err(),
                repo.lookup_branch("main").await.unwrap_err(),
                repo.reset_branch("main", &repo_main(&storage).await, None)
                    .await
                    .unwrap_err(),
            ] {
                assert!(matches!(err, Error::Storage { .. }), "{err:?}");
                assert!(err.to_string().contains("no ETag"), "{err}");
            }
        }

        async fn repo_main(storage: &Storage) -> crate::SnapshotId {
            let repo = Repository::open(storage.clone()).await.unwrap();
            repo.lookup_branch("main").await.unwrap()
        }
    }
}
