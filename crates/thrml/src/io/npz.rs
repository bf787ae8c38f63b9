//! Reading and writing NumPy `.npy` and `.npz` files of [`Tensor`]s, and atomic writes.
//!
//! Arrays of `bool`, `uint8`, `int32`, `float32` and `float64` map to the [`Tensor`]
//! variants of the same element type; any other dtype is an error that names it. Every error
//! names the file and, for `.npz` archives, the array.
//!
//! Writes are atomic: the data goes to a temporary file in the destination's directory,
//! which is renamed over the destination only once it is complete, so a reader never sees a
//! partial file under the final name ([`write_atomic`]).
//!
//! # Example
//!
//! ```
//! use ndarray::{arr2, ArrayD};
//! use thrml::Tensor;
//! use thrml::io::{read_npz, write_npz};
//!
//! let dir = std::env::temp_dir().join(format!("thrml-npz-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("states.npz");
//! let spins = Tensor::from(arr2(&[[true, false], [false, false]]).into_dyn());
//! let cats = Tensor::from(arr2(&[[2u8], [0]]).into_dyn());
//! write_npz(&path, &[("s", &spins), ("c", &cats)])?;
//! let back = read_npz(&path)?;
//! assert_eq!(back["s"], spins);
//! assert_eq!(back["c"], cats);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), thrml::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::{
    NpzReader, NpzWriter, ReadNpyError, ReadNpyExt, ReadNpzError, ReadableElement, WriteNpyExt,
};

use crate::error::{Error, Result};
use crate::pgm::DType;
use crate::state::Tensor;

fn array_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Array {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// numpy's name for a `.npy` type descriptor such as `<f8` (`float64`); other descriptors
/// (structured dtypes) are returned as written.
#[must_use]
pub fn describe_descriptor(descr: &str) -> String {
    let body = descr.trim_start_matches(['<', '>', '|', '=']);
    let (kind, size) = body.split_at(body.len().min(1));
    let bits = size.parse::<usize>().ok().map(|n| n * 8);
    let name = match (kind, bits) {
        ("b", Some(8)) => Some("bool".to_owned()),
        ("i", Some(b)) => Some(format!("int{b}")),
        ("u", Some(b)) => Some(format!("uint{b}")),
        ("f", Some(b)) => Some(format!("float{b}")),
        ("c", Some(b)) => Some(format!("complex{b}")),
        ("U", _) | ("S", _) => Some("str".to_owned()),
        ("O", _) => Some("object".to_owned()),
        _ => None,
    };
    match name {
        Some(n) => format!("{n} ({descr})"),
        None => descr.to_owned(),
    }
}

/// What a read attempt with one element type gave.
enum Attempt {
    Read(Tensor),
    WrongType(String),
    Failed(String),
}

fn classify<T: Clone>(result: std::result::Result<ArrayD<T>, ReadNpyError>) -> Attempt
where
    ArrayD<T>: Into<Tensor>,
{
    match result {
        Ok(a) => {
            let a = if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned()
            };
            Attempt::Read(a.into())
        }
        Err(ReadNpyError::WrongDescriptor(d)) => {
            Attempt::WrongType(describe_descriptor(d.to_string().trim_matches(['\'', '"'])))
        }
        Err(e) => Attempt::Failed(e.to_string()),
    }
}

fn classify_npz<T: Clone>(result: std::result::Result<ArrayD<T>, ReadNpzError>) -> Attempt
where
    ArrayD<T>: Into<Tensor>,
{
    match result {
        Ok(a) => classify::<T>(Ok(a)),
        Err(ReadNpzError::Npy(e)) => classify::<T>(Err(e)),
        Err(ReadNpzError::Zip(e)) => Attempt::Failed(format!("zip error: {e}")),
    }
}

/// Try each supported element type in turn.
fn read_any(mut read: impl FnMut(DType) -> Attempt) -> std::result::Result<Tensor, String> {
    let mut found = String::new();
    for dtype in [DType::Bool, DType::U8, DType::I32, DType::F32, DType::F64] {
        match read(dtype) {
            Attempt::Read(t) => return Ok(t),
            Attempt::WrongType(d) => found = d,
            Attempt::Failed(m) => return Err(m),
        }
    }
    Err(format!(
        "unsupported dtype {found}; expected bool, uint8, int32, float32 or float64"
    ))
}

fn read_npy_as<T: ReadableElement>(file: File) -> std::result::Result<ArrayD<T>, ReadNpyError> {
    ArrayD::<T>::read_npy(std::io::BufReader::new(file))
}

/// Read a `.npy` file into a [`Tensor`] (standard layout).
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened, [`Error::Array`] if it is not a valid `.npy`
/// file or has an unsupported dtype (the message names it).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    read_any(|dtype| {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return Attempt::Failed(format!("cannot open: {e}")),
        };
        match dtype {
            DType::Bool => classify(read_npy_as::<bool>(file)),
            DType::U8 => classify(read_npy_as::<u8>(file)),
            DType::I32 => classify(read_npy_as::<i32>(file)),
            DType::F32 => classify(read_npy_as::<f32>(file)),
            DType::F64 => classify(read_npy_as::<f64>(file)),
        }
    })
    .map_err(|m| {
        if let Err(e) = File::open(path) {
            io_error(path, e)
        } else {
            array_error(path, m)
        }
    })
}

/// Read every array of a `.npz` archive, keyed by name (without the `.npy` suffix).
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Array`] if it is not a valid `.npz`
/// archive, an array cannot be read, an array has an unsupported dtype, or two arrays have
/// the same name. Messages name the array.
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut npz = NpzReader::new(std::io::BufReader::new(file)).map_err(|e| {
        array_error(
            path,
            format!(
                "not a valid .npz archive ({})",
                strip_prefix(&e.to_string())
            ),
        )
    })?;
    let names = npz
        .names()
        .map_err(|e| array_error(path, strip_prefix(&e.to_string())))?;
    let mut out = BTreeMap::new();
    for name in names {
        let tensor = read_any(|dtype| {
            let entry = name.as_str();
            match dtype {
                DType::Bool => classify_npz(npz.by_name::<OwnedRepr<bool>, IxDyn>(entry)),
                DType::U8 => classify_npz(npz.by_name::<OwnedRepr<u8>, IxDyn>(entry)),
                DType::I32 => classify_npz(npz.by_name::<OwnedRepr<i32>, IxDyn>(entry)),
                DType::F32 => classify_npz(npz.by_name::<OwnedRepr<f32>, IxDyn>(entry)),
                DType::F64 => classify_npz(npz.by_name::<OwnedRepr<f64>, IxDyn>(entry)),
            }
        })
        .map_err(|m| array_error(path, format!("array `{name}`: {m}")))?;
        if out.insert(name.clone(), tensor).is_some() {
            return Err(array_error(
                path,
                format!("the archive holds two arrays named `{name}`"),
            ));
        }
    }
    Ok(out)
}

fn strip_prefix(message: &str) -> String {
    message
        .strip_prefix("zip file error: ")
        .unwrap_or(message)
        .to_owned()
}

/// A write error: [`Error::Io`] if an I/O error caused it (disk full, permissions), else
/// [`Error::Array`].
fn write_error(path: &Path, context: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io_error(path, std::io::Error::new(io.kind(), io.to_string()));
        }
        cause = c.source();
    }
    array_error(path, format!("{context}{e}"))
}

fn write_tensor_npy<W: Write>(path: &Path, t: &Tensor, w: W) -> Result<()> {
    let r = match t {
        Tensor::Bool(a) => a.write_npy(w),
        Tensor::U8(a) => a.write_npy(w),
        Tensor::I32(a) => a.write_npy(w),
        Tensor::F32(a) => a.write_npy(w),
        Tensor::F64(a) => a.write_npy(w),
    };
    r.map_err(|e| write_error(path, "", &e))
}

fn add_to_npz<W: Write + Seek>(
    path: &Path,
    npz: &mut NpzWriter<W>,
    name: &str,
    t: &Tensor,
) -> Result<()> {
    let r = match t {
        Tensor::Bool(a) => npz.add_array(name, a),
        Tensor::U8(a) => npz.add_array(name, a),
        Tensor::I32(a) => npz.add_array(name, a),
        Tensor::F32(a) => npz.add_array(name, a),
        Tensor::F64(a) => npz.add_array(name, a),
    };
    r.map_err(|e| write_error(path, &format!("array `{name}`: "), &e))
}

/// Write `t` to a `.npy` file, atomically.
///
/// # Errors
/// [`Error::Io`] or [`Error::Array`] naming the file.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    write_atomic(path, |file| {
        let mut w = BufWriter::new(file);
        write_tensor_npy(path, t, &mut w)?;
        w.flush().map_err(|e| io_error(path, e))
    })
}

/// Write named arrays to an uncompressed `.npz` archive (as `numpy.savez`), atomically.
///
/// The archive holds the arrays in the given order, each as `name.npy`. The bytes depend only
/// on the arrays, so equal inputs give identical files.
///
/// # Errors
/// [`Error::Array`] for an empty or repeated name, [`Error::Io`] if the file cannot be
/// written.
pub fn write_npz(path: &Path, arrays: &[(&str, &Tensor)]) -> Result<()> {
    for (i, (name, _)) in arrays.iter().enumerate() {
        if name.is_empty() {
            return Err(array_error(path, "an array name is empty"));
        }
        if arrays[..i].iter().any(|(n, _)| n == name) {
            return Err(array_error(path, format!("two arrays are named `{name}`")));
        }
    }
    write_atomic(path, |file| {
        let mut npz = NpzWriter::new(BufWriter::new(file));
        for (name, t) in arrays {
            add_to_npz(path, &mut npz, name, t)?;
        }
        let mut w = npz.finish().map_err(|e| write_error(path, "", &e))?;
        w.flush().map_err(|e| io_error(path, e))
    })
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary path next to `path`.
fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Write a file atomically: `write` fills a new temporary file in the same directory, which
/// is flushed to disk and renamed to `path` only if `write` succeeds. On failure the
/// temporary file is removed and `path` is left as it was.
///
/// # Errors
/// [`Error::Io`] if the temporary file cannot be created, synced or renamed; any error from
/// `write`.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let tmp = temp_path_for(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_error(path, e))?;
    let result = write(&mut file)
        .and_then(|()| file.sync_all().map_err(|e| io_error(path, e)))
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
        });
    if result.is_err() {
        // Best effort: the temporary file is not under the final name either way.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2};

    #[test]
    fn round_trips_and_dtype_errors() {
        let dir = std::env::temp_dir().join(format!("thrml-npz-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Tensor::from(arr1(&[1.5f64, -2.0]).into_dyn());
        let p = dir.join("e.npy");
        write_npy(&p, &e).unwrap();
        assert_eq!(read_npy(&p).unwrap(), e);

        let i64s = arr2(&[[1i64, 2]]).into_dyn();
        let p = dir.join("bad.npy");
        ndarray_npy::write_npy(&p, &i64s).unwrap();
        let err = read_npy(&p).unwrap_err().to_string();
        assert!(err.contains("unsupported dtype int64"), "{err}");

        let p = dir.join("a.npz");
        let s = Tensor::from(arr2(&[[true], [false]]).into_dyn());
        write_npz(&p, &[("s", &s), ("e", &e)]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        write_npz(&p, &[("s", &s), ("e", &e)]).unwrap();
        assert_eq!(
            bytes,
            std::fs::read(&p).unwrap(),
            "npz output is deterministic"
        );
        let back = read_npz(&p).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back["s"], s);

        std::fs::write(&p, b"not a zip").unwrap();
        let err = read_npz(&p).unwrap_err().to_string();
        assert!(err.contains("not a valid .npz archive"), "{err}");
        let err = read_npz(&dir.join("missing.npz")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");

        // A failed write leaves neither the file nor a temporary behind.
        let p = dir.join("never.npy");
        let err = write_atomic(&p, |_| Err(Error::Invalid("boom".into()))).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert!(!p.exists());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn descriptors_have_numpy_names() {
        assert_eq!(describe_descriptor("<f8"), "float64 (<f8)");
        assert_eq!(describe_descriptor("|b1"), "bool (|b1)");
        assert_eq!(describe_descriptor("|u1"), "uint8 (|u1)");
    }
}
