//! The control API (`agentbus broker --control`) as other languages use it: the pytest
//! suite in `tests/python/test_control.py` and the shell example `examples/control.sh`.

use std::process::Command;

fn run(mut c: Command, what: &str) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (is it installed? scripts/test.sh installs it)"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn pytest_drives_a_three_broker_agentbus_through_the_control_api() {
    let mut c = Command::new("python3");
    c.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/test_control.py"
        ))
        .env("AGENTBUS_BIN", env!("CARGO_BIN_EXE_agentbus"));
    let out = run(c, "pytest tests/python/test_control.py");
    assert!(out.contains("4 passed"), "{out}");
}

#[test]
fn the_shell_example_runs() {
    let mut c = Command::new("bash");
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/control.sh"))
        .env("AGENTBUS", env!("CARGO_BIN_EXE_agentbus"));
    let out = run(c, "examples/control.sh");
    assert!(out.contains("\"up\": false"), "{out}");
    assert!(out.contains("NOT_LEADER_OR_FOLLOWER"), "{out}");
    assert!(out.contains("control example done"), "{out}");
}
