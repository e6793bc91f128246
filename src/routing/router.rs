//! The one routing pipeline that HTTP, WebSocket and CONNECT requests all go through:
//! headers in; target, loop check and wait budget out.

use super::error::RouteError;
use super::headers::{PORT, WAIT, WORKSPACE};
use super::parse::{parse_wait_ms, single_value};
use super::policy::{LoopGuard, TargetPolicy, WaitPolicy};
use super::resolve::{resolve, Agreed, RouteRequest};
use super::target::Target;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A request the router accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub target: Target,
    /// How long refused connections to the target may be retried.
    pub wait_budget: Duration,
}

/// A request the router refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The routing headers are missing or invalid (400).
    Invalid(RouteError),
    /// The request would reach this proxy again, at this target (508).
    Loop(Target),
    /// The target policy refuses this target (403), for this reason.
    Forbidden(Target, String),
}

impl From<RouteError> for Refused {
    fn from(e: RouteError) -> Self {
        Refused::Invalid(e)
    }
}

/// Routing settings, fixed at start-up.
pub struct Router {
    /// `--upstream-host`, for requests that name no workspace.
    pub upstream_host: IpAddr,
    pub loops: LoopGuard,
    pub wait: WaitPolicy,
    pub targets: TargetPolicy,
}

/// A header value as text; a value that is not UTF-8 shows as U+FFFD, so that it can
/// still be named in an error.
fn text(value: &HeaderValue) -> &str {
    std::str::from_utf8(value.as_bytes()).unwrap_or("\u{FFFD}")
}

/// The value a header's copies agree on (see [`single_value`]).
fn agreed<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Agreed<'a> {
    single_value(headers.get_all(name).iter().map(text))
}

impl Router {
    /// `own` are every address this process listens on (proxy and admin): never a
    /// target.
    pub fn new(
        upstream_host: IpAddr,
        own: Vec<SocketAddr>,
        wait: WaitPolicy,
        targets: TargetPolicy,
    ) -> Self {
        Router {
            upstream_host,
            loops: LoopGuard::new(own),
            wait,
            targets,
        }
    }

    /// Routes one request head. `uri_host` is the host of an absolute request target,
    /// used when there is no `Host` header (never for CONNECT, whose authority is
    /// ignored).
    pub fn route(&self, headers: &HeaderMap, uri_host: Option<&str>) -> Result<Routed, Refused> {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(uri_host);
        let request = RouteRequest {
            port: agreed(headers, &PORT),
            workspace: agreed(headers, &WORKSPACE),
            host,
        };
        let target = resolve(request, self.upstream_host)?;
        let via = headers.get_all(http::header::VIA).iter().map(text);
        if self.loops.seen_in(via) || self.loops.is_own_listener(target.addr) {
            return Err(Refused::Loop(target));
        }
        if let Err(why) = self.targets.check(&target) {
            return Err(Refused::Forbidden(target, why));
        }
        let wait_ms = headers
            .get(&WAIT)
            .map(|v| parse_wait_ms(text(v)))
            .transpose()?;
        Ok(Routed {
            target,
            wait_budget: self.wait.budget(wait_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::headers::header_map as headers;

    fn router() -> Router {
        let wait = WaitPolicy {
            default: Duration::from_secs(2),
            max: Duration::from_secs(30),
        };
        Router::new(
            "127.0.0.1".parse().unwrap(),
            vec!["127.0.0.1:8080".parse().unwrap()],
            wait,
            TargetPolicy::default(),
        )
    }

    #[test]
    fn routes_with_wait_budget() {
        let r = router();
        let got = r
            .route(
                &headers(&[("x-cmux-port-internal", "3000"), ("x-cmux-wait-ms", "500")]),
                None,
            )
            .unwrap();
        assert_eq!(got.target.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(got.wait_budget, Duration::from_millis(500));
        let got = r.route(&headers(&[]), Some("workspace-7-5173.localhost"));
        assert_eq!(got.unwrap().target.addr, "127.18.0.7:5173".parse().unwrap());
    }

    #[test]
    fn refuses_loops_and_bad_waits() {
        let r = router();
        let own = r.route(&headers(&[("x-cmux-port-internal", "8080")]), None);
        assert!(matches!(own, Err(Refused::Loop(_))), "{own:?}");
        let via = r.loops.via.clone();
        let seen = r.route(
            &headers(&[("x-cmux-port-internal", "3000"), ("via", &via)]),
            None,
        );
        assert!(matches!(seen, Err(Refused::Loop(_))), "{seen:?}");
        let wait = r.route(
            &headers(&[("x-cmux-port-internal", "3000"), ("x-cmux-wait-ms", "soon")]),
            None,
        );
        assert_eq!(
            wait,
            Err(Refused::Invalid(RouteError::BadWait("soon".into())))
        );
    }
}
