//! [`KeySettings`]: the job encryption keys from the environment (`KEEL_JOB_ENCRYPTION_KEY`,
//! `KEEL_JOB_DECRYPTION_KEYS`), and the development key file used when none is set.

use super::key::KEY_HINT;
use super::{JobKey, Keyring, SealError};
use keel_config::{Problems, Reader, Source};
use std::io::Write;
use std::path::Path;

/// `ID:BASE64`: the key that seals new jobs (and opens them).
pub const ENCRYPTION_KEY_VAR: &str = "KEEL_JOB_ENCRYPTION_KEY";
/// Comma-separated `ID:BASE64` keys that still open jobs sealed before a rotation.
pub const DECRYPTION_KEYS_VAR: &str = "KEEL_JOB_DECRYPTION_KEYS";
/// Where development keeps a generated key when `KEEL_JOB_ENCRYPTION_KEY` is unset.
pub const DEV_KEY_FILE: &str = "./data/job-encryption.key";

/// The configured keys, validated. `current` is `None` when `KEEL_JOB_ENCRYPTION_KEY` is unset,
/// which production refuses (see [`KeySettings::read`]); development then uses
/// [`KeySettings::resolve`]'s key file.
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    /// `KEEL_JOB_ENCRYPTION_KEY`.
    pub current: Option<JobKey>,
    /// `KEEL_JOB_DECRYPTION_KEYS`.
    pub older: Vec<JobKey>,
}

impl KeySettings {
    /// Reads both variables onto `r`; every problem names its variable and never the value.
    /// In production an unset `KEEL_JOB_ENCRYPTION_KEY` is a problem: nothing sensitive may be
    /// queued in clear, and a generated file key would differ from one machine to the next.
    pub fn read(r: &mut Reader<'_>, production: bool) -> KeySettings {
        let current = match r.raw(ENCRYPTION_KEY_VAR) {
            Some(text) => JobKey::parse(&text).map_err(|m| r.problem(ENCRYPTION_KEY_VAR, m)).ok(),
            None => {
                if production {
                    r.problem(
                        ENCRYPTION_KEY_VAR,
                        format!(
                            "is required when KEEL_ENV=production: jobs that carry personal data or secrets are \
                             sealed with it; {KEY_HINT}"
                        ),
                    );
                }
                None
            }
        };
        let mut older = Vec::new();
        for (i, item) in r.raw(DECRYPTION_KEYS_VAR).unwrap_or_default().split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            match JobKey::parse(item) {
                Ok(k) => older.push(k),
                Err(m) => r.problem(DECRYPTION_KEYS_VAR, format!("entry {}: {m}", i + 1)),
            }
        }
        let settings = KeySettings { current, older };
        if let Some(Err(e)) = settings.keyring() {
            r.problem(DECRYPTION_KEYS_VAR, e.to_string().trim_start_matches(&format!("{DECRYPTION_KEYS_VAR}: ")));
        }
        settings
    }

    /// [`KeySettings::read`] on its own, every problem at once.
    pub fn from_source(source: &dyn Source, production: bool) -> Result<KeySettings, Problems> {
        let mut r = Reader::new(source);
        let s = Self::read(&mut r, production);
        r.finish().map(|()| s)
    }

    /// The keyring of the configured keys, when `KEEL_JOB_ENCRYPTION_KEY` is set.
    pub fn keyring(&self) -> Option<Result<Keyring, SealError>> {
        self.current.clone().map(|c| Keyring::new(c, self.older.iter().cloned()))
    }

    /// The configured keyring, or (development, no key set) one sealing with the key kept in
    /// `dev_file`, generated on first use (mode 0600) and reused after; older keys still open.
    pub fn resolve(&self, dev_file: &Path) -> Result<Keyring, SealError> {
        match self.keyring() {
            Some(ring) => ring,
            None => Keyring::new(load_or_create(dev_file)?, self.older.iter().cloned()),
        }
    }
}

fn file_error(path: &Path, message: impl Into<String>) -> SealError {
    SealError::BadKey { source_name: path.display().to_string(), message: message.into() }
}

/// The key in `path`, or a new one written there. Two processes starting together agree on
/// one key: the new key is written whole under a temporary name and linked into place only
/// if no file is there yet; the loser reads the winner's.
fn load_or_create(path: &Path) -> Result<JobKey, SealError> {
    match std::fs::read_to_string(path) {
        Ok(text) => return JobKey::parse(&text).map_err(|m| file_error(path, m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(file_error(
                path,
                format!("cannot be read ({e}); fix its permissions or set {ENCRYPTION_KEY_VAR}"),
            ))
        }
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| file_error(path, format!("cannot create its directory ({e})")))?;
    let id = format!("dev-{:08x}", rand::random::<u32>());
    let key = JobKey::generate(&id).map_err(|m| file_error(path, m))?;
    let tmp = dir.join(format!(".job-encryption.key.{}.{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let written = write_private(&tmp, key.to_config_text().as_bytes());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| file_error(path, format!("cannot be read ({e})")))?;
            JobKey::parse(&text).map_err(|m| file_error(path, m))
        }
        Err(e) => Err(file_error(path, format!("cannot be written ({e}); set {ENCRYPTION_KEY_VAR} instead"))),
    }
}

/// Creates `path` readable and writable by its owner only, with `bytes` and a newline.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut f = open.open(path)?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;

    const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    #[test]
    fn reads_both_variables_and_names_them_in_every_problem() {
        let s = KeySettings::from_source(
            &MapSource::new([(ENCRYPTION_KEY_VAR, K2), (DECRYPTION_KEYS_VAR, &format!(" {K1}, "))]),
            true,
        )
        .unwrap();
        assert_eq!(s.keyring().unwrap().unwrap().ids(), ["k2", "k1"]);
        let p = KeySettings::from_source(&MapSource::new([]), true).unwrap_err().to_string();
        assert!(p.contains(ENCRYPTION_KEY_VAR) && p.contains("KEEL_ENV=production"), "{p}");
        assert!(KeySettings::from_source(&MapSource::new([]), false).unwrap().current.is_none());
        let secret = "AQEBAQEBAQEBAQEBAQEBAQEBAQEB";
        let p = KeySettings::from_source(
            &MapSource::new([(ENCRYPTION_KEY_VAR, secret), (DECRYPTION_KEYS_VAR, &format!("{K1},k1:{secret}"))]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(p.contains(ENCRYPTION_KEY_VAR) && p.contains(DECRYPTION_KEYS_VAR) && p.contains("entry 2"), "{p}");
        assert!(!p.contains(secret), "key material echoed: {p}");
        let p = KeySettings::from_source(
            &MapSource::new([(ENCRYPTION_KEY_VAR, K1), (DECRYPTION_KEYS_VAR, &K2.replace("k2", "k1"))]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(p.contains(DECRYPTION_KEYS_VAR) && p.contains("\"k1\" is given twice"), "{p}");
    }

    #[test]
    fn the_development_key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/job-encryption.key");
        let dev = KeySettings::default();
        let first = dev.resolve(&path).unwrap();
        let again = dev.resolve(&path).unwrap();
        assert_eq!(first.current_id(), again.current_id());
        assert!(first.current_id().starts_with("dev-"));
        let (kid, ct) = first.seal(b"x", b"a").unwrap();
        assert_eq!(again.open(&kid, &ct, b"a", "f").unwrap(), b"x", "the same key, not just the same id");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        // A configured key wins; the file is not consulted.
        let env = KeySettings::from_source(&MapSource::new([(ENCRYPTION_KEY_VAR, K1)]), false).unwrap();
        assert_eq!(env.resolve(&path).unwrap().current_id(), "k1");
        std::fs::write(&path, "garbage").unwrap();
        let e = dev.resolve(&path).unwrap_err().to_string();
        assert!(e.contains("job-encryption.key") && !e.contains("garbage"), "{e}");
    }
}
