//! The browser's profile directories: one per launch, `agentbase-chromium-*` in the
//! temporary directory, each holding a lock file that the process which made it
//! keeps locked for as long as the browser may use it.
//!
//! A server that exits normally deletes its profile. One that is killed or crashes
//! cannot, and every browser it had started leaves a few megabytes behind (cache,
//! preferences): a server restarted in a loop by its supervisor would fill the
//! temporary directory. So every launch first sweeps the profiles nobody holds the
//! lock of ([`sweep_stale`]). The lock (`flock`) goes with the process that held it,
//! whatever ended it, and several servers on one host keep each other's profiles.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What every profile directory's name starts with.
const PREFIX: &str = "agentbase-chromium-";
/// The lock file inside each profile.
const LOCK: &str = ".agentbase-lock";
/// A profile is only swept once its lock file (or, without one, the directory) is at
/// least this old: a process that has just made its directory may not have created
/// or locked the file yet.
pub(super) const MIN_AGE: Duration = Duration::from_secs(60);

/// A browser's profile directory, deleted in the background when dropped (deleting
/// thousands of cache files waits on the disk; see
/// [`crate::background::drop_later`]).
pub(super) struct ProfileDir {
    dir: Option<tempfile::TempDir>,
    /// Held locked until the directory is gone.
    lock: Option<File>,
}

impl ProfileDir {
    /// Makes a new profile directory in `root` and locks it.
    pub(super) fn create(root: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir_in(root)?;
        let lock = File::create(dir.path().join(LOCK))?;
        lock.try_lock().map_err(io::Error::from)?;
        Ok(Self {
            dir: Some(dir),
            lock: Some(lock),
        })
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for ProfileDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // A tuple drops in order: the lock goes after the directory, so a sweep
            // meanwhile leaves it alone.
            crate::background::drop_later((dir, self.lock.take()));
        }
    }
}

/// Deletes the profile directories in `root` whose lock nobody holds and whose lock
/// file is at least `min_age` old, and those without a lock file whose directory is
/// that old (made before profiles were locked, or left between their creation and
/// their lock). Entries that are not directories (a symlink included) are left
/// alone, as is anything that cannot be read. Returns the paths deleted.
pub(super) fn sweep_stale(root: &Path, min_age: Duration) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let old = |modified: io::Result<SystemTime>| {
        modified.is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age >= min_age))
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        // `file_type` does not follow symlinks.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let stale = match File::open(path.join(LOCK)) {
            // Held (the open file keeps it) until the directory is gone.
            Ok(lock) => old(lock.metadata().and_then(|m| m.modified())) && lock.try_lock().is_ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                old(entry.metadata().and_then(|m| m.modified()))
            }
            Err(_) => false,
        };
        if stale && std::fs::remove_dir_all(&path).is_ok() {
            swept.push(path);
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn age(path: &Path, by: Duration) {
        let file = File::open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    /// A profile as a killed server leaves it: its lock file, unlocked, an hour old.
    fn left_behind(root: &Path, name: &str) -> PathBuf {
        let dir = root.join(format!("{PREFIX}{name}"));
        std::fs::create_dir_all(dir.join("Default")).unwrap();
        std::fs::write(dir.join("Default/Preferences"), b"{}").unwrap();
        File::create(dir.join(LOCK)).unwrap();
        age(&dir.join(LOCK), HOUR);
        dir
    }

    #[test]
    fn a_profile_nobody_holds_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let dead = left_behind(root.path(), "dead");
        assert_eq!(sweep_stale(root.path(), MIN_AGE), vec![dead.clone()]);
        assert!(!dead.exists());
    }

    #[test]
    fn a_profile_in_use_is_kept_whatever_its_age() {
        let root = tempfile::tempdir().unwrap();
        let live = ProfileDir::create(root.path()).unwrap();
        age(&live.path().join(LOCK), HOUR);
        assert!(sweep_stale(root.path(), MIN_AGE).is_empty());
        assert!(live.path().join(LOCK).exists());
    }

    #[test]
    fn a_profile_locked_by_another_process_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = left_behind(root.path(), "other");
        // flock(1) holds the lock in another process (and `cat`, which inherits it)
        // until `cat` reads the end of its input.
        let mut holder = std::process::Command::new("flock")
            .arg(dir.join(LOCK))
            .arg("cat")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let held = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            File::open(dir.join(LOCK)).unwrap().try_lock().is_err()
        });
        assert!(held, "flock(1) did not take the lock");
        let swept = sweep_stale(root.path(), MIN_AGE);
        drop(holder.stdin.take());
        holder.wait().unwrap();
        assert!(swept.is_empty());
        assert!(dir.join("Default/Preferences").exists());
        // Once that process is gone, the profile is stale.
        assert_eq!(sweep_stale(root.path(), MIN_AGE), vec![dir]);
    }

    #[test]
    fn a_fresh_lock_file_is_left_to_its_maker() {
        let root = tempfile::tempdir().unwrap();
        let dir = left_behind(root.path(), "new");
        age(&dir.join(LOCK), Duration::ZERO);
        assert!(sweep_stale(root.path(), MIN_AGE).is_empty());
        assert!(dir.exists());
    }

    #[test]
    fn a_directory_without_a_lock_file_goes_once_it_is_old() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(format!("{PREFIX}unlocked"));
        std::fs::create_dir(&dir).unwrap();
        assert!(sweep_stale(root.path(), MIN_AGE).is_empty());
        age(&dir, HOUR);
        assert_eq!(sweep_stale(root.path(), MIN_AGE), vec![dir]);
    }

    #[test]
    fn other_names_files_and_symlinks_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = left_behind(elsewhere.path(), "target");
        let other = root.path().join("chromium-something");
        std::fs::create_dir(&other).unwrap();
        File::create(other.join(LOCK)).unwrap();
        age(&other.join(LOCK), HOUR);
        let file = root.path().join(format!("{PREFIX}file"));
        std::fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&target, root.path().join(format!("{PREFIX}link"))).unwrap();
        assert!(sweep_stale(root.path(), MIN_AGE).is_empty());
        assert!(other.exists() && file.exists() && target.join("Default").exists());
    }

    #[test]
    fn a_dropped_profile_is_deleted() {
        let root = tempfile::tempdir().unwrap();
        let profile = ProfileDir::create(root.path()).unwrap();
        let path = profile.path().to_path_buf();
        assert!(path.join(LOCK).exists());
        drop(profile);
        assert!(!path.exists());
    }
}
