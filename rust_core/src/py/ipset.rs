//! Bindings of [`crate::cidr`]: the `IpSet` class.
//!
//! The class is frozen and shared between threads: its state sits behind a `RwLock`, and the
//! flattened lookup table is built lazily after the last `add` and shared (`Arc`) by concurrent
//! lookups. Locks are only taken with the GIL released, so a thread waiting for one never blocks
//! the interpreter.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyType};

use rayon::prelude::*;

use super::matcher::arrow::StringColumn;
use super::matcher::COLUMN_RUN_ROWS;
use crate::cidr::{IpSetBuilder, IpTable, MAX_LIST_ID};

#[derive(Default)]
struct State {
    builder: IpSetBuilder,
    table: Option<Arc<IpTable>>,
    skipped: usize,
}

/// IPv4/IPv6 prefixes tagged with list ids; longest-prefix lookup of addresses.
#[pyclass(frozen, module = "secmon._core", name = "IpSet")]
pub struct PyIpSet {
    state: RwLock<State>,
}

fn list_id_of(list_id: i64) -> PyResult<u32> {
    u32::try_from(list_id)
        .ok()
        .filter(|&id| id <= MAX_LIST_ID)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "list_id {list_id} is out of range 0..={MAX_LIST_ID}"
            ))
        })
}

/// The entries of one list as owned strings (they are parsed with the GIL released).
fn entries_of(cidrs: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if cidrs.is_instance_of::<PyString>() || cidrs.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence of str, not a single string"
        )));
    }
    let mut out = Vec::new();
    for (i, item) in cidrs.try_iter()?.enumerate() {
        let item = item?;
        let text = item.cast::<PyString>().map_err(|_| {
            let type_name = item
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            PyTypeError::new_err(format!("{what}: entry {i} is {type_name}; expected str"))
        })?;
        out.push(text.to_str()?.to_owned());
    }
    Ok(out)
}

/// The addresses to look up: an Arrow string column (zero-copy) or a sequence of str / None.
enum Addresses {
    Column(StringColumn),
    Owned(Vec<Option<String>>),
}

impl Addresses {
    fn read(ips: &Bound<'_, PyAny>) -> PyResult<Self> {
        if ips.hasattr("__arrow_c_stream__")? || ips.hasattr("__arrow_c_array__")? {
            return Ok(Addresses::Column(StringColumn::import(ips, "ips")?));
        }
        if ips.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "ips must be a sequence of str or a string column, not a single str",
            ));
        }
        let mut out = Vec::new();
        for (i, item) in ips.try_iter()?.enumerate() {
            let item = item?;
            if item.is_none() {
                out.push(None);
            } else if let Ok(s) = item.cast::<PyString>() {
                out.push(Some(s.to_str()?.to_owned()));
            } else {
                let type_name = item.get_type().name()?.to_string();
                return Err(PyTypeError::new_err(format!(
                    "ips: item {i} is {type_name}; expected str or None"
                )));
            }
        }
        Ok(Addresses::Owned(out))
    }

    /// Runs of rows are looked up in parallel and concatenated in order.
    fn lookup(&self, table: &IpTable) -> (Vec<i32>, usize) {
        let parts: Vec<(Vec<i32>, usize)> = match self {
            Addresses::Column(c) => c
                .runs(COLUMN_RUN_ROWS)
                .into_par_iter()
                .map(|(_, rows)| table.lookup_all(rows))
                .collect(),
            Addresses::Owned(v) => v
                .par_chunks(COLUMN_RUN_ROWS)
                .map(|run| table.lookup_all(run.iter().map(|s| s.as_deref().map(str::as_bytes))))
                .collect(),
        };
        let invalid = parts.iter().map(|(_, n)| n).sum();
        (
            parts.into_iter().flat_map(|(ids, _)| ids).collect(),
            invalid,
        )
    }
}

impl PyIpSet {
    pub(crate) fn table(&self) -> Arc<IpTable> {
        if let Some(t) = &self.state.read().expect("IpSet lock poisoned").table {
            return Arc::clone(t);
        }
        let mut state = self.state.write().expect("IpSet lock poisoned");
        if state.table.is_none() {
            state.table = Some(Arc::new(state.builder.build()));
        }
        Arc::clone(state.table.as_ref().expect("just built"))
    }

    fn add_entries(
        &self,
        py: Python<'_>,
        entries: Vec<String>,
        list_id: u32,
        strict: bool,
    ) -> PyResult<usize> {
        let skipped = py.detach(|| {
            let mut state = self.state.write().expect("IpSet lock poisoned");
            let skipped = state.builder.add(&entries, list_id, strict)?;
            state.table = None;
            state.skipped += skipped;
            Ok::<usize, crate::error::CoreError>(skipped)
        })?;
        Ok(skipped)
    }

    fn do_lookup(&self, py: Python<'_>, ips: &Bound<'_, PyAny>) -> PyResult<(Vec<i32>, usize)> {
        let addresses = Addresses::read(ips)?;
        let found = py.detach(|| {
            let table = self.table();
            addresses.lookup(&table)
        });
        drop(addresses);
        Ok(found)
    }
}

#[pymethods]
impl PyIpSet {
    #[new]
    fn new() -> Self {
        PyIpSet {
            state: RwLock::new(State::default()),
        }
    }

    /// Build from several lists: list i gets id i.
    #[classmethod]
    #[pyo3(signature = (lists, *, strict = true))]
    fn from_lists(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        lists: &Bound<'_, PyAny>,
        strict: bool,
    ) -> PyResult<Self> {
        let set = PyIpSet::new();
        for (i, list) in lists.try_iter()?.enumerate() {
            let entries = entries_of(&list?, &format!("list {i}"))?;
            set.add_entries(py, entries, list_id_of(i as i64)?, strict)?;
        }
        Ok(set)
    }

    /// Add one list's entries; returns how many bad entries were skipped (always 0 when strict).
    #[pyo3(signature = (cidrs, list_id, *, strict = true))]
    fn add(
        &self,
        py: Python<'_>,
        cidrs: &Bound<'_, PyAny>,
        list_id: i64,
        strict: bool,
    ) -> PyResult<usize> {
        let list_id = list_id_of(list_id)?;
        let entries = entries_of(cidrs, "cidrs")?;
        self.add_entries(py, entries, list_id, strict)
    }

    /// Add a netset/ipset file; returns how many bad entries were skipped (always 0 when strict).
    #[pyo3(signature = (path, list_id, *, strict = true))]
    fn load_netset(
        &self,
        py: Python<'_>,
        path: PathBuf,
        list_id: i64,
        strict: bool,
    ) -> PyResult<usize> {
        let list_id = list_id_of(list_id)?;
        let skipped = py.detach(|| {
            // Read and parse outside the lock; only the merge takes it.
            let mut loaded = IpSetBuilder::new();
            let skipped = loaded.add_netset(&path, list_id, strict)?;
            let mut state = self.state.write().expect("IpSet lock poisoned");
            state.builder.extend(loaded);
            state.table = None;
            state.skipped += skipped;
            Ok::<usize, crate::error::CoreError>(skipped)
        })?;
        Ok(skipped)
    }

    /// Number of prefixes held.
    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| {
            self.state
                .read()
                .expect("IpSet lock poisoned")
                .builder
                .len()
        })
    }

    /// Bad entries skipped so far by non-strict adds.
    #[getter]
    fn skipped(&self, py: Python<'_>) -> usize {
        py.detach(|| self.state.read().expect("IpSet lock poisoned").skipped)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (n, skipped) = py.detach(|| {
            let s = self.state.read().expect("IpSet lock poisoned");
            (s.builder.len(), s.skipped)
        });
        format!("IpSet({n} prefixes, {skipped} skipped)")
    }

    /// List id of the longest matching prefix per address; -1 for no match, null or invalid.
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        ips: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let (ids, _) = self.do_lookup(py, ips)?;
        Ok(ids.into_pyarray(py))
    }

    /// `lookup` plus the number of invalid (unparsable, non-null) addresses.
    fn lookup_with_stats<'py>(
        &self,
        py: Python<'py>,
        ips: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyArray1<i32>>, usize)> {
        let (ids, invalid) = self.do_lookup(py, ips)?;
        Ok((ids.into_pyarray(py), invalid))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIpSet>()?;
    Ok(())
}
