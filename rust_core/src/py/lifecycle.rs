//! Bindings of [`crate::lifecycle`]: `signal_spans`, a rule's triggers to signal spans as numpy
//! arrays.
//!
//! Inputs are copied into owned vectors (eight bytes per row, far below the walk's own cost)
//! so the walk runs with the GIL released.

use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::lifecycle::{Events, Lifecycle, Triggers};

/// An int64 numpy array argument as an owned vector, or a TypeError naming the argument.
fn int64_column(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    let array = obj.extract::<PyReadonlyArray1<i64>>().map_err(|_| {
        let found = obj
            .getattr("dtype")
            .map(|d| format!("an array of {d}"))
            .unwrap_or_else(|_| obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into()));
        PyTypeError::new_err(format!("{name} must be a 1-d numpy int64 array, not {found}"))
    })?;
    Ok(array.as_array().to_vec())
}

/// The signals of one rule over all of its groups: see `secmon/_core.pyi`.
#[pyfunction]
#[pyo3(signature = (
    event_group, event_ts, event_id, trigger_group, trigger_ts, trigger_case, case_rank,
    *, window_ms, keep_alive_ms, max_duration_ms, max_samples
))]
#[pyo3(text_signature = "(event_group, event_ts, event_id, trigger_group, trigger_ts, trigger_case, case_rank, \
    *, window_ms, keep_alive_ms, max_duration_ms, max_samples)")]
#[allow(clippy::too_many_arguments)]
fn signal_spans<'py>(
    py: Python<'py>,
    event_group: &Bound<'py, PyAny>,
    event_ts: &Bound<'py, PyAny>,
    event_id: &Bound<'py, PyAny>,
    trigger_group: &Bound<'py, PyAny>,
    trigger_ts: &Bound<'py, PyAny>,
    trigger_case: &Bound<'py, PyAny>,
    case_rank: &Bound<'py, PyAny>,
    window_ms: i64,
    keep_alive_ms: i64,
    max_duration_ms: i64,
    max_samples: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let max_samples = usize::try_from(max_samples)
        .map_err(|_| PyValueError::new_err(format!("max_samples is {max_samples}; it must be >= 0")))?;
    let lifecycle = Lifecycle {
        window_ms,
        keep_alive_ms,
        max_duration_ms,
        max_samples,
        case_rank: int64_column(case_rank, "case_rank")?,
    };
    let (eg, et, ei) = (
        int64_column(event_group, "event_group")?,
        int64_column(event_ts, "event_ts")?,
        int64_column(event_id, "event_id")?,
    );
    let (tg, tt, tc) = (
        int64_column(trigger_group, "trigger_group")?,
        int64_column(trigger_ts, "trigger_ts")?,
        int64_column(trigger_case, "trigger_case")?,
    );
    let spans = py.detach(|| {
        lifecycle.spans(Events { group: &eg, ts: &et, id: &ei }, Triggers { group: &tg, ts: &tt, case: &tc })
    })?;
    let out = PyDict::new(py);
    out.set_item("group", spans.group.into_pyarray(py))?;
    out.set_item("case", spans.case.into_pyarray(py))?;
    out.set_item("first_seen", spans.first_seen.into_pyarray(py))?;
    out.set_item("last_seen", spans.last_seen.into_pyarray(py))?;
    out.set_item("event_count", spans.event_count.into_pyarray(py))?;
    out.set_item("sample_offsets", spans.sample_offsets.into_pyarray(py))?;
    out.set_item("sample_rows", spans.sample_rows.into_pyarray(py))?;
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(signal_spans, m)?)?;
    Ok(())
}
