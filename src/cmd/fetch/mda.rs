//! `--mda CMD`: each message is handed to a mail delivery agent (procmail,
//! maildrop, dovecot-lda, a script) on its standard input.
//!
//! The command runs through `/bin/sh -c`, once per message, with the
//! message streamed to it exactly as received (after POP3 dot-unstuffing,
//! CRLF line endings as the server sent them). A message counts as
//! delivered only when the command exits 0; deliveries never overlap, so
//! they happen in message order and a failure stops every later one. A
//! command that exits 0 without reading all of its input has still
//! delivered the message (as with any filter that decides from the
//! header alone).
//!
//! With `lf`, each CRLF becomes LF on the way (procmail and maildrop
//! expect Unix line endings); nothing else changes.
//!
//! If the message cannot be finished (the connection broke), the command
//! is sent SIGTERM before its input is closed, so that it does not take
//! the truncated message for a whole one. Only the shell's own process
//! gets the signal: a command such as `spamc | procmail` should end with
//! `exec` in a script of its own if that matters.
//!
//! The command's standard output goes to our standard error, so that
//! `--json` on standard output stays clean; its standard error is ours.
//! Its environment says which message it gets (`MAILCTL_NUMBER`,
//! `MAILCTL_SIZE`, `MAILCTL_UIDL`, `MAILCTL_SERVER`, `MAILCTL_USER`) and
//! never holds the password.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use super::sink::{local_error, Commit, Done, Meta, Saved, Sink};
use crate::exit::{fail, Exit};
use crate::text::printable;

/// Where `--json` says a delivered message went.
pub const LOCATION: &str = "mda";

/// The shell that runs the command.
const SHELL: &str = "/bin/sh";

/// `--mda CMD`: one run of `CMD` per message.
pub struct MdaSink {
    command: String,
    server: String,
    user: String,
    /// Variables removed from the command's environment: the password's.
    hidden: Vec<OsString>,
    /// Whether CRLF becomes LF.
    lf: bool,
    current: Option<Delivery>,
}

/// The command receiving the current message.
struct Delivery {
    child: Child,
    /// `None` once the command stopped reading (or the message ended).
    stdin: Option<BufWriter<ChildStdin>>,
    /// With `--mda-lf`: the line-ending conversion and its output buffer.
    lf: Option<(CrlfToLf, Vec<u8>)>,
}

impl Delivery {
    /// Writes to the command, converting line endings if asked. A command
    /// that stopped reading gets nothing more, and that is not an error:
    /// its exit status will say whether the message was delivered.
    fn send(&mut self, data: &[u8], last: bool) -> io::Result<()> {
        let Some(w) = self.stdin.as_mut() else {
            return Ok(());
        };
        let result = match &mut self.lf {
            Some((conv, buf)) => {
                buf.clear();
                conv.convert(data, buf);
                if last {
                    conv.finish(buf);
                }
                w.write_all(buf)
            }
            None => w.write_all(data),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                // Unwritten bytes are dropped, not flushed.
                drop(self.stdin.take().map(BufWriter::into_parts));
                Ok(())
            }
            other => other,
        }
    }
}

/// Turns each CRLF into LF, keeping any other CR; the result does not
/// depend on how the input is cut into chunks.
#[derive(Debug, Default)]
pub struct CrlfToLf {
    pending_cr: bool,
}

impl CrlfToLf {
    /// Converts `input`, appending to `out`; a final CR is held back.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if std::mem::take(&mut self.pending_cr) && b != b'\n' {
                out.push(b'\r');
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Ends the input: a CR held back is written.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

impl MdaSink {
    /// Prepares to run `command` for messages from `user` at `server`.
    /// `hidden` names environment variables the command must not see
    /// (`MAILCTL_PASSWORD` is always among them). With `lf`, CRLF line
    /// endings become LF.
    pub fn new(
        command: &str,
        lf: bool,
        server: String,
        user: String,
        hidden: impl IntoIterator<Item = OsString>,
    ) -> anyhow::Result<Self> {
        if command.trim().is_empty() {
            return Err(fail(Exit::Usage, "--mda needs a command"));
        }
        let mut hidden: Vec<OsString> = hidden.into_iter().collect();
        hidden.push(crate::secret::PASSWORD_ENV.into());
        Ok(MdaSink {
            command: command.to_string(),
            server,
            user,
            hidden,
            lf,
            current: None,
        })
    }

    /// The command as error messages show it.
    fn shown(&self) -> String {
        format!("mda '{}'", printable(self.command.as_bytes()))
    }

    /// Builds the command line and environment for one message.
    fn command_for(&self, meta: &Meta) -> Command {
        let mut cmd = Command::new(SHELL);
        cmd.arg("-c").arg("--").arg(&self.command);
        for var in &self.hidden {
            cmd.env_remove(var);
        }
        cmd.env("MAILCTL_NUMBER", meta.number.to_string())
            .env("MAILCTL_SIZE", meta.size.to_string())
            .env("MAILCTL_SERVER", &self.server)
            .env("MAILCTL_USER", &self.user);
        // Never an inherited value that would describe another message.
        match meta.uidl.as_deref().filter(|u| !u.contains('\0')) {
            Some(uidl) => cmd.env("MAILCTL_UIDL", uidl),
            None => cmd.env_remove("MAILCTL_UIDL"),
        };
        // Standard output joins our standard error; with none open, it is
        // discarded.
        let stdout = io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_or_else(|_| Stdio::null(), Stdio::from);
        cmd.stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::inherit());
        cmd
    }

    /// Why the command's exit means the message was not delivered, or
    /// `None` when it was.
    fn judge(&self, status: ExitStatus) -> Option<anyhow::Error> {
        let (exit, what) = match (status.code(), status.signal()) {
            (Some(0), _) => return None,
            (Some(code), _) => (
                Exit::from_sysexits(code).unwrap_or(Exit::IoErr),
                format!("exited with status {code}{}", hint(code)),
            ),
            (None, Some(signal)) => (
                Exit::IoErr,
                format!("was killed by signal {signal}{}", signal_name(signal)),
            ),
            (None, None) => (Exit::IoErr, format!("ended with {status}")),
        };
        Some(fail(exit, format!("{} {what}", self.shown())))
    }

    /// Stops the current command, if any, without letting it deliver a
    /// partial message: it is sent SIGTERM before its input is closed.
    fn kill_current(&mut self) {
        if let Some(mut d) = self.current.take() {
            terminate(&d.child);
            if let Some(w) = d.stdin.take() {
                // Unwritten bytes are dropped, not flushed.
                drop(w.into_parts());
            }
            let _ = d.child.wait();
        }
    }
}

/// Sends SIGTERM (which lets procmail and its kin remove their lock files,
/// unlike the SIGKILL of `Child::kill`) to a child not yet waited for.
fn terminate(child: &Child) {
    use rustix::process::{kill_process, Pid};
    // The child has not been waited for, so its pid cannot belong to
    // another process yet.
    let _ = kill_process(Pid::from_child(child), rustix::process::Signal::TERM);
}

/// The name of a common signal, for messages.
fn signal_name(signal: i32) -> &'static str {
    use signal_hook::consts::*;
    match signal {
        SIGHUP => " (SIGHUP)",
        SIGINT => " (SIGINT)",
        SIGABRT => " (SIGABRT)",
        SIGKILL => " (SIGKILL)",
        SIGSEGV => " (SIGSEGV)",
        SIGPIPE => " (SIGPIPE)",
        SIGTERM => " (SIGTERM)",
        _ => "",
    }
}

/// A word on the shell's own statuses.
fn hint(code: i32) -> &'static str {
    match code {
        126 => " (command not executable)",
        127 => " (command not found)",
        _ => "",
    }
}

impl Sink for MdaSink {
    fn begin(&mut self, meta: &Meta) -> anyhow::Result<()> {
        self.kill_current();
        let mut child = self.command_for(meta).spawn().map_err(|e| {
            fail(
                Exit::OsErr,
                format!("{}: cannot start {SHELL}: {e}", self.shown()),
            )
        })?;
        let stdin = child
            .stdin
            .take()
            .map(|s| BufWriter::with_capacity(64 * 1024, s));
        self.current = Some(Delivery {
            child,
            stdin,
            lf: self.lf.then(|| (CrlfToLf::default(), Vec::new())),
        });
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let shown = self.shown();
        let d = self.current.as_mut().expect("message begun");
        d.send(data, false)
            .map_err(|e| local_error(e, format!("writing to {shown}"), false))
    }

    fn finish(&mut self) -> anyhow::Result<Box<dyn Commit>> {
        let shown = self.shown();
        let d = self.current.as_mut().expect("message begun");
        if let Err(e) = d.send(&[], true) {
            self.kill_current();
            return Err(local_error(e, format!("writing to {shown}"), false));
        }
        let mut d = self.current.take().expect("message begun");
        if let Some(w) = d.stdin.take() {
            match w.into_inner() {
                // Dropping the pipe is the end of the message.
                Ok(pipe) => drop(pipe),
                Err(e) if e.error().kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => {
                    let err = local_error(e.into_error(), format!("writing to {shown}"), false);
                    self.current = Some(d);
                    self.kill_current();
                    return Err(err);
                }
            }
        }
        let status = d
            .child
            .wait()
            .map_err(|e| local_error(e, format!("waiting for {shown}"), false))?;
        if let Some(err) = self.judge(status) {
            return Err(err);
        }
        Ok(Box::new(Done(Saved {
            location: LOCATION.into(),
            warning: None,
        })))
    }

    fn abort(&mut self) {
        self.kill_current();
    }

    fn parallel(&self) -> bool {
        false
    }
}

impl Drop for MdaSink {
    fn drop(&mut self) {
        self.kill_current();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::exit_status;

    fn sink(command: &str) -> MdaSink {
        MdaSink::new(
            command,
            false,
            "pop.example.org:995".into(),
            "me".into(),
            [],
        )
        .unwrap()
    }

    fn meta(number: u32) -> Meta {
        Meta {
            number,
            uidl: Some(format!("uid-{number}")),
            size: 3,
        }
    }

    fn deliver(sink: &mut MdaSink, number: u32, data: &[u8]) -> anyhow::Result<Saved> {
        sink.begin(&meta(number))?;
        for chunk in data.chunks(7) {
            sink.write(chunk)?;
        }
        sink.finish()?.run()
    }

    #[test]
    fn exit_zero_is_delivered() {
        let saved = deliver(&mut sink("cat >/dev/null"), 1, b"abc\r\n").unwrap();
        assert_eq!(saved.location, "mda");
    }

    #[test]
    fn statuses_decide_the_exit() {
        let err = deliver(&mut sink("cat >/dev/null; exit 75"), 1, b"x").unwrap_err();
        assert_eq!(exit_status(&err), Exit::TempFail);
        assert_eq!(
            err.to_string(),
            "mda 'cat >/dev/null; exit 75' exited with status 75"
        );
        let err = deliver(&mut sink("exit 1"), 1, b"x").unwrap_err();
        assert_eq!(exit_status(&err), Exit::IoErr);
        let err = deliver(&mut sink("exec no-such-mda-here 2>/dev/null"), 1, b"x").unwrap_err();
        assert_eq!(exit_status(&err), Exit::IoErr);
        assert!(err.to_string().ends_with("(command not found)"), "{err}");
        let err = deliver(&mut sink("kill -KILL $$"), 1, b"x").unwrap_err();
        assert_eq!(exit_status(&err), Exit::IoErr);
        assert!(
            err.to_string()
                .ends_with("was killed by signal 9 (SIGKILL)"),
            "{err}"
        );
    }

    #[test]
    fn a_command_that_stops_reading_decides_by_its_status() {
        let big = vec![b'x'; 1 << 20];
        deliver(&mut sink("head -c 10 >/dev/null"), 1, &big).unwrap();
        deliver(&mut sink("true"), 1, &big).unwrap();
        let err = deliver(&mut sink("head -c 10 >/dev/null; exit 73"), 1, &big).unwrap_err();
        assert_eq!(exit_status(&err), Exit::CantCreate);
    }

    #[test]
    fn abort_stops_the_command_before_its_input_ends() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let command = format!(
            "trap 'exit 75' TERM; cat > '{}'; echo done >> '{}'",
            out.display(),
            out.display()
        );
        let mut s = sink(&command);
        s.begin(&meta(1)).unwrap();
        s.write(b"partial").unwrap();
        s.abort();
        let written = std::fs::read(&out).unwrap_or_default();
        assert!(!written.ends_with(b"done\n"), "{written:?}");
    }

    #[test]
    fn crlf_to_lf_in_any_chunking() {
        let input = b"a\r\nb\rc\r\r\n\nd\r";
        for chunk in 1..=input.len() {
            let mut conv = CrlfToLf::default();
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                conv.convert(piece, &mut out);
            }
            conv.finish(&mut out);
            assert_eq!(out, b"a\nb\rc\r\n\nd\r", "chunk {chunk}");
        }
    }

    #[test]
    fn lf_reaches_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let command = format!("cat > '{}'", out.display());
        let mut s = MdaSink::new(&command, true, String::new(), String::new(), []).unwrap();
        deliver(&mut s, 1, b"Subject: x\r\n\r\nbody\r\nlast\r").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"Subject: x\n\nbody\nlast\r");
    }

    /// Rust ignores SIGPIPE in its own process (so a command that stops
    /// reading cannot kill mailctl); the command gets the default back.
    #[test]
    #[cfg_attr(not(target_os = "linux"), ignore = "reads Linux's /proc/self/status")]
    fn the_command_does_not_inherit_an_ignored_sigpipe() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ignored");
        let command = format!(
            "cat >/dev/null; grep '^SigIgn:' /proc/self/status > '{}'",
            out.display()
        );
        deliver(&mut sink(&command), 1, b"x").unwrap();
        let line = std::fs::read_to_string(&out).unwrap();
        let mask = u64::from_str_radix(line.trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(
            mask & (1 << (signal_hook::consts::SIGPIPE - 1)),
            0,
            "{line}"
        );
    }

    #[test]
    fn empty_command_is_a_usage_error() {
        let err = MdaSink::new("  ", false, String::new(), String::new(), [])
            .err()
            .unwrap();
        assert_eq!(exit_status(&err), Exit::Usage);
    }
}
