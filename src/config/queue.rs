//! The outbox settings of the configuration file: the folder, when
//! sendmail mode queues, how long entries are retried, the sending rate,
//! the sent copy. An account's keys win over the top-level ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{self, Loaded, QueueKeys, QueueMode};
use super::resolve::{choose_account, default_path};

/// The outbox settings in effect for one account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// The `outbox` folder, if the file names one.
    pub outbox: Option<PathBuf>,
    /// `queue = "on-failure"`.
    pub queue_on_failure: bool,
    /// `queue_max_age`, if set.
    pub max_age: Option<Duration>,
    /// `rate`: at most `.0` messages per `.1`.
    pub rate: Option<Rate>,
    /// `save_copy`, if set.
    pub save_copy: Option<String>,
}

/// At most `count` messages per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Messages...
    pub count: u32,
    /// ...per this long.
    pub period: Duration,
}

impl Rate {
    /// The shortest time between two messages.
    pub fn interval(&self) -> Duration {
        self.period / self.count.max(1)
    }
}

/// Parses `30/min`, `2/s`, `500/h`, `1000/day`.
pub fn parse_rate(text: &str) -> Option<Rate> {
    let (count, unit) = text.trim().split_once('/')?;
    let count: u32 = count.trim().parse().ok().filter(|&c| c > 0)?;
    let secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        _ => return None,
    };
    Some(Rate {
        count,
        period: Duration::from_secs(secs),
    })
}

/// Parses a duration: whole seconds, or a number followed by `s`, `m`,
/// `h` or `d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(factor).map(Duration::from_secs)
}

/// The outbox settings for `account` (`None`: the file's default
/// account, if it has one) from the file `config` (else the default
/// path). A missing default file gives the defaults; a bad value is an
/// error naming its line (exit 78).
pub fn queue_settings(
    account: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<QueueSettings> {
    let path = match config.map(Path::to_path_buf).or_else(default_path) {
        Some(path) => path,
        None => return Ok(QueueSettings::default()),
    };
    if config.is_none() && file::is_absent(&path) {
        return Ok(QueueSettings::default());
    }
    let loaded = file::load(&path)?;
    let top = loaded.file.queue_keys();
    let keys = match choose_account(&loaded, account) {
        Ok(name) => loaded
            .file
            .accounts
            .get(name)
            .map_or(top, |a| a.queue_keys().or(top)),
        Err(err) if account.is_some() => return Err(err),
        Err(_) => top,
    };
    settings_from(&loaded, keys)
}

/// Checks one table's outbox keys (for `config check`): a bad value is an
/// error naming its line.
pub fn check_keys(loaded: &Loaded, keys: QueueKeys<'_>) -> anyhow::Result<()> {
    settings_from(loaded, keys).map(drop)
}

/// The settings the keys give, each checked.
fn settings_from(loaded: &Loaded, keys: QueueKeys<'_>) -> anyhow::Result<QueueSettings> {
    let max_age = keys
        .queue_max_age
        .map(|v| {
            parse_duration(v.get_ref()).ok_or_else(|| {
                loaded.error_at(
                    v.span(),
                    "queue_max_age: expected seconds or a number with s, m, h or d (such as 5d)",
                )
            })
        })
        .transpose()?;
    let rate = keys
        .rate
        .map(|v| {
            parse_rate(v.get_ref()).ok_or_else(|| {
                loaded.error_at(v.span(), "rate: expected COUNT/UNIT, such as 30/min")
            })
        })
        .transpose()?;
    Ok(QueueSettings {
        outbox: loaded.file.outbox.as_ref().map(|p| p.get_ref().clone()),
        queue_on_failure: keys
            .queue
            .is_some_and(|q| *q.get_ref() == QueueMode::OnFailure),
        max_age,
        rate,
        save_copy: keys.save_copy.map(|s| s.get_ref().clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations() {
        let rate = parse_rate("30/min").unwrap();
        assert_eq!(rate.interval(), Duration::from_secs(2));
        assert_eq!(parse_rate("2/s").unwrap().count, 2);
        assert!(parse_rate("0/s").is_none() && parse_rate("3/week").is_none());
        assert_eq!(parse_duration("5d"), Some(Duration::from_secs(432_000)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert!(parse_duration("5 days").is_none() && parse_duration("").is_none());
    }

    #[test]
    fn account_keys_win_over_the_top_level() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "outbox = \"/tmp/ob\"\nqueue = \"on-failure\"\nrate = \"10/min\"\n\
             [accounts.a]\nrate = \"2/s\"\nqueue_max_age = \"1h\"\n\
             [accounts.a.smtp]\nhost = \"h\"\n\
             [accounts.b]\nqueue = \"never\"\nrate = \"often\"\n\
             [accounts.b.smtp]\nhost = \"h\"\n",
        )
        .unwrap();
        let err = queue_settings(Some("a"), Some(&path)).unwrap_err();
        assert!(format!("{err}").contains("c.toml:11: rate"), "{err}");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("often", "1/h")).unwrap();
        let a = queue_settings(Some("a"), Some(&path)).unwrap();
        assert_eq!(a.outbox.as_deref(), Some(Path::new("/tmp/ob")));
        assert!(a.queue_on_failure);
        assert_eq!(a.rate.unwrap().count, 2);
        assert_eq!(a.max_age, Some(Duration::from_secs(3600)));
        let b = queue_settings(Some("b"), Some(&path)).unwrap();
        assert!(!b.queue_on_failure && b.max_age.is_none());
    }
}
