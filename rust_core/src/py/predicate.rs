//! Bindings of [`crate::predicate`]: `FlagProgram`, built from the nested tuples that
//! `secmon/query/native.py` lowers rule queries to (the grammar is in `secmon/_core.pyi`).

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::ipset::PyIpSet;
use crate::predicate::{FlagProgram, Pred, Test};

/// Named rule flags evaluated natively by `extract_fields(..., flags=program)`.
#[pyclass(frozen, module = "secmon._core", name = "FlagProgram")]
pub struct PyFlagProgram {
    pub(crate) inner: Arc<FlagProgram>,
}

#[pymethods]
impl PyFlagProgram {
    #[new]
    fn new(flags: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut out = Vec::new();
        for item in flags.try_iter()? {
            let item = item?;
            let (name, spec): (String, Bound<'_, PyAny>) =
                item.extract().map_err(|_| PyTypeError::new_err("flags must be (name, predicate) pairs"))?;
            let pred = pred_of(&spec).map_err(|e| PyValueError::new_err(format!("flag {name:?}: {e}")))?;
            out.push((name, pred));
        }
        Ok(PyFlagProgram { inner: Arc::new(FlagProgram::new(out)) })
    }

    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.flags.iter().map(|(n, _)| n.clone()).collect()
    }

    fn __repr__(&self) -> String {
        format!("FlagProgram({} flags)", self.inner.flags.len())
    }
}

type Spec<'py> = Bound<'py, PyAny>;

/// The tag and the other items of one `(tag, ...)` tuple.
fn parts<'py>(spec: &Spec<'py>) -> Result<(String, Vec<Spec<'py>>), String> {
    let tuple = spec.cast::<PyTuple>().map_err(|_| format!("expected a (tag, ...) tuple, got {spec}"))?;
    let mut items = tuple.iter();
    let tag = items
        .next()
        .and_then(|t| t.cast::<PyString>().ok().map(|s| s.to_string()))
        .ok_or_else(|| format!("expected a tuple starting with a tag string, got {spec}"))?;
    Ok((tag, items.collect()))
}

fn text(spec: &Spec<'_>) -> Result<String, String> {
    spec.extract::<String>().map_err(|_| format!("expected str, got {spec}"))
}

fn bytes_of(spec: &Spec<'_>) -> Result<Box<[u8]>, String> {
    Ok(text(spec)?.into_bytes().into_boxed_slice())
}

fn texts(spec: &Spec<'_>) -> Result<Vec<Vec<u8>>, String> {
    let list = spec.cast::<PyList>().map_err(|_| format!("expected a list of str, got {spec}"))?;
    list.iter().map(|s| text(&s).map(String::into_bytes)).collect()
}

fn flag(spec: &Spec<'_>) -> Result<bool, String> {
    spec.extract::<bool>().map_err(|_| format!("expected bool, got {spec}"))
}

fn bound(value: &Spec<'_>, inclusive: &Spec<'_>) -> Result<Option<(f64, bool)>, String> {
    if value.is_none() {
        return Ok(None);
    }
    let v = value.extract::<f64>().map_err(|_| format!("expected a float bound, got {value}"))?;
    Ok(Some((v, flag(inclusive)?)))
}

fn ip_table(spec: &Spec<'_>) -> Result<Arc<crate::cidr::IpTable>, String> {
    let set = spec.cast::<PyIpSet>().map_err(|_| format!("expected an IpSet, got {spec}"))?;
    Ok(set.get().table())
}

fn arity(tag: &str, args: &[Spec<'_>], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("{tag:?} takes {n} arguments, got {}", args.len()));
    }
    Ok(())
}

fn pred_of(spec: &Spec<'_>) -> Result<Pred, String> {
    let (tag, args) = parts(spec)?;
    let list = |i: usize| -> Result<Vec<Pred>, String> {
        let items = args[i].cast::<PyList>().map_err(|_| format!("{tag:?} takes a list of predicates"))?;
        items.iter().map(|c| pred_of(&c)).collect()
    };
    Ok(match tag.as_str() {
        "const" => {
            arity(&tag, &args, 1)?;
            Pred::Const(flag(&args[0])?)
        }
        "and" | "or" => {
            arity(&tag, &args, 1)?;
            if tag == "and" { Pred::And(list(0)?) } else { Pred::Or(list(0)?) }
        }
        "not" => {
            arity(&tag, &args, 1)?;
            Pred::Not(Box::new(pred_of(&args[0])?))
        }
        "any" => {
            arity(&tag, &args, 2)?;
            Pred::Any { column: text(&args[0])?, test: test_of(&args[1])? }
        }
        "first_in_ipset" => {
            arity(&tag, &args, 2)?;
            Pred::FirstInIpSet { column: text(&args[0])?, table: ip_table(&args[1])? }
        }
        _ => return Err(format!("unknown predicate {tag:?}")),
    })
}

fn test_of(spec: &Spec<'_>) -> Result<Test, String> {
    let (tag, args) = parts(spec)?;
    let want = |n: usize| arity(&tag, &args, n);
    Ok(match tag.as_str() {
        "exists" => {
            want(0)?;
            Test::Exists
        }
        "eq" => {
            want(1)?;
            Test::Eq(bytes_of(&args[0])?)
        }
        "in" => {
            want(1)?;
            Test::In(texts(&args[0])?.into_iter().map(Vec::into_boxed_slice).collect::<crate::predicate::ValueSet>())
        }
        "prefix" => {
            want(1)?;
            Test::Prefix(bytes_of(&args[0])?)
        }
        "suffix" => {
            want(1)?;
            Test::Suffix(bytes_of(&args[0])?)
        }
        "contains" => {
            want(1)?;
            Test::contains(&bytes_of(&args[0])?)
        }
        "prefix_suffix" => {
            want(2)?;
            Test::PrefixSuffix(bytes_of(&args[0])?, bytes_of(&args[1])?)
        }
        "contains_any" => {
            want(1)?;
            Test::contains_any(&texts(&args[0])?).map_err(|e| e.to_string())?
        }
        "regex" => {
            want(1)?;
            Test::regex(&text(&args[0])?).map_err(|e| e.to_string())?
        }
        "number" => {
            want(4)?;
            Test::Number { low: bound(&args[0], &args[1])?, high: bound(&args[2], &args[3])? }
        }
        "lower" => {
            want(1)?;
            Test::Lower(Box::new(test_of(&args[0])?))
        }
        "strip_prefix" => {
            want(2)?;
            Test::StripPrefix(bytes_of(&args[0])?, Box::new(test_of(&args[1])?))
        }
        "in_ipset" => {
            want(2)?;
            Test::InIpSet { table: ip_table(&args[0])?, skip_colon: flag(&args[1])? }
        }
        _ => return Err(format!("unknown test {tag:?}")),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFlagProgram>()?;
    Ok(())
}
