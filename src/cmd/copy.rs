//! `--save-copy maildir:DIR` / `mbox:FILE` (and the `save_copy` key): a
//! copy of each message the server accepted, written durably with the same
//! Maildir and mbox writers as `fetch` (locks, fsync, link into place).

use std::path::Path;

use super::fetch::sink::{MaildirSink, MboxSink, Meta, Sink};
use crate::exit::{fail, Exit};
use crate::mail::compose::Message;

/// Where a sent copy goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyTarget {
    /// A Maildir (created if missing): the message byte for byte.
    Maildir(String),
    /// An mbox file (mboxrd, under the usual locks).
    Mbox(String),
}

/// Parses `maildir:DIR` or `mbox:FILE`; a usage error (64) otherwise.
pub fn parse_target(spec: &str) -> anyhow::Result<CopyTarget> {
    match spec.split_once(':') {
        Some(("maildir", dir)) if !dir.is_empty() => Ok(CopyTarget::Maildir(dir.to_string())),
        Some(("mbox", file)) if !file.is_empty() => Ok(CopyTarget::Mbox(file.to_string())),
        _ => Err(fail(
            Exit::Usage,
            format!(
                "save copy '{}': expected maildir:DIR or mbox:FILE",
                crate::text::printable(spec.as_bytes())
            ),
        )),
    }
}

/// Writes `message` to `target` and syncs it.
pub fn save_copy(target: &CopyTarget, message: &Message) -> anyhow::Result<()> {
    let mut sink: Box<dyn Sink> = match target {
        CopyTarget::Maildir(dir) => Box::new(MaildirSink::open(Path::new(dir))?),
        CopyTarget::Mbox(file) => Box::new(MboxSink::open(Path::new(file), None)?),
    };
    sink.begin(&Meta {
        number: 1,
        uidl: None,
        size: message.size(),
    })?;
    let mut writer = SinkWriter {
        sink: sink.as_mut(),
        failed: None,
    };
    let written = message.write_to(&mut writer);
    if let Some(err) = writer.failed.take() {
        sink.abort();
        return Err(err);
    }
    if let Err(err) = written {
        sink.abort();
        return Err(err);
    }
    sink.finish()?.run()?;
    Ok(())
}

/// Lets [`Message::write_to`] write into a [`Sink`].
struct SinkWriter<'a> {
    sink: &'a mut dyn Sink,
    /// The sink's own error, kept whole (with its exit status).
    failed: Option<anyhow::Error>,
}

impl std::io::Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.sink.write(buf) {
            Ok(()) => Ok(buf.len()),
            Err(err) => {
                let text = format!("{err:#}");
                self.failed = Some(err);
                Err(std::io::Error::other(text))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("maildir:/tmp/sent").unwrap(),
            CopyTarget::Maildir("/tmp/sent".into())
        );
        assert_eq!(
            parse_target("mbox:sent.mbox").unwrap(),
            CopyTarget::Mbox("sent.mbox".into())
        );
        for bad in ["sent", "maildir:", "imap:x"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
