//! The `nationalize-standin` process: announces its address, answers, and exits 0 on SIGTERM;
//! refuses bad flags with exit 2.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use stand_ins::nationalize::{Prediction, predict};

const PATIENCE: Duration = Duration::from_secs(20);

/// Forwards the child's stderr lines, so the test can wait for one with a deadline.
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || stderr.lines().map_while(Result::ok).try_for_each(|line| tx.send(line)));
    rx
}

fn exit_status(child: Child) -> Receiver<ExitStatus> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut child = child;
        tx.send(child.wait().unwrap())
    });
    rx
}

#[tokio::test]
async fn it_announces_its_address_answers_and_stops_cleanly_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nationalize-standin"))
        .args(["--listen", "127.0.0.1:0", "--quota", "5"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let addr = loop {
        let line = lines.recv_timeout(PATIENCE).expect("no 'listening' line on stderr");
        if line.contains("nationalize stand-in listening")
            && let Some((_, rest)) = line.split_once("addr=")
        {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    let response = reqwest::get(format!("http://{addr}/?name=Anna")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-rate-limit-limit"], "5");
    assert_eq!(response.json::<Prediction>().await.unwrap(), predict("Anna"));

    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = exit_status(child).recv_timeout(PATIENCE).expect("still running after SIGTERM");
    assert!(status.success(), "exited with {status}");
}

#[test]
fn bad_flags_print_the_usage_and_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_nationalize-standin"))
        .args(["--error-rate", "lots"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--error-rate") && stderr.contains("usage:"), "{stderr}");
}
