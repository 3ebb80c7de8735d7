//! `cargo xtask`: see the library for what it does.

fn main() -> std::process::ExitCode {
    ci_engine::cli::main(&xtask::cli::CLI)
}
