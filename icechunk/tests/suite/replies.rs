//! Deterministic lost-reply tests: every request is applied, its reply lost
//! and the request sent again, so that each conditional write is answered
//! "already exists" or "precondition failed" because of its own first
//! attempt. Every operation must still report success, and storage agree.

use std::sync::Arc;

use bytes::Bytes;
use icechunk::{Error, Repository, VersionRef};

use super::Backend;
use super::faults::{Fault, FaultyStore, Rates, Schedule};

pub async fn every_request_sent_twice(backend: &dyn Backend) {
    let fixture = backend.fresh();
    let schedule = Schedule::new(0, Rates::only(Fault::Retried));
    let for_store = schedule.clone();
    let storage = fixture
        .storage()
        .map_store(move |inner| Arc::new(FaultyStore::new(inner, for_store)));

    let repo = Repository::create(storage.clone()).await.unwrap();
    let session = repo.writable_session("main").await.unwrap();
    session
        .set("big", Bytes::from(vec![5u8; 2000]))
        .await
        .unwrap();
    session.set("small", Bytes::from("1")).await.unwrap();
    let first = session.commit("first").await.unwrap();
    session.set("small", Bytes::from("2")).await.unwrap();
    let second = session.commit("second").await.unwrap();
    repo.create_branch("b", &first).await.unwrap();
    repo.reset_branch("b", &second, Some(&first)).await.unwrap();
    repo.create_tag("t", &first).await.unwrap();
    repo.delete_tag("t").await.unwrap();
    repo.delete_branch("b").await.unwrap();
    Repository::open_or_create(storage).await.unwrap();
    assert!(schedule.calls() > 20, "{} calls", schedule.calls());
    assert_eq!(schedule.total_injected(), schedule.calls());

    let clean = Repository::open(fixture.storage()).await.unwrap();
    let main = VersionRef::Branch("main".into());
    let history = clean.ancestry(&main).await.unwrap();
    let messages: Vec<&str> = history.iter().map(|s| s.message.as_str()).collect();
    assert_eq!(messages, ["second", "first", "Repository initialized"]);
    assert_eq!((&history[0].id, &history[1].id), (&second, &first));
    let tip = clean.readonly_session(&main).await.unwrap();
    assert_eq!(tip.get("small").await.unwrap(), Some(Bytes::from("2")));
    assert_eq!(
        tip.get("big").await.unwrap(),
        Some(Bytes::from(vec![5u8; 2000]))
    );
    assert_eq!(clean.list_branches().await.unwrap(), vec!["main"]);
    assert!(clean.list_tags().await.unwrap().is_empty());
    let err = clean.create_tag("t", &first).await.unwrap_err();
    assert!(matches!(err, Error::TagDeleted { .. }), "{err}");
}
