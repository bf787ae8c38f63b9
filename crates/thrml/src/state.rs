//! Typed state arrays.
//!
//! A [`Tensor`] is an n-dimensional array of one of the [`DType`]s. The state of a block
//! (or of one slot of the global state) is a [`State`]: one tensor per leaf of the node
//! kind's [`StateLayout`](crate::StateLayout). Each leaf tensor has shape
//! `batch_shape + [nodes] + leaf.shape`; when a program runs, the batch shape is
//! `[chains]`.

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use crate::pgm::{DType, LeafSpec};

/// An n-dimensional array of one of the supported element types.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// `bool` elements.
    Bool(ArrayD<bool>),
    /// `u8` elements.
    U8(ArrayD<u8>),
    /// `i32` elements.
    I32(ArrayD<i32>),
    /// `f32` elements.
    F32(ArrayD<f32>),
    /// `f64` elements.
    F64(ArrayD<f64>),
}

/// The state of one block or one global slot: one [`Tensor`] per leaf of the layout.
///
/// This is THRML's state PyTree, flattened.
pub type State = Vec<Tensor>;

mod sealed {
    pub trait Sealed {}
}

/// An element type a [`Tensor`] can hold.
pub trait Element:
    Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static + sealed::Sealed
{
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Borrow the array if the tensor holds this type.
    fn array(t: &Tensor) -> Option<&ArrayD<Self>>;
    /// Mutably borrow the array if the tensor holds this type.
    fn array_mut(t: &mut Tensor) -> Option<&mut ArrayD<Self>>;
    /// Wrap an array.
    fn wrap(a: ArrayD<Self>) -> Tensor;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn array(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn array_mut(t: &mut Tensor) -> Option<&mut ArrayD<Self>> {
                match t {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$variant(a)
            }
        }
        impl From<ArrayD<$t>> for Tensor {
            fn from(a: ArrayD<$t>) -> Tensor {
                Tensor::$variant(a)
            }
        }
    };
}

element!(bool, Bool);
element!(u8, U8);
element!(i32, I32);
element!(f32, F32);
element!(f64, F64);

/// Apply `$body` to the array inside a tensor whatever its element type.
macro_rules! dispatch {
    ($tensor:expr, $a:ident => $body:expr) => {
        match $tensor {
            Tensor::Bool($a) => $body,
            Tensor::U8($a) => $body,
            Tensor::I32($a) => $body,
            Tensor::F32($a) => $body,
            Tensor::F64($a) => $body,
        }
    };
}
pub(crate) use dispatch;

impl Tensor {
    /// A zero-filled tensor.
    #[must_use]
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let shape = IxDyn(shape);
        match dtype {
            DType::Bool => Tensor::Bool(ArrayD::from_elem(shape, false)),
            DType::U8 => Tensor::U8(ArrayD::zeros(shape)),
            DType::I32 => Tensor::I32(ArrayD::zeros(shape)),
            DType::F32 => Tensor::F32(ArrayD::zeros(shape)),
            DType::F64 => Tensor::F64(ArrayD::zeros(shape)),
        }
    }

    /// A zero-filled tensor for `n_nodes` nodes of `leaf`, with a batch shape in front.
    #[must_use]
    pub fn zeros_for(leaf: &LeafSpec, batch_shape: &[usize], n_nodes: usize) -> Tensor {
        let mut shape = batch_shape.to_vec();
        shape.push(n_nodes);
        shape.extend_from_slice(&leaf.shape);
        Tensor::zeros(leaf.dtype, &shape)
    }

    /// The element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::Bool(_) => DType::Bool,
            Tensor::U8(_) => DType::U8,
            Tensor::I32(_) => DType::I32,
            Tensor::F32(_) => DType::F32,
            Tensor::F64(_) => DType::F64,
        }
    }

    /// The shape.
    #[must_use]
    pub fn shape(&self) -> &[usize] {
        dispatch!(self, a => a.shape())
    }

    /// The number of dimensions.
    #[must_use]
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// Borrow as an array of `T`, if the element type matches.
    #[must_use]
    pub fn view<T: Element>(&self) -> Option<ArrayViewD<'_, T>> {
        T::array(self).map(|a| a.view())
    }

    /// Mutably borrow as an array of `T`, if the element type matches.
    pub fn view_mut<T: Element>(&mut self) -> Option<ArrayViewMutD<'_, T>> {
        T::array_mut(self).map(|a| a.view_mut())
    }

    /// The elements in row-major order, if the element type matches and the array is
    /// contiguous in standard layout.
    #[must_use]
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::array(self).and_then(|a| a.as_slice())
    }

    /// Mutable row-major elements, if the element type matches and the array is contiguous.
    pub fn as_slice_mut<T: Element>(&mut self) -> Option<&mut [T]> {
        T::array_mut(self).and_then(|a| a.as_slice_mut())
    }

    /// Whether the data is in standard (row-major, contiguous) layout.
    #[must_use]
    pub fn is_standard_layout(&self) -> bool {
        dispatch!(self, a => a.is_standard_layout())
    }

    /// The same data in standard (row-major, contiguous) layout.
    #[must_use]
    pub fn to_standard_layout(&self) -> Tensor {
        dispatch!(self, a => a.as_standard_layout().into_owned().into())
    }

    /// Element `i` (row-major) converted to `f64`: `bool` maps to 0/1.
    ///
    /// # Panics
    /// If `i` is out of range or the tensor is not contiguous.
    #[must_use]
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Tensor::Bool(a) => f64::from(u8::from(a.as_slice().expect("contiguous")[i])),
            Tensor::U8(a) => f64::from(a.as_slice().expect("contiguous")[i]),
            Tensor::I32(a) => f64::from(a.as_slice().expect("contiguous")[i]),
            Tensor::F32(a) => f64::from(a.as_slice().expect("contiguous")[i]),
            Tensor::F64(a) => a.as_slice().expect("contiguous")[i],
        }
    }
}

/// Concatenate same-typed tensors along `axis`, in standard layout.
///
/// Parts may be borrowed or owned. An owned part is freed as soon as it has been copied,
/// so that joining a batch's block states (which the caller handed over) needs little more
/// memory than the result.
///
/// # Panics
/// If the tensors differ in dtype or in any dimension other than `axis` (callers check).
pub(crate) fn concatenate(axis: usize, mut parts: Vec<Cow<'_, Tensor>>) -> Tensor {
    if let [Cow::Owned(t)] = parts.as_slice()
        && t.is_standard_layout()
    {
        return parts.pop().expect("one part").into_owned();
    }
    fn cat<T: Element>(axis: usize, parts: Vec<Cow<'_, Tensor>>) -> Tensor {
        let mut shape = parts[0].shape().to_vec();
        shape[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
        let outer: usize = shape[..axis].iter().product();
        let row: usize = shape[axis..].iter().product();
        let mut data = vec![T::default(); outer * row];
        let mut offset = 0;
        // For each index of the axes before `axis`, each part's contiguous chunk in turn
        // (row copies, not an element iterator).
        for part in parts {
            let view = part.view::<T>().expect("same dtype");
            let view = view.as_standard_layout();
            let src = view.as_slice().expect("standard layout");
            let n: usize = part.shape()[axis..].iter().product();
            for o in 0..outer {
                data[o * row + offset..][..n].copy_from_slice(&src[o * n..][..n]);
            }
            offset += n;
        }
        T::wrap(ArrayD::from_shape_vec(shape, data).expect("the parts fill the shape"))
    }
    match parts[0].dtype() {
        DType::Bool => cat::<bool>(axis, parts),
        DType::U8 => cat::<u8>(axis, parts),
        DType::I32 => cat::<i32>(axis, parts),
        DType::F32 => cat::<f32>(axis, parts),
        DType::F64 => cat::<f64>(axis, parts),
    }
}

/// Take `indices` along `axis`, in standard layout.
pub(crate) fn select(t: &Tensor, axis: usize, indices: &[usize]) -> Tensor {
    // `select` along an inner axis returns a non-standard layout; extracted states are
    // handed to users, who expect `as_slice` and `get_f64` to work on them.
    dispatch!(t, a => {
        let picked = a.select(ndarray::Axis(axis), indices);
        if picked.is_standard_layout() {
            picked.into()
        } else {
            picked.as_standard_layout().into_owned().into()
        }
    })
}
