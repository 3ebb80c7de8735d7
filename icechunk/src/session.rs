//! Sessions: reading a version of the store, and changing and committing it.
//!
//! A [`Session`] reads one snapshot (its *base*). A writable session also
//! keeps uncommitted changes (small values in memory, larger ones already
//! uploaded as chunks), sees them in every read, and turns them into a new
//! snapshot with [`Session::commit`]. Every method takes
//! `&self`, so a session can be shared (for example in an `Arc`) and used
//! from several tasks at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::RwLock;

use crate::error::{Error, Result};
use crate::format::{Entry, SnapshotId};
use crate::refs;
use crate::resolve::{Intent, Moved, Target, move_branch};
use crate::snapshot::{self, Snapshot};
use crate::storage::Storage;

/// Checks a store key: not empty, no leading or trailing `/`, no empty,
/// `.` or `..` segments, no control characters.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    let fail = |reason: &str| {
        Err(Error::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return fail("keys cannot be empty");
    }
    if key.starts_with('/') {
        return fail("keys cannot start with '/'");
    }
    if key.ends_with('/') {
        return fail("keys cannot end with '/'");
    }
    if key.chars().any(char::is_control) {
        return fail("keys cannot contain control characters");
    }
    for segment in key.split('/') {
        match segment {
            "" => return fail("keys cannot contain empty segments ('//')"),
            "." | ".." => return fail("keys cannot contain '.' or '..' segments"),
            _ => {}
        }
    }
    Ok(())
}

/// Which bytes of a value [`Session::get_range`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// Bytes `start..end`.
    Bounded(Range<u64>),
    /// Every byte from this offset on.
    From(u64),
    /// The last this many bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The bytes this range selects in a value of `len` bytes: always a
    /// (possibly empty) range inside `0..len`.
    fn within(&self, len: u64) -> Range<u64> {
        match self {
            ByteRange::Bounded(r) => {
                let start = r.start.min(len);
                start..r.end.clamp(start, len)
            }
            ByteRange::From(start) => (*start).min(len)..len,
            ByteRange::Suffix(n) => len.saturating_sub(*n)..len,
        }
    }
}

/// An uncommitted change. A set value larger than the inline threshold is
/// uploaded as a chunk by [`Session::set`], so a session holds only small
/// values and chunk references in memory, however much it writes.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Set(Entry),
    Delete,
}

#[derive(Debug)]
struct State {
    base: Arc<Snapshot>,
    /// ETag of the branch reference when it pointed to `base`; `None` when
    /// the branch is known to have moved past `base` (the next commit is a
    /// conflict).
    branch_etag: Option<String>,
    changes: BTreeMap<String, Change>,
    /// A commit whose outcome was unknown; the next commit settles it first.
    pending: Option<Pending>,
}

/// A snapshot written by a commit whose branch move could not be confirmed,
/// with the changes it holds.
#[derive(Debug)]
struct Pending {
    snapshot: Arc<Snapshot>,
    changes: BTreeMap<String, Change>,
}

impl State {
    /// Keys visible in this session that start with `prefix`, sorted.
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for (key, _) in self
            .base
            .entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if !matches!(self.changes.get(key), Some(Change::Delete)) {
                keys.insert(key.as_str());
            }
        }
        for (key, change) in self
            .changes
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if let Change::Set(_) = change {
                keys.insert(key.as_str());
            }
        }
        keys.into_iter().map(str::to_string).collect()
    }
}

/// A view of one version of the store; writable sessions also hold
/// uncommitted changes and can commit them to their branch.
pub struct Session {
    storage: Storage,
    branch: Option<String>,
    state: RwLock<State>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("location", &self.storage.location())
            .field("branch", &self.branch)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new_readonly(storage: Storage, base: Snapshot) -> Session {
        Session {
            storage,
            branch: None,
            state: RwLock::new(State {
                base: Arc::new(base),
                branch_etag: None,
                changes: BTreeMap::new(),
                pending: None,
            }),
        }
    }

    pub(crate) fn new_writable(
        storage: Storage,
        branch: String,
        base: Snapshot,
        branch_etag: Option<String>,
    ) -> Session {
        Session {
            storage,
            branch: Some(branch),
            state: RwLock::new(State {
                base: Arc::new(base),
                branch_etag,
                changes: BTreeMap::new(),
                pending: None,
            }),
        }
    }

    /// Whether this session refuses changes.
    pub fn read_only(&self) -> bool {
        self.branch.is_none()
    }

    /// The branch a writable session commits to; `None` when read-only.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// The snapshot this session reads (after a commit, the new snapshot).
    pub async fn snapshot_id(&self) -> SnapshotId {
        self.state.read().await.base.id.clone()
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only() {
            Err(Error::ReadOnlySession)
        } else {
            Ok(())
        }
    }

    /// How a key's value is stored (in the changes, else in the base), `None`
    /// if the key is absent.
    async fn entry(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        let state = self.state.read().await;
        Ok(match state.changes.get(key) {
            Some(Change::Set(entry)) => Some(entry.clone()),
            Some(Change::Delete) => None,
            None => state.base.entries.get(key).cloned(),
        })
    }

    /// The value of a key, `None` if absent.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.entry(key).await? {
            None => Ok(None),
            Some(Entry::Inline(value)) => Ok(Some(value)),
            Some(Entry::Chunk { id, length }) => snapshot::read_chunk(&self.storage, &id, length)
                .await
                .map(Some),
        }
    }

    /// Part of a key's value, `None` if the key is absent. A range past the
    /// end of the value is clipped (a start past the end gives no bytes).
    ///
    /// For a value stored as a chunk only the requested bytes are fetched;
    /// such a partial read is not checked against the value's hash (a whole
    /// [`Session::get`] is).
    pub async fn get_range(&self, key: &str, range: ByteRange) -> Result<Option<Bytes>> {
        match self.entry(key).await? {
            None => Ok(None),
            Some(Entry::Inline(value)) => {
                let within = range.within(value.len() as u64);
                // `within` lies inside `0..len`, so both ends fit in usize.
                let (start, end) = (within.start as usize, within.end as usize);
                Ok(Some(value.slice(start..end)))
            }
            Some(Entry::Chunk { id, length }) => {
                let within = range.within(length);
                snapshot::read_chunk_range(&self.storage, &id, length, within)
                    .await
                    .map(Some)
            }
        }
    }

    /// Sets a key's value.
    ///
    /// A value larger than the inline threshold is uploaded at once, as a
    /// chunk that nothing refers to until the commit (see FORMAT.md), so the
    /// session does not keep it in memory. On an error the key keeps its
    /// previous value.
    pub async fn set(&self, key: &str, value: Bytes) -> Result<()> {
        self.check_writable()?;
        validate_key(key)?;
        let (entry, chunk) = snapshot::entry_for(&value);
        if let Some((id, data)) = chunk {
            snapshot::write_chunk(&self.storage, &id, &data).await?;
        }
        let mut state = self.state.write().await;
        state.changes.insert(key.to_string(), Change::Set(entry));
        Ok(())
    }

    /// Deletes a key; deleting an absent key does nothing.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.check_writable()?;
        validate_key(key)?;
        let mut state = self.state.write().await;
        if state.base.entries.contains_key(key) {
            state.changes.insert(key.to_string(), Change::Delete);
        } else {
            state.changes.remove(key);
        }
        Ok(())
    }

    /// Whether a key has a value.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let state = self.state.read().await;
        Ok(match state.changes.get(key) {
            Some(Change::Set(_)) => true,
            Some(Change::Delete) => false,
            None => state.base.entries.contains_key(key),
        })
    }

    /// Every key, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        Ok(self.state.read().await.keys_with_prefix(""))
    }

    /// Every key starting with `prefix` (a plain string prefix), sorted.
    pub async fn list_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.state.read().await.keys_with_prefix(prefix))
    }

    /// The names directly inside a "directory": the last segment of keys
    /// directly under it and the names of its sub-directories, sorted and
    /// without trailing `/`. `""` is the root; `"a"` and `"a/"` both mean
    /// directory `a`.
    pub async fn list_dir(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = prefix.trim_end_matches('/');
        let full = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let keys = self.state.read().await.keys_with_prefix(&full);
        let names: BTreeSet<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(full.as_str()))
            .filter_map(|rest| rest.split('/').next())
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
        Ok(names.into_iter().collect())
    }

    /// Whether there are changes not yet committed.
    pub async fn has_uncommitted_changes(&self) -> bool {
        !self.state.read().await.changes.is_empty()
    }

    /// Forgets every uncommitted change.
    ///
    /// A commit that failed with [`Error::OutcomeUnknown`] is not forgotten:
    /// it may have been applied, so the next [`Session::commit`] still
    /// settles it first (and returns its snapshot id if it was applied).
    pub async fn discard_changes(&self) -> Result<()> {
        self.state.write().await.changes.clear();
        Ok(())
    }

    /// Writes the changes as a new snapshot and moves the branch to it.
    ///
    /// The branch only moves if it still points to this session's base
    /// snapshot; otherwise nothing becomes visible and [`Error::Conflict`]
    /// names the expected and the actual tip (the changes are kept, so the
    /// caller may discard them or retry on a fresh session). On success the
    /// new snapshot becomes the base and the changes are cleared.
    ///
    /// A lost reply to the branch move is resolved by reading the branch back
    /// (see FORMAT.md). If that fails too, the error is
    /// [`Error::OutcomeUnknown`] and the changes are kept: calling `commit`
    /// again on this session first settles the earlier attempt, and returns
    /// its snapshot id if it had been applied (committing only what changed
    /// since, if anything did), so the changes are never committed twice.
    /// Any other error happens before the branch is touched: nothing was
    /// committed.
    pub async fn commit(&self, message: &str) -> Result<SnapshotId> {
        let Some(branch) = self.branch.as_deref() else {
            return Err(Error::ReadOnlySession);
        };
        let mut state = self.state.write().await;
        if let Some(pending) = state.pending.take() {
            let id = pending.snapshot.id.clone();
            self.publish(branch, &mut state, pending).await?;
            if state.changes.is_empty() {
                return Ok(id);
            }
        }
        if state.changes.is_empty() {
            return Err(Error::NoChangesToCommit);
        }

        let mut entries = state.base.entries.clone();
        for (key, change) in &state.changes {
            match change {
                Change::Set(entry) => {
                    entries.insert(key.clone(), entry.clone());
                }
                Change::Delete => {
                    entries.remove(key);
                }
            }
        }

        let new = Snapshot {
            id: SnapshotId::random(),
            parent_id: Some(state.base.id.clone()),
            message: message.to_string(),
            written_at: chrono::Utc::now(),
            entries,
        };
        new.write(&self.storage).await?;
        let id = new.id.clone();
        let pending = Pending {
            snapshot: Arc::new(new),
            changes: state.changes.clone(),
        };
        self.publish(branch, &mut state, pending).await?;
        Ok(id)
    }

    /// Moves the branch from the session's base to a written snapshot and,
    /// if that worked, makes it the base and forgets the changes it holds.
    async fn publish(&self, branch: &str, state: &mut State, pending: Pending) -> Result<()> {
        let conflict = |actual| Error::Conflict {
            branch: branch.to_string(),
            expected_parent: state.base.id.clone(),
            actual_parent: actual,
        };
        let Some(etag) = state.branch_etag.clone() else {
            let actual = refs::read_branch(&self.storage, branch)
                .await?
                .map(|s| s.snapshot);
            return Err(conflict(actual));
        };
        let id = pending.snapshot.id.clone();
        let intent = Intent::new(
            format!("the commit of snapshot {id} to branch `{branch}`"),
            format!(
                "commit again on the same session, which checks first, or see whether branch \
                 `{branch}` points to snapshot {id} or descends from it (Repository::ancestry)"
            ),
        );
        let target = Target::Descendant {
            base: &state.base.id,
        };
        let moved = move_branch(&self.storage, branch, &etag, &id, target, intent).await;
        match moved {
            Ok(Moved::Done { etag }) => {
                state
                    .changes
                    .retain(|key, change| pending.changes.get(key) != Some(change));
                state.base = pending.snapshot;
                state.branch_etag = etag;
                Ok(())
            }
            Ok(Moved::Conflict { actual }) => Err(conflict(actual)),
            Err(e) => {
                state.pending = Some(pending);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in [
            "zarr.json",
            "a/b/c",
            "a/c/0.0",
            ".zattrs",
            "a/.b",
            "x..y",
            "ü/ñ",
            "a b",
        ] {
            validate_key(good).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "./a", "a/./b", "a/..", "..", ".", "a\nb", "\u{7f}", "a\0",
        ] {
            assert!(
                matches!(validate_key(bad), Err(Error::InvalidKey { .. })),
                "{bad:?} accepted"
            );
        }
    }

    /// Ranged reads of inline values, committed and uncommitted chunks, with
    /// clipping at both ends.
    #[tokio::test]
    async fn ranged_reads() {
        use crate::{Repository, StorageConfig};

        let repo = Repository::create(Storage::new(StorageConfig::memory()).unwrap())
            .await
            .unwrap();
        let session = repo.writable_session("main").await.unwrap();
        let big: Bytes = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let small = Bytes::from_static(b"0123456789");
        session.set("big", big.clone()).await.unwrap();
        session.set("small", small.clone()).await.unwrap();
        for committed in [false, true] {
            if committed {
                session.commit("values").await.unwrap();
            }
            for (key, value) in [("big", &big), ("small", &small)] {
                let len = value.len();
                let cases = [
                    (ByteRange::Bounded(2..7), value.slice(2..7)),
                    (ByteRange::Bounded(5..100_000), value.slice(5..)),
                    (ByteRange::Bounded(Range { start: 7, end: 2 }), Bytes::new()),
                    (ByteRange::From(len as u64 - 3), value.slice(len - 3..)),
                    (ByteRange::From(100_000), Bytes::new()),
                    (ByteRange::Suffix(4), value.slice(len - 4..)),
                    (ByteRange::Suffix(100_000), value.clone()),
                ];
                for (range, expected) in cases {
                    let got = session.get_range(key, range.clone()).await.unwrap();
                    assert_eq!(got, Some(expected), "{key} {range:?} committed={committed}");
                }
            }
        }
        let got = session
            .get_range("absent", ByteRange::From(0))
            .await
            .unwrap();
        assert_eq!(got, None);
        session.delete("big").await.unwrap();
        let got = session.get_range("big", ByteRange::From(0)).await.unwrap();
        assert_eq!(got, None);
    }

    /// Large values are uploaded by `set`: before the commit the chunk is in
    /// storage (unreachable), reads of the key find it there, and a
    /// discarded change leaves it behind without making it visible.
    #[tokio::test]
    async fn large_values_are_uploaded_when_set() {
        use crate::{Repository, StorageConfig, VersionRef};

        let storage = Storage::new(StorageConfig::memory()).unwrap();
        let repo = Repository::create(storage.clone()).await.unwrap();
        let session = repo.writable_session("main").await.unwrap();
        let big = Bytes::from(vec![7u8; 4096]);
        session.set("a/c/0", big.clone()).await.unwrap();
        session
            .set("small", Bytes::from_static(b"s"))
            .await
            .unwrap();
        assert_eq!(storage.list_names("chunks").await.unwrap().len(), 1);
        assert_eq!(session.get("a/c/0").await.unwrap(), Some(big.clone()));
        let ro = repo
            .readonly_session(&VersionRef::Branch("main".into()))
            .await
            .unwrap();
        assert_eq!(ro.get("a/c/0").await.unwrap(), None);

        session.commit("big").await.unwrap();
        let ro = repo
            .readonly_session(&VersionRef::Branch("main".into()))
            .await
            .unwrap();
        assert_eq!(ro.get("a/c/0").await.unwrap(), Some(big));

        session
            .set("a/c/1", Bytes::from(vec![8u8; 4096]))
            .await
            .unwrap();
        session.discard_changes().await.unwrap();
        assert_eq!(storage.list_names("chunks").await.unwrap().len(), 2);
        assert_eq!(session.get("a/c/1").await.unwrap(), None);
    }

    mod model {
        use std::collections::BTreeMap;

        use bytes::Bytes;
        use proptest::prelude::*;

        use crate::{Repository, Session, SnapshotId, Storage, StorageConfig, VersionRef};

        const KEYS: &[&str] = &[
            "zarr.json",
            "a/zarr.json",
            "a/c/0",
            "a/c/1",
            "a/c/0/x",
            "a/b/zarr.json",
            "ab",
            "b",
        ];
        const PREFIXES: &[&str] = &["", "a", "a/", "a/c", "a/c/0", "ab", "b", "z", "a/b/"];

        #[derive(Debug, Clone)]
        enum Op {
            Set(usize, u8, bool),
            Delete(usize),
            Commit,
            Discard,
            CheckoutOlder(usize),
            Reopen,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..KEYS.len(), any::<u8>(), any::<bool>()).prop_map(|(k, v, big)| Op::Set(k, v, big)),
                2 => (0..KEYS.len()).prop_map(Op::Delete),
                2 => Just(Op::Commit),
                1 => Just(Op::Discard),
                1 => any::<usize>().prop_map(Op::CheckoutOlder),
                1 => Just(Op::Reopen),
            ]
        }

        fn value(v: u8, big: bool) -> Bytes {
            if big {
                Bytes::from(vec![v; 700])
            } else {
                Bytes::from(format!("value-{v}"))
            }
        }

        type Model = BTreeMap<String, Bytes>;

        fn model_list_dir(model: &Model, prefix: &str) -> Vec<String> {
            let dir = prefix.trim_end_matches('/');
            let full = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            let mut names: Vec<String> = model
                .keys()
                .filter(|k| k.starts_with(&full))
                .map(|k| k[full.len()..].split('/').next().unwrap().to_string())
                .collect();
            names.sort();
            names.dedup();
            names
        }

        async fn check(session: &Session, model: &Model) {
            for key in KEYS {
                assert_eq!(
                    session.get(key).await.unwrap(),
                    model.get(*key).cloned(),
                    "get {key}"
                );
                assert_eq!(
                    session.exists(key).await.unwrap(),
                    model.contains_key(*key),
                    "exists {key}"
                );
            }
            let all: Vec<String> = model.keys().cloned().collect();
            assert_eq!(session.list().await.unwrap(), all);
            for prefix in PREFIXES {
                let expected: Vec<String> = model
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect();
                assert_eq!(
                    session.list_prefix(prefix).await.unwrap(),
                    expected,
                    "list_prefix {prefix}"
                );
                assert_eq!(
                    session.list_dir(prefix).await.unwrap(),
                    model_list_dir(model, prefix),
                    "list_dir {prefix}"
                );
            }
        }

        async fn run(ops: Vec<Op>) {
            let storage = Storage::new(StorageConfig::memory()).unwrap();
            let repo = Repository::create(storage).await.unwrap();
            let mut session = repo.writable_session("main").await.unwrap();
            // Committed history, oldest first: (id, content).
            let mut history: Vec<(SnapshotId, Model)> =
                vec![(session.snapshot_id().await, Model::new())];
            let mut committed = Model::new();
            let mut working = Model::new();
            // Whether the model has pending changes, with the session's rules:
            // deleting a key the base does not have cancels a pending set.
            let mut pending: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(k, v, big) => {
                        let val = value(v, big);
                        session.set(KEYS[k], val.clone()).await.unwrap();
                        working.insert(KEYS[k].to_string(), val.clone());
                        pending.insert(KEYS[k].to_string(), Some(val));
                    }
                    Op::Delete(k) => {
                        session.delete(KEYS[k]).await.unwrap();
                        working.remove(KEYS[k]);
                        if committed.contains_key(KEYS[k]) {
                            pending.insert(KEYS[k].to_string(), None);
                        } else {
                            pending.remove(KEYS[k]);
                        }
                    }
                    Op::Commit => {
                        assert_eq!(session.has_uncommitted_changes().await, !pending.is_empty());
                        let res = session.commit("commit").await;
                        if pending.is_empty() {
                            assert!(
                                matches!(res, Err(crate::Error::NoChangesToCommit)),
                                "{res:?}"
                            );
                        } else {
                            let id = res.unwrap();
                            assert_eq!(session.snapshot_id().await, id);
                            committed = working.clone();
                            pending.clear();
                            history.push((id, committed.clone()));
                        }
                    }
                    Op::Discard => {
                        session.discard_changes().await.unwrap();
                        working = committed.clone();
                        pending.clear();
                    }
                    Op::CheckoutOlder(i) => {
                        let (id, content) = &history[i % history.len()];
                        let old = repo
                            .readonly_session(&VersionRef::Snapshot(id.clone()))
                            .await
                            .unwrap();
                        check(&old, content).await;
                    }
                    Op::Reopen => {
                        session = repo.writable_session("main").await.unwrap();
                        working = committed.clone();
                        pending.clear();
                    }
                }
                assert_eq!(session.has_uncommitted_changes().await, !pending.is_empty());
                check(&session, &working).await;
            }
            let ancestry = repo
                .ancestry(&VersionRef::Branch("main".into()))
                .await
                .unwrap();
            let ids: Vec<SnapshotId> = ancestry.into_iter().map(|i| i.id).collect();
            let expected: Vec<SnapshotId> =
                history.iter().rev().map(|(id, _)| id.clone()).collect();
            assert_eq!(ids, expected);
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]
            #[test]
            fn session_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(run(ops));
            }
        }
    }
}
