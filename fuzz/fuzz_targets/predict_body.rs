//! The JSON body of `POST /v1/predict`, through the real router (`kam::http::router`) over the
//! repository's default model, in-process. A 500, a panic, or an answer that is not JSON in the
//! API's error format is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

static API: std::sync::LazyLock<kam_fuzz::Api> = std::sync::LazyLock::new(|| kam_fuzz::Api::open("predict"));

fuzz_target!(
    init: {
        std::sync::LazyLock::force(&API);
    },
    |data: &[u8]| {
        API.post_json("/v1/predict", data, &[]);
    }
);
