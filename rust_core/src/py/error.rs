//! The one mapping from [`CoreError`] to Python exceptions.

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError};
use pyo3::PyErr;

use crate::error::CoreError;

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        match err {
            CoreError::InvalidArgument(msg) => PyValueError::new_err(msg),
            CoreError::Io { path, source } => {
                let errno = source.raw_os_error().unwrap_or(0);
                let args = (errno, source.to_string(), path);
                match source.kind() {
                    std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                    std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                    _ => PyOSError::new_err(args),
                }
            }
        }
    }
}
