//! Runs message commits (fsync, link into place, directory fsync) on worker
//! threads, so the disk works while the next messages arrive.
//!
//! With one thread, commits run in the order they were submitted (needed
//! for an mbox file, where one sync covers everything appended before it).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::sink::{Commit, Saved};

type Job = (usize, Box<dyn Commit>);
type Finished = (usize, anyhow::Result<Saved>);

/// A small pool of threads running [`Commit`]s.
pub struct Committer {
    jobs: Option<Sender<Job>>,
    done: Receiver<Finished>,
    workers: Vec<JoinHandle<()>>,
    in_flight: usize,
    finished_inline: Vec<Finished>,
}

impl Committer {
    /// Starts `threads` workers (at least one).
    pub fn new(threads: usize) -> Self {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<Finished>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads.max(1))
            .map(|_| {
                let job_rx = job_rx.clone();
                let done_tx = done_tx.clone();
                std::thread::spawn(move || loop {
                    let job = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((id, commit)) = job else { return };
                    if done_tx.send((id, commit.run())).is_err() {
                        return;
                    }
                })
            })
            .collect();
        Committer {
            jobs: Some(job_tx),
            done,
            workers,
            in_flight: 0,
            finished_inline: Vec::new(),
        }
    }

    /// Queues a commit; its result comes back with `id`.
    pub fn submit(&mut self, id: usize, commit: Box<dyn Commit>) {
        let sender = self.jobs.as_ref().expect("committer running");
        if let Err(mpsc::SendError((id, commit))) = sender.send((id, commit)) {
            // No worker is left (they only stop on a panic): commit here.
            let result = commit.run();
            self.in_flight += 1;
            self.finished_inline.push((id, result));
            return;
        }
        self.in_flight += 1;
    }

    /// Commits submitted and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A finished commit, if one is ready.
    pub fn try_next(&mut self) -> Option<Finished> {
        if self.in_flight == 0 {
            return None;
        }
        if let Some(f) = self.finished_inline.pop() {
            self.in_flight -= 1;
            return Some(f);
        }
        let f = self.done.try_recv().ok()?;
        self.in_flight -= 1;
        Some(f)
    }

    /// Waits for the next finished commit; `None` when none is in flight.
    pub fn wait_next(&mut self) -> Option<Finished> {
        if self.in_flight == 0 {
            return None;
        }
        if let Some(f) = self.finished_inline.pop() {
            self.in_flight -= 1;
            return Some(f);
        }
        let f = self.done.recv().ok()?;
        self.in_flight -= 1;
        Some(f)
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
