//! secmon's native core.
//!
//! Pure Rust modules (no pyo3) do the byte-crunching; `py` holds every Python binding and is
//! compiled only with the `python` feature, which maturin enables.
//!
//! - [`matcher`]: one automaton over many literals, every (line, pattern) pair over raw bytes.
//! - [`hash`]: streaming digests (sha256, blake3, xxh3_128, sha1, md5) with fixed memory.
//! - [`walk`]: parallel file-tree walker producing column batches, reusing earlier digests.
//! - [`fim`]: FIM whole commands: scan + xattrs, baseline payload, diff under a policy.
//! - [`cidr`]: IPv4/IPv6 prefix sets with longest-prefix lookup.
//! - [`extract`]: NDJSON lines to event-table columns (only the requested attribute paths).
//! - [`predicate`]: rule queries as flags over extracted columns (the Polars flag query's fast twin).
//! - [`records`]: records read back by position, many per call (the event store's samples).
//! - [`lifecycle`]: a rule's triggers to signal spans (keepAlive, maxSignalDuration, samples).
//! - [`compliance`]: Kubernetes workload manifests to typed fact columns (compliance fast path).
//! - [`error`]: the one error type of the core, mapped to Python exceptions in `py`.

pub mod cidr;
pub mod compliance;
pub mod error;
pub mod extract;
pub mod fim;
pub mod hash;
pub mod lifecycle;
pub mod matcher;
pub mod predicate;
pub mod records;
pub mod walk;

#[cfg(test)]
mod test_rng;

#[cfg(feature = "python")]
mod py;
