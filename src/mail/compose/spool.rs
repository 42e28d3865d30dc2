//! Spooling of input whose size is not known in advance (a message or a
//! text body on standard input): line endings made CRLF as it is read, kept
//! in memory up to [`MEMORY_LIMIT`], beyond that in an unlinked temporary
//! file, so memory use does not grow with the input.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// Inputs up to this size stay in memory.
pub const MEMORY_LIMIT: usize = 1 << 20;

/// Where spooled input lives.
#[derive(Debug)]
pub enum Spool {
    /// Small inputs stay in memory.
    Memory(Vec<u8>),
    /// Larger inputs go to an unlinked temporary file.
    File(File),
}

impl Spool {
    /// Reads at `offset` like `pread`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            Spool::Memory(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                Ok(n)
            }
            Spool::File(file) => file.read_at(buf, offset),
        }
    }

    /// Fills `buf` from `offset` as far as the spool goes; returns how many
    /// bytes were read (fewer than `buf.len()` only at the end).
    pub fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

/// Reads `input` to its end a buffer at a time, handing each piece to
/// `each`; a read interrupted by a signal is retried, any other read error
/// goes through `read_error`.
pub fn for_each_chunk<E>(
    input: &mut dyn Read,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
    read_error: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => each(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
}

/// A new temporary file, readable and writable by this process only and
/// without a name (or unlinked at once): its data disappears with the
/// process.
pub fn temp_file() -> io::Result<File> {
    if let Some(file) = crate::store::durable::create_unnamed(&std::env::temp_dir())? {
        return Ok(file);
    }
    let mut random = [0u8; 12];
    crate::crypto::random_bytes(&mut random)?;
    let path = std::env::temp_dir().join(format!(
        ".mailctl-spool-{}-{}",
        std::process::id(),
        crate::proto::sasl::hex(&random)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(crate::store::durable::NO_FOLLOW)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// Spooled input: where it is, its length and whether any byte is above 127.
#[derive(Debug)]
pub struct Spooled {
    /// The bytes (CRLF line endings, ending with CRLF unless empty).
    pub spool: Spool,
    /// How many bytes.
    pub len: u64,
    /// Whether any byte is above 127.
    pub eight_bit: bool,
}

/// Receives input in pieces, makes every line ending (CRLF, bare LF, bare
/// CR) CRLF, and stores the result in memory or, past [`MEMORY_LIMIT`],
/// in a temporary file.
#[derive(Debug, Default)]
pub struct SpoolWriter {
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
    pending_cr: bool,
    eight_bit: bool,
    /// Whether the bytes stored so far end with CRLF.
    last_crlf: bool,
    chunk: Vec<u8>,
}

impl SpoolWriter {
    /// An empty spool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends input, making every line ending CRLF; returns the bytes
    /// stored for it (a CR at the end of `input` is held back until the
    /// next byte tells whether an LF follows).
    pub fn push(&mut self, input: &[u8]) -> io::Result<&[u8]> {
        self.chunk.clear();
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                self.chunk.extend_from_slice(b"\r\n");
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.chunk.extend_from_slice(b"\r\n"),
                _ => {
                    self.eight_bit |= b >= 0x80;
                    self.chunk.push(b);
                }
            }
        }
        let chunk = std::mem::take(&mut self.chunk);
        let result = self.store(&chunk);
        self.chunk = chunk;
        result.map(|()| &self.chunk[..])
    }

    /// Ends the input: a held-back CR, or a last line without a line
    /// ending, gets its CRLF. Returns the bytes stored for it.
    pub fn end_line(&mut self) -> io::Result<&'static [u8]> {
        let tail: &'static [u8] = if self.pending_cr || (self.len > 0 && !self.last_crlf) {
            b"\r\n"
        } else {
            b""
        };
        self.pending_cr = false;
        self.store(tail)?;
        Ok(tail)
    }

    fn store(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.last_crlf = bytes.ends_with(b"\r\n");
        self.len += bytes.len() as u64;
        if self.file.is_none() && self.memory.len() + bytes.len() > MEMORY_LIMIT {
            let mut file = temp_file()?;
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes),
            None => {
                self.memory.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Ends the input (see [`SpoolWriter::end_line`]) and hands back the
    /// spool. The message then ends with a complete line, so its size is
    /// exact.
    pub fn finish(mut self) -> io::Result<Spooled> {
        self.end_line()?;
        let spool = match self.file {
            Some(mut file) => {
                file.flush()?;
                Spool::File(file)
            }
            None => Spool::Memory(self.memory),
        };
        Ok(Spooled {
            spool,
            len: self.len,
            eight_bit: self.eight_bit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool_in_pieces(input: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>) {
        let mut writer = SpoolWriter::new();
        let mut seen = Vec::new();
        for chunk in input.chunks(piece) {
            seen.extend_from_slice(writer.push(chunk).unwrap());
        }
        seen.extend_from_slice(writer.end_line().unwrap());
        let spooled = writer.finish().unwrap();
        let mut out = vec![0u8; spooled.len as usize];
        assert_eq!(spooled.spool.read_full_at(&mut out, 0).unwrap(), out.len());
        (out, seen)
    }

    #[test]
    fn line_endings_whatever_the_pieces() {
        let input = b"a\nb\r\nc\rd\r\r\n\n\re";
        for piece in 1..=input.len() {
            let (out, seen) = spool_in_pieces(input, piece);
            assert_eq!(
                out, b"a\r\nb\r\nc\r\nd\r\n\r\n\r\n\r\ne\r\n",
                "piece {piece}"
            );
            assert_eq!(seen, out, "piece {piece}");
        }
        assert_eq!(spool_in_pieces(b"x\r", 1).0, b"x\r\n");
        assert_eq!(spool_in_pieces(b"", 1).0, b"");
    }

    #[test]
    fn large_input_moves_to_a_file() {
        let mut writer = SpoolWriter::new();
        let line = [b'x'; 1023];
        for _ in 0..2048 {
            writer.push(&line).unwrap();
            writer.push(b"\n").unwrap();
        }
        let spooled = writer.finish().unwrap();
        assert!(matches!(spooled.spool, Spool::File(_)));
        assert_eq!(spooled.len, 2048 * 1025);
        assert!(!spooled.eight_bit);
        let mut tail = [0u8; 3];
        spooled
            .spool
            .read_full_at(&mut tail, spooled.len - 3)
            .unwrap();
        assert_eq!(&tail, b"x\r\n");
    }
}
