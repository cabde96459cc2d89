//! The `sockscope` binary: all of it lives in the library; this only starts it.

fn main() -> std::process::ExitCode {
    sockscope::cli::run()
}
