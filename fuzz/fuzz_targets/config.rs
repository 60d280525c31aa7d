//! `kam::model::config::TrainConfig::from_toml`, then `.check()`. A configuration that checks
//! must also serialize (TOML, and JSON as the artifact stores it) and read back.
#![no_main]

use kam::model::config::TrainConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = TrainConfig::from_toml(text) else { return };
    if config.check().is_err() {
        return;
    }
    let toml = config.to_toml();
    TrainConfig::from_toml(&toml).unwrap_or_else(|e| panic!("a checked config's TOML does not read back: {e}\n{toml}"));
    let json = serde_json::to_string(&config).expect("a config serializes to JSON");
    let back: TrainConfig =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("a checked config's JSON does not read back: {e}\n{json}"));
    assert!(back.check().is_ok(), "a checked config does not check after a JSON round trip:\n{json}");
});
