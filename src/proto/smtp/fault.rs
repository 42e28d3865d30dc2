//! Deterministic faults for `mailctl serve --fault`: rules that make the
//! SMTP server answer a stage of a session with a chosen reply, so that an
//! application's retry and bounce handling can be tested.
//!
//! The grammar (also in `serve --help`):
//!
//! ```text
//! RULE    = STAGE [ ":" PATTERN ] "=" REPLY *( ";" OPTION )
//! STAGE   = connect | ehlo | auth | mail | rcpt | data | dot
//! PATTERN = what the stage is about, '*' matching any run of characters,
//!           compared without regard to case: the address (mail, rcpt),
//!           the EHLO/HELO name (ehlo), the mechanism (auth), the client's
//!           IP address (connect), any recipient of the message (data, dot)
//! REPLY   = a 4xx or 5xx code and its text, e.g. "452 4.2.2 mailbox full"
//! OPTION  = first=N | every=N | probability=P | seed=S
//! ```
//!
//! Without an option the rule fires every time it matches. `first=N` fires
//! on the first N matches only, `every=N` on every Nth (N, 2N, ...), and
//! `probability=P` on a share P (0 to 1) of matches drawn from a generator
//! seeded with `seed` (0 by default), so that a run can be repeated.

use std::fmt;

/// The stage of an SMTP session a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The greeting: the connection is answered with the reply and closed.
    Connect,
    /// `EHLO` or `HELO`.
    Ehlo,
    /// `AUTH`.
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA` (or `BDAT`).
    Data,
    /// The end of the message data: the message is not kept.
    Dot,
}

impl Stage {
    /// Every stage with its name in rules.
    const NAMES: [(&'static str, Stage); 7] = [
        ("connect", Stage::Connect),
        ("ehlo", Stage::Ehlo),
        ("auth", Stage::Auth),
        ("mail", Stage::Mail),
        ("rcpt", Stage::Rcpt),
        ("data", Stage::Data),
        ("dot", Stage::Dot),
    ];

    /// The stage a command line starts, with what a pattern is matched
    /// against (empty for `DATA`, whose recipients the caller supplies).
    pub fn of_command(line: &[u8]) -> Option<(Stage, String)> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
        let verb = verb.to_ascii_uppercase();
        let first_word = || rest.split_whitespace().next().unwrap_or("").to_string();
        match verb.as_str() {
            "EHLO" | "HELO" | "LHLO" => Some((Stage::Ehlo, first_word())),
            "AUTH" => Some((Stage::Auth, first_word())),
            "MAIL" => Some((Stage::Mail, path_argument(rest))),
            "RCPT" => Some((Stage::Rcpt, path_argument(rest))),
            "DATA" | "BDAT" => Some((Stage::Data, String::new())),
            _ => None,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Stage::NAMES
            .iter()
            .find(|(_, s)| s == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// The address inside `FROM:<...>` / `TO:<...>` (empty for `<>`).
fn path_argument(rest: &str) -> String {
    let after = rest.split_once(':').map_or(rest, |(_, a)| a).trim_start();
    match after.strip_prefix('<') {
        Some(inner) => inner.split('>').next().unwrap_or("").to_string(),
        None => after.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// How often a matching rule fires.
#[derive(Clone, Debug, PartialEq)]
pub enum Frequency {
    /// On every match.
    Always,
    /// On the first N matches.
    First(u64),
    /// On match N, 2N, 3N, ...
    Every(u64),
    /// On a share of matches, drawn from a generator with this seed.
    Probability(f64, u64),
}

/// One parsed `--fault` rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The stage it applies to.
    pub stage: Stage,
    /// The pattern, lower case (`None`: anything).
    pub pattern: Option<String>,
    /// The reply line, without CRLF.
    pub reply: String,
    /// How often it fires.
    pub frequency: Frequency,
    /// The rule as written.
    pub text: String,
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// Parses one rule (see the module documentation for the grammar).
pub fn parse_rule(text: &str) -> Result<Rule, RuleError> {
    let bad = |why: &str| RuleError(format!("invalid fault rule '{text}': {why}"));
    if text.chars().any(char::is_control) {
        return Err(bad("control characters are not allowed"));
    }
    let eq = reply_start(text).ok_or_else(|| bad("expected STAGE[:PATTERN]=CODE TEXT"))?;
    let (head, tail) = (&text[..eq], &text[eq + 1..]);
    let (stage_name, pattern) = match head.split_once(':') {
        Some((s, p)) => (s, Some(p.to_ascii_lowercase())),
        None => (head, None),
    };
    let stage = Stage::NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(stage_name.trim()))
        .map(|(_, s)| *s)
        .ok_or_else(|| bad("unknown stage (connect, ehlo, auth, mail, rcpt, data, dot)"))?;
    if pattern.as_deref() == Some("") {
        return Err(bad("empty pattern"));
    }
    let mut reply = tail;
    let mut options = Vec::new();
    while let Some((before, last)) = reply.rsplit_once(';') {
        let Some((key, value)) = last.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        if !["first", "every", "probability", "seed"].contains(&key.as_str()) {
            break;
        }
        options.push((key, value.trim().to_string()));
        reply = before;
    }
    let frequency = frequency(&options).map_err(|why| bad(&why))?;
    Ok(Rule {
        stage,
        pattern,
        reply: reply.trim_end().to_string(),
        frequency,
        text: text.to_string(),
    })
}

/// The index of the `=` that starts the reply: the first one followed by a
/// 4xx or 5xx code and a space or the end.
fn reply_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| {
        let code = &bytes[i + 1..];
        bytes[i] == b'='
            && code.len() >= 3
            && matches!(code[0], b'4' | b'5')
            && code[1].is_ascii_digit()
            && code[2].is_ascii_digit()
            && code.get(3).is_none_or(|&b| b == b' ' || b == b';')
    })
}

fn frequency(options: &[(String, String)]) -> Result<Frequency, String> {
    let get = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let count = |name: &str| -> Result<Option<u64>, String> {
        get(name)
            .map(|v| match v.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{name} must be a whole number from 1")),
            })
            .transpose()
    };
    let seed = get("seed")
        .map(|v| v.parse::<u64>().map_err(|_| "seed must be a whole number"))
        .transpose()?;
    let probability = get("probability")
        .map(|v| match v.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
            _ => Err("probability must be from 0 to 1".to_string()),
        })
        .transpose()?;
    let chosen = [count("first")?, count("every")?, probability.map(|_| 0)];
    if chosen.iter().flatten().count() > 1 {
        return Err("give at most one of first, every, probability".into());
    }
    if seed.is_some() && probability.is_none() {
        return Err("seed goes with probability".into());
    }
    Ok(match chosen {
        [Some(n), _, _] => Frequency::First(n),
        [_, Some(n), _] => Frequency::Every(n),
        _ => match probability {
            Some(p) => Frequency::Probability(p, seed.unwrap_or(0)),
            None => Frequency::Always,
        },
    })
}

/// Whether `text` matches the glob `pattern` (`*` any run), ignoring case.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A rule with its count of matches and its generator.
#[derive(Clone, Debug)]
struct Armed {
    rule: Rule,
    matches: u64,
    random: u64,
}

/// The rules in force, in order; the first that fires wins.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    rules: Vec<Armed>,
}

impl Faults {
    /// The rule set for these rules (counters at zero).
    pub fn new(rules: Vec<Rule>) -> Faults {
        let rules = rules
            .into_iter()
            .map(|rule| {
                let random = match rule.frequency {
                    Frequency::Probability(_, seed) => seed,
                    _ => 0,
                };
                Armed {
                    rule,
                    matches: 0,
                    random,
                }
            })
            .collect();
        Faults { rules }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as written.
    pub fn texts(&self) -> Vec<String> {
        self.rules.iter().map(|a| a.rule.text.clone()).collect()
    }

    /// The reply (with CRLF) to give at `stage` when a rule fires for any of
    /// `subjects` (the address, name or recipients the stage is about).
    pub fn check(&mut self, stage: Stage, subjects: &[&str]) -> Option<Vec<u8>> {
        for armed in &mut self.rules {
            let rule = &armed.rule;
            if rule.stage != stage {
                continue;
            }
            let matched = match &rule.pattern {
                None => true,
                Some(p) => subjects.iter().any(|s| glob_matches(p, s)),
            };
            if !matched {
                continue;
            }
            armed.matches += 1;
            let fires = match rule.frequency {
                Frequency::Always => true,
                Frequency::First(n) => armed.matches <= n,
                Frequency::Every(n) => armed.matches % n == 0,
                Frequency::Probability(p, _) => {
                    let draw = splitmix64(&mut armed.random);
                    ((draw >> 11) as f64 / (1u64 << 53) as f64) < p
                }
            };
            if fires {
                return Some(format!("{}\r\n", rule.reply).into_bytes());
            }
        }
        None
    }
}

/// The SplitMix64 generator: small, and the same sequence everywhere.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(rules: &[&str]) -> Faults {
        Faults::new(rules.iter().map(|r| parse_rule(r).unwrap()).collect())
    }

    #[test]
    fn parses_the_documented_examples() {
        let r = parse_rule("rcpt:bob@example.com=452 4.2.2 mailbox full").unwrap();
        assert_eq!(r.stage, Stage::Rcpt);
        assert_eq!(r.pattern.as_deref(), Some("bob@example.com"));
        assert_eq!(r.reply, "452 4.2.2 mailbox full");
        assert_eq!(r.frequency, Frequency::Always);
        let r = parse_rule("dot=421 4.3.0 try again later;first=1").unwrap();
        assert_eq!((r.stage, r.pattern), (Stage::Dot, None));
        assert_eq!(r.reply, "421 4.3.0 try again later");
        assert_eq!(r.frequency, Frequency::First(1));
        let r = parse_rule("MAIL:*=x@y=550 5.7.1 no; really;every=3").unwrap();
        assert_eq!(r.pattern.as_deref(), Some("*=x@y"));
        assert_eq!(r.reply, "550 5.7.1 no; really");
        assert_eq!(r.frequency, Frequency::Every(3));
        let r = parse_rule("connect=554;probability=0.5;seed=7").unwrap();
        assert_eq!(r.frequency, Frequency::Probability(0.5, 7));
    }

    #[test]
    fn refuses_bad_rules() {
        for bad in [
            "",
            "rcpt",
            "rcpt=250 ok",
            "rcpt=45 short",
            "helo=550 no",
            "rcpt:=550 no",
            "rcpt=550 no;first=0",
            "rcpt=550 no;first=1;every=2",
            "rcpt=550 no;probability=2",
            "rcpt=550 no;seed=3",
            "rcpt=550 a\r\nb",
        ] {
            let e = parse_rule(bad).unwrap_err();
            assert!(e.0.starts_with("invalid fault rule"), "{bad}: {e}");
        }
    }

    #[test]
    fn stages_of_commands() {
        let of = |l: &[u8]| Stage::of_command(l).unwrap();
        assert_eq!(of(b"EHLO me\r\n"), (Stage::Ehlo, "me".into()));
        assert_eq!(
            of(b"mail from:<a@b> SIZE=10\r\n"),
            (Stage::Mail, "a@b".into())
        );
        assert_eq!(of(b"RCPT TO: <Bob@X>\r\n"), (Stage::Rcpt, "Bob@X".into()));
        assert_eq!(of(b"MAIL FROM:<>\r\n"), (Stage::Mail, String::new()));
        assert_eq!(
            of(b"AUTH PLAIN AGFiYwA=\r\n"),
            (Stage::Auth, "PLAIN".into())
        );
        assert_eq!(of(b"DATA\r\n").0, Stage::Data);
        assert!(Stage::of_command(b"NOOP\r\n").is_none());
    }

    #[test]
    fn patterns_and_frequencies() {
        let mut f = faults(&["rcpt:*@Example.com=452 4.2.2 full;every=2"]);
        assert_eq!(f.check(Stage::Rcpt, &["a@other.org"]), None);
        assert_eq!(f.check(Stage::Rcpt, &["a@example.COM"]), None);
        assert_eq!(
            f.check(Stage::Rcpt, &["b@example.com"]).unwrap(),
            b"452 4.2.2 full\r\n"
        );
        assert_eq!(f.check(Stage::Mail, &["b@example.com"]), None);
        let mut f = faults(&["dot=421 later;first=1"]);
        assert!(f.check(Stage::Dot, &["x@y"]).is_some());
        assert!(f.check(Stage::Dot, &["x@y"]).is_none());
        assert!(glob_matches("a*b*c", "aXbYc"));
        assert!(!glob_matches("a*b*c", "aXc"));
        assert!(!glob_matches("ab*ba", "aba"));
    }

    #[test]
    fn probability_is_repeatable() {
        let run = || {
            let mut f = faults(&["rcpt=450 busy;probability=0.3;seed=42"]);
            (0..1000)
                .map(|_| f.check(Stage::Rcpt, &["a@b"]).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let fired = first.iter().filter(|&&b| b).count();
        assert!((200..400).contains(&fired), "{fired}");
    }
}
