//! The entry point: creating and opening repositories, managing branches and
//! tags, reading history and starting sessions.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::{self, ObjectKind, RepoMarker, SnapshotId};
use crate::refs::{self, MAIN_BRANCH, TagState};
use crate::resolve::{Intent, Moved, Target, create_object, move_branch};
use crate::session::Session;
use crate::snapshot::Snapshot;
use crate::storage::Storage;

/// The key of the object marking a repository.
pub(crate) const REPO_MARKER_KEY: &str = "repo";

/// How to find out whether a repository creation whose outcome is unknown
/// took effect.
const CREATE_CHECK: &str = "open it: Repository::open_or_create finishes an interrupted creation, Repository::open \
     reports RepositoryNotFound if there is none";

/// A version of the repository: the tip of a branch, a tag or a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionRef {
    /// The snapshot a branch currently points to.
    Branch(String),
    /// The snapshot a tag points to.
    Tag(String),
    /// A snapshot by id.
    Snapshot(SnapshotId),
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionRef::Branch(b) => write!(f, "branch `{b}`"),
            VersionRef::Tag(t) => write!(f, "tag `{t}`"),
            VersionRef::Snapshot(s) => write!(f, "snapshot {s}"),
        }
    }
}

/// What [`Repository::ancestry`] reports about each snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's id.
    pub id: SnapshotId,
    /// The previous snapshot, `None` for the repository's first one.
    pub parent_id: Option<SnapshotId>,
    /// The commit message.
    pub message: String,
    /// When the snapshot was written.
    pub written_at: DateTime<Utc>,
}

impl From<&Snapshot> for SnapshotInfo {
    fn from(s: &Snapshot) -> Self {
        SnapshotInfo {
            id: s.id.clone(),
            parent_id: s.parent_id.clone(),
            message: s.message.clone(),
            written_at: s.written_at,
        }
    }
}

/// A repository: a set of immutable snapshots plus the branches and tags that
/// point to them. Cheap to clone; clones share the same storage.
#[derive(Debug, Clone)]
pub struct Repository {
    storage: Storage,
}

impl Repository {
    /// Creates a new repository with a `main` branch pointing to an empty
    /// initial snapshot ("Repository initialized").
    ///
    /// Fails with [`Error::RepositoryExists`] if there is already one at this
    /// location (also when two processes race to create it: one wins).
    ///
    /// Creation is atomic: the initial snapshot is written first, then
    /// `main` (whoever creates it wins the race), and the `repo` marker last;
    /// [`Repository::open`] only recognises a location with the marker. A
    /// creation interrupted before the marker is finished by the next
    /// `create` (which then reports `RepositoryExists`, since the repository
    /// is not its own) or [`Repository::open_or_create`].
    pub async fn create(storage: Storage) -> Result<Self> {
        if storage.exists(REPO_MARKER_KEY).await? {
            return Err(Error::RepositoryExists {
                location: storage.location(),
            });
        }
        let initial = Snapshot::initial();
        initial.write(&storage).await?;
        let location = storage.location();
        let ours = refs::create_branch(&storage, MAIN_BRANCH, &initial.id)
            .await
            .map_err(|e| match e {
                Error::OutcomeUnknown { source, .. } => Error::outcome_unknown(
                    format!("creating the repository at {location}"),
                    CREATE_CHECK,
                    *source,
                ),
                other => other,
            })?;
        let marker = format::encode_msgpack(
            ObjectKind::RepoMarker,
            &RepoMarker {
                created_at: initial.written_at,
            },
        )?;
        let intent = Intent::new(
            format!("creating the repository at {location}"),
            CREATE_CHECK,
        );
        // Ours or a concurrent creator's: either way the repository is complete.
        create_object(&storage, REPO_MARKER_KEY, &marker, intent).await?;
        if ours {
            Ok(Repository { storage })
        } else {
            Err(Error::RepositoryExists { location })
        }
    }

    /// Opens an existing repository; [`Error::RepositoryNotFound`] if there is none.
    ///
    /// Only a complete repository is recognised: a creation interrupted
    /// before its last step is not a repository yet.
    pub async fn open(storage: Storage) -> Result<Self> {
        let Some(fetched) = storage.get(REPO_MARKER_KEY).await? else {
            return Err(Error::RepositoryNotFound {
                location: storage.location(),
            });
        };
        let _marker: RepoMarker = format::decode_msgpack(
            &storage.describe(REPO_MARKER_KEY),
            ObjectKind::RepoMarker,
            &fetched.data,
        )?;
        Ok(Repository { storage })
    }

    /// Opens the repository, creating it first if there is none (or
    /// finishing a creation that was interrupted). Concurrent calls all end
    /// with the same repository.
    pub async fn open_or_create(storage: Storage) -> Result<Self> {
        match Self::open(storage.clone()).await {
            Err(Error::RepositoryNotFound { .. }) => match Self::create(storage.clone()).await {
                // Someone else created it in the meantime.
                Err(Error::RepositoryExists { .. }) => Self::open(storage).await,
                other => other,
            },
            other => other,
        }
    }

    /// The storage this repository lives in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    async fn resolve(&self, at: &VersionRef) -> Result<Snapshot> {
        let id = match at {
            VersionRef::Branch(name) => {
                refs::validate_ref_name(name)?;
                refs::fetch_branch(&self.storage, name).await?.snapshot
            }
            VersionRef::Tag(name) => self.lookup_tag(name).await?,
            VersionRef::Snapshot(id) => id.clone(),
        };
        Snapshot::read(&self.storage, &id).await
    }

    /// A read-only session on a branch tip, a tag or a snapshot.
    pub async fn readonly_session(&self, at: &VersionRef) -> Result<Session> {
        let snapshot = self.resolve(at).await?;
        Ok(Session::new_readonly(self.storage.clone(), snapshot))
    }

    /// A session that can change the store and commit to `branch`.
    pub async fn writable_session(&self, branch: &str) -> Result<Session> {
        refs::validate_ref_name(branch)?;
        let state = refs::fetch_branch(&self.storage, branch).await?;
        let snapshot = Snapshot::read(&self.storage, &state.snapshot).await?;
        Ok(Session::new_writable(
            self.storage.clone(),
            branch.to_string(),
            snapshot,
            Some(state.etag),
        ))
    }

    /// The history leading to a version, newest first, ending with the
    /// repository's initial snapshot.
    pub async fn ancestry(&self, from: &VersionRef) -> Result<Vec<SnapshotInfo>> {
        let mut current = self.resolve(from).await?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        loop {
            if !seen.insert(current.id.clone()) {
                return Err(Error::corrupted(
                    self.storage
                        .describe(&crate::snapshot::snapshot_key(&current.id)),
                    "the snapshot history contains a cycle",
                ));
            }
            out.push(SnapshotInfo::from(&current));
            let Some(parent) = current.parent_id.clone() else {
                return Ok(out);
            };
            current = Snapshot::read(&self.storage, &parent).await?;
        }
    }

    async fn check_snapshot_exists(&self, id: &SnapshotId) -> Result<()> {
        let key = crate::snapshot::snapshot_key(id);
        if self.storage.exists(&key).await? {
            Ok(())
        } else {
            Err(Error::SnapshotNotFound { id: id.clone() })
        }
    }

    /// Creates a branch pointing to a snapshot.
    pub async fn create_branch(&self, name: &str, at: &SnapshotId) -> Result<()> {
        refs::validate_ref_name(name)?;
        self.check_snapshot_exists(at).await?;
        if refs::create_branch(&self.storage, name, at).await? {
            Ok(())
        } else {
            Err(Error::BranchExists {
                branch: name.to_string(),
            })
        }
    }

    /// All branch names, sorted.
    pub async fn list_branches(&self) -> Result<Vec<String>> {
        refs::list_branches(&self.storage).await
    }

    /// The snapshot a branch points to.
    pub async fn lookup_branch(&self, name: &str) -> Result<SnapshotId> {
        refs::validate_ref_name(name)?;
        Ok(refs::fetch_branch(&self.storage, name).await?.snapshot)
    }

    /// Deletes a branch. The `main` branch cannot be deleted.
    pub async fn delete_branch(&self, name: &str) -> Result<()> {
        refs::validate_ref_name(name)?;
        if name == MAIN_BRANCH {
            return Err(Error::ProtectedBranch {
                branch: name.to_string(),
            });
        }
        refs::fetch_branch(&self.storage, name).await?;
        refs::delete_branch(&self.storage, name).await
    }

    /// Points a branch to another snapshot.
    ///
    /// With `expected_current`, the branch is only moved if it points to that
    /// snapshot. Either way the move is a compare-and-swap against the
    /// version just read, so a concurrent change gives [`Error::Conflict`].
    pub async fn reset_branch(
        &self,
        name: &str,
        to: &SnapshotId,
        expected_current: Option<&SnapshotId>,
    ) -> Result<()> {
        refs::validate_ref_name(name)?;
        let state = refs::fetch_branch(&self.storage, name).await?;
        let expected = expected_current.unwrap_or(&state.snapshot).clone();
        if state.snapshot != expected {
            return Err(Error::Conflict {
                branch: name.to_string(),
                expected_parent: expected,
                actual_parent: Some(state.snapshot),
            });
        }
        self.check_snapshot_exists(to).await?;
        let intent = Intent::new(
            format!("resetting branch `{name}` to snapshot {to}"),
            format!(
                "look the branch up (Repository::lookup_branch): if it points to snapshot {to}, \
                 the reset was applied"
            ),
        );
        match move_branch(&self.storage, name, &state.etag, to, Target::Exact, intent).await? {
            Moved::Done { .. } => Ok(()),
            Moved::Conflict { actual } => Err(Error::Conflict {
                branch: name.to_string(),
                expected_parent: expected,
                actual_parent: actual,
            }),
        }
    }

    /// Creates a tag pointing to a snapshot. Tags never move; the name of a
    /// deleted tag cannot be used again ([`Error::TagDeleted`]).
    pub async fn create_tag(&self, name: &str, at: &SnapshotId) -> Result<()> {
        refs::validate_ref_name(name)?;
        if let TagState::Deleted = refs::read_tag(&self.storage, name).await? {
            return Err(Error::TagDeleted {
                tag: name.to_string(),
            });
        }
        self.check_snapshot_exists(at).await?;
        refs::create_tag(&self.storage, name, at).await
    }

    /// All live tag names, sorted.
    pub async fn list_tags(&self) -> Result<Vec<String>> {
        refs::list_tags(&self.storage).await
    }

    /// The snapshot a tag points to.
    pub async fn lookup_tag(&self, name: &str) -> Result<SnapshotId> {
        refs::validate_ref_name(name)?;
        match refs::read_tag(&self.storage, name).await? {
            TagState::Live(id) => Ok(id),
            TagState::Deleted | TagState::Missing => Err(Error::TagNotFound {
                tag: name.to_string(),
            }),
        }
    }

    /// Deletes a tag. Its name can never be used again.
    pub async fn delete_tag(&self, name: &str) -> Result<()> {
        refs::validate_ref_name(name)?;
        refs::delete_tag(&self.storage, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StorageConfig;
    use crate::storage::WriteMode;

    #[test]
    fn repository_and_session_are_send_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Repository>();
        fn check_session<T: Send + Sync + 'static>() {}
        check_session::<Session>();
    }

    #[tokio::test]
    async fn newer_marker_is_refused() {
        let storage = Storage::new(StorageConfig::memory()).unwrap();
        Repository::create(storage.clone()).await.unwrap();
        let fetched = storage.get(REPO_MARKER_KEY).await.unwrap().unwrap();
        let mut data = fetched.data.to_vec();
        data[8..10].copy_from_slice(&(format::FORMAT_VERSION + 1).to_le_bytes());
        storage
            .put(REPO_MARKER_KEY, data.into(), WriteMode::Overwrite)
            .await
            .unwrap();
        let err = Repository::open(storage).await.unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedFormatVersion { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("memory://repo"), "{err}");
    }

    #[tokio::test]
    async fn corrupted_snapshot_is_reported() {
        let storage = Storage::new(StorageConfig::memory()).unwrap();
        let repo = Repository::create(storage.clone()).await.unwrap();
        let id = repo.lookup_branch("main").await.unwrap();
        let key = crate::snapshot::snapshot_key(&id);
        let fetched = storage.get(&key).await.unwrap().unwrap();
        let mut data = fetched.data.to_vec();
        let last = data.len() - 1;
        data[last] ^= 0x20;
        storage
            .put(&key, data.into(), WriteMode::Overwrite)
            .await
            .unwrap();
        let err = repo
            .readonly_session(&VersionRef::Branch("main".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
        let err = repo
            .ancestry(&VersionRef::Branch("main".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    }

    #[tokio::test]
    async fn corrupted_chunk_is_reported() {
        let storage = Storage::new(StorageConfig::memory()).unwrap();
        let repo = Repository::create(storage.clone()).await.unwrap();
        let session = repo.writable_session("main").await.unwrap();
        let big = bytes::Bytes::from(vec![42u8; 2000]);
        session.set("big", big.clone()).await.unwrap();
        session.commit("big").await.unwrap();
        let chunk = crate::format::ChunkId::for_content(&big);
        let key = crate::snapshot::chunk_key(&chunk);
        let fetched = storage.get(&key).await.unwrap().unwrap();
        // Same length, same CRC would be needed to fool the header: flip a byte.
        let mut data = fetched.data.to_vec();
        data[100] ^= 1;
        storage
            .put(&key, data.into(), WriteMode::Overwrite)
            .await
            .unwrap();
        let err = session.get("big").await.unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
        // A missing chunk is corruption too.
        storage.delete(&key).await.unwrap();
        let err = session.get("big").await.unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    }
}
