//! On-storage format: identifiers, the binary object header and serialization.
//!
//! Every object this crate writes is a fixed 24-byte header followed by a
//! payload (see `FORMAT.md` in the crate root for the full description):
//!
//! | offset | size | field                                   |
//! |-------:|-----:|-----------------------------------------|
//! | 0      | 8    | magic bytes `ICECHUNK`                  |
//! | 8      | 2    | format version, u16 little endian       |
//! | 10     | 1    | object kind                             |
//! | 11     | 1    | reserved, always 0                      |
//! | 12     | 8    | payload length, u64 little endian       |
//! | 20     | 4    | CRC32 of the payload, u32 little endian |
//!
//! Structured payloads are MessagePack (maps with named fields); chunk payloads
//! are the raw value bytes.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The magic bytes every object starts with.
pub const MAGIC: &[u8; 8] = b"ICECHUNK";

/// The newest format version this library writes and understands.
pub const FORMAT_VERSION: u16 = 1;

/// Size of the fixed object header in bytes.
pub const HEADER_LEN: usize = 24;

/// Values up to this many bytes are stored inline in the snapshot; larger
/// ones are written to their own chunk object.
pub const INLINE_THRESHOLD: usize = 512;

const ID_BYTES: usize = 12;
const ID_CHARS: usize = 20;
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The identifier of a snapshot: 12 random bytes, written as 20 characters of
/// Crockford base32 (upper case; parsing is case-insensitive).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId([u8; ID_BYTES]);

impl SnapshotId {
    /// A new random id.
    pub fn random() -> Self {
        SnapshotId(rand::random())
    }

    /// The raw bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// Builds an id from raw bytes.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        SnapshotId(bytes)
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Treat the 96 bits as a big-endian bit stream, padded with 4 zero
        // bits to 100 bits = 20 groups of 5.
        let mut out = String::with_capacity(ID_CHARS);
        let mut acc: u32 = 0;
        let mut bits: u32 = 0;
        for byte in self.0 {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(crockford_char(acc >> bits));
            }
            acc &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(crockford_char(acc << (5 - bits)));
        }
        f.write_str(&out)
    }
}

/// The alphabet character for the low 5 bits of `value`.
fn crockford_char(value: u32) -> char {
    let index = (value & 31) as usize;
    char::from(CROCKFORD.get(index).copied().unwrap_or(b'0'))
}

impl fmt::Debug for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotId({self})")
    }
}

fn crockford_value(c: u8) -> Option<u32> {
    let c = c.to_ascii_uppercase();
    CROCKFORD.iter().position(|&a| a == c).map(|v| v as u32)
}

impl FromStr for SnapshotId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidSnapshotId {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if s.len() != ID_CHARS {
            return Err(invalid("a snapshot id has exactly 20 characters"));
        }
        let mut out = [0u8; ID_BYTES];
        let mut acc: u32 = 0;
        let mut bits: u32 = 0;
        let mut pos = 0;
        for c in s.bytes() {
            let v = crockford_value(c).ok_or_else(|| {
                invalid("only the Crockford base32 characters 0-9 and A-Z except I, L, O and U are allowed")
            })?;
            acc = (acc << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                if let Some(slot) = out.get_mut(pos) {
                    *slot = ((acc >> bits) & 0xff) as u8;
                }
                pos += 1;
                acc &= (1 << bits) - 1;
            }
        }
        // 100 bits were read: 96 went into the bytes, 4 padding bits remain.
        if acc != 0 {
            return Err(invalid("the last character is not a valid ending"));
        }
        Ok(SnapshotId(out))
    }
}

impl Serialize for SnapshotId {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SnapshotId {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The identifier of a chunk object: the SHA-256 of its content, in lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ChunkId(String);

impl ChunkId {
    pub(crate) fn for_content(data: &[u8]) -> Self {
        ChunkId(sha256_hex(data))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Chunk ids end up in object paths; only accept what we write ourselves.
    pub(crate) fn is_well_formed(&self) -> bool {
        self.0.len() == 64
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// What an object is. Stored in byte 10 of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ObjectKind {
    RepoMarker = 1,
    Snapshot = 2,
    Chunk = 3,
    BranchRef = 4,
    TagRef = 5,
    TagTombstone = 6,
}

impl ObjectKind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => ObjectKind::RepoMarker,
            2 => ObjectKind::Snapshot,
            3 => ObjectKind::Chunk,
            4 => ObjectKind::BranchRef,
            5 => ObjectKind::TagRef,
            6 => ObjectKind::TagTombstone,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ObjectKind::RepoMarker => "repository marker",
            ObjectKind::Snapshot => "snapshot",
            ObjectKind::Chunk => "chunk",
            ObjectKind::BranchRef => "branch reference",
            ObjectKind::TagRef => "tag reference",
            ObjectKind::TagTombstone => "tag tombstone",
        }
    }
}

/// Wraps a payload in an object header.
pub(crate) fn encode_object(kind: ObjectKind, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_slice(MAGIC);
    buf.put_u16_le(FORMAT_VERSION);
    buf.put_u8(kind as u8);
    buf.put_u8(0);
    buf.put_u64_le(payload.len() as u64);
    buf.put_u32_le(crc32fast::hash(payload));
    buf.put_slice(payload);
    buf.freeze()
}

/// Checks an object's header and returns its payload.
///
/// `object` names the object in error messages.
pub(crate) fn decode_object(object: &str, expected: ObjectKind, data: &Bytes) -> Result<Bytes> {
    let corrupted = |reason: String| Error::corrupted(object, reason);
    let magic = data.get(0..8).ok_or_else(|| {
        corrupted(format!(
            "it is {} bytes long, shorter than the {HEADER_LEN}-byte header",
            data.len()
        ))
    })?;
    if magic != MAGIC {
        return Err(corrupted(
            "it does not start with the icechunk magic bytes".into(),
        ));
    }
    let version = read_u16(data, 8).ok_or_else(|| corrupted("its header is truncated".into()))?;
    if version > FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            object: object.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(corrupted("its header has format version 0".into()));
    }
    if data.len() < HEADER_LEN {
        return Err(corrupted(format!(
            "it is {} bytes long, shorter than the {HEADER_LEN}-byte header",
            data.len()
        )));
    }
    let kind_byte = data.get(10).copied().unwrap_or_default();
    match ObjectKind::from_byte(kind_byte) {
        Some(kind) if kind == expected => {}
        Some(kind) => {
            return Err(corrupted(format!(
                "expected a {}, found a {}",
                expected.name(),
                kind.name()
            )));
        }
        None => return Err(corrupted(format!("unknown object kind {kind_byte}"))),
    }
    let reserved = data.get(11).copied().unwrap_or_default();
    if reserved != 0 {
        return Err(corrupted(format!(
            "its header's reserved byte is {reserved}, not 0"
        )));
    }
    let length = read_u64(data, 12).ok_or_else(|| corrupted("its header is truncated".into()))?;
    let crc = read_u32(data, 20).ok_or_else(|| corrupted("its header is truncated".into()))?;
    let actual_len = (data.len() - HEADER_LEN) as u64;
    if length != actual_len {
        return Err(corrupted(format!(
            "its header announces {length} payload bytes but {actual_len} are present"
        )));
    }
    let payload = data.slice(HEADER_LEN..);
    let actual_crc = crc32fast::hash(&payload);
    if actual_crc != crc {
        return Err(corrupted(format!(
            "payload checksum mismatch (header {crc:08x}, computed {actual_crc:08x})"
        )));
    }
    Ok(payload)
}

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at + 2)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at + 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Serializes a structured payload (MessagePack, named fields) inside a header.
pub(crate) fn encode_msgpack<T: Serialize>(kind: ObjectKind, value: &T) -> Result<Bytes> {
    let payload = rmp_serde::to_vec_named(value).map_err(|e| Error::Corrupted {
        object: kind.name().to_string(),
        reason: format!("it could not be serialized: {e}"),
    })?;
    Ok(encode_object(kind, &payload))
}

/// Checks the header and deserializes a structured payload.
pub(crate) fn decode_msgpack<T: DeserializeOwned>(
    object: &str,
    kind: ObjectKind,
    data: &Bytes,
) -> Result<T> {
    let payload = decode_object(object, kind, data)?;
    rmp_serde::from_slice(&payload)
        .map_err(|e| Error::corrupted(object, format!("its payload could not be decoded: {e}")))
}

/// Payload of the `repo` marker object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RepoMarker {
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
}

/// Payload of a branch or tag reference, and of a tag tombstone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefPayload {
    pub(crate) snapshot: SnapshotId,
    pub(crate) written_at: chrono::DateTime<chrono::Utc>,
}

/// How a key's value is stored in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Entry {
    /// The value itself (at most [`INLINE_THRESHOLD`] bytes).
    Inline(Bytes),
    /// A reference to `chunks/<id>` holding `length` bytes.
    Chunk { id: ChunkId, length: u64 },
}

/// Payload of a snapshot object: one committed version of the whole store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    pub(crate) id: SnapshotId,
    pub(crate) parent_id: Option<SnapshotId>,
    pub(crate) message: String,
    pub(crate) written_at: chrono::DateTime<chrono::Utc>,
    pub(crate) entries: std::collections::BTreeMap<String, Entry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn snapshot_id_round_trips() {
        for _ in 0..1000 {
            let id = SnapshotId::random();
            let text = id.to_string();
            assert_eq!(text.len(), 20);
            assert!(text.bytes().all(|c| CROCKFORD.contains(&c)));
            assert_eq!(text.parse::<SnapshotId>().unwrap(), id);
            assert_eq!(text.to_lowercase().parse::<SnapshotId>().unwrap(), id);
        }
        let zero = SnapshotId::from_bytes([0; 12]);
        assert_eq!(zero.to_string(), "00000000000000000000");
        let max = SnapshotId::from_bytes([0xff; 12]);
        assert_eq!(max.to_string(), "ZZZZZZZZZZZZZZZZZZZG");
        let one = SnapshotId::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(one.to_string(), "0000000000000000000G");
    }

    #[test]
    fn snapshot_id_rejects_bad_text() {
        for bad in [
            "",
            "0000000000000000000",
            "000000000000000000000",
            "0000000000000000000U",
            "000000000000000000-0",
            "00000000000000000001",
            "ZZZZZZZZZZZZZZZZZZZZ",
            "ééééééééé0",
        ] {
            assert!(
                matches!(
                    bad.parse::<SnapshotId>(),
                    Err(Error::InvalidSnapshotId { .. })
                ),
                "{bad:?} was accepted"
            );
        }
    }

    fn sample_snapshot() -> SnapshotPayload {
        let mut entries = BTreeMap::new();
        entries.insert(
            "zarr.json".to_string(),
            Entry::Inline(Bytes::from_static(b"{}")),
        );
        entries.insert(
            "a/c/0".to_string(),
            Entry::Chunk {
                id: ChunkId::for_content(b"hello"),
                length: 5,
            },
        );
        SnapshotPayload {
            id: SnapshotId::random(),
            parent_id: Some(SnapshotId::random()),
            message: "a commit ✓".into(),
            written_at: chrono::Utc::now(),
            entries,
        }
    }

    #[test]
    fn snapshot_round_trips() {
        let snap = sample_snapshot();
        let bytes = encode_msgpack(ObjectKind::Snapshot, &snap).unwrap();
        assert_eq!(&bytes[0..8], MAGIC);
        let back: SnapshotPayload = decode_msgpack("s", ObjectKind::Snapshot, &bytes).unwrap();
        assert_eq!(back, snap);
    }

    #[test]
    fn refs_and_marker_round_trip() {
        let r = RefPayload {
            snapshot: SnapshotId::random(),
            written_at: chrono::Utc::now(),
        };
        let bytes = encode_msgpack(ObjectKind::BranchRef, &r).unwrap();
        let back: RefPayload = decode_msgpack("r", ObjectKind::BranchRef, &bytes).unwrap();
        assert_eq!(back, r);
        // The kind is checked.
        assert!(matches!(
            decode_msgpack::<RefPayload>("r", ObjectKind::TagRef, &bytes),
            Err(Error::Corrupted { .. })
        ));
        let m = RepoMarker {
            created_at: chrono::Utc::now(),
        };
        let bytes = encode_msgpack(ObjectKind::RepoMarker, &m).unwrap();
        let back: RepoMarker = decode_msgpack("repo", ObjectKind::RepoMarker, &bytes).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn chunk_round_trips() {
        let data = vec![7u8; 4000];
        let bytes = encode_object(ObjectKind::Chunk, &data);
        assert_eq!(bytes.len(), HEADER_LEN + data.len());
        let back = decode_object("c", ObjectKind::Chunk, &bytes).unwrap();
        assert_eq!(&back[..], &data[..]);
        assert!(ChunkId::for_content(&data).is_well_formed());
        assert_eq!(
            ChunkId::for_content(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = encode_msgpack(ObjectKind::Snapshot, &sample_snapshot()).unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut copy = bytes.to_vec();
                copy[i] ^= flip;
                let res = decode_msgpack::<SnapshotPayload>(
                    "s",
                    ObjectKind::Snapshot,
                    &Bytes::from(copy),
                );
                match res {
                    Err(Error::Corrupted { .. }) | Err(Error::UnsupportedFormatVersion { .. }) => {}
                    other => panic!("flip {flip:#x} at byte {i} was not detected: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = encode_msgpack(ObjectKind::Snapshot, &sample_snapshot()).unwrap();
        for len in 0..bytes.len() {
            let res =
                decode_msgpack::<SnapshotPayload>("s", ObjectKind::Snapshot, &bytes.slice(0..len));
            assert!(
                matches!(res, Err(Error::Corrupted { .. })),
                "truncation at {len}: {res:?}"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        let res =
            decode_msgpack::<SnapshotPayload>("s", ObjectKind::Snapshot, &Bytes::from(longer));
        assert!(matches!(res, Err(Error::Corrupted { .. })));
    }

    #[test]
    fn bad_magic_is_corrupted() {
        let mut bytes = encode_object(ObjectKind::Chunk, b"abc").to_vec();
        bytes[0..8].copy_from_slice(b"NOTICECH");
        let err = decode_object("c", ObjectKind::Chunk, &Bytes::from(bytes)).unwrap_err();
        assert!(matches!(err, Error::Corrupted { .. }));
        assert!(err.to_string().contains("magic"), "{err}");
    }

    #[test]
    fn newer_version_is_refused() {
        let mut bytes = encode_object(ObjectKind::Chunk, b"abc").to_vec();
        bytes[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        // Even with garbage after the version, the version is what is reported.
        bytes.truncate(12);
        let err = decode_object("chunks/x", ObjectKind::Chunk, &Bytes::from(bytes)).unwrap_err();
        match err {
            Error::UnsupportedFormatVersion {
                object,
                found,
                supported,
            } => {
                assert_eq!(object, "chunks/x");
                assert_eq!(found, FORMAT_VERSION + 1);
                assert_eq!(supported, FORMAT_VERSION);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn valid_header_with_garbage_payload_is_corrupted() {
        let bytes = encode_object(ObjectKind::Snapshot, b"\xc1\xc1 definitely not msgpack");
        let res = decode_msgpack::<SnapshotPayload>("s", ObjectKind::Snapshot, &bytes);
        assert!(matches!(res, Err(Error::Corrupted { .. })));
        // A well-formed payload with a bad snapshot id inside.
        #[derive(Serialize)]
        struct Fake {
            snapshot: &'static str,
            written_at: chrono::DateTime<chrono::Utc>,
        }
        let bytes = encode_msgpack(
            ObjectKind::BranchRef,
            &Fake {
                snapshot: "not an id",
                written_at: chrono::Utc::now(),
            },
        )
        .unwrap();
        let res = decode_msgpack::<RefPayload>("r", ObjectKind::BranchRef, &bytes);
        assert!(matches!(res, Err(Error::Corrupted { .. })));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let data = Bytes::from(data);
            let _ = decode_msgpack::<SnapshotPayload>("x", ObjectKind::Snapshot, &data);
            let _ = decode_msgpack::<RefPayload>("x", ObjectKind::BranchRef, &data);
            let _ = decode_object("x", ObjectKind::Chunk, &data);
        }

        #[test]
        fn decoding_arbitrary_payloads_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let bytes = encode_object(ObjectKind::Snapshot, &data);
            let _ = decode_msgpack::<SnapshotPayload>("x", ObjectKind::Snapshot, &bytes);
        }

        #[test]
        fn snapshot_id_parse_never_panics(s in "\\PC{0,25}") {
            let _ = s.parse::<SnapshotId>();
        }
    }
}
