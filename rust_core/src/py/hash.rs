//! Bindings of [`crate::hash`]: `hash_bytes` and `hash_file`.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::hash::{self, Algorithm};

/// Inputs at least this long are hashed with the GIL released; below it the release costs more
/// than the hashing.
const DETACH_MIN_BYTES: usize = 64 * 1024;

/// A path argument (`str`, `bytes` or `os.PathLike`) as raw bytes, through `os.fsencode`, so
/// non-UTF-8 names pass unchanged.
pub(crate) fn fs_path_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let py = obj.py();
    let encoded = py.import("os")?.getattr("fsencode")?.call1((obj,))?;
    Ok(encoded.cast::<PyBytes>()?.as_bytes().to_vec())
}

/// Hex digest of a bytes-like object (anything with the buffer protocol, C-contiguous), or of
/// the concatenation of a list or tuple of them (a file's header and payload, say, without
/// building the joined copy).
#[pyfunction]
pub fn hash_bytes(py: Python<'_>, data: &Bound<'_, PyAny>, algo: &str) -> PyResult<String> {
    let algo = Algorithm::from_name(algo)?;
    let parts: Vec<Bound<'_, PyAny>> = if data.is_instance_of::<pyo3::types::PyList>() || data.is_instance_of::<pyo3::types::PyTuple>() {
        data.try_iter()?.collect::<PyResult<_>>()?
    } else {
        vec![data.clone()]
    };
    let buffers = parts.iter().map(PyUntypedBuffer::get).collect::<PyResult<Vec<_>>>()?;
    if buffers.iter().any(|b| !b.is_c_contiguous()) {
        return Err(PyBufferError::new_err("hash_bytes: data must be a C-contiguous buffer"));
    }
    let slices: Vec<&[u8]> = buffers
        .iter()
        .map(|buffer| match buffer.len_bytes() {
            0 => &[][..],
            // SAFETY: the buffer is C-contiguous, `len` bytes long, and `buffers` keeps each
            // exporter alive and its memory pinned until it is dropped at the end of this
            // function. As with hashlib, a caller mutating the object from another thread
            // meanwhile gets some digest, never unsafety of ours (we only read bytes).
            len => unsafe { std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, len) },
        })
        .collect();
    let digest_of = |slices: &[&[u8]]| match slices {
        [one] => hash::hash_bytes(one, algo),
        _ => {
            let mut hasher = algo.hasher();
            for slice in slices {
                hasher.update(slice);
            }
            hasher.finish_hex()
        }
    };
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let digest = if total >= DETACH_MIN_BYTES { py.detach(|| digest_of(&slices)) } else { digest_of(&slices) };
    drop(buffers);
    Ok(digest)
}

/// Hex digest of a file, streamed with fixed memory, the GIL released.
#[pyfunction]
pub fn hash_file(py: Python<'_>, path: &Bound<'_, PyAny>, algo: &str) -> PyResult<String> {
    let algo = Algorithm::from_name(algo)?;
    let raw = fs_path_bytes(path)?;
    let digest = py.detach(|| {
        use std::os::unix::ffi::OsStrExt;
        hash::hash_file(std::path::Path::new(std::ffi::OsStr::from_bytes(&raw)), algo)
    })?;
    Ok(digest)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hash_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(hash_file, m)?)?;
    Ok(())
}
