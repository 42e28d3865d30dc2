//! `mailctl sendmail` and a `sendmail` symlink: the sendmail(8) interface
//! that cron, mutt and `git send-email` use. The message comes on stdin,
//! recipients as arguments; it is submitted over the account's SMTP server.
//!
//! sendmail's option syntax (`-fADDR`, `-oi`, `-FName`, clustered flags) does
//! not fit clap, so [`SendmailInvocation::parse`] reads the arguments by hand.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use mail_parser::{HeaderName, MessageParser};

use super::Globals;
use crate::cli::ConnectArgs;
use crate::config::{self, ResolvedServer};
use crate::exit::{fail, Exit};
use crate::mail::compose::spool::{for_each_chunk, SpoolWriter, Spooled};
use crate::mail::compose::{Message, Segment};
use crate::mail::raw::MAX_HEADER;
use crate::net::smtp::Envelope;

/// Options of `mailctl sendmail`: everything after it, read the sendmail way.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "mailctl sendmail [-t] [-i] [-f ADDR] [-F NAME] [--account NAME] [--] [RECIPIENT...]",
    after_help = SENDMAIL_HELP
)]
pub struct SendmailArgs {
    /// sendmail options and recipients (see below).
    #[arg(
        value_name = "ARGS",
        num_args = 0..,
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub args: Vec<OsString>,

    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// The help text shared by `mailctl sendmail --help` and the man page.
const SENDMAIL_HELP: &str = "\
Options (sendmail syntax; a value may follow the letter directly, as in -fADDR):
  -t              also send to the To, Cc and Bcc addresses of the message
  -i, -oi         a line holding a single dot does not end the message
  -f ADDR         envelope sender (default: the account's `from`, then the
                  message's From); -r ADDR is the same
  -F NAME         full name for the From header added when there is none
  -C FILE         configuration file (like --config)
  -v              print the SMTP transcript on stderr
  --account NAME  account to send through (default: MAILCTL_ACCOUNT, then the
                  file's default account)
  --              everything after it is a recipient
Ignored: -oem -oep -odi -odb -om -B TYPE -N DSN -R RET -V ENVID -X FILE -L TAG
  -h N -O OPT=VAL -U -G -m -n -p PROTO -A FILE -bm.
Refused: -bs, -bp, -bd, -bi, -bv, -bt, -q (mailctl has no queue or daemon).

Any Bcc header is removed before sending; a missing From, Date or Message-ID
header is added.

Examples:
  echo 'Subject: hi' | mailctl sendmail -i alice@example.org
  git send-email --sendmail-cmd='mailctl sendmail' --to=list@example.org 0001-*.patch
  ln -s \"$(command -v mailctl)\" ~/bin/sendmail     # for cron, mutt, mail(1)
  # muttrc:  set sendmail = \"mailctl sendmail --account work\"";

/// A parsed sendmail command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendmailInvocation {
    /// Recipients given as arguments (bare addresses).
    pub recipients: Vec<String>,
    /// `-t`: also take recipients from To, Cc and Bcc.
    pub recipients_from_headers: bool,
    /// `-i` / `-oi`: a lone `.` line is data, not the end of the message.
    pub ignore_dots: bool,
    /// `-f ADDR` / `-r ADDR`: the envelope sender (`""` for `<>`).
    pub envelope_from: Option<String>,
    /// `-F NAME`: full name for an added From header.
    pub full_name: Option<String>,
    /// `--account NAME`.
    pub account: Option<String>,
    /// `-C FILE` / `--config FILE`.
    pub config: Option<PathBuf>,
    /// `-v`.
    pub verbose: bool,
}

/// Options that take no value and change nothing.
const IGNORED_FLAGS: &[char] = &['m', 'n', 'U', 'G', 'x', 'E'];
/// Options that take a value and change nothing.
const IGNORED_WITH_VALUE: &[char] = &['B', 'N', 'R', 'V', 'X', 'L', 'h', 'O', 'p', 'A', 'd'];

impl SendmailInvocation {
    /// Parses sendmail-style arguments (without the program name).
    ///
    /// Errors are usage errors (exit 64) naming the option.
    pub fn parse<I, S>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut args = args
            .into_iter()
            .map(|a| {
                a.into().into_string().map_err(|a| {
                    fail(
                        Exit::Usage,
                        format!("argument is not valid UTF-8: {}", a.to_string_lossy()),
                    )
                })
            })
            .collect::<anyhow::Result<Vec<String>>>()?
            .into_iter();
        let mut inv = SendmailInvocation::default();
        let mut only_recipients = false;
        while let Some(arg) = args.next() {
            if only_recipients || !arg.starts_with('-') || arg == "-" {
                inv.add_recipients(&arg)?;
                continue;
            }
            if arg == "--" {
                only_recipients = true;
                continue;
            }
            if let Some(long) = arg.strip_prefix("--") {
                inv.long_option(long, &mut args)?;
                continue;
            }
            let letters: Vec<char> = arg[1..].chars().collect();
            let mut i = 0;
            while i < letters.len() {
                let letter = letters[i];
                i += 1;
                let takes_value = matches!(letter, 'f' | 'r' | 'F' | 'C' | 'o' | 'b' | 'q')
                    || IGNORED_WITH_VALUE.contains(&letter);
                if !takes_value {
                    match letter {
                        't' => inv.recipients_from_headers = true,
                        'i' => inv.ignore_dots = true,
                        'v' => inv.verbose = true,
                        'I' => crate::bail_with!(
                            Exit::Usage,
                            "-I (rebuild the alias database) is not supported: mailctl has no aliases"
                        ),
                        c if IGNORED_FLAGS.contains(&c) => {}
                        c => crate::bail_with!(Exit::Usage, "unknown sendmail option -{c}"),
                    }
                    continue;
                }
                let attached: String = letters[i..].iter().collect();
                let value = if !attached.is_empty() {
                    attached
                } else if letter == 'q' {
                    String::new()
                } else {
                    args.next().ok_or_else(|| {
                        fail(
                            Exit::Usage,
                            format!("sendmail option -{letter} needs a value"),
                        )
                    })?
                };
                inv.valued_option(letter, value)?;
                break;
            }
        }
        Ok(inv)
    }

    fn long_option(
        &mut self,
        long: &str,
        rest: &mut impl Iterator<Item = String>,
    ) -> anyhow::Result<()> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let mut value = || {
            inline.clone().or_else(|| rest.next()).ok_or_else(|| {
                fail(
                    Exit::Usage,
                    format!("sendmail option --{name} needs a value"),
                )
            })
        };
        match name {
            "account" => self.account = Some(value()?),
            "config" => self.config = Some(PathBuf::from(value()?)),
            "read-recipients" => self.recipients_from_headers = true,
            "verbose" => self.verbose = true,
            _ => crate::bail_with!(Exit::Usage, "unknown sendmail option --{name}"),
        }
        Ok(())
    }

    fn valued_option(&mut self, letter: char, value: String) -> anyhow::Result<()> {
        match letter {
            'f' | 'r' => {
                refuse_controls(&value, "-f")?;
                let addr = config::address_of(&value).to_string();
                check_address(&addr, "-f")?;
                self.envelope_from = Some(addr);
            }
            'F' => {
                if value.chars().any(|c| c.is_control()) {
                    crate::bail_with!(Exit::Usage, "-F name holds a control character");
                }
                self.full_name = Some(value);
            }
            'C' => self.config = Some(PathBuf::from(value)),
            'o' if value == "i" => self.ignore_dots = true,
            'b' => match value.as_str() {
                "m" => {}
                "s" => crate::bail_with!(
                    Exit::Usage,
                    "-bs (SMTP on stdin) is not supported: pipe the message itself, or use `mailctl serve`"
                ),
                "p" => crate::bail_with!(
                    Exit::Usage,
                    "-bp (print the queue) is not supported: mailctl sends at once and keeps no queue"
                ),
                "d" | "D" => crate::bail_with!(
                    Exit::Usage,
                    "-b{value} (run as a daemon) is not supported: use `mailctl serve`"
                ),
                "i" => crate::bail_with!(
                    Exit::Usage,
                    "-bi (rebuild the alias database) is not supported: mailctl has no aliases"
                ),
                other => crate::bail_with!(
                    Exit::Usage,
                    "-b{other} is not supported: only -bm (send a message) is"
                ),
            },
            'q' => crate::bail_with!(
                Exit::Usage,
                "-q (process the queue) is not supported: mailctl sends at once and keeps no queue"
            ),
            _ => {} // IGNORED_WITH_VALUE
        }
        Ok(())
    }

    /// Adds the addresses of one argument (which may be a comma-separated
    /// list, with display names).
    fn add_recipients(&mut self, arg: &str) -> anyhow::Result<()> {
        for part in split_addresses(arg) {
            refuse_controls(&part, "recipient")?;
            let addr = config::address_of(&part).to_string();
            if addr.is_empty() {
                continue;
            }
            check_address(&addr, "recipient")?;
            self.recipients.push(addr);
        }
        Ok(())
    }
}

/// Refuses an argument holding CR, LF or other control characters.
fn refuse_controls(text: &str, what: &str) -> anyhow::Result<()> {
    if text.chars().any(char::is_control) {
        crate::bail_with!(
            Exit::Usage,
            "{what} '{}' is not a valid address (control character)",
            crate::text::printable(text.as_bytes())
        );
    }
    Ok(())
}

/// Refuses an address that could inject a command or a header.
fn check_address(addr: &str, what: &str) -> anyhow::Result<()> {
    if addr
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        crate::bail_with!(
            Exit::Usage,
            "{what} '{}' is not a valid address",
            crate::text::printable(addr.as_bytes())
        );
    }
    Ok(())
}

/// Splits `a@x, "Doe, J" <j@y>` at the commas outside quotes and brackets.
fn split_addresses(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in list.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// What to submit: the envelope and the message bytes as they will be sent
/// (line endings as read; the SMTP layer makes them CRLF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// MAIL FROM address (`""` for the null sender).
    pub envelope_from: String,
    /// RCPT TO addresses, without duplicates.
    pub recipients: Vec<String>,
    /// The message, Bcc removed, missing From/Date/Message-ID added.
    pub message: Vec<u8>,
}

/// Ends the input at a line holding a single dot (`.` then LF, CRLF or the
/// end of input), as sendmail does without `-i`; fed in pieces.
#[derive(Debug)]
struct LoneDot {
    line_start: bool,
    /// What is held back of a line that may be the lone dot: `.` or `.\r`.
    held: &'static [u8],
}

impl LoneDot {
    fn new() -> Self {
        LoneDot {
            line_start: true,
            held: b"",
        }
    }

    /// Appends to `out` what of `input` is message; `true` once the lone
    /// dot is found (nothing after it is message).
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            match (self.held, b) {
                (b".", b'\n') | (b".\r", b'\n') => return true,
                (b".", b'\r') => {
                    self.held = b".\r";
                    continue;
                }
                (b"", _) => {}
                (held, _) => {
                    out.extend_from_slice(held);
                    self.held = b"";
                }
            }
            if self.line_start && b == b'.' {
                self.held = b".";
                self.line_start = false;
                continue;
            }
            out.push(b);
            self.line_start = b == b'\n';
        }
        false
    }

    /// Ends the input: a held-back `.` alone on the last line ends the
    /// message, a `.\r` is message.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.held == b".\r" {
            out.extend_from_slice(self.held);
        }
        self.held = b"";
    }
}

/// Reads the message from `input`: up to end of input, or with no `-i` up
/// to a line holding a single dot (the traditional end of input; what
/// follows is read and dropped, as before). Line endings are made CRLF and
/// the message is spooled, to a temporary file when large.
pub fn read_message(input: &mut dyn Read, ignore_dots: bool) -> anyhow::Result<Spooled> {
    let local =
        |e: std::io::Error| fail(Exit::IoErr, format!("reading the message from stdin: {e}"));
    let mut writer = SpoolWriter::new();
    let mut dots = (!ignore_dots).then(LoneDot::new);
    let mut ended = false;
    let mut message = Vec::new();
    let each = |chunk: &[u8]| {
        // Input after the lone dot is read and dropped.
        if ended {
            return Ok(());
        }
        match &mut dots {
            None => writer.push(chunk).map(drop),
            Some(dots) => {
                message.clear();
                ended = dots.push(chunk, &mut message);
                writer.push(&message).map(drop)
            }
        }
        .map_err(local)
    };
    for_each_chunk(input, each, local)?;
    if let Some(dots) = &mut dots {
        if !ended {
            message.clear();
            dots.finish(&mut message);
            writer.push(&message).map_err(local)?;
        }
    }
    writer.finish().map_err(local)
}

/// Where the header fields of `message` end: at the blank line or the
/// first line that is neither a field nor a continuation (as
/// [`split_header`] reads it). `None` when every complete line is part of
/// the header.
fn header_section_len(message: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut in_field = false;
    while let Some(p) = message[pos..].iter().position(|&b| b == b'\n') {
        let end = pos + p + 1;
        let line = &message[pos..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t')) && in_field;
        if !continuation {
            if header_name(line).is_none() {
                return Some(pos);
            }
            in_field = true;
        }
        pos = end;
    }
    None
}

/// One header field: its name and its raw lines (continuations included).
struct Field<'a> {
    name: &'a str,
    raw: &'a [u8],
}

/// Splits a message into its header fields and the rest (starting at the
/// blank line, or at the first line that is not a header: a blank line is
/// then inserted, as sendmail does).
fn split_header(message: &[u8]) -> (Vec<Field<'_>>, Vec<u8>) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    let mut field_start: Option<(usize, &str)> = None;
    let eol = if message.windows(2).any(|w| w == b"\r\n") {
        &b"\r\n"[..]
    } else {
        &b"\n"[..]
    };
    let mut rest = Vec::new();
    loop {
        if pos >= message.len() {
            break;
        }
        let end = message[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |p| pos + p + 1);
        let line = &message[pos..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t')) && field_start.is_some();
        if !continuation {
            if let Some((start, name)) = field_start.take() {
                fields.push(Field {
                    name,
                    raw: &message[start..pos],
                });
            }
            match header_name(line) {
                Some(name) => field_start = Some((pos, name)),
                None => {
                    if line != b"\n" && line != b"\r\n" {
                        rest.extend_from_slice(eol);
                    }
                    rest.extend_from_slice(&message[pos..]);
                    return (fields, rest);
                }
            }
        }
        pos = end;
    }
    if let Some((start, name)) = field_start {
        fields.push(Field {
            name,
            raw: &message[start..],
        });
    }
    (fields, rest)
}

/// The field name if `line` starts a header field (RFC 5322 section 3.6.8:
/// printable ASCII except colon, then a colon).
fn header_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

/// Builds the submission: recipients from the arguments (and with `-t` the
/// headers), Bcc and Resent-Bcc removed, missing From/Date/Message-ID added.
///
/// `default_from` is the account's `from`, used as envelope sender when no
/// `-f` is given; `now` is the Date header value to add if needed.
pub fn prepare(
    inv: &SendmailInvocation,
    default_from: Option<&str>,
    message: &[u8],
    now: &str,
) -> anyhow::Result<Submission> {
    let (fields, rest) = split_header(message);
    let header_block: Vec<u8> = fields
        .iter()
        .flat_map(|f| f.raw.iter().copied())
        .chain(b"\r\n".iter().copied())
        .collect();
    let parsed = MessageParser::new().parse_headers(&header_block);
    let addresses_of = |name: HeaderName<'static>| -> Vec<String> {
        let mut out = Vec::new();
        if let Some(parsed) = &parsed {
            for value in parsed.header_values(name) {
                if let Some(list) = value.as_address() {
                    out.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
                }
            }
        }
        out
    };
    let mut recipients = inv.recipients.clone();
    if inv.recipients_from_headers {
        for name in [HeaderName::To, HeaderName::Cc, HeaderName::Bcc] {
            for addr in addresses_of(name) {
                check_address(&addr, "header address")
                    .map_err(|e| fail(Exit::DataErr, format!("{e:#}")))?;
                recipients.push(addr);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.to_ascii_lowercase()));
    if recipients.is_empty() {
        crate::bail_with!(
            Exit::Usage,
            "no recipients: give them as arguments, or use -t to read To, Cc and Bcc"
        );
    }
    let header_from = addresses_of(HeaderName::From).into_iter().next();
    let envelope_from = match (&inv.envelope_from, default_from, &header_from) {
        (Some(f), _, _) => f.clone(),
        (None, Some(f), _) => config::address_of(f).to_string(),
        (None, None, Some(f)) => f.clone(),
        (None, None, None) => crate::bail_with!(
            Exit::Config,
            "no sender: give -f ADDR, set `from` in the account, or put a From header in the message"
        ),
    };
    let eol: &[u8] = if message.windows(2).any(|w| w == b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let has = |name: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(name));
    let mut out = Vec::with_capacity(message.len() + 256);
    if !has("From") {
        let from_header = match (&inv.full_name, default_from) {
            (Some(name), _) if !envelope_from.is_empty() => {
                format!("{} <{envelope_from}>", display_name(name))
            }
            (None, Some(f)) if inv.envelope_from.is_none() => header_mailbox(f),
            _ if !envelope_from.is_empty() => envelope_from.clone(),
            _ => crate::bail_with!(
                Exit::DataErr,
                "the message has no From header and the envelope sender is empty"
            ),
        };
        push_field(&mut out, "From", &from_header, eol);
    }
    if !has("Date") {
        push_field(&mut out, "Date", now, eol);
    }
    if !has("Message-ID") {
        let sender = crate::mail::compose::Mailbox {
            name: None,
            address: envelope_from.to_string(),
        };
        let id = crate::mail::compose::generate_message_id(Some(&sender));
        push_field(&mut out, "Message-ID", &format!("<{id}>"), eol);
    }
    for field in &fields {
        if field.name.eq_ignore_ascii_case("Bcc") || field.name.eq_ignore_ascii_case("Resent-Bcc") {
            continue;
        }
        out.extend_from_slice(field.raw);
    }
    if rest.is_empty() {
        out.extend_from_slice(eol);
    } else {
        out.extend_from_slice(&rest);
    }
    Ok(Submission {
        envelope_from,
        recipients,
        message: out,
    })
}

/// Prepares a spooled message (see [`read_message`]) as [`prepare`] does,
/// reading only its header into memory: the body is sent from the spool.
pub fn prepare_spooled(
    inv: &SendmailInvocation,
    default_from: Option<&str>,
    spooled: Spooled,
    now: &str,
) -> anyhow::Result<(Envelope, Message)> {
    let local = |e: std::io::Error| fail(Exit::IoErr, format!("reading the spooled message: {e}"));
    let mut head = vec![0u8; spooled.len.min(MAX_HEADER as u64 + 2) as usize];
    let filled = spooled.spool.read_full_at(&mut head, 0).map_err(local)?;
    head.truncate(filled);
    let header_len = match header_section_len(&head) {
        Some(len) => len,
        None if head.len() as u64 == spooled.len => head.len(),
        None => crate::bail_with!(
            Exit::DataErr,
            "the message has no end of header within {MAX_HEADER} bytes"
        ),
    };
    // `prepare` ends the header it is given with a blank line: the
    // message's own blank line, if it has one, is then skipped.
    let submission = prepare(inv, default_from, &head[..header_len], now)?;
    let header = to_crlf(&submission.message);
    let mut body_start = header_len as u64;
    if head[header_len..].starts_with(b"\r\n") {
        body_start += 2;
    }
    let message_id = message_id_of(&header);
    let eight_bit = !header.is_ascii() || spooled.eight_bit;
    let body_len = spooled.len - body_start;
    let mut segments = vec![Segment::Bytes(header)];
    if body_len > 0 {
        segments.push(Segment::Spooled {
            spool: Arc::new(spooled.spool),
            offset: body_start,
            len: body_len,
        });
    }
    let mut message = Message::from_segments(segments, message_id);
    message.set_eight_bit(eight_bit);
    let envelope = Envelope {
        from: submission.envelope_from,
        recipients: submission.recipients,
    };
    Ok((envelope, message))
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str, eol: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(eol);
}

/// A configured `Name <addr>` as a header value: the name quoted, or
/// RFC 2047-encoded when it is not ASCII.
fn header_mailbox(from: &str) -> String {
    let addr = config::address_of(from);
    let name = match from.rfind('<') {
        Some(open) => from[..open].trim().trim_matches('"').trim(),
        None => "",
    };
    if name.is_empty() {
        addr.to_string()
    } else {
        format!("{} <{addr}>", display_name(name))
    }
}

/// A display name as a quoted string, or an RFC 2047 word when not ASCII.
fn display_name(name: &str) -> String {
    if name.is_ascii() {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(name);
        format!("=?utf-8?b?{encoded}?=")
    }
}

/// Runs `mailctl sendmail ARGS...`.
pub fn run(args: SendmailArgs, globals: Globals) -> anyhow::Result<Exit> {
    run_argv(args.args, globals)
}

/// Runs sendmail mode on raw arguments (without the program name); used for
/// `mailctl sendmail` and when invoked through a `sendmail` symlink.
pub fn run_argv(args: Vec<OsString>, globals: Globals) -> anyhow::Result<Exit> {
    let inv = SendmailInvocation::parse(args)?;
    let connect = ConnectArgs {
        account: inv.account.clone().or_else(|| {
            std::env::var("MAILCTL_ACCOUNT")
                .ok()
                .filter(|a| !a.is_empty())
        }),
        ..ConnectArgs::default()
    };
    let config_path = inv
        .config
        .clone()
        .or_else(|| globals.config.map(PathBuf::from));
    let server = config::resolve_smtp(&connect, config_path.as_deref()).map_err(|err| {
        if crate::exit::exit_status(&err) == Exit::Usage {
            let path = config_path
                .clone()
                .or_else(config::default_path)
                .unwrap_or_default();
            fail(
                Exit::Config,
                format!(
                    "sendmail mode sends through an account of the configuration file, and {} \
                     does not exist (examples/mailctl.toml shows one)",
                    path.display()
                ),
            )
        } else {
            err
        }
    })?;
    let spooled = read_message(&mut std::io::stdin().lock(), inv.ignore_dots)?;
    let now = crate::system::rfc5322_now();
    let (envelope, message) = prepare_spooled(&inv, server.from.as_deref(), spooled, &now)?;
    let globals = Globals {
        verbose: globals.verbose.max(u8::from(inv.verbose)),
        ..globals
    };
    submit(&server, &envelope, &message, globals)
}

/// Hands the prepared message to the SMTP client: the one place sendmail
/// mode meets `mailctl send`'s submission code
/// ([`crate::net::smtp::submit`]).
pub fn submit(
    server: &ResolvedServer,
    envelope: &Envelope,
    message: &Message,
    globals: Globals,
) -> anyhow::Result<Exit> {
    let settings = server.smtp_settings(server.smtp_mechanism(), None)?;
    let transcript = crate::transcript::Transcript::stderr(globals.verbose > 0);
    match crate::net::smtp::submit(&settings, envelope, message, &transcript) {
        Ok(_) => Ok(Exit::Ok),
        Err(failed) => Err(config::with_tls_hint(
            failed.error,
            server.endpoint.port,
            server.tls,
        )),
    }
}

/// Every line ending made CRLF (bare LF and bare CR alike).
fn to_crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The Message-ID in the header, without angle brackets, for reports.
fn message_id_of(message: &[u8]) -> Option<String> {
    let parsed = MessageParser::new().parse_headers(message)?;
    parsed.message_id().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> SendmailInvocation {
        SendmailInvocation::parse(args.iter().copied()).unwrap()
    }

    fn parse_err(args: &[&str]) -> String {
        let err = SendmailInvocation::parse(args.iter().copied()).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Usage);
        format!("{err:#}")
    }

    #[test]
    fn git_send_email_arguments() {
        let inv = parse(&["-i", "a@example.org", "b@example.org"]);
        assert!(inv.ignore_dots);
        assert_eq!(inv.recipients, ["a@example.org", "b@example.org"]);
        let inv = parse(&["-f", "me@example.org", "-i", "a@example.org"]);
        assert_eq!(inv.envelope_from.as_deref(), Some("me@example.org"));
        assert_eq!(inv.recipients, ["a@example.org"]);
    }

    #[test]
    fn mutt_arguments() {
        let inv = parse(&[
            "-oem",
            "-oi",
            "-B8BITMIME",
            "-N",
            "failure,delay",
            "--",
            "-odd@example.org",
        ]);
        assert!(inv.ignore_dots);
        assert_eq!(inv.recipients, ["-odd@example.org"]);
    }

    #[test]
    fn cron_arguments() {
        // Debian cron: -FCronDaemon -i -B8BITMIME -oem USER
        let inv = parse(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"]);
        assert_eq!(inv.full_name.as_deref(), Some("CronDaemon"));
        assert!(inv.ignore_dots);
        assert_eq!(inv.recipients, ["root"]);
        // cronie: -FCronDaemon -i -odi -oem -oi -t -f USER
        let inv = parse(&[
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root",
        ]);
        assert!(inv.recipients_from_headers);
        assert_eq!(inv.envelope_from.as_deref(), Some("root"));
        assert!(inv.recipients.is_empty());
    }

    #[test]
    fn clusters_attached_values_and_long_options() {
        let inv = parse(&[
            "-ti",
            "-fme@x.org",
            "-F",
            "Jane Doe",
            "--account=work",
            "--config",
            "/c.toml",
        ]);
        assert!(inv.recipients_from_headers && inv.ignore_dots);
        assert_eq!(inv.envelope_from.as_deref(), Some("me@x.org"));
        assert_eq!(inv.full_name.as_deref(), Some("Jane Doe"));
        assert_eq!(inv.account.as_deref(), Some("work"));
        assert_eq!(inv.config, Some(PathBuf::from("/c.toml")));
        let inv = parse(&["-f<>", "-r", "<me@x.org>", "-bm", "-v", "x@y"]);
        assert_eq!(inv.envelope_from.as_deref(), Some("me@x.org"));
        assert!(inv.verbose);
        let inv = parse(&["-f", "<>", "x@y"]);
        assert_eq!(inv.envelope_from.as_deref(), Some(""));
    }

    #[test]
    fn recipient_lists_and_names() {
        let inv = parse(&["a@x.org, \"Doe, J\" <j@y.org>", "<k@z.org>"]);
        assert_eq!(inv.recipients, ["a@x.org", "j@y.org", "k@z.org"]);
    }

    #[test]
    fn refused_and_bad_options() {
        assert!(parse_err(&["-bs"]).contains("-bs"));
        assert!(parse_err(&["-bp"]).contains("queue"));
        assert!(parse_err(&["-q"]).contains("queue"));
        assert!(parse_err(&["-q30m"]).contains("queue"));
        assert!(parse_err(&["-bd"]).contains("daemon"));
        assert!(parse_err(&["-k"]).contains("unknown sendmail option -k"));
        assert!(parse_err(&["--frobnicate"]).contains("--frobnicate"));
        assert!(parse_err(&["-f"]).contains("-f needs a value"));
        assert!(parse_err(&["a@x\r\nRCPT TO:<evil@y>"]).contains("not a valid address"));
        assert!(parse_err(&["-f", "a b@x"]).contains("not a valid address"));
    }

    fn read(input: &[u8], ignore_dots: bool, piece: usize) -> Vec<u8> {
        struct Pieces<'a>(&'a [u8], usize);
        impl Read for Pieces<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let spooled = read_message(&mut Pieces(input, piece), ignore_dots).unwrap();
        let mut out = vec![0u8; spooled.len as usize];
        spooled.spool.read_full_at(&mut out, 0).unwrap();
        out
    }

    #[test]
    fn lone_dot_ends_input_without_i() {
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (
                b"Subject: x\n\nline\n.\nafter\n",
                b"Subject: x\r\n\r\nline\r\n",
                b"Subject: x\r\n\r\nline\r\n.\r\nafter\r\n",
            ),
            (
                b"Subject: x\r\n\r\n..x\r\n.\r\n",
                b"Subject: x\r\n\r\n..x\r\n",
                b"Subject: x\r\n\r\n..x\r\n.\r\n",
            ),
            (b"a\n.", b"a\r\n", b"a\r\n.\r\n"),
            (b".\nb\n", b"", b".\r\nb\r\n"),
            (
                b"a\n.x\n. \n.\r\r\n",
                b"a\r\n.x\r\n. \r\n.\r\n\r\n",
                b"a\r\n.x\r\n. \r\n.\r\n\r\n",
            ),
            (b"a\n.\r", b"a\r\n.\r\n", b"a\r\n.\r\n"),
            (b"a.\nb\n", b"a.\r\nb\r\n", b"a.\r\nb\r\n"),
        ];
        for (input, without_i, with_i) in cases {
            for piece in 1..=input.len() {
                assert_eq!(read(input, false, piece), *without_i, "{input:?} / {piece}");
                assert_eq!(read(input, true, piece), *with_i, "{input:?} / {piece}");
            }
        }
    }

    fn spooled_submission(inv: &SendmailInvocation, input: &[u8]) -> (Envelope, Vec<u8>) {
        let spooled = read_message(&mut &input[..], inv.ignore_dots).unwrap();
        let (envelope, message) = prepare_spooled(inv, Some("m@x.org"), spooled, NOW).unwrap();
        let bytes = message.to_vec().unwrap();
        assert_eq!(bytes.len() as u64, message.size());
        (envelope, bytes)
    }

    /// The spooled path gives what `prepare` gives for the whole message,
    /// line endings made CRLF.
    #[test]
    fn spooled_message_matches_prepare() {
        let inv = parse(&["-t", "-i"]);
        let big = "a log line\n".repeat(200_000);
        let headers =
            "From: me@x.org\nTo: a@x.org\nBcc: b@x.org\nDate: d\nMessage-ID: <1@x>\nSubject: s\n";
        for input in [
            format!("{headers}\n{big}"),
            format!("{headers}{big}"),
            headers.to_string(),
            format!("{headers}\nshort\n"),
            format!("{headers}\n"),
            format!("\n{big}"),
            big.clone(),
        ] {
            let inv = if input.starts_with("From") {
                inv.clone()
            } else {
                parse(&["-i", "-f", "me@x.org", "a@x.org"])
            };
            let (envelope, bytes) = spooled_submission(&inv, input.as_bytes());
            let whole = prepare(&inv, Some("m@x.org"), input.as_bytes(), NOW).unwrap();
            assert_eq!(envelope.from, whole.envelope_from);
            assert_eq!(envelope.recipients, whole.recipients);
            if input.starts_with("From") {
                assert_eq!(
                    bytes,
                    to_crlf(&whole.message),
                    "{}",
                    &input[..input.len().min(200)]
                );
            } else {
                // A new Message-ID each time: compare around it.
                let text = String::from_utf8(bytes).unwrap();
                let expected = String::from_utf8(to_crlf(&whole.message)).unwrap();
                let after_id = |t: &str| {
                    t[t.find("Message-ID").unwrap()..]
                        .split_once('>')
                        .unwrap()
                        .1
                        .to_string()
                };
                assert_eq!(after_id(&text), after_id(&expected));
            }
        }
    }

    /// Bare CR line endings are line endings for the header too: a Bcc
    /// field in a CR-only message is found and removed.
    #[test]
    fn bcc_removed_from_a_cr_only_message() {
        let inv = parse(&["-t", "-i"]);
        let input = b"From: me@x.org\rTo: a@x.org\rBcc: secret@x.org\rSubject: s\r\rbody\r";
        let (envelope, bytes) = spooled_submission(&inv, input);
        assert_eq!(envelope.recipients, ["a@x.org", "secret@x.org"]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(
            text.ends_with("To: a@x.org\r\nSubject: s\r\n\r\nbody\r\n"),
            "{text}"
        );
    }

    #[test]
    fn endless_header_is_refused() {
        let inv = parse(&["-i", "a@x.org"]);
        let input = "X-Field: value\n".repeat(100_000);
        let spooled = read_message(&mut input.as_bytes(), true).unwrap();
        let err = prepare_spooled(&inv, Some("m@x.org"), spooled, NOW).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::DataErr);
    }

    const NOW: &str = "Wed, 25 Nov 2026 20:00:00 +0000";

    #[test]
    fn t_reads_headers_and_removes_bcc() {
        let inv = parse(&["-t", "-i", "extra@x.org"]);
        let msg = b"From: me@x.org\nTo: a@x.org, \"B\" <b@x.org>\nCc: c@x.org\nBcc: secret@x.org,\n  also@x.org\nDate: d\nMessage-ID: <1@x>\nSubject: s\n\nbody\nBcc: not a header\n";
        let sub = prepare(&inv, None, msg, NOW).unwrap();
        assert_eq!(sub.envelope_from, "me@x.org");
        assert_eq!(
            sub.recipients,
            [
                "extra@x.org",
                "a@x.org",
                "b@x.org",
                "c@x.org",
                "secret@x.org",
                "also@x.org"
            ]
        );
        assert_eq!(
            String::from_utf8(sub.message).unwrap(),
            "From: me@x.org\nTo: a@x.org, \"B\" <b@x.org>\nCc: c@x.org\nDate: d\nMessage-ID: <1@x>\nSubject: s\n\nbody\nBcc: not a header\n"
        );
    }

    #[test]
    fn missing_headers_are_added() {
        let inv = parse(&["-FCron Daemon", "-i", "root@x.org"]);
        let msg = b"Subject: out\r\n\r\nhello\r\n";
        let sub = prepare(&inv, Some("Sys <sys@x.org>"), msg, NOW).unwrap();
        assert_eq!(sub.envelope_from, "sys@x.org");
        let text = String::from_utf8(sub.message).unwrap();
        assert!(text.starts_with(&format!(
            "From: \"Cron Daemon\" <sys@x.org>\r\nDate: {NOW}\r\nMessage-ID: <"
        )));
        assert!(
            text.ends_with("@x.org>\r\nSubject: out\r\n\r\nhello\r\n"),
            "{text}"
        );
        // Without -F, the account's own From line is used as is.
        let inv = parse(&["root@x.org"]);
        let sub = prepare(&inv, Some("Sys <sys@x.org>"), b"Subject: s\n\nb\n", NOW).unwrap();
        assert!(sub
            .message
            .starts_with(b"From: \"Sys\" <sys@x.org>\nDate: "));
    }

    #[test]
    fn body_without_header_gets_a_blank_line() {
        let inv = parse(&["-f", "me@x.org", "a@x.org"]);
        let sub = prepare(&inv, None, b"just text\nmore\n", NOW).unwrap();
        let text = String::from_utf8(sub.message).unwrap();
        assert!(text.ends_with(">\n\njust text\nmore\n"), "{text}");
        assert!(text.starts_with("From: me@x.org\n"));
    }

    #[test]
    fn no_recipient_or_sender_is_refused() {
        let err = prepare(&parse(&["-i"]), Some("a@x"), b"Subject: s\n\nb\n", NOW).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Usage);
        let err = prepare(&parse(&["a@x"]), None, b"Subject: s\n\nb\n", NOW).unwrap_err();
        assert_eq!(crate::exit::exit_status(&err), Exit::Config);
    }

    #[test]
    fn duplicates_removed() {
        let inv = parse(&["-t", "A@x.org"]);
        let sub = prepare(&inv, Some("m@x.org"), b"To: a@x.org\n\nb\n", NOW).unwrap();
        assert_eq!(sub.recipients, ["A@x.org"]);
    }

    #[test]
    fn line_endings_become_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(to_crlf(b""), b"");
        assert_eq!(to_crlf(b"x\r\n"), b"x\r\n");
    }

    #[test]
    fn configured_from_as_header() {
        assert_eq!(header_mailbox("a@x.org"), "a@x.org");
        assert_eq!(header_mailbox("Ann <a@x.org>"), "\"Ann\" <a@x.org>");
        assert_eq!(header_mailbox("\"Ann B\" <a@x.org>"), "\"Ann B\" <a@x.org>");
        assert_eq!(
            header_mailbox("张三 <a@x.org>"),
            "=?utf-8?b?5byg5LiJ?= <a@x.org>"
        );
    }

    #[test]
    fn non_ascii_full_name_is_encoded() {
        assert_eq!(display_name("Jane \"J\" Doe"), "\"Jane \\\"J\\\" Doe\"");
        assert_eq!(display_name("张三"), "=?utf-8?b?5byg5LiJ?=");
    }
}
