//! natterd's log files: one per hour or day (or a single file), old ones pruned.
//!
//! Written by hand rather than with tracing-appender's rolling appender because pruning must
//! touch only files natterd wrote, matched by exact prefix *and* date pattern; the appender
//! removes anything that merely starts with the prefix. tracing-appender's non-blocking
//! writer still sits in front of this one, so a slow disk never stalls a session.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::config::Rotation;

/// A log file that rotates by date and can be reopened on request.
#[derive(Debug)]
pub struct LogFile {
    dir: PathBuf,
    prefix: String,
    rotation: Rotation,
    max_files: usize,
    open: Mutex<Open>,
    reopen: AtomicBool,
}

#[derive(Debug)]
struct Open {
    file: File,
    /// The date part of the open file's name.
    period: String,
}

impl LogFile {
    /// Opens (appending) the current file in `dir`, which must exist, and prunes old ones.
    pub fn open(
        dir: &Path,
        prefix: &str,
        rotation: Rotation,
        max_files: usize,
    ) -> io::Result<LogFile> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("log directory {} does not exist", dir.display()),
            ));
        }
        let period = period(rotation, Utc::now());
        let log = LogFile {
            dir: dir.to_owned(),
            prefix: prefix.to_owned(),
            rotation,
            max_files,
            open: Mutex::new(Open {
                file: create(&file_path(dir, prefix, &period))?,
                period,
            }),
            reopen: AtomicBool::new(false),
        };
        log.prune();
        Ok(log)
    }

    /// The file being written now.
    pub fn current_path(&self) -> PathBuf {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        file_path(&self.dir, &self.prefix, &open.period)
    }

    /// Makes the next write reopen the file by name (after an external tool moved it).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    fn write_at(&self, buf: &[u8], now: DateTime<Utc>) -> io::Result<usize> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let period = period(self.rotation, now);
        let rotated = period != open.period;
        if rotated || self.reopen.swap(false, Ordering::Relaxed) {
            open.file = create(&file_path(&self.dir, &self.prefix, &period))?;
            open.period = period;
            if rotated {
                drop(open);
                self.prune();
                open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            }
        }
        open.file.write_all(buf)?;
        Ok(buf.len())
    }

    /// Removes the oldest of natterd's own files beyond `max_files`.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut ours: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| self.is_ours(name))
            .collect();
        if ours.len() <= self.max_files {
            return;
        }
        // Dates in the names sort in time order.
        ours.sort();
        for name in &ours[..ours.len() - self.max_files] {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }

    /// `PREFIX.<date>.log` with this rotation's exact date pattern.
    fn is_ours(&self, name: &str) -> bool {
        let Some(date) = name
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".log"))
        else {
            return false;
        };
        let pattern = match self.rotation {
            Rotation::Hourly => "dddd-dd-dd-dd",
            Rotation::Daily => "dddd-dd-dd",
            Rotation::Never => return false,
        };
        date.len() == pattern.len()
            && date.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
                b'd' => c.is_ascii_digit(),
                _ => c == p,
            })
    }
}

/// The date part of the file name for `now`; empty for a single file.
fn period(rotation: Rotation, now: DateTime<Utc>) -> String {
    match rotation {
        Rotation::Hourly => now.format("%Y-%m-%d-%H").to_string(),
        Rotation::Daily => now.format("%Y-%m-%d").to_string(),
        Rotation::Never => String::new(),
    }
}

fn file_path(dir: &Path, prefix: &str, period: &str) -> PathBuf {
    if period.is_empty() {
        dir.join(format!("{prefix}.log"))
    } else {
        dir.join(format!("{prefix}.{period}.log"))
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}

/// The [`Write`] end handed to the non-blocking writer.
#[derive(Debug, Clone)]
pub struct Writer(pub Arc<LogFile>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_at(buf, Utc::now())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rotates_by_date_and_prunes_only_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let keep = [
            "natterd.notes.log",
            "natterd.2020-01-01.log.gz",
            "natterd-2020-01-01.log",
            "natterd.2020-01-01-05.log",
            "other.2020-01-01.log",
        ];
        for name in keep
            .iter()
            .chain(&["natterd.2020-01-01.log", "natterd.2020-01-02.log"])
        {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let log = LogFile::open(dir.path(), "natterd", Rotation::Daily, 2).unwrap();
        let today = format!("natterd.{}.log", Utc::now().format("%Y-%m-%d"));
        assert_eq!(log.current_path(), dir.path().join(&today));
        let mut expected: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        expected.push("natterd.2020-01-02.log".into());
        expected.push(today.clone());
        expected.sort();
        assert_eq!(names(dir.path()), expected);

        // Crossing into a new day starts a new file and prunes again.
        let later = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
        log.write_at(b"line\n", later).unwrap();
        let next = "natterd.2099-01-01.log";
        assert_eq!(
            std::fs::read_to_string(dir.path().join(next)).unwrap(),
            "line\n"
        );
        assert!(!names(dir.path()).contains(&"natterd.2020-01-02.log".to_owned()));
        assert!(names(dir.path()).contains(&today));
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name} was touched");
        }
    }

    #[test]
    fn reopen_follows_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path(), "n", Rotation::Never, 1).unwrap();
        let path = dir.path().join("n.log");
        log.write_at(b"one\n", Utc::now()).unwrap();
        std::fs::rename(&path, dir.path().join("n.log.1")).unwrap();
        log.reopen();
        log.write_at(b"two\n", Utc::now()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("n.log.1")).unwrap(),
            "one\n"
        );
    }

    #[test]
    fn missing_directory_is_an_error() {
        let err = LogFile::open(Path::new("/nonexistent/x"), "n", Rotation::Daily, 1).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x"), "{err}");
    }
}
