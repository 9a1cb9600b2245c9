//! Binding of [`crate::walk`]: `scan_tree`, returning a Polars DataFrame.
//!
//! The walk runs with the GIL released; its rows come back as column vectors that become one
//! numpy array or one list per column, built once, and Polars assembles the frame from those.

use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

use super::hash::fs_path_bytes;
use crate::hash::Algorithm;
use crate::walk::{Entry, PreviousStat, ScanBuilder, TreeScanner};

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
    let digests = digests.cast::<PyList>()?;
    let (size, mtime, ctime, inode, mode) = (size.as_array(), mtime.as_array(), ctime.as_array(), inode.as_array(), mode.as_array());
    for (i, (path, digest)) in paths.iter().zip(digests.iter()).enumerate() {
        let stat = PreviousStat { size: size[i], mtime_ns: mtime[i], ctime_ns: ctime[i], inode: inode[i], mode: mode[i] };
        builder.previous(path.cast::<PyBytes>()?.as_bytes(), stat, digest.cast::<PyString>()?.to_str()?);
    }
    Ok(())
}

/// Build the DataFrame: every column is laid out in Arrow memory in Rust (with the GIL released)
/// and handed to Polars through the Arrow PyCapsule interface as one struct array: no Python
/// object per row.
fn to_frame<'py>(py: Python<'py>, rows: Vec<Entry>) -> PyResult<Bound<'py, PyAny>> {
    let columns = py.detach(move || arrow::columns_of(&rows));
    let table = Bound::new(py, arrow::ArrowTable { columns: Some(columns) })?;
    py.import("polars")?.getattr("DataFrame")?.call1((table,))
}

/// A minimal exporter for the Arrow C data interface: primitive, large string and large binary
/// columns with validity bitmaps, wrapped in one struct array.
mod arrow {
    use std::ffi::{c_char, c_void, CStr, CString};
    use std::ptr;

    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;
    use pyo3::ffi;

    use crate::walk::{Entry, Stat};

    /// One column's memory. Typed vectors keep every buffer aligned for its element type.
    pub enum Buffer {
        U8(Vec<u8>),
        U32(Vec<u32>),
        U64(Vec<u64>),
        I64(Vec<i64>),
    }

    impl Buffer {
        fn ptr(&self) -> *const c_void {
            match self {
                Buffer::U8(v) => v.as_ptr().cast(),
                Buffer::U32(v) => v.as_ptr().cast(),
                Buffer::U64(v) => v.as_ptr().cast(),
                Buffer::I64(v) => v.as_ptr().cast(),
            }
        }
    }

    pub struct Column {
        name: &'static CStr,
        format: &'static CStr,
        len: usize,
        null_count: usize,
        /// Validity bitmap (bit i set = row i valid), None when nothing is null.
        validity: Option<Vec<u8>>,
        /// The data buffers after validity: [values] or [offsets, bytes].
        data: Vec<Buffer>,
    }

    fn bitmap(valid: impl Iterator<Item = bool>, len: usize) -> (Option<Vec<u8>>, usize) {
        let mut bits = vec![0u8; len.div_ceil(8)];
        let mut nulls = 0;
        for (i, ok) in valid.enumerate() {
            if ok {
                bits[i / 8] |= 1 << (i % 8);
            } else {
                nulls += 1;
            }
        }
        if nulls == 0 { (None, 0) } else { (Some(bits), nulls) }
    }

    /// A large_utf8 ("U") or large_binary ("Z") column of optional byte strings.
    fn var_column<'a>(name: &'static CStr, format: &'static CStr, len: usize, values: impl Iterator<Item = Option<&'a [u8]>> + Clone) -> Column {
        let (validity, null_count) = bitmap(values.clone().map(|v| v.is_some()), len);
        let total: usize = values.clone().map(|v| v.map_or(0, <[u8]>::len)).sum();
        let mut offsets = Vec::with_capacity(len + 1);
        let mut bytes = Vec::with_capacity(total);
        offsets.push(0i64);
        for v in values {
            if let Some(v) = v {
                bytes.extend_from_slice(v);
            }
            offsets.push(bytes.len() as i64);
        }
        Column { name, format, len, null_count, validity, data: vec![Buffer::I64(offsets), Buffer::U8(bytes)] }
    }

    fn stat_column(name: &'static CStr, format: &'static CStr, rows: &[Entry], stat_nulls: &(Option<Vec<u8>>, usize), values: Buffer) -> Column {
        Column { name, format, len: rows.len(), null_count: stat_nulls.1, validity: stat_nulls.0.clone(), data: vec![values] }
    }

    /// The 15 columns of a scan, in contract order.
    pub fn columns_of(rows: &[Entry]) -> Vec<Column> {
        let n = rows.len();
        let zero = Stat { size: 0, mode: 0, uid: 0, gid: 0, inode: 0, dev: 0, nlink: 0, mtime_ns: 0, ctime_ns: 0 };
        let stats: Vec<&Stat> = rows.iter().map(|e| e.stat.as_ref().unwrap_or(&zero)).collect();
        let stat_nulls = bitmap(rows.iter().map(|e| e.stat.is_some()), n);
        macro_rules! field {
            ($variant:ident, $field:ident) => {
                Buffer::$variant(stats.iter().map(|s| s.$field).collect())
            };
        }
        vec![
            var_column(c"path", c"U", n, rows.iter().map(|e| Some(e.path.as_bytes()))),
            var_column(c"path_bytes", c"Z", n, rows.iter().map(|e| Some(e.path_bytes.as_slice()))),
            var_column(c"type", c"U", n, rows.iter().map(|e| Some(e.kind.name().as_bytes()))),
            stat_column(c"size", c"L", rows, &stat_nulls, field!(U64, size)),
            stat_column(c"mode", c"I", rows, &stat_nulls, field!(U32, mode)),
            stat_column(c"uid", c"I", rows, &stat_nulls, field!(U32, uid)),
            stat_column(c"gid", c"I", rows, &stat_nulls, field!(U32, gid)),
            stat_column(c"inode", c"L", rows, &stat_nulls, field!(U64, inode)),
            stat_column(c"dev", c"L", rows, &stat_nulls, field!(U64, dev)),
            stat_column(c"nlink", c"L", rows, &stat_nulls, field!(U64, nlink)),
            stat_column(c"mtime_ns", c"l", rows, &stat_nulls, field!(I64, mtime_ns)),
            stat_column(c"ctime_ns", c"l", rows, &stat_nulls, field!(I64, ctime_ns)),
            // Targets are bytes on disk; the String column gets their lossy UTF-8 form.
            {
                let targets: Vec<Option<String>> =
                    rows.iter().map(|e| e.target.as_ref().map(|t| String::from_utf8_lossy(t).into_owned())).collect();
                var_column(c"target", c"U", n, targets.iter().map(|t| t.as_deref().map(str::as_bytes)))
            },
            var_column(c"digest", c"U", n, rows.iter().map(|e| e.digest.as_deref().map(str::as_bytes))),
            var_column(c"error", c"U", n, rows.iter().map(|e| e.error.as_deref().map(str::as_bytes))),
        ]
    }

    // ---- the C structs of the Arrow C data interface ----

    #[repr(C)]
    pub struct ArrowSchema {
        format: *const c_char,
        name: *const c_char,
        metadata: *const c_char,
        flags: i64,
        n_children: i64,
        children: *mut *mut ArrowSchema,
        dictionary: *mut ArrowSchema,
        release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
        private_data: *mut c_void,
    }

    #[repr(C)]
    pub struct ArrowArray {
        length: i64,
        null_count: i64,
        offset: i64,
        n_buffers: i64,
        n_children: i64,
        buffers: *mut *const c_void,
        children: *mut *mut ArrowArray,
        dictionary: *mut ArrowArray,
        release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
        private_data: *mut c_void,
    }

    const ARROW_FLAG_NULLABLE: i64 = 2;

    /// What a schema node owns: its children (boxed, released with it).
    struct SchemaPrivate {
        _name: CString,
        children: Vec<*mut ArrowSchema>,
    }

    /// What an array node owns: its column memory, the pointer table and its children.
    struct ArrayPrivate {
        _column: Option<Column>,
        _buffers: Vec<*const c_void>,
        children: Vec<*mut ArrowArray>,
    }

    unsafe extern "C" fn release_schema(schema: *mut ArrowSchema) {
        if schema.is_null() || (*schema).release.is_none() {
            return;
        }
        let private = Box::from_raw((*schema).private_data as *mut SchemaPrivate);
        for child in private.children {
            if let Some(release) = (*child).release {
                release(child);
            }
            drop(Box::from_raw(child));
        }
        (*schema).release = None;
    }

    unsafe extern "C" fn release_array(array: *mut ArrowArray) {
        if array.is_null() || (*array).release.is_none() {
            return;
        }
        let private = Box::from_raw((*array).private_data as *mut ArrayPrivate);
        for child in private.children {
            if let Some(release) = (*child).release {
                release(child);
            }
            drop(Box::from_raw(child));
        }
        (*array).release = None;
    }

    fn schema_node(format: &'static CStr, name: &CStr, flags: i64, children: Vec<*mut ArrowSchema>) -> ArrowSchema {
        let name = name.to_owned();
        let mut private = Box::new(SchemaPrivate { _name: name, children });
        let children_ptr = private.children.as_mut_ptr();
        let n_children = private.children.len() as i64;
        let name_ptr = private._name.as_ptr();
        ArrowSchema {
            format: format.as_ptr(),
            name: name_ptr,
            metadata: ptr::null(),
            flags,
            n_children,
            children: if n_children == 0 { ptr::null_mut() } else { children_ptr },
            dictionary: ptr::null_mut(),
            release: Some(release_schema),
            private_data: Box::into_raw(private).cast(),
        }
    }

    fn array_node(len: usize, null_count: usize, mut buffers: Vec<*const c_void>, column: Option<Column>, children: Vec<*mut ArrowArray>) -> ArrowArray {
        let n_buffers = buffers.len() as i64;
        let buffers_ptr = buffers.as_mut_ptr();
        let mut private = Box::new(ArrayPrivate { _column: column, _buffers: buffers, children });
        let children_ptr = private.children.as_mut_ptr();
        let n_children = private.children.len() as i64;
        ArrowArray {
            length: len as i64,
            null_count: null_count as i64,
            offset: 0,
            n_buffers,
            n_children,
            buffers: buffers_ptr,
            children: if n_children == 0 { ptr::null_mut() } else { children_ptr },
            dictionary: ptr::null_mut(),
            release: Some(release_array),
            private_data: Box::into_raw(private).cast(),
        }
    }

    /// The struct schema and array of `columns`; each array node owns its column's memory.
    fn export(columns: Vec<Column>) -> (ArrowSchema, ArrowArray) {
        let len = columns.first().map_or(0, |c| c.len);
        let mut child_schemas = Vec::with_capacity(columns.len());
        let mut child_arrays = Vec::with_capacity(columns.len());
        for column in columns {
            debug_assert_eq!(column.len, len);
            let mut buffers = vec![column.validity.as_ref().map_or(ptr::null(), |v| v.as_ptr().cast())];
            buffers.extend(column.data.iter().map(Buffer::ptr));
            let flags = if column.null_count > 0 { ARROW_FLAG_NULLABLE } else { 0 };
            child_schemas.push(Box::into_raw(Box::new(schema_node(column.format, column.name, flags, Vec::new()))));
            let (n, nulls) = (column.len, column.null_count);
            child_arrays.push(Box::into_raw(Box::new(array_node(n, nulls, buffers, Some(column), Vec::new()))));
        }
        let schema = schema_node(c"+s", c"", 0, child_schemas);
        let array = array_node(len, 0, vec![ptr::null()], None, child_arrays);
        (schema, array)
    }

    const SCHEMA_CAPSULE: &CStr = c"arrow_schema";
    const ARRAY_CAPSULE: &CStr = c"arrow_array";

    unsafe extern "C" fn drop_schema_capsule(capsule: *mut ffi::PyObject) {
        let schema = ffi::PyCapsule_GetPointer(capsule, SCHEMA_CAPSULE.as_ptr()) as *mut ArrowSchema;
        if !schema.is_null() {
            // A consumer that imported the schema moved it out and nulled `release`.
            release_schema(schema);
            drop(Box::from_raw(schema));
        }
    }

    unsafe extern "C" fn drop_array_capsule(capsule: *mut ffi::PyObject) {
        let array = ffi::PyCapsule_GetPointer(capsule, ARRAY_CAPSULE.as_ptr()) as *mut ArrowArray;
        if !array.is_null() {
            release_array(array);
            drop(Box::from_raw(array));
        }
    }

    /// The scan's columns, exported once through `__arrow_c_array__`.
    #[pyclass(module = "secmon._core", name = "_ScanColumns")]
    pub struct ArrowTable {
        pub columns: Option<Vec<Column>>,
    }

    // SAFETY: Column holds only owned vectors and static C strings.
    unsafe impl Send for Column {}
    unsafe impl Sync for Column {}

    #[pymethods]
    impl ArrowTable {
        #[pyo3(signature = (requested_schema = None))]
        fn __arrow_c_array__<'py>(
            &mut self,
            py: Python<'py>,
            requested_schema: Option<Bound<'py, PyAny>>,
        ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
            // The schema is fixed; a consumer asking for another one casts on its side.
            let _ = requested_schema;
            let columns = self.columns.take().ok_or_else(|| PyValueError::new_err("scan columns were already exported"))?;
            let (schema, array) = export(columns);
            let schema = Box::into_raw(Box::new(schema));
            let array = Box::into_raw(Box::new(array));
            // SAFETY: the capsules own the boxes; their destructors release and free them.
            unsafe {
                let schema_capsule = ffi::PyCapsule_New(schema.cast(), SCHEMA_CAPSULE.as_ptr(), Some(drop_schema_capsule));
                if schema_capsule.is_null() {
                    drop_schema_box(schema);
                    drop_array_box(array);
                    return Err(PyErr::fetch(py));
                }
                let schema_capsule = Bound::from_owned_ptr(py, schema_capsule);
                let array_capsule = ffi::PyCapsule_New(array.cast(), ARRAY_CAPSULE.as_ptr(), Some(drop_array_capsule));
                if array_capsule.is_null() {
                    drop_array_box(array);
                    return Err(PyErr::fetch(py));
                }
                Ok((schema_capsule, Bound::from_owned_ptr(py, array_capsule)))
            }
        }
    }

    unsafe fn drop_schema_box(schema: *mut ArrowSchema) {
        release_schema(schema);
        drop(Box::from_raw(schema));
    }

    unsafe fn drop_array_box(array: *mut ArrowArray) {
        release_array(array);
        drop(Box::from_raw(array));
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scan_tree, m)?)?;
    Ok(())
}
