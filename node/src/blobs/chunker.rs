//! Content-defined chunking of files with FastCDC.
//!
//! Parameters: FastCDC 2020, normalisation level 1, gear seed 0, chunks of
//! [`CHUNK_MIN`] = 16 KiB minimum, [`CHUNK_AVG`] = 64 KiB average and
//! [`CHUNK_MAX`] = 256 KiB maximum (constants of
//! [`hearth_protocol::blob`], because two nodes must cut identical files
//! identically for their content ids to match). Cut points depend only on the
//! bytes near them, so an edit shifts at most the one or two chunks around
//! it. With normalisation the real average is a little above the target
//! (about 78 KiB on incompressible data), so a 1 GiB file has about 13,500
//! chunks and a 490 KB manifest.
//!
//! The chunker streams: it holds one [`CHUNK_MAX`] buffer, never a whole
//! file.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use fastcdc::v2020::{Normalization, StreamCDC};
use hearth_protocol::blob::{ChunkHash, ChunkRef, Manifest, CHUNK_AVG, CHUNK_MAX, CHUNK_MIN};

use super::BlobError;

/// One chunk cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position of its first byte in the stream.
    pub offset: u64,
    /// BLAKE3 of `bytes`.
    pub hash: ChunkHash,
    /// The chunk (1..=[`CHUNK_MAX`] bytes).
    pub bytes: Vec<u8>,
}

impl Chunk {
    /// Its manifest entry.
    pub fn chunk_ref(&self) -> ChunkRef {
        // Fits: the chunker never cuts more than CHUNK_MAX bytes.
        ChunkRef { hash: self.hash, len: self.bytes.len() as u32 }
    }
}

/// Iterator over the chunks of a reader, in order. The chunks of an empty
/// stream are none.
pub struct Chunker<R: Read> {
    inner: StreamCDC<R>,
}

impl<R: Read> Chunker<R> {
    /// Chunks `reader` with Hearth's parameters. No need to buffer the reader:
    /// the chunker reads into its own buffer.
    pub fn new(reader: R) -> Self {
        Self {
            inner: StreamCDC::with_level_and_seed(
                reader,
                CHUNK_MIN as usize,
                CHUNK_AVG as usize,
                CHUNK_MAX as usize,
                Normalization::Level1,
                0,
            ),
        }
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = match self.inner.next()? {
            Ok(c) => c,
            Err(fastcdc::v2020::Error::IoError(e)) => return Some(Err(e)),
            Err(e) => return Some(Err(io::Error::other(e.to_string()))),
        };
        Some(Ok(Chunk { offset: chunk.offset, hash: ChunkHash::of(&chunk.data), bytes: chunk.data }))
    }
}

/// The manifest of the file at `path`, without storing anything (for a
/// scanner that only needs the content id).
pub fn manifest_of_file(path: &Path) -> Result<Manifest, BlobError> {
    let file = File::open(path).map_err(BlobError::io("open", path))?;
    let mut refs = Vec::new();
    for chunk in Chunker::new(file) {
        refs.push(chunk.map_err(BlobError::io("read", path))?.chunk_ref());
    }
    Manifest::from_chunks(refs).map_err(|source| BlobError::TooLarge { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn chunks_cover_the_input_within_the_bounds() {
        let data = pseudo_random(3 * 1024 * 1024 + 17, 7);
        let chunks: Vec<Chunk> = Chunker::new(data.as_slice()).collect::<io::Result<_>>().expect("chunks");
        let mut offset = 0;
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.offset, offset);
            assert!(c.bytes.len() <= CHUNK_MAX as usize);
            if i + 1 < chunks.len() {
                assert!(c.bytes.len() >= CHUNK_MIN as usize);
            }
            assert_eq!(c.hash, ChunkHash::of(&c.bytes));
            offset += c.bytes.len() as u64;
        }
        assert_eq!(offset, data.len() as u64);
        let avg = data.len() / chunks.len();
        assert!((32 * 1024..=128 * 1024).contains(&avg), "average chunk {avg} bytes");
    }

    #[test]
    fn empty_and_tiny_inputs() {
        assert_eq!(Chunker::new(&[][..]).count(), 0);
        let one: Vec<Chunk> = Chunker::new(&b"x"[..]).collect::<io::Result<_>>().expect("chunks");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].bytes, b"x");
    }

    #[test]
    fn cut_points_do_not_depend_on_read_sizes() {
        /// A reader that returns at most 1000 bytes per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1000).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let data = pseudo_random(1024 * 1024, 3);
        let a: Vec<ChunkHash> = Chunker::new(data.as_slice()).map(|c| c.expect("chunk").hash).collect();
        let b: Vec<ChunkHash> = Chunker::new(Trickle(&data)).map(|c| c.expect("chunk").hash).collect();
        assert_eq!(a, b);
    }
}
