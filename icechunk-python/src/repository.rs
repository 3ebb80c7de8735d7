//! `Repository` and `SnapshotInfo`.

use chrono::{DateTime, Utc};
use icechunk::{Repository, SnapshotId, SnapshotInfo, VersionRef};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;

use crate::errors::to_pyerr;
use crate::session::PySession;
use crate::storage::{PyStorage, Recipe};
use crate::{py_repr, wait};

/// Parses a snapshot id given as text (`InvalidSnapshotIdError` if malformed).
pub(crate) fn parse_id(id: &str) -> PyResult<SnapshotId> {
    id.parse().map_err(to_pyerr)
}

/// Which version a call is about: exactly one of branch, tag or snapshot id, or `main`.
fn version_ref(
    branch: Option<String>,
    tag: Option<String>,
    snapshot_id: Option<String>,
) -> PyResult<VersionRef> {
    match (branch, tag, snapshot_id) {
        (None, None, None) => Ok(VersionRef::Branch("main".to_string())),
        (Some(b), None, None) => Ok(VersionRef::Branch(b)),
        (None, Some(t), None) => Ok(VersionRef::Tag(t)),
        (None, None, Some(s)) => Ok(VersionRef::Snapshot(parse_id(&s)?)),
        _ => Err(PyValueError::new_err(
            "give at most one of `branch`, `tag` and `snapshot_id`",
        )),
    }
}

/// A repository: immutable snapshots plus the branches and tags pointing to them.
#[pyclass(name = "Repository", module = "icechunk", frozen)]
pub(crate) struct PyRepository {
    inner: Repository,
    /// How to reach the repository's storage from another process (see `Storage`).
    recipe: Option<Recipe>,
}

#[pymethods]
impl PyRepository {
    /// Creates a repository with a `main` branch (`RepositoryExistsError` if there is one).
    #[staticmethod]
    fn create(py: Python<'_>, storage: &PyStorage) -> PyResult<Self> {
        let (storage, recipe) = (storage.inner.clone(), storage.recipe.clone());
        let inner = wait(py, Repository::create(storage))?;
        Ok(PyRepository { inner, recipe })
    }

    /// Opens an existing repository (`RepositoryNotFoundError` if there is none).
    #[staticmethod]
    fn open(py: Python<'_>, storage: &PyStorage) -> PyResult<Self> {
        let (storage, recipe) = (storage.inner.clone(), storage.recipe.clone());
        let inner = wait(py, Repository::open(storage))?;
        Ok(PyRepository { inner, recipe })
    }

    /// Opens the repository, creating it first if there is none.
    #[staticmethod]
    fn open_or_create(py: Python<'_>, storage: &PyStorage) -> PyResult<Self> {
        let (storage, recipe) = (storage.inner.clone(), storage.recipe.clone());
        let inner = wait(py, Repository::open_or_create(storage))?;
        Ok(PyRepository { inner, recipe })
    }

    /// The storage the repository lives in.
    #[getter]
    fn storage(&self) -> PyStorage {
        PyStorage {
            inner: self.inner.storage().clone(),
            recipe: self.recipe.clone(),
        }
    }

    /// A read-only session on a branch tip, a tag or a snapshot (default: branch `main`).
    #[pyo3(signature = (*, branch = None, tag = None, snapshot_id = None))]
    fn readonly_session(
        &self,
        py: Python<'_>,
        branch: Option<String>,
        tag: Option<String>,
        snapshot_id: Option<String>,
    ) -> PyResult<PySession> {
        let at = version_ref(branch, tag, snapshot_id)?;
        let session = wait(py, self.inner.readonly_session(&at))?;
        Ok(PySession::new(
            session,
            self.inner.storage().location(),
            self.recipe.clone(),
        ))
    }

    /// A session that records changes and commits them to `branch`.
    fn writable_session(&self, py: Python<'_>, branch: &str) -> PyResult<PySession> {
        let session = wait(py, self.inner.writable_session(branch))?;
        Ok(PySession::new(
            session,
            self.inner.storage().location(),
            self.recipe.clone(),
        ))
    }

    /// The history of a version, newest first (default: branch `main`).
    #[pyo3(signature = (*, branch = None, tag = None, snapshot_id = None))]
    fn ancestry(
        &self,
        py: Python<'_>,
        branch: Option<String>,
        tag: Option<String>,
        snapshot_id: Option<String>,
    ) -> PyResult<Vec<PySnapshotInfo>> {
        let at = version_ref(branch, tag, snapshot_id)?;
        let history = wait(py, self.inner.ancestry(&at))?;
        Ok(history.into_iter().map(PySnapshotInfo::from).collect())
    }

    /// Creates a branch pointing to a snapshot.
    fn create_branch(&self, py: Python<'_>, name: &str, snapshot_id: &str) -> PyResult<()> {
        let id = parse_id(snapshot_id)?;
        wait(py, self.inner.create_branch(name, &id))
    }

    /// Every branch name, sorted.
    fn list_branches(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        wait(py, self.inner.list_branches())
    }

    /// The snapshot id a branch points to.
    fn lookup_branch(&self, py: Python<'_>, name: &str) -> PyResult<String> {
        Ok(wait(py, self.inner.lookup_branch(name))?.to_string())
    }

    /// Deletes a branch (`main` cannot be deleted).
    fn delete_branch(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        wait(py, self.inner.delete_branch(name))
    }

    /// Points a branch to another snapshot, atomically; with `expected_current`, only if
    /// the branch still points there (`ConflictError` otherwise).
    #[pyo3(signature = (name, snapshot_id, *, expected_current = None))]
    fn reset_branch(
        &self,
        py: Python<'_>,
        name: &str,
        snapshot_id: &str,
        expected_current: Option<&str>,
    ) -> PyResult<()> {
        let to = parse_id(snapshot_id)?;
        let expected = expected_current.map(parse_id).transpose()?;
        wait(py, self.inner.reset_branch(name, &to, expected.as_ref()))
    }

    /// Creates a tag pointing to a snapshot. Tags never move.
    fn create_tag(&self, py: Python<'_>, name: &str, snapshot_id: &str) -> PyResult<()> {
        let id = parse_id(snapshot_id)?;
        wait(py, self.inner.create_tag(name, &id))
    }

    /// Every live tag name, sorted.
    fn list_tags(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        wait(py, self.inner.list_tags())
    }

    /// The snapshot id a tag points to.
    fn lookup_tag(&self, py: Python<'_>, name: &str) -> PyResult<String> {
        Ok(wait(py, self.inner.lookup_tag(name))?.to_string())
    }

    /// Deletes a tag; its name can never be used again.
    fn delete_tag(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        wait(py, self.inner.delete_tag(name))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Repository({})",
            py_repr(py, &self.inner.storage().location())
        )
    }
}

/// One snapshot of the history, as reported by `Repository.ancestry`.
#[pyclass(name = "SnapshotInfo", module = "icechunk", frozen, get_all)]
pub(crate) struct PySnapshotInfo {
    /// The snapshot id.
    id: String,
    /// The previous snapshot's id, `None` for the repository's first snapshot.
    parent_id: Option<String>,
    /// The commit message.
    message: String,
    /// When the snapshot was written (UTC).
    written_at: DateTime<Utc>,
}

impl From<SnapshotInfo> for PySnapshotInfo {
    fn from(info: SnapshotInfo) -> Self {
        PySnapshotInfo {
            id: info.id.to_string(),
            parent_id: info.parent_id.map(|p| p.to_string()),
            message: info.message,
            written_at: info.written_at,
        }
    }
}

#[pymethods]
impl PySnapshotInfo {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "SnapshotInfo(id={}, parent_id={}, message={}, written_at={})",
            py_repr(py, &self.id),
            match &self.parent_id {
                Some(p) => py_repr(py, p),
                None => "None".to_string(),
            },
            py_repr(py, &self.message),
            py_repr(py, &self.written_at.to_rfc3339()),
        )
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PySnapshotInfo>() else {
            return Ok(py.NotImplemented());
        };
        let other = other.get();
        let same = self.id == other.id
            && self.parent_id == other.parent_id
            && self.message == other.message
            && self.written_at == other.written_at;
        match op {
            CompareOp::Eq => Ok(same.into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => Ok((!same).into_pyobject(py)?.to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.id.hash(&mut h);
        h.finish()
    }
}
