//! The screen's export (`e`): the JSON document of the view's sockets, written
//! atomically; a second export of the same snapshot goes beside the first, and
//! an unwritable directory is an error that names the path.

use crate::common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sockscope::filter::Filter;
use sockscope::ui::app::{App, Effect, ExportJob, Msg, Settings};
use sockscope::ui::keymap::Keymap;

fn job(dir: &std::path::Path, keys: &str) -> ExportJob {
    let settings = Settings {
        export_dir: dir.to_path_buf(),
        ..Settings::default()
    };
    let mut app = App::new(Keymap::default(), settings, Filter::default());
    app.update(Msg::Update(common::scene::last(true)));
    let mut effects = Vec::new();
    for c in keys.chars() {
        let code = if c == '\n' {
            KeyCode::Enter
        } else {
            KeyCode::Char(c)
        };
        effects = app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
    match effects.pop() {
        Some(Effect::Export(job)) => job,
        other => panic!("an export: {other:?}"),
    }
}

#[test]
fn exports_are_json_and_never_overwrite_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = job(dir.path(), "3\ne");
    let first = sockscope::ui::write_export(&job).expect("first export");
    let second = sockscope::ui::write_export(&job).expect("second export");
    assert_ne!(first, second);
    for p in [&first, &second] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(p).expect("stat").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "for its owner alone: {mode:o}");
    }
    let name = |p: &std::path::Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(name(&second).ends_with("-2.json"), "{}", name(&second));
    for path in [&first, &second] {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
        let sockets = doc["sockets"].as_array().expect("sockets");
        assert_eq!(sockets.len(), 22, "port 80's sockets");
        assert!(doc["findings"].as_array().is_some_and(|f| !f.is_empty()));
    }
}

#[test]
fn an_unwritable_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-dir");
    let job = job(&missing, "2e");
    let err = sockscope::ui::write_export(&job).expect_err("no directory");
    assert!(err.contains("no-such-dir"), "{err}");
    assert!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .next()
            .is_none(),
        "nothing left behind"
    );
}

/// An export from a port's page is about that port alone: its counts, its
/// aggregates and its history are over the sockets written.
#[test]
fn a_pages_export_counts_only_what_it_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = job(dir.path(), "3\ne");
    let path = sockscope::ui::write_export(&job).expect("export");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    let sockets = doc["sockets"].as_array().expect("sockets");
    let total: u64 = doc["counts"]
        .as_object()
        .expect("counts")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(
        total,
        sockets.len() as u64,
        "counts over the sockets written: {}",
        doc["counts"]
    );
    let ports: Vec<u64> = doc["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert_eq!(ports, [80], "the page's port alone");
    let events = doc["history"]["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .all(|e| e["local"].as_str().is_some_and(|l| l.ends_with(":80"))),
        "the port's events alone: {events:#?}"
    );
}
