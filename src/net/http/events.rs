//! Live events for the web inbox: deliveries wake a watcher that rescans
//! the index and announces new messages; transcript lines are passed on as
//! they are written. Each listener has a bounded queue: one that does not
//! keep up is dropped when its queue is full, instead of growing the
//! server's memory (its stream ends once the queue is drained).

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::store::index::MessageIndex;

/// Events queued per listener before further ones are dropped.
const QUEUE: usize = 512;

/// How often the watcher rescans without being woken (to see POP3
/// deletions and files other programs put in the Maildirs).
const RESCAN: Duration = Duration::from_millis(500);

/// One server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new message: its listing as JSON.
    Message(String),
    /// A transcript line.
    Log(String),
}

impl Event {
    /// The event in `text/event-stream` form.
    pub fn to_sse(&self) -> String {
        let (name, data) = match self {
            Event::Message(json) => ("message", json.as_str()),
            Event::Log(line) => ("log", line.as_str()),
        };
        let mut out = format!("event: {name}\n");
        for line in data.lines() {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// Where deliveries are announced and events handed out.
#[derive(Default)]
pub struct Hub {
    listeners: Mutex<Vec<SyncSender<Event>>>,
    /// Whether anyone listens (so that transcript lines are worth making).
    listened: Arc<AtomicBool>,
    /// Set when the server stops: no more listeners or waits.
    closed: AtomicBool,
    /// Messages delivered and not indexed yet.
    deliveries: Mutex<Vec<PathBuf>>,
    delivered: Condvar,
    /// Scans completed so far.
    scans: Mutex<u64>,
    scanned: Condvar,
}

impl Hub {
    /// A hub with no listeners.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Says that a message was just delivered into these files.
    pub fn delivered(&self, paths: &[PathBuf]) {
        self.deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(paths);
        self.delivered.notify_all();
    }

    /// True while someone listens to the events.
    pub fn listened(&self) -> Arc<AtomicBool> {
        self.listened.clone()
    }

    /// A new listener's queue (already ended once the hub is closed).
    pub fn listen(&self) -> Receiver<Event> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        if !self.is_closed() {
            self.listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tx);
            self.listened.store(true, Ordering::SeqCst);
        }
        rx
    }

    /// Hands an event to every listener, forgetting those gone and those
    /// whose queue is full (their streams end after what they hold).
    pub fn publish(&self, event: &Event) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.retain(|tx| tx.try_send(event.clone()).is_ok());
        self.listened.store(!listeners.is_empty(), Ordering::SeqCst);
    }

    /// Ends every listener's stream and every wait, for good.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.listened.store(false, Ordering::SeqCst);
        self.scanned.notify_all();
    }

    /// Whether [`Hub::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits until a scan completes after this call, or `deadline`;
    /// returns false at the deadline or once the hub is closed.
    pub fn wait_for_scan(&self, deadline: Instant) -> bool {
        let scans = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        let start = *scans;
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        let (scans, _) = self
            .scanned
            .wait_timeout_while(scans, left, |n| *n == start && !self.is_closed())
            .unwrap_or_else(|e| e.into_inner());
        *scans != start && !self.is_closed()
    }

    /// The watcher: indexes each delivery, rescans the folders every half a
    /// second, and announces the messages added. Runs for the life of the
    /// process.
    pub fn watch(self: Arc<Self>, index: Arc<MessageIndex>) {
        // The messages already stored are indexed here, not announced.
        index.scan();
        let mut last_scan = Instant::now();
        loop {
            let delivered = {
                let deliveries = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
                let (mut deliveries, _) = self
                    .delivered
                    .wait_timeout_while(deliveries, RESCAN, |d| d.is_empty())
                    .unwrap_or_else(|e| e.into_inner());
                std::mem::take(&mut *deliveries)
            };
            let mut added = index.add_delivered(&delivered);
            if last_scan.elapsed() >= RESCAN {
                added.extend(index.scan());
                last_scan = Instant::now();
            }
            for added in added {
                if let Ok(json) = serde_json::to_string(&added.listing) {
                    self.publish(&Event::Message(json));
                }
            }
            *self.scans.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            self.scanned.notify_all();
        }
    }
}

/// The transcript's sink when the web inbox is on: every line goes to the
/// hub as a `log` event, and to stderr as well with `-v`.
pub struct LogSink {
    hub: Arc<Hub>,
    stderr: bool,
    partial: Vec<u8>,
}

impl LogSink {
    /// A sink publishing to `hub`, copying to stderr when `stderr`.
    pub fn new(hub: Arc<Hub>, stderr: bool) -> LogSink {
        LogSink {
            hub,
            stderr,
            partial: Vec::new(),
        }
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.stderr {
            io::stderr().write_all(buf)?;
        }
        self.partial.extend_from_slice(buf);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..nl]).into_owned();
            self.hub.publish(&Event::Log(text));
        }
        if self.partial.len() > 64 * 1024 {
            self.partial.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_listeners_in_sse_form() {
        let hub = Hub::new();
        let rx = hub.listen();
        let mut sink = LogSink::new(hub.clone(), false);
        sink.write_all(b"[1] C: EHLO x\n[1] S: 250").unwrap();
        sink.write_all(b" ok\n").unwrap();
        assert_eq!(
            rx.try_recv().unwrap().to_sse(),
            "event: log\ndata: [1] C: EHLO x\n\n"
        );
        assert_eq!(rx.try_recv().unwrap(), Event::Log("[1] S: 250 ok".into()));
        drop(rx);
        hub.publish(&Event::Message("{}".into()));
        assert!(hub.listeners.lock().unwrap().is_empty());
    }

    #[test]
    fn a_slow_listener_is_dropped_not_memory_grown() {
        let hub = Hub::new();
        let (slow, quick) = (hub.listen(), hub.listen());
        for n in 0..QUEUE * 3 {
            hub.publish(&Event::Log(n.to_string()));
            assert_eq!(quick.try_recv().unwrap(), Event::Log(n.to_string()));
        }
        assert_eq!(slow.try_iter().count(), QUEUE);
        assert!(matches!(
            slow.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        ));
        assert_eq!(hub.listeners.lock().unwrap().len(), 1);
        hub.close();
        assert!(matches!(
            quick.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        ));
        assert!(!hub.wait_for_scan(Instant::now() + Duration::from_secs(60)));
    }
}
