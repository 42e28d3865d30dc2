//! The rules between the layers of `src/` (README, "Layout"), checked on the
//! source text: every `use` line and every path written in code (`crate::x`,
//! `super::x`, `std::net::...`, `anyhow::...`) is resolved to a full path and
//! compared with one table of rules.
//!
//! Comments and string literals are blanked out first, so documentation that
//! names another layer does not count. Test code (`#[cfg(test)]` items,
//! usually `mod tests`) obeys the same rules, except that it may use the
//! file system and the clock (a rule's `test_may`): a unit test of a pure
//! protocol machine can still read a fixture or time itself, but it cannot
//! reach into another layer.
//!
//! A layer is a module at the top of `src/`: `proto` is `src/proto.rs` and
//! everything under `src/proto/`. A layer that has no files is checked as
//! empty. Files that still break a rule while the code moves into its
//! layers are listed in `PENDING`; the list may only shrink.
//!
//! Each violation is one line: `src/proto/x.rs:12: proto uses std::net::TcpStream
//! (rule: ...)`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// One rule: code in `layers` (minus `except`) must not use `paths` nor
/// name `idents`.
struct Rule {
    /// A short name, for [`PENDING`].
    name: &'static str,
    /// Top-level modules the rule covers; `"*"` is every module.
    layers: &'static [&'static str],
    /// Top-level modules a `"*"` rule leaves out.
    except: &'static [&'static str],
    /// Forbidden path prefixes, compared segment by segment.
    paths: &'static [&'static str],
    /// Paths under a forbidden prefix that stay allowed.
    allowed: &'static [&'static str],
    /// Forbidden identifiers, wherever they appear.
    idents: &'static [&'static str],
    /// Forbidden paths that `#[cfg(test)]` code may use all the same.
    test_may: &'static [&'static str],
    /// Why: printed with every violation.
    why: &'static str,
}

/// The layer rules.
const RULES: &[Rule] = &[
    Rule {
        name: "proto",
        layers: &["proto"],
        except: &[],
        paths: &[
            "std::net",
            "std::fs",
            "std::time::SystemTime",
            "std::time::Instant",
            "std::process",
            "anyhow",
            "clap",
            "native_tls",
            "openssl",
            "crate",
        ],
        allowed: &["crate::proto", "crate::text", "crate::secret"],
        idents: &[],
        test_may: &["std::fs", "std::time::SystemTime", "std::time::Instant"],
        why: "proto is pure protocol: no sockets, files, clock, TLS, process exit, \
              anyhow or clap, and no other layer than the text and secret helpers",
    },
    Rule {
        name: "lower",
        layers: &["net", "mail", "store"],
        except: &[],
        paths: &["crate::cli", "crate::cmd", "crate::config"],
        allowed: &[],
        idents: &[],
        test_may: &[],
        why:
            "net, mail and store take plain settings, never flags, subcommands or the configuration",
    },
    Rule {
        name: "mail",
        layers: &["mail"],
        except: &[],
        paths: &[
            "crate::net",
            "crate::proto::smtp::client",
            "crate::proto::pop3::client",
        ],
        allowed: &[],
        idents: &[],
        test_may: &[],
        why: "mail composes and reads messages; it never talks to a server",
    },
    Rule {
        name: "config",
        layers: &["config"],
        except: &[],
        paths: &["crate::cli", "crate::net"],
        allowed: &[],
        idents: &[],
        test_may: &[],
        why: "config reads the configuration file; flags and connections come from above",
    },
    Rule {
        name: "exit",
        layers: &["*"],
        except: &["exit", "main", "cmd"],
        paths: &["crate::exit::fail", "crate::bail_with"],
        allowed: &[],
        idents: &["Exit"],
        test_may: &[],
        why: "exit statuses are chosen only in exit.rs (from typed errors), main.rs and cmd/",
    },
    Rule {
        name: "cmd",
        layers: &["*"],
        // cli.rs only gathers the subcommands' flags into one parser, for
        // main.rs: it is part of the top, beside cmd.
        except: &["cmd", "main", "lib", "cli"],
        paths: &["crate::cmd"],
        allowed: &[],
        idents: &[],
        test_may: &[],
        why: "cmd is the top layer: nothing below it uses it",
    },
];

/// Files that still break a rule, by rule name, while the code moves into
/// its layers: their violations are printed but do not fail. Remove a line
/// when its file is fixed ([`no_pending_entry_is_stale`] says which).
const PENDING: &[(&str, &str)] = &[];

/// A broken rule at one place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// `src/...` path of the file.
    file: String,
    /// 1-based line number.
    line: usize,
    /// The layer (top-level module) of the file.
    layer: String,
    /// The path or identifier used.
    used: String,
    /// The rule's name.
    rule: &'static str,
    /// The rule's reason.
    why: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} uses {} (rule: {})",
            self.file, self.line, self.layer, self.used, self.why
        )
    }
}

/// Checks one file, `rel` being its path below `src/` (`proto/smtp/client.rs`).
fn check(rel: &str, source: &str) -> Vec<Violation> {
    let module = module_path(rel);
    let layer = rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs");
    let rules: Vec<&Rule> = RULES
        .iter()
        .filter(|r| {
            if r.layers == ["*"] {
                !r.except.contains(&layer)
            } else {
                r.layers.contains(&layer)
            }
        })
        .collect();
    let mut found = Vec::new();
    for used in scan(&strip(source), &module) {
        for rule in &rules {
            let breaks = match &used.name {
                Name::Path(path) => {
                    let hit = |prefixes: &[&str]| prefixes.iter().any(|p| has_prefix(path, p));
                    hit(rule.paths) && !hit(rule.allowed) && !(used.in_test && hit(rule.test_may))
                }
                Name::Ident(ident) => rule.idents.contains(&ident.as_str()),
            };
            if breaks {
                found.push(Violation {
                    file: format!("src/{rel}"),
                    line: used.line,
                    layer: layer.to_string(),
                    used: used.name.to_string(),
                    rule: rule.name,
                    why: rule.why,
                });
            }
        }
    }
    // One report per line and rule: the first name that breaks it.
    let mut seen = std::collections::BTreeSet::new();
    found.retain(|v: &Violation| seen.insert((v.line, v.rule)));
    found.sort();
    found
}

/// Whether `path` starts with the segments of `prefix`.
fn has_prefix(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// The module a file is: `proto/smtp/mod.rs` is `["proto", "smtp"]`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Rust source with comments, string and character literals replaced by
/// spaces (newlines kept, so line numbers stay).
fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        match skipped_end(&chars, i) {
            Some(end) => {
                let end = end.min(chars.len());
                out.extend(
                    chars[i..end]
                        .iter()
                        .map(|&c| if c == '\n' { '\n' } else { ' ' }),
                );
                i = end;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Where the comment or literal starting at `chars[i]` ends (exclusive), if
/// one starts there.
fn skipped_end(chars: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| chars.get(k).copied();
    let find = |from: usize, what: &[char]| {
        (from..chars.len())
            .find(|&k| chars[k..].starts_with(what))
            .map_or(chars.len(), |k| k + what.len())
    };
    let after_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    match (chars[i], at(i + 1)) {
        ('/', Some('/')) => Some(
            (i..chars.len())
                .find(|&k| chars[k] == '\n')
                .unwrap_or(chars.len()),
        ),
        ('/', Some('*')) => {
            let mut depth = 0;
            let mut k = i;
            while k < chars.len() {
                if chars[k..].starts_with(&['/', '*']) {
                    depth += 1;
                    k += 2;
                } else if chars[k..].starts_with(&['*', '/']) {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    k += 1;
                }
            }
            Some(k)
        }
        // Raw strings: r"..", r#".."#, br#".."#.
        ('r', _) | ('b', Some('r')) if !after_ident => {
            let open = if chars[i] == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[open..].iter().take_while(|&&c| c == '#').count();
            if at(open + hashes) != Some('"') {
                return None;
            }
            let mut close = vec!['"'];
            close.extend(std::iter::repeat_n('#', hashes));
            Some(find(open + hashes + 1, &close))
        }
        ('"', _) => {
            let mut k = i + 1;
            while k < chars.len() && chars[k] != '"' {
                k += if chars[k] == '\\' { 2 } else { 1 };
            }
            Some(k + 1)
        }
        // 'x' and '\n' are characters; 'a without a quote after one
        // character is a lifetime.
        ('\'', Some('\\')) => Some(find(i + 3, &['\''])),
        ('\'', Some(_)) if at(i + 2) == Some('\'') => Some(i + 3),
        _ => None,
    }
}

/// What a piece of code names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// A resolved path: `crate::net::connection`, `std::fs::File`.
    Path(String),
    /// A single identifier, wherever it is.
    Ident(String),
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Path(p) | Name::Ident(p) => f.write_str(p),
        }
    }
}

/// One use of a name.
#[derive(Debug)]
struct Used {
    line: usize,
    name: Name,
    /// Inside a `#[cfg(test)]` item.
    in_test: bool,
}

/// A token of stripped source: an identifier or one punctuation character
/// (`::` is one token).
#[derive(Debug, Clone)]
struct Token {
    text: String,
    line: usize,
}

fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let mut text = c.to_string();
            while let Some(&d) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_') {
                    break;
                }
                text.push(d);
                chars.next();
            }
            out.push(Token { text, line });
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push(Token {
                text: "::".into(),
                line,
            });
        } else if !c.is_whitespace() {
            out.push(Token {
                text: c.to_string(),
                line,
            });
        }
    }
    out
}

fn is_ident(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Every path and identifier in stripped code, paths resolved to full ones
/// (`super::` and `self::` against `module`, names brought in by `use`).
fn scan(code: &str, module: &[String]) -> Vec<Used> {
    let toks = tokens(code);
    let mut found = Vec::new();
    // Inline modules open around the current token: (name, brace depth inside).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let mut depth = 0;
    // The brace depth a `#[cfg(test)]` block opened at, and whether a
    // `#[cfg(test)]` attribute waits for its item.
    let mut test_block: Option<usize> = None;
    let mut test_pending = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i].text;
        let here = |inline: &[(String, usize)]| -> Vec<String> {
            module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect()
        };
        let in_test = test_pending || test_block.is_some();
        if t == "#" && is_cfg_test(&toks[i..]) {
            test_pending = true;
            i += 1;
        } else if t == "{" {
            if test_pending && test_block.is_none() {
                test_block = Some(depth);
            }
            test_pending = false;
            depth += 1;
            if i >= 2 && toks[i - 2].text == "mod" && is_ident(&toks[i - 1].text) {
                inline.push((toks[i - 1].text.clone(), depth));
            }
            i += 1;
        } else if t == "}" {
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
            if test_block == Some(depth) {
                test_block = None;
            }
            i += 1;
        } else if t == ";" {
            test_pending = false;
            i += 1;
        } else if t == "use" {
            let end = toks[i..]
                .iter()
                .position(|t| t.text == ";")
                .map_or(toks.len(), |p| i + p);
            for (path, alias, line) in use_tree(&toks[i + 1..end]) {
                let full = resolve(&path, &here(&inline), &BTreeMap::new());
                if alias != "*" && alias != "_" {
                    aliases.insert(alias, full.clone());
                }
                found.push(Used {
                    line,
                    name: Name::Path(full),
                    in_test,
                });
            }
            for tok in &toks[i + 1..end] {
                if is_ident(&tok.text) {
                    found.push(Used {
                        line: tok.line,
                        name: Name::Ident(tok.text.clone()),
                        in_test,
                    });
                }
            }
            i = end;
        } else if is_ident(t) {
            // A path: IDENT (:: IDENT)*.
            let mut path = vec![t.clone()];
            let line = toks[i].line;
            let mut j = i + 1;
            while j + 1 < toks.len() && toks[j].text == "::" && is_ident(&toks[j + 1].text) {
                path.push(toks[j + 1].text.clone());
                j += 2;
            }
            for seg in &path {
                found.push(Used {
                    line,
                    name: Name::Ident(seg.clone()),
                    in_test,
                });
            }
            let after_colons = i > 0 && toks[i - 1].text == "::";
            if path.len() > 1 && !after_colons {
                found.push(Used {
                    line,
                    name: Name::Path(resolve(&path.join("::"), &here(&inline), &aliases)),
                    in_test,
                });
            }
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// Whether the tokens start with `# [ cfg ( test ) ]`.
fn is_cfg_test(toks: &[Token]) -> bool {
    let want = ["#", "[", "cfg", "(", "test", ")", "]"];
    toks.len() >= want.len() && toks.iter().zip(want).all(|(t, w)| t.text == w)
}

/// The paths a `use` tree brings in: (path, the name it is bound to, line).
/// `a::{b, c::d as e, f::*}` gives `a::b` (b), `a::c::d` (e), `a::f::*` (*).
fn use_tree(toks: &[Token]) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let before = i;
        use_subtree(toks, &mut i, &[], &mut out);
        i = i.max(before + 1);
    }
    out
}

/// One tree of a `use` from `toks[*i]`, below `prefix`; moves `i` past it.
fn use_subtree(
    toks: &[Token],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(String, String, usize)>,
) {
    let text = |i: usize| toks.get(i).map_or("", |t| t.text.as_str());
    let mut path = prefix.to_vec();
    if text(*i) == "::" {
        *i += 1;
    }
    loop {
        match text(*i) {
            "{" => {
                *i += 1;
                while !matches!(text(*i), "}" | "") {
                    let before = *i;
                    use_subtree(toks, i, &path, out);
                    if text(*i) == "," || *i == before {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                path.push("*".into());
                out.push((path.join("::"), "*".into(), toks[*i].line));
                *i += 1;
                return;
            }
            // `a::{self, b}`: `self` is `a` itself.
            "self" if path.len() == prefix.len() && !prefix.is_empty() => *i += 1,
            word if is_ident(word) => {
                path.push(word.to_string());
                *i += 1;
            }
            _ => return,
        }
        if text(*i) != "::" {
            break;
        }
        *i += 1;
    }
    let line = toks[*i - 1].line;
    let mut alias = path.last().cloned().unwrap_or_default();
    if text(*i) == "as" {
        alias = text(*i + 1).to_string();
        *i += 2;
    }
    out.push((path.join("::"), alias, line));
}

/// A written path as a full one: `super::x` in module `a::b` is
/// `crate::a::x`, `self::x` is `crate::a::b::x`, `name::x` after `use
/// p::name` is `p::name::x`.
fn resolve(path: &str, module: &[String], aliases: &BTreeMap<String, String>) -> String {
    let segs: Vec<&str> = path.trim_start_matches("::").split("::").collect();
    let mut base: Vec<String> = module.to_vec();
    let mut rest = &segs[..];
    match segs[0] {
        "self" => rest = &segs[1..],
        "super" => {
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        first => {
            return match aliases.get(first) {
                Some(full) if segs.len() > 1 => format!("{full}::{}", segs[1..].join("::")),
                _ => path.to_string(),
            };
        }
    }
    std::iter::once("crate".to_string())
        .chain(base)
        .chain(rest.iter().map(|s| s.to_string()))
        .collect::<Vec<_>>()
        .join("::")
}

/// Every `.rs` file below `dir`, as paths relative to `root`, sorted.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("read src/").path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("below src/");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    out.sort();
}

/// Every violation in `src/`.
fn violations_in_src() -> Vec<Violation> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    assert!(
        files.iter().any(|f| f == "lib.rs"),
        "src/ was read: {files:?}"
    );
    let mut violations = Vec::new();
    for rel in &files {
        let source = std::fs::read_to_string(root.join(rel)).expect("read a source file");
        violations.extend(check(rel, &source));
    }
    violations
}

fn is_pending(v: &Violation) -> bool {
    PENDING
        .iter()
        .any(|&(file, rule)| v.file == format!("src/{file}") && v.rule == rule)
}

#[test]
fn the_source_tree_keeps_the_layer_rules() {
    let (pending, broken): (Vec<Violation>, Vec<Violation>) =
        violations_in_src().into_iter().partition(is_pending);
    if !pending.is_empty() {
        eprintln!(
            "{} known violation(s) under {} PENDING entries, still to be fixed",
            pending.len(),
            PENDING.len()
        );
    }
    let report: Vec<String> = broken.iter().map(|v| v.to_string()).collect();
    assert!(
        broken.is_empty(),
        "{} layer rule violation(s):\n{}",
        broken.len(),
        report.join("\n")
    );
}

#[test]
fn no_pending_entry_is_stale() {
    let violations = violations_in_src();
    let stale: Vec<String> = PENDING
        .iter()
        .filter(|&&(file, rule)| {
            !violations
                .iter()
                .any(|v| v.file == format!("src/{file}") && v.rule == rule)
        })
        .map(|(file, rule)| format!("(\"{file}\", \"{rule}\")"))
        .collect();
    assert!(
        stale.is_empty(),
        "these files keep their rule now: remove them from PENDING in tests/layers.rs:\n{}",
        stale.join("\n")
    );
}

// ---- the checker itself --------------------------------------------------

/// The `used` names of `check`'s findings.
fn used(rel: &str, source: &str) -> Vec<String> {
    check(rel, source).into_iter().map(|v| v.used).collect()
}

#[test]
fn forbidden_use_in_proto_is_reported_with_file_line_and_rule() {
    let source = "//! A machine.\n\nuse std::net::TcpStream;\n";
    let found = check("proto/smtp/client.rs", source);
    assert_eq!(found.len(), 1, "{found:?}");
    let line = found[0].to_string();
    assert!(
        line.starts_with(
            "src/proto/smtp/client.rs:3: proto uses std::net::TcpStream (rule: proto is pure"
        ),
        "{line}"
    );
}

#[test]
fn allowed_uses_in_proto_pass() {
    let source = "\
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::time::Duration;
use crate::proto::sasl::Mechanism;
use crate::text::{printable, ArgumentCheck};
use crate::secret::Secret;
use super::reply::Reply;
use base64::Engine;
fn f() -> Result<(), fmt::Error> { let _ = crate::text::printable(b\"\"); Ok(()) }
";
    assert_eq!(used("proto/smtp/client.rs", source), Vec::<String>::new());
}

#[test]
fn grouped_and_nested_use_trees_are_expanded() {
    let source = "use std::{\n    collections::BTreeMap,\n    net::{\n        IpAddr,\n        TcpStream as Tcp,\n    },\n    time::*,\n};\n";
    assert_eq!(
        check("proto/pop3/client.rs", source)
            .iter()
            .map(|v| (v.line, v.used.as_str()))
            .collect::<Vec<_>>(),
        [(4, "std::net::IpAddr"), (5, "std::net::TcpStream")]
    );
    let clock = "use std::time::{Duration, Instant};\npub use std::fs;\n";
    assert_eq!(
        used("proto/sasl.rs", clock),
        ["std::time::Instant", "std::fs"]
    );
    // One report per line and rule.
    assert_eq!(used("proto/sasl.rs", "use std::{fs, net};\n"), ["std::fs"]);
}

#[test]
fn paths_in_code_are_checked_not_only_use_lines() {
    let source = "fn f() {\n    let _ = std::fs::read(\"x\");\n    anyhow::bail!(\"no\");\n}\n";
    assert_eq!(
        check("proto/smtp/reply.rs", source)
            .iter()
            .map(|v| (v.line, v.used.as_str()))
            .collect::<Vec<_>>(),
        [(2, "std::fs::read"), (3, "anyhow::bail")]
    );
}

#[test]
fn comments_and_strings_do_not_count() {
    let source = "\
//! Uses [`crate::net::connection`] in a doc link only.
/// See std::net::TcpStream.
/* crate::cmd::send */
fn f() -> &'static str { let _c = '\"'; \"use std::net::TcpStream;\" }
const R: &str = r#\"crate::config \"quoted\" std::fs\"#;
";
    assert_eq!(used("proto/smtp/mod.rs", source), Vec::<String>::new());
}

#[test]
fn super_and_self_are_resolved_against_the_module() {
    // In net/serve/session.rs, super is crate::net::serve and
    // super::super::super is the crate.
    let source = "use super::super::super::config::Settings;\nuse super::super::config::Inner;\n";
    assert_eq!(
        used("net/serve/session.rs", source),
        ["crate::config::Settings"]
    );
    // From mail/raw.rs, super::super::net is crate::net: mail never uses net.
    assert_eq!(
        used(
            "mail/raw.rs",
            "use super::super::net::connection;\nuse super::net::Own;\n"
        ),
        ["crate::net::connection"]
    );
    assert_eq!(
        used(
            "proto/smtp/mod.rs",
            "use self::client::X;\nfn f() { self::super::super::cli::go(); }\n"
        ),
        Vec::<String>::new(),
        "self:: stays inside proto"
    );
    // A name brought in by `use` resolves in later paths.
    let aliased = "use crate::proto::smtp;\nfn f() { smtp::client::Client::new(); }\n";
    assert_eq!(
        used("mail/compose/mod.rs", aliased),
        ["crate::proto::smtp::client::Client::new"]
    );
}

#[test]
fn inline_modules_move_super_one_level_down() {
    // In proto/users.rs, super::super is crate (a violation) but inside
    // `mod tests`, super::super is crate::proto.
    let source = "use super::super::net::X;\n#[cfg(test)]\nmod tests {\n    use super::super::net::Y;\n}\nuse super::super::net::Z;\n";
    assert_eq!(
        used("proto/users.rs", source),
        ["crate::net::X", "crate::net::Z"]
    );
}

#[test]
fn test_code_in_proto_may_use_files_and_the_clock_but_no_other_layer() {
    let source = "\
fn machine() {}

#[cfg(test)]
mod tests {
    use std::time::Instant;
    use crate::exit::exit_status;
    fn fixture() { let _ = std::fs::read(\"f\"); }
}

fn after() { let _ = std::time::Instant::now(); }
";
    assert_eq!(
        check("proto/pop3/server.rs", source)
            .iter()
            .map(|v| (v.line, v.used.as_str()))
            .collect::<Vec<_>>(),
        [
            (6, "crate::exit::exit_status"),
            (10, "std::time::Instant::now")
        ]
    );
    // A single #[cfg(test)] item counts as test code too.
    assert_eq!(
        used(
            "proto/sasl.rs",
            "#[cfg(test)]\nuse std::fs;\nuse std::fs::File;\n"
        ),
        ["std::fs::File"]
    );
}

#[test]
fn exit_is_named_only_in_exit_main_and_cmd() {
    let source = "use crate::exit::fail;\nfn f() -> Exit {\n    crate::bail_with!(\"x\");\n}\n";
    assert_eq!(
        used("net/connection.rs", source),
        ["crate::exit::fail", "Exit", "crate::bail_with"]
    );
    for allowed in ["exit.rs", "main.rs", "cmd/send.rs", "cmd/fetch/mod.rs"] {
        assert_eq!(used(allowed, source), Vec::<String>::new(), "{allowed}");
    }
    // ExitCode and exit_status are other names.
    assert_eq!(
        used(
            "store/durable.rs",
            "use crate::exit::exit_status;\nfn f() -> std::process::ExitCode { todo!() }\n"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn layer_rules_between_net_mail_store_config_and_cmd() {
    let cases: &[(&str, &str, bool)] = &[
        ("net/smtp.rs", "use crate::config::Account;", false),
        (
            "net/smtp.rs",
            "use crate::proto::smtp::client::Client;",
            true,
        ),
        ("store/maildir.rs", "use crate::cli::Cli;", false),
        (
            "mail/raw.rs",
            "use crate::net::connection::Connection;",
            false,
        ),
        (
            "mail/raw.rs",
            "use crate::proto::smtp::client::Client;",
            false,
        ),
        ("mail/raw.rs", "use crate::proto::pop3::client;", false),
        (
            "mail/raw.rs",
            "use crate::proto::smtp::data::DotStuffer;",
            true,
        ),
        ("mail/raw.rs", "use crate::store::durable;", true),
        ("config/resolve.rs", "use crate::cli::ConnectArgs;", false),
        (
            "config/resolve.rs",
            "fn f() { let _ = crate::cli::MAX_TIMEOUT_SECS; }",
            false,
        ),
        (
            "config/resolve.rs",
            "use crate::net::connection::TlsMode;",
            false,
        ),
        ("config.rs", "use crate::net::connection::TlsMode;", false),
        ("config/resolve.rs", "use crate::secret::Secret;", true),
        ("net/tls.rs", "use crate::cmd::serve;", false),
        ("transcript.rs", "use crate::cmd;", false),
        ("cmd/send.rs", "use crate::cmd::fetch;", true),
        (
            "cmd/send.rs",
            "use crate::config::Account; use crate::net::smtp;",
            true,
        ),
        ("lib.rs", "pub use crate::cmd::run;", true),
        ("cli.rs", "use crate::config::Account;", true),
    ];
    for (rel, source, ok) in cases {
        let found = check(rel, source);
        assert_eq!(found.is_empty(), *ok, "{rel}: {source}: {found:?}");
    }
}

#[test]
fn module_paths_of_files() {
    assert_eq!(module_path("proto/smtp/mod.rs"), ["proto", "smtp"]);
    assert_eq!(
        module_path("proto/smtp/client.rs"),
        ["proto", "smtp", "client"]
    );
    assert_eq!(module_path("lib.rs"), Vec::<String>::new());
    assert_eq!(module_path("exit.rs"), ["exit"]);
}
