//! Built-in models: EBM traits, discrete (spin / categorical) factors, continuous (Gaussian)
//! factors and samplers, the Ising model.

pub mod continuous;
pub mod discrete;
pub mod ebm;
pub mod ising;
