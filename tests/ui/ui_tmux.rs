//! End to end: the real binary in a real terminal (tmux), over a known loopback
//! population: the counts on screen, a filter typed on the `/` line, a
//! drill-down into the port, an export file, and a clean exit that leaves the
//! terminal as it found it. Skipped, with a line saying so, without tmux (CI
//! installs it).

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::LabProcess;

/// A private tmux server, killed on drop whatever happens.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "ui"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "ui"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    /// Types text literally (no key names).
    fn type_text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "ui", "-l", text])
                .status
                .success()
        );
    }

    /// Waits (at most 30 s: the rendering tests of this binary run beside it
    /// on a small machine) until the screen satisfies `ok`; the last screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The count shown on the overview's line for `state`.
fn count(screen: &str, state: &str) -> Option<u64> {
    screen.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some(state)).then(|| words.next()?.parse().ok())?
    })
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Runs the binary with `args` in a new tmux session of `size`. When it ends,
/// the session's shell writes its exit status, the pane's mouse modes as
/// tmux sees them (`mouse=` any-event flag, SGR flag) and the terminal's
/// modes (`stty -a`) to `status`; its pid is in `status` + `.pid`.
fn start(tmux: &Tmux, args: &str, status: &Path, size: (u16, u16)) {
    start_with(tmux, "", args, status, size);
}

/// [`start`] with `prefix` before the binary (e.g. `ip netns exec NAME`).
fn start_with(tmux: &Tmux, prefix: &str, args: &str, status: &Path, size: (u16, u16)) {
    let inner = format!(
        "echo $$ > {}; exec {prefix} {} {args}",
        shell_quote(&status.with_extension("pid")),
        shell_quote(Path::new(env!("CARGO_BIN_EXE_sockscope"))),
    );
    let command = format!(
        "sh -c {}; echo \"exit=$?\" > {}; tmux display -p -t \"$TMUX_PANE\" 'mouse=#{{mouse_any_flag}}#{{mouse_sgr_flag}}' >> {}; stty -a >> {}",
        shell_quote(Path::new(&inner)),
        shell_quote(status),
        shell_quote(status),
        shell_quote(status),
    );
    let (w, h) = (size.0.to_string(), size.1.to_string());
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "ui",
        "-x",
        &w,
        "-y",
        &h,
        "sh",
        "-c",
        &command,
    ]);
    assert!(
        started.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&started.stderr)
    );
}

/// Waits (at most 30 s) for the binary to end; checks that it left the
/// terminal in cooked mode with echo and signals, and returns the exit line.
fn ended(tmux: &Tmux, status: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(status)
            && s.contains("speed")
        {
            let modes: Vec<&str> = s.split_whitespace().collect();
            for mode in ["icanon", "echo", "isig"] {
                assert!(modes.contains(&mode), "{mode} restored: {s}");
            }
            return s.lines().next().unwrap_or_default().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no exit; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_screen_shows_filters_drills_exports_and_quits_cleanly() {
    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut lab = LabProcess::spawn();
    let port = lab.listen("127.0.0.1:0", 64);
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    lab.connect(to, 3, "clients");
    lab.accept(port, 3, "served");

    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-{}", std::process::id()),
    };
    start(
        &tmux,
        &format!(
            "--netns own --interval 300ms --export-dir {} --filter 'port:{port}'",
            shell_quote(dir.path())
        ),
        &status,
        (120, 40),
    );

    // The overview counts our sockets: 1 listener, 3 + 3 ESTABLISHED ends.
    let s = tmux.wait_for("the overview with our sockets", |s| {
        count(s, "ESTAB") == Some(6) && count(s, "LISTEN") == Some(1)
    });
    assert!(s.contains("1 Overview"), "{s}");

    // The filter line: only the listener.
    tmux.keys(&["2", "/", "C-u"]);
    tmux.type_text(&format!("lport:{port} state:listen"));
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the filtered table", |s| s.contains("of 1 ("));
    assert!(
        s.contains(&format!("127.0.0.1:{port}")) && s.contains("LISTEN"),
        "{s}"
    );
    assert!(
        s.contains(&format!("{} ", lab.pid)),
        "the owner's pid is shown:\n{s}"
    );

    // A bad filter says where it is wrong and keeps the table.
    tmux.keys(&["/"]);
    tmux.type_text(" port:nope");
    let s = tmux.wait_for("the filter error", |s| s.contains('^'));
    assert!(s.contains("of 1 ("), "{s}");
    tmux.keys(&["Escape"]);

    // Drill into the port.
    tmux.keys(&["3", "Enter"]);
    // "in host" when other namespaces exist meanwhile (other tests make theirs).
    let s = tmux.wait_for("the port's page", |s| {
        s.contains(&format!("Port {port}: 1 listener"))
            || s.contains(&format!("Port {port} in host: 1 listener"))
    });
    assert!(s.contains("backlog 64"), "{s}");

    // Export the port's sockets.
    tmux.keys(&["e"]);
    let s = tmux.wait_for("the export message", |s| s.contains("exported to"));
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("read the export dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "one export file: {files:?}\n{s}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).expect("read export"))
            .expect("the export is JSON");
    let sockets = doc["sockets"].as_array().expect("sockets");
    assert_eq!(
        sockets.len(),
        1,
        "the filtered port's page had one socket: {doc}"
    );
    assert_eq!(sockets[0]["state"], "LISTEN");

    // Quit: exit 0 and the terminal back in cooked mode with echo.
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
}

/// Where `needle` is on `screen`, as the 1-based column and row of an SGR
/// mouse report.
fn sgr_at(screen: &str, needle: &str) -> (usize, usize) {
    screen
        .lines()
        .enumerate()
        .find_map(|(y, l)| {
            let x = l.find(needle)?;
            Some((l[..x].chars().count() + 1, y + 1))
        })
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{screen}"))
}

/// A left click as an SGR mouse report (press, then release), as a terminal
/// sends it to an application that asked for the mouse.
fn click(tmux: &Tmux, (x, y): (usize, usize)) {
    tmux.type_text(&format!("\x1b[<0;{x};{y}M"));
    tmux.type_text(&format!("\x1b[<0;{x};{y}m"));
}

/// The pane's mouse modes: tmux's any-event and SGR flags.
fn mouse_flags(tmux: &Tmux) -> String {
    let out = tmux.run(&[
        "display",
        "-p",
        "-t",
        "ui",
        "#{mouse_any_flag}#{mouse_sgr_flag}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The real screen takes the mouse: a click on a tab shows its view, on a
/// header sorts (again: the other way), on a row selects it; on quit the
/// terminal's mouse modes are off again.
#[test]
fn clicks_on_a_tab_and_a_header_and_the_mouse_is_given_back_on_quit() {
    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    // In a namespace of its own: only its sockets, however many the host has.
    let Some(ns) = common::netns::Netns::for_test("ui-mouse") else {
        return;
    };
    common::netns::ip(&["-n", &ns.name, "link", "set", "lo", "up"]).expect("lo up");
    let (listener, client, server) = ns.run_inside(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (listener, client, server)
    });
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-mouse-{}", std::process::id()),
    };
    start_with(
        &tmux,
        &format!("ip netns exec {}", ns.name),
        // No owners: the host's processes (however many descriptors they
        // hold) are not walked; only the namespace's sockets are read.
        &format!("--netns own --no-owners --interval 300ms --filter 'port:{port}'"),
        &status,
        (120, 30),
    );
    // tmux's own mouse off (its default), so that the reports reach the
    // application, which asked for them.
    assert!(tmux.run(&["set", "-g", "mouse", "off"]).status.success());
    let s = tmux.wait_for("the overview with our sockets", |s| {
        count(s, "ESTAB") == Some(2)
    });
    assert_eq!(mouse_flags(&tmux), "11", "the screen asked for the mouse");
    click(&tmux, sgr_at(&s, "2 Connections"));
    let s = tmux.wait_for("the connections tab", |s| {
        s.contains("[2 Connections]") && s.contains("of 3 (")
    });
    click(&tmux, sgr_at(&s, "Remote"));
    let s = tmux.wait_for("sorted by the remote end", |s| s.contains("Remote ▲"));
    click(&tmux, sgr_at(&s, "Remote ▲"));
    let s = tmux.wait_for("the other way", |s| s.contains("Remote ▼"));
    assert!(!s.contains("State ▲"), "{s}");
    // A click on the third row selects it, a click again opens its page.
    let (_, y) = sgr_at(&s, "Remote ▼");
    let row = s.lines().nth(y + 2).expect("a third row").to_string();
    let remote = row
        .split_whitespace()
        .nth(2)
        .expect("the remote end")
        .to_string();
    click(&tmux, (3, y + 3));
    click(&tmux, (3, y + 3));
    let s = tmux.wait_for("the connection's page", |s| s.contains("› connection #"));
    assert!(
        s.contains(&remote),
        "the page of the row clicked ({row}):\n{s}"
    );
    // The column chooser: the command line on, the user off.
    // (Each Escape alone: with the next key in the same read it would be alt-KEY.)
    tmux.keys(&["Escape"]);
    tmux.wait_for("the table again", |s| !s.contains("› connection #"));
    tmux.keys(&["o"]);
    tmux.wait_for("the column chooser", |s| {
        s.contains("columns of the connections table") && s.contains("[ ] Command")
    });
    tmux.keys(&[
        "Down", "Down", "Down", "Down", "Down", "Space", "Down", "Space",
    ]);
    tmux.wait_for("the marks changed", |s| {
        s.contains("[x] Command") && s.contains("[ ] User")
    });
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the table's new columns", |s| {
        s.contains(" Command ") && !s.contains("columns of the connections table")
    });
    assert!(!s.contains(" User "), "{s}");
    // The search: the other rows stay, the status line keeps the term.
    tmux.keys(&["f"]);
    tmux.type_text("listen");
    tmux.wait_for("the search line", |s| s.contains("search: listen"));
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the search kept", |s| s.contains("search “listen” (n N)"));
    assert!(s.contains("of 3 ("), "no row is filtered out:\n{s}");
    tmux.keys(&["f"]);
    tmux.type_text("nothing-here");
    tmux.wait_for("no match", |s| s.contains("search: nothing-here  no match"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the search line closed", |s| !s.contains("search: "));
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
    let after = std::fs::read_to_string(&status).expect("status");
    assert!(
        after.lines().any(|l| l == "mouse=00"),
        "the mouse modes are off after quit: {after}"
    );
    drop((listener, client, server));
}

/// `[ui] mouse = false`: the terminal keeps its mouse, and a click is text.
#[test]
fn mouse_false_leaves_the_mouse_to_the_terminal() {
    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let Some(ns) = common::netns::Netns::for_test("ui-nomouse") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[ui]\nmouse = false\n").expect("config");
    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-nomouse-{}", std::process::id()),
    };
    start_with(
        &tmux,
        &format!("ip netns exec {}", ns.name),
        &format!(
            "--netns own --no-owners --interval 300ms --config {}",
            shell_quote(&config)
        ),
        &status,
        (100, 24),
    );
    tmux.wait_for("the screen", |s| s.contains("[1 Overview]"));
    assert_eq!(mouse_flags(&tmux), "00");
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
}

#[test]
fn sigterm_restores_the_terminal() {
    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-term-{}", std::process::id()),
    };
    start(&tmux, "--netns own --interval 300ms", &status, (80, 24));
    tmux.wait_for("the screen", |s| {
        s.contains("1 Overview") && s.contains("LISTEN")
    });
    let pid = std::fs::read_to_string(status.with_extension("pid")).expect("pid file");
    let killed = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    assert!(killed.success());
    ended(&tmux, &status);
}

#[test]
fn a_recording_made_on_the_screen_replays_with_seeking() {
    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("incident.rec");
    let mut lab = LabProcess::spawn();
    let port = lab.listen("127.0.0.1:0", 64);
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    lab.connect(to, 2, "early");
    lab.accept(port, 2, "served-early");

    // Record: 4 ESTABLISHED ends, then 8.
    let tmux = Tmux {
        socket: format!("sockscope-test-rec-{}", std::process::id()),
    };
    let status = dir.path().join("status-record");
    start(
        &tmux,
        &format!(
            "--netns own --interval 200ms --filter 'port:{port}' --record {}",
            shell_quote(&rec)
        ),
        &status,
        (120, 40),
    );
    tmux.wait_for("4 ESTABLISHED", |s| count(s, "ESTAB") == Some(4));
    // A few samples of each, so that both are in the recording.
    std::thread::sleep(Duration::from_millis(600));
    lab.connect(to, 2, "late");
    lab.accept(port, 2, "served-late");
    tmux.wait_for("8 ESTABLISHED", |s| count(s, "ESTAB") == Some(8));
    std::thread::sleep(Duration::from_millis(600));
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
    drop(tmux);

    // Replay: pause, back to the start (4), forward to the end (8).
    let tmux = Tmux {
        socket: format!("sockscope-test-replay-{}", std::process::id()),
    };
    let status = dir.path().join("status-replay");
    let exports = dir.path().join("exports");
    std::fs::create_dir(&exports).expect("mkdir");
    start(
        &tmux,
        &format!(
            "replay {} --filter 'port:{port}' --export-dir {}",
            shell_quote(&rec),
            shell_quote(&exports)
        ),
        &status,
        (120, 40),
    );
    tmux.wait_for("the replay", |s| s.contains("REPLAY ▶"));
    tmux.keys(&["Space"]);
    tmux.wait_for("paused", |s| s.contains("REPLAY ⏸"));
    for _ in 0..10 {
        tmux.keys(&["{"]);
    }
    let s = tmux.wait_for("the first sample", |s| s.contains("sample 1/"));
    assert_eq!(count(&s, "ESTAB"), Some(4), "{s}");
    for _ in 0..10 {
        tmux.keys(&["}"]);
    }
    let s = tmux.wait_for("the last sample", |s| {
        s.lines().next().is_some_and(|l| {
            l.split("sample ")
                .nth(1)
                .and_then(|x| x.split_whitespace().next())
                .is_some_and(|x| {
                    let mut p = x.split('/');
                    p.next() == p.next()
                })
        })
    });
    assert_eq!(count(&s, "ESTAB"), Some(8), "{s}");
    // An export of the replayed sample goes to --export-dir.
    tmux.keys(&["e"]);
    tmux.wait_for("the export message", |s| s.contains("exported to"));
    let files: Vec<PathBuf> = std::fs::read_dir(&exports)
        .expect("read the export dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(files.len(), 1, "one export in --export-dir: {files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).expect("read export"))
            .expect("the export is JSON");
    let established = doc["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .filter(|s| s["state"] == "ESTABLISHED")
        .count();
    assert_eq!(established, 8, "the replayed sample's sockets: {doc}");
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
    drop(tmux);

    // Damaged: the screen says so, and the exit status is 3.
    let len = std::fs::metadata(&rec).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&rec)
        .expect("open")
        .set_len(len - 5)
        .expect("truncate");
    let tmux = Tmux {
        socket: format!("sockscope-test-damaged-{}", std::process::id()),
    };
    let status = dir.path().join("status-damaged");
    start(
        &tmux,
        &format!("replay {}", shell_quote(&rec)),
        &status,
        (160, 40),
    );
    tmux.wait_for("the damage", |s| {
        s.contains("the replay ends at sample") && s.contains("damaged recording")
    });
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=3");
}

/// `k` on the real screen, in a private namespace: the dialog previews the
/// selected row, `a` the filter's set, `y` closes exactly those (the clients
/// read ECONNABORTED) and the others live on; the kills are said on stderr
/// when the screen ends.
#[test]
fn k_closes_the_filtered_connections_after_the_preview() {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};

    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let Some(ns) = common::netns::Netns::for_test("ui-kill") else {
        return;
    };
    let pairs = |n: usize| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let v: Vec<(TcpStream, TcpStream)> = (0..n)
            .map(|_| {
                let c = TcpStream::connect(addr).expect("connect");
                let (s, _) = l.accept().expect("accept");
                c.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                (c, s)
            })
            .collect();
        (l, v)
    };
    let ((doomed_l, mut doomed), (_kept_l, mut kept)) = ns.run_inside(|| (pairs(2), pairs(1)));
    let port = doomed_l.local_addr().expect("addr").port();

    let dir = tempfile::tempdir().expect("temp dir");
    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-kill-{}", std::process::id()),
    };
    start_with(
        &tmux,
        &format!("ip netns exec {}", ns.name),
        &format!(
            "--netns own --interval 300ms --filter 'rport:{port}' 2> {}",
            shell_quote(&dir.path().join("stderr"))
        ),
        &status,
        (120, 40),
    );
    tmux.keys(&["2"]);
    tmux.wait_for("the two clients", |s| s.contains("of 2 ("));
    tmux.keys(&["k"]);
    tmux.wait_for("the row's preview", |s| s.contains("Close 1 connection:"));
    tmux.keys(&["a"]);
    let s = tmux.wait_for("the filter's preview", |s| {
        s.contains(&format!("Close 2 connections: the filter rport:{port}?"))
    });
    for (c, _) in &doomed {
        let addr = c.local_addr().expect("addr").to_string();
        assert!(s.contains(&addr), "{addr} not in the preview:\n{s}");
    }
    tmux.keys(&["y"]);
    tmux.wait_for("the report", |s| s.contains("closed 2 connections"));
    for (c, _) in &mut doomed {
        let mut b = [0u8; 4];
        let e = c.read(&mut b).expect_err("closed");
        assert_eq!(e.kind(), ErrorKind::ConnectionAborted);
    }
    for (c, s) in &mut kept {
        c.write_all(b"x").expect("write");
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).expect("the other connection lives"), 1);
    }
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
    let said = std::fs::read_to_string(dir.path().join("stderr")).expect("stderr");
    assert_eq!(
        said.matches("sockscope: kill: closed ESTAB").count(),
        2,
        "{said}"
    );
}

/// `y` puts the selected row on the clipboard with OSC 52: tmux (with
/// `set-clipboard on`) takes the sequence into its paste buffer.
#[test]
fn y_copies_the_selected_row_with_osc_52() {
    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let mut lab = LabProcess::spawn();
    let port = lab.listen("127.0.0.1:0", 16);
    let dir = tempfile::tempdir().expect("temp dir");
    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-copy-{}", std::process::id()),
    };
    start(
        &tmux,
        &format!("--interval 300ms --filter 'lport:{port} state:listen'"),
        &status,
        (120, 30),
    );
    assert!(
        tmux.run(&["set-option", "-g", "set-clipboard", "on"])
            .status
            .success()
    );
    tmux.keys(&["2"]);
    tmux.wait_for("the listener", |s| s.contains("of 1 ("));
    tmux.keys(&["y"]);
    let expected = format!("LISTEN 127.0.0.1:{port} 0.0.0.0:0 pid {}", lab.pid);
    // The status line says so (and begins the text: the bar cuts the rest).
    let s = tmux.wait_for("the copy message", |s| s.contains("copied (OSC 52"));
    assert!(s.contains("allows it): LISTEN"), "{s}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let buffer = loop {
        let out = tmux.run(&["show-buffer"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && !text.is_empty() {
            break text;
        }
        assert!(Instant::now() < deadline, "no tmux buffer");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(buffer.starts_with(&expected), "{buffer:?}");
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
}

/// A DNS server for PTR queries on a UDP socket: `names` maps an address to
/// the name it answers; anything else is NXDOMAIN. Counts the queries.
fn serve_ptr(
    socket: std::net::UdpSocket,
    names: Vec<(std::net::Ipv4Addr, &'static str)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    asked: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> std::thread::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let q = &buf[..n];
            if q.len() < 12 {
                continue;
            }
            // The question's name: labels up to the zero byte.
            let mut at = 12;
            let mut labels = Vec::new();
            while at < q.len() && q[at] != 0 {
                let len = usize::from(q[at]);
                let Some(label) = q.get(at + 1..at + 1 + len) else {
                    break;
                };
                labels.push(String::from_utf8_lossy(label).into_owned());
                at += 1 + len;
            }
            let end = at + 5; // zero byte, qtype, qclass
            let Some(question) = q.get(12..end) else {
                continue;
            };
            asked.fetch_add(1, Ordering::SeqCst);
            // d.c.b.a.in-addr.arpa
            let answer = (labels.len() == 6 && labels[4] == "in-addr")
                .then(|| {
                    let ip: Option<Vec<u8>> =
                        labels[..4].iter().rev().map(|l| l.parse().ok()).collect();
                    let ip = ip?;
                    let ip = std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
                    names.iter().find(|(a, _)| *a == ip).map(|(_, n)| *n)
                })
                .flatten();
            let mut r = Vec::with_capacity(128);
            r.extend_from_slice(&q[..2]);
            r.extend_from_slice(if answer.is_some() {
                &[0x81, 0x80]
            } else {
                &[0x81, 0x83]
            });
            r.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
            r.extend_from_slice(question);
            if let Some(name) = answer {
                let mut rdata = Vec::new();
                for part in name.split('.') {
                    rdata.push(part.len() as u8);
                    rdata.extend_from_slice(part.as_bytes());
                }
                rdata.push(0);
                r.extend_from_slice(&[0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 0, 60]);
                r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                r.extend_from_slice(&rdata);
            }
            let _ = socket.send_to(&r, from);
        }
    })
}

/// `/etc/netns/NAME/resolv.conf`, which `ip netns exec` mounts over
/// `/etc/resolv.conf`; removed on drop.
struct NetnsResolvConf(PathBuf);

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `d` on the real screen: the ports by the names of a services file the
/// config names (and the filter takes them), then the addresses by reverse
/// DNS from a resolver on the namespace's loopback, then numbers again.
#[test]
fn d_shows_service_names_then_reverse_dns_then_numbers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    if !have_tmux() {
        return common::skip("tmux is not installed (the CI installs it)");
    }
    let Some(ns) = common::netns::Netns::for_test("ui-names") else {
        return;
    };
    for a in ["10.77.0.1/24", "10.77.0.2/24"] {
        common::netns::ip(&["-n", &ns.name, "addr", "add", a, "dev", "lo"]).expect("addr");
    }
    let etc = PathBuf::from(format!("/etc/netns/{}", ns.name));
    std::fs::create_dir_all(&etc).expect("mkdir /etc/netns/NAME");
    let _resolv = NetnsResolvConf(etc.clone());
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    let (listener, client, server, dns) = ns.run_inside(|| {
        use socket2::{Domain, Socket, Type};
        let listener = std::net::TcpListener::bind("10.77.0.1:0").expect("bind");
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        s.bind(&"10.77.0.2:0".parse::<SocketAddr>().expect("addr").into())
            .expect("bind the client");
        s.connect(&listener.local_addr().expect("addr").into())
            .expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let dns = std::net::UdpSocket::bind("127.0.0.1:53").expect("bind the resolver");
        (listener, std::net::TcpStream::from(s), server, dns)
    });
    let port = listener.local_addr().expect("addr").port();
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicU32::new(0));
    let names = vec![
        ("10.77.0.1".parse().expect("ip"), "p1.test"),
        ("10.77.0.2".parse().expect("ip"), "p2.test"),
    ];
    let dns_thread = serve_ptr(dns, names, Arc::clone(&stop), Arc::clone(&asked));
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop = Stop(Arc::clone(&stop));

    let dir = tempfile::tempdir().expect("temp dir");
    let services = dir.path().join("services");
    std::fs::write(&services, format!("# test\nktest {port}/tcp\n")).expect("services");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[ui]\nservices = {:?}\n", services.display().to_string()),
    )
    .expect("config");
    let status = dir.path().join("status");
    let tmux = Tmux {
        socket: format!("sockscope-test-names-{}", std::process::id()),
    };
    start_with(
        &tmux,
        &format!("ip netns exec {}", ns.name),
        &format!(
            "--netns own --interval 300ms --config {} --filter 'lport:ktest'",
            shell_quote(&config)
        ),
        &status,
        (120, 30),
    );
    tmux.keys(&["2"]);
    let numeric = format!("10.77.0.1:{port}");
    let s = tmux.wait_for("the numbers", |s| s.contains("of 2 ("));
    assert!(s.contains(&numeric), "{s}");
    assert_eq!(asked.load(Ordering::SeqCst), 0, "names are off by default");
    tmux.keys(&["d"]);
    let s = tmux.wait_for("the service name", |s| s.contains("10.77.0.1:ktest"));
    assert!(!s.contains("p1.test"), "no DNS before the second d:\n{s}");
    // The ports table names the port too.
    tmux.keys(&["3"]);
    tmux.wait_for("the port's service name", |s| {
        s.contains(&format!("{port} ktest"))
    });
    tmux.keys(&["2"]);
    tmux.keys(&["d"]);
    let s = tmux.wait_for("the reverse DNS names", |s| {
        s.contains("p1.test:ktest") && s.contains("p2.test:")
    });
    assert!(asked.load(Ordering::SeqCst) >= 2, "{s}");
    // And the port's page its peers.
    tmux.keys(&["3", "Enter"]);
    tmux.wait_for("the peer's name on the port's page", |s| {
        s.contains("top peers") && s.contains("p2.test")
    });
    tmux.keys(&["2"]);
    tmux.keys(&["d"]);
    tmux.wait_for("the numbers again", |s| s.contains(&numeric));
    tmux.keys(&["q"]);
    assert_eq!(ended(&tmux, &status), "exit=0");
    stop.store(true, Ordering::SeqCst);
    let _ = dns_thread.join();
    drop((client, server));
}
