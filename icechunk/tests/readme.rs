//! The README's example is `examples/quickstart.rs`, shown verbatim; this runs it and checks
//! that the README still shows it.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)] // its `main` is for `cargo run --example`
mod quickstart;

#[tokio::test]
async fn the_readme_example_runs() {
    quickstart::run().await.unwrap();
}

#[test]
fn the_readme_shows_the_example_verbatim() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let example = std::fs::read_to_string(dir.join("examples/quickstart.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md must show examples/quickstart.rs verbatim in a ```rust block"
    );
}
