//! Python bindings: the `secmon._core` extension module. Each submodule registers its classes and
//! functions; the pure modules never see pyo3.

use pyo3::prelude::*;

mod arrow_ffi;
mod compliance;
mod error;
mod extract;
mod fim;
mod hash;
mod ipset;
mod lifecycle;
mod matcher;
mod predicate;
mod walk;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    hash::register(m)?;
    walk::register(m)?;
    matcher::register(m)?;
    ipset::register(m)?;
    extract::register(m)?;
    lifecycle::register(m)?;
    predicate::register(m)?;
    fim::register(m)?;
    compliance::register(m)?;
    Ok(())
}
