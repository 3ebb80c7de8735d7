//! `Session`: one version of the store, and for writable sessions its uncommitted changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use icechunk::{ByteRange, Repository, Session, VersionRef};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::repository::parse_id;
use crate::storage::{Recipe, Reduced, not_picklable};
use crate::{block_on, py_repr, wait};

/// A view of one version of the store. Writable sessions also hold uncommitted changes and
/// commit them to their branch. Key/value methods are asynchronous; `store` is the Zarr
/// store over the session.
#[pyclass(name = "Session", module = "icechunk", frozen)]
pub(crate) struct PySession {
    inner: Arc<Session>,
    /// The repository's location, for `repr`.
    location: String,
    /// How to reach the repository from another process, for pickling read-only sessions.
    recipe: Option<Recipe>,
}

impl PySession {
    pub(crate) fn new(session: Session, location: String, recipe: Option<Recipe>) -> Self {
        PySession {
            inner: Arc::new(session),
            location,
            recipe,
        }
    }
}

#[pymethods]
impl PySession {
    /// Whether this session refuses changes.
    #[getter]
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }

    /// The branch a writable session commits to; `None` when read-only.
    #[getter]
    fn branch(&self) -> Option<String> {
        self.inner.branch().map(str::to_string)
    }

    /// The snapshot this session reads (after a commit, the new snapshot).
    #[getter]
    fn snapshot_id(&self, py: Python<'_>) -> PyResult<String> {
        Ok(block_on(py, self.inner.snapshot_id())?.to_string())
    }

    /// Whether there are changes not yet committed.
    #[getter]
    fn has_uncommitted_changes(&self, py: Python<'_>) -> PyResult<bool> {
        block_on(py, self.inner.has_uncommitted_changes())
    }

    /// Forgets every uncommitted change.
    fn discard_changes(&self, py: Python<'_>) -> PyResult<()> {
        wait(py, self.inner.discard_changes())
    }

    /// Writes the changes as a new snapshot, moves the branch to it and returns its id.
    fn commit(&self, py: Python<'_>, message: &str) -> PyResult<String> {
        Ok(wait(py, self.inner.commit(message))?.to_string())
    }

    /// `commit` as an awaitable, which does not block the event loop.
    fn commit_async<'py>(&self, py: Python<'py>, message: String) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let id = session.commit(&message).await.map_err(to_pyerr)?;
            Ok(id.to_string())
        })
    }

    /// The value of a key, or `None` (awaitable). `start`/`end` select `value[start:end]`
    /// and `suffix` the last `suffix` bytes; ranges past the end are clipped.
    #[pyo3(signature = (key, start = None, end = None, *, suffix = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: String,
        start: Option<u64>,
        end: Option<u64>,
        suffix: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if suffix.is_some() && (start.is_some() || end.is_some()) {
            return Err(PyValueError::new_err(
                "give either `start`/`end` or `suffix`, not both",
            ));
        }
        let range = match (start, end, suffix) {
            (None, None, None) => None,
            (_, _, Some(n)) => Some(ByteRange::Suffix(n)),
            (start, None, None) => Some(ByteRange::From(start.unwrap_or(0))),
            (start, Some(end), None) => Some(ByteRange::Bounded(start.unwrap_or(0)..end)),
        };
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let value = match range {
                None => session.get(&key).await,
                Some(range) => session.get_range(&key, range).await,
            };
            value.map_err(to_pyerr)
        })
    }

    /// Sets a key's value (awaitable).
    fn set<'py>(&self, py: Python<'py>, key: String, value: Bytes) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            session.set(&key, value).await.map_err(to_pyerr)
        })
    }

    /// Deletes a key; deleting an absent key does nothing (awaitable).
    fn delete<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            session.delete(&key).await.map_err(to_pyerr)
        })
    }

    /// Whether a key has a value (awaitable).
    fn exists<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            session.exists(&key).await.map_err(to_pyerr)
        })
    }

    /// Every key, sorted (awaitable).
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            session.list().await.map_err(to_pyerr)
        })
    }

    /// Every key starting with `prefix` (a plain string prefix), sorted (awaitable).
    fn list_prefix<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            session.list_prefix(&prefix).await.map_err(to_pyerr)
        })
    }

    /// The names directly inside a directory (`""` is the root), sorted (awaitable).
    #[pyo3(signature = (prefix = String::new()))]
    fn list_dir<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        let session = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            session.list_dir(&prefix).await.map_err(to_pyerr)
        })
    }

    /// The Zarr store over this session (`icechunk.IcechunkStore`).
    #[getter]
    fn store<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("icechunk.store")?
            .getattr("IcechunkStore")?
            .call1((slf,))
    }

    /// A read-only session pickles as its storage and snapshot id (it reopens that
    /// snapshot when unpickled). Writable sessions hold uncommitted changes in memory and
    /// cannot be pickled, nor can sessions on memory storage.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> Reduced<'py, (String, BTreeMap<String, String>, String)> {
        if !self.inner.read_only() {
            return Err(PyTypeError::new_err(
                "writable icechunk sessions cannot be pickled: they hold uncommitted changes \
                 in memory (read-only sessions can be)",
            ));
        }
        let recipe = self
            .recipe
            .clone()
            .ok_or_else(|| not_picklable("a Session"))?;
        let id = block_on(py, self.inner.snapshot_id())?.to_string();
        let restore = py.get_type::<PySession>().getattr("_restore")?;
        Ok((restore, (recipe.url, recipe.options, id)))
    }

    /// Reopens a pickled read-only session (called by `pickle`).
    #[staticmethod]
    fn _restore(
        py: Python<'_>,
        url: String,
        options: BTreeMap<String, String>,
        snapshot_id: &str,
    ) -> PyResult<PySession> {
        let recipe = Recipe { url, options };
        let storage = recipe.build()?.inner;
        let location = storage.location();
        let at = VersionRef::Snapshot(parse_id(snapshot_id)?);
        let session = wait(py, async move {
            Repository::open(storage).await?.readonly_session(&at).await
        })?;
        Ok(PySession::new(session, location, Some(recipe)))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.inner.branch() {
            Some(branch) => format!(
                "<Session on {} branch {}>",
                self.location,
                py_repr(py, branch)
            ),
            None => format!("<read-only Session on {}>", self.location),
        }
    }
}
