//! Binding of [`crate::walk`]: `scan_tree`, returning a Polars DataFrame.
//!
//! The walk runs with the GIL released; its rows come back as column vectors that become one
//! numpy array or one list per column, built once, and Polars assembles the frame from those.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::hash::fs_path_bytes;
use crate::hash::Algorithm;
use crate::walk::{Entry, EntryType, PreviousDigest, ScanBuilder, Stat, TreeScanner};

/// Columns of `previous` the re-scan reads, and the Polars dtype each is cast to.
const PREVIOUS_COLUMNS: [&str; 8] = ["path_bytes", "type", "size", "mtime_ns", "ctime_ns", "inode", "mode", "digest"];

/// Walk `roots` in parallel and return one row per filesystem entry, sorted by path.
#[pyfunction]
#[pyo3(signature = (roots, *, algo = None, excludes = Vec::new(), follow_symlinks = false, threads = None, previous = None, one_file_system = false))]
#[allow(clippy::too_many_arguments)]
pub fn scan_tree<'py>(
    py: Python<'py>,
    roots: &Bound<'py, PyAny>,
    algo: Option<&str>,
    excludes: Vec<String>,
    follow_symlinks: bool,
    threads: Option<i64>,
    previous: Option<&Bound<'py, PyAny>>,
    one_file_system: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let algo = algo.map(Algorithm::from_name).transpose()?;
    let threads = match threads {
        None => None,
        Some(n) if n >= 1 => Some(n as usize),
        Some(n) => return Err(PyValueError::new_err(format!("threads = {n}; it must be at least 1 (or None for one per core)"))),
    };
    let roots = root_list(roots)?;
    let mut builder = TreeScanner::builder();
    builder.algo(algo).follow_symlinks(follow_symlinks).threads(threads).one_file_system(one_file_system);
    for pattern in excludes {
        builder.exclude(pattern);
    }
    if let Some(previous) = previous {
        if !previous.is_none() {
            add_previous(py, &mut builder, previous)?;
        }
    }
    let scanner = builder.build()?;
    let (rows, _stats) = py.detach(|| scanner.scan(&roots))?;
    to_frame(py, rows)
}

/// `roots` is one path (str, bytes, os.PathLike) or a sequence of them.
fn root_list(roots: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    let single = roots.is_instance_of::<PyString>() || roots.is_instance_of::<PyBytes>() || roots.hasattr("__fspath__")?;
    if single {
        return Ok(vec![fs_path_bytes(roots)?]);
    }
    let mut out = Vec::new();
    for (i, item) in roots.try_iter().map_err(|_| {
        PyTypeError::new_err(format!("roots must be a path or a sequence of paths, not {}", type_name(roots)))
    })?.enumerate() {
        let item = item?;
        out.push(fs_path_bytes(&item).map_err(|_| {
            PyTypeError::new_err(format!("roots[{i}] must be str, bytes or os.PathLike, not {}", type_name(&item)))
        })?);
    }
    if out.is_empty() {
        return Err(PyValueError::new_err("roots is empty; give at least one path"));
    }
    Ok(out)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Read the digests of regular files from an earlier result into the builder, in bulk: one
/// filter in Polars, then one numpy array or list per column.
fn add_previous(py: Python<'_>, builder: &mut ScanBuilder, previous: &Bound<'_, PyAny>) -> PyResult<()> {
    let pl = py.import("polars")?;
    if !previous.is_instance(&pl.getattr("DataFrame")?)? {
        return Err(PyTypeError::new_err(format!(
            "previous must be a polars.DataFrame returned by scan_tree, not {}",
            type_name(previous)
        )));
    }
    let names: Vec<String> = previous.getattr("columns")?.extract()?;
    for column in PREVIOUS_COLUMNS {
        if !names.iter().any(|n| n == column) {
            return Err(PyValueError::new_err(format!(
                "previous has no column {column:?}; it must be an earlier scan_tree result (columns: {})",
                names.join(", ")
            )));
        }
    }
    let col = pl.getattr("col")?;
    let is_file = col.call1(("type",))?.call_method1("__eq__", ("file",))?;
    let has_digest = col.call1(("digest",))?.call_method0("is_not_null")?;
    let keep = is_file.call_method1("__and__", (has_digest,))?;
    let files = previous.call_method1("filter", (keep,))?;
    let series = |name: &str, dtype: &str| -> PyResult<Bound<'_, PyAny>> {
        let s = files.call_method1("get_column", (name,))?;
        if dtype.is_empty() { Ok(s) } else { s.call_method1("cast", (pl.getattr(dtype)?,)) }
    };
    let bad_dtype = |name: &str, e: PyErr| PyValueError::new_err(format!("previous column {name:?} has the wrong type: {e}"));
    let numpy_of = |name: &str, dtype: &str| -> PyResult<Bound<'_, PyAny>> {
        series(name, dtype).and_then(|s| s.call_method0("to_numpy")).map_err(|e| bad_dtype(name, e))
    };
    let size = numpy_of("size", "UInt64")?;
    let size: PyReadonlyArray1<u64> = size.extract()?;
    let mtime = numpy_of("mtime_ns", "Int64")?;
    let mtime: PyReadonlyArray1<i64> = mtime.extract()?;
    let ctime = numpy_of("ctime_ns", "Int64")?;
    let ctime: PyReadonlyArray1<i64> = ctime.extract()?;
    let inode = numpy_of("inode", "UInt64")?;
    let inode: PyReadonlyArray1<u64> = inode.extract()?;
    let mode = numpy_of("mode", "UInt32")?;
    let mode: PyReadonlyArray1<u32> = mode.extract()?;
    let paths = series("path_bytes", "Binary").and_then(|s| s.call_method0("to_list")).map_err(|e| bad_dtype("path_bytes", e))?;
    let digests = series("digest", "String").and_then(|s| s.call_method0("to_list")).map_err(|e| bad_dtype("digest", e))?;
    let paths = paths.cast::<PyList>()?;
    let digests: Vec<String> = digests.extract()?;
    let (size, mtime, ctime, inode, mode) = (size.as_array(), mtime.as_array(), ctime.as_array(), inode.as_array(), mode.as_array());
    for (i, (path, digest)) in paths.iter().zip(digests).enumerate() {
        let path = path.cast::<PyBytes>()?.as_bytes().to_vec();
        builder.previous(
            path,
            PreviousDigest { size: size[i], mtime_ns: mtime[i], ctime_ns: ctime[i], inode: inode[i], mode: mode[i], digest },
        );
    }
    Ok(())
}

/// Build the DataFrame: numeric columns from numpy arrays (nulls where stat failed), text and
/// binary columns from lists built once.
fn to_frame<'py>(py: Python<'py>, rows: Vec<Entry>) -> PyResult<Bound<'py, PyAny>> {
    let pl = py.import("polars")?;
    let n = rows.len();
    let mut missing: Vec<u64> = Vec::new();
    let zero = Stat { size: 0, mode: 0, uid: 0, gid: 0, inode: 0, dev: 0, nlink: 0, mtime_ns: 0, ctime_ns: 0 };
    macro_rules! stat_column {
        ($field:ident) => {
            rows.iter().map(|e| e.stat.as_ref().unwrap_or(&zero).$field).collect::<Vec<_>>()
        };
    }
    for (i, e) in rows.iter().enumerate() {
        if e.stat.is_none() {
            missing.push(i as u64);
        }
    }
    let type_names: Vec<Bound<'py, PyString>> = EntryType::ALL.iter().map(|t| PyString::intern(py, t.name())).collect();
    let kind_index = |k: EntryType| EntryType::ALL.iter().position(|&t| t == k).unwrap_or(EntryType::ALL.len() - 1);

    let path = PyList::new(py, rows.iter().map(|e| PyString::new(py, &e.path)))?;
    let path_bytes = PyList::new(py, rows.iter().map(|e| PyBytes::new(py, &e.path_bytes)))?;
    let kind = PyList::new(py, rows.iter().map(|e| type_names[kind_index(e.kind)].clone()))?;
    let target = PyList::new(
        py,
        rows.iter().map(|e| e.target.as_ref().map(|t| String::from_utf8_lossy(t).into_owned())),
    )?;
    let digest = PyList::new(py, rows.iter().map(|e| e.digest.as_deref()))?;
    let error = PyList::new(py, rows.iter().map(|e| e.error.as_deref()))?;

    let missing = PyArray1::from_vec(py, missing);
    let series_cls = pl.getattr("Series")?;
    let make = |name: &str, values: Bound<'py, PyAny>, dtype: &str, nullable_stat: bool| -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("dtype", pl.getattr(dtype)?)?;
        let s = series_cls.call((name, values), Some(&kwargs))?;
        if nullable_stat && missing.len()? > 0 {
            s.call_method1("scatter", (missing.clone(), py.None()))
        } else {
            Ok(s)
        }
    };
    let columns = vec![
        make("path", path.into_any(), "String", false)?,
        make("path_bytes", path_bytes.into_any(), "Binary", false)?,
        make("type", kind.into_any(), "String", false)?,
        make("size", PyArray1::from_vec(py, stat_column!(size)).into_any(), "UInt64", true)?,
        make("mode", PyArray1::from_vec(py, stat_column!(mode)).into_any(), "UInt32", true)?,
        make("uid", PyArray1::from_vec(py, stat_column!(uid)).into_any(), "UInt32", true)?,
        make("gid", PyArray1::from_vec(py, stat_column!(gid)).into_any(), "UInt32", true)?,
        make("inode", PyArray1::from_vec(py, stat_column!(inode)).into_any(), "UInt64", true)?,
        make("dev", PyArray1::from_vec(py, stat_column!(dev)).into_any(), "UInt64", true)?,
        make("nlink", PyArray1::from_vec(py, stat_column!(nlink)).into_any(), "UInt64", true)?,
        make("mtime_ns", PyArray1::from_vec(py, stat_column!(mtime_ns)).into_any(), "Int64", true)?,
        make("ctime_ns", PyArray1::from_vec(py, stat_column!(ctime_ns)).into_any(), "Int64", true)?,
        make("target", target.into_any(), "String", false)?,
        make("digest", digest.into_any(), "String", false)?,
        make("error", error.into_any(), "String", false)?,
    ];
    debug_assert!(columns.len() == 15 && n == rows.len());
    pl.getattr("DataFrame")?.call1((columns,))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scan_tree, m)?)?;
    Ok(())
}
