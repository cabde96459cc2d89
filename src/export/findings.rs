//! Findings of the diagnosis as the JSON document and `sockscope check` write
//! them: a `findings` array (its element is the same in both), and a plain-text
//! block per finding for people.

use std::io::{self, Write};

use serde::Serialize;

use super::Printable;
use super::time::rfc3339;
use crate::diagnose::{Evidence, Finding, Severity, Subject};
use crate::model::NetnsId;

/// The namespace of a finding's subject, in JSON: written when the finding
/// names it, that is for every finding of a sample that spans several
/// namespaces, and for any finding outside sockscope's own namespace; absent
/// (sockscope's own namespace) otherwise, so a host of one namespace exports
/// what it did before namespaces.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NetnsJson<'a> {
    /// The namespace's id in this run (0 is sockscope's own).
    pub id: NetnsId,
    /// What the rest of sockscope calls it (`host`, an `ip netns` name, a
    /// container, ...).
    pub label: &'a str,
}

impl<'a> NetnsJson<'a> {
    /// The namespace of `f`, when `f` names it.
    pub fn of(f: &'a Finding) -> Option<NetnsJson<'a>> {
        f.netns_label
            .as_deref()
            .map(|label| NetnsJson { id: f.netns, label })
    }
}

/// One finding in JSON.
#[derive(Serialize)]
pub struct FindingJson<'a> {
    rule: &'static str,
    severity: Severity,
    subject: &'a Subject,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<NetnsJson<'a>>,
    evidence: &'a Evidence,
    /// When it was first raised (it stays raised since).
    since: String,
    message: &'a str,
    next_step: &'a str,
}

/// The findings in JSON, in the order given.
pub fn findings_json(findings: &[Finding]) -> Vec<FindingJson<'_>> {
    findings
        .iter()
        .map(|f| FindingJson {
            rule: f.rule,
            severity: f.severity,
            subject: &f.subject,
            netns: NetnsJson::of(f),
            evidence: &f.evidence,
            since: rfc3339(f.since),
            message: &f.message,
            next_step: &f.next_step,
        })
        .collect()
}

/// Findings by severity: (critical, warning).
pub fn severity_counts(findings: &[Finding]) -> (usize, usize) {
    let critical = findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    (critical, findings.len() - critical)
}

/// One block per finding, worst first: severity, rule and subject, the cause,
/// the evidence and what to check next.
pub fn write_findings_text(
    out: &mut dyn Write,
    findings: &[Finding],
    samples: u64,
) -> io::Result<()> {
    let (critical, warning) = severity_counts(findings);
    if findings.is_empty() {
        return writeln!(out, "healthy: no findings over {samples} samples");
    }
    writeln!(
        out,
        "{} findings over {samples} samples: {critical} critical, {warning} warning",
        findings.len()
    )?;
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        writeln!(out)?;
        // Subjects, causes and evidence can quote process names and paths.
        writeln!(
            out,
            "{} {}: {} (since {})",
            f.severity.name().to_uppercase(),
            f.rule,
            Printable(&f.target().to_string()),
            rfc3339(f.since)
        )?;
        writeln!(out, "  cause:    {}", Printable(&f.message))?;
        let evidence: Vec<String> = f.evidence.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "  evidence: {}", Printable(&evidence.join(" ")))?;
        writeln!(out, "  next:     {}", Printable(&f.next_step))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stamp;

    fn finding(severity: Severity) -> Finding {
        let mut evidence = Evidence::new();
        evidence.insert("syn_recv".into(), serde_json::json!(100));
        Finding {
            rule: "syn_flood",
            severity,
            netns: NetnsId::OWN,
            netns_label: None,
            subject: Subject::LocalPort { port: 80 },
            evidence,
            since: Stamp::default(),
            message: "cause".into(),
            next_step: "look".into(),
        }
    }

    #[test]
    fn text_blocks_put_the_worst_first() {
        let mut out = Vec::new();
        let f = [finding(Severity::Warning), finding(Severity::Critical)];
        write_findings_text(&mut out, &f, 5).expect("write to memory");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("2 findings over 5 samples: 1 critical, 1 warning\n"));
        let crit = text
            .find("CRITICAL syn_flood: local port 80")
            .expect("critical");
        let warn = text.find("WARNING syn_flood").expect("warning");
        assert!(crit < warn, "{text}");
        assert!(text.contains("  evidence: syn_recv=100\n"), "{text}");
        assert!(text.contains("  next:     look\n"), "{text}");
    }

    #[test]
    fn text_escapes_what_processes_named() {
        let mut f = finding(Severity::Warning);
        f.subject = Subject::Process {
            pid: 7,
            name: "\u{1b}]0;pwn\u{7}a\nb".into(),
        };
        f.message = "held by \u{202e}x".into();
        f.evidence
            .insert("process".into(), serde_json::json!("=1\r\n"));
        let mut out = Vec::new();
        write_findings_text(&mut out, &[f], 2).expect("write to memory");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\r', '\u{202e}']),
            "{text:?}"
        );
        assert!(
            text.contains("process \\x1b]0;pwn\\x07a\\x0ab (pid 7)"),
            "{text}"
        );
        assert!(text.contains("cause:    held by \\u{202e}x\n"), "{text}");
        assert_eq!(text.lines().count(), 6, "{text}");
    }

    #[test]
    fn json_names_the_subject_kind_and_since() {
        let f = [finding(Severity::Critical)];
        let v = serde_json::to_value(findings_json(&f)).expect("json");
        assert_eq!(
            v[0]["subject"],
            serde_json::json!({"kind": "local_port", "port": 80})
        );
        assert_eq!(v[0]["severity"], "critical");
        assert_eq!(v[0]["since"], "1970-01-01T00:00:00.000Z");
    }
}
