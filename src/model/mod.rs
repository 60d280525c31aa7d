//! The model artifact and the pure pipelines that make and apply it: [`config`] (training
//! settings, checked into [`config::TrainParams`]), [`artifact`] (the saved model), [`train`]
//! (transactions → artifact), [`place`] (customers at an as-of date), [`backtest`] (train on a
//! calibration period, forecast the holdout, score it) and [`simulate`] (synthetic data with
//! planted truth) and [`regimes`] (generated businesses of different kinds, with known truth).

pub mod artifact;
pub mod backtest;
pub mod blend;
pub mod config;
pub mod holdout;
pub mod parallel;
pub mod place;
pub mod regimes;
pub mod simulate;
pub mod train;
