//! The tokens that let a request in: from the conf, and from a file that is re-read on
//! `SIGHUP` (and by the new process of a graceful reload, which reads it at start).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use subtle::ConstantTimeEq;

/// Why tokens could not be loaded: at start-up this stops the proxy; on `SIGHUP` the
/// tokens in force stay.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `origin` says where the token came from: `auth_tokens` or the token file.
    #[error("a token in {origin} has characters other than letters, digits and -._~+/=")]
    BadCharacters { origin: String },
    #[error("cannot read auth_token_file {}: {error}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("auth_token_file {} holds no token", .path.display())]
    Empty { path: PathBuf },
}

/// Characters a token may hold: those that pass unchanged in a header, a cookie and a
/// query string.
fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

fn check_token(token: &str, origin: &str) -> Result<(), TokenError> {
    if token.is_empty() || !token.bytes().all(token_char) {
        return Err(TokenError::BadCharacters {
            origin: origin.to_string(),
        });
    }
    Ok(())
}

/// The accepted tokens.
pub struct Tokens {
    from_conf: Vec<String>,
    file: Option<PathBuf>,
    current: RwLock<Arc<Vec<Vec<u8>>>>,
}

/// The tokens of a token file: one per line; blank lines and `#` comments are skipped.
fn read_file(path: &Path) -> Result<Vec<String>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|error| TokenError::Unreadable {
        path: path.to_path_buf(),
        error,
    })?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let origin = format!("auth_token_file {}", path.display());
    tokens.iter().try_for_each(|t| check_token(t, &origin))?;
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(tokens)
}

impl Tokens {
    /// Tokens from the conf and from `file`; none of either turns tokens off.
    pub fn load(from_conf: Vec<String>, file: Option<PathBuf>) -> Result<Self, TokenError> {
        from_conf
            .iter()
            .try_for_each(|t| check_token(t, "auth_tokens"))?;
        let tokens = Tokens {
            from_conf,
            file,
            current: RwLock::new(Arc::new(Vec::new())),
        };
        tokens.reload()?;
        Ok(tokens)
    }

    /// Re-reads the token file; on failure the tokens in force stay. Returns how many
    /// tokens are in force.
    pub fn reload(&self) -> Result<usize, TokenError> {
        let mut all: Vec<Vec<u8>> = self
            .from_conf
            .iter()
            .map(|t| t.as_bytes().to_vec())
            .collect();
        if let Some(path) = &self.file {
            all.extend(read_file(path)?.into_iter().map(String::into_bytes));
        }
        let count = all.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(all);
        Ok(count)
    }

    /// Whether tokens are required at all.
    pub fn required(&self) -> bool {
        !self.from_conf.is_empty() || self.file.is_some()
    }

    /// Whether `value` is a `cmux_token` cookie issued for `host` under a token in force
    /// ([`super::cookie`]).
    pub fn accepts_cookie(&self, value: &[u8], host: &str) -> bool {
        let tokens = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        super::cookie::valid(value, host, tokens.iter().map(Vec::as_slice))
    }

    /// Whether `candidate` is one of the tokens. Every token is compared, each in
    /// constant time, so the time taken says nothing about how much of one matched.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        let tokens = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut found = subtle::Choice::from(0);
        for token in tokens.iter() {
            found |= token.as_slice().ct_eq(candidate);
        }
        found.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_and_file_tokens_and_reload() {
        let dir = std::env::temp_dir().join(format!("cmux-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(&file, "# team\nfile-token-1\n\n").unwrap();
        let t = Tokens::load(vec!["conf-token".into()], Some(file.clone())).unwrap();
        assert!(t.required());
        assert!(t.accepts(b"conf-token") && t.accepts(b"file-token-1"));
        assert!(!t.accepts(b"conf-toke") && !t.accepts(b""));
        std::fs::write(&file, "file-token-2\n").unwrap();
        assert_eq!(t.reload().unwrap(), 2);
        assert!(t.accepts(b"file-token-2") && !t.accepts(b"file-token-1"));
        std::fs::write(&file, "\n").unwrap();
        assert!(t
            .reload()
            .unwrap_err()
            .to_string()
            .contains("holds no token"));
        assert!(
            t.accepts(b"file-token-2"),
            "a failed reload keeps the tokens"
        );
        assert!(Tokens::load(vec!["has space".into()], None).is_err());
        assert!(!Tokens::load(vec![], None).unwrap().required());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
