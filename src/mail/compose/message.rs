//! A message ready to send, held as a sequence of segments so that large
//! parts never sit in memory: bytes built in memory, attachments whose
//! base64 is produced from the file while writing, large text bodies encoded
//! from their spool while writing, and ranges of a spooled input.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Input bytes per base64 line: 57 bytes become 76 characters (RFC 2045
/// section 6.8).
pub const BASE64_LINE_INPUT: usize = 57;

use super::spool::for_each_chunk;
pub use super::spool::Spool;
use super::text::{Base64Lines, SpooledText};

/// One piece of a message.
#[derive(Clone, Debug)]
pub enum Segment {
    /// Bytes written as they are.
    Bytes(Vec<u8>),
    /// A file written as base64 in 76-column lines separated by CRLF (no
    /// CRLF after the last line); `len` is the file size when the message
    /// was built.
    Base64File {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
    /// A spooled text body, written with its transfer encoding.
    Text(Arc<SpooledText>),
    /// A range of a spooled input, written as it is.
    Spooled {
        /// The spool.
        spool: Arc<Spool>,
        /// Where the range starts.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

/// The exact size of a file's base64 in 76-column lines joined by CRLF.
pub fn base64_lines_len(len: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    let chars = len.div_ceil(3) * 4;
    let lines = len.div_ceil(BASE64_LINE_INPUT as u64);
    chars + 2 * (lines - 1)
}

impl Segment {
    /// The number of bytes this segment writes.
    pub fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::Base64File { len, .. } => base64_lines_len(*len),
            Segment::Text(text) => text.encoded_len(),
            Segment::Spooled { len, .. } => *len,
        }
    }

    /// Whether the segment writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the segment. Errors writing to `out` are returned as they are
    /// (they concern the connection); errors reading local files are
    /// [`Error::Io`](crate::mail::Error::Io) failures.
    fn write_to(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        match self {
            Segment::Bytes(b) => out.write_all(b)?,
            Segment::Base64File { path, len } => write_base64_file(path, *len, out)?,
            Segment::Text(text) => text.write_encoded(out)?,
            Segment::Spooled { spool, offset, len } => {
                let mut buf = vec![0u8; 64 * 1024];
                let mut done = 0u64;
                while done < *len {
                    let want = buf.len().min((*len - done) as usize);
                    let n = spool
                        .read_at(&mut buf[..want], offset + done)
                        .map_err(|e| {
                            crate::mail::local_io(format!("reading the spooled message: {e}"))
                        })?;
                    if n == 0 {
                        return Err(crate::mail::local_io("the spooled message was truncated"));
                    }
                    out.write_all(&buf[..n])?;
                    done += n as u64;
                }
            }
        }
        Ok(())
    }
}

fn write_base64_file(path: &PathBuf, len: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    let local = |e: io::Error| crate::mail::local_io(format!("{}: {e}", path.display()));
    let changed = || {
        crate::mail::local_io(format!(
            "{}: the file changed size while being sent ({len} bytes expected)",
            path.display()
        ))
    };
    let file = File::open(path).map_err(local)?;
    let mut encoder = Base64Lines::joined();
    let mut output = Vec::new();
    let mut total = 0u64;
    let each = |chunk: &[u8]| -> anyhow::Result<()> {
        total += chunk.len() as u64;
        if total > len {
            return Err(changed());
        }
        output.clear();
        encoder.push(chunk, &mut output);
        out.write_all(&output)?;
        Ok(())
    };
    // One byte more than expected is enough to see the file grew.
    for_each_chunk(&mut file.take(len + 1), each, local)?;
    if total != len {
        return Err(changed());
    }
    output.clear();
    encoder.finish(&mut output);
    out.write_all(&output)?;
    Ok(())
}

/// A complete message: header and body, CRLF line endings.
#[derive(Clone, Debug, Default)]
pub struct Message {
    segments: Vec<Segment>,
    eight_bit: bool,
    message_id: Option<String>,
    counter: ByteCounter,
}

/// Told how many bytes of the message were written, as they are (for a
/// progress bar); does nothing when unset.
#[derive(Clone, Default)]
pub struct ByteCounter(Option<Arc<dyn Fn(u64) + Send + Sync>>);

impl std::fmt::Debug for ByteCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ByteCounter(set)"
        } else {
            "ByteCounter(unset)"
        })
    }
}

/// A writer that tells a [`ByteCounter`] what passes through it.
struct Counted<'a> {
    out: &'a mut dyn Write,
    count: &'a (dyn Fn(u64) + Send + Sync),
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        (self.count)(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Message {
    /// A message from its segments.
    pub fn from_segments(segments: Vec<Segment>, message_id: Option<String>) -> Self {
        let eight_bit = segments.iter().any(|s| match s {
            Segment::Bytes(b) => !b.is_ascii(),
            _ => false,
        });
        Message {
            segments,
            eight_bit,
            message_id,
            counter: ByteCounter::default(),
        }
    }

    /// A message held in memory, already with CRLF line endings.
    pub fn from_bytes(bytes: Vec<u8>, message_id: Option<String>) -> Self {
        Self::from_segments(vec![Segment::Bytes(bytes)], message_id)
    }

    /// Has `count` told the bytes of the message as [`Message::write_to`]
    /// writes them (`None`: not told).
    pub fn count_bytes_with(&mut self, count: Option<Arc<dyn Fn(u64) + Send + Sync>>) {
        self.counter = ByteCounter(count);
    }

    /// Marks the message as containing 8-bit data (for spooled input).
    pub fn set_eight_bit(&mut self, eight_bit: bool) {
        self.eight_bit = eight_bit;
    }

    /// The exact size in bytes (the SIZE of RFC 1870).
    pub fn size(&self) -> u64 {
        self.segments.iter().map(Segment::len).sum()
    }

    /// Whether any byte is above 127 (BODY=8BITMIME is then asked for).
    pub fn eight_bit(&self) -> bool {
        self.eight_bit
    }

    /// The Message-ID, without angle brackets, if known.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Writes the whole message. Write errors on `out` come back as I/O
    /// errors; a local file that cannot be read, or changed size since the
    /// message was built, is an [`Error::Io`](crate::mail::Error::Io) failure.
    pub fn write_to(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut counted;
        let out: &mut dyn Write = match &self.counter.0 {
            Some(count) => {
                counted = Counted {
                    out,
                    count: count.as_ref(),
                };
                &mut counted
            }
            None => out,
        };
        for segment in &self.segments {
            segment.write_to(out)?;
        }
        Ok(())
    }

    /// The whole message in memory (for tests and `--dry-run` of small
    /// messages).
    pub fn to_vec(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size() as usize);
        self.write_to(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;

    #[test]
    fn byte_counter_is_told_every_byte_written() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let told = Arc::new(AtomicU64::new(0));
        let mut message = Message::from_bytes(b"Subject: x\r\n\r\nbody\r\n".to_vec(), None);
        let sum = told.clone();
        message.count_bytes_with(Some(Arc::new(move |n| {
            sum.fetch_add(n, Ordering::Relaxed);
        })));
        let bytes = message.to_vec().unwrap();
        assert_eq!(told.load(Ordering::Relaxed), bytes.len() as u64);
        assert_eq!(bytes.len() as u64, message.size());
    }

    #[test]
    fn base64_file_lines_and_size() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0usize,
            1,
            2,
            3,
            56,
            57,
            58,
            114,
            1000,
            57 * 1024,
            57 * 1024 + 1,
            200_000,
        ] {
            let path = dir.path().join(format!("f{len}"));
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            let seg = Segment::Base64File {
                path: path.clone(),
                len: len as u64,
            };
            let msg = Message::from_segments(vec![seg], None);
            let out = msg.to_vec().unwrap();
            assert_eq!(out.len() as u64, msg.size(), "len {len}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.split("\r\n").all(|l| l.len() <= 76));
            assert!(!text.ends_with("\r\n"));
            let decoded = BASE64.decode(text.replace("\r\n", "")).unwrap();
            assert_eq!(decoded, data);
        }
    }

    #[test]
    fn file_changed_size_is_a_local_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abcdef").unwrap();
        for len in [5u64, 7] {
            let msg = Message::from_segments(
                vec![Segment::Base64File {
                    path: path.clone(),
                    len,
                }],
                None,
            );
            let err = msg.to_vec().unwrap_err();
            assert!(matches!(
                crate::mail::kind_of(&err),
                Some(crate::mail::Error::Io(_))
            ));
        }
    }

    #[test]
    fn spooled_ranges() {
        let spool = Arc::new(Spool::Memory(b"0123456789".to_vec()));
        let msg = Message::from_segments(
            vec![
                Segment::Bytes(b"ab".to_vec()),
                Segment::Spooled {
                    spool,
                    offset: 3,
                    len: 4,
                },
            ],
            None,
        );
        assert_eq!(msg.size(), 6);
        assert_eq!(msg.to_vec().unwrap(), b"ab3456");
    }
}
