//! Scratch directories: made by one process for work in progress (a browser's
//! profile, an index being built), each holding a lock file that the process keeps
//! locked for as long as it may write there, and deleted by that process when it is
//! done.
//!
//! A process that is killed or crashes cannot delete its own, and what it leaves
//! stays: a browser profile is a few megabytes, an index build as large as the
//! agent's knowledge. A server restarted in a loop by its supervisor would fill the
//! disk. So each kind is swept ([`sweep`]) of the directories nobody holds the lock
//! of. The lock (`flock`) goes with the process that held it, whatever ended it, so
//! a sweep never takes the directory of a process still at work, this one's or
//! another's.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The lock file inside each scratch directory.
const LOCK: &str = ".agentbase-lock";

/// A scratch directory is only swept once its lock file (or, without one, the
/// directory) is at least this old: a process that has just made its directory may
/// not have created or locked the file yet.
pub const MIN_AGE: Duration = Duration::from_secs(60);

/// A scratch directory, locked while this value lives and deleted in the background
/// when it is dropped (deleting thousands of files waits on the disk; see
/// [`crate::background::drop_later`]).
pub struct ScratchDir {
    dir: Option<tempfile::TempDir>,
    /// Held locked until the directory is gone.
    lock: Option<File>,
}

impl ScratchDir {
    /// Makes a new directory in `root`, named `prefix` and six random characters,
    /// and locks it.
    pub fn create_in(root: &Path, prefix: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(root)?;
        let lock = File::create(dir.path().join(LOCK))?;
        lock.try_lock().map_err(io::Error::from)?;
        Ok(Self {
            dir: Some(dir),
            lock: Some(lock),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let (dir, lock) = (dir.keep(), self.lock.take());
            crate::background::drop_later(RemovedDir(dir, lock));
        }
    }
}

/// A directory deleted when this value is dropped, then its lock released (so a
/// sweep meanwhile leaves it alone). A process that was writing there as it
/// went (a browser's helper processes outlive its main one by a moment) can
/// make a deletion fail: it is tried again a few times.
struct RemovedDir(PathBuf, Option<File>);

impl Drop for RemovedDir {
    fn drop(&mut self) {
        for attempt in 0..6u32 {
            match std::fs::remove_dir_all(&self.0) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(100 << attempt)),
            }
        }
        drop(self.1.take());
    }
}

/// Deletes the directories in `root` whose name `matches`, whose lock nobody holds
/// and whose lock file is at least `min_age` old, and those without a lock file
/// whose directory is that old (made before scratch directories were locked, or
/// left between their creation and their lock). Entries that are not directories
/// (a symlink included) are left alone, as is anything that cannot be read. Logs
/// how many `what` went, and returns their paths.
pub fn sweep(
    root: &Path,
    what: &str,
    matches: impl Fn(&str) -> bool,
    min_age: Duration,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let old = |modified: io::Result<SystemTime>| {
        modified.is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age >= min_age))
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(&matches) {
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
    if !swept.is_empty() {
        tracing::info!(dir = %root.display(), count = swept.len(), "removed {what} left by processes that ended without cleaning up");
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const PREFIX: &str = "work-";

    fn ours(name: &str) -> bool {
        name.starts_with(PREFIX)
    }

    fn age(path: &Path, by: Duration) {
        let file = File::open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    /// A scratch directory as a killed process leaves it: its lock file, unlocked,
    /// an hour old.
    fn left_behind(root: &Path, name: &str) -> PathBuf {
        let dir = root.join(format!("{PREFIX}{name}"));
        std::fs::create_dir_all(dir.join("Default")).unwrap();
        std::fs::write(dir.join("Default/Preferences"), b"{}").unwrap();
        File::create(dir.join(LOCK)).unwrap();
        age(&dir.join(LOCK), HOUR);
        dir
    }

    #[test]
    fn a_directory_nobody_holds_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let dead = left_behind(root.path(), "dead");
        assert_eq!(
            sweep(root.path(), "test work", ours, MIN_AGE),
            vec![dead.clone()]
        );
        assert!(!dead.exists());
    }

    #[test]
    fn a_directory_in_use_is_kept_whatever_its_age() {
        let root = tempfile::tempdir().unwrap();
        let live = ScratchDir::create_in(root.path(), PREFIX).unwrap();
        age(&live.path().join(LOCK), HOUR);
        assert!(sweep(root.path(), "test work", ours, MIN_AGE).is_empty());
        assert!(live.path().join(LOCK).exists());
    }

    #[test]
    fn a_directory_locked_by_another_process_is_kept() {
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
        let swept = sweep(root.path(), "test work", ours, MIN_AGE);
        drop(holder.stdin.take());
        holder.wait().unwrap();
        assert!(swept.is_empty());
        assert!(dir.join("Default/Preferences").exists());
        // Once that process is gone, the directory is stale.
        assert_eq!(sweep(root.path(), "test work", ours, MIN_AGE), vec![dir]);
    }

    #[test]
    fn a_fresh_lock_file_is_left_to_its_maker() {
        let root = tempfile::tempdir().unwrap();
        let dir = left_behind(root.path(), "new");
        age(&dir.join(LOCK), Duration::ZERO);
        assert!(sweep(root.path(), "test work", ours, MIN_AGE).is_empty());
        assert!(dir.exists());
    }

    #[test]
    fn a_directory_without_a_lock_file_goes_once_it_is_old() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(format!("{PREFIX}unlocked"));
        std::fs::create_dir(&dir).unwrap();
        assert!(sweep(root.path(), "test work", ours, MIN_AGE).is_empty());
        age(&dir, HOUR);
        assert_eq!(sweep(root.path(), "test work", ours, MIN_AGE), vec![dir]);
    }

    #[test]
    fn other_names_files_and_symlinks_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = left_behind(elsewhere.path(), "target");
        let other = root.path().join("something-else");
        std::fs::create_dir(&other).unwrap();
        File::create(other.join(LOCK)).unwrap();
        age(&other.join(LOCK), HOUR);
        let file = root.path().join(format!("{PREFIX}file"));
        std::fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&target, root.path().join(format!("{PREFIX}link"))).unwrap();
        assert!(sweep(root.path(), "test work", ours, MIN_AGE).is_empty());
        assert!(other.exists() && file.exists() && target.join("Default").exists());
    }

    #[test]
    fn a_dropped_directory_is_deleted() {
        let root = tempfile::tempdir().unwrap();
        let scratch = ScratchDir::create_in(root.path(), PREFIX).unwrap();
        let path = scratch.path().to_path_buf();
        assert!(path.join(LOCK).exists());
        drop(scratch);
        assert!(!path.exists());
    }
}
