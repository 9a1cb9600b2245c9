//! Bindings of [`crate::extract`]: `extract_fields` and the `ExtractedBatch` it returns, exported
//! as Arrow through the PyCapsule interface (`pl.DataFrame(batch)`, `pl.Series(batch["path"])`).
//!
//! Export uses hand-written C Data Interface structs rather than arrow-rs: a few fixed layouts
//! (string view, large string, list of either, uint32, uint8, struct) need a few release
//! callbacks, while
//! `arrow-array`/`arrow-data` with `ffi` add dozens of crates and a long fat-LTO build on a machine
//! shared by many builds. The buffers are the `Vec`s the extractor filled, shared through an `Arc`
//! (no copy per value; each exported array keeps the batch alive until its consumer releases it).

use std::ffi::{c_char, c_void, CString};
use std::ptr::{null, null_mut, NonNull};
use std::sync::Arc;

use numpy::{PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use super::arrow_ffi::{ArrowArray, ArrowArrayStream, ArrowSchema};
use super::matcher::ByteView;
use super::predicate::PyFlagProgram;
use crate::extract::{self, Column, ColumnValues, Extracted, FieldPaths, Strings, Threads};

// --- C Data Interface ----------------------------------------------------------------------------

const FLAG_NULLABLE: i64 = 2;

/// What a schema owns: its strings and its children.
struct SchemaPrivate {
    _format: CString,
    _name: CString,
    children: Vec<*mut ArrowSchema>,
}

/// A field: Arrow format string, name, nullable, children.
struct Field {
    format: &'static str,
    name: String,
    nullable: bool,
    children: Vec<Field>,
}

fn export_schema(field: Field) -> ArrowSchema {
    let format = CString::new(field.format).expect("formats have no NUL");
    // Names were checked for NUL bytes when the paths came in.
    let name = CString::new(field.name).expect("names have no NUL");
    let mut children: Vec<*mut ArrowSchema> =
        field.children.into_iter().map(|c| Box::into_raw(Box::new(export_schema(c)))).collect();
    let mut private = Box::new(SchemaPrivate { _format: format, _name: name, children: Vec::new() });
    let children_ptr = if children.is_empty() { null_mut() } else { children.as_mut_ptr() };
    let n_children = children.len() as i64;
    let (format_ptr, name_ptr) = (private._format.as_ptr(), private._name.as_ptr());
    // The Vec's heap block does not move when the Vec moves into the private data.
    private.children = children;
    ArrowSchema {
        format: format_ptr,
        name: name_ptr,
        metadata: null(),
        flags: if field.nullable { FLAG_NULLABLE } else { 0 },
        n_children,
        children: children_ptr,
        dictionary: null_mut(),
        release: Some(release_schema),
        private_data: Box::into_raw(private) as *mut c_void,
    }
}

unsafe extern "C" fn release_schema(schema: *mut ArrowSchema) {
    let schema = unsafe { &mut *schema };
    let private = unsafe { Box::from_raw(schema.private_data as *mut SchemaPrivate) };
    for &child in &private.children {
        let mut child = unsafe { Box::from_raw(child) };
        if let Some(release) = child.release {
            unsafe { release(&mut *child) };
        }
    }
    schema.release = None;
}

/// What an array owns: the buffer pointer table, its children, and the batch its buffers live in.
struct ArrayPrivate {
    _batch: Arc<Extracted>,
    buffers: Vec<*const c_void>,
    children: Vec<*mut ArrowArray>,
}

fn export_array(batch: &Arc<Extracted>, length: usize, null_count: usize, buffers: Vec<*const c_void>, children: Vec<ArrowArray>) -> ArrowArray {
    let children: Vec<*mut ArrowArray> = children.into_iter().map(|c| Box::into_raw(Box::new(c))).collect();
    let mut private = Box::new(ArrayPrivate { _batch: Arc::clone(batch), buffers, children });
    let buffers_ptr = private.buffers.as_mut_ptr();
    let children_ptr = if private.children.is_empty() { null_mut() } else { private.children.as_mut_ptr() };
    ArrowArray {
        length: length as i64,
        null_count: null_count as i64,
        offset: 0,
        n_buffers: private.buffers.len() as i64,
        n_children: private.children.len() as i64,
        buffers: buffers_ptr,
        children: children_ptr,
        dictionary: null_mut(),
        release: Some(release_array),
        private_data: Box::into_raw(private) as *mut c_void,
    }
}

unsafe extern "C" fn release_array(array: *mut ArrowArray) {
    let array = unsafe { &mut *array };
    let private = unsafe { Box::from_raw(array.private_data as *mut ArrayPrivate) };
    for &child in &private.children {
        let mut child = unsafe { Box::from_raw(child) };
        if let Some(release) = child.release {
            unsafe { release(&mut *child) };
        }
    }
    array.release = None;
}

fn ptr<T>(v: &[T]) -> *const c_void {
    v.as_ptr() as *const c_void
}

/// One output column of a batch: a path column, or the line index / status columns.
#[derive(Clone, Copy, Debug)]
enum Which {
    Path(usize),
    Line,
    Status,
    /// A rule flag of the `FlagProgram` evaluated over the batch (Arrow boolean).
    Flag(usize),
}

const LINE: &str = "__line";
const STATUS: &str = "__status";

fn field_of(batch: &Extracted, which: Which) -> Field {
    match which {
        Which::Path(i) => {
            let col = &batch.columns[i];
            let string = |strings: &Strings, name: &str| Field {
                format: match strings {
                    Strings::View { .. } => "vu",
                    Strings::Large { .. } => "U",
                },
                name: name.into(),
                nullable: true,
                children: vec![],
            };
            match &col.values {
                ColumnValues::Scalar(strings) => string(strings, &col.name),
                ColumnValues::List { items, .. } => Field {
                    format: "+l",
                    name: col.name.clone(),
                    nullable: true,
                    children: vec![string(items, "item")],
                },
            }
        }
        Which::Line => Field { format: "I", name: LINE.into(), nullable: false, children: vec![] },
        Which::Status => Field { format: "C", name: STATUS.into(), nullable: false, children: vec![] },
        Which::Flag(k) => Field { format: "b", name: batch.flags[k].name.clone(), nullable: false, children: vec![] },
    }
}

fn array_of(batch: &Arc<Extracted>, which: Which) -> ArrowArray {
    match which {
        Which::Path(i) => column_array(batch, &batch.columns[i]),
        Which::Line => export_array(batch, batch.lines.len(), 0, vec![null(), ptr(&batch.lines)], vec![]),
        Which::Status => export_array(batch, batch.status.len(), 0, vec![null(), ptr(&batch.status)], vec![]),
        Which::Flag(k) => export_array(batch, batch.lines.len(), 0, vec![null(), ptr(&batch.flags[k].bits)], vec![]),
    }
}

/// Buffers of a string array after its validity: views, data, data sizes; or offsets, data.
fn string_buffers(strings: &Strings) -> Vec<*const c_void> {
    match strings {
        Strings::View { views, buffers, sizes } => {
            let mut out = vec![ptr(views)];
            out.extend(buffers.iter().map(|b| ptr(b)));
            out.push(ptr(sizes));
            out
        }
        Strings::Large { offsets, data } => vec![ptr(offsets), ptr(data)],
    }
}

fn column_array(batch: &Arc<Extracted>, col: &Column) -> ArrowArray {
    let validity = col.validity.as_deref().map_or(null(), ptr);
    match &col.values {
        ColumnValues::Scalar(strings) => {
            let mut buffers = vec![validity];
            buffers.extend(string_buffers(strings));
            export_array(batch, col.rows, col.null_count, buffers, vec![])
        }
        ColumnValues::List { list_offsets, items } => {
            let mut buffers = vec![null()];
            buffers.extend(string_buffers(items));
            let items = export_array(batch, items.len(), 0, buffers, vec![]);
            export_array(batch, col.rows, col.null_count, vec![validity, ptr(list_offsets)], vec![items])
        }
    }
}

fn all_columns(batch: &Extracted) -> Vec<Which> {
    (0..batch.columns.len())
        .map(Which::Path)
        .chain([Which::Line, Which::Status])
        .chain((0..batch.flags.len()).map(Which::Flag))
        .collect()
}

fn struct_field(batch: &Extracted) -> Field {
    Field {
        format: "+s",
        name: String::new(),
        nullable: false,
        children: all_columns(batch).into_iter().map(|w| field_of(batch, w)).collect(),
    }
}

fn struct_array(batch: &Arc<Extracted>) -> ArrowArray {
    let children = all_columns(batch).into_iter().map(|w| array_of(batch, w)).collect();
    export_array(batch, batch.lines.len(), 0, vec![null()], children)
}

/// The stream of one record batch (the whole result).
struct StreamPrivate {
    batch: Arc<Extracted>,
    sent: bool,
}

unsafe extern "C" fn stream_get_schema(stream: *mut ArrowArrayStream, out: *mut ArrowSchema) -> i32 {
    let private = unsafe { &*((*stream).private_data as *const StreamPrivate) };
    unsafe { out.write(export_schema(struct_field(&private.batch))) };
    0
}

unsafe extern "C" fn stream_get_next(stream: *mut ArrowArrayStream, out: *mut ArrowArray) -> i32 {
    let private = unsafe { &mut *((*stream).private_data as *mut StreamPrivate) };
    if private.sent {
        // End of stream: a released (zeroed) array.
        unsafe {
            out.write(ArrowArray {
                length: 0,
                null_count: 0,
                offset: 0,
                n_buffers: 0,
                n_children: 0,
                buffers: null_mut(),
                children: null_mut(),
                dictionary: null_mut(),
                release: None,
                private_data: null_mut(),
            })
        };
    } else {
        private.sent = true;
        unsafe { out.write(struct_array(&private.batch)) };
    }
    0
}

unsafe extern "C" fn stream_get_last_error(_stream: *mut ArrowArrayStream) -> *const c_char {
    null()
}

unsafe extern "C" fn stream_release(stream: *mut ArrowArrayStream) {
    let stream = unsafe { &mut *stream };
    drop(unsafe { Box::from_raw(stream.private_data as *mut StreamPrivate) });
    stream.release = None;
}

// Capsule destructors: release what the consumer did not take (it sets `release` to null when
// it moves the struct out), then free the box.
unsafe extern "C" fn drop_schema_capsule(capsule: *mut pyo3::ffi::PyObject) {
    let p = unsafe { pyo3::ffi::PyCapsule_GetPointer(capsule, c"arrow_schema".as_ptr()) } as *mut ArrowSchema;
    if !p.is_null() {
        let mut boxed = unsafe { Box::from_raw(p) };
        if let Some(release) = boxed.release {
            unsafe { release(&mut *boxed) };
        }
    }
}

unsafe extern "C" fn drop_array_capsule(capsule: *mut pyo3::ffi::PyObject) {
    let p = unsafe { pyo3::ffi::PyCapsule_GetPointer(capsule, c"arrow_array".as_ptr()) } as *mut ArrowArray;
    if !p.is_null() {
        let mut boxed = unsafe { Box::from_raw(p) };
        if let Some(release) = boxed.release {
            unsafe { release(&mut *boxed) };
        }
    }
}

unsafe extern "C" fn drop_stream_capsule(capsule: *mut pyo3::ffi::PyObject) {
    let p = unsafe { pyo3::ffi::PyCapsule_GetPointer(capsule, c"arrow_array_stream".as_ptr()) } as *mut ArrowArrayStream;
    if !p.is_null() {
        let mut boxed = unsafe { Box::from_raw(p) };
        if let Some(release) = boxed.release {
            unsafe { release(&mut *boxed) };
        }
    }
}

fn schema_capsule(py: Python<'_>, schema: ArrowSchema) -> PyResult<Bound<'_, PyCapsule>> {
    let p = NonNull::new(Box::into_raw(Box::new(schema)) as *mut c_void).expect("box is non-null");
    // SAFETY: the pointer is a boxed ArrowSchema that the destructor frees.
    unsafe { PyCapsule::new_with_pointer_and_destructor(py, p, c"arrow_schema", Some(drop_schema_capsule)) }
}

fn array_capsule(py: Python<'_>, array: ArrowArray) -> PyResult<Bound<'_, PyCapsule>> {
    let p = NonNull::new(Box::into_raw(Box::new(array)) as *mut c_void).expect("box is non-null");
    // SAFETY: the pointer is a boxed ArrowArray that the destructor frees.
    unsafe { PyCapsule::new_with_pointer_and_destructor(py, p, c"arrow_array", Some(drop_array_capsule)) }
}

fn stream_capsule<'py>(py: Python<'py>, batch: &Arc<Extracted>) -> PyResult<Bound<'py, PyCapsule>> {
    let private = Box::new(StreamPrivate { batch: Arc::clone(batch), sent: false });
    let stream = ArrowArrayStream {
        get_schema: Some(stream_get_schema),
        get_next: Some(stream_get_next),
        get_last_error: Some(stream_get_last_error),
        release: Some(stream_release),
        private_data: Box::into_raw(private) as *mut c_void,
    };
    let p = NonNull::new(Box::into_raw(Box::new(stream)) as *mut c_void).expect("box is non-null");
    // SAFETY: the pointer is a boxed ArrowArrayStream that the destructor frees.
    unsafe { PyCapsule::new_with_pointer_and_destructor(py, p, c"arrow_array_stream", Some(drop_stream_capsule)) }
}


// --- Python classes ------------------------------------------------------------------------------

/// The event table of some NDJSON lines, held in Rust and exported as Arrow without copying.
#[pyclass(frozen, module = "secmon._core", name = "ExtractedBatch")]
pub struct PyExtractedBatch {
    inner: Arc<Extracted>,
}

/// One column of an [`PyExtractedBatch`], exportable as one Arrow array.
#[pyclass(frozen, module = "secmon._core", name = "ExtractedColumn")]
pub struct PyExtractedColumn {
    batch: Arc<Extracted>,
    which: Which,
}

impl PyExtractedBatch {
    fn which(&self, name: &str) -> Option<Which> {
        match name {
            LINE => Some(Which::Line),
            STATUS => Some(Which::Status),
            _ => self.inner.columns.iter().position(|c| c.name == name).map(Which::Path).or_else(|| {
                self.inner.flags.iter().position(|f| f.name == name).map(Which::Flag)
            }),
        }
    }
}

#[pymethods]
impl PyExtractedBatch {
    /// Column names in frame order: the paths, `__line`, `__status`, then the flags.
    #[getter]
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.columns.iter().map(|c| c.name.clone()).collect();
        names.extend([LINE.to_string(), STATUS.to_string()]);
        names.extend(self.inner.flags.iter().map(|f| f.name.clone()));
        names
    }

    #[getter]
    fn num_rows(&self) -> usize {
        self.inner.lines.len()
    }

    fn __len__(&self) -> usize {
        self.inner.lines.len()
    }

    /// The line index of every row (a copy, as a numpy uint32 array).
    fn line_numbers<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_slice(py, &self.inner.lines)
    }

    /// The status of every row (0 ok, 1 malformed, 2 not an object, 3 blank, 4 repaired UTF-8,
    /// 5 needs Python's normalization).
    fn statuses<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u8>> {
        PyArray1::from_slice(py, &self.inner.status)
    }

    /// Rows of status ok (0) for which some flag is set, ascending (a numpy uint32 array).
    fn matched_rows<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_vec(py, self.inner.matched_rows())
    }

    /// A new batch of rows `rows` (numpy uint32, any order) and the columns `columns` (paths and
    /// flags; `__line` and `__status` always come along), their text in buffers of their own.
    fn select(&self, py: Python<'_>, rows: PyReadonlyArray1<'_, u32>, columns: Vec<String>) -> PyResult<PyExtractedBatch> {
        let rows = rows.as_slice()?;
        let height = self.inner.lines.len();
        if let Some(bad) = rows.iter().find(|&&r| r as usize >= height) {
            return Err(PyIndexError::new_err(format!("row {bad} is out of range for a batch of {height} rows")));
        }
        let (mut paths, mut flags) = (Vec::new(), Vec::new());
        for name in &columns {
            match self.which(name) {
                Some(Which::Path(i)) => paths.push(i),
                Some(Which::Flag(k)) => flags.push(k),
                Some(Which::Line | Which::Status) => {}
                None => return Err(PyKeyError::new_err(format!("no column {name:?}; the columns are {:?}", self.names()))),
            }
        }
        let inner = Arc::clone(&self.inner);
        let picked = py.detach(|| inner.select(rows, &paths, &flags));
        Ok(PyExtractedBatch { inner: Arc::new(picked) })
    }

    fn column(&self, name: &str) -> PyResult<PyExtractedColumn> {
        let which = self.which(name).ok_or_else(|| {
            PyKeyError::new_err(format!("no column {name:?}; the columns are {:?}", self.names()))
        })?;
        Ok(PyExtractedColumn { batch: Arc::clone(&self.inner), which })
    }

    fn __getitem__(&self, name: &str) -> PyResult<PyExtractedColumn> {
        self.column(name)
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // The PyCapsule protocol lets a producer ignore a requested schema it does not cast to.
        let _ = requested_schema;
        stream_capsule(py, &self.inner)
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, export_schema(struct_field(&self.inner)))
    }

    fn __repr__(&self) -> String {
        format!("ExtractedBatch({} rows, columns {:?})", self.inner.lines.len(), self.names())
    }
}

#[pymethods]
impl PyExtractedColumn {
    #[getter]
    fn name(&self) -> String {
        field_of(&self.batch, self.which).name
    }

    fn __len__(&self) -> usize {
        self.batch.lines.len()
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema; // exported as is (see __arrow_c_stream__)
        let schema = schema_capsule(py, export_schema(field_of(&self.batch, self.which)))?;
        let array = array_capsule(py, array_of(&self.batch, self.which))?;
        PyTuple::new(py, [schema.into_any(), array.into_any()])
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, export_schema(field_of(&self.batch, self.which)))
    }

    fn __repr__(&self) -> String {
        format!("ExtractedColumn({:?}, {} rows)", self.name(), self.batch.lines.len())
    }
}

/// Line indices: a numpy uint32 array, or any sequence of int (checked into u32).
fn line_indices(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    if let Ok(array) = obj.extract::<PyReadonlyArray1<u32>>() {
        return Ok(array.as_array().to_vec());
    }
    if let Ok(array) = obj.cast::<numpy::PyUntypedArray>() {
        let dtype = array.dtype();
        return Err(PyTypeError::new_err(format!(
            "line_idx must be a one-dimensional numpy uint32 array, got dtype {dtype} with {} dimensions \
             (convert with .astype(np.uint32))",
            array.ndim()
        )));
    }
    let values: Vec<i64> = obj
        .extract()
        .map_err(|_| PyTypeError::new_err("line_idx must be a numpy uint32 array, a sequence of int, or None"))?;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                PyValueError::new_err(format!("line index {v} (position {i}) is out of range: must be 0..{}", u32::MAX))
            })
        })
        .collect()
}

/// The event table of the NDJSON lines of `buffer` (see `secmon/_core.pyi`).
#[pyfunction]
#[pyo3(signature = (buffer, paths, line_idx = None, *, sep = b"\n".as_slice(), threads = None, normalize = false, flags = None))]
fn extract_fields(
    py: Python<'_>,
    buffer: &Bound<'_, PyAny>,
    paths: &Bound<'_, PyAny>,
    line_idx: Option<&Bound<'_, PyAny>>,
    sep: &[u8],
    threads: Option<i64>,
    normalize: bool,
    flags: Option<PyRef<'_, PyFlagProgram>>,
) -> PyResult<PyExtractedBatch> {
    let sep = match sep {
        [b] => *b,
        _ => return Err(PyValueError::new_err(format!("sep must be exactly one byte, got {} bytes ({sep:?})", sep.len()))),
    };
    if paths.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err("paths must be a sequence of str, not one str"));
    }
    let paths: Vec<String> =
        paths.extract().map_err(|_| PyTypeError::new_err("paths must be a sequence of str"))?;
    if let Some(bad) = paths.iter().find(|p| p.contains('\0')) {
        return Err(PyValueError::new_err(format!("path {bad:?} contains a NUL character")));
    }
    let threads = match threads {
        None => Threads::Default,
        Some(n) if n >= 1 => Threads::Exactly(n as usize),
        Some(n) => return Err(PyValueError::new_err(format!("threads must be at least 1, got {n}"))),
    };
    let wanted = match line_idx {
        Some(obj) if !obj.is_none() => Some(line_indices(obj)?),
        _ => None,
    };
    let field_paths = if normalize { FieldPaths::normalizing(&paths)? } else { FieldPaths::new(&paths)? };
    let view = ByteView::new(buffer, "buffer")?;
    let bytes = view.bytes();
    // SAFETY: `view` holds the buffer until after `detach` returns.
    let program = flags.map(|f| Arc::clone(&f.inner));
    let out = py.detach(|| {
        let mut out = extract::extract_fields(unsafe { bytes.get() }, sep, &field_paths, wanted.as_deref(), threads)?;
        if let Some(program) = &program {
            out.flags = program.evaluate(&out);
        }
        Ok::<_, crate::error::CoreError>(out)
    })?;
    drop(view);
    Ok(PyExtractedBatch { inner: Arc::new(out) })
}

/// The normalized records of NDJSON lines as JSON text (see `secmon/_core.pyi`).
#[pyfunction]
#[pyo3(signature = (buffer, line_idx, *, sep = b"\n".as_slice()))]
fn normalized_events<'py>(
    py: Python<'py>,
    buffer: &Bound<'py, PyAny>,
    line_idx: &Bound<'py, PyAny>,
    sep: &[u8],
) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    let sep = match sep {
        [b] => *b,
        _ => return Err(PyValueError::new_err(format!("sep must be exactly one byte, got {} bytes ({sep:?})", sep.len()))),
    };
    let wanted = line_indices(line_idx)?;
    let view = ByteView::new(buffer, "buffer")?;
    let bytes = view.bytes();
    // SAFETY: `view` holds the buffer until after `detach` returns.
    let texts = py.detach(|| extract::normalized_json(unsafe { bytes.get() }, sep, &wanted))?;
    drop(view);
    let items: Vec<Option<Bound<'py, pyo3::types::PyBytes>>> =
        texts.iter().map(|t| t.as_deref().map(|t| pyo3::types::PyBytes::new(py, t))).collect();
    pyo3::types::PyList::new(py, items)
}

/// Records read by position from an open file, joined by `sep` (see `secmon/_core.pyi`).
#[pyfunction]
#[pyo3(signature = (fd, offsets, lengths, *, sep = b"\n".as_slice()))]
fn read_records<'py>(
    py: Python<'py>,
    fd: i32,
    offsets: PyReadonlyArray1<'py, i64>,
    lengths: PyReadonlyArray1<'py, i64>,
    sep: &[u8],
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let sep = match sep {
        [b] => *b,
        _ => return Err(PyValueError::new_err(format!("sep must be exactly one byte, got {} bytes ({sep:?})", sep.len()))),
    };
    let (offsets, lengths) = (offsets.as_array(), lengths.as_array());
    if offsets.len() != lengths.len() {
        return Err(PyValueError::new_err(format!(
            "offsets and lengths differ in length: {} and {}",
            offsets.len(),
            lengths.len()
        )));
    }
    let spans = offsets
        .iter()
        .zip(lengths.iter())
        .map(|(&o, &l)| match (u64::try_from(o), usize::try_from(l)) {
            (Ok(o), Ok(l)) => Ok((o, l)),
            _ => Err(PyValueError::new_err(format!("negative offset or length: ({o}, {l})"))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    let data = py.detach(|| crate::records::read_joined(fd, &spans, sep)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            pyo3::exceptions::PyEOFError::new_err("a record lies past the end of the file")
        } else {
            pyo3::exceptions::PyOSError::new_err((e.raw_os_error().unwrap_or(0), e.to_string()))
        }
    })?;
    Ok(pyo3::types::PyBytes::new(py, &data))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_records, m)?)?;
    m.add_class::<PyExtractedBatch>()?;
    m.add_class::<PyExtractedColumn>()?;
    m.add_function(wrap_pyfunction!(extract_fields, m)?)?;
    m.add_function(wrap_pyfunction!(normalized_events, m)?)?;
    Ok(())
}
