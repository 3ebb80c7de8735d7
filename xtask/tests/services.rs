//! The native services backend end to end, with real servers (moto and Azurite, installed by
//! xtask itself): up, S3 and Azure round trips with conditional writes (racing ones too), down,
//! nothing left.
//! And Ctrl-C during `cargo xtask ci`'s test-full leaves no server running.
//!
//! These tests start servers, so test-full runs them and test-unit does not.

#![cfg(unix)] // they start processes the Unix way (a shell script, SIGINT)

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

/// Put, read back, then the two conditional writes that must fail.
async fn round_trip(store: Arc<dyn ObjectStore>, backend: &str) {
    let key = ObjectPath::from(format!("xtask-test/{}", std::process::id()));
    let first = store
        .put(&key, "first".into())
        .await
        .unwrap_or_else(|e| panic!("{backend}: put: {e}"));
    let read = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(read.as_ref(), b"first", "{backend}");

    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let again = store.put_opts(&key, "second".into(), create).await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "{backend}: create-if-absent on an existing key must fail: {again:?}"
    );

    let current = UpdateVersion {
        e_tag: first.e_tag.clone(),
        version: first.version.clone(),
    };
    let update = PutOptions {
        mode: PutMode::Update(current.clone()),
        ..Default::default()
    };
    store
        .put_opts(&key, "second".into(), update)
        .await
        .unwrap_or_else(|e| panic!("{backend}: update: {e}"));
    let stale = PutOptions {
        mode: PutMode::Update(current),
        ..Default::default()
    };
    let lost = store.put_opts(&key, "third".into(), stale).await;
    assert!(
        matches!(lost, Err(object_store::Error::Precondition { .. })),
        "{backend}: an update with a stale etag must fail: {lost:?}"
    );
    let read = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        read.as_ref(),
        b"second",
        "{backend}: the losing write must not be visible"
    );
    store.delete(&key).await.unwrap();
}

/// Conditional writes are atomic: of two updates racing with one etag, exactly one wins, every
/// time. (moto checks and then writes without a lock; xtask's launcher serializes its writes.)
async fn racing_updates(store: Arc<dyn ObjectStore>, backend: &str) {
    let key = ObjectPath::from(format!("xtask-test/race-{}", std::process::id()));
    for round in 0..50 {
        let put = store
            .put(&key, format!("base {round}").into())
            .await
            .unwrap();
        let version = UpdateVersion {
            e_tag: put.e_tag.clone(),
            version: put.version.clone(),
        };
        let update = |text: &'static str| {
            let (store, key, version) = (store.clone(), key.clone(), version.clone());
            tokio::spawn(async move {
                let opts = PutOptions {
                    mode: PutMode::Update(version),
                    ..Default::default()
                };
                store.put_opts(&key, text.into(), opts).await
            })
        };
        let (a, b) = tokio::join!(update("a"), update("b"));
        let results = [a.unwrap(), b.unwrap()];
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            won, 1,
            "{backend}: round {round}: two updates with one etag must not both succeed: {results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(object_store::Error::Precondition { .. }))),
            "{backend}: round {round}: the loser fails on the precondition: {results:?}"
        );
    }
    store.delete(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn native_backend_up_round_trips_and_down_leaves_nothing() {
    let dir = scratch("native");
    let (s3_port, azure_port) = free_ports();
    let xtask_in = |args: &[&str]| {
        let mut cmd = xtask(&workspace_root(), args);
        cmd.env("CARGO_TARGET_DIR", dir.join("target"))
            .env("XTASK_S3_PORT", s3_port.to_string())
            .env("XTASK_AZURE_PORT", azure_port.to_string());
        run(cmd)
    };

    let up = xtask_in(&["docker-up", "--backend", "native"]);
    assert!(up.status.success(), "docker-up failed");
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(
        stderr.contains("does not verify request signatures"),
        "native mode must say what differs"
    );

    let env = read_env(&dir.join("target/xtask/services.env"));
    let pids = recorded_pids(&dir.join("target/xtask/services/state.json"));
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| alive(*p)));

    // object_store's client is rustls without a bundled provider, as in icechunk.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = AmazonS3Builder::new()
        .with_endpoint(var(&env, "ICECHUNK_TEST_S3_ENDPOINT"))
        .with_allow_http(true)
        .with_region(var(&env, "ICECHUNK_TEST_S3_REGION"))
        .with_access_key_id(var(&env, "ICECHUNK_TEST_S3_ACCESS_KEY_ID"))
        .with_secret_access_key(var(&env, "ICECHUNK_TEST_S3_SECRET_ACCESS_KEY"))
        .with_bucket_name(var(&env, "ICECHUNK_TEST_S3_BUCKET"))
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let s3: Arc<dyn ObjectStore> = Arc::new(s3);
    round_trip(s3.clone(), "S3").await;
    racing_updates(s3, "S3").await;

    let azure = MicrosoftAzureBuilder::new()
        .with_endpoint(var(&env, "ICECHUNK_TEST_AZURE_ENDPOINT"))
        .with_allow_http(true)
        .with_account(var(&env, "ICECHUNK_TEST_AZURE_ACCOUNT"))
        .with_access_key(var(&env, "ICECHUNK_TEST_AZURE_ACCESS_KEY"))
        .with_container_name(var(&env, "ICECHUNK_TEST_AZURE_CONTAINER"))
        .build()
        .unwrap();
    let azure: Arc<dyn ObjectStore> = Arc::new(azure);
    round_trip(azure.clone(), "Azure").await;
    racing_updates(azure, "Azure").await;

    // Idempotent: a second docker-up reuses the running servers.
    let again = xtask_in(&["docker-up"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("reusing them"));
    assert_eq!(
        recorded_pids(&dir.join("target/xtask/services/state.json")),
        pids
    );

    let down = xtask_in(&["docker-down"]);
    assert!(down.status.success(), "docker-down failed");
    for pid in &pids {
        assert!(!alive(*pid), "server {pid} outlived docker-down");
    }
    assert!(
        port_is_free(s3_port) && port_is_free(azure_port),
        "ports still taken after docker-down"
    );
    assert!(!dir.join("target/xtask/services.env").exists());
    assert!(
        xtask_in(&["docker-down"]).status.success(),
        "docker-down is idempotent"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A workspace of one crate whose only test announces itself, then sleeps until killed.
fn sleepy_workspace(dir: &Path) {
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"sleepy\"]\nresolver = \"3\"\n\n[profile.ci]\ninherits = \"dev\"\n",
        ),
        (
            "sleepy/Cargo.toml",
            "[package]\nname = \"sleepy\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        ),
        (
            "sleepy/src/lib.rs",
            "#[test]\nfn sleeps() {\n    let marker = std::env::var(\"XTASK_TEST_SLEEPY_MARKER\").unwrap();\n    \
             std::fs::write(marker, std::process::id().to_string()).unwrap();\n    \
             std::thread::sleep(std::time::Duration::from_secs(600));\n}\n",
        ),
        // Every cargo invocation of xtask passes --locked, so the lock file must exist.
        (
            "Cargo.lock",
            "version = 4\n\n[[package]]\nname = \"sleepy\"\nversion = \"0.1.0\"\n",
        ),
        (".config/nextest.toml", "[profile.ci]\nfail-fast = false\n"),
        (".gitignore", "/target/\n"),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    common::commit_all(dir, "sleepy");
}

#[test]
fn ctrl_c_during_test_full_leaves_no_server_running() {
    let dir = scratch("interrupt");
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    sleepy_workspace(&workspace);
    let marker = dir.join("test-started");
    let (s3_port, azure_port) = free_ports();

    let mut cmd = xtask(&workspace, &["ci", "--only", "docker-up,test-full"]);
    // The scratch workspace has no compose.yaml: native servers even where Docker answers.
    cmd.env("XTASK_SERVICES_BACKEND", "native")
        .env("XTASK_TEST_SLEEPY_MARKER", &marker)
        .env("XTASK_S3_PORT", s3_port.to_string())
        .env("XTASK_AZURE_PORT", azure_port.to_string())
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();

    // test-full builds the tiny archive (it is missing, and this is not CI), then runs the test.
    wait_for(
        "the sleeping test to start",
        Duration::from_secs(300),
        || marker.is_file(),
    );
    let pids = recorded_pids(&workspace.join("target/xtask/services/state.json"));
    assert_eq!(pids.len(), 2);
    let test_pid: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // Ctrl-C, as a terminal sends it to xtask.
    // SAFETY: kill(2) with a pid we spawned; no memory involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut status = None;
    wait_for(
        "xtask to stop after Ctrl-C",
        Duration::from_secs(60),
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
    );
    assert_eq!(
        status.unwrap().code(),
        Some(130),
        "an interrupted run exits with 130"
    );

    for pid in pids.iter().chain([&test_pid]) {
        assert!(!alive(*pid), "process {pid} outlived the interrupted ci");
    }
    assert!(port_is_free(s3_port) && port_is_free(azure_port));
    assert!(!workspace.join("target/xtask/services/state.json").exists());
    let report = std::fs::read_to_string(workspace.join("target/xtask/report.json")).unwrap();
    assert!(report.contains("\"interrupted\""), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}
