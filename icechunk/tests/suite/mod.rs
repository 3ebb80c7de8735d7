//! The behaviour suite, shared by the `behaviour` (memory, local filesystem)
//! and `integration` (S3, Azure) test binaries.
//!
//! Each test is an `async fn(&dyn Backend)`; [`behaviour_suite!`] turns the
//! whole list into `#[tokio::test]` functions for one backend.

#![allow(dead_code)]

pub mod chaos;
pub mod crash;
pub mod faults;
pub mod replies;

pub use replies::every_request_sent_twice;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use icechunk::{Error, Repository, SnapshotId, Storage, StorageConfig, VersionRef};

/// A fresh, empty location in some storage backend.
pub struct Fixture {
    storage: Storage,
    /// `None` when each `Storage::new` is its own store (memory): then
    /// "another handle on the same location" is a clone.
    config: Option<StorageConfig>,
}

impl Fixture {
    pub fn new(storage: Storage, config: Option<StorageConfig>) -> Fixture {
        Fixture { storage, config }
    }

    /// The storage handle of this location.
    pub fn storage(&self) -> Storage {
        self.storage.clone()
    }

    /// An independent handle on the same location (a new connection, as a
    /// second process would have), or a clone for memory storage.
    pub fn reopen(&self) -> Storage {
        match &self.config {
            Some(config) => Storage::new(config.clone()).unwrap(),
            None => self.storage.clone(),
        }
    }
}

/// A storage backend to run the suite against.
pub trait Backend: Send + Sync {
    /// A short name for messages, e.g. `memory`.
    fn name(&self) -> &'static str;

    /// A new, empty location.
    fn fresh(&self) -> Fixture;
}

/// Generates one `#[tokio::test]` per suite test for a backend expression.
macro_rules! behaviour_suite {
    ($backend:expr) => {
        behaviour_suite!(@tests $backend;
            create_open_and_errors,
            concurrent_creates_one_wins,
            open_or_create_works,
            new_repository_state,
            get_set_delete_exists,
            writable_session_reads_own_changes,
            list_prefix_and_list_dir,
            commit_and_read_versions,
            session_keeps_committing,
            discard_changes,
            empty_commit_refused,
            readonly_session_refuses_writes,
            sessions_at_branch_tag_and_snapshot,
            conflict_names_parents_and_hides_loser,
            ancestry_newest_first,
            branches,
            reset_branch_is_conditional,
            tags_are_immutable_and_names_not_reused,
            invalid_keys_rejected,
            invalid_ref_names_rejected,
            shared_session_concurrent_use,
            concurrent_writers_commit_every_change_once,
            reopened_storage_sees_everything,
            errors_name_the_location,
            every_request_sent_twice,
        );
    };
    (@tests $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend;
                crate::suite::$name(&backend).await;
            }
        )*
    };
}

fn main_ref() -> VersionRef {
    VersionRef::Branch("main".to_string())
}

fn big(fill: u8) -> Bytes {
    Bytes::from(vec![fill; 2048])
}

async fn new_repo(backend: &dyn Backend) -> (Fixture, Repository) {
    let fixture = backend.fresh();
    let repo = Repository::create(fixture.storage()).await.unwrap();
    (fixture, repo)
}

async fn commit_one(
    repo: &Repository,
    branch: &str,
    key: &str,
    value: &str,
    message: &str,
) -> SnapshotId {
    let session = repo.writable_session(branch).await.unwrap();
    session
        .set(key, Bytes::from(value.to_string()))
        .await
        .unwrap();
    session.commit(message).await.unwrap()
}

pub async fn create_open_and_errors(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let location = fixture.storage().location();

    let err = Repository::open(fixture.storage()).await.unwrap_err();
    match &err {
        Error::RepositoryNotFound { location: l } => assert_eq!(l, &location),
        other => panic!("expected RepositoryNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains(&location), "{err}");

    let repo = Repository::create(fixture.storage()).await.unwrap();
    assert_eq!(repo.storage().location(), location);

    let err = Repository::create(fixture.storage()).await.unwrap_err();
    assert!(matches!(err, Error::RepositoryExists { .. }), "{err:?}");
    let err = Repository::create(fixture.reopen()).await.unwrap_err();
    assert!(matches!(err, Error::RepositoryExists { .. }), "{err:?}");

    commit_one(&repo, "main", "k", "v", "first").await;
    let reopened = Repository::open(fixture.reopen()).await.unwrap();
    let session = reopened.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(session.get("k").await.unwrap(), Some(Bytes::from("v")));
}

pub async fn concurrent_creates_one_wins(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let storage = fixture.reopen();
        handles.push(tokio::spawn(
            async move { Repository::create(storage).await },
        ));
    }
    let mut created = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => created += 1,
            Err(Error::RepositoryExists { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    let repo = Repository::open(fixture.storage()).await.unwrap();
    assert_eq!(repo.list_branches().await.unwrap(), vec!["main"]);
    assert_eq!(repo.ancestry(&main_ref()).await.unwrap().len(), 1);
}

pub async fn open_or_create_works(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let repo = Repository::open_or_create(fixture.storage()).await.unwrap();
    let id = commit_one(&repo, "main", "k", "v", "one").await;
    let again = Repository::open_or_create(fixture.reopen()).await.unwrap();
    assert_eq!(again.lookup_branch("main").await.unwrap(), id);
}

pub async fn new_repository_state(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    assert_eq!(repo.list_branches().await.unwrap(), vec!["main"]);
    assert!(repo.list_tags().await.unwrap().is_empty());
    let history = repo.ancestry(&main_ref()).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].message, "Repository initialized");
    assert_eq!(history[0].parent_id, None);
    assert_eq!(history[0].id, repo.lookup_branch("main").await.unwrap());

    let session = repo.readonly_session(&main_ref()).await.unwrap();
    assert!(session.read_only());
    assert_eq!(session.branch(), None);
    assert!(session.list().await.unwrap().is_empty());
    assert!(session.list_dir("").await.unwrap().is_empty());
    assert_eq!(session.snapshot_id().await, history[0].id);

    let writable = repo.writable_session("main").await.unwrap();
    assert!(!writable.read_only());
    assert_eq!(writable.branch(), Some("main"));
    assert!(!writable.has_uncommitted_changes().await);
}

pub async fn get_set_delete_exists(backend: &dyn Backend) {
    let (fixture, repo) = new_repo(backend).await;
    let session = repo.writable_session("main").await.unwrap();
    assert_eq!(session.get("zarr.json").await.unwrap(), None);
    assert!(!session.exists("zarr.json").await.unwrap());

    session
        .set("zarr.json", Bytes::from_static(b"{\"zarr_format\":3}"))
        .await
        .unwrap();
    session.set("a/c/0", big(1)).await.unwrap();
    session.set("empty", Bytes::new()).await.unwrap();
    let exactly_inline = Bytes::from(vec![9u8; 512]);
    let just_over = Bytes::from(vec![8u8; 513]);
    session
        .set("edge/512", exactly_inline.clone())
        .await
        .unwrap();
    session.set("edge/513", just_over.clone()).await.unwrap();
    assert!(session.exists("zarr.json").await.unwrap());
    assert_eq!(session.get("a/c/0").await.unwrap(), Some(big(1)));

    // Deleting an absent key is fine.
    session.delete("never/there").await.unwrap();
    session.commit("write").await.unwrap();

    // Read back through a brand new handle.
    let reopened = Repository::open(fixture.reopen()).await.unwrap();
    let s = reopened.writable_session("main").await.unwrap();
    assert_eq!(
        s.get("zarr.json").await.unwrap(),
        Some(Bytes::from_static(b"{\"zarr_format\":3}"))
    );
    assert_eq!(s.get("a/c/0").await.unwrap(), Some(big(1)));
    assert_eq!(s.get("empty").await.unwrap(), Some(Bytes::new()));
    assert_eq!(s.get("edge/512").await.unwrap(), Some(exactly_inline));
    assert_eq!(s.get("edge/513").await.unwrap(), Some(just_over));

    // Overwrite and delete.
    s.set("a/c/0", big(2)).await.unwrap();
    s.delete("zarr.json").await.unwrap();
    s.delete("zarr.json").await.unwrap();
    assert_eq!(s.get("zarr.json").await.unwrap(), None);
    assert!(!s.exists("zarr.json").await.unwrap());
    s.commit("overwrite and delete").await.unwrap();
    let ro = reopened.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(ro.get("a/c/0").await.unwrap(), Some(big(2)));
    assert_eq!(ro.get("zarr.json").await.unwrap(), None);
    assert_eq!(
        ro.list().await.unwrap(),
        vec!["a/c/0", "edge/512", "edge/513", "empty"]
    );
}

pub async fn writable_session_reads_own_changes(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    commit_one(&repo, "main", "base", "1", "base").await;
    let session = repo.writable_session("main").await.unwrap();
    let other = repo.writable_session("main").await.unwrap();

    session.set("new", Bytes::from_static(b"n")).await.unwrap();
    session.set("big", big(3)).await.unwrap();
    session.delete("base").await.unwrap();
    assert!(session.has_uncommitted_changes().await);
    assert_eq!(
        session.get("new").await.unwrap(),
        Some(Bytes::from_static(b"n"))
    );
    assert_eq!(session.get("big").await.unwrap(), Some(big(3)));
    assert_eq!(session.get("base").await.unwrap(), None);
    assert_eq!(session.list().await.unwrap(), vec!["big", "new"]);

    // Nobody else sees uncommitted changes.
    assert_eq!(other.get("new").await.unwrap(), None);
    assert_eq!(
        other.get("base").await.unwrap(),
        Some(Bytes::from_static(b"1"))
    );
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(ro.list().await.unwrap(), vec!["base"]);

    // Setting back a deleted key, then deleting a key that only exists as a change.
    session.set("base", Bytes::from_static(b"2")).await.unwrap();
    assert_eq!(
        session.get("base").await.unwrap(),
        Some(Bytes::from_static(b"2"))
    );
    session.delete("new").await.unwrap();
    assert_eq!(session.get("new").await.unwrap(), None);
    assert_eq!(session.list().await.unwrap(), vec!["base", "big"]);
}

pub async fn list_prefix_and_list_dir(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let session = repo.writable_session("main").await.unwrap();
    for key in [
        "zarr.json",
        "group/zarr.json",
        "group/array/zarr.json",
        "group/array/c/0/0",
        "group/array/c/0/1",
        "group/array2/zarr.json",
        "groupie",
    ] {
        session
            .set(key, Bytes::from(key.to_string()))
            .await
            .unwrap();
    }
    session.commit("tree").await.unwrap();
    // One more uncommitted change, to check lists see it.
    session.set("group/array/c/1/0", big(4)).await.unwrap();
    session.delete("group/array2/zarr.json").await.unwrap();

    assert_eq!(
        session.list().await.unwrap(),
        vec![
            "group/array/c/0/0",
            "group/array/c/0/1",
            "group/array/c/1/0",
            "group/array/zarr.json",
            "group/zarr.json",
            "groupie",
            "zarr.json",
        ]
    );
    assert_eq!(
        session.list_prefix("group").await.unwrap(),
        vec![
            "group/array/c/0/0",
            "group/array/c/0/1",
            "group/array/c/1/0",
            "group/array/zarr.json",
            "group/zarr.json",
            "groupie",
        ]
    );
    assert_eq!(
        session.list_prefix("group/array/c/").await.unwrap(),
        vec![
            "group/array/c/0/0",
            "group/array/c/0/1",
            "group/array/c/1/0"
        ]
    );
    assert!(session.list_prefix("nothing").await.unwrap().is_empty());
    assert_eq!(session.list_prefix("").await.unwrap().len(), 7);

    assert_eq!(
        session.list_dir("").await.unwrap(),
        vec!["group", "groupie", "zarr.json"]
    );
    assert_eq!(
        session.list_dir("group").await.unwrap(),
        vec!["array", "zarr.json"]
    );
    assert_eq!(
        session.list_dir("group/").await.unwrap(),
        vec!["array", "zarr.json"]
    );
    assert_eq!(
        session.list_dir("group/array").await.unwrap(),
        vec!["c", "zarr.json"]
    );
    assert_eq!(
        session.list_dir("group/array/c/").await.unwrap(),
        vec!["0", "1"]
    );
    assert_eq!(
        session.list_dir("group/array/c/0").await.unwrap(),
        vec!["0", "1"]
    );
    assert!(session.list_dir("group/array2").await.unwrap().is_empty());
    assert!(session.list_dir("missing").await.unwrap().is_empty());
    // A key is not a directory.
    assert!(session.list_dir("zarr.json").await.unwrap().is_empty());

    // A read-only session at the committed version does not see the pending changes.
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(
        ro.list_dir("group").await.unwrap(),
        vec!["array", "array2", "zarr.json"]
    );
    assert_eq!(ro.list_dir("group/array/c").await.unwrap(), vec!["0"]);
}

pub async fn commit_and_read_versions(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let initial = repo.lookup_branch("main").await.unwrap();
    let session = repo.writable_session("main").await.unwrap();
    assert_eq!(session.snapshot_id().await, initial);

    session.set("k", Bytes::from_static(b"v1")).await.unwrap();
    session.set("chunk", big(1)).await.unwrap();
    let first = session.commit("first").await.unwrap();
    assert_ne!(first, initial);
    assert_eq!(session.snapshot_id().await, first);
    assert!(!session.has_uncommitted_changes().await);
    assert_eq!(repo.lookup_branch("main").await.unwrap(), first);

    session.set("k", Bytes::from_static(b"v2")).await.unwrap();
    session.set("chunk", big(2)).await.unwrap();
    let second = session.commit("second").await.unwrap();
    assert_eq!(repo.lookup_branch("main").await.unwrap(), second);

    let at_first = repo
        .readonly_session(&VersionRef::Snapshot(first.clone()))
        .await
        .unwrap();
    assert_eq!(at_first.snapshot_id().await, first);
    assert_eq!(
        at_first.get("k").await.unwrap(),
        Some(Bytes::from_static(b"v1"))
    );
    assert_eq!(at_first.get("chunk").await.unwrap(), Some(big(1)));
    let at_initial = repo
        .readonly_session(&VersionRef::Snapshot(initial))
        .await
        .unwrap();
    assert!(at_initial.list().await.unwrap().is_empty());
    let at_main = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(
        at_main.get("k").await.unwrap(),
        Some(Bytes::from_static(b"v2"))
    );
    assert_eq!(at_main.get("chunk").await.unwrap(), Some(big(2)));
}

pub async fn session_keeps_committing(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let session = repo.writable_session("main").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        session
            .set(&format!("k{i}"), Bytes::from(format!("{i}")))
            .await
            .unwrap();
        ids.push(session.commit(&format!("commit {i}")).await.unwrap());
    }
    assert_eq!(repo.lookup_branch("main").await.unwrap(), ids[3]);
    let history = repo.ancestry(&main_ref()).await.unwrap();
    assert_eq!(history.len(), 5);
    for (i, id) in ids.iter().rev().enumerate() {
        assert_eq!(&history[i].id, id);
    }
    assert_eq!(session.list().await.unwrap(), vec!["k0", "k1", "k2", "k3"]);
}

pub async fn discard_changes(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    commit_one(&repo, "main", "keep", "1", "base").await;
    let session = repo.writable_session("main").await.unwrap();
    session.set("new", Bytes::from_static(b"x")).await.unwrap();
    session.set("keep", Bytes::from_static(b"2")).await.unwrap();
    session.delete("keep").await.unwrap();
    assert!(session.has_uncommitted_changes().await);
    session.discard_changes().await.unwrap();
    assert!(!session.has_uncommitted_changes().await);
    assert_eq!(session.get("new").await.unwrap(), None);
    assert_eq!(
        session.get("keep").await.unwrap(),
        Some(Bytes::from_static(b"1"))
    );
    assert_eq!(session.list().await.unwrap(), vec!["keep"]);
    assert!(matches!(
        session.commit("nothing").await,
        Err(Error::NoChangesToCommit)
    ));
    // Discarding on a read-only session is harmless.
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    ro.discard_changes().await.unwrap();
}

pub async fn empty_commit_refused(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let before = repo.lookup_branch("main").await.unwrap();
    let session = repo.writable_session("main").await.unwrap();
    let err = session.commit("empty").await.unwrap_err();
    assert!(matches!(err, Error::NoChangesToCommit), "{err:?}");
    // Setting then deleting a new key, or deleting an absent one, changes nothing.
    session.set("tmp", Bytes::from_static(b"x")).await.unwrap();
    session.delete("tmp").await.unwrap();
    session.delete("absent").await.unwrap();
    assert!(!session.has_uncommitted_changes().await);
    assert!(matches!(
        session.commit("empty").await,
        Err(Error::NoChangesToCommit)
    ));
    assert_eq!(repo.lookup_branch("main").await.unwrap(), before);
    assert_eq!(repo.ancestry(&main_ref()).await.unwrap().len(), 1);
}

pub async fn readonly_session_refuses_writes(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let id = commit_one(&repo, "main", "k", "v", "one").await;
    for at in [main_ref(), VersionRef::Snapshot(id)] {
        let ro = repo.readonly_session(&at).await.unwrap();
        assert!(ro.read_only());
        assert!(matches!(
            ro.set("x", Bytes::new()).await,
            Err(Error::ReadOnlySession)
        ));
        assert!(matches!(ro.delete("k").await, Err(Error::ReadOnlySession)));
        assert!(matches!(ro.commit("no").await, Err(Error::ReadOnlySession)));
        assert!(!ro.has_uncommitted_changes().await);
        assert_eq!(ro.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
    }
}

pub async fn sessions_at_branch_tag_and_snapshot(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let v1 = commit_one(&repo, "main", "k", "1", "v1").await;
    repo.create_tag("v1", &v1).await.unwrap();
    repo.create_branch("dev", &v1).await.unwrap();
    let v2 = commit_one(&repo, "main", "k", "2", "v2").await;
    let d1 = commit_one(&repo, "dev", "k", "dev", "on dev").await;

    let read = |at: VersionRef| {
        let repo = repo.clone();
        async move {
            let s = repo.readonly_session(&at).await.unwrap();
            (s.snapshot_id().await, s.get("k").await.unwrap())
        }
    };
    assert_eq!(read(main_ref()).await, (v2.clone(), Some(Bytes::from("2"))));
    assert_eq!(
        read(VersionRef::Tag("v1".into())).await,
        (v1.clone(), Some(Bytes::from("1")))
    );
    assert_eq!(
        read(VersionRef::Snapshot(v1.clone())).await,
        (v1, Some(Bytes::from("1")))
    );
    assert_eq!(
        read(VersionRef::Branch("dev".into())).await,
        (d1, Some(Bytes::from("dev")))
    );

    let err = repo
        .readonly_session(&VersionRef::Branch("nope".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BranchNotFound { ref branch } if branch == "nope"),
        "{err:?}"
    );
    let err = repo
        .readonly_session(&VersionRef::Tag("nope".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TagNotFound { ref tag } if tag == "nope"),
        "{err:?}"
    );
    let missing = SnapshotId::random();
    let err = repo
        .readonly_session(&VersionRef::Snapshot(missing.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotFound { ref id } if *id == missing),
        "{err:?}"
    );
    let err = repo.writable_session("nope").await.unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
}

pub async fn conflict_names_parents_and_hides_loser(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let base = commit_one(&repo, "main", "k", "base", "base").await;
    let winner = repo.writable_session("main").await.unwrap();
    let loser = repo.writable_session("main").await.unwrap();

    winner
        .set("k", Bytes::from_static(b"winner"))
        .await
        .unwrap();
    loser.set("k", Bytes::from_static(b"loser")).await.unwrap();
    loser.set("loser-only", big(7)).await.unwrap();
    let won = winner.commit("winner commit").await.unwrap();

    let err = loser.commit("loser commit").await.unwrap_err();
    match &err {
        Error::Conflict {
            branch,
            expected_parent,
            actual_parent,
        } => {
            assert_eq!(branch, "main");
            assert_eq!(expected_parent, &base);
            assert_eq!(actual_parent.as_ref(), Some(&won));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&base.to_string()) && msg.contains(&won.to_string()),
        "{msg}"
    );

    // Nothing of the loser is visible.
    assert_eq!(repo.lookup_branch("main").await.unwrap(), won);
    let history = repo.ancestry(&main_ref()).await.unwrap();
    assert!(history.iter().all(|i| i.message != "loser commit"));
    assert_eq!(history.len(), 3);
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(
        ro.get("k").await.unwrap(),
        Some(Bytes::from_static(b"winner"))
    );
    assert_eq!(ro.get("loser-only").await.unwrap(), None);
    assert_eq!(repo.list_branches().await.unwrap(), vec!["main"]);

    // The loser keeps its base and changes; a fresh session can redo the work.
    assert_eq!(loser.snapshot_id().await, base);
    assert!(loser.has_uncommitted_changes().await);
    let retry = repo.writable_session("main").await.unwrap();
    retry.set("loser-only", big(7)).await.unwrap();
    retry.commit("loser retried").await.unwrap();
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(ro.get("loser-only").await.unwrap(), Some(big(7)));

    // Committing to a branch deleted under the session's feet is a conflict too.
    repo.create_branch("gone", &base).await.unwrap();
    let s = repo.writable_session("gone").await.unwrap();
    repo.delete_branch("gone").await.unwrap();
    s.set("x", Bytes::from_static(b"x")).await.unwrap();
    match s.commit("into the void").await.unwrap_err() {
        Error::Conflict {
            branch,
            expected_parent,
            actual_parent,
        } => {
            assert_eq!(branch, "gone");
            assert_eq!(expected_parent, base);
            assert_eq!(actual_parent, None);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(repo.list_branches().await.unwrap(), vec!["main"]);
}

pub async fn ancestry_newest_first(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let a = commit_one(&repo, "main", "k", "a", "commit a").await;
    let b = commit_one(&repo, "main", "k", "b", "commit b").await;
    let c = commit_one(&repo, "main", "k", "c", "commit c").await;
    let history = repo.ancestry(&main_ref()).await.unwrap();
    let messages: Vec<&str> = history.iter().map(|i| i.message.as_str()).collect();
    assert_eq!(
        messages,
        vec!["commit c", "commit b", "commit a", "Repository initialized"]
    );
    assert_eq!(history[0].id, c);
    assert_eq!(history[0].parent_id.as_ref(), Some(&b));
    assert_eq!(history[1].parent_id.as_ref(), Some(&a));
    assert_eq!(history[3].parent_id, None);
    for pair in history.windows(2) {
        assert!(pair[0].written_at >= pair[1].written_at);
    }
    let from_b = repo
        .ancestry(&VersionRef::Snapshot(b.clone()))
        .await
        .unwrap();
    assert_eq!(from_b.len(), 3);
    assert_eq!(from_b[0].id, b);
    repo.create_tag("at-a", &a).await.unwrap();
    let from_tag = repo
        .ancestry(&VersionRef::Tag("at-a".into()))
        .await
        .unwrap();
    assert_eq!(from_tag.len(), 2);
    assert_eq!(from_tag[0].message, "commit a");
}

pub async fn branches(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let initial = repo.lookup_branch("main").await.unwrap();
    let one = commit_one(&repo, "main", "k", "1", "one").await;

    repo.create_branch("zeta", &one).await.unwrap();
    repo.create_branch("alpha", &initial).await.unwrap();
    assert_eq!(
        repo.list_branches().await.unwrap(),
        vec!["alpha", "main", "zeta"]
    );
    assert_eq!(repo.lookup_branch("alpha").await.unwrap(), initial);
    assert_eq!(repo.lookup_branch("zeta").await.unwrap(), one);

    let err = repo.create_branch("alpha", &one).await.unwrap_err();
    assert!(
        matches!(err, Error::BranchExists { ref branch } if branch == "alpha"),
        "{err:?}"
    );
    assert_eq!(repo.lookup_branch("alpha").await.unwrap(), initial);
    let missing = SnapshotId::random();
    let err = repo.create_branch("other", &missing).await.unwrap_err();
    assert!(matches!(err, Error::SnapshotNotFound { .. }), "{err:?}");

    // Committing to a branch leaves main alone.
    let on_alpha = commit_one(&repo, "alpha", "k", "alpha", "on alpha").await;
    assert_eq!(repo.lookup_branch("alpha").await.unwrap(), on_alpha);
    assert_eq!(repo.lookup_branch("main").await.unwrap(), one);

    repo.delete_branch("zeta").await.unwrap();
    assert_eq!(repo.list_branches().await.unwrap(), vec!["alpha", "main"]);
    let err = repo.lookup_branch("zeta").await.unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
    let err = repo.delete_branch("zeta").await.unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");
    let err = repo.delete_branch("main").await.unwrap_err();
    assert!(matches!(err, Error::ProtectedBranch { .. }), "{err:?}");
    assert_eq!(repo.lookup_branch("main").await.unwrap(), one);
    // A deleted branch name can be used again.
    repo.create_branch("zeta", &initial).await.unwrap();
    assert_eq!(repo.lookup_branch("zeta").await.unwrap(), initial);
}

pub async fn reset_branch_is_conditional(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let initial = repo.lookup_branch("main").await.unwrap();
    let one = commit_one(&repo, "main", "k", "1", "one").await;
    let two = commit_one(&repo, "main", "k", "2", "two").await;

    // Wrong expectation: refused, nothing moves.
    match repo
        .reset_branch("main", &initial, Some(&one))
        .await
        .unwrap_err()
    {
        Error::Conflict {
            branch,
            expected_parent,
            actual_parent,
        } => {
            assert_eq!(branch, "main");
            assert_eq!(expected_parent, one);
            assert_eq!(actual_parent, Some(two.clone()));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(repo.lookup_branch("main").await.unwrap(), two);

    repo.reset_branch("main", &one, Some(&two)).await.unwrap();
    assert_eq!(repo.lookup_branch("main").await.unwrap(), one);
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(ro.get("k").await.unwrap(), Some(Bytes::from("1")));
    repo.reset_branch("main", &two, None).await.unwrap();
    assert_eq!(repo.lookup_branch("main").await.unwrap(), two);

    let err = repo
        .reset_branch("main", &SnapshotId::random(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotNotFound { .. }), "{err:?}");
    let err = repo.reset_branch("nope", &one, None).await.unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err:?}");

    // A session opened before a reset cannot commit over it.
    let session = repo.writable_session("main").await.unwrap();
    repo.reset_branch("main", &initial, Some(&two))
        .await
        .unwrap();
    session.set("k", Bytes::from("3")).await.unwrap();
    match session.commit("stale").await.unwrap_err() {
        Error::Conflict {
            expected_parent,
            actual_parent,
            ..
        } => {
            assert_eq!(expected_parent, two);
            assert_eq!(actual_parent, Some(initial.clone()));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(repo.lookup_branch("main").await.unwrap(), initial);
}

pub async fn tags_are_immutable_and_names_not_reused(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let initial = repo.lookup_branch("main").await.unwrap();
    let one = commit_one(&repo, "main", "k", "1", "one").await;

    repo.create_tag("v1", &one).await.unwrap();
    repo.create_tag("v0", &initial).await.unwrap();
    assert_eq!(repo.list_tags().await.unwrap(), vec!["v0", "v1"]);
    assert_eq!(repo.lookup_tag("v1").await.unwrap(), one);

    for at in [&one, &initial] {
        let err = repo.create_tag("v1", at).await.unwrap_err();
        assert!(
            matches!(err, Error::TagExists { ref tag } if tag == "v1"),
            "{err:?}"
        );
    }
    assert_eq!(repo.lookup_tag("v1").await.unwrap(), one);
    let err = repo
        .create_tag("v2", &SnapshotId::random())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotNotFound { .. }), "{err:?}");

    repo.delete_tag("v1").await.unwrap();
    assert_eq!(repo.list_tags().await.unwrap(), vec!["v0"]);
    let err = repo.lookup_tag("v1").await.unwrap_err();
    assert!(matches!(err, Error::TagNotFound { .. }), "{err:?}");
    let err = repo
        .readonly_session(&VersionRef::Tag("v1".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TagNotFound { .. }), "{err:?}");
    let err = repo.delete_tag("v1").await.unwrap_err();
    assert!(matches!(err, Error::TagNotFound { .. }), "{err:?}");
    let err = repo.delete_tag("never").await.unwrap_err();
    assert!(matches!(err, Error::TagNotFound { .. }), "{err:?}");

    // The name of a deleted tag can never be used again.
    for at in [&one, &initial] {
        let err = repo.create_tag("v1", at).await.unwrap_err();
        assert!(
            matches!(err, Error::TagDeleted { ref tag } if tag == "v1"),
            "{err:?}"
        );
    }
    // Tags and branches live in separate namespaces.
    repo.create_branch("v1", &one).await.unwrap();
    assert_eq!(repo.list_tags().await.unwrap(), vec!["v0"]);
    // The snapshot a deleted tag pointed to is still reachable by id.
    let ro = repo
        .readonly_session(&VersionRef::Snapshot(one))
        .await
        .unwrap();
    assert_eq!(ro.get("k").await.unwrap(), Some(Bytes::from("1")));
}

pub async fn invalid_keys_rejected(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let session = repo.writable_session("main").await.unwrap();
    for bad in [
        "",
        "/a",
        "a/",
        "a//b",
        "./a",
        "a/../b",
        "..",
        "a\nb",
        "a\u{0}b",
        "\u{1b}[0m",
    ] {
        let err = session.set(bad, Bytes::new()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey { ref key, .. } if key == bad),
            "{bad:?}: {err:?}"
        );
        assert!(
            matches!(session.get(bad).await, Err(Error::InvalidKey { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(session.delete(bad).await, Err(Error::InvalidKey { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(session.exists(bad).await, Err(Error::InvalidKey { .. })),
            "{bad:?}"
        );
    }
    assert!(!session.has_uncommitted_changes().await);
    // Unusual but valid keys work.
    for good in [".zattrs", "a b/ü.json", "x..y", "c/0.0.0"] {
        session
            .set(good, Bytes::from(good.to_string()))
            .await
            .unwrap();
    }
    session.commit("odd keys").await.unwrap();
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(
        ro.get("a b/ü.json").await.unwrap(),
        Some(Bytes::from("a b/ü.json"))
    );
}

pub async fn invalid_ref_names_rejected(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let id = repo.lookup_branch("main").await.unwrap();
    for bad in [
        "",
        "a/b",
        "..",
        ".hidden",
        "with space",
        "x\n",
        "tab\t",
        "ü",
        "trailing.",
    ] {
        let check = |r: Result<(), Error>| {
            assert!(
                matches!(r, Err(Error::InvalidRefName { ref name, .. }) if name == bad),
                "{bad:?}: {r:?}"
            )
        };
        check(repo.create_branch(bad, &id).await);
        check(repo.create_tag(bad, &id).await);
        check(repo.lookup_branch(bad).await.map(|_| ()));
        check(repo.lookup_tag(bad).await.map(|_| ()));
        check(repo.delete_branch(bad).await);
        check(repo.delete_tag(bad).await);
        check(repo.reset_branch(bad, &id, None).await);
        check(repo.writable_session(bad).await.map(|_| ()));
    }
    assert_eq!(repo.list_branches().await.unwrap(), vec!["main"]);
    assert!(repo.list_tags().await.unwrap().is_empty());
}

pub async fn shared_session_concurrent_use(backend: &dyn Backend) {
    let (_fixture, repo) = new_repo(backend).await;
    let session = Arc::new(repo.writable_session("main").await.unwrap());
    let mut handles = Vec::new();
    for t in 0..8u8 {
        let session = Arc::clone(&session);
        handles.push(tokio::spawn(async move {
            for i in 0..10u8 {
                let key = format!("t{t}/k{i}");
                let value = if i % 3 == 0 {
                    big(t)
                } else {
                    Bytes::from(key.clone())
                };
                session.set(&key, value.clone()).await.unwrap();
                assert_eq!(session.get(&key).await.unwrap(), Some(value));
                session.list_dir(&format!("t{t}")).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(session.list().await.unwrap().len(), 80);
    session.commit("from many tasks").await.unwrap();
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    assert_eq!(ro.list().await.unwrap().len(), 80);
    assert_eq!(ro.get("t3/k3").await.unwrap(), Some(big(3)));
    assert_eq!(ro.get("t3/k4").await.unwrap(), Some(Bytes::from("t3/k4")));
}

pub async fn concurrent_writers_commit_every_change_once(backend: &dyn Backend) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 5;
    let (fixture, repo) = new_repo(backend).await;
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        // Each writer has its own connection, as separate processes would.
        let repo = Repository::open(fixture.reopen()).await.unwrap();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0usize;
            for r in 0..ROUNDS {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts <= 500, "writer {w} round {r}: too many conflicts");
                    let session = repo.writable_session("main").await.unwrap();
                    session
                        .set(&format!("w{w}/r{r}/small"), Bytes::from(format!("{w}-{r}")))
                        .await
                        .unwrap();
                    session
                        .set(
                            &format!("w{w}/r{r}/big"),
                            Bytes::from(vec![(w * ROUNDS + r) as u8; 1000]),
                        )
                        .await
                        .unwrap();
                    match session.commit(&format!("writer {w} round {r}")).await {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) => {
                            conflicts += 1;
                            let pause = rand::random_range(1..20u64);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        Err(other) => panic!("writer {w} round {r}: {other}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.unwrap();
    }
    eprintln!("{WRITERS} writers x {ROUNDS} rounds: {conflicts} conflicts retried");

    let history = repo.ancestry(&main_ref()).await.unwrap();
    assert_eq!(history.len(), WRITERS * ROUNDS + 1);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for info in &history {
        *counts.entry(info.message.as_str()).or_default() += 1;
    }
    for w in 0..WRITERS {
        for r in 0..ROUNDS {
            let msg = format!("writer {w} round {r}");
            assert_eq!(counts.get(msg.as_str()), Some(&1), "{msg}");
        }
    }
    // The chain is linear and ends at the initial snapshot.
    for pair in history.windows(2) {
        assert_eq!(pair[0].parent_id.as_ref(), Some(&pair[1].id));
    }
    let ro = repo.readonly_session(&main_ref()).await.unwrap();
    let keys: BTreeSet<String> = ro.list().await.unwrap().into_iter().collect();
    assert_eq!(keys.len(), WRITERS * ROUNDS * 2);
    for w in 0..WRITERS {
        for r in 0..ROUNDS {
            assert_eq!(
                ro.get(&format!("w{w}/r{r}/small")).await.unwrap(),
                Some(Bytes::from(format!("{w}-{r}")))
            );
            assert_eq!(
                ro.get(&format!("w{w}/r{r}/big")).await.unwrap(),
                Some(Bytes::from(vec![(w * ROUNDS + r) as u8; 1000]))
            );
        }
    }
}

pub async fn reopened_storage_sees_everything(backend: &dyn Backend) {
    let (fixture, repo) = new_repo(backend).await;
    let one = commit_one(&repo, "main", "a/zarr.json", "{}", "one").await;
    repo.create_branch("dev", &one).await.unwrap();
    repo.create_tag("t", &one).await.unwrap();
    repo.create_tag("gone", &one).await.unwrap();
    repo.delete_tag("gone").await.unwrap();
    let s = repo.writable_session("dev").await.unwrap();
    s.set("a/c/0", big(5)).await.unwrap();
    let dev = s.commit("dev work").await.unwrap();

    let other = Repository::open(fixture.reopen()).await.unwrap();
    assert_eq!(other.list_branches().await.unwrap(), vec!["dev", "main"]);
    assert_eq!(other.list_tags().await.unwrap(), vec!["t"]);
    assert_eq!(other.lookup_branch("dev").await.unwrap(), dev);
    assert_eq!(other.lookup_tag("t").await.unwrap(), one);
    assert!(matches!(
        other.create_tag("gone", &one).await,
        Err(Error::TagDeleted { .. })
    ));
    let ro = other
        .readonly_session(&VersionRef::Branch("dev".into()))
        .await
        .unwrap();
    assert_eq!(ro.get("a/c/0").await.unwrap(), Some(big(5)));
    assert_eq!(ro.list_dir("a").await.unwrap(), vec!["c", "zarr.json"]);
    let history = other
        .ancestry(&VersionRef::Branch("dev".into()))
        .await
        .unwrap();
    let messages: Vec<&str> = history.iter().map(|i| i.message.as_str()).collect();
    assert_eq!(messages, vec!["dev work", "one", "Repository initialized"]);
}

pub async fn errors_name_the_location(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let location = fixture.storage().location();
    assert!(!location.is_empty());
    let err = Repository::open(fixture.storage()).await.unwrap_err();
    assert!(err.to_string().contains(&location), "{err}");
    Repository::create(fixture.storage()).await.unwrap();
    let err = Repository::create(fixture.storage()).await.unwrap_err();
    assert!(err.to_string().contains(&location), "{err}");
    assert_eq!(
        format!("{:?}", fixture.storage()),
        format!("Storage {{ location: {location:?} }}")
    );
}
