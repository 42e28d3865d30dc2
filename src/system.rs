//! What mailctl asks of the system it runs on: where its files live.

use std::path::PathBuf;

use etcetera::base_strategy::{BaseStrategy, Xdg};

/// The XDG base directories, honoured on every platform; `None` without a
/// home directory.
fn xdg() -> Option<Xdg> {
    Xdg::new().ok()
}

/// mailctl's configuration folder: `$XDG_CONFIG_HOME/mailctl` (an absolute
/// path only), else `~/.config/mailctl`.
pub fn config_dir() -> Option<PathBuf> {
    Some(xdg()?.config_dir().join("mailctl"))
}

/// mailctl's state folder: `$XDG_STATE_HOME/mailctl` (an absolute path
/// only), else `~/.local/state/mailctl`.
pub fn state_dir() -> Option<PathBuf> {
    Some(xdg()?.state_dir()?.join("mailctl"))
}

/// The user's home directory.
pub fn home_dir() -> Option<PathBuf> {
    etcetera::home_dir().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_under_the_home_or_the_absolute_variables() {
        // Only the defaults can be checked without changing the
        // environment of the other tests.
        let Some(home) = home_dir() else { return };
        let config = config_dir().unwrap();
        let state = state_dir().unwrap();
        assert!(config.ends_with("mailctl") && state.ends_with("mailctl"));
        match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => assert_eq!(config, dir.join("mailctl")),
            _ => assert_eq!(config, home.join(".config/mailctl")),
        }
        match std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => assert_eq!(state, dir.join("mailctl")),
            _ => assert_eq!(state, home.join(".local/state/mailctl")),
        }
    }
}
