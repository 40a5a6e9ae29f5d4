//! Targets: what a `target:` resolves to. The ssh destination a target's `ssh` renders to is
//! checked here (it reaches the ssh command line: it must never read as an option), and split
//! into what `ssh` is given.

use serde::{Deserialize, Serialize};

/// Where a remote action runs: the target's name, its rendered ssh destination, and the shell
/// that runs the action there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub target: String,
    pub ssh: String,
    pub shell: String,
}

/// Why an ssh destination is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadDestination {
    #[error("it is empty")]
    Empty,
    #[error("it starts with `-`, which ssh would read as an option")]
    Option,
    #[error("it contains a space or a control character")]
    Blank,
    #[error("the port `{0}` is not a number from 1 to 65535")]
    Port(String),
}

/// A checked ssh destination: `[user@]host`, and a port when one was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// `[user@]host` (an IPv6 host keeps its brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl Destination {
    /// Reads `[user@]host[:port]`, `[user@][v6]:port` or an ssh config alias.
    pub fn parse(text: &str) -> Result<Self, BadDestination> {
        if text.is_empty() {
            return Err(BadDestination::Empty);
        }
        if text.starts_with('-') {
            return Err(BadDestination::Option);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BadDestination::Blank);
        }
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, text),
        };
        let with_user = |host: &str| match user {
            Some(u) => format!("{u}@{host}"),
            None => host.to_owned(),
        };
        // `[v6]:port`, or `host:port` with exactly one colon; a bare IPv6 address has no port.
        let split = if rest.starts_with('[') {
            rest.rsplit_once("]:").map(|(h, p)| (format!("{h}]"), p))
        } else if rest.matches(':').count() == 1 {
            rest.split_once(':').map(|(h, p)| (h.to_owned(), p))
        } else {
            None
        };
        let Some((host, port)) = split else {
            if rest.starts_with('-') {
                return Err(BadDestination::Option);
            }
            return Ok(Self {
                host: with_user(rest),
                port: None,
            });
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(BadDestination::Option);
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(Self {
                host: with_user(&host),
                port: Some(p),
            }),
            _ => Err(BadDestination::Port(port.to_owned())),
        }
    }

    /// What `ssh` is given as its destination argument: an `ssh://` URI when a port was
    /// written (ssh's own form for it), else the text as it is.
    pub fn argument(&self) -> String {
        match self.port {
            Some(port) => format!("ssh://{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Whether a script shell runs on a target with `target_shell`: the same family (Unix shells
/// on a Unix target, PowerShell on a Windows one).
pub fn same_family(shell: &str, target_shell: &str) -> bool {
    let windows = |s: &str| matches!(s, "powershell" | "pwsh");
    let unix = |s: &str| matches!(s, "sh" | "bash");
    (windows(shell) && windows(target_shell)) || (unix(shell) && unix(target_shell))
}

#[cfg(test)]
mod tests {
    use super::{BadDestination, Destination};

    #[test]
    fn destinations_are_split_into_host_and_port() {
        let d = |t: &str| Destination::parse(t).map(|d| d.argument());
        assert_eq!(d("files"), Ok("files".to_owned()));
        assert_eq!(d("admin@files"), Ok("admin@files".to_owned()));
        assert_eq!(
            d("admin@10.0.0.5:2222"),
            Ok("ssh://admin@10.0.0.5:2222".to_owned())
        );
        assert_eq!(d("[::1]:22"), Ok("ssh://[::1]:22".to_owned()));
        assert_eq!(d("::1"), Ok("::1".to_owned()));
    }

    #[test]
    fn destinations_that_ssh_would_read_as_options_are_refused() {
        let e = |t: &str| Destination::parse(t).err();
        assert_eq!(
            e("-oProxyCommand=touch /tmp/x"),
            Some(BadDestination::Option)
        );
        assert_eq!(e("-oProxyCommand=x"), Some(BadDestination::Option));
        assert_eq!(e("u@-oProxyCommand=x"), Some(BadDestination::Option));
        assert_eq!(e("a b"), Some(BadDestination::Blank));
        assert_eq!(e("host:0"), Some(BadDestination::Port("0".to_owned())));
        assert_eq!(e("host:ssh"), Some(BadDestination::Port("ssh".to_owned())));
        assert_eq!(e(""), Some(BadDestination::Empty));
    }
}
