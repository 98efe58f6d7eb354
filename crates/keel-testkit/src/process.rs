//! Real processes for black-box tests: start a binary, follow its JSON log lines, signal it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process whose stderr (JSON logs) is read line by line on a thread; killed on drop.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen so far, for assertions and failure messages.
    pub seen: Vec<String>,
}

/// The job encryption key test processes get unless a test sets its own (an empty value means
/// unset): without one a development process would create `./data/job-encryption.key` in the
/// test's working directory.
pub const TEST_JOB_ENCRYPTION_KEY: &str = "test:dGhpcyBpcyBub3QgYSBzZWNyZXQsIGp1c3QgdGVzdHM=";

impl Proc {
    /// Starts `bin` with `env` added to a clean-ish environment (JSON logs at info level, the
    /// test job encryption key).
    pub fn start(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Self::start_in(None, bin, args, env)
    }

    /// [`Proc::start`] in working directory `dir` (where relative paths like `./data` land).
    pub fn start_in(dir: Option<&std::path::Path>, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(bin);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .env("KEEL_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("KEEL_JOB_ENCRYPTION_KEY", TEST_JOB_ENCRYPTION_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines: rx, seen: Vec::new() }
    }

    /// Waits (up to `within`) for a log line whose JSON satisfies `pred`; returns it.
    pub fn wait_for(&mut self, within: Duration, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if pred(&v) {
                            return v;
                        }
                    }
                }
                Err(_) => panic!("no matching log line within {within:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Waits for the `listening` line and returns the bound address.
    pub fn wait_listening(&mut self) -> std::net::SocketAddr {
        let v = self.wait_for(Duration::from_secs(30), |v| v["message"] == "listening");
        v["addr"].as_str().and_then(|a| a.parse().ok()).expect("listening line carries addr")
    }

    /// Sends a real signal (`TERM`, `KILL`, `HUP`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status();
        assert!(ok.map(|s| s.success()).unwrap_or(false), "kill -{sig} failed");
    }

    /// Waits for exit up to `within`, draining log lines meanwhile.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status;
            }
            if Instant::now() > deadline {
                panic!("process did not exit within {within:?}; saw:\n{}", self.seen.join("\n"));
            }
            // Polling a child's exit status has no event to wait on without unsafe code.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
