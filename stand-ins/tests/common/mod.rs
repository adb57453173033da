//! Shared by the stand-in binary tests: a stand-in process started on a port of the OS's
//! choosing, its announced address, and its exit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct StandInProcess {
    child: Child,
    pub addr: String,
}

impl StandInProcess {
    /// Starts `binary` with `args` and waits, up to [`PATIENCE`], for its "`what` listening" line.
    pub fn start(binary: &str, what: &str, args: &[&str]) -> StandInProcess {
        let mut child = Command::new(binary).args(args).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines): (_, Receiver<String>) = mpsc::channel();
        // Keeps reading to the end, after the test stops listening: a closed pipe would make
        // the child's next log line fail.
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let announcement = format!("{what} listening");
        let addr = loop {
            let line = lines.recv_timeout(PATIENCE).expect("no 'listening' line on stderr");
            if line.contains(&announcement)
                && let Some((_, rest)) = line.split_once("addr=")
            {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        StandInProcess { child, addr }
    }

    /// Sends SIGTERM and returns the exit status, failing after [`PATIENCE`].
    pub fn terminate(self) -> ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let (tx, rx) = mpsc::channel();
        let mut child = self.child;
        thread::spawn(move || tx.send(child.wait().unwrap()));
        rx.recv_timeout(PATIENCE).expect("still running after SIGTERM")
    }
}
