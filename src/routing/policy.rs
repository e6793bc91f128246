//! Routing policy: how long to wait for a closed port, and which targets may be named.

use super::target::Target;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// How long to keep retrying a target that refuses connections (a dev server that is
/// restarting), and how quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    pub default: Duration,
    pub max: Duration,
}

impl WaitPolicy {
    const FIRST_BACKOFF: Duration = Duration::from_millis(25);
    const MAX_BACKOFF: Duration = Duration::from_millis(250);

    /// The wait budget for one request: the header's value (capped) or the default.
    pub fn budget(&self, requested_ms: Option<u64>) -> Duration {
        match requested_ms {
            Some(ms) => Duration::from_millis(ms).min(self.max),
            None => self.default,
        }
    }

    /// Pause before retry number `attempt` (1-based): 25 ms doubling, at most 250 ms.
    pub fn backoff(attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(8);
        (Self::FIRST_BACKOFF * factor).min(Self::MAX_BACKOFF)
    }
}

/// A range of ports, `3000-3999`, or one port, `5432`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange(pub RangeInclusive<u16>);

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid port range {s:?}: expected PORT or FIRST-LAST, 1-65535");
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(bad)
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(s)?, port(s)?),
        };
        if first > last {
            return Err(bad());
        }
        Ok(PortRange(first..=last))
    }
}

/// Which targets requests may name, beyond the proxy's own listeners (never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Whether a request that names no workspace may reach `--upstream-host`.
    pub allow_default_upstream: bool,
    /// Ports a target may have; empty: any.
    pub allowed_ports: Vec<PortRange>,
    /// Ports a target may never have.
    pub denied_ports: Vec<PortRange>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        TargetPolicy {
            allow_default_upstream: true,
            allowed_ports: Vec::new(),
            denied_ports: Vec::new(),
        }
    }
}

impl TargetPolicy {
    /// `Err` says why the policy refuses `target`.
    pub fn check(&self, target: &Target) -> Result<(), String> {
        if target.workspace.is_none() && !self.allow_default_upstream {
            return Err(format!(
                "{} names no workspace, and allow_default_upstream is false",
                target.describe()
            ));
        }
        let port = target.addr.port();
        let listed = |ranges: &[PortRange]| ranges.iter().any(|r| r.0.contains(&port));
        if listed(&self.denied_ports) {
            return Err(format!("port {port} is in denied_ports"));
        }
        if !self.allowed_ports.is_empty() && !listed(&self.allowed_ports) {
            return Err(format!("port {port} is not in allowed_ports"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let steps: Vec<u64> = (1..=6)
            .map(|a| WaitPolicy::backoff(a).as_millis() as u64)
            .collect();
        assert_eq!(steps, vec![25, 50, 100, 200, 250, 250]);
        assert_eq!(WaitPolicy::backoff(1000), Duration::from_millis(250));
    }

    #[test]
    fn budget_is_capped() {
        let p = WaitPolicy {
            default: Duration::from_secs(2),
            max: Duration::from_secs(30),
        };
        assert_eq!(p.budget(None), Duration::from_secs(2));
        assert_eq!(p.budget(Some(0)), Duration::ZERO);
        assert_eq!(p.budget(Some(u64::MAX)), Duration::from_secs(30));
    }

    #[test]
    fn target_policy() {
        let target = |addr: &str, ws: Option<&str>| Target {
            addr: addr.parse().unwrap(),
            workspace: ws.map(str::to_string),
        };
        let open = TargetPolicy::default();
        assert!(open.check(&target("127.0.0.1:22", None)).is_ok());
        let strict = TargetPolicy {
            allow_default_upstream: false,
            allowed_ports: vec!["3000-3999".parse().unwrap(), "5173".parse().unwrap()],
            denied_ports: vec!["3306".parse().unwrap()],
        };
        let e = strict.check(&target("127.0.0.1:3000", None)).unwrap_err();
        assert!(e.contains("allow_default_upstream"), "{e}");
        assert!(strict
            .check(&target("127.18.0.7:3000", Some("w-7")))
            .is_ok());
        assert!(strict
            .check(&target("127.18.0.7:5173", Some("w-7")))
            .is_ok());
        let e = strict
            .check(&target("127.18.0.7:22", Some("w-7")))
            .unwrap_err();
        assert!(e.contains("not in allowed_ports"), "{e}");
        let e = strict
            .check(&target("127.18.0.7:3306", Some("w-7")))
            .unwrap_err();
        assert!(e.contains("denied_ports"), "{e}");
        assert!("0".parse::<PortRange>().is_err() && "9-1".parse::<PortRange>().is_err());
    }
}
