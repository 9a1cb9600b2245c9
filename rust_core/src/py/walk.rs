//! Binding of [`crate::walk`]: `scan_tree`, returning a Polars DataFrame.
//!
//! The walk runs with the GIL released. Its rows are laid out as Arrow columns in Rust and handed
//! to Polars through the Arrow PyCapsule interface; `previous` comes back the same way (an Arrow
//! C stream exported by Polars). No Python object is made per row in either direction.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::hash::fs_path_bytes;
use crate::hash::Algorithm;
use crate::walk::{Entry, ScanBuilder, TreeScanner};

/// Columns `previous` must have (an earlier `scan_tree` result); a missing one is a ValueError.
const PREVIOUS_COLUMNS: [&str; 8] = ["path_bytes", "type", "size", "mtime_ns", "ctime_ns", "inode", "mode", "digest"];

/// Walk `roots` in parallel and return one row per filesystem entry, sorted by path.
#[pyfunction]
#[pyo3(
    signature = (roots, *, algo = None, excludes = Vec::new(), follow_symlinks = false, threads = None, previous = None, one_file_system = false),
    text_signature = "(roots, *, algo=None, excludes=(), follow_symlinks=False, threads=None, previous=None, one_file_system=False)"
)]
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
/// filter and select in Polars, then the columns as one Arrow C stream.
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
    // One Polars filter + select with exact dtypes, then the columns cross over as Arrow
    // memory (PyCapsule stream): no Python object per row.
    let col = pl.getattr("col")?;
    let is_file = col.call1(("type",))?.call_method1("__eq__", ("file",))?;
    let has_digest = col.call1(("digest",))?.call_method0("is_not_null")?;
    let keep = is_file.call_method1("__and__", (has_digest,))?;
    let mut selected = Vec::new();
    for (name, dtype) in [
        ("path_bytes", "Binary"),
        ("size", "UInt64"),
        ("mtime_ns", "Int64"),
        ("ctime_ns", "Int64"),
        ("inode", "UInt64"),
        ("mode", "UInt32"),
        ("digest", "String"),
    ] {
        selected.push(col.call1((name,))?.call_method1("cast", (pl.getattr(dtype)?,))?);
    }
    let files = previous
        .call_method1("filter", (keep,))
        .and_then(|f| f.call_method1("select", (selected,)))
        .and_then(|f| f.call_method1("rechunk", ()))
        .map_err(|e| PyValueError::new_err(format!("previous has a column of the wrong type: {e}")))?;
    let capsule = files.call_method0("__arrow_c_stream__")?;
    // SAFETY: polars hands out a valid "arrow_array_stream" capsule; read_previous takes the
    // stream out of it (so the capsule's destructor does nothing) and releases it when done.
    let rows = unsafe { arrow::take_stream(&capsule)? };
    py.detach(move || arrow::read_previous(rows, builder)).map_err(PyValueError::new_err)
}

/// Build the DataFrame: every column is laid out in Arrow memory in Rust (with the GIL released)
/// and handed to Polars through the Arrow PyCapsule interface as one struct array: no Python
/// object per row.
fn to_frame<'py>(py: Python<'py>, rows: Vec<Entry>) -> PyResult<Bound<'py, PyAny>> {
    let columns = py.detach(move || arrow::columns_of(&rows));
    let table = Bound::new(py, arrow::ArrowTable { columns: Some(columns) })?;
    py.import("polars")?.getattr("DataFrame")?.call1((table,))
}

/// A minimal Arrow C data interface: the exporter of scan columns (primitive, large string and
/// large binary columns with validity bitmaps, wrapped in one struct array) and the importer of
/// the `previous` stream (primitive, string/binary in offset or view layout).
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
            {
                // Only non-UTF-8 names need a converted copy; the rest are their own lossy form.
                let lossy: Vec<Option<String>> = rows.iter().map(|e| (!e.utf8).then(|| e.path().into_owned())).collect();
                var_column(
                    c"path",
                    c"U",
                    n,
                    rows.iter().zip(&lossy).map(|(e, l)| Some(l.as_deref().map_or(e.path_bytes.as_slice(), str::as_bytes))),
                )
            },
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

    pub(crate) use crate::py::arrow_ffi::{ArrowArray, ArrowSchema};

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

    // ---- import: an Arrow C stream of (path_bytes, size, mtime_ns, ctime_ns, inode, mode, digest) ----

    #[repr(C)]
    pub struct ArrowArrayStream {
        get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> i32>,
        get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> i32>,
        get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
        release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
        private_data: *mut c_void,
    }

    /// A stream taken out of its capsule; released on drop.
    pub struct OwnedStream(ArrowArrayStream);

    // SAFETY: the Arrow C stream contract lets a stream move to another thread between calls.
    unsafe impl Send for OwnedStream {}

    impl Drop for OwnedStream {
        fn drop(&mut self) {
            if let Some(release) = self.0.release {
                // SAFETY: released once, by its owner.
                unsafe { release(&mut self.0) };
            }
        }
    }

    const STREAM_CAPSULE: &CStr = c"arrow_array_stream";

    /// Move the stream out of a PyCapsule (leaving a released husk behind, as the PyCapsule
    /// interface asks of consumers).
    pub unsafe fn take_stream(capsule: &Bound<'_, PyAny>) -> PyResult<OwnedStream> {
        let ptr = ffi::PyCapsule_GetPointer(capsule.as_ptr(), STREAM_CAPSULE.as_ptr()) as *mut ArrowArrayStream;
        if ptr.is_null() {
            return Err(PyErr::fetch(capsule.py()));
        }
        let stream = ptr::read(ptr);
        (*ptr).release = None;
        Ok(OwnedStream(stream))
    }

    struct OwnedArray(ArrowArray);

    impl Drop for OwnedArray {
        fn drop(&mut self) {
            if let Some(release) = self.0.release {
                // SAFETY: released once, by its owner.
                unsafe { release(&mut self.0) };
            }
        }
    }

    struct OwnedSchema(ArrowSchema);

    impl Drop for OwnedSchema {
        fn drop(&mut self) {
            if let Some(release) = self.0.release {
                // SAFETY: released once, by its owner.
                unsafe { release(&mut self.0) };
            }
        }
    }

    /// Read access to one child array of a struct batch.
    struct ChildView<'a> {
        array: &'a ArrowArray,
        format: &'a [u8],
        /// The struct's offset plus the child's own.
        offset: usize,
    }

    impl ChildView<'_> {
        unsafe fn buffer<T>(&self, i: usize) -> *const T {
            *self.array.buffers.add(i) as *const T
        }

        unsafe fn is_valid(&self, row: usize) -> bool {
            let bits: *const u8 = self.buffer(0);
            if self.array.null_count == 0 || bits.is_null() {
                return true;
            }
            let i = self.offset + row;
            (*bits.add(i / 8) >> (i % 8)) & 1 == 1
        }

        unsafe fn value<T: Copy>(&self, row: usize) -> T {
            *self.buffer::<T>(1).add(self.offset + row)
        }

        /// The bytes of a string/binary row, for the offset and the view layouts.
        unsafe fn bytes(&self, row: usize) -> &[u8] {
            let i = self.offset + row;
            match self.format {
                b"U" | b"Z" => {
                    let offsets: *const i64 = self.buffer(1);
                    let (start, end) = (*offsets.add(i) as usize, *offsets.add(i + 1) as usize);
                    std::slice::from_raw_parts(self.buffer::<u8>(2).add(start), end - start)
                }
                b"u" | b"z" => {
                    let offsets: *const i32 = self.buffer(1);
                    let (start, end) = (*offsets.add(i) as usize, *offsets.add(i + 1) as usize);
                    std::slice::from_raw_parts(self.buffer::<u8>(2).add(start), end - start)
                }
                _ => {
                    // vu / vz: 16-byte views; up to 12 bytes inline, else (prefix, buffer, offset).
                    let view = self.buffer::<u8>(1).add(16 * i);
                    let len = ptr::read_unaligned(view as *const i32) as usize;
                    if len <= 12 {
                        std::slice::from_raw_parts(view.add(4), len)
                    } else {
                        let buffer_index = ptr::read_unaligned(view.add(8) as *const i32) as usize;
                        let offset = ptr::read_unaligned(view.add(12) as *const i32) as usize;
                        std::slice::from_raw_parts(self.buffer::<u8>(2 + buffer_index).add(offset), len)
                    }
                }
            }
        }
    }

    const PREVIOUS_FORMATS: [(&str, &[&[u8]]); 7] = [
        ("path_bytes", &[b"Z", b"z", b"vz"]),
        ("size", &[b"L"]),
        ("mtime_ns", &[b"l"]),
        ("ctime_ns", &[b"l"]),
        ("inode", &[b"L"]),
        ("mode", &[b"I"]),
        ("digest", &[b"U", b"u", b"vu"]),
    ];

    fn stream_error(stream: &mut ArrowArrayStream, what: &str, code: i32) -> String {
        let detail = stream
            .get_last_error
            .map(|f| unsafe { f(stream) })
            .filter(|p| !p.is_null())
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("previous: reading its Arrow stream failed in {what} (code {code}) {detail}")
    }

    /// Feed every row of the stream into the builder. Rows with a null anywhere are skipped
    /// (they carry no reusable digest).
    pub fn read_previous(mut stream: OwnedStream, builder: &mut crate::walk::ScanBuilder) -> Result<(), String> {
        let s = &mut stream.0;
        let (Some(get_schema), Some(get_next)) = (s.get_schema, s.get_next) else {
            return Err("previous: the Arrow stream has no callbacks".into());
        };
        // SAFETY: calls follow the Arrow C stream protocol; every struct we receive is owned by
        // a wrapper that releases it.
        unsafe {
            let mut schema = OwnedSchema(std::mem::zeroed());
            let code = get_schema(s, &mut schema.0);
            if code != 0 {
                return Err(stream_error(s, "get_schema", code));
            }
            let n = schema.0.n_children as usize;
            let mut formats: Vec<&[u8]> = Vec::with_capacity(n);
            for (i, (name, allowed)) in PREVIOUS_FORMATS.iter().enumerate() {
                if i >= n {
                    return Err(format!("previous: the Arrow stream has {n} columns; expected {}", PREVIOUS_FORMATS.len()));
                }
                let child = &**schema.0.children.add(i);
                let format = CStr::from_ptr(child.format).to_bytes();
                if !allowed.contains(&format) {
                    return Err(format!(
                        "previous: column {name} arrived as Arrow format {:?}, which this reader does not know",
                        String::from_utf8_lossy(format)
                    ));
                }
                formats.push(format);
            }
            loop {
                let mut batch = OwnedArray(std::mem::zeroed());
                let code = get_next(s, &mut batch.0);
                if code != 0 {
                    return Err(stream_error(s, "get_next", code));
                }
                if batch.0.release.is_none() {
                    break; // end of stream
                }
                let rows = batch.0.length as usize;
                let base = batch.0.offset as usize;
                let children: Vec<ChildView<'_>> = (0..formats.len())
                    .map(|i| {
                        let array = &**batch.0.children.add(i);
                        ChildView { array, format: formats[i], offset: base + array.offset as usize }
                    })
                    .collect();
                for row in 0..rows {
                    if !children.iter().all(|c| c.is_valid(row)) {
                        continue;
                    }
                    let Ok(digest) = std::str::from_utf8(children[6].bytes(row)) else { continue };
                    let stat = crate::walk::PreviousStat {
                        size: children[1].value::<u64>(row),
                        mtime_ns: children[2].value::<i64>(row),
                        ctime_ns: children[3].value::<i64>(row),
                        inode: children[4].value::<u64>(row),
                        mode: children[5].value::<u32>(row),
                    };
                    builder.previous(children[0].bytes(row), stat, digest);
                }
            }
        }
        Ok(())
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
