//! The runners a job can run on.

/// Where a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

impl Os {
    pub fn runner(self) -> &'static str {
        match self {
            Os::Linux => "ubuntu-24.04",
            Os::Macos => "macos-15",
            Os::Windows => "windows-2025",
        }
    }

    /// The part of an artifact's name that says which platform built it.
    pub fn platform(self) -> &'static str {
        match self {
            Os::Linux => "linux-x86_64",
            Os::Macos => "macos-aarch64",
            Os::Windows => "windows-x86_64",
        }
    }
}
