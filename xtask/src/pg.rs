//! A throwaway PostgreSQL cluster for the test suite when `TEST_DATABASE_URL` is unset: its own
//! data directory under `target/`, its own port, stopped and deleted when dropped.
//!
//! It never touches a server it did not start: the machine's own cluster (if any) keeps its
//! port, configuration and data.

use crate::tools;
use anyhow::{bail, Context};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's server packages put each major version's binaries (`<dir>/<major>/bin`).
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";
/// The unprivileged account Debian's server package creates: `initdb` and `postgres` refuse
/// to run as root.
const PG_USER: &str = "postgres";
/// Ports are picked by binding port 0 and released before the server binds them, so another
/// process can take one in between; a few fresh picks make that race harmless.
const START_ATTEMPTS: usize = 3;
/// The workspace's tests run one database per test, many at once (one test binary per crate,
/// a thread per core each, pools of several connections); the Debian default of 100 is the
/// bare minimum, so a throwaway cluster gets room to spare.
const MAX_CONNECTIONS: u32 = 300;
/// Lines of the server log shown when it fails to start.
const LOG_TAIL_LINES: usize = 30;

/// A running cluster; dropping it stops the server (fast shutdown) and deletes its directory,
/// also when the tests failed or xtask bailed out half-way through starting it.
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_pg_user: bool,
    port: u16,
    started: bool,
}

impl Cluster {
    /// Creates and starts a cluster from the newest installed server version, with
    /// pg_stat_statements preloaded and TLS on (the storage tests use both).
    pub(crate) fn start() -> anyhow::Result<Cluster> {
        let bin = server_bin()?;
        let as_pg_user = tools::is_root();
        let base = base_dir(as_pg_user)?;
        remove_stale(&base, &bin, as_pg_user);
        let dir = base.join(std::process::id().to_string());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut c = Cluster { bin, dir, as_pg_user, port: 0, started: false };
        if as_pg_user {
            chown_to_pg_user(&c.dir)?;
        }
        eprintln!(
            "\n== PostgreSQL: TEST_DATABASE_URL is unset; starting a throwaway cluster from {} in {}{}",
            c.bin.display(),
            c.dir.display(),
            if as_pg_user {
                format!(" (as the `{PG_USER}` user: initdb and postgres refuse root)")
            } else {
                String::new()
            }
        );
        c.init()?;
        c.run()?;
        eprintln!("PostgreSQL: listening on 127.0.0.1:{}", c.port);
        Ok(c)
    }

    /// The admin URL the Postgres suites create their databases through.
    pub(crate) fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn command(&self, program: impl AsRef<Path>) -> Command {
        as_user(program.as_ref(), self.as_pg_user, &self.dir)
    }

    fn init(&self) -> anyhow::Result<()> {
        let data = self.data();
        let mut initdb = self.command(self.bin.join("initdb"));
        initdb.arg("-D").arg(&data);
        initdb.args(["-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]);
        quiet(initdb, "initdb")?;
        // A self-signed certificate is all the TLS test needs: it checks the session is
        // encrypted, not who signed the certificate.
        tools::debian_tool("openssl", "openssl", "the test cluster's TLS certificate")?;
        let mut cert = self.command("openssl");
        cert.args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]);
        cert.arg("-keyout").arg(data.join("server.key")).arg("-out").arg(data.join("server.crt"));
        quiet(cert, "openssl req")?;
        set_mode(&data.join("server.key"), 0o600)?;
        let conf = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).with_context(|| format!("cannot read {}", conf.display()))?;
        text.push_str(&settings());
        fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))
    }

    fn run(&mut self) -> anyhow::Result<()> {
        for attempt in 1..=START_ATTEMPTS {
            self.port = free_port()?;
            let mut start = self.command(self.bin.join("pg_ctl"));
            start.arg("start").arg("-w").args(["-t", "120"]).arg("-D").arg(self.data());
            start.arg("-l").arg(self.log()).arg("-o").arg(format!("-p {}", self.port));
            let out = start.output().context("cannot run pg_ctl start")?;
            if out.status.success() {
                self.started = true;
                return Ok(());
            }
            let log = fs::read_to_string(self.log()).unwrap_or_default();
            let port_taken = log.contains("Address already in use");
            if !port_taken || attempt == START_ATTEMPTS {
                eprintln!("{}", String::from_utf8_lossy(&out.stdout));
                eprintln!("\n== server log tail ({})", self.log().display());
                let lines: Vec<&str> = log.lines().collect();
                for l in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
                    eprintln!("{l}");
                }
                bail!("the throwaway PostgreSQL cluster did not start ({}); its log tail is above", out.status);
            }
            eprintln!("PostgreSQL: port {} was taken meanwhile; picking another", self.port);
        }
        unreachable!("the last attempt returns")
    }

    fn stop(&mut self, mode: &str) -> bool {
        let mut stop = self.command(self.bin.join("pg_ctl"));
        stop.arg("stop").arg("-w").args(["-t", "60", "-m", mode]).arg("-D").arg(self.data());
        stop.output().map(|o| o.status.success()).unwrap_or(false)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started && !self.stop("fast") && !self.stop("immediate") {
            eprintln!("PostgreSQL: could not stop the throwaway cluster in {}", self.dir.display());
            return;
        }
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => eprintln!("PostgreSQL: throwaway cluster stopped and {} removed", self.dir.display()),
            Err(e) => eprintln!("PostgreSQL: cannot remove {}: {e}", self.dir.display()),
        }
        // The parent goes too once no other run's cluster is in it.
        if let Some(base) = self.dir.parent() {
            let _ = fs::remove_dir(base);
        }
    }
}

/// The lines appended to the new cluster's `postgresql.conf`. Durability settings are off:
/// the cluster is deleted after the run, so a crash loses nothing worth keeping.
fn settings() -> String {
    format!(
        "\n# cargo xtask: a throwaway test cluster\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = ''\n\
         max_connections = {MAX_CONNECTIONS}\n\
         shared_preload_libraries = 'pg_stat_statements'\n\
         ssl = on\n\
         ssl_cert_file = 'server.crt'\n\
         ssl_key_file = 'server.key'\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         autovacuum = off\n"
    )
}

/// `target/xtask-pg`, or a directory under the system temp dir when the `postgres` user
/// cannot reach the target directory (a checkout inside root's home, mode 0700).
fn base_dir(as_pg_user: bool) -> anyhow::Result<PathBuf> {
    let base = crate::run::target_dir().join("xtask-pg");
    fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    if !as_pg_user || reachable_by_pg_user(&base) {
        return Ok(base);
    }
    let tmp = std::env::temp_dir().join("keel-xtask-pg");
    eprintln!("PostgreSQL: the `{PG_USER}` user cannot reach {}; using {} instead", base.display(), tmp.display());
    let _ = fs::remove_dir(&base);
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

fn reachable_by_pg_user(dir: &Path) -> bool {
    // `test -x` as that user checks search permission on every ancestor on the way.
    as_user(Path::new("test"), true, Path::new("/")).arg("-x").arg(dir).status().is_ok_and(|s| s.success())
}

/// Clusters left by a run that was killed before its guard could drop (Ctrl-C reaches
/// xtask but not the server, which `pg_ctl` starts in its own session).
fn remove_stale(base: &Path, bin: &Path, as_pg_user: bool) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || !Path::new("/proc").is_dir() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = e.path();
        eprintln!("PostgreSQL: removing the cluster a killed run left in {}", dir.display());
        let _ = as_user(&bin.join("pg_ctl"), as_pg_user, &dir)
            .arg("stop")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(dir.join("data"))
            .output();
        let _ = fs::remove_dir_all(&dir);
    }
}

/// `program`, run as the `postgres` user when `as_pg_user` (xtask is root), from `cwd` (a
/// directory that user can enter, so nothing complains about root's working directory).
fn as_user(program: &Path, as_pg_user: bool, cwd: &Path) -> Command {
    let mut c = if as_pg_user {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    c.current_dir(cwd);
    c
}

/// Runs `cmd`, showing its output only when it fails.
fn quiet(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what} ({cmd:?})"))?;
    if !out.status.success() {
        eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        bail!("{what} failed ({}): {cmd:?}", out.status);
    }
    Ok(())
}

fn chown_to_pg_user(dir: &Path) -> anyhow::Result<()> {
    let mut c = Command::new("chown");
    c.arg("-R").arg(format!("{PG_USER}:")).arg(dir);
    quiet(c, "chown").with_context(|| {
        format!("xtask runs as root, so the cluster runs as the `{PG_USER}` system user, which must exist (Debian's postgresql package creates it)")
    })
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0 to pick a free port")?;
    Ok(l.local_addr()?.port())
}

/// The newest installed server's `bin` directory: Debian's layout first, then `pg_config`;
/// installed with apt-get when missing and xtask runs as root.
fn server_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = find_server_bin() {
        return Ok(bin);
    }
    tools::apt_install(
        &["postgresql"],
        "a throwaway server for the PostgreSQL test suites (or set TEST_DATABASE_URL to a server of yours)",
    )?;
    find_server_bin().with_context(|| {
        format!(
            "no PostgreSQL server binaries (initdb) under {DEBIAN_PG_LIB}/<version>/bin or from `pg_config --bindir`"
        )
    })
}

fn find_server_bin() -> Option<PathBuf> {
    let names = fs::read_dir(DEBIAN_PG_LIB)
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect::<Vec<_>>())
        .unwrap_or_default();
    let debian = newest_version(&names).map(|v| Path::new(DEBIAN_PG_LIB).join(v).join("bin"));
    if let Some(bin) = debian.filter(|b| b.join("initdb").is_file()) {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok().filter(|o| o.status.success())?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())).filter(|b| b.join("initdb").is_file())
}

/// The highest numeric major version among directory names (`9.6`, `15`, `16`; others ignored).
fn newest_version(names: &[String]) -> Option<&str> {
    let key = |n: &str| -> Option<(u32, u32)> {
        let mut parts = n.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        parts.next().is_none().then_some((major, minor))
    };
    names.iter().filter_map(|n| Some((key(n)?, n.as_str()))).max_by_key(|(k, _)| *k).map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn newest_version_compares_numbers_not_text() {
        assert_eq!(newest_version(&names(&["9.6", "15", "16", "README"])), Some("16"));
        assert_eq!(newest_version(&names(&["9.6", "10"])), Some("10"));
        assert_eq!(newest_version(&names(&["x", "15.beta"])), None);
        assert_eq!(newest_version(&[]), None);
    }

    #[test]
    fn settings_preload_pg_stat_statements_and_turn_tls_on() {
        let s = settings();
        assert!(s.contains("shared_preload_libraries = 'pg_stat_statements'"), "{s}");
        assert!(s.contains("ssl = on"), "{s}");
        assert!(s.contains(&format!("max_connections = {MAX_CONNECTIONS}")), "{s}");
        assert!(s.contains("listen_addresses = '127.0.0.1'"), "{s}");
    }
}
