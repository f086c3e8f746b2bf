//! The examples' binaries for the tests that run them as child processes.

use std::path::{Path, PathBuf};

/// The example `name` as `cargo test` built it, next to this test binary's own `deps/`
/// folder (`target/<profile>/examples/`); refused when missing or older than any of its
/// sources (`sources`: files or folders under the repository root, a folder's `.rs` and
/// `.html` files counting), so that a test never passes against a stale build.
pub fn example_binary(name: &str, sources: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| {
            dir.join("examples")
                .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
        })
        .expect("target/<profile>/ above the test binary");
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}): run the whole `cargo test` (it builds the examples), or \
                 `cargo build --example {name}`",
                bin.display()
            )
        });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for source in sources {
        let path = root.join(source);
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let file = entry.unwrap().path();
                if matches!(
                    file.extension().and_then(|e| e.to_str()),
                    Some("rs" | "html")
                ) {
                    files.push(file);
                }
            }
        } else {
            files.push(path);
        }
    }
    for file in files {
        let changed = std::fs::metadata(&file).unwrap().modified().unwrap();
        assert!(
            changed <= built,
            "{} is older than {}: run `cargo build --example {name}` (or the whole `cargo test`)",
            bin.display(),
            file.display()
        );
    }
    bin
}
