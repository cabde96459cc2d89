//! `sockscope serve`: the mode's assembly — the web config, the listener, the
//! signals — around `serve::Serving` (the pipeline and the HTTP server, whose
//! internals are in `serve`). Exits 1 when the pipeline dies, after `/healthz`
//! said why for [`DEATH_GRACE`].

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::Run;
use crate::args::ServeArgs;
use crate::fail::Failure;
use crate::serve::{DEATH_GRACE, Exit, Options, ServeConfig, Serving, signal_name, webconfig};

/// Runs `serve` until a signal, or until something it needs dies (exit 1).
pub fn run(mut run: Run, args: &ServeArgs) -> Result<(), Failure> {
    let interval = run.config.interval();
    if interval.is_zero() {
        return Err(Failure::Usage(
            "sockscope: --interval must be more than 0".into(),
        ));
    }
    // Signals are caught before anything starts, so that one arriving during
    // the start still ends the process cleanly.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).context("install signal handlers")?;
    let web = match &args.web_config {
        Some(path) => webconfig::load(path)
            .map_err(|e| Failure::Usage(format!("sockscope: --web-config: {e}")))?,
        None => webconfig::WebConfig::default(),
    };
    if !args.listen.ip().is_loopback() {
        let missing = match (web.tls.is_some(), web.auth.is_some()) {
            (true, true) => None,
            (false, false) => Some("without TLS or authentication (see --web-config)"),
            (true, false) => Some("without authentication (basic_auth_users in --web-config)"),
            (false, true) => Some(
                "without TLS: passwords cross the network in clear (tls_server_config in --web-config)",
            ),
        };
        if let Some(missing) = missing {
            eprintln!(
                "sockscope: warning: listening on {} {missing}: anyone who can reach it reads every connection of this host",
                args.listen
            );
        }
    }
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    // A recording that cannot start is refused before serving.
    let recording = run.recording(&args.record)?;
    let config = ServeConfig {
        interval,
        processor: run.processor(),
        top_processes: args.top_processes as usize,
        netns_cap: args.netns_cap as usize,
        process_pids: args.process_pid_label,
        snapshot_cmdlines: args.snapshot_cmdlines,
        http: Options {
            limits: args.http.clone(),
            headers: web.headers,
            tls: web.tls,
            auth: web.auth,
        },
        recording,
    };
    let serving = Serving::start(listener, run.source(), config)?;
    // Tests (and operators who asked for port 0) read the address from here.
    eprintln!(
        "sockscope: serving {scheme}://{}/metrics, /snapshot and /healthz",
        serving.addr
    );
    let to_main = serving.exit_sender();
    let handle = signals.handle();
    let watcher = std::thread::Builder::new()
        .name("sockscope-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = to_main.send(Exit::Signal(signal_name(sig)));
            }
        })
        .context("start the signal thread")?;
    let exit = serving.wait(DEATH_GRACE);
    handle.close();
    let _ = watcher.join();
    match exit {
        Exit::Signal(name) => {
            eprintln!("sockscope: {name}: stopping");
            Ok(())
        }
        Exit::Died(why) => Err(Failure::Runtime(anyhow::anyhow!(
            "the pipeline died: {why}"
        ))),
        Exit::ServerGone => Err(Failure::Runtime(anyhow::anyhow!("the HTTP server stopped"))),
    }
}
