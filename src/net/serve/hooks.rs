//! Where the SMTP sessions meet the web inbox and the fault rules: a
//! delivery wakes the inbox, and each stage of a session asks the rules
//! whether to answer with a fault instead.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::net::http::events::Hub;
use crate::proto::smtp::fault::{Faults, Stage};
use crate::proto::smtp::server::SmtpServer;

/// The hooks of a server (all off by default).
#[derive(Clone, Default)]
pub struct Hooks {
    /// Told of each delivery, with `--http`.
    pub hub: Option<Arc<Hub>>,
    /// The fault rules (`--fault`, `PUT /api/faults`).
    pub faults: Arc<Mutex<Faults>>,
}

impl Hooks {
    /// Says that a message was delivered into these files.
    pub fn delivered(&self, paths: &[PathBuf]) {
        if let Some(hub) = &self.hub {
            hub.delivered(paths);
        }
    }

    /// The fault reply for `stage` about `subjects`, if a rule fires.
    pub fn fault(&self, stage: Stage, subjects: &[&str]) -> Option<Vec<u8>> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if faults.is_empty() {
            return None;
        }
        faults.check(stage, subjects)
    }

    /// The fault reply for a client's command line, if a rule fires (never
    /// for the lines of an AUTH exchange).
    pub fn command_fault(&self, machine: &SmtpServer, line: &[u8]) -> Option<Vec<u8>> {
        if machine.in_auth_exchange() {
            return None;
        }
        let (stage, subject) = Stage::of_command(line)?;
        if stage == Stage::Data {
            let recipients: Vec<&str> = machine.recipients().iter().map(String::as_str).collect();
            return self.fault(stage, &recipients);
        }
        self.fault(stage, &[&subject])
    }
}
