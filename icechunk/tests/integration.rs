//! The behaviour suite against real object-storage servers: S3 and Azure Blob
//! Storage (or emulators such as moto and Azurite).
//!
//! Built only with `--features integration`. The servers' addresses come from
//! environment variables; `cargo xtask docker-up` starts the servers and
//! writes them to `target/xtask/services.env`. A missing variable fails the
//! test: it is never skipped.

#[macro_use]
mod suite;

use bytes::Bytes;
use icechunk::{Repository, Storage, StorageConfig, VersionRef};
use suite::{Backend, Fixture};

fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "environment variable {name} is not set. The integration tests need running S3 and \
             Azure servers: start them with `cargo xtask docker-up`, which writes their settings \
             to target/xtask/services.env (load it with `set -a; . target/xtask/services.env; set +a`), \
             or run everything with `cargo xtask test-full`. Needed variables: \
             ICECHUNK_TEST_S3_ENDPOINT, ICECHUNK_TEST_S3_BUCKET, ICECHUNK_TEST_S3_REGION, \
             ICECHUNK_TEST_S3_ACCESS_KEY_ID, ICECHUNK_TEST_S3_SECRET_ACCESS_KEY, \
             ICECHUNK_TEST_AZURE_ENDPOINT, ICECHUNK_TEST_AZURE_ACCOUNT, \
             ICECHUNK_TEST_AZURE_ACCESS_KEY, ICECHUNK_TEST_AZURE_CONTAINER."
        ),
    }
}

/// A prefix no other test (or earlier run) uses.
fn unique_prefix() -> String {
    format!("icechunk-tests/{}", icechunk::SnapshotId::random())
}

fn fixture(url: String, options: Vec<(&str, String)>) -> Fixture {
    let config = StorageConfig::from_url(&url, options).unwrap();
    Fixture::new(Storage::new(config.clone()).unwrap(), Some(config))
}

struct S3 {
    endpoint: String,
    bucket: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
}

impl S3 {
    fn from_env() -> S3 {
        S3 {
            endpoint: required("ICECHUNK_TEST_S3_ENDPOINT"),
            bucket: required("ICECHUNK_TEST_S3_BUCKET"),
            region: required("ICECHUNK_TEST_S3_REGION"),
            access_key_id: required("ICECHUNK_TEST_S3_ACCESS_KEY_ID"),
            secret_access_key: required("ICECHUNK_TEST_S3_SECRET_ACCESS_KEY"),
        }
    }
}

impl Backend for S3 {
    fn name(&self) -> &'static str {
        "S3"
    }

    fn fresh(&self) -> Fixture {
        let url = format!("s3://{}/{}", self.bucket, unique_prefix());
        fixture(
            url,
            vec![
                ("endpoint", self.endpoint.clone()),
                ("region", self.region.clone()),
                ("access_key_id", self.access_key_id.clone()),
                ("secret_access_key", self.secret_access_key.clone()),
                (
                    "allow_http",
                    self.endpoint.starts_with("http://").to_string(),
                ),
                ("max_retries", "3".to_string()),
                ("retry_timeout_secs", "30".to_string()),
            ],
        )
    }
}

struct Azure {
    endpoint: String,
    account: String,
    access_key: String,
    container: String,
}

impl Azure {
    fn from_env() -> Azure {
        Azure {
            endpoint: required("ICECHUNK_TEST_AZURE_ENDPOINT"),
            account: required("ICECHUNK_TEST_AZURE_ACCOUNT"),
            access_key: required("ICECHUNK_TEST_AZURE_ACCESS_KEY"),
            container: required("ICECHUNK_TEST_AZURE_CONTAINER"),
        }
    }
}

impl Backend for Azure {
    fn name(&self) -> &'static str {
        "Azure"
    }

    fn fresh(&self) -> Fixture {
        let url = format!("az://{}/{}", self.container, unique_prefix());
        fixture(
            url,
            vec![
                ("endpoint", self.endpoint.clone()),
                ("account", self.account.clone()),
                ("access_key", self.access_key.clone()),
                (
                    "allow_http",
                    self.endpoint.starts_with("http://").to_string(),
                ),
                ("max_retries", "3".to_string()),
                ("retry_timeout_secs", "30".to_string()),
            ],
        )
    }
}

mod s3 {
    behaviour_suite!(super::S3::from_env());
}

mod azure {
    behaviour_suite!(super::Azure::from_env());
}

/// The fault-injection scenario of `suite/chaos.rs` against the real servers:
/// faults are injected between icechunk and the server's client, so every
/// request that gets through is a real request. Run with `-- --nocapture` to
/// see the counts.
mod fault_injection {
    use super::suite::chaos::{Plan, run};

    const PLAN: Plan = Plan {
        writers: 3,
        commits_per_writer: 8,
        ref_ops: 24,
        tag_races: 4,
        creations: 4,
        creators: 3,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3() {
        run(&super::S3::from_env(), &PLAN).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn azure() {
        run(&super::Azure::from_env(), &PLAN).await;
    }
}

/// Operations cut off at each of their requests (see `suite/crash.rs`).
mod crash_points {
    use super::suite::crash;

    #[tokio::test]
    async fn s3() {
        let s3 = super::S3::from_env();
        crash::repository_creation(&s3).await;
        crash::commit(&s3).await;
        crash::refs(&s3).await;
    }

    #[tokio::test]
    async fn azure() {
        let azure = super::Azure::from_env();
        crash::repository_creation(&azure).await;
        crash::commit(&azure).await;
        crash::refs(&azure).await;
    }
}

/// `use_emulator=true` together with an explicit endpoint reaches the server
/// at that endpoint (object_store's own emulator mode would ignore it).
#[tokio::test]
async fn azure_use_emulator_with_endpoint() {
    let azure = Azure::from_env();
    let url = format!("az://{}/{}", azure.container, unique_prefix());
    let options = [
        ("use_emulator", "true"),
        ("endpoint", azure.endpoint.as_str()),
        ("account", azure.account.as_str()),
        ("access_key", azure.access_key.as_str()),
        ("max_retries", "2"),
    ];
    let storage = Storage::new(StorageConfig::from_url(&url, options).unwrap()).unwrap();
    let repo = Repository::create(storage).await.unwrap();
    let session = repo.writable_session("main").await.unwrap();
    session
        .set("big", Bytes::from(vec![3u8; 5000]))
        .await
        .unwrap();
    session.commit("through the emulator option").await.unwrap();
    let ro = repo
        .readonly_session(&VersionRef::Branch("main".into()))
        .await
        .unwrap();
    assert_eq!(
        ro.get("big").await.unwrap(),
        Some(Bytes::from(vec![3u8; 5000]))
    );
}
