//! The broker's house (see the module overview in `src/lib.rs`): every module imports only
//! from modules on floors below its own. This test reads the `crate::` paths of every
//! source file and fails on an arrow that points sideways or up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom up. A module may use only the modules listed before it.
const FLOORS: &[&str] = &[
    "clock",
    "cluster",
    "faults",
    "meta",
    "protocol",
    "log",
    "config",
    "broker_config",
    "topic_config",
    "security",
    "group",
    "txn",
    "state",
    "inspect",
    "handlers",
    "service",
    "net",
    "server",
    "fuzzing",
];

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|m| *m == module)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`log` for `src/log/disk/segment.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The top-level modules a file names as `crate::name`, with the line of each.
fn imports(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        assert!(
            !code.contains("crate::{"),
            "line {}: write one `use crate::module::…` per module, so that this test sees it",
            n + 1
        );
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((name, n + 1));
            rest = after;
        }
    }
    out
}

#[test]
fn modules_import_only_from_floors_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        let shown = Path::new("src").join(file.strip_prefix(&src).expect("under src"));
        if module == "lib" {
            continue;
        }
        let Some(own) = floor(&module) else {
            wrong.push(format!(
                "{}: module `{module}` has no floor in this test's FLOORS (and lib.rs's overview)",
                shown.display()
            ));
            continue;
        };
        seen.insert(module.clone());
        let text = std::fs::read_to_string(file).expect("read source");
        for (target, line) in imports(&text) {
            if target == module {
                continue;
            }
            match floor(&target) {
                Some(f) if f < own => {}
                _ => wrong.push(format!(
                    "{}:{line}: `{module}` imports `{target}`, which is not on a floor below it",
                    shown.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows that break the layers:\n{}",
        wrong.join("\n")
    );
    let missing: Vec<_> = FLOORS.iter().filter(|m| !seen.contains(**m)).collect();
    assert!(
        missing.is_empty(),
        "FLOORS names modules that no longer exist: {missing:?}"
    );
}

#[test]
fn the_reader_sees_every_kind_of_import() {
    let found = imports(
        "use crate::log::Log;\nfn f() { crate::clock::now_ms(); } // crate::net in a comment\n",
    );
    assert_eq!(found, vec![("log".into(), 1), ("clock".into(), 2)]);
}
