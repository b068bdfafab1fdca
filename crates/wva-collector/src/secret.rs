//! Bearer tokens: a redacting `Secret` and a provider that re-reads token files (spec §6.3).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::CollectorError;

/// A secret string whose `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value (trimmed).
    pub fn new(value: &str) -> Self {
        Secret(Arc::from(value.trim()))
    }

    /// The secret value itself; only for building a header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `Authorization: Bearer …` header value, marked sensitive.
    pub(crate) fn bearer_header(&self) -> Option<reqwest::header::HeaderValue> {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0)).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a bearer token comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TokenSource {
    /// No token.
    #[default]
    None,
    /// A fixed token.
    Static(Secret),
    /// A token file, re-read at most every 60 s and at once on a 401.
    File(PathBuf),
}

/// How often a token file is re-read at most.
pub const TOKEN_REREAD_INTERVAL: Duration = Duration::from_secs(60);

fn check_header_chars(key: &str, token: &str) -> Result<(), CollectorError> {
    // Visible ASCII and spaces/tabs only, as an HTTP header value allows.
    if token
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        Ok(())
    } else {
        Err(CollectorError::config(
            key,
            format!(
                "{key}: the bearer token contains characters that are not allowed in an HTTP header"
            ),
        ))
    }
}

fn read_token_file(
    path: &std::path::Path,
    contents: std::io::Result<String>,
) -> Result<Secret, CollectorError> {
    let key = "PROMETHEUS_TOKEN_PATH";
    let text = contents.map_err(|e| {
        CollectorError::config(
            key,
            format!("failed to read bearer token from {}: {e}", path.display()),
        )
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(CollectorError::config(
            key,
            format!(
                "PROMETHEUS_TOKEN_PATH=\"{}\": the token file is empty",
                path.display()
            ),
        ));
    }
    check_header_chars(key, trimmed)?;
    Ok(Secret::new(trimmed))
}

/// Supplies the current bearer token.
#[derive(Debug)]
pub struct TokenProvider {
    source: TokenSource,
    current: RwLock<Option<Secret>>,
    last_read: Mutex<Option<Instant>>,
    warned: Mutex<Option<String>>,
}

impl TokenProvider {
    /// A provider; a token file is read now and a failure is a configuration error.
    pub fn new(source: TokenSource) -> Result<Self, CollectorError> {
        let current = match &source {
            TokenSource::None => None,
            TokenSource::Static(s) => {
                check_header_chars("PROMETHEUS_BEARER_TOKEN", s.expose())?;
                Some(s.clone())
            }
            TokenSource::File(p) => Some(read_token_file(p, std::fs::read_to_string(p))?),
        };
        Ok(TokenProvider {
            source,
            current: RwLock::new(current),
            last_read: Mutex::new(Some(Instant::now())),
            warned: Mutex::new(None),
        })
    }

    /// A provider without a token.
    pub fn none() -> Self {
        TokenProvider {
            source: TokenSource::None,
            current: RwLock::new(None),
            last_read: Mutex::new(None),
            warned: Mutex::new(None),
        }
    }

    /// Whether a token file backs this provider (so a 401 may be fixed by a re-read).
    pub fn is_file(&self) -> bool {
        matches!(self.source, TokenSource::File(_))
    }

    /// The token held now, without re-reading the file.
    pub(crate) fn peek(&self) -> Option<Secret> {
        self.get()
    }

    fn get(&self) -> Option<Secret> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// The current token, re-reading a token file when the last read is older than 60 s.
    pub async fn current(&self) -> Option<Secret> {
        if self.is_file() {
            let due = self
                .last_read
                .lock()
                .map(|g| g.is_none_or(|t| t.elapsed() >= TOKEN_REREAD_INTERVAL))
                .unwrap_or(false);
            if due {
                self.reload().await;
            }
        }
        self.get()
    }

    /// Re-reads the token file now; returns true when the token changed. A failed read keeps
    /// the old token and logs one WARN per distinct error.
    pub async fn reload(&self) -> bool {
        let TokenSource::File(path) = &self.source else {
            return false;
        };
        if let Ok(mut g) = self.last_read.lock() {
            *g = Some(Instant::now());
        }
        match read_token_file(path, tokio::fs::read_to_string(path).await) {
            Ok(new) => {
                let changed = self.get().as_ref() != Some(&new);
                if changed && let Ok(mut g) = self.current.write() {
                    *g = Some(new);
                }
                changed
            }
            Err(e) => {
                let msg = e.to_string();
                if let Ok(mut w) = self.warned.lock()
                    && w.as_deref() != Some(msg.as_str())
                {
                    tracing::warn!(error = %msg, "keeping the previous bearer token");
                    *w = Some(msg);
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new(" hunter2 ");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn empty_token_file_is_a_config_error() {
        let f = tempfile_path("empty");
        std::fs::write(&f, "  \n").unwrap();
        let e = TokenProvider::new(TokenSource::File(f.clone())).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "PROMETHEUS_TOKEN_PATH=\"{}\": the token file is empty",
                f.display()
            )
        );
    }

    #[test]
    fn token_with_control_characters_is_rejected_without_printing_it() {
        let e = TokenProvider::new(TokenSource::Static(Secret::new("ab\u{1}cd"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PROMETHEUS_BEARER_TOKEN: the bearer token contains characters that are not allowed in an HTTP header"
        );
    }

    #[tokio::test]
    async fn reload_picks_up_a_changed_file_and_keeps_the_old_token_on_failure() {
        let f = tempfile_path("rot");
        std::fs::write(&f, "one\n").unwrap();
        let p = TokenProvider::new(TokenSource::File(f.clone())).unwrap();
        assert_eq!(p.current().await.unwrap().expose(), "one");
        std::fs::write(&f, "two").unwrap();
        assert!(p.reload().await);
        assert!(!p.reload().await);
        std::fs::remove_file(&f).unwrap();
        assert!(!p.reload().await);
        assert_eq!(p.current().await.unwrap().expose(), "two");
    }

    fn tempfile_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "wva-token-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ))
    }
}
