//! The core's error type. Every fallible public function returns [`CoreError`]; the bindings map
//! it to Python exceptions in exactly one place (`py::error`).

use std::fmt;

#[derive(Debug)]
pub enum CoreError {
    /// Bad argument from the caller (empty pattern, unknown algorithm, ...): `ValueError`.
    InvalidArgument(String),
    /// An I/O failure on a named path: `FileNotFoundError`, `PermissionError` or `OSError`.
    Io { path: String, source: std::io::Error },
}

impl CoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::InvalidArgument(msg.into())
    }

    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        CoreError::Io { path: path.into(), source }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidArgument(msg) => f.write_str(msg),
            CoreError::Io { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

impl std::error::Error for CoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CoreError::Io { source, .. } => Some(source),
            CoreError::InvalidArgument(_) => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;
