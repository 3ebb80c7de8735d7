//! The behaviour suite against storage that needs no service: memory and the
//! local filesystem.

#[macro_use]
mod suite;

use icechunk::{Storage, StorageConfig};
use suite::{Backend, Fixture};

/// In-memory storage: every fixture is a new store.
struct Memory;

impl Backend for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn fresh(&self) -> Fixture {
        let config =
            StorageConfig::from_url("memory://suite", Vec::<(String, String)>::new()).unwrap();
        Fixture::new(Storage::new(config).unwrap(), None)
    }
}

/// Local filesystem storage in a temporary directory, one sub-directory per fixture.
struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new() -> Local {
        Local {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Backend for Local {
    fn name(&self) -> &'static str {
        "local filesystem"
    }

    fn fresh(&self) -> Fixture {
        let name = format!("repo-{}", icechunk::SnapshotId::random());
        let path = self.dir.path().join(name);
        let url = url_for(&path);
        let config = StorageConfig::from_url(&url, Vec::<(String, String)>::new()).unwrap();
        Fixture::new(Storage::new(config.clone()).unwrap(), Some(config))
    }
}

fn url_for(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

mod memory {
    behaviour_suite!(super::Memory);
}

mod local {
    behaviour_suite!(super::Local::new());
}

/// Commits, branch and tag operations and repository creation through
/// thousands of injected faults (see `suite/chaos.rs`); run with
/// `-- --nocapture` to see the counts.
mod fault_injection {
    use super::suite::chaos::{Plan, run};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory() {
        let plan = Plan {
            writers: 4,
            commits_per_writer: 120,
            ref_ops: 400,
            tag_races: 60,
            creations: 80,
            creators: 3,
        };
        run(&super::Memory, &plan).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_filesystem() {
        let plan = Plan {
            writers: 3,
            commits_per_writer: 10,
            ref_ops: 30,
            tag_races: 5,
            creations: 6,
            creators: 3,
        };
        run(&super::Local::new(), &plan).await;
    }
}

/// Operations cut off at each of their store calls (see `suite/crash.rs`).
mod crash_points {
    use super::suite::crash;

    #[tokio::test]
    async fn memory() {
        crash::repository_creation(&super::Memory).await;
        crash::commit(&super::Memory).await;
        crash::refs(&super::Memory).await;
    }

    #[tokio::test]
    async fn local_filesystem() {
        let local = super::Local::new();
        crash::repository_creation(&local).await;
        crash::commit(&local).await;
        crash::refs(&local).await;
    }
}

/// The local store must also be correct across processes: this test starts
/// copies of this test binary that all commit to one repository.
mod local_processes {
    use super::*;
    use icechunk::{Error, Repository, VersionRef};

    const CHILD_ENV: &str = "ICECHUNK_TEST_CHILD_REPO";
    const CHILD_ID_ENV: &str = "ICECHUNK_TEST_CHILD_ID";
    const PROCESSES: usize = 4;
    const COMMITS: usize = 5;

    /// Runs in a child process when CHILD_ENV is set; does nothing otherwise.
    #[tokio::test]
    async fn child_writer() {
        let (Ok(url), Ok(id)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_ID_ENV)) else {
            return;
        };
        let storage =
            Storage::new(StorageConfig::from_url(&url, Vec::<(String, String)>::new()).unwrap())
                .unwrap();
        let repo = Repository::open(storage).await.unwrap();
        for c in 0..COMMITS {
            loop {
                let session = repo.writable_session("main").await.unwrap();
                session
                    .set(&format!("p{id}/c{c}"), bytes::Bytes::from(vec![1u8; 600]))
                    .await
                    .unwrap();
                match session.commit(&format!("process {id} commit {c}")).await {
                    Ok(_) => break,
                    Err(Error::Conflict { .. }) => {
                        tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(
                            1..10,
                        )))
                        .await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn processes_commit_concurrently() {
        if std::env::var(CHILD_ENV).is_ok() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let url = url_for(&dir.path().join("repo"));
        let storage =
            Storage::new(StorageConfig::from_url(&url, Vec::<(String, String)>::new()).unwrap())
                .unwrap();
        let repo = Repository::create(storage).await.unwrap();

        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..PROCESSES)
            .map(|id| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "local_processes::child_writer",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, &url)
                    .env(CHILD_ID_ENV, id.to_string())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let history = repo
            .ancestry(&VersionRef::Branch("main".into()))
            .await
            .unwrap();
        assert_eq!(history.len(), PROCESSES * COMMITS + 1);
        let ro = repo
            .readonly_session(&VersionRef::Branch("main".into()))
            .await
            .unwrap();
        assert_eq!(ro.list().await.unwrap().len(), PROCESSES * COMMITS);
    }
}
