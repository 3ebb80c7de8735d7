//! `cargo xtask`: see the library for what it does.

fn main() -> std::process::ExitCode {
    xtask::cli::main()
}
