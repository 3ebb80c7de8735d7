//! Snapshots (one committed version of the whole store) and chunk objects.
//!
//! A snapshot is written once to `snapshots/<id>` and never changed. It holds
//! its parent's id, the commit message and time, and the complete map from
//! keys to values: small values inline, larger ones as references to
//! content-addressed chunk objects `chunks/<sha256>`.

use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::{self, ChunkId, Entry, ObjectKind, SnapshotId, SnapshotPayload};
use crate::resolve::{Created, Intent, create_object};
use crate::storage::{Storage, WriteMode};

/// The directory holding snapshot objects.
pub(crate) const SNAPSHOTS_DIR: &str = "snapshots";
/// The directory holding chunk objects.
pub(crate) const CHUNKS_DIR: &str = "chunks";

pub(crate) fn snapshot_key(id: &SnapshotId) -> String {
    format!("{SNAPSHOTS_DIR}/{id}")
}

pub(crate) fn chunk_key(id: &ChunkId) -> String {
    format!("{CHUNKS_DIR}/{}", id.as_str())
}

/// A snapshot held in memory.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) id: SnapshotId,
    pub(crate) parent_id: Option<SnapshotId>,
    pub(crate) message: String,
    pub(crate) written_at: DateTime<Utc>,
    pub(crate) entries: BTreeMap<String, Entry>,
}

impl Snapshot {
    /// The first snapshot of a repository: no parent, no keys.
    pub(crate) fn initial() -> Snapshot {
        Snapshot {
            id: SnapshotId::random(),
            parent_id: None,
            message: "Repository initialized".to_string(),
            written_at: Utc::now(),
            entries: BTreeMap::new(),
        }
    }

    fn to_payload(&self) -> SnapshotPayload {
        SnapshotPayload {
            id: self.id.clone(),
            parent_id: self.parent_id.clone(),
            message: self.message.clone(),
            written_at: self.written_at,
            entries: self.entries.clone(),
        }
    }

    /// Writes the snapshot. Snapshot ids are random, so an existing object
    /// with the same id is an error, unless it holds our own bytes (an earlier
    /// attempt whose reply was lost).
    ///
    /// Nothing refers to the snapshot yet, so when its outcome cannot be
    /// established the error is the plain storage error: whatever happened,
    /// nothing became visible.
    pub(crate) async fn write(&self, storage: &Storage) -> Result<()> {
        let key = snapshot_key(&self.id);
        let data = format::encode_msgpack(ObjectKind::Snapshot, &self.to_payload())?;
        let intent = Intent::new(format!("writing snapshot {}", self.id), "");
        match create_object(storage, &key, &data, intent).await {
            Ok(Created::Ours) => Ok(()),
            Ok(Created::Theirs) => Err(Error::corrupted(
                storage.describe(&key),
                "a different snapshot with this id already exists",
            )),
            Err(Error::OutcomeUnknown { source, .. }) => Err(*source),
            Err(e) => Err(e),
        }
    }

    /// Reads a snapshot; [`Error::SnapshotNotFound`] if it does not exist.
    pub(crate) async fn read(storage: &Storage, id: &SnapshotId) -> Result<Snapshot> {
        let key = snapshot_key(id);
        let fetched = storage
            .get(&key)
            .await?
            .ok_or_else(|| Error::SnapshotNotFound { id: id.clone() })?;
        let object = storage.describe(&key);
        let payload: SnapshotPayload =
            format::decode_msgpack(&object, ObjectKind::Snapshot, &fetched.data)?;
        if &payload.id != id {
            return Err(Error::corrupted(
                object,
                format!("it holds snapshot {} instead", payload.id),
            ));
        }
        for (key, entry) in &payload.entries {
            if let Entry::Chunk { id, .. } = entry
                && !id.is_well_formed()
            {
                return Err(Error::corrupted(
                    object,
                    format!("key `{key}` refers to a malformed chunk id"),
                ));
            }
        }
        Ok(Snapshot {
            id: payload.id,
            parent_id: payload.parent_id,
            message: payload.message,
            written_at: payload.written_at,
            entries: payload.entries,
        })
    }
}

/// Writes a chunk object holding `data`. Chunks are content-addressed, so a
/// chunk that already exists is left alone.
pub(crate) async fn write_chunk(storage: &Storage, id: &ChunkId, data: &Bytes) -> Result<()> {
    let object = format::encode_object(ObjectKind::Chunk, data);
    storage
        .put(&chunk_key(id), object, WriteMode::Create)
        .await
        .map(|_| ())
}

/// Reads a chunk object and checks it holds `length` bytes with the expected hash.
pub(crate) async fn read_chunk(storage: &Storage, id: &ChunkId, length: u64) -> Result<Bytes> {
    let key = chunk_key(id);
    let object = storage.describe(&key);
    let fetched = storage
        .get(&key)
        .await?
        .ok_or_else(|| Error::corrupted(&object, "the chunk is missing"))?;
    let data = format::decode_object(&object, ObjectKind::Chunk, &fetched.data)?;
    if data.len() as u64 != length {
        return Err(Error::corrupted(
            object,
            format!("expected {length} bytes, found {}", data.len()),
        ));
    }
    if &ChunkId::for_content(&data) != id {
        return Err(Error::corrupted(
            object,
            "its content does not match its id",
        ));
    }
    Ok(data)
}

/// Reads bytes `range` (within `0..length`) of a chunk's value, fetching
/// only those bytes. Unlike [`read_chunk`] it cannot check the value's hash;
/// it checks that the object has the expected size where it can.
pub(crate) async fn read_chunk_range(
    storage: &Storage,
    id: &ChunkId,
    length: u64,
    range: Range<u64>,
) -> Result<Bytes> {
    if range.is_empty() {
        return Ok(Bytes::new());
    }
    let key = chunk_key(id);
    let object = storage.describe(&key);
    let header = format::HEADER_LEN as u64;
    let data = storage
        .get_range(&key, header + range.start..header + range.end)
        .await?
        .ok_or_else(|| Error::corrupted(&object, "the chunk is missing"))?;
    if data.len() as u64 != range.end - range.start {
        return Err(Error::corrupted(
            object,
            format!(
                "expected {length} bytes, bytes {}..{} could not all be read",
                range.start, range.end
            ),
        ));
    }
    Ok(data)
}

/// Turns a value into a snapshot entry, returning the chunk to upload if the
/// value is too large to be stored inline.
pub(crate) fn entry_for(value: &Bytes) -> (Entry, Option<(ChunkId, Bytes)>) {
    if value.len() <= format::INLINE_THRESHOLD {
        (Entry::Inline(value.clone()), None)
    } else {
        let id = ChunkId::for_content(value);
        (
            Entry::Chunk {
                id: id.clone(),
                length: value.len() as u64,
            },
            Some((id, value.clone())),
        )
    }
}
