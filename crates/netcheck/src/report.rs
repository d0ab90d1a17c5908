//! What `iris netcheck` found: probe and path results, quality and verdict, rendered for people or as JSON; decides nothing.
use crate::measure::{Quality, MAX_JITTER_MS, MAX_LOSS_PCT, MAX_ONE_WAY_MS};
use crate::verdict::{Findings, MediaPath, Verdict, VerdictCode, Works};
use serde::Serialize;
use std::fmt::Write as _;

/// One probe (DNS, TCP, TLS, HTTPS, WebSocket, login, STUN).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeResult {
    pub name: String,
    /// "direct" or "proxy".
    pub via: String,
    pub ok: bool,
    pub detail: String,
    pub ms: f64,
}

/// One TURN media path: two allocations exchanging data.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathResult {
    pub path: MediaPath,
    pub port: u16,
    pub ok: bool,
    pub detail: String,
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub server: String,
    pub probes: Vec<ProbeResult>,
    pub paths: Vec<PathResult>,
    pub verdict: Verdict,
    #[serde(skip)]
    pub findings: Findings,
}

impl Report {
    pub fn new(server: &str) -> Report {
        Report {
            server: server.to_owned(),
            probes: Vec::new(),
            paths: Vec::new(),
            verdict: crate::verdict::decide(&Findings::default()),
            findings: Findings::default(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.verdict.code.exit_code()
    }

    pub fn json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["quality"] = serde_json::to_value(&self.findings.quality).unwrap_or_default();
        v["exit_code"] = self.exit_code().into();
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// The human summary printed after the live progress.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let v = &self.verdict;
        let mark = match v.code {
            VerdictCode::Ok => "OK",
            VerdictCode::Degraded => "DEGRADED",
            VerdictCode::NoMedia => "NO MEDIA",
            VerdictCode::Unreachable => "UNREACHABLE",
            VerdictCode::Incomplete => "INCOMPLETE",
        };
        let _ = writeln!(
            out,
            "\nVerdict for {}: {mark}\n  {}",
            self.server, v.summary
        );
        if let Some(q) = &self.findings.quality {
            let _ = writeln!(
                out,
                "\nMedia quality through the relay (SPEC §7 limits in brackets):"
            );
            let f = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.1}"));
            let _ = writeln!(
                out,
                "  one-way latency  {} ms  [≤ {MAX_ONE_WAY_MS:.0}]   (RTT {} ms)",
                f(q.one_way_ms),
                f(q.rtt_ms)
            );
            let _ = writeln!(
                out,
                "  jitter           {} ms  [≤ {MAX_JITTER_MS:.0}]",
                f(q.jitter_ms)
            );
            let _ = writeln!(
                out,
                "  loss             {:.1} %  [≤ {MAX_LOSS_PCT:.0}]   ({}/{} back)",
                q.loss_pct, q.received, q.sent
            );
            for s in &q.steps {
                let _ = writeln!(
                    out,
                    "  {:>5} kbit/s     {}  delivered {:.0} kbit/s — {}",
                    s.target_kbps,
                    if s.ok { "ok  " } else { "FAIL" },
                    s.delivered_kbps,
                    s.carries
                );
            }
        }
        let _ = writeln!(out, "\nDeployment profiles (SPEC §4):");
        for p in &v.profiles {
            let w = match p.works {
                Works::Yes => "works",
                Works::Degraded => "degraded",
                Works::No => "FAILS",
                Works::NotChecked => "not checked",
            };
            let _ = writeln!(out, "  {:<14} {:<12} {}", p.profile, w, p.why);
        }
        if !v.open.is_empty() {
            let _ = writeln!(out, "\nTo open (see `iris ports` for the full list):");
            for o in &v.open {
                let _ = writeln!(out, "  - {o}");
            }
        }
        if !v.notes.is_empty() {
            let _ = writeln!(out, "\nNotes:");
            for n in &v.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        out
    }
}

/// One progress line for a probe.
pub fn probe_line(r: &ProbeResult) -> String {
    format!(
        "  [{}] {:<14} {:<7} {} ({:.0} ms)",
        if r.ok { "ok" } else { "--" },
        r.name,
        r.via,
        r.detail,
        r.ms
    )
}

/// One progress line for a media path.
pub fn path_line(r: &PathResult) -> String {
    format!(
        "  [{}] {} {} — {} ({:.0} ms)",
        if r.ok { "ok" } else { "--" },
        r.path.name(),
        r.port,
        r.detail,
        r.ms
    )
}
