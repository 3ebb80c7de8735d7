//! `Storage`: where a repository lives.

use std::collections::BTreeMap;
use std::path::PathBuf;

use icechunk::{Storage, StorageConfig};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::errors::{InvalidConfigError, to_pyerr};
use crate::py_repr;

/// Where a repository lives: memory, a local directory, S3 or Azure Blob Storage.
///
/// Clones of one `Storage` (and every repository opened on it) share the same objects;
/// `Storage.memory()` creates a new, empty in-memory store each time.
#[pyclass(name = "Storage", module = "icechunk", frozen)]
pub(crate) struct PyStorage {
    pub(crate) inner: Storage,
    /// How to reach the same location from another process; `None` for memory storage.
    pub(crate) recipe: Option<Recipe>,
}

/// A location as `Storage.from_url` takes it: what pickling a storage (or a read-only
/// session) records.
#[derive(Clone)]
pub(crate) struct Recipe {
    pub(crate) url: String,
    pub(crate) options: BTreeMap<String, String>,
}

impl Recipe {
    /// The storage this recipe describes.
    pub(crate) fn build(&self) -> PyResult<PyStorage> {
        let config = StorageConfig::from_url(&self.url, &self.options).map_err(to_pyerr)?;
        build(config, Some(self.clone()))
    }
}

fn build(config: StorageConfig, recipe: Option<Recipe>) -> PyResult<PyStorage> {
    Ok(PyStorage {
        inner: Storage::new(config).map_err(to_pyerr)?,
        recipe,
    })
}

fn from_recipe(url: String, options: BTreeMap<String, String>) -> PyResult<PyStorage> {
    Recipe { url, options }.build()
}

/// What `__reduce__` returns: the function that rebuilds the object, and its arguments.
pub(crate) type Reduced<'py, Args> = PyResult<(Bound<'py, PyAny>, Args)>;

/// The error for pickling something that lives in memory storage.
pub(crate) fn not_picklable(what: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{what} cannot be pickled: its in-memory storage exists only in this process"
    ))
}

/// `scheme://<root>/<prefix>`, with each prefix segment percent-encoded so that any
/// prefix survives the URL round trip.
fn object_url(scheme: &str, root: &str, prefix: &str) -> PyResult<String> {
    let invalid = |reason: String| InvalidConfigError::new_err(reason);
    if root.is_empty() || root.contains(['/', '?', '#', '%', '@', ':']) {
        return Err(invalid(format!(
            "`{root}` is not a valid {} name",
            if scheme == "s3" {
                "bucket"
            } else {
                "container"
            }
        )));
    }
    let mut url = url::Url::parse(&format!("{scheme}://{root}"))
        .map_err(|e| invalid(format!("`{root}` is not a valid name: {e}")))?;
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    if !segments.is_empty() {
        url.path_segments_mut()
            .map_err(|()| invalid(format!("`{root}` is not a valid name")))?
            .extend(segments);
    }
    Ok(url.to_string())
}

fn push(options: &mut BTreeMap<String, String>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        options.insert(key.to_string(), v);
    }
}

fn push_retries(
    options: &mut BTreeMap<String, String>,
    max_retries: Option<u64>,
    retry_timeout_secs: Option<f64>,
) {
    push(options, "max_retries", max_retries.map(|v| v.to_string()));
    push(
        options,
        "retry_timeout_secs",
        retry_timeout_secs.map(|v| v.to_string()),
    );
}

#[pymethods]
impl PyStorage {
    /// A new, empty in-memory store.
    #[staticmethod]
    fn memory() -> PyResult<Self> {
        build(StorageConfig::memory(), None)
    }

    /// A local directory (created if missing).
    #[staticmethod]
    fn local(path: PathBuf) -> PyResult<Self> {
        // Pickles record the absolute path, so another working directory finds it too.
        let recipe = std::path::absolute(&path)
            .ok()
            .and_then(|abs| url::Url::from_file_path(abs).ok())
            .map(|url| Recipe {
                url: url.to_string(),
                options: BTreeMap::new(),
            });
        build(StorageConfig::local(path), recipe)
    }

    /// Amazon S3 or an S3-compatible server.
    #[staticmethod]
    #[pyo3(signature = (
        bucket,
        prefix = "",
        *,
        endpoint = None,
        region = None,
        access_key_id = None,
        secret_access_key = None,
        session_token = None,
        allow_http = false,
        max_retries = None,
        retry_timeout_secs = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn s3(
        bucket: &str,
        prefix: &str,
        endpoint: Option<String>,
        region: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        session_token: Option<String>,
        allow_http: bool,
        max_retries: Option<u64>,
        retry_timeout_secs: Option<f64>,
    ) -> PyResult<Self> {
        let url = object_url("s3", bucket, prefix)?;
        let mut options = BTreeMap::new();
        push(&mut options, "endpoint", endpoint);
        push(&mut options, "region", region);
        push(&mut options, "access_key_id", access_key_id);
        push(&mut options, "secret_access_key", secret_access_key);
        push(&mut options, "session_token", session_token);
        if allow_http {
            push(&mut options, "allow_http", Some("true".into()));
        }
        push_retries(&mut options, max_retries, retry_timeout_secs);
        from_recipe(url, options)
    }

    /// Azure Blob Storage or the Azurite emulator.
    #[staticmethod]
    #[pyo3(signature = (
        container,
        prefix = "",
        *,
        account = None,
        access_key = None,
        endpoint = None,
        use_emulator = false,
        allow_http = false,
        max_retries = None,
        retry_timeout_secs = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn azure(
        container: &str,
        prefix: &str,
        account: Option<String>,
        access_key: Option<String>,
        endpoint: Option<String>,
        use_emulator: bool,
        allow_http: bool,
        max_retries: Option<u64>,
        retry_timeout_secs: Option<f64>,
    ) -> PyResult<Self> {
        let url = object_url("az", container, prefix)?;
        let mut options = BTreeMap::new();
        push(&mut options, "account", account);
        push(&mut options, "access_key", access_key);
        push(&mut options, "endpoint", endpoint);
        if use_emulator {
            push(&mut options, "use_emulator", Some("true".into()));
        }
        if allow_http {
            push(&mut options, "allow_http", Some("true".into()));
        }
        push_retries(&mut options, max_retries, retry_timeout_secs);
        from_recipe(url, options)
    }

    /// A location given as a URL (`memory://`, `file:///abs/path`, `s3://bucket/prefix`,
    /// `az://container/prefix`) with string options.
    #[staticmethod]
    #[pyo3(signature = (url, options = None))]
    fn from_url(url: String, options: Option<BTreeMap<String, String>>) -> PyResult<Self> {
        from_recipe(url, options.unwrap_or_default())
    }

    /// The location as a URL, for messages.
    #[getter]
    fn location(&self) -> String {
        self.inner.location()
    }

    /// Pickles as `Storage.from_url(url, options)`, options (credentials included) as
    /// given; memory storage cannot be pickled.
    fn __reduce__<'py>(&self, py: Python<'py>) -> Reduced<'py, (String, BTreeMap<String, String>)> {
        let recipe = self
            .recipe
            .clone()
            .ok_or_else(|| not_picklable("Storage"))?;
        let from_url = py.get_type::<PyStorage>().getattr("from_url")?;
        Ok((from_url, (recipe.url, recipe.options)))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Storage({})", py_repr(py, &self.inner.location()))
    }
}
