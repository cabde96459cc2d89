//! What an operator deploys: `assets/sockscope.service` (valid for systemd,
//! not root, exactly the capabilities serve needs, and serve run with exactly
//! those still names the owners of another user's sockets, in its own and in
//! other network namespaces), and the man pages and shell completions that
//! `sockscope generate` makes from the clap definitions.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::headless::{Running, get, metric, start_serve_under};
use common::lab::{LabProcess, settle};
use common::netns::Netns;
use serde_json::Value;

fn unit_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/sockscope.service"
    ))
    .expect("read the unit")
}

/// The values of `Key=` in the unit, in order (comments left out).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
        .collect()
}

/// The unit's ambient capabilities, as setpriv spells them (`+sys_ptrace,...`).
fn unit_caps(unit: &str) -> Vec<String> {
    let caps = unit_values(unit, "AmbientCapabilities");
    assert_eq!(caps.len(), 1, "one AmbientCapabilities line: {caps:?}");
    caps[0]
        .split_whitespace()
        .map(|c| {
            c.strip_prefix("CAP_")
                .unwrap_or_else(|| panic!("not a capability: {c}"))
                .to_ascii_lowercase()
        })
        .collect()
}

/// The kernel's bit of each capability of `caps` (setpriv's names).
fn cap_mask(caps: &[String]) -> u64 {
    caps.iter()
        .map(|c| match c.as_str() {
            "dac_read_search" => 1 << 2,
            "net_admin" => 1 << 12,
            "sys_ptrace" => 1 << 19,
            "sys_admin" => 1 << 21,
            other => panic!("a capability this test does not know: {other}"),
        })
        .fold(0, |a, b| a | b)
}

#[test]
fn the_unit_is_a_service_that_is_not_root() {
    let unit = unit_text();
    let one = |key: &str| {
        let v = unit_values(&unit, key);
        assert_eq!(v.len(), 1, "{key}: {v:?}");
        v[0].clone()
    };
    assert!(
        one("ExecStart").starts_with("/usr/local/bin/sockscope serve "),
        "{unit}"
    );
    assert_eq!(one("DynamicUser"), "yes");
    assert!(
        unit_values(&unit, "User").is_empty(),
        "no User= (so never root)"
    );
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("StateDirectory"), "sockscope");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("NoNewPrivileges"), "yes");
    // Exactly the capabilities serve needs, and none could be gained.
    let caps = unit_caps(&unit);
    assert_eq!(caps, ["sys_ptrace", "dac_read_search", "sys_admin"]);
    assert_eq!(one("CapabilityBoundingSet"), one("AmbientCapabilities"));
    // What would hide the host from it is not set.
    for key in [
        "ProtectProc",
        "ProcSubset",
        "PrivateNetwork",
        "PrivateUsers",
    ] {
        assert!(unit_values(&unit, key).is_empty(), "{key}= is set");
    }
    // The man page it points to is one `sockscope generate man` writes.
    let doc = one("Documentation");
    let page = doc
        .strip_prefix("man:")
        .and_then(|p| p.strip_suffix("(1)"))
        .expect("a man page");
    let dir = tempfile::tempdir().expect("tempdir");
    generate(&["man", &dir.path().display().to_string()]);
    assert!(dir.path().join(format!("{page}.1")).is_file(), "{page}");
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return common::skip("systemd-analyze is not installed (Debian package systemd)");
    }
    // verify wants the program to exist: the unit as shipped but for its path.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_text().replace("/usr/local/bin/sockscope", env!("CARGO_BIN_EXE_sockscope"));
    let path = dir.path().join("sockscope.service");
    std::fs::write(&path, unit).expect("write the unit");
    let out = Command::new("systemd-analyze")
        // Documentation= is checked above against the generated pages, not
        // against what this machine has installed.
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // An unknown key or a bad value is only a warning: none is accepted.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stdout}{stderr}",
        out.status
    );
}

/// The setpriv prefix that runs as nobody with exactly `caps` (setpriv names)
/// inherited, ambient and bounding.
fn as_nobody_with(caps: &[String]) -> Vec<String> {
    let list: String = caps.iter().map(|c| format!(",+{c}")).collect();
    let mut out: Vec<String> = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]
    .map(str::to_string)
    .to_vec();
    for flag in ["--inh-caps", "--ambient-caps", "--bounding-set"] {
        out.push(format!("{flag}=-all{list}"));
    }
    out.push("--".into());
    out
}

/// `Uid:` (real) and the `Cap*:` masks of `pid`.
fn creds(pid: u32) -> (u32, [u64; 3]) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .trim()
            .to_string()
    };
    let uid = field("Uid:")
        .split_whitespace()
        .next()
        .and_then(|u| u.parse().ok())
        .expect("uid");
    let mask = |name: &str| u64::from_str_radix(&field(name), 16).expect("a mask");
    (uid, [mask("CapEff:"), mask("CapAmb:"), mask("CapBnd:")])
}

/// The `/snapshot` socket listening on `port` (in namespace `netns`, when
/// given), from serve at `addr`, fetched inside `ns`.
fn listener_of(
    ns: Option<&Netns>,
    addr: std::net::SocketAddr,
    port: u16,
    netns: Option<&str>,
) -> Result<Value, String> {
    let fetch = || get(addr, "/snapshot");
    let r = match ns {
        Some(ns) => ns.run_inside(fetch),
        None => fetch(),
    };
    if r.status != 200 {
        return Err(format!("/snapshot: {}", r.status));
    }
    let doc: Value = serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
    let local = format!("127.0.0.1:{port}");
    doc["sockets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["state"] == "LISTEN"
                && s["local"] == local.as_str()
                && netns.is_none_or(|n| s["netns"] == n)
        })
        .cloned()
        .ok_or_else(|| format!("no listener on {local} ({netns:?}) yet"))
}

#[test]
fn serve_with_the_units_capabilities_and_no_root_resolves_owners() {
    if !common::have_ss() {
        return common::skip("`ss` (iproute2) is not installed");
    }
    let Some(ns) = Netns::for_test("caps") else {
        return;
    };
    let caps = unit_caps(&unit_text());
    let mask = cap_mask(&caps);
    // A root process (another user than serve's) holds a listener there.
    let mut holder = LabProcess::spawn_under(&ns.exec());
    holder.set_comm("rootholder");
    let port = holder.listen("127.0.0.1:0", 16);

    let start = |caps: &[String], extra: &[&str]| {
        let mut prefix: Vec<String> = ns.exec().map(str::to_string).to_vec();
        prefix.extend(as_nobody_with(caps));
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let mut args = vec!["--interval", "200ms"];
        args.extend_from_slice(extra);
        start_serve_under(&prefix, &args)
    };

    // With the unit's capabilities: not root, exactly those, and the owner known.
    let (serve, addr) = start(&caps, &[]);
    let (uid, [eff, amb, bnd]) = creds(serve.pid());
    assert_eq!(uid, 65534, "serve runs as nobody");
    assert_eq!((eff, amb, bnd), (mask, mask, mask), "{caps:?}");
    let socket = settle(Duration::from_secs(30), || {
        let s = listener_of(Some(&ns), addr, port, None)?;
        (s["owner"] == "known")
            .then_some(s.clone())
            .ok_or(format!("owner not known yet: {s}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(socket["pid"], holder.pid, "{socket}");
    assert_eq!(socket["process"], "rootholder", "{socket}");
    assert_eq!(socket["user"], "root", "{socket}");
    let metrics = ns.run_inside(|| get(addr, "/metrics")).body;
    assert_eq!(
        metric(&metrics, "sockscope_sockets_by_owner{owner=\"hidden\"}"),
        Some(0.0),
        "{metrics}"
    );
    drop(serve);

    // The controls: nobody without them, or without either of the two the
    // owners need (the fd directories are root's, mode 500: DAC_READ_SEARCH;
    // their links are behind a ptrace check: SYS_PTRACE), cannot name it.
    for drop_cap in [None, Some("sys_ptrace"), Some("dac_read_search")] {
        let fewer: Vec<String> = match drop_cap {
            None => Vec::new(),
            Some(c) => caps.iter().filter(|k| *k != c).cloned().collect(),
        };
        let (bare, addr) = start(&fewer, &[]);
        assert_eq!(creds(bare.pid()).1, [cap_mask(&fewer); 3]);
        let socket = settle(Duration::from_secs(30), || {
            listener_of(Some(&ns), addr, port, None)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        // `hidden` (denied), or `unknown` where the walk could not even tell.
        assert_ne!(socket["owner"], "known", "without {drop_cap:?}: {socket}");
        assert!(socket["pid"].is_null(), "without {drop_cap:?}: {socket}");
    }
}

#[test]
fn serve_with_the_units_capabilities_samples_other_namespaces() {
    let Some(ns) = Netns::for_test("capsns") else {
        return;
    };
    let caps = unit_caps(&unit_text());
    let mut holder = LabProcess::spawn_under(&ns.exec());
    holder.set_comm("nsholder");
    let port = holder.listen("127.0.0.1:0", 16);
    // serve in the test's own namespace, every namespace sampled; only the
    // test's listener is looked at.
    let prefix = as_nobody_with(&caps);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut serve_args = vec!["serve", "--listen", "127.0.0.1:0", "--interval", "500ms"];
    serve_args.extend(["--netns", "all"]);
    let serve = Running::start_under(&prefix, &serve_args, false);
    let addr = serving_addr(&serve);
    let socket = settle(Duration::from_secs(30), || {
        let s = listener_of(None, addr, port, Some(&ns.name))?;
        (s["owner"] == "known")
            .then_some(s.clone())
            .ok_or(format!("owner not known yet: {s}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(socket["pid"], holder.pid, "{socket}");
    assert_eq!(socket["process"], "nsholder", "{socket}");
    let body = get(addr, "/metrics").body;
    assert!(
        metric(&body, "sockscope_namespaces").is_some_and(|n| n >= 2.0),
        "{body}"
    );
    drop(serve);

    // The control: without CAP_SYS_ADMIN serve cannot enter the namespace:
    // only its own is sampled.
    let fewer: Vec<String> = caps.iter().filter(|c| *c != "sys_admin").cloned().collect();
    let prefix = as_nobody_with(&fewer);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let serve = Running::start_under(&prefix, &serve_args, false);
    let addr = serving_addr(&serve);
    let body = settle(Duration::from_secs(30), || {
        let body = get(addr, "/metrics").body;
        match metric(&body, "sockscope_samples_total") {
            Some(n) if n >= 2.0 => Ok(body),
            _ => Err("fewer than 2 samples".to_string()),
        }
    })
    .unwrap_or_else(|e| panic!("serve without CAP_SYS_ADMIN: {e}"));
    assert_eq!(metric(&body, "sockscope_namespaces"), Some(1.0), "{body}");
    assert!(listener_of(None, addr, port, Some(&ns.name)).is_err());
}

/// The address serve says it serves on (its standard error).
fn serving_addr(serve: &Running) -> std::net::SocketAddr {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = serve
            .stderr
            .recv_timeout(left)
            .expect("serve never said where it listens");
        if let Some(rest) = line
            .strip_prefix("sockscope: serving ")
            .and_then(|l| l.split("://").nth(1))
        {
            return rest
                .split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("a socket address");
        }
    }
}

/// Runs `sockscope generate ARGS`; asserts it succeeded; its stdout.
fn generate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .arg("generate")
        .args(args)
        .output()
        .expect("run sockscope generate");
    assert!(
        out.status.success(),
        "generate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The long options `sockscope ARGS --help` lists.
fn long_options(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut opts: Vec<String> = help
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .to_string()
        })
        .filter(|w| w.len() > 1 && !w.starts_with('-'))
        .collect();
    opts.sort();
    opts.dedup();
    opts
}

#[test]
fn man_pages_are_made_from_the_options_and_written_safely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let listed = generate(&["man", &d]);
    for mode in ["", "-snapshot", "-check", "-replay", "-serve", "-watch"] {
        let path = dir.path().join(format!("sockscope{mode}.1"));
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(listed.contains(&path.display().to_string()), "{listed}");
        let sub: Vec<&str> = mode.strip_prefix('-').into_iter().collect();
        // Every option of the mode's --help is in its page (roff escapes `-`).
        for opt in long_options(&sub) {
            let roff = opt.replace('-', "\\-");
            assert!(
                page.contains(&format!("\\-\\-{roff}")),
                "sockscope{mode}.1 lacks --{opt}"
            );
        }
        let mode_bits = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("stat").permissions(),
        );
        assert_eq!(mode_bits & 0o777, 0o644, "{mode}");
    }
    assert!(!dir.path().join("sockscope-help.1").exists());
    // groff reads each page without a warning.
    if Command::new("groff").arg("--version").output().is_ok() {
        for page in listed.lines() {
            let out = Command::new("groff")
                .args(["-ww", "-z", "-man", page])
                .output()
                .expect("run groff");
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "groff on {page}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    } else {
        common::skip(
            "groff is not installed (Debian package groff-base): the pages are not rendered",
        );
    }
    // An existing page is kept without --force, replaced with it.
    let serve = dir.path().join("sockscope-serve.1");
    std::fs::write(&serve, "mine").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(["generate", "man", &d])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&serve).expect("read"), "mine");
    generate(&["man", &d, "--force"]);
    assert_ne!(std::fs::read_to_string(&serve).expect("read"), "mine");
    // Never through a symlink, --force or not.
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "keep").expect("write");
    std::fs::remove_file(&serve).expect("rm");
    std::os::unix::fs::symlink(&target, &serve).expect("symlink");
    let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
        .args(["generate", "man", &d, "--force"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    assert!(common::is_symlink(&serve));
}

#[test]
fn completions_for_every_shell_and_bash_loads_them() {
    let top = tempfile::tempdir().expect("tempdir");
    // A directory not there yet is made.
    let dir = top.path().join("share/completions");
    let d = dir.display().to_string();
    for (shell, file) in [
        ("bash", "sockscope.bash"),
        ("zsh", "_sockscope"),
        ("fish", "sockscope.fish"),
        ("elvish", "sockscope.elv"),
        ("powershell", "_sockscope.ps1"),
    ] {
        generate(&["completions", shell, &d]);
        let script =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{shell}: {e}"));
        assert!(
            script.contains("serve") && script.contains("top-processes"),
            "{shell}"
        );
        // Without DIR, the same script on standard output.
        assert_eq!(generate(&["completions", shell]), script, "{shell}");
    }
    assert_eq!(
        Command::new(env!("CARGO_BIN_EXE_sockscope"))
            .args(["generate", "completions", "tcsh"])
            .stderr(Stdio::null())
            .status()
            .expect("run")
            .code(),
        Some(2),
        "an unknown shell is bad usage"
    );
    // bash sources it and completes a mode's options with it.
    let bash = Path::new(&d).join("sockscope.bash");
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "source \"$0\" && complete -p sockscope && \
             COMP_WORDS=(sockscope serve --top) COMP_CWORD=2 COMP_LINE='sockscope serve --top' \
             COMP_POINT=${#COMP_LINE} && _sockscope sockscope --top serve && printf '%s\\n' \"${COMPREPLY[@]}\"",
        )
        .arg(&bash)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "--top-processes"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
