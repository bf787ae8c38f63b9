//! Built-in models: EBM traits, discrete (spin / categorical) factors, the Ising model.

pub mod discrete;
pub mod ebm;
pub mod ising;
