//! Writes whose reply may be lost, and how their outcome is found out.
//!
//! A conditional write can be applied by the server while its reply never
//! reaches us (a dropped connection, a timeout, a server error after the
//! fact), and object_store may retry it, so that the retry is answered "already
//! exists" or "precondition failed" because of our own first attempt. Such an
//! answer, or any error, is therefore never taken as the outcome. Instead the
//! object is read back:
//!
//! * a create ([`create_object`]) took effect if the object holds exactly the
//!   bytes we sent (every reference payload carries its write time, so two
//!   writers never send the same bytes);
//! * a branch move ([`move_branch`]) took effect if the branch points to our
//!   snapshot, or, for a commit, to a descendant of it. If the branch is still
//!   at the version we read, nothing happened and the same conditional write
//!   is sent again (it and any delayed copy of the first can only apply once,
//!   both carry our snapshot). Anywhere else, it is a conflict.
//!
//! When even the read-back fails [`ATTEMPTS`] times, the caller gets
//! [`Error::OutcomeUnknown`], never a guess.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::{ObjectKind, SnapshotId};
use crate::refs::{self, RefState};
use crate::snapshot::Snapshot;
use crate::storage::{PutOutcome, Storage, WriteMode, normalize_etag};

/// How many times a write and its read-back are tried before giving up.
pub(crate) const ATTEMPTS: usize = 3;

/// How many snapshots [`move_branch`] reads at most to tell whether the branch
/// descends from the snapshot it was asked to commit.
const MAX_WALK: usize = 10_000;

/// What an unresolved operation was, for [`Error::OutcomeUnknown`].
pub(crate) struct Intent {
    operation: String,
    check: String,
}

impl Intent {
    pub(crate) fn new(operation: impl Into<String>, check: impl Into<String>) -> Intent {
        Intent {
            operation: operation.into(),
            check: check.into(),
        }
    }

    fn unknown(self, source: Error) -> Error {
        Error::outcome_unknown(self.operation, self.check, source)
    }
}

/// Who wrote the object [`create_object`] found.
pub(crate) enum Created {
    /// Our bytes are there: the create took effect (perhaps on an attempt
    /// whose reply was lost).
    Ours,
    /// Somebody else's object was there first.
    Theirs,
}

/// Creates `key` holding `data` unless it exists, and tells whether the
/// object now there is ours.
pub(crate) async fn create_object(
    storage: &Storage,
    key: &str,
    data: &Bytes,
    intent: Intent,
) -> Result<Created> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match storage.put(key, data.clone(), WriteMode::Create).await {
            Ok(PutOutcome::Written { .. }) => return Ok(Created::Ours),
            Ok(PutOutcome::AlreadyExists | PutOutcome::PreconditionFailed) => {}
            Err(e) => last = Some(e),
        }
        match storage.get(key).await {
            Ok(Some(found)) if found.data == *data => return Ok(Created::Ours),
            Ok(Some(_)) => return Ok(Created::Theirs),
            // Not there (or deleted since): send the create again.
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
    }
    Err(intent.unknown(last.unwrap_or_else(|| no_answer(storage, key))))
}

/// Deletes `key`, making sure it is gone.
pub(crate) async fn delete_object(storage: &Storage, key: &str, intent: Intent) -> Result<()> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        if let Err(e) = storage.delete(key).await {
            last = Some(e);
        }
        match storage.exists(key).await {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => last = Some(e),
        }
    }
    Err(intent.unknown(last.unwrap_or_else(|| no_answer(storage, key))))
}

/// The error reported when every attempt was answered but none settled the outcome.
fn no_answer(storage: &Storage, key: &str) -> Error {
    Error::storage(
        "resolving",
        storage.describe(key),
        object_store::Error::Generic {
            store: "icechunk",
            source: "the object kept changing while its outcome was checked".into(),
        },
    )
}

/// Which branch tips count as "our move took effect".
pub(crate) enum Target<'a> {
    /// Exactly `to` (a reset).
    Exact,
    /// `to` or a snapshot descending from it; walking back from the tip stops
    /// at `base`, the parent of `to` (a commit).
    Descendant { base: &'a SnapshotId },
}

/// What [`move_branch`] found out.
pub(crate) enum Moved {
    /// The branch moved to `to`. `etag` is the branch's version pointing to
    /// `to`, `None` if it has moved on since.
    Done { etag: Option<String> },
    /// The branch was elsewhere; `actual` is where (`None`: deleted).
    Conflict { actual: Option<SnapshotId> },
}

/// Moves branch `name` to `to` if it is still at version `etag`.
pub(crate) async fn move_branch(
    storage: &Storage,
    name: &str,
    etag: &str,
    to: &SnapshotId,
    target: Target<'_>,
    intent: Intent,
) -> Result<Moved> {
    let key = refs::branch_key(name);
    let data = refs::encode_ref(ObjectKind::BranchRef, to)?;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match storage
            .put(&key, data.clone(), WriteMode::Update(etag.to_string()))
            .await
        {
            Ok(PutOutcome::Written { etag: Some(new) }) => {
                return Ok(Moved::Done { etag: Some(new) });
            }
            Ok(PutOutcome::Written { etag: None }) => {}
            Ok(PutOutcome::AlreadyExists | PutOutcome::PreconditionFailed) => {}
            Err(e) => last = Some(e),
        }
        let state = match refs::read_branch(storage, name).await {
            Ok(Some(state)) => state,
            Ok(None) => return Ok(Moved::Conflict { actual: None }),
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        if normalize_etag(&state.etag) == normalize_etag(etag) {
            // Still where we found it: nothing was applied; send it again.
            continue;
        }
        match classify(storage, &key, &state, to, &target).await {
            Ok(moved) => return Ok(moved),
            Err(e) => last = Some(e),
        }
    }
    Err(intent.unknown(last.unwrap_or_else(|| no_answer(storage, &key))))
}

/// Tells whether a branch that has moved from the expected version moved to
/// `to` (or past it).
async fn classify(
    storage: &Storage,
    key: &str,
    state: &RefState,
    to: &SnapshotId,
    target: &Target<'_>,
) -> Result<Moved> {
    if &state.snapshot == to {
        return Ok(Moved::Done {
            etag: Some(state.etag.clone()),
        });
    }
    let conflict = Moved::Conflict {
        actual: Some(state.snapshot.clone()),
    };
    let Target::Descendant { base } = target else {
        return Ok(conflict);
    };
    let mut current = state.snapshot.clone();
    for _ in 0..MAX_WALK {
        if &current == to {
            return Ok(Moved::Done { etag: None });
        }
        if &current == *base {
            return Ok(conflict);
        }
        match read_snapshot(storage, &current).await?.parent_id {
            Some(parent) => current = parent,
            None => return Ok(conflict),
        }
    }
    Err(Error::storage(
        "resolving",
        storage.describe(key),
        object_store::Error::Generic {
            store: "icechunk",
            source: format!(
                "more than {MAX_WALK} snapshots were committed on top of snapshot {to}'s parent"
            )
            .into(),
        },
    ))
}

/// Reads a snapshot, trying [`ATTEMPTS`] times: a walk back from the tip
/// reads many, and one failed read should not make the outcome unknown.
async fn read_snapshot(storage: &Storage, id: &SnapshotId) -> Result<Snapshot> {
    let mut result = Snapshot::read(storage, id).await;
    for _ in 1..ATTEMPTS {
        match result {
            Err(Error::Storage { .. }) => result = Snapshot::read(storage, id).await,
            _ => break,
        }
    }
    result
}
