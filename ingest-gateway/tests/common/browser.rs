//! The browser tests' harness: Debian's `chromium` and npm's `playwright-core` (installed by
//! `scripts/install-browser-test`), a driver script of `tests/browser/` run with node, and the
//! screenshots it leaves.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use leadflow_testkit::repo_root;

/// The browser and the driver's folder: missing is a failure, never a skip.
pub fn browser_tools() -> (String, PathBuf) {
    let chromium = std::env::var("LEADFLOW_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let driver_dir = repo_root().join("ingest-gateway/tests/browser");
    assert!(
        Path::new(&chromium).exists() && driver_dir.join("node_modules/playwright-core").exists(),
        "Chromium ({chromium}) or playwright-core is missing: run scripts/install-browser-test"
    );
    (chromium, driver_dir)
}

/// Runs `tests/browser/{script}` with node, `CHROMIUM`, `SCREENSHOT_DIR` (its screenshots removed
/// first, so the ones checked afterwards are this run's; a folder in it is another test's and
/// stays) and `env`, for at most `deadline`. Returns what it printed; fails the test when it
/// fails, with `context()` (the gateway's log, say) after it.
pub async fn run_driver(
    script: &str,
    screenshots: &Path,
    env: &[(&str, String)],
    deadline: Duration,
    context: impl FnOnce() -> String,
) -> String {
    let (chromium, driver_dir) = browser_tools();
    remove_screenshots(screenshots);
    let output = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(&driver_dir)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", screenshots)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(deadline, output).await.expect("the browser run hung").unwrap();
    let printed =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{printed}");
    assert!(output.status.success(), "the browser run failed:\n{printed}\n--- context ---\n{}", context());
    printed
}

fn remove_screenshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        if path.extension().is_some_and(|ext| ext == "png") {
            std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// Every one of `shots` was taken: a file `NN-{shot}.png` is in `dir`.
pub fn assert_screenshots(dir: &Path, shots: &[&str]) {
    for shot in shots {
        let found = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().ends_with(&format!("-{shot}.png")));
        assert!(found, "no screenshot of {shot} in {}", dir.display());
    }
}
