//! The routes of the web inbox: the page and its files, and the JSON API
//! under `/api/` (README, "Testing your application's mail").

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::wire::{Reply, Request};
use super::Web;
use crate::proto::smtp::fault::{parse_rule, Faults};
use crate::store::index::{parse_since, Filter, Indexed};

/// The longest fault rules text a PUT may carry.
const MAX_RULES: usize = 64 * 1024;

/// What a request gets.
#[derive(Debug)]
pub enum Answer {
    /// A whole response.
    Reply(Reply),
    /// The live event stream (`/api/events`), for as long as the client
    /// reads it.
    Events,
}

/// Messages larger than this are not decoded for the API (the raw bytes
/// are still served).
const MAX_DECODED: u64 = 64 * 1024 * 1024;

/// The longest `/api/wait` allowed, and its default.
const MAX_WAIT: Duration = Duration::from_secs(300);
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The page and its script and style, built into the binary.
const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// What the page may do: its own files and API only, pictures inline.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// What a message's HTML may do: nothing but show itself and its pictures.
const MAIL_POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
    base-uri 'none'; form-action 'none'; sandbox";

/// A response with a body and content type.
fn body(status: u16, content_type: &str, data: Vec<u8>) -> Reply {
    Reply::from_data(data)
        .with_status_code(status)
        .with_header("Content-Type", content_type)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Cache-Control", "no-store")
}

/// A JSON response.
fn json_reply(status: u16, value: &Value) -> Reply {
    let mut data = serde_json::to_vec_pretty(value).unwrap_or_default();
    data.push(b'\n');
    body(status, "application/json", data)
}

/// A JSON error: `{"error": "..."}`.
pub fn error(status: u16, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

/// The path and the decoded query parameters of a request URL.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| crate::text::percent_decoded(&s.replace('+', " "));
            (decode(k), decode(v))
        })
        .collect();
    (crate::text::percent_decoded(path), params)
}

/// Routes one request; `scope` limits it to one mailbox. HEAD is
/// answered as GET (the body is left out when written).
pub fn route(web: &Web, scope: Option<&str>, request: &Request) -> Answer {
    let (path, params) = split_url(&request.url);
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = match request.method.as_str() {
        "HEAD" => "GET",
        other => other,
    };
    let reply = match (method, segments.as_slice()) {
        ("GET", [""]) => page_file(PAGE, "text/html; charset=utf-8"),
        ("GET", ["app.js"]) => page_file(SCRIPT, "text/javascript; charset=utf-8"),
        ("GET", ["app.css"]) => page_file(STYLE, "text/css; charset=utf-8"),
        ("GET", ["api", "events"]) => return Answer::Events,
        ("GET", ["api", "mailboxes"]) => mailboxes(web, scope),
        ("GET", ["api", "messages"]) => match filter(scope, &get) {
            Ok(f) => list(web, &f, &get),
            Err(e) => e,
        },
        ("DELETE", ["api", "messages"]) => match filter(scope, &get) {
            Ok(f) => delete_all(web, &f),
            Err(e) => e,
        },
        ("GET", ["api", "wait"]) => match filter(scope, &get) {
            Ok(f) => wait(web, &f, get("timeout")),
            Err(e) => e,
        },
        ("GET", ["api", "faults"]) => faults(web),
        ("PUT", ["api", "faults"]) if scope.is_none() => put_faults(web, &request.body),
        (_, ["api", "messages", id, rest @ ..]) => {
            message_route(web, scope, method, id, rest, get("download").is_some())
        }
        _ => error(404, "no such page"),
    };
    Answer::Reply(reply)
}

/// Routes `/api/messages/{id}/...`.
fn message_route(
    web: &Web,
    scope: Option<&str>,
    method: &str,
    id: &str,
    rest: &[&str],
    download: bool,
) -> Reply {
    web.index.scan();
    let Some(m) = web
        .index
        .get(id)
        .filter(|m| scope.is_none_or(|s| s == m.listing.mailbox))
    else {
        return error(404, "no such message");
    };
    match (method, rest) {
        ("GET", []) => detail(&m),
        ("DELETE", []) => match delete(web, &m) {
            Ok(()) => json_reply(200, &json!({ "deleted": 1 })),
            Err(e) => e,
        },
        ("GET", ["raw"]) => match std::fs::read(&m.path) {
            Ok(raw) => body(200, "message/rfc822", raw),
            Err(_) => error(404, "no such message"),
        },
        ("GET", ["html"]) => html(&m),
        ("GET", ["parts", n]) => part(&m, n, download),
        _ => error(404, "no such page"),
    }
}

fn page_file(text: &str, content_type: &str) -> Reply {
    body(200, content_type, text.as_bytes().to_vec())
        .with_header("Content-Security-Policy", PAGE_POLICY)
        .with_header("X-Frame-Options", "DENY")
}

/// The filter from query parameters, within `scope`.
fn filter(scope: Option<&str>, get: &dyn Fn(&str) -> Option<String>) -> Result<Filter, Reply> {
    let since = match get("since") {
        Some(s) => Some(parse_since(&s).ok_or_else(|| {
            error(
                400,
                "since: expected seconds since 1970 or YYYY-MM-DDTHH:MM:SSZ",
            )
        })?),
        None => None,
    };
    let mailbox = get("mailbox").filter(|m| !m.is_empty());
    if let (Some(s), Some(m)) = (scope, &mailbox) {
        if s != m {
            return Err(error(403, "that mailbox is not yours"));
        }
    }
    let given = |name: &str| get(name).filter(|v| !v.is_empty());
    Ok(Filter {
        mailbox: mailbox.or(scope.map(str::to_string)),
        from: given("from"),
        to: given("to"),
        subject: given("subject"),
        since,
    })
}

fn number(get: &dyn Fn(&str) -> Option<String>, name: &str, default: usize) -> Option<usize> {
    match get(name) {
        None => Some(default),
        Some(v) => v.parse().ok(),
    }
}

fn list(web: &Web, filter: &Filter, get: &dyn Fn(&str) -> Option<String>) -> Reply {
    let (Some(limit), Some(offset)) = (number(get, "limit", 50), number(get, "offset", 0)) else {
        return error(400, "limit and offset must be whole numbers");
    };
    web.index.scan();
    let (total, messages) = web.index.query(filter, offset, limit.min(10_000));
    let listed: Vec<&crate::store::index::Listing> = messages.iter().map(|m| &m.listing).collect();
    json_reply(200, &json!({ "total": total, "messages": listed }))
}

fn mailboxes(web: &Web, scope: Option<&str>) -> Reply {
    let names: Vec<String> = web
        .index
        .mailboxes()
        .into_iter()
        .filter(|n| scope.is_none_or(|s| s == n))
        .collect();
    json_reply(200, &json!({ "mailboxes": names }))
}

/// Reads a message for decoding, within [`MAX_DECODED`].
fn read_message(m: &Indexed) -> Result<Vec<u8>, Reply> {
    let file = std::fs::File::open(&m.path).map_err(|_| error(404, "no such message"))?;
    let mut raw = Vec::new();
    file.take(MAX_DECODED + 1)
        .read_to_end(&mut raw)
        .map_err(|_| error(500, "cannot read the message"))?;
    if raw.len() as u64 > MAX_DECODED {
        return Err(error(413, "message too large to decode; get its raw form"));
    }
    Ok(raw)
}

/// The listing and the decoded message, as `mailctl parse --json` gives it.
fn detail_value(m: &Indexed) -> Result<Value, Reply> {
    let raw = read_message(m)?;
    let mut value = json!(m.listing);
    match crate::mail::extract::summarize(&raw) {
        Ok(summary) => {
            if let (Some(out), Value::Object(parsed)) = (value.as_object_mut(), json!(summary)) {
                out.extend(parsed);
            }
        }
        Err(e) => value["warnings"] = json!([format!("{e:#}")]),
    }
    Ok(value)
}

fn detail(m: &Indexed) -> Reply {
    match detail_value(m) {
        Ok(v) => json_reply(200, &v),
        Err(e) => e,
    }
}

fn html(m: &Indexed) -> Reply {
    let raw = match read_message(m) {
        Ok(raw) => raw,
        Err(e) => return e,
    };
    match crate::mail::view::safe_html(&raw) {
        Ok(Some(html)) => {
            let page = format!("<!doctype html><meta charset=\"utf-8\">{html}");
            body(200, "text/html; charset=utf-8", page.into_bytes())
                .with_header("Content-Security-Policy", MAIL_POLICY)
        }
        _ => error(404, "this message has no HTML body"),
    }
}

fn part(m: &Indexed, number: &str, download: bool) -> Reply {
    let raw = match read_message(m) {
        Ok(raw) => raw,
        Err(e) => return e,
    };
    let Ok(Some(p)) = crate::mail::view::part(&raw, number) else {
        return error(404, "no such part");
    };
    let content_type = match &p.charset {
        Some(_) if p.content_type.starts_with("text/") => {
            format!("{}; charset=utf-8", p.content_type)
        }
        _ => p.content_type.clone(),
    };
    let kind = if download { "attachment" } else { "inline" };
    let disposition = match &p.name {
        Some(name) => format!("{kind}; filename*=UTF-8''{}", percent_encoded(name)),
        None => kind.to_string(),
    };
    body(200, &content_type, p.data)
        .with_header("Content-Disposition", &disposition)
        .with_header("Content-Security-Policy", MAIL_POLICY)
}

/// `%XX` escapes for everything but RFC 5987 `attr-char`s.
fn percent_encoded(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Removes one message; 409 while a POP3 session holds its mailbox.
fn delete(web: &Web, m: &Indexed) -> Result<(), Reply> {
    match crate::store::index::remove(&web.store, m) {
        Ok(()) => {
            web.index.forget(&m.listing.id);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
            Err(error(409, "the mailbox is open in a POP3 session"))
        }
        Err(_) => Err(error(500, "cannot delete the message")),
    }
}

fn delete_all(web: &Web, filter: &Filter) -> Reply {
    web.index.scan();
    let (_, messages) = web.index.query(filter, 0, usize::MAX);
    let mut deleted = 0;
    for m in &messages {
        match delete(web, m) {
            Ok(()) => deleted += 1,
            Err(e) => return e,
        }
    }
    json_reply(200, &json!({ "deleted": deleted }))
}

/// The newest message passing `filter`, waiting for one to arrive.
fn wait(web: &Web, filter: &Filter, timeout: Option<String>) -> Reply {
    let timeout = match timeout.map(|t| t.parse::<f64>()) {
        None => DEFAULT_WAIT,
        Some(Ok(secs)) if (0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) => {
            Duration::from_secs_f64(secs)
        }
        Some(_) => return error(400, "timeout: expected seconds, at most 300"),
    };
    let deadline = Instant::now() + timeout;
    loop {
        web.index.scan();
        if let Some(m) = web.index.query(filter, 0, 1).1.first() {
            return detail(m);
        }
        if !web.hub.wait_for_scan(deadline) {
            if web.hub.is_closed() {
                return error(503, "the server is stopping");
            }
            return error(408, "no matching message arrived in time");
        }
    }
}

fn faults(web: &Web) -> Reply {
    let rules = web.faults.lock().unwrap_or_else(|e| e.into_inner()).texts();
    json_reply(200, &json!({ "rules": rules }))
}

/// Replaces the fault rules: a JSON array of rules, or `{"rules": [...]}`,
/// or plain text with one rule a line.
fn put_faults(web: &Web, body: &[u8]) -> Reply {
    let text = match std::str::from_utf8(body) {
        Ok(text) if body.len() <= MAX_RULES => text,
        _ => return error(400, "the rules must be UTF-8 text of at most 64 KiB"),
    };
    let parsed = rule_texts(text).and_then(|rules| {
        rules
            .iter()
            .map(|r| parse_rule(r).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
    });
    match parsed {
        Ok(rules) => {
            *web.faults.lock().unwrap_or_else(|e| e.into_inner()) = Faults::new(rules);
            faults(web)
        }
        Err(e) => error(400, &e),
    }
}

fn rule_texts(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('[') && !trimmed.starts_with('{') {
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let list = value.get("rules").unwrap_or(&value);
    serde_json::from_value(list.clone())
        .map_err(|_| "expected an array of rule strings".to_string())
}

/// `/api/events`: server-sent events until the client goes away, falls
/// so far behind that its queue fills, or the server stops.
pub fn events(web: &Web, out: &mut impl Write) {
    let queue = web.hub.listen();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
        Cache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n\
        : mailctl events\n\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    loop {
        let text = match queue.recv_timeout(Duration::from_secs(15)) {
            Ok(event) => event.to_sse(),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => ": keep-alive\n\n".to_string(),
            Err(_) => return,
        };
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_rules() {
        let (path, params) = split_url("/api/messages?subject=%E6%B5%8B+x&to=a%40b&x");
        assert_eq!(path, "/api/messages");
        assert_eq!(
            params,
            [
                ("subject".to_string(), "测 x".to_string()),
                ("to".into(), "a@b".into()),
                ("x".into(), String::new())
            ]
        );
        assert_eq!(percent_encoded("报告 1.txt"), "%E6%8A%A5%E5%91%8A%201.txt");
        assert_eq!(rule_texts("a\n# c\n\nb\n").unwrap(), ["a", "b"]);
        assert_eq!(rule_texts("[\"a\"]").unwrap(), ["a"]);
        assert_eq!(rule_texts("{\"rules\": [\"b\"]}").unwrap(), ["b"]);
        assert!(rule_texts("[1]").is_err());
    }
}
