//! What `herald discover` prints: every step with its answer or failure and its time, then the
//! registrar found. Text for admins, JSON for scripts.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};

/// The outcome of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The user walked for (`user@domain`).
    pub user: String,
    /// Whether the walk followed a mobile client's rules.
    pub mobile: bool,
    /// Every question asked, in order.
    pub steps: Vec<Step>,
    /// The registrar, when one was found.
    pub result: Option<Registrar>,
    /// Why the walk stopped without a result.
    pub stopped: Option<String>,
}

/// One question the walk asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// DNS or HTTP.
    pub kind: StepKind,
    /// What was asked (`SRV _sip._tls.contoso.com`, `GET https://…`).
    pub ask: String,
    /// The answer, or why there was none.
    pub outcome: Result<String, String>,
    /// How long it took.
    pub elapsed: Duration,
    /// What the walk concluded from it.
    pub notes: Vec<String>,
}

/// The kind of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A DNS lookup.
    Dns,
    /// An HTTP GET.
    Http,
}

/// The server a client would register with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    /// Its FQDN.
    pub fqdn: String,
    /// Its port.
    pub port: u16,
    /// TLS or TCP.
    pub transport: Transport,
    /// Whether the client is inside or outside the corporate network.
    pub location: Location,
    /// The step that found it (`autodiscover`, `SRV _sipinternaltls._tcp.contoso.com`, ...).
    pub via: String,
    /// What the FQDN resolved to.
    pub addresses: Vec<IpAddr>,
}

/// SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// SIP over TLS.
    Tls,
    /// SIP over TCP.
    Tcp,
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Inside the corporate network.
    Inside,
    /// Outside it.
    Outside,
}

impl Transport {
    /// `TLS` or `TCP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tls => "TLS",
            Transport::Tcp => "TCP",
        }
    }
}

impl Location {
    /// `inside` or `outside`.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Inside => "inside",
            Location::Outside => "outside",
        }
    }
}

impl StepKind {
    fn as_str(self) -> &'static str {
        match self {
            StepKind::Dns => "dns",
            StepKind::Http => "http",
        }
    }
}

impl Report {
    /// The human form: numbered steps, then the result.
    pub fn render_text(&self) -> String {
        let client = if self.mobile { "mobile" } else { "desktop" };
        let mut out = format!("Discovery for {} ({client} client)\n", self.user);
        for (i, s) in self.steps.iter().enumerate() {
            let answer = match &s.outcome {
                Ok(a) => a.clone(),
                Err(e) => format!("FAILED: {e}"),
            };
            let _ = writeln!(
                out,
                "{:>3}. {:<4} {}\n       -> {}  ({})",
                i + 1,
                s.kind.as_str().to_ascii_uppercase(),
                s.ask,
                answer,
                millis(s.elapsed)
            );
            for n in &s.notes {
                let _ = writeln!(out, "       note: {n}");
            }
        }
        match &self.result {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "Result: register at {}:{} over {} ({}), found by {}; the client is {}",
                    r.fqdn,
                    r.port,
                    r.transport.as_str(),
                    if r.addresses.is_empty() {
                        "no address".to_owned()
                    } else {
                        r.addresses
                            .iter()
                            .map(IpAddr::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    r.via,
                    r.location.as_str()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "Result: no registrar found: {}",
                    self.stopped.as_deref().unwrap_or("the walk did not finish")
                );
            }
        }
        out
    }

    /// `{"steps": [...], "result": {"fqdn", "port", "transport", "location"} | null}`, plus the
    /// user, the addresses and why the walk stopped.
    pub fn render_json(&self) -> String {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "step": i + 1,
                    "kind": s.kind.as_str(),
                    "ask": s.ask,
                    "ok": s.outcome.is_ok(),
                    "answer": s.outcome.as_ref().ok(),
                    "error": s.outcome.as_ref().err(),
                    "ms": s.elapsed.as_secs_f64() * 1000.0,
                    "notes": s.notes,
                })
            })
            .collect();
        let result = self.result.as_ref().map(|r| {
            json!({
                "fqdn": r.fqdn,
                "port": r.port,
                "transport": r.transport.as_str().to_ascii_lowercase(),
                "location": r.location.as_str(),
                "via": r.via,
                "addresses": r.addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
            })
        });
        json!({
            "user": self.user,
            "mobile": self.mobile,
            "steps": steps,
            "result": result,
            "stopped": self.stopped,
        })
        .to_string()
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
