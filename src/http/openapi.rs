//! `GET /openapi.json`: the OpenAPI description, generated from the handlers' and types'
//! annotations (utoipa), so it follows the code.

use super::error::{Detail, ErrorObject, ErrorResponse};
use super::json::Json;
use super::{AppState, customers, forecast, health, jobs, metrics, model, models, predict};
use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers every route can give besides its own, added to each operation so that the
/// document lists every status a client can see: 400/413/415 where there is a JSON body, 401/403
/// where a key is needed, and 500 (`internal`), 503 (`timeout`) everywhere.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorResponse"))).build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                let mut add = |code: &str, what: &str| {
                    op.responses.responses.entry(code.into()).or_insert_with(|| error(what).into());
                };
                if op.request_body.is_some() {
                    add("400", "Not JSON (`malformed_json`)");
                    add("413", "Body over the limit (`payload_too_large`)");
                    add("415", "Not application/json (`unsupported_media_type`)");
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add("401", "Missing or unknown API key");
                    add("403", "The key's role may not use this route");
                }
                add("500", "A bug (`internal`); the cause is logged, never sent");
                add("503", "The request took longer than the server's timeout (`timeout`)");
            }
        }
    }
}

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "kam prediction API",
        description = "Segment, churn, re-activation and value forecasts for customers and key accounts \
                       from a trained kam model. Errors share one body: {\"error\": {\"code\", \"message\", \"details\"}}. \
                       Numbers in responses carry at most 6 decimals; customer ids may be sent as strings or integers."
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        model::model,
        model::transitions,
        models::list,
        models::show,
        models::activate,
        predict::handler,
        forecast::handler,
        customers::list,
        customers::customer,
        customers::summary,
        jobs::start,
        jobs::list,
        jobs::show,
    ),
    components(schemas(
        ErrorResponse,
        ErrorObject,
        Detail,
        predict::PredictRequest,
        predict::CustomerInput,
        predict::TransactionInput,
        predict::PredictResponse,
        predict::Prediction,
        crate::model::place::Rfm,
        predict::HorizonOut,
        forecast::ForecastRequest,
        crate::app::views::ForecastResponse,
        crate::app::views::PeriodSizes,
        crate::app::views::ModelView,
        crate::app::views::PeriodView,
        crate::app::views::SpendView,
        crate::app::views::ChainView,
        crate::app::views::Diagnostics,
        customers::CustomerResponse,
        customers::CustomerList,
        customers::ListedCustomer,
        jobs::TrainRequest,
        jobs::Columns,
        jobs::Job,
        jobs::JobList,
    )),
    modifiers(&Security, &CommonResponses),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "model", description = "The model being served"),
        (name = "models", description = "Stored models and hot swap"),
        (name = "predict", description = "Customer and population forecasts"),
    )
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi))
}
