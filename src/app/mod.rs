//! Use cases shared by the command line and the server, over the model layer and the store:
//! [`publish`] (train, backtest, save, snapshot, activate — once for `kam train` and
//! `POST /v1/train`), [`views`] (typed views of a model: description, chain, population forecast,
//! portfolio), [`numbers`] (the text of every number handed out).

pub mod numbers;
pub mod page;
pub mod publish;
pub mod report;
pub mod views;
