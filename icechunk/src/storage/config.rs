//! Parsing storage URLs and options ([`StorageConfig`]) and building the
//! object store each backend needs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};

use crate::error::{Error, Result};

/// The published key of the Azurite development account `devstoreaccount1`.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const COMMON_KEYS: &[&str] = &["max_retries", "retry_timeout_secs"];
const S3_KEYS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_http",
    "max_retries",
    "retry_timeout_secs",
];
const AZURE_KEYS: &[&str] = &[
    "account",
    "access_key",
    "endpoint",
    "use_emulator",
    "allow_http",
    "max_retries",
    "retry_timeout_secs",
];
const SECRET_KEYS: &[&str] = &["secret_access_key", "session_token", "access_key"];

#[derive(Clone, PartialEq, Eq)]
pub(super) enum Backend {
    Memory { name: String },
    Local { root: PathBuf },
    S3 { bucket: String, prefix: String },
    Azure { container: String, prefix: String },
}

/// Where a repository lives and how to reach it. Build one with
/// [`StorageConfig::from_url`], then turn it into a [`Storage`] with
/// [`Storage::new`].
///
/// The `Debug` output hides secret option values.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageConfig {
    pub(super) backend: Backend,
    options: BTreeMap<String, String>,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_KEYS.contains(&k.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("StorageConfig")
            .field("location", &self.location())
            .field("options", &options)
            .finish()
    }
}

pub(super) fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        reason: reason.into(),
    }
}

fn trim_prefix(path: &str) -> Result<String> {
    let decoded = Path::from_url_path(path).map_err(|e| {
        invalid(format!(
            "the path `{path}` is not a valid object prefix: {e}"
        ))
    })?;
    Ok(decoded.to_string())
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(format!(
            "option `{key}` must be `true` or `false`, not `{value}`"
        ))),
    }
}

impl StorageConfig {
    /// Parses a storage URL and its options.
    ///
    /// * `memory://` or `memory://name`: an in-memory store (the name only
    ///   labels it in messages).
    /// * `file:///absolute/path`: a local directory.
    /// * `s3://bucket/prefix`: options `endpoint`, `region`, `access_key_id`,
    ///   `secret_access_key`, `session_token`, `allow_http`. Settings missing
    ///   from the options are taken from the usual `AWS_*` environment
    ///   variables.
    /// * `az://container/prefix`: options `account`, `access_key`,
    ///   `endpoint`, `use_emulator`, `allow_http`. Settings missing from the
    ///   options are taken from the usual `AZURE_*` environment variables.
    ///   With `use_emulator=true`, the account and key default to Azurite's
    ///   development account, and `endpoint` (for example
    ///   `http://127.0.0.1:10000/devstoreaccount1`) selects its address.
    ///
    /// Every backend also accepts `max_retries` and `retry_timeout_secs`,
    /// which bound how long a failing request is retried (they have no effect
    /// on memory and file storage).
    ///
    /// Unknown option keys, malformed values and unsupported schemes give
    /// [`Error::InvalidConfig`].
    pub fn from_url<I, K, V>(url: &str, options: I) -> Result<StorageConfig>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let parsed = url::Url::parse(url)
            .map_err(|e| invalid(format!("`{url}` is not a valid URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let (backend, valid_keys): (Backend, &[&str]) = match parsed.scheme() {
            "memory" => {
                let mut name = host;
                let rest = parsed.path().trim_matches('/');
                if !rest.is_empty() {
                    if !name.is_empty() {
                        name.push('/');
                    }
                    name.push_str(rest);
                }
                (Backend::Memory { name }, COMMON_KEYS)
            }
            "file" => {
                let root = parsed.to_file_path().map_err(|()| {
                    invalid(format!(
                        "`{url}` is not a valid file URL; use file:///absolute/path"
                    ))
                })?;
                (Backend::Local { root }, COMMON_KEYS)
            }
            "s3" => {
                if host.is_empty() {
                    return Err(invalid(format!(
                        "`{url}` names no bucket; use s3://bucket/prefix"
                    )));
                }
                let prefix = trim_prefix(parsed.path())?;
                (
                    Backend::S3 {
                        bucket: host,
                        prefix,
                    },
                    S3_KEYS,
                )
            }
            "az" => {
                if host.is_empty() {
                    return Err(invalid(format!(
                        "`{url}` names no container; use az://container/prefix"
                    )));
                }
                let prefix = trim_prefix(parsed.path())?;
                (
                    Backend::Azure {
                        container: host,
                        prefix,
                    },
                    AZURE_KEYS,
                )
            }
            other => {
                return Err(invalid(format!(
                    "unsupported URL scheme `{other}`; use memory://, file://, s3:// or az://"
                )));
            }
        };

        let mut map = BTreeMap::new();
        for (k, v) in options {
            let key = k.as_ref();
            let value = v.as_ref();
            if !valid_keys.contains(&key) {
                return Err(invalid(format!(
                    "unknown option `{key}` for {}:// storage; valid options are: {}",
                    parsed.scheme(),
                    valid_keys.join(", ")
                )));
            }
            match key {
                "allow_http" | "use_emulator" => {
                    parse_bool(key, value)?;
                }
                "max_retries" => {
                    value.parse::<usize>().map_err(|_| {
                        invalid(format!(
                            "option `max_retries` must be a non-negative integer, not `{value}`"
                        ))
                    })?;
                }
                "retry_timeout_secs" => {
                    parse_duration(value)?;
                }
                _ => {}
            }
            map.insert(key.to_string(), value.to_string());
        }
        Ok(StorageConfig {
            backend,
            options: map,
        })
    }

    /// A fresh in-memory store.
    pub fn memory() -> StorageConfig {
        StorageConfig {
            backend: Backend::Memory {
                name: String::new(),
            },
            options: BTreeMap::new(),
        }
    }

    /// A local directory (created by [`Storage::new`] if missing).
    pub fn local(root: impl Into<PathBuf>) -> StorageConfig {
        StorageConfig {
            backend: Backend::Local { root: root.into() },
            options: BTreeMap::new(),
        }
    }

    /// The location as a URL, for messages.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Memory { name } => format!("memory://{name}"),
            Backend::Local { root } => match url::Url::from_file_path(root) {
                Ok(u) => u.to_string(),
                Err(()) => format!("file://{}", root.display()),
            },
            Backend::S3 { bucket, prefix } => join_location("s3", bucket, prefix),
            Backend::Azure { container, prefix } => join_location("az", container, prefix),
        }
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    fn bool_option(&self, key: &str) -> Result<Option<bool>> {
        self.option(key).map(|v| parse_bool(key, v)).transpose()
    }

    fn retry_config(&self) -> Result<Option<RetryConfig>> {
        let max_retries = self.option("max_retries");
        let timeout = self.option("retry_timeout_secs");
        if max_retries.is_none() && timeout.is_none() {
            return Ok(None);
        }
        let mut retry = RetryConfig::default();
        if let Some(m) = max_retries {
            retry.max_retries = m
                .parse()
                .map_err(|_| invalid(format!("option `max_retries` is not an integer: `{m}`")))?;
        }
        if let Some(t) = timeout {
            retry.retry_timeout = parse_duration(t)?;
        }
        Ok(Some(retry))
    }

    pub(super) fn build_s3(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        install_tls_provider();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = self.option("endpoint") {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = self.option("region") {
            builder = builder.with_region(region);
        }
        if let Some(key) = self.option("access_key_id") {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = self.option("secret_access_key") {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = self.option("session_token") {
            builder = builder.with_token(token);
        }
        if let Some(allow) = self.bool_option("allow_http")? {
            builder = builder.with_allow_http(allow);
        }
        if let Some(retry) = self.retry_config()? {
            builder = builder.with_retry(retry);
        }
        let store = builder
            .build()
            .map_err(|e| invalid(format!("cannot configure S3 storage: {e}")))?;
        Ok(Arc::new(store))
    }

    pub(super) fn build_azure(&self, container: &str) -> Result<Arc<dyn ObjectStore>> {
        install_tls_provider();
        let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(container);
        let emulator = self.bool_option("use_emulator")?.unwrap_or(false);
        if emulator {
            builder = builder
                .with_account(AZURITE_ACCOUNT)
                .with_access_key(AZURITE_KEY)
                .with_allow_http(true);
            if self.option("endpoint").is_none() {
                // object_store's emulator mode: http://127.0.0.1:10000, or
                // the AZURITE_BLOB_STORAGE_URL environment variable.
                builder = builder.with_use_emulator(true);
            } else {
                // An explicit endpoint (which includes the account in its
                // path, as Azurite expects) is used as a regular account
                // endpoint: object_store's emulator mode ignores endpoints.
                builder = builder.with_use_emulator(false);
            }
        }
        if let Some(account) = self.option("account") {
            builder = builder.with_account(account);
        }
        if let Some(key) = self.option("access_key") {
            builder = builder.with_access_key(key);
        }
        if let Some(endpoint) = self.option("endpoint") {
            builder = builder.with_endpoint(endpoint.to_string());
        }
        if let Some(allow) = self.bool_option("allow_http")? {
            builder = builder.with_allow_http(allow);
        }
        if let Some(retry) = self.retry_config()? {
            builder = builder.with_retry(retry);
        }
        let store = builder
            .build()
            .map_err(|e| invalid(format!("cannot configure Azure storage: {e}")))?;
        Ok(Arc::new(store))
    }
}

fn parse_duration(value: &str) -> Result<Duration> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| {
            invalid(format!(
                "option `retry_timeout_secs` must be a non-negative number of seconds, not `{value}`"
            ))
        })
}

fn join_location(scheme: &str, root: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("{scheme}://{root}")
    } else {
        format!("{scheme}://{root}/{prefix}")
    }
}
/// object_store's HTTP client is rustls without a bundled crypto provider (so that aws-lc-sys is
/// not compiled), and rustls needs one installed before the first client is built: ring, which
/// also signs the requests. An application that installed its own provider first keeps it.
fn install_tls_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // An error means a provider is installed already; that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_options() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn parses_urls() {
        let c = StorageConfig::from_url("memory://", no_options()).unwrap();
        assert_eq!(c.location(), "memory://");
        let c = StorageConfig::from_url("memory://test", no_options()).unwrap();
        assert_eq!(c.location(), "memory://test");
        let c = StorageConfig::from_url("file:///data/some/repo", no_options()).unwrap();
        assert_eq!(c.location(), "file:///data/some/repo");
        let c = StorageConfig::from_url("s3://bucket/a/b/", [("region", "us-east-1")]).unwrap();
        assert_eq!(c.location(), "s3://bucket/a/b");
        let c = StorageConfig::from_url("s3://bucket", [("region", "us-east-1")]).unwrap();
        assert_eq!(c.location(), "s3://bucket");
        let c = StorageConfig::from_url(
            "az://container/p",
            [("use_emulator", "true"), ("max_retries", "2")],
        )
        .unwrap();
        assert_eq!(c.location(), "az://container/p");
    }

    #[test]
    fn rejects_bad_urls_and_options() {
        for url in [
            "",
            "not a url",
            "gs://bucket/x",
            "s3:///x",
            "az:///x",
            "file://relative/x",
        ] {
            let err = StorageConfig::from_url(url, no_options()).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{url}: {err}");
        }
        let err = StorageConfig::from_url("s3://b/p", [("acces_key_id", "x")]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidConfig { .. }));
        assert!(
            msg.contains("acces_key_id") && msg.contains("access_key_id, secret_access_key"),
            "{msg}"
        );
        let err = StorageConfig::from_url("az://c/p", [("region", "x")]).unwrap_err();
        assert!(err.to_string().contains("use_emulator"), "{err}");
        let err = StorageConfig::from_url("s3://b/p", [("allow_http", "maybe")]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }));
        let err = StorageConfig::from_url("s3://b/p", [("max_retries", "-1")]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }));
        let err = StorageConfig::from_url("s3://b/p", [("retry_timeout_secs", "NaN")]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }));
        let err = StorageConfig::from_url("memory://", [("endpoint", "x")]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }));
    }

    #[test]
    fn https_stores_build_with_the_ring_tls_provider() {
        // Building a client needs a rustls crypto provider; none is bundled (no aws-lc-sys).
        let s3 = StorageConfig::from_url(
            "s3://bucket/p",
            [
                ("region", "us-east-1"),
                ("endpoint", "https://s3.example.invalid"),
            ],
        )
        .unwrap();
        s3.build_s3("bucket").unwrap();
        let azure =
            StorageConfig::from_url("az://container/p", [("account", "devstoreaccount1")]).unwrap();
        azure.build_azure("container").unwrap();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = StorageConfig::from_url(
            "s3://b/p",
            [
                ("secret_access_key", "very-secret"),
                ("region", "eu-west-1"),
            ],
        )
        .unwrap();
        let text = format!("{c:?}");
        assert!(
            !text.contains("very-secret") && text.contains("eu-west-1"),
            "{text}"
        );
    }

    #[test]
    fn config_is_send_sync_debug_clone() {
        fn check<T: Send + Sync + fmt::Debug + Clone + 'static>() {}
        check::<StorageConfig>();
    }
}
