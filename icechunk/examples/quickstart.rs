//! Create a repository, write, commit, and read an older version back.
//! Run it with `cargo run -p icechunk --example quickstart`.

use bytes::Bytes;
use icechunk::{Repository, Storage, StorageConfig, VersionRef};

pub async fn run() -> icechunk::Result<()> {
    let storage = Storage::new(StorageConfig::from_url(
        "memory://example",
        [("max_retries", "0")],
    )?)?;
    let repo = Repository::create(storage).await?;

    // Write and commit a first version.
    let session = repo.writable_session("main").await?;
    session
        .set(
            "zarr.json",
            Bytes::from_static(br#"{"zarr_format":3,"node_type":"group"}"#),
        )
        .await?;
    session
        .set("temperature/c/0", Bytes::from(vec![1u8; 4096]))
        .await?;
    let first = session.commit("first version").await?;

    // Change it: the same session keeps committing.
    session
        .set("temperature/c/0", Bytes::from(vec![2u8; 4096]))
        .await?;
    session.delete("zarr.json").await?;
    session.commit("second version").await?;

    // Read the older version back.
    let old = repo.readonly_session(&VersionRef::Snapshot(first)).await?;
    assert_eq!(
        old.get("temperature/c/0").await?,
        Some(Bytes::from(vec![1u8; 4096]))
    );
    assert!(old.exists("zarr.json").await?);
    assert_eq!(old.list_dir("").await?, vec!["temperature", "zarr.json"]);

    // History, newest first.
    let history = repo.ancestry(&VersionRef::Branch("main".into())).await?;
    let messages: Vec<_> = history.iter().map(|s| s.message.as_str()).collect();
    assert_eq!(
        messages,
        ["second version", "first version", "Repository initialized"]
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> icechunk::Result<()> {
    run().await
}
