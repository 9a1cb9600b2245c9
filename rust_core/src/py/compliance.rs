//! Bindings of [`crate::compliance`]: `k8s_workload_facts`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::compliance::{self, Column, DType, ScopeColumns, ScopeSpec};

/// `(fields, scopes)` with fields `[(path, dtype)]` and scopes `[(path, spec)]`, as
/// `secmon.compliance.fast.spec_of` builds it from a `Schema`.
fn scope_spec(obj: &Bound<'_, PyAny>) -> PyResult<ScopeSpec> {
    let (fields, scopes): (Vec<(Vec<String>, String)>, Vec<(Vec<String>, Bound<'_, PyAny>)>) = obj.extract()?;
    let mut spec = ScopeSpec::default();
    for (path, dtype) in fields {
        let parsed = DType::from_name(&dtype)
            .ok_or_else(|| PyValueError::new_err(format!("fact {path:?}: unknown type {dtype:?}; valid: bool, num, int, str, strlist")))?;
        spec.fields.push((path, parsed));
    }
    for (path, child) in scopes {
        spec.scopes.push((path, scope_spec(&child)?));
    }
    Ok(spec)
}

fn column_object<'py>(py: Python<'py>, column: Column) -> PyResult<Bound<'py, PyAny>> {
    Ok(match column {
        Column::Bool(v) => v.into_pyobject(py)?.into_any(),
        Column::Num(v) => v.into_pyobject(py)?.into_any(),
        Column::Int(v) => v.into_pyobject(py)?.into_any(),
        Column::Str(v) => v.into_pyobject(py)?.into_any(),
        Column::StrList { values, lengths } => PyTuple::new(py, [values.into_pyobject(py)?.into_any(), lengths.into_pyobject(py)?.into_any()])?.into_any(),
    })
}

fn scope_object<'py>(py: Python<'py>, scope: ScopeColumns) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let columns = PyList::empty(py);
    for column in scope.columns {
        columns.append(column_object(py, column)?)?;
    }
    out.set_item("columns", columns)?;
    out.set_item("parents", scope.parents)?;
    out.set_item("paths", scope.paths)?;
    let children = PyList::empty(py);
    for child in scope.children {
        children.append(scope_object(py, child)?)?;
    }
    out.set_item("children", children)?;
    Ok(out)
}

/// Read, parse and normalize Kubernetes workload manifests on all cores and return the typed
/// facts `spec` asks for; files the fast path does not fully understand come back in
/// `fallback` for the Python path.
#[pyfunction]
pub fn k8s_workload_facts<'py>(py: Python<'py>, paths: Vec<Vec<u8>>, spec: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let spec = scope_spec(spec)?;
    let batch = py.detach(|| compliance::workload_facts(&paths, &spec));
    let out = PyDict::new(py);
    out.set_item("facts", scope_object(py, batch.facts)?)?;
    out.set_item("file_index", batch.file_index)?;
    out.set_item("names", batch.names)?;
    out.set_item("lines", batch.lines)?;
    out.set_item("locations", batch.locations)?;
    out.set_item("fallback", batch.fallback)?;
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(k8s_workload_facts, m)?)?;
    Ok(())
}
