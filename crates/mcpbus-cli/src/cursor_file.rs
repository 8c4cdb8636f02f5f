//! `mcpbus sub --cursor-file`: where each SEP-3415 subscription stands, read when `sub` starts
//! and written after every event (and every other cursor advance), so that a `sub` started
//! again resumes where the last one stopped.
//!
//! The file is one JSON object, subscription key to cursor (the key is the event type's name,
//! followed by its arguments as JSON when it has some). It is replaced whole, through a
//! temporary file renamed over it, so that a `sub` killed mid-write leaves the previous
//! version, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why the cursor file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CursorFileError {
    /// Reading failed (other than the file not existing yet).
    #[error("cannot read the cursor file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a JSON object of strings.
    #[error(
        "the cursor file {path} is not a JSON object of cursors ({source}); remove it to start from now"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// The cursors of every subscription of one `sub`, and the file they are kept in.
#[derive(Debug)]
pub(crate) struct CursorFile {
    path: PathBuf,
    cursors: Mutex<BTreeMap<String, String>>,
}

impl CursorFile {
    /// Reads `path`; a file that does not exist yet is empty.
    pub(crate) fn load(path: &Path) -> Result<Self, CursorFileError> {
        let cursors = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CursorFileError::Format {
                    path: path.to_owned(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(CursorFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(CursorFile {
            path: path.to_owned(),
            cursors: Mutex::new(cursors),
        })
    }

    /// The cursor kept for subscription `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    /// Keeps `cursor` for `key` and writes the file (when it changed). A failed write is
    /// reported on stderr and does not stop `sub`: the events still print, and the next write
    /// may succeed.
    pub(crate) fn set(&self, key: &str, cursor: &str) {
        let mut cursors = self.lock();
        if cursors.get(key).is_some_and(|c| c == cursor) {
            return;
        }
        cursors.insert(key.to_owned(), cursor.to_owned());
        if let Err(e) = self.write(&cursors) {
            eprintln!(
                "mcpbus: cannot write the cursor file {}: {e}",
                self.path.display()
            );
        }
    }

    fn write(&self, cursors: &BTreeMap<String, String>) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(cursors).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_a_reload_and_bad_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("mcpbus-cursors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("cursors.json");
        let _ = std::fs::remove_file(&path);
        let file = CursorFile::load(&path).ok();
        let Some(file) = file else {
            panic!("a missing file is empty");
        };
        assert_eq!(file.get("build/+"), None);
        file.set("build/+", "7");
        file.set("alerts/# {\"topic\":\"alerts/x\"}", "9");
        let again = CursorFile::load(&path).ok();
        assert_eq!(again.and_then(|f| f.get("build/+")).as_deref(), Some("7"));
        std::fs::write(&path, "[1]").ok();
        assert!(matches!(
            CursorFile::load(&path),
            Err(CursorFileError::Format { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
