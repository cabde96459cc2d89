//! `sockscope check` end to end on this machine: its exit status agrees with the
//! findings it prints, usage errors have a code of their own, and `snapshot`'s
//! JSON carries the findings array.

use std::process::{Command, Output};

fn sockscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .output()
        .expect("run sockscope")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_json_on_this_machine_is_valid_and_its_status_agrees_with_the_exit_code() {
    let out = sockscope(&[
        "check",
        "--format",
        "json",
        "--samples",
        "2",
        "--interval",
        "100ms",
    ]);
    // Other tests run beside this one and may briefly fill an accept queue or
    // leave sockets behind: any verdict is fine, as long as the exit status, the
    // status word and the findings agree.
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
    assert_eq!(code, Some(want_code));
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
