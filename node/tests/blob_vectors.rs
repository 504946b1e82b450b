//! The `chunking` section of `spec/vectors/blob.json` (spec/blob.md
//! §Chunking): the FastCDC parameters (masks and gear table) and the cut
//! points of deterministic inputs, which pin the chunking of every node: two
//! nodes that cut the same bytes differently would give the same file two
//! content ids.
//!
//! Checked three ways: the node's real chunker (`hearth_node::blobs`) cuts
//! each input as listed; a byte-at-a-time implementation of the algorithm as
//! spec/blob.md words it, fed with the section's own masks and gear table,
//! cuts it the same way; and the masks and gear table are those of the
//! `fastcdc` crate the chunker uses.
//!
//! With `HEARTH_WRITE_VECTORS=1` the section is regenerated (inputs defined
//! in `generate` below) and written into blob.json, whose other sections
//! (owned by `protocol/tests/share_vectors.rs`) are kept:
//!
//! ```text
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-protocol --test share_vectors
//! HEARTH_WRITE_VECTORS=1 cargo test -p hearth-node --test blob_vectors
//! ```

use std::io::Write as _;
use std::path::PathBuf;

use fastcdc::v2020::{get_gear_with_seed, select_masks, Normalization};
use hearth_node::blobs::{manifest_of_file, Chunker};
use hearth_protocol::blob::{ChunkHash, ChunkRef, Manifest, CHUNK_AVG, CHUNK_MAX, CHUNK_MIN};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const BLOB_JSON: &str = include_str!("../../spec/vectors/blob.json");
const SECTION: &str = "chunking";
const SEED: &str = "9e3779b97f4a7c15";
const MIB: usize = 1024 * 1024;

fn write_mode() -> bool {
    std::env::var("HEARTH_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("spec/vectors/blob.json does not parse: {e}"))
}

fn load_or_generate() -> Chunking {
    let text = if write_mode() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/blob.json");
        let mut root: Map<String, Value> = match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => parse(&text),
            _ => Map::new(),
        };
        root.insert(SECTION.into(), serde_json::to_value(generate()).expect("serialises"));
        // A JSON value with sorted keys: the bytes do not depend on which
        // test wrote the file last.
        let mut text = serde_json::to_string_pretty(&Value::Object(root)).expect("serialises");
        text.push('\n');
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        text
    } else {
        BLOB_JSON.to_owned()
    };
    let mut root: Map<String, Value> = parse(&text);
    let section = root.remove(SECTION).unwrap_or_else(|| {
        panic!("blob.json has no {SECTION:?} section: regenerate with HEARTH_WRITE_VECTORS=1 cargo test -p hearth-node --test blob_vectors")
    });
    serde_json::from_value(section).unwrap_or_else(|e| panic!("blob.json section {SECTION}: {e}"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chunking {
    description: String,
    min: u32,
    avg: u32,
    max: u32,
    normalization: u32,
    /// Gear-table seed of the `fastcdc` crate (0: the table as published).
    gear_seed: u64,
    /// 64-bit masks, 16 hex digits.
    mask_s: String,
    mask_l: String,
    /// The 256 gear values, 16 hex digits each, indexed by byte value.
    gear: Vec<String>,
    inputs: Vec<Input>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Input {
    description: String,
    /// `xorshift64` (see spec/blob.md) or `zeros`.
    generator: String,
    /// Initial xorshift64 state, 16 hex digits (unused for `zeros`).
    seed: String,
    len: usize,
    /// A byte inverted (xor 0xff) after generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flip: Option<usize>,
    cuts: Vec<Cut>,
    manifest_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cut {
    offset: u64,
    len: u32,
    hash: String,
}

fn input_bytes(generator: &str, seed: &str, len: usize, flip: Option<usize>) -> Vec<u8> {
    let mut data = match generator {
        "zeros" => vec![0; len],
        "xorshift64" => {
            let mut state = u64::from_str_radix(seed, 16).expect("hex seed");
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        }
        other => panic!("unknown generator {other:?}"),
    };
    if let Some(at) = flip {
        data[at] ^= 0xff;
    }
    data
}

/// The node's chunker on `data`.
fn real_cuts(data: &[u8]) -> (Vec<Cut>, String) {
    let mut cuts = Vec::new();
    let mut refs = Vec::new();
    for chunk in Chunker::new(data) {
        let chunk = chunk.expect("in-memory reads do not fail");
        refs.push(chunk.chunk_ref());
        cuts.push(Cut { offset: chunk.offset, len: chunk.bytes.len() as u32, hash: chunk.hash.to_string() });
    }
    let id = Manifest::from_chunks(refs).expect("valid manifest").id();
    (cuts, id.to_string())
}

fn u64_hex(v: u64) -> String {
    format!("{v:016x}")
}

fn parse_u64(s: &str) -> u64 {
    u64::from_str_radix(s, 16).expect("16 hex digits")
}

/// spec/blob.md §Chunking, word for word: the length of the chunk that
/// starts `src`.
fn reference_cut(src: &[u8], c: &Chunking, mask_s: u64, mask_l: u64, gear: &[u64]) -> usize {
    let (min, avg, max) = (c.min as usize, c.avg as usize, c.max as usize);
    let n = src.len();
    if n <= min {
        return n;
    }
    let end = n.min(max);
    let center = avg.min(end);
    let mut h: u64 = 0;
    for (i, &byte) in src.iter().enumerate().take(end - end % 2).skip(min) {
        h = (h << 1).wrapping_add(gear[usize::from(byte)]);
        let mask = if i < center { mask_s } else { mask_l };
        if h & mask == 0 {
            return i;
        }
    }
    end
}

fn reference_cuts(data: &[u8], c: &Chunking) -> (Vec<Cut>, String) {
    let gear: Vec<u64> = c.gear.iter().map(|g| parse_u64(g)).collect();
    assert_eq!(gear.len(), 256);
    let (mask_s, mask_l) = (parse_u64(&c.mask_s), parse_u64(&c.mask_l));
    let mut cuts = Vec::new();
    let mut refs = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let len = reference_cut(&data[start..], c, mask_s, mask_l, &gear);
        let hash = ChunkHash::of(&data[start..start + len]);
        refs.push(ChunkRef { hash, len: len as u32 });
        cuts.push(Cut { offset: start as u64, len: len as u32, hash: hash.to_string() });
        start += len;
    }
    (cuts, Manifest::from_chunks(refs).expect("valid manifest").id().to_string())
}

fn input(description: &str, generator: &str, len: usize, flip: Option<usize>) -> Input {
    let seed = if generator == "zeros" { String::new() } else { SEED.to_owned() };
    let (cuts, manifest_id) = real_cuts(&input_bytes(generator, &seed, len, flip));
    Input { description: description.into(), generator: generator.into(), seed, len, flip, cuts, manifest_id }
}

fn parameters() -> (String, String, Vec<String>) {
    let (mask_s, mask_l) = select_masks(CHUNK_AVG as usize, Normalization::Level1);
    let (gear, _) = get_gear_with_seed(0);
    (u64_hex(mask_s), u64_hex(mask_l), gear.iter().map(|g| u64_hex(*g)).collect())
}

fn generate() -> Chunking {
    let (mask_s, mask_l, gear) = parameters();
    Chunking {
        description: "spec/blob.md §Chunking: FastCDC 2020 with Hearth's parameters, and the chunks of \
                      deterministic inputs (offset, length, BLAKE3) with the resulting manifest id. Generated by \
                      node/tests/blob_vectors.rs with the node's chunker."
            .into(),
        min: CHUNK_MIN,
        avg: CHUNK_AVG,
        max: CHUNK_MAX,
        normalization: 1,
        gear_seed: 0,
        mask_s,
        mask_l,
        gear,
        inputs: vec![
            input("1 MiB of xorshift64 output", "xorshift64", MIB, None),
            input(
                "the same 1 MiB with byte 524288 inverted: only the chunk around it changes",
                "xorshift64",
                MIB,
                Some(MIB / 2),
            ),
            input("600 KiB of zeros: no cut point, chunks end at the maximum", "zeros", 600 * 1024, None),
            input("100 bytes, shorter than the minimum: one chunk", "xorshift64", 100, None),
            input("the minimum plus one byte (odd length): one chunk", "xorshift64", CHUNK_MIN as usize + 1, None),
            input("the empty input: no chunks", "zeros", 0, None),
        ],
    }
}

#[test]
fn chunking_vectors() {
    let file = load_or_generate();
    assert_eq!(
        (file.min, file.avg, file.max, file.normalization, file.gear_seed),
        (CHUNK_MIN, CHUNK_AVG, CHUNK_MAX, 1, 0)
    );
    let (mask_s, mask_l, gear) = parameters();
    assert_eq!((&file.mask_s, &file.mask_l), (&mask_s, &mask_l), "masks of the fastcdc crate");
    assert_eq!(file.gear, gear, "gear table of the fastcdc crate");

    for v in &file.inputs {
        let data = input_bytes(&v.generator, &v.seed, v.len, v.flip);
        let (cuts, id) = real_cuts(&data);
        assert_eq!(cuts, v.cuts, "{}: the node's chunker", v.description);
        assert_eq!(id, v.manifest_id, "{}: manifest id", v.description);
        let (cuts, id) = reference_cuts(&data, &file);
        assert_eq!(cuts, v.cuts, "{}: spec/blob.md's algorithm", v.description);
        assert_eq!(id, v.manifest_id);
    }

    // The same bytes in a file give the same manifest (what a scan records).
    let first = &file.inputs[0];
    let mut tmp = tempfile::NamedTempFile::new().expect("temporary file");
    tmp.write_all(&input_bytes(&first.generator, &first.seed, first.len, first.flip)).expect("write");
    tmp.flush().expect("flush");
    let manifest = manifest_of_file(tmp.path()).expect("manifest");
    assert_eq!(manifest.id().to_string(), first.manifest_id);

    // The edit in the middle changes only the chunk around it.
    let (a, b) = (&file.inputs[0].cuts, &file.inputs[1].cuts);
    let same = a.iter().filter(|c| b.contains(c)).count();
    assert!(same + 1 >= a.len() && a.len() > 4, "{same} of {} chunks survive a one-byte edit", a.len());
}
