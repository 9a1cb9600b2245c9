//! Python bindings: the `secmon._core` extension module. Each submodule registers its classes and
//! functions; the pure modules never see pyo3.

use pyo3::prelude::*;

mod error;
mod ipset;
mod matcher;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    matcher::register(m)?;
    ipset::register(m)?;
    Ok(())
}
