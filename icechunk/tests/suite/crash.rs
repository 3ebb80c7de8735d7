//! Crash-point tests: an operation is cut off at each of its store calls in
//! turn, before that call is applied or right after, as if the process died
//! there ([`Schedule::crash_at`]). A fresh handle then checks that storage
//! holds either the state before the operation or the state after it, that
//! the error said so, and that the repository keeps working.

use std::sync::Arc;

use bytes::Bytes;
use icechunk::{Error, Repository, Result, SnapshotId, Storage, VersionRef};

use super::Backend;
use super::chaos::check_complete;
use super::faults::{Crash, FaultyStore, Schedule};

/// A handle on `storage` that dies at the crash point.
fn crashing(storage: &Storage, crash: Crash) -> (Storage, Arc<Schedule>) {
    let schedule = Schedule::crash_at(crash);
    let for_store = schedule.clone();
    let storage = storage.map_store(move |inner| Arc::new(FaultyStore::new(inner, for_store)));
    (storage, schedule)
}

/// Runs `scenario` once per crash point, call 0 first, until it reports that
/// it finished without reaching the crash point; returns how many crash
/// points there were.
async fn each_crash_point<F, Fut>(mut scenario: F) -> u64
where
    F: FnMut(Crash) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut points = 0;
    for at in 0..1000 {
        for applied in [false, true] {
            if !scenario(Crash { at, applied }).await {
                return points;
            }
            points += 1;
        }
    }
    panic!("the operation never finished");
}

/// `Repository::create` cut off anywhere leaves no repository or a complete
/// one, and `open_or_create` then always gives a complete one.
pub async fn repository_creation(backend: &dyn Backend) {
    let points = each_crash_point(|crash| async move {
        let fixture = backend.fresh();
        let (storage, schedule) = crashing(&fixture.storage(), crash);
        let result = Repository::create(storage).await;
        if !schedule.crashed() {
            result.unwrap();
            return false;
        }
        let definite = match result {
            Ok(_) => panic!("{crash:?}: a crashed create succeeded"),
            // "Nothing was created".
            Err(Error::Storage { .. }) => true,
            Err(Error::OutcomeUnknown { .. }) => false,
            Err(e) => panic!("{crash:?}: wrong answer {e}"),
        };
        match Repository::open(fixture.storage()).await {
            Ok(repo) if !definite => check_complete(&repo).await,
            Ok(_) => panic!("{crash:?}: a storage error, but the repository was created"),
            Err(Error::RepositoryNotFound { .. }) => {}
            Err(e) => panic!("{crash:?}: {e}"),
        }
        let repo = Repository::open_or_create(fixture.storage()).await.unwrap();
        check_complete(&repo).await;
        true
    })
    .await;
    assert!(points >= 6, "only {points} crash points");
}

/// A commit cut off anywhere (including while opening the repository and the
/// session) is either entirely visible or not at all.
pub async fn commit(backend: &dyn Backend) {
    let big = Bytes::from(vec![7u8; 3000]);
    let small = Bytes::from_static(b"small");
    let points = each_crash_point(|crash| {
        let (big, small) = (big.clone(), small.clone());
        async move {
            let fixture = backend.fresh();
            let clean = Repository::create(fixture.storage()).await.unwrap();
            let before = clean.lookup_branch("main").await.unwrap();
            let (storage, schedule) = crashing(&fixture.storage(), crash);
            let mut session = None;
            let result: Result<SnapshotId> = async {
                let repo = Repository::open(storage).await?;
                let session = session.insert(repo.writable_session("main").await?);
                session.set("big", big.clone()).await?;
                session.set("small", small.clone()).await?;
                session.commit("cut off").await
            }
            .await;
            if !schedule.crashed() {
                result.unwrap();
                return false;
            }
            let definite = match result {
                Ok(_) => panic!("{crash:?}: a crashed commit succeeded"),
                // "Nothing was committed".
                Err(Error::Storage { .. }) => true,
                Err(Error::OutcomeUnknown { .. }) => false,
                Err(e) => panic!("{crash:?}: wrong answer {e}"),
            };
            let main = VersionRef::Branch("main".into());
            let tip = clean.readonly_session(&main).await.unwrap();
            let history = clean.ancestry(&main).await.unwrap();
            assert!(
                !definite || history[0].id == before,
                "{crash:?}: a storage error, but the commit is visible"
            );
            let landed = if history[0].id == before {
                assert_eq!(tip.list().await.unwrap(), Vec::<String>::new(), "{crash:?}");
                None
            } else {
                assert_eq!(history.len(), 2, "{crash:?}");
                assert_eq!(history[0].message, "cut off");
                assert_eq!(tip.get("big").await.unwrap(), Some(big.clone()));
                assert_eq!(tip.get("small").await.unwrap(), Some(small.clone()));
                Some(history[0].id.clone())
            };

            // The storage comes back: committing again on the same session,
            // as the error invites, settles the cut-off commit and never
            // commits it twice.
            schedule.revive();
            if let Some(session) = session {
                match session.commit("cut off").await {
                    Ok(id) => {
                        if let Some(landed) = &landed {
                            assert_eq!(&id, landed, "{crash:?}: a new id for a landed commit");
                        }
                        let history = clean.ancestry(&main).await.unwrap();
                        assert_eq!(history.len(), 2, "{crash:?}: {history:?}");
                        assert_eq!(history[0].id, id);
                    }
                    // The cut-off came before any change was made.
                    Err(Error::NoChangesToCommit) => assert!(landed.is_none()),
                    Err(e) => panic!("{crash:?}: committing again: {e}"),
                }
            }
            let session = clean.writable_session("main").await.unwrap();
            session.set("after", small.clone()).await.unwrap();
            session.commit("after the crash").await.unwrap();
            true
        }
    })
    .await;
    assert!(points >= 8, "only {points} crash points");
}

/// Where the branch `b` and the tag `t` of [`refs`] are.
async fn ref_state(repo: &Repository, one: &SnapshotId) -> (&'static str, &'static str) {
    let branch = match repo.lookup_branch("b").await {
        Ok(id) if &id == one => "one",
        Ok(_) => "initial",
        Err(Error::BranchNotFound { .. }) => "none",
        Err(e) => panic!("lookup_branch: {e}"),
    };
    let tag = match repo.lookup_tag("t").await {
        Ok(_) => "live",
        // Tell a deleted tag from one never created: only the latter can be created.
        Err(Error::TagNotFound { .. }) => match repo.create_tag("t", one).await {
            Ok(()) => "missing",
            Err(Error::TagDeleted { .. }) => "deleted",
            Err(e) => panic!("create_tag: {e}"),
        },
        Err(e) => panic!("lookup_tag: {e}"),
    };
    (branch, tag)
}

/// Branch and tag operations cut off anywhere: storage is in the state after
/// the operations that reported success, or after the cut-off one too.
pub async fn refs(backend: &dyn Backend) {
    const STATES: [(&str, &str); 6] = [
        ("none", "missing"),
        ("one", "missing"),
        ("initial", "missing"),
        ("initial", "live"),
        ("initial", "deleted"),
        ("none", "deleted"),
    ];
    let points = each_crash_point(|crash| async move {
        let fixture = backend.fresh();
        let clean = Repository::create(fixture.storage()).await.unwrap();
        let initial = clean.lookup_branch("main").await.unwrap();
        let session = clean.writable_session("main").await.unwrap();
        session.set("k", Bytes::from_static(b"v")).await.unwrap();
        let one = session.commit("one").await.unwrap();
        let (storage, schedule) = crashing(&fixture.storage(), crash);
        let mut done = 0;
        let result: Result<()> = async {
            let repo = Repository::open(storage).await?;
            repo.create_branch("b", &one).await?;
            done += 1;
            repo.reset_branch("b", &initial, Some(&one)).await?;
            done += 1;
            repo.create_tag("t", &one).await?;
            done += 1;
            repo.delete_tag("t").await?;
            done += 1;
            repo.delete_branch("b").await?;
            done += 1;
            Ok(())
        }
        .await;
        if !schedule.crashed() {
            result.unwrap();
            return false;
        }
        let definite = match result {
            Ok(()) => panic!("{crash:?}: crashed operations succeeded"),
            // The operation cut off did nothing.
            Err(Error::Storage { .. }) => true,
            Err(Error::OutcomeUnknown { .. }) => false,
            Err(e) => panic!("{crash:?}: wrong answer {e}"),
        };
        let state = ref_state(&clean, &one).await;
        let reached = STATES.iter().position(|s| *s == state);
        assert!(
            reached == Some(done) || (!definite && reached == Some(done + 1)),
            "{crash:?}: {done} operations succeeded, the next failed with a {} error, but \
             storage shows {state:?}",
            if definite {
                "storage"
            } else {
                "unknown-outcome"
            }
        );
        true
    })
    .await;
    assert!(points >= 10, "only {points} crash points");
}
