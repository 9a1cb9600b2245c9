//! Bindings of [`crate::fim`]: `FimTree` (the rows of one scan or baseline, kept in Rust) and
//! `fim_scan`. The CLI's fast path moves a whole tree across the boundary as one bytes payload
//! and gets back only what it prints (counts, errors, the changes), so no Python object is made
//! per entry unless a caller asks for `columns()`.

use std::os::fd::AsRawFd;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::fim::diff::{self, AttributeSet, Policy, PolicyRule, PrefixReader};
use crate::fim::scan::{self, FimScanSpec, Previous};
use crate::fim::{payload, type_from_name, type_name, FimRow};
use crate::hash::{Algorithm, HmacSha256, StreamHasher};
use crate::walk::EntryType;

/// The frame columns, in `secmon.fim.scan.FRAME_SCHEMA` order.
const COLUMNS: [&str; 17] = [
    "path", "path_bytes", "type", "size", "mode", "uid", "gid", "inode", "dev", "nlink", "mtime_ns", "ctime_ns", "target",
    "digest", "error", "xattrs", "capabilities",
];

/// The rows of one tree (a scan or a decoded baseline payload), sorted as they were given.
#[pyclass(frozen, module = "secmon._core")]
pub struct FimTree {
    rows: Vec<FimRow>,
}

/// Trees at least this large are freed on a thread of their own: dropping /usr/share's 50k rows
/// (some 150k allocations) took 4-5 ms, at the very end of a `fim baseline` command.
const BACKGROUND_DROP_ROWS: usize = 10_000;

impl Drop for FimTree {
    fn drop(&mut self) {
        if self.rows.len() >= BACKGROUND_DROP_ROWS {
            let rows = std::mem::take(&mut self.rows);
            // A thread that cannot start drops the rows here, with the closure that holds them.
            let _ = std::thread::Builder::new().name("secmon-drop".into()).spawn(move || drop(rows));
        }
    }
}

/// The digest of a baseline file: plain SHA-256, or HMAC-SHA256 under a key.
enum Mac {
    Plain(StreamHasher),
    Hmac(HmacSha256),
}

impl Mac {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Mac::Plain(hasher) => hasher.update(bytes),
            Mac::Hmac(hmac) => hmac.update(bytes),
        }
    }

    fn finish_hex(self) -> String {
        match self {
            Mac::Plain(hasher) => hasher.finish_hex(),
            Mac::Hmac(hmac) => hmac.finish_hex(),
        }
    }
}

fn types_of(names: Option<Vec<String>>) -> PyResult<Option<Vec<EntryType>>> {
    names
        .map(|names| {
            names
                .iter()
                .map(|n| type_from_name(n).ok_or_else(|| PyValueError::new_err(format!("unknown entry type {n:?} in a policy rule"))))
                .collect()
        })
        .transpose()
}

fn column<'py, T: pyo3::conversion::FromPyObjectOwned<'py>>(columns: &Bound<'py, PyDict>, name: &str, rows: usize) -> PyResult<Vec<Option<T>>> {
    let Some(values) = columns.get_item(name)? else {
        return Err(PyValueError::new_err(format!("columns has no {name:?}; expected the columns {}", COLUMNS.join(", "))));
    };
    let values: Vec<Option<T>> = values
        .extract()
        .map_err(|e| PyValueError::new_err(format!("column {name:?} has a value of the wrong type: {e}")))?;
    if values.len() != rows {
        return Err(PyValueError::new_err(format!("column {name:?} has {} values; path_bytes has {rows}", values.len())));
    }
    Ok(values)
}

fn snapshot<'py>(py: Python<'py>, row: &FimRow) -> PyResult<Bound<'py, PyTuple>> {
    // SNAPSHOT_COLUMNS of secmon/fim/change.py.
    let items: Vec<Bound<'py, PyAny>> = vec![
        type_name(row.kind).into_pyobject(py)?.into_any(),
        row.size.into_pyobject(py)?.into_any(),
        row.mode.into_pyobject(py)?.into_any(),
        row.uid.into_pyobject(py)?.into_any(),
        row.gid.into_pyobject(py)?.into_any(),
        row.inode.into_pyobject(py)?.into_any(),
        row.nlink.into_pyobject(py)?.into_any(),
        row.mtime_ns.into_pyobject(py)?.into_any(),
        row.ctime_ns.into_pyobject(py)?.into_any(),
        row.target.as_deref().into_pyobject(py)?.into_any(),
        row.digest.as_deref().into_pyobject(py)?.into_any(),
        row.xattrs.as_deref().into_pyobject(py)?.into_any(),
        row.capabilities.as_deref().into_pyobject(py)?.into_any(),
    ];
    PyTuple::new(py, items)
}

#[pymethods]
impl FimTree {
    /// Parse a baseline payload (format 2); a malformed one is a ValueError naming row and byte.
    #[staticmethod]
    fn decode(py: Python<'_>, payload: &[u8]) -> PyResult<FimTree> {
        let rows = py.detach(|| payload::decode(payload))?;
        Ok(FimTree { rows })
    }

    /// Rows from frame columns (a dict of equal-length lists, as `DataFrame.to_dict(as_series=False)`).
    #[staticmethod]
    fn from_columns(columns: &Bound<'_, PyDict>) -> PyResult<FimTree> {
        let path_bytes: Vec<Option<Vec<u8>>> = {
            let Some(values) = columns.get_item("path_bytes")? else {
                return Err(PyValueError::new_err("columns has no \"path_bytes\""));
            };
            let list = values.cast::<PyList>().map_err(|_| PyValueError::new_err("column \"path_bytes\" must be a list"))?;
            list.iter()
                .map(|v| if v.is_none() { Ok(None) } else { v.cast::<PyBytes>().map(|b| Some(b.as_bytes().to_vec())).map_err(|_| PyValueError::new_err("column \"path_bytes\" holds a value that is not bytes")) })
                .collect::<PyResult<_>>()?
        };
        let n = path_bytes.len();
        let path: Vec<Option<String>> = column(columns, "path", n)?;
        let kinds: Vec<Option<String>> = column(columns, "type", n)?;
        let size: Vec<Option<u64>> = column(columns, "size", n)?;
        let mode: Vec<Option<u32>> = column(columns, "mode", n)?;
        let uid: Vec<Option<u32>> = column(columns, "uid", n)?;
        let gid: Vec<Option<u32>> = column(columns, "gid", n)?;
        let inode: Vec<Option<u64>> = column(columns, "inode", n)?;
        let dev: Vec<Option<u64>> = column(columns, "dev", n)?;
        let nlink: Vec<Option<u64>> = column(columns, "nlink", n)?;
        let mtime: Vec<Option<i64>> = column(columns, "mtime_ns", n)?;
        let ctime: Vec<Option<i64>> = column(columns, "ctime_ns", n)?;
        let mut texts: Vec<Vec<Option<String>>> = Vec::new();
        for name in ["target", "digest", "error", "xattrs", "capabilities"] {
            texts.push(column(columns, name, n)?);
        }
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let Some(bytes) = path_bytes[i].clone() else {
                return Err(PyValueError::new_err(format!("row {i}: path_bytes is null; every entry needs its path")));
            };
            let kind = match &kinds[i] {
                None => None,
                Some(name) => Some(type_from_name(name).ok_or_else(|| {
                    PyValueError::new_err(format!("row {i} ({}): type {name:?} is not an entry type", String::from_utf8_lossy(&bytes)))
                })?),
            };
            let path_text = match &path[i] {
                Some(text) if *text != String::from_utf8_lossy(&bytes) => Some(text.clone()),
                Some(_) => None,
                None => return Err(PyValueError::new_err(format!("row {i}: path is null"))),
            };
            rows.push(FimRow {
                path_bytes: bytes,
                path_text,
                kind,
                size: size[i],
                mode: mode[i],
                uid: uid[i],
                gid: gid[i],
                inode: inode[i],
                dev: dev[i],
                nlink: nlink[i],
                mtime_ns: mtime[i],
                ctime_ns: ctime[i],
                target: texts[0][i].clone(),
                digest: texts[1][i].clone(),
                error: texts[2][i].clone(),
                xattrs: texts[3][i].clone(),
                capabilities: texts[4][i].clone(),
            });
        }
        Ok(FimTree { rows })
    }

    /// The baseline payload (format 2) of these rows.
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let rows = &self.rows;
        let lengths = py.detach(|| payload::part_lengths(rows));
        // Written in place: the bytes object is not visible to Python code until it is returned.
        PyBytes::new_with(py, lengths.iter().sum(), |out| {
            py.detach(|| payload::encode_into(rows, &lengths, out));
            Ok(())
        })
    }

    /// The length of [`payload`](Self::payload), sized on all cores without encoding it.
    fn payload_length(&self, py: Python<'_>) -> usize {
        let rows = &self.rows;
        py.detach(|| payload::part_lengths(rows).iter().sum())
    }

    /// Write `head` and then the payload to the open file `fd` (from its offset on) and return
    /// the hex SHA-256 of the two, or their HMAC-SHA256 under `key`: the digest a baseline file
    /// records. The payload is encoded on all cores while this thread hashes each part in order
    /// and a thread of its own writes them, so the four overlap (one after the other they took
    /// 18 ms for /usr/share; hashing and writing on one thread, 10.5 ms). The writer also starts
    /// the writeback of what it wrote (`sync_file_range`), so the caller's fsync waits for less.
    #[pyo3(signature = (fd, head, key = None))]
    fn write_payload(&self, py: Python<'_>, fd: i32, head: &[u8], key: Option<&[u8]>) -> PyResult<String> {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        use std::sync::Arc;
        if fd < 0 {
            return Err(PyValueError::new_err(format!("fd = {fd}; an open file descriptor is expected")));
        }
        let rows = &self.rows;
        py.detach(|| {
            // The caller owns the descriptor: borrowed here, never closed.
            // SAFETY: `fd` is open (a write to a closed one fails with EBADF, it is not UB) and
            // ManuallyDrop keeps this File from closing it.
            let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
            let mut mac = match key {
                Some(key) => Mac::Hmac(HmacSha256::new(key)),
                None => Mac::Plain(Algorithm::Sha256.hasher()),
            };
            let (to_writer, parts) = std::sync::mpsc::channel::<Arc<Vec<u8>>>();
            std::thread::scope(|scope| {
                let file: &std::fs::File = &file;
                let writer = scope.spawn(move || -> std::io::Result<()> {
                    use std::io::Seek;
                    let mut out = file;
                    let mut at = out.stream_position()?;
                    for part in parts {
                        out.write_all(&part)?;
                        // Start writing this part's pages to disk now (no wait); errors are the
                        // caller's fsync's to report.
                        // SAFETY: plain syscall on a borrowed descriptor, over the bytes just written.
                        unsafe {
                            libc::sync_file_range(file.as_raw_fd(), at as i64, part.len() as i64, libc::SYNC_FILE_RANGE_WRITE)
                        };
                        at += part.len() as u64;
                    }
                    Ok(())
                });
                let mut put = |bytes: Arc<Vec<u8>>| -> std::result::Result<(), ()> {
                    mac.update(&bytes);
                    to_writer.send(bytes).map_err(|_| ())
                };
                // A failed send means the writer stopped on an error: its join says which.
                let sent = put(Arc::new(head.to_vec())).and_then(|()| payload::encode_streamed(rows, &mut put));
                drop(put);
                drop(to_writer);
                let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                written?;
                debug_assert!(sent.is_ok(), "the writer ended without an error while parts were still being sent");
                Ok(mac.finish_hex())
            })
        })
    }

    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// (type or None, count) pairs, sorted by type name (None first).
    fn type_counts(&self) -> Vec<(Option<&'static str>, usize)> {
        let mut counts: std::collections::BTreeMap<Option<&'static str>, usize> = Default::default();
        for row in &self.rows {
            *counts.entry(type_name(row.kind)).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// (path, error) of every row that carries an error, in row order.
    fn errors(&self) -> Vec<(String, String)> {
        self.rows.iter().filter_map(|r| r.error.as_ref().map(|e| (r.path().into_owned(), e.clone()))).collect()
    }

    /// The frame columns as a dict of lists (for `polars.DataFrame(..., schema=FRAME_SCHEMA)`).
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let rows = &self.rows;
        out.set_item("path", PyList::new(py, rows.iter().map(|r| r.path().into_owned()))?)?;
        out.set_item("path_bytes", PyList::new(py, rows.iter().map(|r| PyBytes::new(py, &r.path_bytes)))?)?;
        out.set_item("type", PyList::new(py, rows.iter().map(|r| type_name(r.kind)))?)?;
        macro_rules! ints {
            ($($name:literal $field:ident),*) => {$(
                out.set_item($name, PyList::new(py, rows.iter().map(|r| r.$field))?)?;
            )*};
        }
        ints!("size" size, "mode" mode, "uid" uid, "gid" gid, "inode" inode, "dev" dev, "nlink" nlink,
              "mtime_ns" mtime_ns, "ctime_ns" ctime_ns);
        macro_rules! texts {
            ($($name:literal $field:ident),*) => {$(
                out.set_item($name, PyList::new(py, rows.iter().map(|r| r.$field.as_deref()))?)?;
            )*};
        }
        texts!("target" target, "digest" digest, "error" error, "xattrs" xattrs, "capabilities" capabilities);
        Ok(out)
    }

    /// Changes from this tree (before) to `after` under a policy: a list of
    /// (change, path, path_bytes, attributes, before snapshot or None, after snapshot or None).
    #[pyo3(signature = (after, *, rules, default_attributes, default_growing, root_prefix = None, algo = None))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn diff<'py>(
        &self,
        py: Python<'py>,
        after: &FimTree,
        rules: Vec<(String, Option<Vec<String>>, Vec<String>, bool)>,
        default_attributes: Vec<String>,
        default_growing: bool,
        root_prefix: Option<Vec<u8>>,
        algo: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (regex, types, attributes, growing) in rules {
            compiled.push(PolicyRule::new(&regex, types_of(types)?, AttributeSet::from_names(&attributes)?, growing)?);
        }
        let policy = Policy { rules: compiled, default_attributes: AttributeSet::from_names(&default_attributes)?, default_growing };
        let reader = algo
            .map(Algorithm::from_name)
            .transpose()?
            .map(|algo| PrefixReader { root_prefix: root_prefix.unwrap_or_default(), algo });
        let changes = py.detach(|| diff::diff(&self.rows, &after.rows, &policy, reader.as_ref()));
        let out = PyList::empty(py);
        for change in changes {
            let shown = change.after.map(|i| &after.rows[i]).or(change.before.map(|i| &self.rows[i])).expect("a change has a side");
            let before = change.before.map(|i| snapshot(py, &self.rows[i])).transpose()?;
            let after_snap = change.after.map(|i| snapshot(py, &after.rows[i])).transpose()?;
            let attributes = PyTuple::new(py, change.attributes.names())?;
            let item = (change.kind.name(), shown.path().into_owned(), PyBytes::new(py, &shown.path_bytes), attributes, before, after_snap);
            out.append(item)?;
        }
        Ok(out)
    }
}

/// Scan `roots` (host paths) into a FimTree: walk + hash + xattrs on all cores, paths reported
/// inside `root_prefix`, secmon's excludes applied, one row per path sorted by bytes.
#[pyfunction]
#[pyo3(signature = (roots, *, root_prefix = None, algo = None, walker_excludes = Vec::new(), exclude_regex = None, xattrs = true,
                    follow_symlinks = false, one_file_system = false, threads = None, previous = None, reuse_digests = true, reuse_xattrs = true),
       text_signature = "(roots, *, root_prefix=None, algo=None, walker_excludes=(), exclude_regex=None, xattrs=True, follow_symlinks=False, one_file_system=False, threads=None, previous=None, reuse_digests=True, reuse_xattrs=True)")]
#[allow(clippy::too_many_arguments)]
pub fn fim_scan(
    py: Python<'_>,
    roots: Vec<Vec<u8>>,
    root_prefix: Option<Vec<u8>>,
    algo: Option<&str>,
    walker_excludes: Vec<String>,
    exclude_regex: Option<String>,
    xattrs: bool,
    follow_symlinks: bool,
    one_file_system: bool,
    threads: Option<usize>,
    previous: Option<PyRef<'_, FimTree>>,
    reuse_digests: bool,
    reuse_xattrs: bool,
) -> PyResult<FimTree> {
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads = 0; it must be at least 1 (or None for one per core)"));
    }
    let spec = FimScanSpec {
        roots,
        root_prefix,
        algo: algo.map(Algorithm::from_name).transpose()?,
        walker_excludes,
        exclude_regex,
        xattrs,
        follow_symlinks,
        one_file_system,
        threads,
    };
    let previous_rows = previous.as_ref().map(|p| p.rows.as_slice());
    let rows = py.detach(|| {
        let previous = previous_rows.map(|rows| Previous { rows, digests: reuse_digests, xattrs: reuse_xattrs });
        scan::scan(&spec, previous)
    })?;
    Ok(FimTree { rows })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FimTree>()?;
    m.add_function(wrap_pyfunction!(fim_scan, m)?)?;
    Ok(())
}
