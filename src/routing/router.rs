//! The one routing step that HTTP, WebSocket, h2c and CONNECT requests all go through:
//! a request head in, a [`Plan`] (or a [`Refusal`]) out.

use super::error::RouteError;
use super::host_allow::{HostAllowList, HostPattern};
use super::host_override::{self, HostOverrideDefault};
use super::loop_guard::LoopGuard;
use super::machine;
use super::parse::{agreed, header_text, parse_wait_ms};
use super::plan::{Direct, Exchange, Head, Plan, Reason, Refusal};
use super::policy::{PortRange, TargetPolicy, WaitPolicy};
use super::protocol::{self, UpstreamProtocol};
use super::resolve::{resolve, RouteRequest};
use crate::names::{PORT, WAIT, WORKSPACE};
use std::net::{IpAddr, SocketAddr};

/// Whether this proxy serves its own machine's workspaces or forwards to other
/// machines' proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Node,
    /// `domain`: the `edge_domain` of the `<workspace>-<port>--<machine>` Host form.
    Edge {
        domain: Option<String>,
    },
}

/// The routing rules, fixed at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRules {
    pub mode: Mode,
    /// `--upstream-host`, for requests that name no workspace.
    pub upstream_host: IpAddr,
    pub wait: WaitPolicy,
    pub targets: TargetPolicy,
    /// The `Host` a target gets when a request sends no `X-Cmux-Host-Override`.
    pub host_override: HostOverrideDefault,
    /// Target ports spoken to in h2c.
    pub h2c_ports: Vec<PortRange>,
    /// Names besides the local ones that a request's `Host` may have (`public_hosts`).
    pub public_hosts: Vec<HostPattern>,
}

/// Turns request heads into plans.
pub struct Router {
    pub rules: RouteRules,
    pub loops: LoopGuard,
    hosts: HostAllowList,
}

impl Router {
    /// `own` are every address this process listens on (proxy and admin): never a
    /// target, and names a request's `Host` may have. `local_ips` are the machine's
    /// interface addresses when one of `own` is a wildcard (empty otherwise).
    pub fn new(rules: RouteRules, own: Vec<SocketAddr>, local_ips: Vec<IpAddr>) -> Self {
        let own_ips = own
            .iter()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified())
            .chain(local_ips.iter().copied())
            .collect();
        let domain = match &rules.mode {
            Mode::Edge { domain } => domain.as_deref(),
            Mode::Node => None,
        };
        let hosts = HostAllowList::new(rules.public_hosts.clone(), own_ips, domain);
        Router {
            loops: LoopGuard::new(own, local_ips),
            rules,
            hosts,
        }
    }

    /// Where the request goes. Pure: no I/O (an edge's DNS look-up comes after).
    pub fn plan(&self, head: &Head<'_>) -> Result<Plan, Refusal> {
        self.check_host(head)?;
        match &self.rules.mode {
            Mode::Node => self.direct(head).map(Plan::Direct),
            Mode::Edge { domain } => {
                let upgrade = head.exchange == Exchange::Upgrade;
                let hop = machine::hop(head.headers, domain.as_deref(), upgrade)?;
                Ok(Plan::Edge(Box::new(hop)))
            }
        }
    }

    /// Refuses a `Host` the proxy is not known by (DNS rebinding). CONNECT is not
    /// checked: a browser page cannot send one, and its authority is not a routing
    /// input. Neither is a request without any host (HTTP/1.0 without `Host`): a
    /// browser always sends one. An edge's hop keeps the client's `Host`, which the
    /// edge checked.
    fn check_host(&self, head: &Head<'_>) -> Result<(), Refusal> {
        if head.exchange == Exchange::Connect || head.vouched {
            return Ok(());
        }
        // A Host that is not text is checked as U+FFFD (refused), never skipped.
        let host = match head.headers.get(http::header::HOST) {
            Some(value) => Some(header_text(value)),
            None => head.uri_host,
        };
        match host {
            Some(host) if !self.hosts.allows(host) => Err(Refusal {
                reason: Reason::HostNotAllowed(host.to_string()),
                target: None,
            }),
            _ => Ok(()),
        }
    }

    fn direct(&self, head: &Head<'_>) -> Result<Direct, Refusal> {
        let headers = head.headers;
        let host = head.host();
        let request = RouteRequest {
            port: agreed(headers, &PORT.wire),
            workspace: agreed(headers, &WORKSPACE.wire),
            host,
        };
        let target = resolve(request, self.rules.upstream_host)?;
        if self.loops.refuses(headers, target.addr) {
            return Err(Refusal::at(Reason::Loop, &target));
        }
        if let Err(why) = self.rules.targets.check(&target) {
            return Err(Refusal::at(Reason::Forbidden(why), &target));
        }
        let wait_ms = headers
            .get(&WAIT.wire)
            .map(|v| parse_wait_ms(header_text(v)))
            .transpose()?;
        let wait = self.rules.wait.budget(wait_ms);
        let port = target.addr.port();
        let invalid = |e: RouteError| Refusal::at(Reason::Invalid(e), &target);
        let (host_override, protocol) = match head.exchange {
            Exchange::Connect => (None, UpstreamProtocol::Http1),
            exchange => {
                let default = self.rules.host_override;
                let host = host_override::wanted(headers, default, port).map_err(invalid)?;
                let upgrade = exchange == Exchange::Upgrade;
                let h2c_ports = &self.rules.h2c_ports;
                let protocol =
                    protocol::choose(headers, port, h2c_ports, upgrade).map_err(invalid)?;
                (host, protocol)
            }
        };
        Ok(Direct {
            target,
            wait,
            host_override,
            protocol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::parse::header_map as headers;
    use http::{HeaderMap, HeaderValue};
    use std::time::Duration;

    fn rules(mode: Mode) -> RouteRules {
        RouteRules {
            mode,
            upstream_host: "127.0.0.1".parse().unwrap(),
            wait: WaitPolicy {
                default: Duration::from_secs(2),
                max: Duration::from_secs(30),
            },
            targets: TargetPolicy::default(),
            host_override: HostOverrideDefault::Keep,
            h2c_ports: Vec::new(),
            public_hosts: vec![HostPattern::parse("*.preview.test").unwrap()],
        }
    }

    fn router() -> Router {
        Router::new(
            rules(Mode::Node),
            vec!["127.0.0.1:8080".parse().unwrap()],
            vec![],
        )
    }

    fn plan(r: &Router, h: &HeaderMap, exchange: Exchange) -> Result<Plan, Refusal> {
        r.plan(&Head {
            headers: h,
            uri_host: None,
            exchange,
            vouched: false,
        })
    }

    fn direct(r: &Router, h: &HeaderMap, exchange: Exchange) -> Result<Direct, Refusal> {
        match plan(r, h, exchange)? {
            Plan::Direct(d) => Ok(d),
            other => panic!("not direct: {other:?}"),
        }
    }

    #[test]
    fn routes_with_wait_budget() {
        let r = router();
        let h = headers(&[("x-cmux-port-internal", "3000"), ("x-cmux-wait-ms", "500")]);
        let got = direct(&r, &h, Exchange::Http).unwrap();
        assert_eq!(got.target.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(got.wait, Duration::from_millis(500));
        let by_host = r.plan(&Head {
            headers: &headers(&[]),
            uri_host: Some("workspace-7-5173.localhost"),
            exchange: Exchange::Http,
            vouched: false,
        });
        let Ok(Plan::Direct(d)) = by_host else {
            panic!("{by_host:?}")
        };
        assert_eq!(d.target.addr, "127.18.0.7:5173".parse().unwrap());
    }

    #[test]
    fn refuses_loops_and_bad_waits() {
        let r = router();
        let own = direct(
            &r,
            &headers(&[("x-cmux-port-internal", "8080")]),
            Exchange::Http,
        );
        assert_eq!(own.unwrap_err().reason, Reason::Loop);
        let via = r.loops.via.clone();
        let h = headers(&[("x-cmux-port-internal", "3000"), ("via", &via)]);
        for exchange in [Exchange::Http, Exchange::Upgrade, Exchange::Connect] {
            let seen = direct(&r, &h, exchange).unwrap_err();
            assert_eq!(seen.reason, Reason::Loop);
            assert_eq!(seen.target.unwrap().addr, "127.0.0.1:3000".parse().unwrap());
        }
        let h = headers(&[("x-cmux-port-internal", "3000"), ("x-cmux-wait-ms", "soon")]);
        let wait = direct(&r, &h, Exchange::Http).unwrap_err();
        assert_eq!(wait, RouteError::BadWait("soon".into()).into());
    }

    #[test]
    fn connect_ignores_the_http_only_headers() {
        let r = router();
        let h = headers(&[
            ("x-cmux-port-internal", "3000"),
            ("x-cmux-host-override", "not a host"),
            ("x-cmux-upstream-protocol", "spdy"),
        ]);
        let bad = direct(&r, &h, Exchange::Http).unwrap_err();
        assert!(matches!(
            bad.reason,
            Reason::Invalid(RouteError::BadHostOverride(_))
        ));
        assert!(bad.target.is_some(), "the target is named in the answer");
        let tunnel = direct(&r, &h, Exchange::Connect).unwrap();
        assert_eq!(tunnel.host_override, None);
        assert_eq!(tunnel.protocol, UpstreamProtocol::Http1);
    }

    #[test]
    fn an_edge_plans_a_hop() {
        let domain = Some("edge.example".to_string());
        let r = Router::new(rules(Mode::Edge { domain }), vec![], vec![]);
        let h = headers(&[
            ("host", "workspace-7-5173--m1.edge.example"),
            ("content-type", "application/grpc"),
        ]);
        let Ok(Plan::Edge(hop)) = plan(&r, &h, Exchange::Http) else {
            panic!("no hop")
        };
        assert_eq!((hop.machine.as_str(), hop.port), ("m1", 5173));
        assert_eq!(hop.protocol, UpstreamProtocol::H2c);
        let Ok(Plan::Edge(hop)) = plan(&r, &h, Exchange::Upgrade) else {
            panic!("no hop")
        };
        assert_eq!(hop.protocol, UpstreamProtocol::Http1);
        let none = plan(
            &r,
            &headers(&[("x-cmux-port-internal", "1")]),
            Exchange::Connect,
        );
        assert_eq!(none, Err(RouteError::MissingMachine.into()));
    }

    #[test]
    fn a_host_not_on_the_allow_list_is_refused_on_http_paths() {
        let r = router();
        let port = ("x-cmux-port-internal", "3000");
        for host in ["rebind.attacker.test:8080", "preview.test"] {
            let h = headers(&[port, ("host", host)]);
            for exchange in [Exchange::Http, Exchange::Upgrade] {
                let refused = direct(&r, &h, exchange).unwrap_err();
                assert_eq!(refused.reason, Reason::HostNotAllowed(host.into()));
            }
            // CONNECT is not a browser's; an edge's hop keeps the client's Host.
            assert!(direct(&r, &h, Exchange::Connect).is_ok());
            let hop = r.plan(&Head {
                headers: &h,
                uri_host: None,
                exchange: Exchange::Http,
                vouched: true,
            });
            assert!(hop.is_ok(), "{hop:?}");
        }
        for host in ["127.0.0.1:8080", "localhost", "app-7.preview.test"] {
            let h = headers(&[port, ("host", host)]);
            assert!(direct(&r, &h, Exchange::Http).is_ok(), "{host}");
        }
        let mut binary = headers(&[port]);
        binary.insert("host", HeaderValue::from_bytes(b"evil\xff.test").unwrap());
        let refused = direct(&r, &binary, Exchange::Http).unwrap_err();
        assert!(matches!(refused.reason, Reason::HostNotAllowed(_)));
        // The host of an absolute request target counts when there is no Host.
        let absolute = r.plan(&Head {
            headers: &headers(&[port]),
            uri_host: Some("evil.test"),
            exchange: Exchange::Http,
            vouched: false,
        });
        assert_eq!(
            absolute.unwrap_err().reason,
            Reason::HostNotAllowed("evil.test".into())
        );
    }

    #[test]
    fn a_via_that_is_not_utf8_loops_on_every_path() {
        let r = router();
        let mut raw = format!("1.1 \u{e9}, {}, 1.1 ", r.loops.via).into_bytes();
        raw.push(0xff);
        let mut h = headers(&[("x-cmux-port-internal", "3000")]);
        h.append("via", HeaderValue::from_bytes(&raw).unwrap());
        for exchange in [Exchange::Http, Exchange::Upgrade, Exchange::Connect] {
            let refused = direct(&r, &h, exchange).unwrap_err();
            assert_eq!(refused.reason, Reason::Loop, "{exchange:?}");
        }
        // An edge checks the node it found with the same guard.
        let node = "10.0.3.7:8080".parse().unwrap();
        assert!(r.loops.refuses(&h, node));
    }
}
