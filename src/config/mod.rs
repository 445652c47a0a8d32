//! Configuration: one TOML file per court, layered with `SHUTTLEGATE_SECTION__KEY` environment
//! overrides (figment), read into a raw serde layer with defaults and validated once into typed
//! settings whose errors name the key, the file and the reason.
