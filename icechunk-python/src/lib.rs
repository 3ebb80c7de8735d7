//! Python bindings of icechunk: the extension module `icechunk._icechunk_python`.
//!
//! Storage I/O runs on one multi-threaded tokio runtime owned by this module. Asynchronous
//! methods return Python awaitables (`pyo3_async_runtimes::tokio::future_into_py`) and never
//! block the event loop; synchronous methods release the GIL while they wait. Every
//! [`icechunk::Error`] becomes a subclass of `icechunk.IcechunkError` (see [`errors`]).
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod errors;
mod repository;
mod session;
mod storage;

use std::future::Future;
use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Builds the runtime (once) and hands it to pyo3-async-runtimes, so awaitables and
/// blocking calls share it.
fn init_runtime() -> PyResult<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("icechunk-io")
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the I/O runtime: {e}")))?;
    // If another thread won the race, its runtime is kept and this one dropped.
    let _ = RUNTIME.set(rt);
    let rt = runtime()?;
    // Fails only when already initialised with this same runtime.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(rt);
    Ok(rt)
}

fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("the icechunk I/O runtime is not initialised"))
}

/// Runs `fut` to completion on the runtime with the GIL released.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PyRuntimeError::new_err(
            "a blocking icechunk call was made from inside the icechunk I/O runtime",
        ));
    }
    let rt = runtime()?;
    Ok(py.detach(|| rt.block_on(fut)))
}

/// Like [`block_on`] for icechunk results, converting errors to Python exceptions.
pub(crate) fn wait<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = icechunk::Result<T>> + Send,
    T: Send,
{
    block_on(py, fut)?.map_err(errors::to_pyerr)
}

/// Python's `repr` of a string, for `__repr__` methods.
pub(crate) fn py_repr(py: Python<'_>, s: &str) -> String {
    pyo3::types::PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// The extension module.
#[pymodule]
fn _icechunk_python(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init_runtime()?;
    m.add_class::<storage::PyStorage>()?;
    m.add_class::<repository::PyRepository>()?;
    m.add_class::<repository::PySnapshotInfo>()?;
    m.add_class::<session::PySession>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
