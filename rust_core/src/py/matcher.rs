//! Bindings of [`crate::matcher`]: the `Matcher` class and the line helpers `count_lines`,
//! `select_lines` and `line_spans`. Also the shared input readers: a zero-copy byte view of any buffer-protocol
//! object ([`ByteView`]) and a zero-copy reader of Arrow string columns ([`arrow::StringColumn`]),
//! which `py::ipset` uses too.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use rayon::prelude::*;

use crate::matcher::{self, Engine, Matcher, MatcherBuilder, ScanOptions};

/// Rows per parallel run of the column methods (and of `IpSet.lookup`): enough work per task to
/// hide rayon's scheduling, small enough to spread a column over the cores.
pub(crate) const COLUMN_RUN_ROWS: usize = 1 << 16;

/// A read-only view of a Python buffer (bytes, bytearray, memoryview, mmap) without copying.
/// The `PyBuffer` keeps the exporter pinned (a bytearray cannot be resized while it is held), so
/// the slice stays valid until this view is dropped; the view is dropped with the GIL held.
pub(crate) struct ByteView {
    buffer: PyBuffer<u8>,
}

impl ByteView {
    pub(crate) fn new(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        let buffer = PyBuffer::<u8>::get(obj).map_err(|_| {
            let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            PyTypeError::new_err(format!(
                "{what} must be a bytes-like object (bytes, bytearray, memoryview, mmap), got {type_name}"
            ))
        })?;
        if !buffer.is_c_contiguous() {
            return Err(PyValueError::new_err(format!(
                "{what} must be a contiguous buffer"
            )));
        }
        Ok(ByteView { buffer })
    }

    /// The bytes, usable without the GIL. The caller must keep `self` alive while using them.
    pub(crate) fn bytes(&self) -> SendSlice {
        SendSlice {
            ptr: self.buffer.buf_ptr() as usize,
            len: self.buffer.len_bytes(),
        }
    }
}

/// A pointer and length that may cross into `py.detach`: the memory it names is owned by a
/// buffer the caller holds for the whole call.
#[derive(Clone, Copy)]
pub(crate) struct SendSlice {
    ptr: usize,
    len: usize,
}

impl SendSlice {
    /// # Safety
    /// The buffer this slice was taken from must still be held.
    pub(crate) unsafe fn get(&self) -> &[u8] {
        if self.len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(self.ptr as *const u8, self.len)
        }
    }
}

/// (line or row indices, pattern ids), the pair arrays every matching method returns.
type PairArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>);
/// (pattern ids, starts, ends) of `find_all`.
type OccurrenceArrays<'py> = (
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
);

fn one_byte(sep: &[u8]) -> PyResult<u8> {
    match sep {
        [b] => Ok(*b),
        _ => Err(PyValueError::new_err(format!(
            "sep must be exactly one byte, got {} bytes ({sep:?})",
            sep.len()
        ))),
    }
}

fn options(parallel: bool) -> ScanOptions {
    if parallel {
        ScanOptions::default()
    } else {
        ScanOptions::sequential()
    }
}

/// One automaton over many literal patterns; reports every pattern present in every line.
#[pyclass(frozen, module = "secmon._core", name = "Matcher")]
pub struct PyMatcher {
    inner: Matcher,
    /// Whether pattern i was given as `str` (so `patterns` gives back what it was given).
    given_as_str: Vec<bool>,
}

#[pymethods]
impl PyMatcher {
    #[new]
    #[pyo3(signature = (patterns, *, ascii_case_insensitive = false, engine = "auto"))]
    fn new(
        py: Python<'_>,
        patterns: &Bound<'_, PyAny>,
        ascii_case_insensitive: bool,
        engine: &str,
    ) -> PyResult<Self> {
        let engine = match engine {
            "auto" => Engine::Auto,
            "automaton" => Engine::Automaton,
            "hashed" => Engine::Hashed,
            other => {
                return Err(PyValueError::new_err(format!(
                    "engine {other:?} is not one of 'auto', 'automaton', 'hashed'"
                )))
            }
        };
        if patterns.is_instance_of::<PyString>() || patterns.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "patterns must be a sequence of bytes or str, not a single string; wrap it in a list",
            ));
        }
        let mut owned: Vec<Vec<u8>> = Vec::new();
        let mut given_as_str = Vec::new();
        for (i, item) in patterns.try_iter()?.enumerate() {
            let item = item?;
            if let Ok(b) = item.cast::<PyBytes>() {
                owned.push(b.as_bytes().to_vec());
                given_as_str.push(false);
            } else if let Ok(s) = item.cast::<PyString>() {
                owned.push(s.to_str()?.as_bytes().to_vec());
                given_as_str.push(true);
            } else {
                let type_name = item.get_type().name()?.to_string();
                return Err(PyTypeError::new_err(format!(
                    "pattern {i} is {type_name}; expected bytes or str"
                )));
            }
        }
        let inner = py.detach(|| {
            MatcherBuilder::new()
                .ascii_case_insensitive(ascii_case_insensitive)
                .engine(engine)
                .build(&owned)
        })?;
        Ok(PyMatcher {
            inner,
            given_as_str,
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Matcher({} patterns, ascii_case_insensitive={}, engine={:?})",
            self.inner.len(),
            if self.inner.ascii_case_insensitive() {
                "True"
            } else {
                "False"
            },
            self.inner.engine().name()
        )
    }

    #[getter]
    fn ascii_case_insensitive(&self) -> bool {
        self.inner.ascii_case_insensitive()
    }

    /// The engine of `match_lines` in use: "automaton" or "hashed".
    #[getter]
    fn engine(&self) -> &'static str {
        self.inner.engine().name()
    }

    /// The patterns, each as given (bytes or str), in id order.
    #[getter]
    fn patterns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Bound<'py, PyAny>> = (0..self.inner.len())
            .map(|i| self.pattern_object(py, i))
            .collect::<PyResult<_>>()?;
        PyList::new(py, items)
    }

    /// Pattern number `pattern_id`, as given.
    fn pattern<'py>(&self, py: Python<'py>, pattern_id: usize) -> PyResult<Bound<'py, PyAny>> {
        if pattern_id >= self.inner.len() {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "pattern id {pattern_id} is out of range: the matcher has {} patterns",
                self.inner.len()
            )));
        }
        self.pattern_object(py, pattern_id)
    }

    #[pyo3(signature = (buffer, sep = b"\n".as_slice(), *, parallel = true))]
    #[pyo3(text_signature = "($self, buffer, sep=b'\\n', *, parallel=True)")]
    fn match_lines<'py>(
        &self,
        py: Python<'py>,
        buffer: &Bound<'py, PyAny>,
        sep: &[u8],
        parallel: bool,
    ) -> PyResult<PairArrays<'py>> {
        let sep = one_byte(sep)?;
        let view = ByteView::new(buffer, "buffer")?;
        let bytes = view.bytes();
        // SAFETY: `view` holds the buffer until after `detach` returns.
        let found = py.detach(|| {
            self.inner
                .match_lines(unsafe { bytes.get() }, sep, options(parallel))
        })?;
        drop(view);
        Ok((
            found.lines.into_pyarray(py),
            found.patterns.into_pyarray(py),
        ))
    }

    #[pyo3(signature = (buffer, sep = b"\n".as_slice(), *, parallel = true))]
    #[pyo3(text_signature = "($self, buffer, sep=b'\\n', *, parallel=True)")]
    fn any_lines<'py>(
        &self,
        py: Python<'py>,
        buffer: &Bound<'py, PyAny>,
        sep: &[u8],
        parallel: bool,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let sep = one_byte(sep)?;
        let view = ByteView::new(buffer, "buffer")?;
        let bytes = view.bytes();
        // SAFETY: `view` holds the buffer until after `detach` returns.
        let flags = py.detach(|| {
            self.inner
                .any_lines(unsafe { bytes.get() }, sep, options(parallel))
        })?;
        drop(view);
        Ok(flags.into_pyarray(py))
    }

    fn find_all<'py>(
        &self,
        py: Python<'py>,
        buffer: &Bound<'py, PyAny>,
    ) -> PyResult<OccurrenceArrays<'py>> {
        let view = ByteView::new(buffer, "buffer")?;
        let bytes = view.bytes();
        // SAFETY: `view` holds the buffer until after `detach` returns.
        let occ = py.detach(|| self.inner.find_all(unsafe { bytes.get() }));
        drop(view);
        Ok((
            occ.patterns.into_pyarray(py),
            occ.starts.into_pyarray(py),
            occ.ends.into_pyarray(py),
        ))
    }

    fn match_column<'py>(
        &self,
        py: Python<'py>,
        column: &Bound<'py, PyAny>,
    ) -> PyResult<PairArrays<'py>> {
        let column = arrow::StringColumn::import(column, "column")?;
        if column.len() > u32::MAX as usize {
            return Err(PyValueError::new_err(format!(
                "the column has {} rows; the limit is {}",
                column.len(),
                u32::MAX
            )));
        }
        let found = py.detach(|| {
            // Runs of rows in parallel; concatenated in row order, so the answer is the same.
            let parts: Vec<(usize, matcher::LineMatches)> = column
                .runs(COLUMN_RUN_ROWS)
                .into_par_iter()
                .map(|(first, rows)| (first, self.inner.match_items(rows)))
                .collect();
            let mut all = matcher::LineMatches::default();
            for (first, part) in parts {
                all.lines
                    .extend(part.lines.iter().map(|&r| r + first as u32));
                all.patterns.extend_from_slice(&part.patterns);
            }
            all
        });
        drop(column);
        Ok((
            found.lines.into_pyarray(py),
            found.patterns.into_pyarray(py),
        ))
    }

    fn any_column<'py>(
        &self,
        py: Python<'py>,
        column: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let column = arrow::StringColumn::import(column, "column")?;
        let flags: Vec<bool> = py.detach(|| {
            let parts: Vec<Vec<bool>> = column
                .runs(COLUMN_RUN_ROWS)
                .into_par_iter()
                .map(|(_, rows)| {
                    rows.map(|item| item.is_some_and(|s| self.inner.is_match(s)))
                        .collect()
                })
                .collect();
            parts.concat()
        });
        drop(column);
        Ok(flags.into_pyarray(py))
    }
}

impl PyMatcher {
    fn pattern_object<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.inner.pattern(i).expect("index checked by the caller");
        if self.given_as_str[i] {
            // Built from a Python str, so the bytes are UTF-8.
            Ok(PyString::new(
                py,
                std::str::from_utf8(bytes).expect("pattern given as str"),
            )
            .into_any())
        } else {
            Ok(PyBytes::new(py, bytes).into_any())
        }
    }
}

/// Number of lines in `buffer`: a trailing separator does not start a new line.
#[pyfunction]
#[pyo3(signature = (buffer, sep = b"\n".as_slice()))]
#[pyo3(text_signature = "(buffer, sep=b'\\n')")]
fn count_lines(py: Python<'_>, buffer: &Bound<'_, PyAny>, sep: &[u8]) -> PyResult<usize> {
    let sep = one_byte(sep)?;
    let view = ByteView::new(buffer, "buffer")?;
    let bytes = view.bytes();
    // SAFETY: `view` holds the buffer until after `detach` returns.
    Ok(py.detach(|| matcher::count_lines(unsafe { bytes.get() }, sep)))
}

/// The lines numbered `line_idx` (without separators), in the order asked.
#[pyfunction]
#[pyo3(signature = (buffer, line_idx, sep = b"\n".as_slice()))]
#[pyo3(text_signature = "(buffer, line_idx, sep=b'\\n')")]
fn select_lines<'py>(
    py: Python<'py>,
    buffer: &Bound<'py, PyAny>,
    line_idx: &Bound<'py, PyAny>,
    sep: &[u8],
) -> PyResult<Bound<'py, PyList>> {
    let (view, ranges) = line_ranges(py, buffer, line_idx, sep)?;
    let bytes = view.bytes();
    // SAFETY: `view` holds the buffer; the GIL is held, so the slices are only read here.
    let hay = unsafe { bytes.get() };
    let list = PyList::new(py, ranges.iter().map(|&(a, b)| PyBytes::new(py, &hay[a..b])))?;
    drop(view);
    Ok(list)
}

/// Where the lines numbered `line_idx` are in `buffer`: (start offsets as uint64, lengths without
/// the separator as uint64), in the order asked. The engine uses them to refer to kept lines in
/// place (in the input file) and to find over-long lines without a pass over the whole chunk.
#[pyfunction]
#[pyo3(signature = (buffer, line_idx, sep = b"\n".as_slice()))]
#[pyo3(text_signature = "(buffer, line_idx, sep=b'\\n')")]
fn line_spans<'py>(
    py: Python<'py>,
    buffer: &Bound<'py, PyAny>,
    line_idx: &Bound<'py, PyAny>,
    sep: &[u8],
) -> PyResult<(Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u64>>)> {
    let (view, ranges) = line_ranges(py, buffer, line_idx, sep)?;
    drop(view);
    let starts: Vec<u64> = ranges.iter().map(|&(a, _)| a as u64).collect();
    let lengths: Vec<u64> = ranges.iter().map(|&(a, b)| (b - a) as u64).collect();
    Ok((starts.into_pyarray(py), lengths.into_pyarray(py)))
}

/// The byte ranges of the lines numbered `line_idx` (found without the GIL), with the view of the
/// buffer they index, which the caller drops when done with it.
fn line_ranges(
    py: Python<'_>,
    buffer: &Bound<'_, PyAny>,
    line_idx: &Bound<'_, PyAny>,
    sep: &[u8],
) -> PyResult<(ByteView, Vec<(usize, usize)>)> {
    let sep = one_byte(sep)?;
    let wanted: Vec<u32> = line_indices(line_idx)?;
    let view = ByteView::new(buffer, "buffer")?;
    let bytes = view.bytes();
    // SAFETY: `view` holds the buffer until after `detach` returns.
    let ranges = py.detach(|| matcher::select_lines(unsafe { bytes.get() }, sep, &wanted))?;
    Ok((view, ranges))
}

/// Line numbers from a uint32 array (no copy of a Python object per item) or any int sequence.
fn line_indices(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    if let Ok(array) = obj.extract::<PyReadonlyArray1<u32>>() {
        return Ok(array.as_array().to_vec());
    }
    let values: Vec<i64> = obj.extract().map_err(|_| {
        PyTypeError::new_err("line_idx must be a numpy uint32 array or a sequence of int")
    })?;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                PyValueError::new_err(format!(
                    "line index {v} (position {i}) is out of range: must be 0..{}",
                    u32::MAX
                ))
            })
        })
        .collect()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMatcher>()?;
    m.add_function(wrap_pyfunction!(count_lines, m)?)?;
    m.add_function(wrap_pyfunction!(select_lines, m)?)?;
    m.add_function(wrap_pyfunction!(line_spans, m)?)?;
    Ok(())
}

/// A zero-copy reader of Arrow string columns through the Arrow PyCapsule interface.
///
/// Hand-written C Data Interface structs rather than the arrow-rs crates: the core only ever reads
/// three string layouts (and their binary twins), the structs are a fixed ABI of a few lines, and
/// arrow-rs would add tens of crates and minutes of build time on a machine shared by many builds.
pub(crate) mod arrow {
    use std::ffi::CStr;

    use crate::py::arrow_ffi::{ArrowArray, ArrowArrayStream, ArrowSchema};

    use pyo3::exceptions::{PyTypeError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::{PyCapsule, PyTuple};

    /// An owned schema: released on drop.
    struct OwnedSchema(ArrowSchema);
    impl Drop for OwnedSchema {
        fn drop(&mut self) {
            if let Some(release) = self.0.release {
                unsafe { release(&mut self.0) };
            }
        }
    }

    /// An owned array: released on drop (its buffers stay valid until then).
    struct OwnedArray(ArrowArray);
    impl Drop for OwnedArray {
        fn drop(&mut self) {
            if let Some(release) = self.0.release {
                unsafe { release(&mut self.0) };
            }
        }
    }

    struct OwnedStream(ArrowArrayStream);
    impl Drop for OwnedStream {
        fn drop(&mut self) {
            if let Some(release) = self.0.release {
                unsafe { release(&mut self.0) };
            }
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Layout {
        /// "u" / "z": int32 offsets.
        Offsets32,
        /// "U" / "Z": int64 offsets.
        Offsets64,
        /// "vu" / "vz": 16-byte views, inline up to 12 bytes, else (buffer, offset).
        View,
    }

    /// One chunk, its buffers resolved to plain pointers once.
    struct Chunk {
        layout: Layout,
        length: usize,
        offset: usize,
        validity: *const u8,
        offsets_or_views: *const u8,
        /// "u"/"U": the data buffer. "vu": the variadic data buffers.
        data: Vec<*const u8>,
        _array: OwnedArray,
    }

    /// The rows of an Arrow string (or binary) column, borrowed from its producer without copying.
    pub(crate) struct StringColumn {
        chunks: Vec<Chunk>,
        len: usize,
    }

    // SAFETY: the Arrow C data interface makes the buffers immutable while the consumer holds the
    // array; the pointers are only read, from any thread, until the arrays are released on drop
    // (which happens on the thread holding the GIL, after the parallel work has finished).
    unsafe impl Send for Chunk {}
    unsafe impl Sync for Chunk {}

    fn layout_of(schema: &ArrowSchema, what: &str) -> PyResult<Layout> {
        if !schema.dictionary.is_null() {
            return Err(PyTypeError::new_err(format!(
                "{what} is dictionary-encoded (a categorical column); cast it to a string column first"
            )));
        }
        match format_of(schema).as_str() {
            "u" | "z" => Ok(Layout::Offsets32),
            "U" | "Z" => Ok(Layout::Offsets64),
            "vu" | "vz" => Ok(Layout::View),
            other => Err(PyTypeError::new_err(format!(
                "{what} must be a string column (Arrow format 'u', 'U' or 'vu'), got Arrow format '{other}'{}",
                if other.starts_with('+') { " (a struct/list: pass one column, e.g. df['name'])" } else { "" }
            ))),
        }
    }

    impl StringColumn {
        /// Read a Polars Series, a pyarrow Array/ChunkedArray or anything else exporting
        /// `__arrow_c_stream__` (preferred) or `__arrow_c_array__`.
        pub(crate) fn import(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
            if obj.hasattr("__arrow_c_stream__")? {
                let capsule = obj.call_method0("__arrow_c_stream__")?;
                let capsule = capsule.cast::<PyCapsule>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "{what}: __arrow_c_stream__ did not return a PyCapsule"
                    ))
                })?;
                let ptr = capsule
                    .pointer_checked(Some(c"arrow_array_stream"))?
                    .as_ptr() as *mut ArrowArrayStream;
                // Move the stream out of the capsule; the capsule's destructor then sees a
                // released stream and does nothing.
                let stream = unsafe {
                    let moved = OwnedStream(std::ptr::read(ptr));
                    (*ptr).release = None;
                    moved
                };
                return Self::from_stream(stream, what);
            }
            if obj.hasattr("__arrow_c_array__")? {
                let pair = obj.call_method0("__arrow_c_array__")?;
                let pair = pair.cast::<PyTuple>()?;
                let schema_capsule = pair.get_item(0)?;
                let array_capsule = pair.get_item(1)?;
                let schema_capsule = schema_capsule.cast::<PyCapsule>()?;
                let array_capsule = array_capsule.cast::<PyCapsule>()?;
                let sp = schema_capsule
                    .pointer_checked(Some(c"arrow_schema"))?
                    .as_ptr() as *mut ArrowSchema;
                let ap = array_capsule
                    .pointer_checked(Some(c"arrow_array"))?
                    .as_ptr() as *mut ArrowArray;
                let (schema, array) = unsafe {
                    let schema = OwnedSchema(std::ptr::read(sp));
                    (*sp).release = None;
                    let array = OwnedArray(std::ptr::read(ap));
                    (*ap).release = None;
                    (schema, array)
                };
                let layout = layout_of(&schema.0, what)?;
                let chunk = Chunk::new(layout, array, what)?;
                return Ok(StringColumn {
                    len: chunk.length,
                    chunks: vec![chunk],
                });
            }
            let type_name = obj.get_type().name()?.to_string();
            Err(PyTypeError::new_err(format!(
                "{what} must be a Polars Series or an Arrow string array (an object with __arrow_c_stream__), got {type_name}"
            )))
        }

        fn from_stream(mut stream: OwnedStream, what: &str) -> PyResult<Self> {
            let s = &mut stream.0;
            let mut schema = OwnedSchema(ArrowSchema::empty());
            let get_schema = s
                .get_schema
                .ok_or_else(|| PyValueError::new_err("released Arrow stream"))?;
            let rc = unsafe { get_schema(s, &mut schema.0) };
            if rc != 0 {
                return Err(stream_error(s, rc, what));
            }
            let layout = layout_of(&schema.0, what)?;
            let get_next = s
                .get_next
                .ok_or_else(|| PyValueError::new_err("released Arrow stream"))?;
            let mut chunks = Vec::new();
            let mut len = 0usize;
            loop {
                let mut array = OwnedArray(ArrowArray::empty());
                let rc = unsafe { get_next(s, &mut array.0) };
                if rc != 0 {
                    return Err(stream_error(s, rc, what));
                }
                if array.0.release.is_none() {
                    break; // end of stream
                }
                let chunk = Chunk::new(layout, array, what)?;
                len += chunk.length;
                chunks.push(chunk);
            }
            Ok(StringColumn { chunks, len })
        }

        pub(crate) fn len(&self) -> usize {
            self.len
        }

        /// The rows cut into runs of at most `rows` rows, in order, for parallel work:
        /// (first row of the run in the column, its rows).
        pub(crate) fn runs(
            &self,
            rows: usize,
        ) -> Vec<(usize, impl Iterator<Item = Option<&[u8]>> + Clone + '_)> {
            let mut out = Vec::new();
            let mut base = 0;
            for chunk in &self.chunks {
                let mut at = 0;
                while at < chunk.length {
                    let end = (at + rows).min(chunk.length);
                    out.push((base + at, (at..end).map(move |i| chunk.get(i))));
                    at = end;
                }
                base += chunk.length;
            }
            out
        }
    }

    fn format_of(schema: &ArrowSchema) -> String {
        if schema.format.is_null() {
            return String::new();
        }
        unsafe { CStr::from_ptr(schema.format) }
            .to_string_lossy()
            .into_owned()
    }

    fn stream_error(s: &mut ArrowArrayStream, rc: i32, what: &str) -> PyErr {
        let detail = s
            .get_last_error
            .map(|f| unsafe { f(s) })
            .filter(|p| !p.is_null())
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .unwrap_or_default();
        PyValueError::new_err(format!(
            "{what}: the Arrow stream failed (error {rc}): {detail}"
        ))
    }

    impl Chunk {
        fn new(layout: Layout, array: OwnedArray, what: &str) -> PyResult<Self> {
            let a = &array.0;
            // Offsets: validity, offsets, data. Views: validity, views, data buffers..., sizes.
            if a.n_buffers < 3 || a.length < 0 || a.offset < 0 {
                return Err(PyValueError::new_err(format!(
                    "{what}: malformed Arrow array ({} buffers, length {}, offset {})",
                    a.n_buffers, a.length, a.offset
                )));
            }
            let buffers = unsafe { std::slice::from_raw_parts(a.buffers, a.n_buffers as usize) };
            let validity = buffers[0] as *const u8;
            let data = match layout {
                Layout::Offsets32 | Layout::Offsets64 => vec![buffers[2] as *const u8],
                // Views: buffers[2 .. n-1] are the data buffers; the last one holds their sizes.
                Layout::View => buffers[2..a.n_buffers as usize - 1]
                    .iter()
                    .map(|&p| p as *const u8)
                    .collect(),
            };
            Ok(Chunk {
                layout,
                length: a.length as usize,
                offset: a.offset as usize,
                validity,
                offsets_or_views: buffers[1] as *const u8,
                data,
                _array: array,
            })
        }

        fn get(&self, i: usize) -> Option<&[u8]> {
            let j = self.offset + i;
            if !self.validity.is_null()
                && unsafe { *self.validity.add(j / 8) } & (1 << (j % 8)) == 0
            {
                return None;
            }
            // SAFETY: indices are within `offset + length`, which the producer guarantees the
            // buffers cover; offsets and views point inside the data buffers.
            unsafe {
                match self.layout {
                    Layout::Offsets32 => {
                        let offsets = self.offsets_or_views as *const i32;
                        let (a, b) = (
                            offsets.add(j).read_unaligned(),
                            offsets.add(j + 1).read_unaligned(),
                        );
                        Some(bytes_at(self.data[0], a as usize, (b - a) as usize))
                    }
                    Layout::Offsets64 => {
                        let offsets = self.offsets_or_views as *const i64;
                        let (a, b) = (
                            offsets.add(j).read_unaligned(),
                            offsets.add(j + 1).read_unaligned(),
                        );
                        Some(bytes_at(self.data[0], a as usize, (b - a) as usize))
                    }
                    Layout::View => {
                        let view = self.offsets_or_views.add(16 * j);
                        let len = (view as *const i32).read_unaligned() as usize;
                        if len <= 12 {
                            Some(std::slice::from_raw_parts(view.add(4), len))
                        } else {
                            let buffer = (view.add(8) as *const i32).read_unaligned() as usize;
                            let offset = (view.add(12) as *const i32).read_unaligned() as usize;
                            Some(bytes_at(self.data[buffer], offset, len))
                        }
                    }
                }
            }
        }
    }

    unsafe fn bytes_at<'a>(base: *const u8, offset: usize, len: usize) -> &'a [u8] {
        if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(base.add(offset), len)
        }
    }
}
