//! `sockscope check` end to end on this machine: its exit status agrees with the
//! findings it prints, usage errors have a code of their own, and `snapshot`'s
//! JSON carries the findings array.
//!
//! The verdict test runs `check` in a private network namespace of its own, so
//! that other workloads on the machine cannot change the verdict; it needs root
//! and `ip netns` (skipped otherwise, a failure under `CI=true`).

use crate::common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::lab::LabProcess;
use common::netns::Netns;

fn sockscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .output()
        .expect("run sockscope")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `check --format json` (2 samples, 100 ms apart) inside `ns`; checks
/// that the exit status, the status word and the findings agree and that each
/// finding has every documented key. Returns the exit status and the document.
fn agreeing_check(ns: &Netns) -> (i32, serde_json::Value) {
    let out = ns
        .command(env!("CARGO_BIN_EXE_sockscope"))
        .args([
            "check",
            "--format",
            "json",
            "--samples",
            "2",
            "--interval",
            "100ms",
            // The test's namespace alone, not every one of the host.
            "--netns",
            "own",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run sockscope check in the namespace");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "exit {code:?}: {}",
        text(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["samples"], 2);
    let findings = doc["findings"].as_array().expect("a findings array");
    let warnings = doc["counts"]["warning"].as_u64().expect("count");
    let critical = doc["counts"]["critical"].as_u64().expect("count");
    assert_eq!(findings.len() as u64, warnings + critical);
    let (want_code, want_status) = match (critical, warnings) {
        (0, 0) => (0, "healthy"),
        (0, _) => (1, "warning"),
        _ => (2, "critical"),
    };
    assert_eq!(code, Some(want_code), "{doc:#}");
    assert_eq!(doc["status"], want_status);
    for f in findings {
        for key in [
            "rule",
            "severity",
            "subject",
            "evidence",
            "since",
            "message",
            "next_step",
        ] {
            assert!(f.get(key).is_some(), "{key} in {f}");
        }
    }
    (want_code, doc)
}

/// In a namespace of the test's own: healthy (exit 0) while only `lo` is
/// there; then, with a listener that never accepts and a full accept queue, a
/// finding whose exit status, status word and keys agree.
#[test]
fn check_json_status_agrees_with_the_exit_code_healthy_and_not() {
    let Some(ns) = Netns::for_test("check") else {
        return;
    };
    let (code, doc) = agreeing_check(&ns);
    assert_eq!(code, 0, "a namespace with nothing in it: {doc:#}");

    let mut server = LabProcess::spawn_under(&ns.exec());
    let mut client = LabProcess::spawn_under(&ns.exec());
    let port = server.listen("127.0.0.1:0", 4);
    // The queue holds backlog + 1; the rest wait in SYN_SENT, their SYNs dropped.
    client.connect_nowait(SocketAddr::from(([127, 0, 0, 1], port)), 10, "clients");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, doc) = agreeing_check(&ns);
        if code > 0 {
            assert!(
                doc["findings"]
                    .as_array()
                    .expect("findings")
                    .iter()
                    .any(|f| f["rule"] == "accept_queue_overflow"),
                "{doc:#}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no finding within 30 s: {doc:#}");
    }
    drop((client, server));
}

#[test]
fn check_text_with_one_sample_is_healthy() {
    // A finding needs its condition over two samples: one sample finds nothing.
    let out = sockscope(&["check", "--samples", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "healthy: no findings over 1 samples\n");
}

#[test]
fn check_usage_errors_have_their_own_code() {
    for args in [
        &["check", "--samples", "0"][..],
        &["check", "--format", "yaml"],
        &["check", "--interval", "soon"],
        &["check", "--no-such-flag"],
    ] {
        let out = sockscope(args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = sockscope(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("64"), "the help says the codes");
    // Other commands keep their usage code.
    let out = sockscope(&["snapshot", "--samples", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn snapshot_json_has_a_findings_array() {
    let out = sockscope(&[
        "snapshot",
        "--format",
        "json",
        "--samples",
        "2",
        "--interval",
        "100ms",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(doc["version"], 1);
    assert!(doc["findings"].is_array(), "findings: {}", doc["findings"]);
}
