//! The fault-injection scenario: concurrent writers, branch and tag
//! operations, racing tag creations and repository creation through a
//! [`FaultyStore`], with retries written as a user would write them, then
//! checked against storage without faults.
//!
//! After a run: every operation's reported outcome matches storage, no commit
//! is lost or duplicated, no repository is half-created, and every value reads
//! back. [`run`] prints the counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use icechunk::{Error, Repository, Result, SnapshotId, Storage, VersionRef};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::Backend;
use super::faults::{self, Fault, FaultyStore, Rates, Schedule};

/// How much to do in one run.
pub struct Plan {
    pub writers: usize,
    pub commits_per_writer: usize,
    /// Branch and tag operations, done by one more task during the commits.
    pub ref_ops: usize,
    /// Tags created by two tasks at once, at different snapshots.
    pub tag_races: usize,
    /// Fresh locations where repositories are created concurrently.
    pub creations: usize,
    /// Concurrent creators per location.
    pub creators: usize,
}

/// How many times an operation is retried before the test gives up.
const MAX_TRIES: usize = 200;

/// The seed of the fault schedule: `ICECHUNK_FAULT_SEED` or a fixed default.
fn seed() -> u64 {
    std::env::var("ICECHUNK_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201)
}

/// What the operations reported.
#[derive(Default)]
struct Counts {
    operations: BTreeMap<&'static str, u64>,
    /// Definite outcomes (success, conflict, exists, ...) of operations one
    /// of whose writes lost its reply.
    resolved: u64,
    /// `OutcomeUnknown` errors, each then checked as the error says.
    unknown: u64,
    conflicts: u64,
    /// Storage errors (nothing applied), retried.
    storage_errors: u64,
}

#[derive(Clone, Default)]
struct Tally(Arc<Mutex<Counts>>);

impl Tally {
    /// Runs one icechunk operation and counts it and its outcome.
    async fn call<T>(&self, kind: &'static str, op: impl Future<Output = Result<T>>) -> Result<T> {
        let (result, ambiguous) = faults::observe(op).await;
        let mut c = self.0.lock().unwrap();
        *c.operations.entry(kind).or_default() += 1;
        match &result {
            Err(Error::OutcomeUnknown { .. }) => c.unknown += 1,
            Err(Error::Storage { .. }) => c.storage_errors += 1,
            Err(Error::Conflict { .. }) if ambiguous > 0 => {
                c.conflicts += 1;
                c.resolved += 1;
            }
            Err(Error::Conflict { .. }) => c.conflicts += 1,
            _ if ambiguous > 0 => c.resolved += 1,
            _ => {}
        }
        result
    }

    /// An operation that applies nothing when the storage fails (a read, or
    /// a session change), retried until it does not fail.
    async fn retrying<T, F, Fut>(&self, kind: &'static str, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        for _ in 0..MAX_TRIES {
            match self.call(kind, op()).await {
                Err(Error::Storage { .. }) => continue,
                other => return other,
            }
        }
        panic!("{kind}: still failing after {MAX_TRIES} tries")
    }
}

fn value_for(writer: usize, commit: usize) -> Bytes {
    let text = format!("writer {writer} commit {commit};");
    // Every third value is large enough to be stored as a chunk.
    let repeat = if (writer + commit).is_multiple_of(3) {
        40
    } else {
        1
    };
    Bytes::from(text.repeat(repeat))
}

/// One writer: commits `commits` changes to `main`, retrying like a user.
async fn writer(repo: Repository, tally: Tally, w: usize, commits: usize) -> Vec<SnapshotId> {
    let mut ids = Vec::new();
    for c in 0..commits {
        let (key, value, message) = (format!("w{w}/c{c}"), value_for(w, c), format!("w{w} c{c}"));
        let id = 'commit: loop {
            let session = tally
                .retrying("writable_session", || repo.writable_session("main"))
                .await
                .unwrap();
            tally
                .retrying("set", || session.set(&key, value.clone()))
                .await
                .unwrap();
            let mut last = None;
            for _ in 0..MAX_TRIES {
                match tally.call("commit", session.commit(&message)).await {
                    Ok(id) => break 'commit id,
                    // Somebody else committed first: redo the change on the new tip.
                    Err(Error::Conflict { .. }) => continue 'commit,
                    // Nothing was committed, or the session settles it on the next call.
                    Err(e @ (Error::Storage { .. } | Error::OutcomeUnknown { .. })) => {
                        last = Some(e)
                    }
                    Err(e) => panic!("commit {message}: {e}"),
                }
            }
            panic!("commit {message}: still failing after {MAX_TRIES} tries: {last:?}");
        };
        ids.push(id);
    }
    ids
}

/// Branches and tags as they should be in storage.
#[derive(Default)]
struct RefModel {
    branches: BTreeMap<String, SnapshotId>,
    tags: BTreeMap<String, SnapshotId>,
    deleted_tags: BTreeSet<String>,
}

async fn lookup_branch(repo: &Repository, tally: &Tally, name: &str) -> Option<SnapshotId> {
    match tally
        .retrying("lookup_branch", || repo.lookup_branch(name))
        .await
    {
        Ok(id) => Some(id),
        Err(Error::BranchNotFound { .. }) => None,
        Err(e) => panic!("lookup_branch {name}: {e}"),
    }
}

async fn lookup_tag(repo: &Repository, tally: &Tally, name: &str) -> Option<SnapshotId> {
    match tally.retrying("lookup_tag", || repo.lookup_tag(name)).await {
        Ok(id) => Some(id),
        Err(Error::TagNotFound { .. }) => None,
        Err(e) => panic!("lookup_tag {name}: {e}"),
    }
}

/// Runs a mutation until it reports success or, after `OutcomeUnknown`, the
/// check that the error describes (`applied`) says it was applied.
async fn until_applied<F, Fut, C, CFut>(tally: &Tally, kind: &'static str, op: F, applied: C)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<()>>,
    C: Fn() -> CFut,
    CFut: Future<Output = bool>,
{
    for _ in 0..MAX_TRIES {
        match tally.call(kind, op()).await {
            Ok(()) => return,
            Err(Error::Storage { .. }) => {}
            Err(Error::OutcomeUnknown { .. }) => {
                if applied().await {
                    return;
                }
            }
            Err(e) => panic!("{kind}: {e}"),
        }
    }
    panic!("{kind}: still failing after {MAX_TRIES} tries");
}

/// Creates, resets and deletes branches and creates and deletes tags.
async fn ref_worker(repo: Repository, tally: Tally, ops: usize, seed: u64) -> RefModel {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = RefModel::default();
    for n in 0..ops {
        let at = lookup_branch(&repo, &tally, "main").await.unwrap();
        let branches: Vec<String> = model.branches.keys().cloned().collect();
        let tags: Vec<String> = model.tags.keys().cloned().collect();
        match rng.random_range(0..5) {
            0 | 1 if !branches.is_empty() => {
                let name = &branches[rng.random_range(0..branches.len())];
                let from = model.branches[name].clone();
                if rng.random_bool(0.7) {
                    until_applied(
                        &tally,
                        "reset_branch",
                        || repo.reset_branch(name, &at, Some(&from)),
                        || async { lookup_branch(&repo, &tally, name).await.as_ref() == Some(&at) },
                    )
                    .await;
                    model.branches.insert(name.clone(), at);
                } else {
                    until_applied(
                        &tally,
                        "delete_branch",
                        || repo.delete_branch(name),
                        || async { lookup_branch(&repo, &tally, name).await.is_none() },
                    )
                    .await;
                    model.branches.remove(name);
                }
            }
            2 if !tags.is_empty() => {
                let name = &tags[rng.random_range(0..tags.len())];
                until_applied(
                    &tally,
                    "delete_tag",
                    || repo.delete_tag(name),
                    || async { lookup_tag(&repo, &tally, name).await.is_none() },
                )
                .await;
                model.tags.remove(name);
                model.deleted_tags.insert(name.clone());
            }
            0 | 2 | 3 => {
                let name = format!("b{n}");
                until_applied(
                    &tally,
                    "create_branch",
                    || repo.create_branch(&name, &at),
                    || async { lookup_branch(&repo, &tally, &name).await.as_ref() == Some(&at) },
                )
                .await;
                model.branches.insert(name, at);
            }
            _ => {
                let name = format!("t{n}");
                until_applied(
                    &tally,
                    "create_tag",
                    || repo.create_tag(&name, &at),
                    || async { lookup_tag(&repo, &tally, &name).await.as_ref() == Some(&at) },
                )
                .await;
                model.tags.insert(name, at);
            }
        }
    }
    model
}

/// Creates tag `name` at `at` against a competitor; `true` if this task's
/// create took effect.
async fn race_tag(repo: Repository, tally: Tally, name: String, at: SnapshotId) -> bool {
    for _ in 0..MAX_TRIES {
        match tally.call("create_tag", repo.create_tag(&name, &at)).await {
            Ok(()) => return true,
            Err(Error::TagExists { .. }) => return false,
            Err(Error::Storage { .. }) => {}
            // The check the error describes: whose tag is there, if any.
            Err(Error::OutcomeUnknown { .. }) => {
                if let Some(id) = lookup_tag(&repo, &tally, &name).await {
                    return id == at;
                }
            }
            Err(e) => panic!("create_tag {name}: {e}"),
        }
    }
    panic!("create_tag {name}: still failing after {MAX_TRIES} tries");
}

/// Two tasks create each tag `race<n>`, one at `initial` and one at a later
/// tip of `main`: exactly one must win. Returns the tags and their winners.
async fn tag_races(
    repo: Repository,
    tally: Tally,
    races: usize,
    initial: SnapshotId,
) -> Vec<(String, SnapshotId)> {
    let later = loop {
        match lookup_branch(&repo, &tally, "main").await {
            Some(tip) if tip != initial => break tip,
            _ => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    };
    let mut tags = Vec::new();
    for n in 0..races {
        let name = format!("race{n}");
        let mut racers = Vec::new();
        for at in [&initial, &later] {
            let (repo, tally, name) = (repo.clone(), tally.clone(), name.clone());
            racers.push(tokio::spawn(race_tag(repo, tally, name, at.clone())));
        }
        let mut won = Vec::new();
        for (racer, at) in racers.into_iter().zip([&initial, &later]) {
            if racer.await.unwrap() {
                won.push(at.clone());
            }
        }
        assert_eq!(won.len(), 1, "tag {name}: {} creators won", won.len());
        tags.extend(won.into_iter().map(|at| (name.clone(), at)));
    }
    tags
}

/// Concurrent `open_or_create` calls, retried like a user would, on one fresh
/// location: all must end with the same repository.
async fn open_or_create_race(
    tally: &Tally,
    storage: &Storage,
    creators: usize,
) -> (Repository, SnapshotId) {
    let mut handles = Vec::new();
    for _ in 0..creators {
        let (tally, storage) = (tally.clone(), storage.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..MAX_TRIES {
                match tally
                    .call(
                        "open_or_create",
                        Repository::open_or_create(storage.clone()),
                    )
                    .await
                {
                    Ok(repo) => {
                        let main = lookup_branch(&repo, &tally, "main").await.unwrap();
                        return (repo, main);
                    }
                    Err(Error::Storage { .. } | Error::OutcomeUnknown { .. }) => {}
                    Err(e) => panic!("open_or_create: {e}"),
                }
            }
            panic!("open_or_create: still failing after {MAX_TRIES} tries");
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    let mains: BTreeSet<&SnapshotId> = results.iter().map(|(_, main)| main).collect();
    assert_eq!(
        mains.len(),
        1,
        "open_or_create ended with different repositories"
    );
    results.swap_remove(0)
}

/// Concurrent single `create` calls: at most one succeeds, and storage agrees.
async fn create_race(tally: &Tally, faulty: &Storage, clean: &Storage, creators: usize) {
    let mut handles = Vec::new();
    for _ in 0..creators {
        let (tally, storage) = (tally.clone(), faulty.clone());
        handles.push(tokio::spawn(async move {
            tally.call("create", Repository::create(storage)).await
        }));
    }
    let (mut created, mut exists) = (0, 0);
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => created += 1,
            Err(Error::RepositoryExists { .. }) => exists += 1,
            Err(Error::Storage { .. } | Error::OutcomeUnknown { .. }) => {}
            Err(e) => panic!("create: {e}"),
        }
    }
    assert!(created <= 1, "{created} concurrent creates succeeded");
    match Repository::open(clean.clone()).await {
        Ok(repo) => check_complete(&repo).await,
        Err(Error::RepositoryNotFound { .. }) => assert_eq!(
            created + exists,
            0,
            "a create reported success or \"exists\" but there is no repository"
        ),
        Err(e) => panic!("open after create: {e}"),
    }
    // Whatever is left, the next creation finishes it or starts afresh.
    let repo = Repository::open_or_create(clean.clone()).await.unwrap();
    check_complete(&repo).await;
}

/// A repository that was just created: `main` and its initial snapshot.
pub async fn check_complete(repo: &Repository) {
    assert_eq!(repo.list_branches().await.unwrap(), vec!["main"]);
    let history = repo
        .ancestry(&VersionRef::Branch("main".into()))
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].message, "Repository initialized");
}

/// Runs the scenario on `backend` and checks the result.
pub async fn run(backend: &dyn Backend, plan: &Plan) {
    let seed = seed();
    let schedule = Schedule::new(seed, Rates::DEFAULT);
    let faulty = |storage: &Storage| {
        let schedule = schedule.clone();
        storage.map_store(move |inner| Arc::new(FaultyStore::new(inner, schedule)))
    };
    let tally = Tally::default();

    for i in 0..plan.creations {
        let fixture = backend.fresh();
        if i % 2 == 0 {
            let (_, main) =
                open_or_create_race(&tally, &faulty(&fixture.storage()), plan.creators).await;
            let clean = Repository::open(fixture.storage()).await.unwrap();
            check_complete(&clean).await;
            assert_eq!(clean.lookup_branch("main").await.unwrap(), main);
        } else {
            create_race(
                &tally,
                &faulty(&fixture.storage()),
                &fixture.storage(),
                plan.creators,
            )
            .await;
        }
    }

    let fixture = backend.fresh();
    let (repo, initial) =
        open_or_create_race(&tally, &faulty(&fixture.storage()), plan.creators).await;
    let mut writers = Vec::new();
    for w in 0..plan.writers {
        let (repo, tally) = (repo.clone(), tally.clone());
        writers.push(tokio::spawn(writer(
            repo,
            tally,
            w,
            plan.commits_per_writer,
        )));
    }
    let refs = tokio::spawn(ref_worker(repo.clone(), tally.clone(), plan.ref_ops, seed));
    let races = tokio::spawn(tag_races(
        repo.clone(),
        tally.clone(),
        plan.tag_races,
        initial,
    ));
    let mut reported = Vec::new();
    for h in writers {
        reported.push(h.await.unwrap());
    }
    let mut model = refs.await.unwrap();
    model.tags.extend(races.await.unwrap());

    let clean = Repository::open(fixture.storage()).await.unwrap();
    check_commits(&clean, &reported).await;
    check_refs(&clean, &model).await;
    print_counts(backend, seed, plan, &schedule, &tally);
}

/// Every reported commit is in `main`'s history exactly once, under its own
/// id, and every value reads back, at the tip and at its own snapshot.
async fn check_commits(repo: &Repository, reported: &[Vec<SnapshotId>]) {
    let main = VersionRef::Branch("main".into());
    let history = repo.ancestry(&main).await.unwrap();
    let mut by_message: BTreeMap<&str, Vec<&SnapshotId>> = BTreeMap::new();
    for info in &history {
        by_message.entry(&info.message).or_default().push(&info.id);
    }
    let expected: usize = reported.iter().map(Vec::len).sum();
    assert_eq!(history.len(), expected + 1, "commits lost or duplicated");
    let tip = repo.readonly_session(&main).await.unwrap();
    for (w, ids) in reported.iter().enumerate() {
        for (c, id) in ids.iter().enumerate() {
            let message = format!("w{w} c{c}");
            assert_eq!(
                by_message.get(message.as_str()),
                Some(&vec![id]),
                "commit `{message}` reported as {id}"
            );
            let key = format!("w{w}/c{c}");
            let value = Some(value_for(w, c));
            assert_eq!(tip.get(&key).await.unwrap(), value, "{key} at the tip");
            let own = repo
                .readonly_session(&VersionRef::Snapshot(id.clone()))
                .await
                .unwrap();
            assert_eq!(own.get(&key).await.unwrap(), value, "{key} at {id}");
        }
    }
}

/// Branches and tags are where the reported outcomes put them.
async fn check_refs(repo: &Repository, model: &RefModel) {
    let mut branches: Vec<String> = model.branches.keys().cloned().collect();
    branches.push("main".to_string());
    branches.sort();
    assert_eq!(repo.list_branches().await.unwrap(), branches);
    for (name, id) in &model.branches {
        assert_eq!(
            &repo.lookup_branch(name).await.unwrap(),
            id,
            "branch {name}"
        );
    }
    let tags: Vec<String> = model.tags.keys().cloned().collect();
    assert_eq!(repo.list_tags().await.unwrap(), tags);
    for (name, id) in &model.tags {
        assert_eq!(&repo.lookup_tag(name).await.unwrap(), id, "tag {name}");
    }
    for name in &model.deleted_tags {
        let err = repo.lookup_tag(name).await.unwrap_err();
        assert!(
            matches!(err, Error::TagNotFound { .. }),
            "tag {name}: {err}"
        );
    }
}

fn print_counts(backend: &dyn Backend, seed: u64, plan: &Plan, schedule: &Schedule, tally: &Tally) {
    let c = tally.0.lock().unwrap();
    let total: u64 = c.operations.values().sum();
    let ops: Vec<String> = c
        .operations
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let faults: Vec<String> = schedule
        .injected()
        .iter()
        .map(|(f, n)| format!("{} {n}", fault_name(*f)))
        .collect();
    println!(
        "fault injection on {} (seed {seed}; {} writers x {} commits, {} branch/tag operations, \
         {} tag races, {} creations x {} creators):\n  operations: {total} ({})\n  store calls: {}\n  \
         faults injected: {} ({})\n  outcomes resolved by re-reading: {}\n  unknown outcomes \
         reported, then checked: {}\n  conflicts: {}\n  storage errors retried: {}",
        backend.name(),
        plan.writers,
        plan.commits_per_writer,
        plan.ref_ops,
        plan.tag_races,
        plan.creations,
        plan.creators,
        ops.join(", "),
        schedule.calls(),
        schedule.total_injected(),
        faults.join(", "),
        c.resolved,
        c.unknown,
        c.conflicts,
        c.storage_errors,
    );
    assert!(
        c.resolved > 0,
        "no outcome was resolved: the test proves nothing"
    );
}

fn fault_name(fault: Fault) -> &'static str {
    match fault {
        Fault::None => "none",
        Fault::Refused => "refused",
        Fault::ServerError => "server error",
        Fault::ReplyLost => "reply lost",
        Fault::TimedOut => "timed out",
        Fault::Retried => "retried after a lost reply",
        Fault::Delayed => "delayed",
    }
}
