//! A file that is re-read when it changes, keeping the last good content on a bad edit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// Parses a file's text; the error is one line naming what is wrong.
pub type Parser<T> = fn(&str, &str) -> Result<T, String>;

#[derive(Debug)]
struct Loaded<T> {
    value: Arc<T>,
    stamp: Option<(SystemTime, u64)>,
    last_error: Option<String>,
}

/// A parsed file, re-read at most once per call to [`WatchedFile::current`] when its
/// modification time or size changed.
#[derive(Debug)]
pub struct WatchedFile<T> {
    path: PathBuf,
    parse: Parser<T>,
    state: Mutex<Loaded<T>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read<T>(path: &Path, parse: Parser<T>) -> Result<T, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse(&shown, &text)
}

impl<T> WatchedFile<T> {
    /// Loads the file; a missing or invalid file is an error (the caller fails at start).
    pub fn load(path: impl Into<PathBuf>, parse: Parser<T>) -> Result<Self, String> {
        let path = path.into();
        let before = stamp(&path);
        let value = read(&path, parse)?;
        Ok(WatchedFile {
            path,
            parse,
            state: Mutex::new(Loaded {
                value: Arc::new(value),
                stamp: before,
                last_error: None,
            }),
        })
    }

    /// The content, re-read first if the file changed. A failed re-read keeps the last good
    /// content and logs one WARN per distinct error. Returns whether the content changed.
    pub fn current(&self) -> (Arc<T>, bool) {
        let now = stamp(&self.path);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now == state.stamp {
            return (state.value.clone(), false);
        }
        state.stamp = now;
        match read(&self.path, self.parse) {
            Ok(value) => {
                tracing::info!(file = %self.path.display(), "reloaded");
                state.value = Arc::new(value);
                state.last_error = None;
                (state.value.clone(), true)
            }
            Err(e) => {
                if state.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "invalid edit ignored; keeping the last good content");
                    state.last_error = Some(e);
                }
                (state.value.clone(), false)
            }
        }
    }

    /// The last reload error, if the current file content is rejected.
    #[cfg(test)]
    pub fn last_error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_number(_path: &str, text: &str) -> Result<u32, String> {
        text.trim()
            .parse()
            .map_err(|e| format!("not a number: {e}"))
    }

    #[test]
    fn a_bad_edit_keeps_the_last_good_value_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.txt");
        std::fs::write(&path, "1").unwrap();
        let file = WatchedFile::load(&path, parse_number).unwrap();
        assert_eq!(*file.current().0, 1);

        std::fs::write(&path, "not a number at all").unwrap();
        let (value, changed) = file.current();
        assert_eq!((*value, changed), (1, false));
        assert!(file.last_error().unwrap().starts_with("not a number"));

        std::fs::write(&path, "22").unwrap();
        let (value, changed) = file.current();
        assert_eq!((*value, changed), (22, true));
        assert_eq!(file.last_error(), None);
    }

    #[test]
    fn a_missing_file_fails_at_load() {
        let err = WatchedFile::load("/nonexistent/wva/n.txt", parse_number).unwrap_err();
        assert!(
            err.starts_with("cannot read /nonexistent/wva/n.txt"),
            "{err}"
        );
    }
}
