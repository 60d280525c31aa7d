//! The Markov chain of segment moves: [`fit`] (counts and the smoothed matrix with its Dirichlet
//! posterior), [`covariates`] (customer-specific first steps from a multinomial logit per
//! origin) and [`diagnostics`] (order test, thin rows, recent-window check).

pub mod counts;
pub mod covariates;
pub mod diagnostics;
pub mod fit;
pub mod moves;
